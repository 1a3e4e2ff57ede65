"""devnode attach (issue 21 item 3): a real terminal (tmux) attached to a worker's pty or stdin
pipe: keys go in, the answer comes out, Ctrl-] detaches and leaves the process running, the
terminal is given back sane (canonical mode and echo) on detach, on the process's exit and on
a signal; one attacher at a time; a service without stdin/tty gets the hint."""
import os
import re
import signal
import subprocess

import pytest

from conftest import DEVNODE, base_env, pid_alive, wait_for
from tuihelpers import Tmux, last_row, start_tui, table

CONFIG = """\
instances:
  Py:
    command: exec python3 -q -i
    tty: true
  Dbg:
    command: exec python3 -q dbg.py
    tty: true
    restart: never
  Lines:
    command: 'while read -r l; do echo "got $l"; done'
    stdin: true
  Plain:
    command: exec sleep 1000
"""

DBG_PY = """\
x = 41
breakpoint()
print("after", x + 1, flush=True)
import time
time.sleep(1000)
"""


@pytest.fixture
def node(project):
    project.write(CONFIG, {"dbg.py": DBG_PY})
    n = project.up()
    for svc in ("Py", "Dbg", "Lines", "Plain"):
        n.wait_running(svc, 1)
    return n


@pytest.fixture
def tmux(project):
    t = Tmux(120, 40, cwd=project.dir)
    yield t
    t.kill()


def attach(tmux, project, target):
    tmux.command(f"{DEVNODE} attach -c {project.config_path} {target}; echo attach-exit=$?")
    tmux.wait_text(f"attached to {target}")
    return wait_for(lambda: attach_pid(tmux), 5, "the devnode attach process")


def attach_pid(tmux):
    for p in tmux.foreground_pids():
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"devnode") and argv[1] == b"attach":
            return p
    return None


def attach_exit(tmux, timeout=15):
    m = tmux.wait(lambda s: re.search(r"attach-exit=(\d+)", s), timeout, "devnode attach to exit")
    return int(m.group(1))


def assert_terminal_sane(tmux):
    """The shell's terminal is back in canonical mode with echo, and typing at the prompt works."""
    tmux.wait_prompt()
    tmux.command("clear; stty -a | tr ' ' '\\n' | grep -E '^-?(icanon|echo|isig)$' | tr '\\n' ' '; echo")
    modes = tmux.wait(lambda s: re.search(r"^(-?icanon|-?isig|-?echo)( -?\w+)+ *$", s, re.M), 10,
                      "stty's modes").group(0).split()
    assert "icanon" in modes and "echo" in modes and "isig" in modes, modes
    tmux.command("echo sane-$((40+2))")
    tmux.wait_text("sane-42")


def pid_of(node, svc):
    return node.service(svc)["instances"][0]["pid"]


def test_attach_drives_a_python_prompt_and_detach_leaves_it_running(project, node, tmux):
    pid = pid_of(node, "Py")
    attach(tmux, project, "Py.0")
    tmux.wait(lambda s: last_row(s) == ">>>", 10, "the REPL's prompt, replayed to the new attacher")
    tmux.command("6 * 7")
    tmux.wait(lambda s: re.search(r"^42$", s, re.M), 10, "the REPL's answer")
    # the window size reaches the pty at attach, and again on SIGWINCH
    tmux.command("import os; print('size', os.get_terminal_size())")
    tmux.wait_text("size os.terminal_size(columns=120, lines=40)")
    tmux.resize(100, 30)
    tmux.command("print('size', os.get_terminal_size())")
    tmux.wait_text("size os.terminal_size(columns=100, lines=30)")
    # Ctrl-C is the instance's (KeyboardInterrupt), not the attacher's
    tmux.type("while True: pass")
    tmux.send("Enter", "Enter")
    tmux.send("C-c")
    tmux.wait_text("KeyboardInterrupt")
    tmux.wait(lambda s: last_row(s) == ">>>", 10, "the prompt after KeyboardInterrupt")
    tmux.send("C-]")
    assert attach_exit(tmux) == 0
    assert "detached from Py.0; it runs on" in tmux.screen()
    assert_terminal_sane(tmux)
    st = node.service("Py")["instances"][0]
    assert st["state"] == "running" and st["pid"] == pid and pid_alive(pid)
    # with a pty, typed input is echoed into the log
    # (the line may start with the prompt readline drew before, when the window size came at
    # attach and it redrew: only the end is the typed line)
    node.wait_log(lambda r: r.get("service") == "Py" and r.get("text", "").rstrip().endswith(">>> 6 * 7"), 10,
                  "the echoed input line in the log")
    node.wait_node_line(r"Py\.0 attached from pid \d+ on /dev/pts/")
    node.wait_node_line(r"Py\.0 detached")


def test_attach_reaches_a_pdb_breakpoint(project, node, tmux):
    attach(tmux, project, "Dbg.0")
    tmux.wait_text("(Pdb)")
    tmux.command("p x + 1")
    tmux.wait(lambda s: re.search(r"^42$", s, re.M), 10, "pdb's answer")
    tmux.command("c")
    tmux.wait_text("after 42")
    tmux.send("C-]")
    assert attach_exit(tmux) == 0
    assert_terminal_sane(tmux)
    node.wait_log(lambda r: r.get("service") == "Dbg" and "after 42" in r.get("text", ""), 10, "the output in the log")


def test_a_second_attacher_is_told_who_holds_it(project, node, tmux):
    first = attach(tmux, project, "Py.0")
    r = project.cli("attach", "Py.0", timeout=15)
    assert r.returncode == 1, r
    line = r.stderr.strip()
    assert re.fullmatch(rf"devnode: attach: Py\.0 is attached already, from pid {first} on /dev/pts/\d+: "
                        r"detach there \(Ctrl-\]\) first", line), line
    # the first session is untouched
    tmux.command("print('still', 'here')")
    tmux.wait_text("still here")
    tmux.send("C-]")
    assert attach_exit(tmux) == 0
    assert_terminal_sane(tmux)


def test_the_process_exit_and_a_signal_end_attach_and_restore_the_terminal(project, node, tmux):
    pid = pid_of(node, "Py")
    attach(tmux, project, "Py.0")
    tmux.command("raise SystemExit(3)")
    assert attach_exit(tmux) == 0
    assert re.search(rf"Py\.0 \(pid {pid}\) exited with status 3; detached", tmux.screen()), tmux.screen()
    assert_terminal_sane(tmux)
    # it restarts (restart: always); the next attach is to the new process, and SIGTERM ends it
    new = wait_for(lambda: (p := pid_of(node, "Py")) != pid and p, 15, "Py.0 to restart")
    tmux.command("clear")
    tmux.wait_prompt()
    attacher = attach(tmux, project, "Py.0")
    assert f"pid {new}" in tmux.screen()
    os.kill(attacher, signal.SIGTERM)
    assert attach_exit(tmux) == 130
    assert "detached on SIGTERM from Py.0; it runs on" in tmux.screen()
    assert_terminal_sane(tmux)
    assert pid_alive(new)


def test_stdin_pipe_forwards_lines(project, node, tmux):
    pid = pid_of(node, "Lines")
    attach(tmux, project, "Lines.0")
    tmux.command("hello there")
    tmux.wait(lambda s: re.search(r"^got hello there$", s, re.M), 10, "the worker's answer")
    tmux.send("C-]")
    assert attach_exit(tmux) == 0
    assert_terminal_sane(tmux)
    assert pid_of(node, "Lines") == pid and pid_alive(pid)
    node.wait_log(lambda r: r.get("service") == "Lines" and r.get("text") == "got hello there", 10, "the line in the log")


def test_attach_without_stdin_or_tty_says_how_to_enable_it(project, node):
    r = project.cli("attach", "Plain.0", timeout=15)
    assert r.returncode == 2, r
    assert r.stderr.strip() == (f"devnode: attach: Plain has no terminal to attach to: add `tty: true` (pdb, "
                                f"breakpoint(), a REPL) or `stdin: true` (a pipe) to Plain in {project.config_path}, "
                                "then start the node again")
    r = project.cli("attach", "Py.4", timeout=15)
    assert r.returncode == 2 and "Py has no instance 4 (it has Py.0 to Py.0)" in r.stderr, r
    r = project.cli("attach", timeout=15)
    assert r.returncode == 2 and "name an instance" in r.stderr, r


def test_the_dashboard_attaches_to_the_selected_instance_with_a(project, tmux):
    project.write("instances:\n  Py:\n    command: exec python3 -q -i\n    tty: true\n"
                  "  Plain:\n    command: exec sleep 1000\n")
    node = project.up()
    pid = node.wait_running("Py", 1)[0]["pid"]
    start_tui(tmux, project)
    tmux.send("Tab", "Home", "a")
    tmux.wait_text("attached to Py")
    tmux.wait(lambda s: last_row(s) == ">>>", 10, "the REPL's prompt")
    tmux.command("6 * 7")
    tmux.wait(lambda s: re.search(r"^42$", s, re.M), 10, "the REPL's answer")
    tmux.send("C-]")
    tmux.wait(lambda s: s.startswith(" devnode ") and "detached; it runs on" in s, 10, "the dashboard back")
    assert table(tmux.screen())["Py"][0] == "running"
    # a service without a terminal: the dashboard stays and says how to enable it
    tmux.send("End", "a")
    tmux.wait(lambda s: s.startswith(" devnode ") and "Plain has no terminal to attach to" in s, 10,
              "the hint in the dashboard")
    tmux.send("q")
    m = tmux.wait(lambda s: re.search(r"tui-exit=(\d+)", s), 15, "devnode tui to exit")
    assert m.group(1) == "0"
    assert_terminal_sane(tmux)
    assert node.service("Py")["instances"][0]["pid"] == pid and pid_alive(pid)


def test_an_attacher_that_died_without_detaching_holds_nothing(project, node, tmux):
    first = attach(tmux, project, "Py.0")
    os.kill(first, signal.SIGKILL)  # no detach reaches the node
    tmux.wait(lambda s: "attach-exit=137" in s, 10, "the shell to see attach killed")
    out = project.dir / "second.txt"
    with open(out, "wb") as f:
        second = subprocess.Popen([str(DEVNODE), "attach", "-c", str(project.config_path), "Py.0"],
                                  stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, env=base_env())
    try:
        wait_for(lambda: "attached to Py.0" in out.read_text(), 10, "the second attach to be accepted")
        second.send_signal(signal.SIGTERM)
        assert second.wait(10) == 130
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    assert "detached on SIGTERM from Py.0; it runs on" in out.read_text()
    node.wait_node_line(rf"Py\.0 attached from pid {second.pid}$")
