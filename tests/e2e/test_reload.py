"""`devnode reload` and SIGHUP (docs/supervision.md "Reload"): the node reads .lymph.yml and
the env files again and applies the difference: new services start, removed ones stop, a
changed command or environment rolls that service, a changed numprocesses scales it, and
everything else keeps its processes (pids observed through `status --json`). A config that
fails `check` changes nothing and the exact error comes back."""
import os
import signal
import socket

from conftest import pid_alive, proc_environ, wait_for

BEFORE = """\
instances:
    Keep:
        command: exec sleep 1000
        numprocesses: 2
    Gone:
        command: exec sleep 1001
    Cmd:
        command: exec sleep 1002
    Scaled:
        command: exec sleep 1003
    EnvSvc:
        command: exec sleep 1004
        env_file: [svc.env]
    Runtime:
        command: exec sleep 1005
"""

AFTER = """\
instances:
    Keep:
        command: exec sleep 1000
        numprocesses: 2
    Cmd:
        command: exec sleep 2002
    Scaled:
        command: exec sleep 1003
        numprocesses: 3
    EnvSvc:
        command: exec sleep 1004
        env_file: [svc.env]
    Runtime:
        command: exec sleep 1005
    New:
        command: exec sleep 1006
"""


def instances(node, name, status=None):
    return node.service(name, status)["instances"]


def pids(node, name, status=None):
    return [i["pid"] for i in instances(node, name, status)]


def ports(node, name):
    return [i["port"] for i in instances(node, name)]


def replaced(node, name, old_pids, count):
    """Waits until `name` runs `count` instances, none of them one of old_pids."""
    def check():
        insts = node.wait_running(name, count)
        now = [i["pid"] for i in insts]
        return now if not set(now) & set(old_pids) else None
    return wait_for(check, 15, lambda: f"{name} to be replaced: {instances(node, name)}")


def test_reload_applies_the_diff_and_keeps_untouched_pids(project):
    project.write(BEFORE, {"svc.env": "X=1\n"})
    node = project.up()
    for name, n in [("Keep", 2), ("Gone", 1), ("Cmd", 1), ("Scaled", 1), ("EnvSvc", 1), ("Runtime", 1)]:
        node.wait_running(name, n)
    assert node.cli("scale", "Runtime", "3").returncode == 0
    node.wait_running("Runtime", 3)
    st = node.status()
    keep, runtime = pids(node, "Keep", st), pids(node, "Runtime", st)
    gone, cmd, scaled, envsvc = (pids(node, n, st) for n in ("Gone", "Cmd", "Scaled", "EnvSvc"))
    keep_ports = ports(node, "Keep")

    project.write(AFTER, {"svc.env": "X=2\n"})
    r = node.cli("reload")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "Cmd: rolled (command changed)",
        "Scaled: scaled 1\u21923",
        "EnvSvc: rolled (env changed)",
        "New: started",
        "Gone: stopped",
        "2 services unchanged",
    ], r.stdout

    new_cmd = replaced(node, "Cmd", cmd, 1)
    assert instances(node, "Cmd")[0]["command"] == "exec sleep 2002"
    new_env = replaced(node, "EnvSvc", envsvc, 1)
    assert proc_environ(new_env[0]).get("X") == "2"
    assert pids(node, "Scaled")[:1] == scaled and len(node.wait_running("Scaled", 3)) == 3
    node.wait_running("New", 1)
    wait_for(lambda: not pid_alive(gone[0]), 15, "the removed service's process to stop")
    st = node.status()
    assert "Gone" not in [s["name"] for s in st["services"]]
    # Untouched: same processes, same PORTs; the count set by `scale` stays.
    assert pids(node, "Keep", st) == keep and ports(node, "Keep") == keep_ports
    assert pids(node, "Runtime", st) == runtime and node.service("Runtime", st)["desired"] == 3
    assert all(pid_alive(p) for p in keep + runtime)
    assert node.wait_node_line(r"^reload \(devnode reload\): Cmd: rolled \(command changed\)$")
    node.stop()


def test_reload_without_changes_touches_nothing(project):
    project.write(BEFORE, {"svc.env": "X=1\n"})
    node = project.up()
    node.wait_running("Keep", 2)
    before = {s["name"]: [i["pid"] for i in s["instances"]] for s in node.status()["services"]}
    r = node.cli("reload")
    assert (r.returncode, r.stdout) == (0, "6 services unchanged\n"), r
    after = {s["name"]: [i["pid"] for i in s["instances"]] for s in node.status()["services"]}
    assert after == before
    node.stop()


def test_a_runtime_scale_is_replaced_when_numprocesses_changes(project):
    project.write("instances:\n    Svc:\n        command: exec sleep 1000\n")
    node = project.up()
    node.wait_running("Svc", 1)
    node.cli("scale", "Svc", "3", check=True)
    node.wait_running("Svc", 3)
    project.write("instances:\n    Svc:\n        command: exec sleep 1000\n        numprocesses: 2\n")
    r = node.cli("reload")
    assert r.stdout == "Svc: scaled 1\u21922\n", r
    node.wait_running("Svc", 2)
    node.stop()


def test_dotenv_change_rolls_the_services(project):
    project.write("instances:\n    A:\n        command: exec sleep 1000\n", {".env": "GREETING=hello\n"})
    node = project.up()
    old = pids(node, "A") if node.wait_running("A", 1) else None
    project.write("instances:\n    A:\n        command: exec sleep 1000\n", {".env": "GREETING=bonjour\n"})
    r = node.cli("reload")
    assert r.stdout == "A: rolled (env changed)\n", r
    new = replaced(node, "A", old, 1)
    assert proc_environ(new[0]).get("GREETING") == "bonjour"
    node.stop()


def test_broken_config_changes_nothing_and_says_why(project):
    project.write(BEFORE, {"svc.env": "X=1\n"})
    node = project.up()
    node.wait_running("Keep", 2)
    before = node.status()
    project.write(BEFORE.replace("numprocesses: 2", "numprocesses: lots") + "    New:\n        command: x\n")
    check = project.cli("check")
    assert check.returncode == 2
    expected = check.stderr.splitlines()[0]
    assert expected.startswith(f"devnode: {project.config_path}:4:"), expected
    r = node.cli("reload")
    assert r.returncode == 2 and r.stdout == "", r
    assert r.stderr == expected + "\n", (r.stderr, expected)
    after = node.status()
    assert [(s["name"], [i["pid"] for i in s["instances"]]) for s in after["services"]] == \
        [(s["name"], [i["pid"] for i in s["instances"]]) for s in before["services"]]
    line = node.wait_node_line(r"^reload \(devnode reload\) refused, nothing changed: ")
    assert line["text"].endswith(expected[len("devnode: "):])
    assert node.alive()
    node.stop()


def test_interpolation_uses_the_nodes_environment(project):
    config = "instances:\n    Svc:\n        command: exec sleep $(env.NAP)\n"
    project.write(config)
    node = project.up(env=project.node_env(NAP="1000"))
    pid = node.wait_running("Svc", 1)[0]["pid"]
    # The calling shell says otherwise: the node's own environment wins.
    r = project.cli("reload", env={**os.environ, "NAP": "2000"})
    assert (r.returncode, r.stdout) == (0, "1 service unchanged\n"), r
    assert pids(node, "Svc") == [pid]
    node.stop()


QUIET = "    Quiet:\n        command: exec sleep 1000\n"
OTHER = "    Other:\n        port: 0\n"  # kept as it is: its fd stays


def test_a_moved_socket_is_bound_and_its_service_rolled_onto_it(project):
    from test_sockets import free_port, get, web_config
    old_port, new_port = free_port(), free_port()
    project.write(web_config(old_port, n=2, extra=QUIET, socket_extra=OTHER))
    node = project.up()
    old = pids(node, "Web") if node.wait_running("Web", 2) else None
    quiet = node.wait_running("Quiet", 1)[0]["pid"]
    assert get("/pid", old_port)[0] == 200
    other = [s["port"] for s in node.status()["node"]["sockets"] if s["name"] == "Other"]
    project.write(web_config(new_port, n=2, extra=QUIET, socket_extra=OTHER))
    r = node.cli("reload")
    assert (r.returncode, r.stdout) == (0, "Web: rolled (sockets changed)\n1 service unchanged\n"), r
    new = replaced(node, "Web", old, 2)
    status, body, _ = get("/pid", new_port)
    assert status == 200 and int(body) in new
    # The old address closed with the last old worker; the untouched service kept its process.
    wait_for(lambda: not any(pid_alive(p) for p in old), 15, "the old workers to stop")
    try:
        get("/pid", old_port, timeout=2)
        raise AssertionError(f"port {old_port} still answers after the move")
    except ConnectionRefusedError:
        pass
    assert pids(node, "Quiet") == [quiet]
    st = node.status()
    assert [s["address"] for s in st["node"]["sockets"] if s["name"] == "Web"] == [f"127.0.0.1:{new_port}"], st
    assert [s["port"] for s in st["node"]["sockets"] if s["name"] == "Other"] == other  # port 0: picked once
    node.stop()


def test_a_socket_that_cannot_be_bound_changes_nothing(project):
    from test_sockets import free_port, web_config
    port = free_port()
    project.write(web_config(port, n=1))
    node = project.up()
    pid = node.wait_running("Web", 1)[0]["pid"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        project.write(web_config(busy, n=1))
        r = node.cli("reload")
    assert r.returncode == 2 and r.stderr.startswith(f"devnode: {project.config_path}:"), r
    assert f"127.0.0.1:{busy}" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert pids(node, "Web") == [pid]
    node.stop()


def test_sighup_reloads(project):
    project.write("instances:\n    A:\n        command: exec sleep 1000\n")
    node = project.up()
    a = node.wait_running("A", 1)[0]["pid"]
    project.write("instances:\n    A:\n        command: exec sleep 1000\n    B:\n        command: exec sleep 1001\n")
    os.kill(node.pid, signal.SIGHUP)
    node.wait_running("B", 1)
    assert node.alive() and pids(node, "A") == [a]
    node.wait_node_line(r"^reload \(SIGHUP\): B: started$")
    # A broken config on SIGHUP: logged, the node goes on.
    project.write("instances:\n    A: [\n")
    os.kill(node.pid, signal.SIGHUP)
    node.wait_node_line(r"^reload \(SIGHUP\) refused, nothing changed: .*\.lymph\.yml:\d+:\d+: ")
    assert node.alive() and pids(node, "A") == [a]
    node.stop()


def test_sighup_from_a_closed_terminal_still_stops_the_node(project):
    """The kernel sends SIGHUP when the node's terminal goes away (the window closed): that
    is no reload request, and the node stops as it always did."""
    import pty
    from conftest import DEVNODE, marked_pids
    project.write("instances:\n    Svc:\n        command: exec sleep 1000\n")
    env = project.node_env()
    pid, master = pty.fork()
    if pid == 0:  # the child: session leader with the pty as its controlling terminal
        os.chdir(project.dir)
        os.execve(str(DEVNODE), [str(DEVNODE), "up", "--no-tui"], env)
    exited = []
    try:
        def running():
            try:
                os.read(master, 65536)  # keep the terminal drained
            except OSError:
                pass
            st = project.cli("status", "--json")
            return st.returncode == 0 and '"state":"running"' in st.stdout.replace(" ", "")
        wait_for(running, 15, "the node on a terminal to run Svc")
        worker = marked_pids(project.marker)
        assert worker
        os.close(master)  # the terminal hangs up: SIGHUP to the node

        def gone():
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                exited.append(status)
            return done
        wait_for(gone, 15, "the node to stop when its terminal went away")
        assert os.waitstatus_to_exitcode(exited[0]) == 0
        wait_for(lambda: not any(pid_alive(p) for p in worker), 15, "its worker to stop")
        log = (project.run_dir / "logs" / "devnode.jsonl").read_text()
        assert "SIGHUP: the terminal is gone: stopping all instances" in log
    finally:
        if not exited:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def test_watch_config_reloads_when_the_files_change(project):
    project.write("instances:\n    A:\n        command: exec sleep 1000\n")
    node = project.up("--watch-config")
    a = node.wait_running("A", 1)[0]["pid"]
    project.write("instances:\n    A:\n        command: exec sleep 1000\n    B:\n        command: exec sleep 1001\n")
    node.wait_running("B", 1)
    assert pids(node, "A") == [a]
    node.wait_node_line(r"^\.lymph\.yml changed: reloading$")
    node.wait_node_line(r"^reload \(--watch-config\): B: started$")
    # A .env that did not exist when the node started is watched too: every service rolls.
    (project.dir / ".env").write_text("GREETING=hi\n")
    new = replaced(node, "A", [a], 1)
    assert proc_environ(new[0]).get("GREETING") == "hi"
    # A broken save changes nothing; the next good one applies.
    project.write("instances:\n    A: [\n")
    node.wait_node_line(r"^reload \(--watch-config\) refused, nothing changed: ")
    assert node.alive() and pids(node, "A") == new
    project.write("instances:\n    A:\n        command: exec sleep 1000\n")
    wait_for(lambda: "B" not in [s["name"] for s in node.status()["services"]], 15, "B to be removed")
    assert pids(node, "A") == new
    node.stop()


def test_added_services_start_in_depends_on_order(project):
    project.write("instances:\n    A:\n        command: exec sleep 1000\n")
    node = project.up()
    a = node.wait_running("A", 1)[0]["pid"]
    # Listed first and depending on another new one: the file's order is not the start order.
    project.write("instances:\n"
                  "    Api:\n        command: exec sleep 1001\n        depends_on: [Db]\n"
                  "    Db:\n        command: exec sleep 1002\n        ready: {delay: 1s}\n"
                  "    A:\n        command: exec sleep 1000\n")
    r = node.cli("reload")
    assert r.stdout == "Api: started\nDb: started\n1 service unchanged\n", r
    node.wait_running("Api", 1)
    db_ready = node.wait_node_line(r"^Db\.0 ready")
    api_started = node.wait_node_line(r"^Api\.0 started")
    assert api_started["seq"] > db_ready["seq"], (db_ready, api_started)
    assert [s["name"] for s in node.status()["services"]] == ["Api", "Db", "A"]
    assert pids(node, "A") == [a]
    # The node's own commands find them where the config has them.
    assert node.cli("stop", "Db").returncode == 0
    wait_for(lambda: instances(node, "Db")[0]["pid"] == 0, 15, "Db to stop")
    assert node.cli("start", "Db").returncode == 0
    node.wait_running("Db", 1)
    node.stop()


def test_reload_loads_as_up_did(project):
    """-m and --port-base of `up` hold for the reloaded file too: nothing changes."""
    project.write("instances:\n    A:\n        command: exec sleep 1000\n    B:\n        command: exec sleep 1001\n")
    node = project.up("-m", "A=2,B=1", "--port-base", "6000")
    insts = node.wait_running("A", 2)
    assert [i["port"] for i in insts] == [6000, 6001]
    r = node.cli("reload")
    assert (r.returncode, r.stdout) == (0, "2 services unchanged\n"), r
    project.write("instances:\n    A:\n        command: exec sleep 1000\n    B:\n        command: exec sleep 1001\n"
                  "    C:\n        command: exec sleep 1002\n")
    r = node.cli("reload")
    assert r.stdout == "C: started\n2 services unchanged\n", r  # -m gives C none: it starts none
    assert node.service("C")["desired"] == 0 and node.service("A")["desired"] == 2
    node.stop()
