"""Supervision: what workers get, how they are replaced, backed off, stopped and never leaked."""
import os
import re
import signal
import stat
import time

from conftest import (PYTHON, describe_pids, marked_pids, pid_alive, proc_children, proc_cmdline,
                      proc_environ, wait_for)

INSTANCE_KEYS = {"index", "state", "pid", "restarts", "uptime_ms", "cpu_percent", "rss_kib",
                 "last_exit", "failure", "command"}
NODE_KEYS = {"pid", "endpoint", "config", "run_dir", "uptime_ms", "cpu_percent", "rss_kib", "stopping",
             "malformed_messages"}


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def test_status_json_two_services(project):
    project.write("""\
instances:
    Greeting:
        command: exec sleep 1000
        numprocesses: 3
    Echo:
        command: echo started; exec sleep 1001
        numprocesses: 3
""")
    node = project.up()
    node.wait_running("Greeting", 3)
    node.wait_running("Echo", 3)
    st = node.status()

    assert set(st) >= {"node", "services"}
    n = st["node"]
    assert set(n) >= NODE_KEYS, NODE_KEYS - set(n)
    assert n["pid"] == node.pid
    endpoint = (project.run_dir / "endpoint").read_text().strip()
    assert n["endpoint"] == endpoint and endpoint.startswith("ipc://")
    assert n["config"] == str(project.config_path)
    assert n["run_dir"] == str(project.run_dir)
    assert is_int(n["uptime_ms"]) and n["uptime_ms"] >= 0
    assert is_number(n["cpu_percent"]) and n["cpu_percent"] >= 0
    assert is_int(n["rss_kib"]) and n["rss_kib"] > 0
    assert n["stopping"] is False
    assert n["malformed_messages"] == 0

    assert [s["name"] for s in st["services"]] == ["Greeting", "Echo"]
    pids = []
    for svc, command in (("Greeting", "exec sleep 1000"), ("Echo", "echo started; exec sleep 1001")):
        s = node.service(svc, st)
        assert set(s) >= {"name", "desired", "running", "instances"}
        assert s["desired"] == 3 and s["running"] == 3
        assert [i["index"] for i in s["instances"]] == [0, 1, 2]
        for inst in s["instances"]:
            assert set(inst) >= INSTANCE_KEYS, inst
            assert inst["state"] == "running"
            assert is_int(inst["pid"]) and inst["pid"] > 0
            assert pid_alive(inst["pid"]), f"{svc}.{inst['index']} pid {inst['pid']} is not alive"
            assert os.getpgid(inst["pid"]) == inst["pid"], "a worker must lead its own process group"
            assert inst["restarts"] == 0
            assert is_int(inst["uptime_ms"]) and inst["uptime_ms"] >= 0
            assert is_number(inst["cpu_percent"]) and inst["cpu_percent"] >= 0
            assert is_int(inst["rss_kib"]) and inst["rss_kib"] >= 0
            assert inst["last_exit"] is None
            assert inst["failure"] is None
            assert inst["command"] == command
            pids.append(inst["pid"])
    assert len(set(pids)) == 6

    # The run dir: 0700, lock holding the node's pid, the endpoint file.
    assert stat.S_IMODE(project.run_dir.stat().st_mode) == 0o700
    assert (project.run_dir / "node.lock").read_text().strip() == str(node.pid)

    # The human table names every instance.
    r = node.cli("status")
    assert r.returncode == 0
    for svc in ("Greeting", "Echo"):
        for i in range(3):
            assert f"{svc}.{i}" in r.stdout
    node.stop()


def test_worker_environment_cwd_and_fds(project):
    (project.dir / "sub").mkdir()
    project.write("""\
instances:
    Env:
        command: exec sleep 1000
        numprocesses: 2
        cwd: sub
        env:
            GREETING_LANG: en
            EMPTY: ""
            YESNO: yes
""")
    node = project.up()
    insts = node.wait_running("Env", 2)
    endpoint = (project.run_dir / "endpoint").read_text().strip()
    for inst in insts:
        pid = inst["pid"]
        env = proc_environ(pid)
        expected = {
            "DEVNODE_SERVICE": "Env",
            "DEVNODE_INSTANCE": str(inst["index"]),
            "DEVNODE_ENDPOINT": endpoint,
            "DEVNODE_RUN_DIR": str(project.run_dir),
            "LYMPH_SERVICE_NAME": "Env",
            "LYMPH_NODE": endpoint,
            "LYMPH_NODE_IP": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            "GREETING_LANG": "en",
            "EMPTY": "",
            "YESNO": "yes",
            "DEVNODE_TEST_MARKER": project.marker,  # the node's own environment is passed on
        }
        for k, v in expected.items():
            assert env.get(k) == v, f"worker {pid}: {k}={env.get(k)!r}, expected {v!r}"
        assert os.readlink(f"/proc/{pid}/cwd") == str(project.dir / "sub")
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
        assert fds == [0, 1, 2], f"worker {pid} has extra fds: " + ", ".join(
            f"{fd}->{os.readlink(f'/proc/{pid}/fd/{fd}')}" for fd in fds)
        assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
        out, err = os.readlink(f"/proc/{pid}/fd/1"), os.readlink(f"/proc/{pid}/fd/2")
        assert out.startswith("pipe:") and err.startswith("pipe:") and out != err
        assert os.getpgid(pid) == pid
    node.stop()


def test_up_from_elsewhere_with_c_and_vars(project, tmp_path_factory):
    """-c: the run dir sits beside the config and workers start in its dir; --vars feeds env."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    project.write("""\
instances:
    Env:
        command: exec sleep 1000
        env: {DB: "$(var.db.host):$(var.db.port)", HOME_COPY: $(env.DEVNODE_E2E_HOME)}
""", {"vars.yml": "db: {host: h1, port: 5432}\n"})
    node = project.up("-c", project.config_path, "--vars", project.dir / "vars.yml", cwd=elsewhere,
                      env=project.node_env(DEVNODE_E2E_HOME="/home/x"))
    (inst,) = node.wait_running("Env", 1)
    env = proc_environ(inst["pid"])
    assert env["DB"] == "h1:5432" and env["HOME_COPY"] == "/home/x"
    assert os.readlink(f"/proc/{inst['pid']}/cwd") == str(project.dir)
    assert (project.run_dir / "node.lock").exists()
    assert not (elsewhere / ".devnode").exists()
    node.stop()


def test_worker_sees_its_environment_from_inside(project):
    """The same, as a Python service sees it (what `print(os.environ)` would show)."""
    project.write(f"""\
instances:
    Py:
        command: exec {PYTHON} -c 'import os,sys; print("ENV", os.environ["DEVNODE_SERVICE"], os.environ["DEVNODE_INSTANCE"], os.environ["PYTHONUNBUFFERED"], sys.stdin.read() == "", sorted(os.listdir("/proc/self/fd"))[:4]); sys.stdout.flush(); os.execv("/bin/sleep", ["sleep", "1000"])'
        numprocesses: 1
""")
    node = project.up()
    rec = node.wait_log(lambda r: r["service"] == "Py" and r["text"].startswith("ENV "))
    # listdir's own directory fd shows up as 3; nothing beyond it.
    assert rec["text"] == "ENV Py 0 1 True ['0', '1', '2', '3']", rec
    assert rec["instance"] == 0 and rec["stream"] == "stdout"
    node.stop()


def test_simple_command_replaces_the_shell(project):
    project.write("""\
instances:
    Simple:
        command: sleep 1000
""")
    node = project.up()
    (inst,) = node.wait_running("Simple", 1)
    assert proc_cmdline(inst["pid"]) == "sleep 1000", proc_cmdline(inst["pid"])
    assert proc_children(inst["pid"]) == []
    node.stop()


def test_kill9_worker_is_replaced_and_its_children_die(project):
    project.write("""\
instances:
    Sleeper:
        command: exec sleep 1000
        numprocesses: 2
    Tree:
        command: sleep 1001 & sleep 1002 & wait
""")
    node = project.up()
    before = node.wait_running("Sleeper", 2)
    (tree,) = node.wait_running("Tree", 1)
    victim = before[1]["pid"]
    os.kill(victim, signal.SIGKILL)

    def replaced():
        s = node.service("Sleeper")
        inst = s["instances"][1]
        return inst if inst["state"] == "running" and inst["pid"] not in (0, victim) else None
    inst = wait_for(replaced, 10, "Sleeper.1 to be replaced")
    assert inst["restarts"] == 1
    assert inst["last_exit"] == {"code": None, "signal": "KILL"}
    assert pid_alive(inst["pid"]) and os.getpgid(inst["pid"]) == inst["pid"]
    # The other instance is untouched.
    other = node.service("Sleeper")["instances"][0]
    assert other["pid"] == before[0]["pid"] and other["restarts"] == 0
    node.wait_node_line(r"^Sleeper\.1 killed by SIGKILL \(signal 9\) after \d+\.\ds; restarting in 100 ms$")
    node.wait_node_line(rf"^Sleeper\.1 started \(pid {inst['pid']}\)$")

    # A worker's children die with it: kill the Tree shell, its two sleeps go too.
    kids = wait_for(lambda: proc_children(tree["pid"]) if len(proc_children(tree["pid"])) == 2 else None,
                    10, "Tree's two sleeps")
    os.kill(tree["pid"], signal.SIGKILL)
    wait_for(lambda: not any(pid_alive(k) for k in kids), 10,
             lambda: f"Tree's children to die with it: {describe_pids([k for k in kids if pid_alive(k)])}")
    wait_for(lambda: node.service("Tree")["instances"][0]["restarts"] == 1
             and node.service("Tree")["running"] == 1, 10, "Tree to be replaced")
    node.stop()


def test_crash_loop_backs_off_and_unrunnable_commands_fail(project):
    project.write("""\
instances:
    Crash:
        command: echo crashing >&2; exit 1
    Missing:
        command: ./devnode-e2e-no-such-command --flag
    NotExec:
        command: cd . && ./not-executable.sh
    Never:
        command: exit 0
        restart: never
    OnFailureOk:
        command: exit 0
        restart: on-failure
    OnFailureBad:
        command: exit 3
        restart: on-failure
    Stable:
        command: exec sleep 1000
    NoDir:
        command: cd .. && rmdir gone && exit 1
        cwd: gone
""", {"not-executable.sh": "#!/bin/sh\necho hi\n"})
    # What `up` refuses up front (a missing cwd or PATH program) can still happen later: the
    # program is a relative path that may be built later, the list hides its program, and the
    # cwd is there at the start and gone when NoDir restarts.
    (project.dir / "gone").mkdir()
    node = project.up()
    node.wait_node_line(r"^Crash\.0 started \(pid \d+\)$")
    t0 = time.monotonic()
    # Let a 5 s window pass: we are measuring a rate, so this is waiting, not synchronising.
    time.sleep(max(0.0, 5.0 - (time.monotonic() - t0)))
    window_end = node.records()[-1]["seq"]
    recs = [r for r in node.records() if r["seq"] <= window_end]

    def count(pattern):
        return sum(1 for r in recs if r["stream"] == "node" and re.search(pattern, r["text"]))

    starts = count(r"^Crash\.0 started ")
    # 0, 0.1, 0.3, 0.7, 1.5, 3.1 s (then 6.3): 6 starts; a loop without backoff gives hundreds.
    assert 4 <= starts <= 8, f"{starts} starts of Crash.0 in 5 s"
    delays = [int(m) for r in recs if r["stream"] == "node"
              for m in re.findall(r"^Crash\.0 exited with status 1 after \d+\.\ds; restarting in (\d+) ms$", r["text"])]
    assert delays[:5] == [100, 200, 400, 800, 1600], delays
    crash_lines = [r for r in recs if r["service"] == "Crash"]
    assert crash_lines and all(r["stream"] == "stderr" and r["text"] == "crashing" for r in crash_lines)

    # 127 and 126: reported once, never restarted.
    assert count(r"^Missing\.0 started ") == 1
    assert count(r"^Missing\.0 cannot run: command not found \(exit status 127\); not restarting "
                 r"\(fix it, then `devnode restart Missing`\)$") == 1
    assert count(r"^NotExec\.0 started ") == 1
    assert count(r"^NotExec\.0 cannot run: ") == 1
    assert count(r"^Never\.0 started ") == 1
    assert count(r"^Never\.0 exited with status 0 after \d+\.\ds; not restarting \(restart: never\)$") == 1
    assert count(r"^OnFailureOk\.0 started ") == 1
    assert count(r"^OnFailureBad\.0 started ") >= 4

    st = node.status()
    crash = node.service("Crash", st)["instances"][0]
    assert crash["state"] in ("backoff", "starting", "running")
    assert crash["restarts"] >= 4 and crash["last_exit"] == {"code": 1, "signal": None}
    missing = node.service("Missing", st)
    assert missing["running"] == 0 and missing["desired"] == 1
    m = missing["instances"][0]
    assert m["state"] == "failed" and m["restarts"] == 0 and not m["pid"]
    assert m["last_exit"] == {"code": 127, "signal": None}
    assert m["failure"] == "command not found (exit status 127)"
    n = node.service("NotExec", st)["instances"][0]
    assert n["state"] == "failed" and n["last_exit"] == {"code": 126, "signal": None}
    assert "126" in n["failure"]
    for name in ("Never", "OnFailureOk"):
        e = node.service(name, st)["instances"][0]
        # exited 0 and kept down: completed (issue 20), not down
        assert e["state"] == "completed" and e["last_exit"] == {"code": 0, "signal": None} and e["restarts"] == 0
    bad = node.service("OnFailureBad", st)["instances"][0]
    assert bad["restarts"] >= 3 and bad["last_exit"] == {"code": 3, "signal": None}
    stable = node.service("Stable", st)["instances"][0]
    assert stable["state"] == "running" and stable["restarts"] == 0
    nodir = node.service("NoDir", st)["instances"][0]
    assert nodir["state"] == "failed" and not nodir["pid"]
    assert nodir["failure"] == f"cannot change to directory {project.dir}/gone: No such file or directory"
    assert count(r"^NoDir\.0 cannot run: cannot change to directory ") == 1

    # Stopping while Crash waits in backoff: the node exits at once and starts nothing more.
    t0 = time.monotonic()
    node.stop()
    assert time.monotonic() - t0 < 3
    stopping = node.wait_node_line(r"^devnode stop: stopping all instances")
    late = [r["text"] for r in node.records() if r["seq"] > stopping["seq"] and " started (pid " in r["text"]]
    assert late == [], late


def test_backoff_resets_after_a_stable_run_and_late_127_restarts(project):
    project.write("""\
instances:
    Flaky:
        command: /bin/sh flaky.sh
    Late127:
        command: sleep 2.5; exit 127
""", {"flaky.sh": """\
n=$(cat runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > runs
echo "run $n"
case $n in
  1|2|3) exit 1;;
  4) sleep 10.5; exit 1;;
  *) exec sleep 1000;;
esac
"""})
    node = project.up()
    rx = r"^Flaky\.0 exited with status 1 after (\d+\.\d)s; restarting in (\d+) ms$"
    node.wait_log(lambda r: r["service"] == "Flaky" and r["text"] == "run 5", timeout=25)
    got = [re.match(rx, r["text"]).groups() for r in node.node_lines(rx)]
    assert [d for _, d in got] == ["100", "200", "400", "100"], got
    assert float(got[3][0]) >= 10.0, got
    (flaky,) = node.wait_running("Flaky", 1)
    assert flaky["restarts"] == 4
    # exit 127 more than 2 s after the start is an ordinary failure: restarted with backoff.
    late = node.node_lines(r"^Late127\.0 exited with status 127 after 2\.\ds; restarting in \d+ ms$")
    assert len(late) >= 2, [r["text"] for r in node.node_lines("Late127")]
    assert not node.node_lines(r"^Late127\.0 cannot run")
    assert node.service("Late127")["instances"][0]["state"] != "failed"
    node.stop()


def test_python_output_is_unbuffered(project):
    project.write(f"""\
instances:
    Py:
        command: exec {PYTHON} -c 'import time; print("tick"); time.sleep(1000)'
""")
    node = project.up()
    rec = node.wait_log(lambda r: r["service"] == "Py" and r["text"] == "tick", timeout=10,
                        what="print() without flush to arrive (PYTHONUNBUFFERED=1)")
    assert rec["stream"] == "stdout"
    node.stop()


def test_worker_closing_its_output_keeps_running(project):
    project.write("""\
instances:
    Closer:
        command: echo closing; exec >&- 2>&-; exec sleep 1000
    Holder:
        command: setsid sleep 1003 & echo bye; exit 0
        restart: never
""")
    node = project.up()
    node.wait_log(lambda r: r["service"] == "Closer" and r["text"] == "closing")
    (closer,) = node.wait_running("Closer", 1)
    # A detached child still holding the pipe does not hide its worker's exit.
    node.wait_node_line(r"^Holder\.0 exited with status 0 after \d+\.\ds; not restarting \(restart: never\)$")
    wait_for(lambda: node.service("Holder")["instances"][0]["state"] == "completed", 5,
             "Holder to be completed")
    # Output closed is not exit: the worker stays running.
    insts = node.wait_running("Closer", 1)
    assert insts[0]["pid"] == closer["pid"] and insts[0]["restarts"] == 0
    os.kill(closer["pid"], signal.SIGKILL)
    wait_for(lambda: node.service("Closer")["instances"][0]["restarts"] == 1
             and node.service("Closer")["running"] == 1, 10, "Closer to be replaced")
    node.stop()
    wait_for(lambda: not marked_pids(project.marker), 5,
             lambda: f"nothing left after stop: {describe_pids(marked_pids(project.marker))}")


def test_stop_timeout_kills_a_worker_that_ignores_term(project):
    project.write(f"""\
instances:
    Stubborn:
        command: trap '' TERM; while :; do sleep 0.1; done
        stop_timeout: 1
    StubbornPy:
        command: exec {PYTHON} -c 'import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print("ready", flush=True); time.sleep(1000)'
        stop_timeout: 1
    StubbornMs:
        command: trap '' TERM; while :; do sleep 0.1; done
        stop_timeout: 500ms
    Quick:
        command: exec sleep 1000
""")
    node = project.up()
    stubborn = node.wait_running("Stubborn", 1)[0]["pid"]
    py = node.wait_running("StubbornPy", 1)[0]["pid"]
    node.wait_log(lambda r: r["service"] == "StubbornPy" and r["text"] == "ready")
    t0 = time.monotonic()
    r, code = node.stop()
    elapsed = time.monotonic() - t0
    assert code == 0, node.describe()
    assert re.fullmatch(rf"node {node.pid} stopped 4 instances of 4 services in \d\.\d s \(3 killed after stop_timeout: "
                        r"StubbornMs\.0, (Stubborn\.0, StubbornPy\.0|StubbornPy\.0, Stubborn\.0)\)\n", r.stdout), r.stdout
    assert 0.9 <= elapsed < 5, f"stop took {elapsed:.2f}s with stop_timeout 1"
    texts = [x["text"] for x in node.node_lines()]
    for name in ("Stubborn", "StubbornPy"):
        assert f"{name}.0 did not stop within 1.0s after TERM; sending KILL" in texts, texts
        assert f"{name}.0 stopped (killed by SIGKILL (signal 9))" in texts, texts
    assert "StubbornMs.0 did not stop within 0.5s after TERM; sending KILL" in texts, texts
    assert "Quick.0 stopped (killed by SIGTERM (signal 15))" in texts
    assert "Quick.0 did not stop within" not in " ".join(texts)
    assert f"node {node.pid} {texts[-1]}\n" == r.stdout, "the summary is the node's last line"
    assert not pid_alive(stubborn) and not pid_alive(py)
    assert marked_pids(project.marker) == [], describe_pids(marked_pids(project.marker))


def test_stop_signal_is_configurable(project):
    project.write("""\
instances:
    Polite:
        command: trap 'echo got INT; exit 0' INT; trap '' TERM; while :; do sleep 0.1; done
        stop_signal: SIGINT
        stop_timeout: 20
    Hup:
        command: trap 'exit 7' HUP; trap '' TERM; while :; do sleep 0.1; done
        stop_signal: 1
        stop_timeout: 20
    Brutal:
        command: trap '' TERM; while :; do sleep 0.1; done
        stop_signal: kill
        stop_timeout: 20
""")
    node = project.up()
    for svc in ("Polite", "Hup", "Brutal"):
        node.wait_running(svc, 1)
    t0 = time.monotonic()
    _, code = node.stop()
    assert code == 0
    assert time.monotonic() - t0 < 10, "the configured signals should stop them well before the 20 s timeout"
    texts = [x["text"] for x in node.node_lines()]
    assert "Polite.0 stopped (exited with status 0)" in texts, texts
    assert "Hup.0 stopped (exited with status 7)" in texts, texts
    assert "Brutal.0 stopped (killed by SIGKILL (signal 9))" in texts, texts
    assert not any("did not stop within" in t for t in texts), texts
    assert any(r["service"] == "Polite" and r["text"] == "got INT" for r in node.records())


def test_node_sigkill_leaves_no_process_behind(project):
    project.write("""\
instances:
    Plain:
        command: exec sleep 1000
        numprocesses: 2
    Tree:
        command: sleep 1000 & sleep 1000 & wait
        numprocesses: 2
    Stubborn:
        command: trap '' TERM HUP INT; sleep 1000 & while :; do sleep 0.1; done
    Nested:
        command: sh -c 'sleep 1000 & sh -c "sleep 1000 & wait" & wait'
""")
    node = project.up()
    workers = []
    for svc, n in (("Plain", 2), ("Tree", 2), ("Stubborn", 1), ("Nested", 1)):
        workers += [i["pid"] for i in node.wait_running(svc, n)]
    # Wait until every grandchild exists: 2 + 2*3 + 2(+1 ticking sleep) + 5 workers' trees.
    def full_tree():
        pids = marked_pids(project.marker)
        sleeps = [p for p in pids if proc_cmdline(p) == "sleep 1000"]
        return pids if len(sleeps) >= 2 + 4 + 1 + 2 else None
    before = wait_for(full_tree, 10, lambda: f"all workers' children; have {describe_pids(marked_pids(project.marker))}")
    assert set(workers) <= set(before)
    assert node.pid in before

    os.kill(node.pid, signal.SIGKILL)
    node.wait_exit(10)
    wait_for(lambda: not marked_pids(project.marker), 10,
             lambda: f"every worker, grandchild and the guardian to die; left: {describe_pids(marked_pids(project.marker))}")


def test_detached_daemon_is_cleaned_up_on_stop(project):
    project.write(f"""\
instances:
    Daemonizer:
        command: exec {PYTHON} daemonize.py
        restart: never
    Plain:
        command: exec sleep 1000
""", {"daemonize.py": """\
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        devnull = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.execv("/bin/sleep", ["sleep", "1001"])
    os._exit(0)
os.wait()
print("daemon started", flush=True)
"""})
    node = project.up()
    node.wait_node_line(r"^Daemonizer\.0 exited with status 0 ")

    def daemon():
        found = [p for p in marked_pids(project.marker) if proc_cmdline(p) == "sleep 1001"]
        return found[0] if found else None
    pid = wait_for(daemon, 10, "the daemon to be running")
    assert os.getsid(pid) != os.getsid(node.pid), "the daemon should be in a session of its own"
    assert node.service("Daemonizer")["instances"][0]["state"] == "completed"
    _, code = node.stop()
    assert code == 0
    wait_for(lambda: not marked_pids(project.marker), 5,
             lambda: f"nothing with the marker after stop; left: {describe_pids(marked_pids(project.marker))}")


def test_status_reports_cpu_and_memory(project):
    project.write(f"""\
instances:
    Busy:
        command: exec sh -c 'while :; do :; done'
    Idle:
        command: exec sleep 1000
    Mem:
        command: exec {PYTHON} -c 'import time; x = bytearray(64 << 20); x[::4096] = b"x" * len(x[::4096]); print("filled", flush=True); time.sleep(1000)'
""")
    node = project.up()
    node.wait_log(lambda r: r["service"] == "Mem" and r["text"] == "filled")

    def sampled():
        st = node.status()
        busy = node.service("Busy", st)["instances"][0]
        mem = node.service("Mem", st)["instances"][0]
        return st if busy["cpu_percent"] > 20 and mem["rss_kib"] > 60 * 1024 else None
    st = wait_for(sampled, 10, lambda: f"cpu/rss samples: {node.status()['services']}")
    idle = node.service("Idle", st)["instances"][0]
    assert idle["cpu_percent"] < 20 and 0 < idle["rss_kib"] < 20 * 1024, idle
    assert node.service("Busy", st)["instances"][0]["cpu_percent"] <= 105
    assert st["node"]["rss_kib"] > 0
    node.stop()


def test_node_sigkill_with_many_instances(project):
    """More process groups than the guardian's first table holds."""
    project.write("""\
instances:
    Many:
        command: sleep 1000 & wait
        numprocesses: 150
""")
    node = project.up()
    node.wait_running("Many", 150, timeout=30)
    wait_for(lambda: len([p for p in marked_pids(project.marker) if proc_cmdline(p) == "sleep 1000"]) == 150,
             10, "150 grandchildren")
    os.kill(node.pid, signal.SIGKILL)
    node.wait_exit(10)
    wait_for(lambda: not marked_pids(project.marker), 15,
             lambda: f"all 300 processes to die; left: {len(marked_pids(project.marker))}")
