"""Starting and stopping the node as a whole: a start that fails leaves nothing behind and
ends at once; what `up` would refuse, `check` refuses first; every signal a user or a tool
like logrotate sends does what docs/supervision.md says; every stop ends with one summary."""
import json
import os
import re
import shutil
import signal
import time

import pytest

from conftest import base_env, marked_pids, pid_alive, wait_for
from test_config_errors import assert_refused, line_col, lock_is_free, run_up

SUMMARY = r"stopped \d+ instances? of \d+ services? in \d+\.\d s"


def check_then_up_refuse(project, config, needle, value, message, occurrence=1):
    """`check` and `up` both refuse with exit 2 and the same one line, naming file:line:col."""
    project.write(config)
    line, col = line_col(config, needle, occurrence, value)
    t0 = time.monotonic()
    result = run_up(project)
    assert time.monotonic() - t0 < 1, "a refused start must end at once"
    assert_refused(project, result, ".lymph.yml", line, col, None, message)
    assert result.stderr == f"devnode: .lymph.yml:{line}:{col}: {message}\n"
    check = project.cli("check", env=base_env())
    assert check.returncode == 2 and check.stdout == ""
    assert check.stderr == f"devnode: {project.config_path}:{line}:{col}: {message}\n"


# ---------------------------------------------------------------- start is all or nothing

def test_unknown_socket_reference_is_refused_by_check_and_up(project):
    """The reported hang: a notify socket watched before the unknown socket was noticed kept
    `up` alive forever, while `check` said ok."""
    config = """\
instances:
    Notified:
        command: touch spawned-$DEVNODE_SERVICE; exec sleep 1000
        ready: notify
    Web:
        command: exec sleep $(socket.Nope.fd)
sockets:
    Api: {port: 0}
"""
    check_then_up_refuse(project, config, "$(socket.Nope", "exec",
                         "instances.Web.command: $(socket.Nope.fd) names no socket under the top-level "
                         "sockets: (defined: Api)")
    # The lock and run dir were released: the next `up` of a fixed config runs.
    project.write(config.replace("$(socket.Nope.fd)", "1000"))
    node = project.up()
    node.wait_running("Web", 1)
    node.stop()


def test_socket_reference_field_must_be_fd_or_port(project):
    config = "instances:\n    Web:\n        command: exec sleep $(socket.Web.pid)\nsockets:\n    Web: {port: 0}\n"
    check_then_up_refuse(project, config, "$(socket.Web", "exec",
                         "instances.Web.command: $(socket.Web.pid): a socket has only .fd and .port")


def test_a_failed_start_undoes_every_step(project):
    """A start-up step that fails after the log, the control socket and the guardian are up
    (here the notify socket: its path is taken by a directory) ends `up` within a second,
    exit 1 (a runtime failure), with no worker or guardian left and the lock released."""
    project.write("instances:\n    Notified:\n        command: exec sleep 1000\n        ready: notify\n")
    blocker = project.run_dir / "notify.sock"
    (blocker / "inside").mkdir(parents=True)
    t0 = time.monotonic()
    result = run_up(project)
    elapsed = time.monotonic() - t0
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stderr == f"devnode: cannot open notify socket {blocker}: Address already in use\n"
    assert elapsed < 1, f"a failed start took {elapsed:.2f}s"
    assert marked_pids(project.marker) == [], "a worker or the guardian was left running"
    assert lock_is_free(project.run_dir)
    assert not (project.run_dir / "endpoint").exists() and not (project.run_dir / "node.sock").exists()
    shutil.rmtree(blocker)
    node = project.up()
    node.wait_node_line(r"^Notified\.0 started ")
    node.stop()


# ---------------------------------------------------------------- what check finds on this machine

def test_missing_cwd_is_refused(project):
    config = "instances:\n    Web:\n        command: exec sleep 1000\n        cwd: /nonexistent-devnode-e2e\n"
    check_then_up_refuse(project, config, "cwd:", "/nonexistent",
                         "instances.Web.cwd: directory /nonexistent-devnode-e2e does not exist")


def test_cwd_that_is_a_file_is_refused(project):
    (project.dir / "afile").write_text("")
    config = "instances:\n    Web:\n        command: exec sleep 1000\n        cwd: afile\n"
    check_then_up_refuse(project, config, "cwd:", "afile",
                         f"instances.Web.cwd: {project.dir}/afile is not a directory")


def test_program_not_in_path_is_refused(project):
    config = "instances:\n    Web:\n        command: cd . && devnode-e2e-no-such-program --flag\n"
    check_then_up_refuse(project, config, "command:", "cd",
                         "instances.Web.command: devnode-e2e-no-such-program: not found in PATH")


def test_missing_absolute_program_is_refused(project):
    config = "instances:\n    Web:\n        command: PORT=1 exec /nonexistent-devnode-e2e/server -v\n"
    check_then_up_refuse(project, config, "command:", "PORT",
                         "instances.Web.command: /nonexistent-devnode-e2e/server: no such file")


def test_program_that_cannot_run_is_refused(project):
    (project.dir / "run.sh").write_text("#!/bin/sh\nexec sleep 1000\n")
    config = "instances:\n    Web:\n        command: ./run.sh\n"
    check_then_up_refuse(project, config, "command:", "./run",
                         "instances.Web.command: ./run.sh: is not executable (chmod +x?)")


def test_service_path_is_where_programs_are_looked_up(project):
    tool = project.dir / "bin" / "devnode-e2e-tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\nexec sleep 1000\n")
    tool.chmod(0o755)
    project.write(f"instances:\n    Tool:\n        command: devnode-e2e-tool\n"
                  f"        env: {{PATH: \"{tool.parent}:/usr/bin:/bin\"}}\n")
    r = project.cli("check")
    assert r.returncode == 0, r.stderr
    assert "warnings:" not in r.stdout


def test_relative_program_not_built_yet_is_a_warning(project):
    config = "instances:\n    Web:\n        command: ./build/server --port 1\n"
    project.write(config)
    line, col = line_col(config, "command:", 1, "./build")
    warning = (f"instances.Web.command: ./build/server does not exist yet in {project.dir}; "
               "up starts it anyway (fine if a build creates it)")
    r = project.cli("check")
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(f"warnings:\n  {project.config_path}:{line}:{col}: {warning}\n"), r.stdout
    node = project.up("-c", ".lymph.yml")
    node.wait_node_line(r"^Web\.0 cannot run: command not found")
    assert f"devnode: warning: .lymph.yml:{line}:{col}: {warning}\n" in node.output()
    node.stop()


# ---------------------------------------------------------------- signals

@pytest.mark.parametrize("sig", [signal.SIGQUIT])  # SIGHUP reloads: test_reload.py
def test_quit_stops_gracefully(project, sig):
    project.write("instances:\n    Svc:\n        command: exec sleep 1000\n")
    node = project.up()
    worker = node.wait_running("Svc", 1)[0]["pid"]
    os.kill(node.pid, sig)
    assert node.wait_exit(15) == 0, node.describe()
    assert not pid_alive(worker)
    texts = [r["text"] for r in node.node_lines()]
    why = "SIGQUIT"
    assert f"{why}: stopping all instances (again to force)" in texts, texts
    assert re.fullmatch(r"stopped 1 instance of 1 service in \d+\.\d s", texts[-1]), texts[-1]
    assert lock_is_free(project.run_dir)
    assert not (project.run_dir / "endpoint").exists() and not (project.run_dir / "node.sock").exists()


COUNTER = """\
import itertools, sys, time
for i in itertools.count():
    print(f"line {i}", flush=True)
    time.sleep(0.001)
"""


def counter_numbers(path):
    recs = [json.loads(l) for l in path.read_text().splitlines() if l]
    return recs, [int(r["text"].split()[1]) for r in recs if r["service"] == "Counter"]


def test_usr1_reopens_the_log_file_without_losing_a_line(project):
    project.write(f"instances:\n    Counter:\n        command: exec /usr/bin/python3 counter.py\n",
                  {"counter.py": COUNTER})
    node = project.up()
    node.wait_log(lambda r: r["service"] == "Counter" and r["text"] == "line 300")
    log = project.run_dir / "logs" / "devnode.jsonl"
    moved = project.run_dir / "logs" / "devnode.jsonl.moved"
    os.rename(log, moved)  # what logrotate does first
    os.kill(node.pid, signal.SIGUSR1)
    wait_for(lambda: log.exists() and "line " in log.read_text().split("SIGUSR1: reopened", 1)[-1]
             and len(log.read_text().splitlines()) > 300, 10, "lines in the reopened log file")
    node.stop()
    old_recs, old = counter_numbers(moved)
    new_recs, new = counter_numbers(log)
    assert new_recs[0]["stream"] == "node" and new_recs[0]["text"] == f"SIGUSR1: reopened {log}"
    assert old and new and old[-1] < new[0], "lines before the signal stay in the moved file"
    both = old + new
    assert both == list(range(len(both))), "a line was lost or written twice"
    assert re.fullmatch(SUMMARY, new_recs[-1]["text"]), "the new file gets the rest of the run"


def test_usr2_is_ignored(project):
    project.write("instances:\n    Svc:\n        command: exec sleep 1000\n")
    node = project.up()
    worker = node.wait_running("Svc", 1)[0]["pid"]
    os.kill(node.pid, signal.SIGUSR2)
    # Signals are handled in order: once USR1's line is there, USR2 has been dealt with.
    os.kill(node.pid, signal.SIGUSR1)
    node.wait_node_line(r"^SIGUSR1: reopened ")
    assert node.alive(), node.describe()
    assert node.wait_running("Svc", 1)[0]["pid"] == worker
    assert not node.node_lines("USR2|stopping")
    node.stop()


# ---------------------------------------------------------------- the stop summary

STUBBORN = """\
instances:
    Quick:
        command: exec sleep 1000
        numprocesses: 2
    Stubborn:
        command: trap '' TERM; while :; do sleep 0.1; done
        stop_timeout: 500ms
"""


def test_ctrl_c_ends_with_one_summary_line(project):
    project.write(STUBBORN)
    node = project.up()
    node.wait_running("Quick", 2)
    node.wait_running("Stubborn", 1)
    os.kill(node.pid, signal.SIGINT)
    assert node.wait_exit(15) == 0, node.describe()
    summary = r"stopped 3 instances of 2 services in 0\.[5-9] s \(1 killed after stop_timeout: Stubborn\.0\)"
    last = node.output().splitlines()[-1]
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} devnode\s+\| " + summary, last), last
    assert re.fullmatch(summary, node.node_lines()[-1]["text"])


def test_stop_prints_the_summary(project):
    project.write(STUBBORN)
    node = project.up()
    node.wait_running("Stubborn", 1)
    r, code = node.stop("--force")
    assert code == 0
    assert re.fullmatch(rf"node {node.pid} stopped 3 instances of 2 services in 0\.\d s \(3 killed when the stop "
                        r"was forced: (Quick\.0|Quick\.1|Stubborn\.0)(, (Quick\.0|Quick\.1|Stubborn\.0)){2}\)\n",
                        r.stdout), r.stdout
    assert r.stdout == f"node {node.pid} {node.node_lines()[-1]['text']}\n"
    assert node.output().splitlines()[-1].endswith(node.node_lines()[-1]["text"])
