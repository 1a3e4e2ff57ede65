"""Shell integration (issue 21, item 6): `devnode completion bash|zsh|fish` prints a script that
asks the binary itself on each Tab, so commands, options, option values and the service and
instance names of the project's config (read at that moment) complete; `devnode man` is the
manual page generated from the same command table. bash is driven the way bash drives a
completion function: COMP_WORDS and COMP_CWORD, then COMPREPLY."""
import os
import re
import shlex
import shutil
import signal
import subprocess

import pytest

from conftest import DEVNODE, ROOT, base_env, wait_for

CONFIG = """
instances:
    Web:
        command: sleep 1000
        numprocesses: 2
    Worker:
        command: sleep 1000
"""


def bash_complete(cwd, *words, current=None, env=None):
    """COMPREPLY for `words` with the cursor on the last word (or word `current`)."""
    cword = len(words) - 1 if current is None else current
    script = ("source <(devnode completion bash) || exit 3\n"
              f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
              f"COMP_CWORD={cword}\n"
              "_devnode\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = env or base_env(PATH=f"{ROOT}:{os.environ['PATH']}")
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                       timeout=30, cwd=cwd, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stderr == "", (r.returncode, r.stderr)
    return [l for l in r.stdout.splitlines() if l]


def test_bash_completes_commands_options_and_the_projects_services(project):
    project.write(CONFIG)
    d = project.dir
    assert bash_complete(d, "devnode", "res") == ["restart"]
    assert bash_complete(d, "devnode", "t") == ["tail", "traces", "tui", "top"]
    assert bash_complete(d, "devnode", "restart", "") == ["Web", "Web.0", "Web.1", "Worker", "Worker.0"]
    assert bash_complete(d, "devnode", "restart", "Web.") == ["Web.0", "Web.1"]
    assert bash_complete(d, "devnode", "tail", "-f", "Wor") == ["Worker", "Worker.0"]
    assert bash_complete(d, "devnode", "scale", "W") == ["Web", "Worker"]  # SERVICE: no instances
    assert bash_complete(d, "devnode", "scale", "Web", "") == []          # COUNT
    assert bash_complete(d, "devnode", "restart", "--no") == ["--no-wait"]
    assert bash_complete(d, "devnode", "up", "--color", "=", "al") == ["always"]  # bash splits at '='
    assert bash_complete(d, "devnode", "completion", "") == ["bash", "zsh", "fish"]
    assert bash_complete(d, "devnode", "help", "sc") == ["scale", "schema"]
    # The config is read at completion time: a service added now completes at once.
    project.write(CONFIG + "    Mailer:\n        command: sleep 1000\n")
    assert bash_complete(d, "devnode", "restart", "M") == ["Mailer", "Mailer.0"]
    # -c names another project, wherever it is on the line.
    other = d / "other"
    other.mkdir()
    (other / "x.yml").write_text("instances:\n    Api:\n        command: sleep 1000\n")
    assert bash_complete(d, "devnode", "-c", "other/x.yml", "restart", "") == ["Api", "Api.0"]
    assert bash_complete(d, "devnode", "restart", "-c", "other/x.yml", "") == ["Api", "Api.0"]
    # A Procfile project completes its process names.
    (other / "Procfile").write_text("web: sleep 1000\nclock: sleep 1000\n")
    assert bash_complete(other, "devnode", "restart", "") == ["web", "web.0", "clock", "clock.0"]


def test_bash_completes_the_instances_of_the_running_node_scaled_at_runtime(project):
    """With a node running, the instances are the node's (a `scale` changed them), not the
    config's; a node that does not answer (stopped) leaves the answer to the config, and so
    does no node."""
    project.write(CONFIG)
    d = project.dir
    node = project.up()
    node.wait_running("Web", 2)
    r = project.cli("scale", "Web", "4")
    assert r.returncode == 0, r.stderr
    node.wait_running("Web", 4)
    r = project.cli("scale", "Worker", "0")
    assert r.returncode == 0, r.stderr
    node.wait_running("Worker", 0)
    assert bash_complete(d, "devnode", "restart", "") == ["Web", "Web.0", "Web.1", "Web.2", "Web.3", "Worker"]
    assert bash_complete(d, "devnode", "tail", "-f", "Web.") == ["Web.0", "Web.1", "Web.2", "Web.3"]
    assert bash_complete(d, "devnode", "scale", "W") == ["Web", "Worker"]
    # A node that cannot answer: the config's names, after the short wait.
    os.kill(node.proc.pid, signal.SIGSTOP)
    try:
        assert bash_complete(d, "devnode", "restart", "Web.") == ["Web.0", "Web.1"]
    finally:
        os.kill(node.proc.pid, signal.SIGCONT)
    node.stop()
    assert bash_complete(d, "devnode", "restart", "") == ["Web", "Web.0", "Web.1", "Worker", "Worker.0"]


def test_bash_registers_for_devnode_and_falls_back_to_files(project, tmp_path):
    project.write(CONFIG)
    env = base_env(PATH=f"{ROOT}:{os.environ['PATH']}")
    r = subprocess.run(["bash", "--norc", "-c", "source <(devnode completion bash) && complete -p devnode"],
                       capture_output=True, text=True, timeout=30, env=env, cwd=project.dir)
    assert r.stdout == "complete -o default -F _devnode devnode\n", r.stdout + r.stderr
    # -c PATH has no candidates of its own: bash's `-o default` completes file names.
    assert bash_complete(project.dir, "devnode", "up", "-c", "") == []
    # Outside any project, commands still complete, services simply do not.
    assert bash_complete(tmp_path / "..", "devnode", "resta") == ["restart"]


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed on this machine")
def test_zsh_script_loads():
    r = subprocess.run(["zsh", "-f", "-c", "autoload -U compinit && compinit -u && source <(devnode completion zsh)"
                        " && print ${_comps[devnode]}"], capture_output=True, text=True, timeout=30,
                       env=base_env(PATH=f"{ROOT}:{os.environ['PATH']}"))
    assert r.returncode == 0 and r.stdout == "_devnode\n", r.stdout + r.stderr


@pytest.mark.skipif(not shutil.which("zsh") or not shutil.which("tmux"), reason="needs zsh and tmux")
def test_zsh_completes_a_service_in_a_real_terminal(project, marker):
    """zsh's completion system only runs inside its line editor: type into one in tmux."""
    project.write(CONFIG)
    session = f"dn-zsh-{marker[:8]}"
    env = base_env(PATH=f"{ROOT}:/usr/bin:/bin", HOME=str(project.dir))
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "20", "-c", str(project.dir),
                    "zsh -f -i"], check=True, env=env)
    try:
        def keys(*k):
            subprocess.run(["tmux", "send-keys", "-t", session, *k], check=True)

        def screen():
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                                  check=True).stdout
        keys("autoload -U compinit && compinit -u && source <(devnode completion zsh) && echo READY", "Enter")
        wait_for(lambda: "\nREADY" in screen(), 10, lambda: f"zsh to load the script: {screen()}")
        keys("devnode resta", "Tab")
        wait_for(lambda: re.search(r"[#%>$] devnode restart\n", screen()), 10, lambda: f"the command to complete: {screen()}")
        keys("Wo", "Tab", "Tab")
        wait_for(lambda: "Worker.0" in screen().split("devnode restart Wo", 1)[-1], 10,
                 lambda: f"Worker and Worker.0 offered: {screen()}")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.skipif(not shutil.which("fish"), reason="fish is not installed on this machine")
def test_fish_script_loads(project):
    project.write(CONFIG)
    r = subprocess.run(["fish", "--no-config", "-c", "devnode completion fish | source; complete -C 'devnode restart W'"],
                       capture_output=True, text=True, timeout=30, cwd=project.dir,
                       env=base_env(PATH=f"{ROOT}:{os.environ['PATH']}"))
    assert r.returncode == 0, r.stderr
    assert [l.split("\t")[0] for l in r.stdout.splitlines()] == ["Web", "Web.0", "Web.1", "Worker", "Worker.0"]


def test_completion_of_an_unknown_shell_is_a_usage_error():
    r = subprocess.run([str(DEVNODE), "completion", "tcsh"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stderr == "devnode: completion: no script for 'tcsh' (bash, zsh or fish)\n"
    r = subprocess.run([str(DEVNODE), "completion"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "devnode completion bash|zsh|fish" in r.stderr


def test_man_page_lists_every_command_of_help_and_no_hidden_one():
    help_text = subprocess.run([str(DEVNODE), "help"], capture_output=True, text=True, check=True).stdout
    commands = [l.split()[0].rstrip(",") for l in help_text.splitlines() if l.startswith("  ") and l.strip()]
    assert "import" in commands and "completion" in commands
    assert "__complete" not in help_text and "\n  man " not in help_text
    page = subprocess.run([str(DEVNODE), "man"], capture_output=True, text=True, check=True).stdout
    assert page.startswith('.\\" devnode(1)') and "\n.TH DEVNODE 1 " in page
    for name in commands:
        assert f"\\fBdevnode {name}\\fR" in page, name
    assert "__complete" not in page
