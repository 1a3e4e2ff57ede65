"""Health probes (issue 20 item 3): readiness by http and exec, liveness by http, tcp and
exec restarting a hung or stopped worker through the restart policy, and the refusal of a
probe of a shared socket's port. Real servers (tests/e2e/probeserver.py), real signals."""
import os
import re
import signal
import socket
import subprocess
import threading

from conftest import DEVNODE, ROOT, Node, pid_alive, wait_for

SERVER = ROOT / "tests" / "e2e" / "probeserver.py"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def web(port, body, fail_first="0"):
    """One service Web.0 serving probeserver.py on PORT=port (port_base puts it there)."""
    return (f"port_base: {port}\n"
            "instances:\n"
            "    Web:\n"
            f"        command: exec /usr/bin/python3 {SERVER}\n"
            f"        env: {{FAIL_FIRST: '{fail_first}'}}\n" + body)


def worker_line(node, pattern, after_seq=0, pid=None):
    return node.wait_log(lambda r: r.get("stream") == "stdout" and r.get("service") == "Web"
                         and (pid is None or r.get("pid") == pid) and re.search(pattern, r["text"]),
                         what=f"Web line /{pattern}/", after_seq=after_seq)


def health_ok(node):
    inst = node.service("Web")["instances"][0]
    return inst if inst["state"] == "running" and (inst.get("health") or {}).get("result") == "ok" else None


def test_http_readiness_waits_for_a_2xx(project):
    port = free_port()
    project.write(web(port, "        ready: {http: /healthz}\n", fail_first="2"))
    node = project.up()
    ready = node.wait_node_line(r"^Web\.0 ready \(its http probe answered HTTP 200\) after \d+\.\d\ds$")
    # The two 503s came first and did not count.
    refused = worker_line(node, r"^GET /healthz -> 503 \(request 2\)$")
    assert refused["seq"] < ready["seq"]
    inst = node.service("Web")["instances"][0]
    assert inst["ready"] is True and inst["state"] == "running" and inst["health"] is None, inst


def test_exec_readiness_runs_in_the_instance_environment(project):
    project.write("instances:\n"
                  "    Job:\n"
                  "        command: sleep 0.3 && touch up.$DEVNODE_INSTANCE && exec sleep 1000\n"
                  "        numprocesses: 2\n"
                  "        ready: {exec: 'test -f up.$DEVNODE_INSTANCE'}\n")
    node = project.up()
    for i in (0, 1):
        node.wait_node_line(rf"^Job\.{i} ready \(its exec probe answered exit status 0\) after \d+\.\d\ds$")
    node.wait_running("Job", 2)
    assert (project.dir / "up.0").exists() and (project.dir / "up.1").exists()


def test_http_liveness_replaces_a_stopped_server(project):
    port = free_port()
    # stop_timeout 60s: were SIGCONT not sent, the stopped server could not act on its TERM and
    # the test would time out waiting for its "got SIGTERM" line.
    project.write(web(port, "        stop_timeout: 60s\n"
                            "        live: {http: /healthz, interval: 300ms, timeout: 250ms, failures: 2}\n"))
    node = project.up()
    inst = wait_for(lambda: health_ok(node), 15, "Web.0 to be probed healthy")
    assert inst["health"] == {"probe": f"GET http://127.0.0.1:{port}/healthz", "result": "ok", "failures": 0,
                              "failures_max": 2, "not_counted": 0, "last_error": None}, inst
    text = node.cli("status").stdout
    assert f"liveness ok: GET http://127.0.0.1:{port}/healthz" in text, text
    old = inst["pid"]

    os.kill(old, signal.SIGSTOP)
    first = node.wait_node_line(re.escape(f"Web.0 liveness: GET http://127.0.0.1:{port}/healthz timed out "
                                          "after 250ms (1 of 2)") + "$")
    assert first["level"] == "warning"
    last = node.wait_node_line(re.escape(f"Web.0 liveness: GET http://127.0.0.1:{port}/healthz timed out "
                                         "after 250ms (2 of 2), restarting") + "$")
    assert last["level"] == "error"
    # SIGCONT came after TERM: the stopped server ran its handler and exited on its own.
    worker_line(node, r"^got SIGTERM, exiting$", pid=old)
    node.wait_node_line(r"^Web\.0 failed its liveness probe \(exited with status 0\) after \d+\.\ds; "
                        r"restarting in 100 ms$", after_seq=last["seq"])
    inst = wait_for(lambda: health_ok(node), 15, "the new Web.0 to be probed healthy")
    assert inst["pid"] != old and inst["restarts"] == 1, inst
    assert not pid_alive(old)
    assert not node.node_lines("sending KILL")


def test_tcp_liveness_restarts_a_server_that_closed_its_port(project):
    port = free_port()
    project.write(web(port, "        live: {tcp: $PORT, interval: 300ms, timeout: 250ms, failures: 2}\n"))
    node = project.up()
    inst = wait_for(lambda: health_ok(node), 15, "Web.0 to be probed healthy")
    assert inst["health"]["probe"] == f"TCP 127.0.0.1:{port}", inst
    old = inst["pid"]
    os.kill(old, signal.SIGUSR1)  # closes its listening socket, keeps running
    worker_line(node, r"^closed the port$", pid=old)
    node.wait_node_line(re.escape(f"Web.0 liveness: TCP 127.0.0.1:{port} connection refused (2 of 2), "
                                  "restarting") + "$")
    inst = wait_for(lambda: health_ok(node), 15, "the new Web.0 to be probed healthy")
    assert inst["pid"] != old and inst["restarts"] == 1, inst


def test_liveness_failures_count_toward_max_restarts(project):
    port = free_port()
    project.write(web(port, "        max_restarts: 1\n"
                            "        live: {http: /healthz, interval: 200ms, timeout: 500ms, failures: 1}\n",
                      fail_first="always"))
    node = project.up()
    why = "gave up after 1 restarts within 60s (max_restarts): failed its liveness probe (exited with status 0)"

    def failed():
        inst = node.service("Web")["instances"][0]
        return inst if inst["state"] == "failed" else None
    inst = wait_for(failed, 20, "Web.0 to be failed")
    assert inst["failure"] == why, inst
    assert inst["restarts"] == 1 and inst["pid"] == 0, inst
    assert inst["health"]["last_error"] == "HTTP 503", inst
    # The node's log may lag its status: wait for both lines rather than read once.
    restarting = re.escape(f"Web.0 liveness: GET http://127.0.0.1:{port}/healthz HTTP 503 (1 of 1), restarting") + "$"
    wait_for(lambda: len(node.node_lines(restarting)) >= 2, 10, "both 'restarting' lines in the node's log")
    assert len(node.node_lines(restarting)) == 2, node.node_lines(restarting)
    node.wait_node_line(re.escape(why + "; failed until `devnode restart Web`") + "$")


SHARED = """\
sockets:
    Web: {port: PORT}
instances:
    Web:
        command: exec sleep 1000
"""

OWN_HINT = ("whichever worker accepts answers it, so the probe cannot judge this instance; probe an address of "
            "the instance's own (a service without a shared socket gets its own $PORT) or use exec, notify or log "
            "(sockets.md#probes)")


def test_a_probe_of_a_shared_port_is_refused(project):
    port = free_port()
    cases = [
        ("        live: {http: /healthz}\n", "6:22",
         f"instances.Web.live.http: $PORT of Web is the port of its shared socket Web: {OWN_HINT}"),
        (f"        live: {{tcp: {port}}}\n", "6:21",
         f"instances.Web.live.tcp: port {port} is the node's shared socket Web: {OWN_HINT}"),
        (f"        ready: {{http: 'http://localhost:{port}/up'}}\n", "6:23",
         f"instances.Web.ready.http: port {port} is the node's shared socket Web: {OWN_HINT}"),
    ]
    for body, where, message in cases:
        project.write(SHARED.replace("PORT", str(port)) + body)
        expected = f"devnode: {project.config_path}:{where}: {message}"
        r = project.cli("check")
        assert r.returncode == 2 and r.stderr.strip() == expected, (r.returncode, r.stderr)
        node = project.up(wait=False)
        assert node.wait_exit() == 2
        assert node.output().strip().splitlines()[-1] == expected, node.output()
    # An exec probe judges the instance it runs for: accepted.
    project.write(SHARED.replace("PORT", str(port)) + "        live: {exec: 'kill -0 $PPID'}\n")
    assert project.cli("check").returncode == 0


def test_check_shows_the_probes(project):
    project.write("instances:\n"
                  "    Api:\n"
                  "        command: ./api\n"
                  "        ready: {http: /healthz, timeout: 10s}\n"
                  "        live: {tcp: 'db:5432', interval: 2s, failures: 1}\n"
                  "    Job:\n"
                  "        command: ./job\n"
                  "        ready: {exec: 'test -f up'}\n"
                  "        live: {http: 'http://[::1]:$PORT/up'}\n")
    r = project.cli("check")
    assert r.returncode == 0, r.stderr
    for line in ("      ready: GET http://127.0.0.1:$PORT/healthz passes (2xx or 3xx), timeout 10.0s\n",
                 "      live: tcp connect to db:5432, every 2s, timeout 1s; restarted after 1 miss in a row\n",
                 "      ready: `test -f up` exits 0, timeout 30.0s\n",
                 "      live: GET http://[::1]:$PORT/up passes (2xx or 3xx), every 5s, timeout 1s; "
                 "restarted after 3 misses in a row\n"):
        assert line in r.stdout, r.stdout


# Prints more than the node's printer holds and its pipe takes, then sleeps: with nobody reading
# the node's stdout it stays blocked in write(2) while the node holds its output back.
NOISY_PY = r"""
import sys, time
for i in range(200000):
    sys.stdout.write("noise %06d %s\n" % (i, "n" * 50))
sys.stdout.flush()
while True:
    time.sleep(60)
"""


def blocked_on_pipe(pid):
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return "pipe_write" in f.read()
    except OSError:
        return False


def test_misses_while_the_node_holds_output_back_are_not_counted(project):
    # `false` always misses; were the misses counted, the third would restart the worker.
    project.write("instances:\n"
                  "    Noisy:\n"
                  "        command: exec /usr/bin/python3 noisy.py\n"
                  "        live: {exec: 'false', interval: 300ms, failures: 3}\n", {"noisy.py": NOISY_PY})
    r, w = os.pipe()
    err_path = project.dir / "node-err.txt"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([str(DEVNODE), "up", "--no-tui", "--lossless"], cwd=project.dir,
                                env=project.node_env(), stdin=subprocess.DEVNULL, stdout=w, stderr=err,
                                start_new_session=True)
    os.close(w)
    node = Node(project, proc, err_path, project.marker)
    project.nodes.append(node)
    drain = None
    try:
        node.wait_ready()
        inst = wait_for(lambda: node.service("Noisy")["instances"][0], 10, "Noisy.0")
        pid = inst["pid"]
        wait_for(lambda: blocked_on_pipe(pid), 30, "Noisy.0 blocked writing its pipe")

        def held_misses():
            i = node.service("Noisy")["instances"][0]
            return i if i["health"]["not_counted"] >= 4 else None
        inst = wait_for(held_misses, 15, "misses not counted while the output is held")
        assert inst["pid"] == pid and inst["restarts"] == 0 and inst["health"]["failures"] < 3, inst
        assert inst["health"]["last_error"] == "exit status 1", inst
        node.wait_node_line(r"^Noisy\.0 liveness: exec `false` exit status 1; not counted: the node holds its "
                            r"output back")

        # Once the output flows again, the misses count: the third restarts it.
        drain = threading.Thread(target=lambda: [None for _ in iter(lambda: os.read(r, 1 << 16), b"")],
                                 daemon=True)
        drain.start()
        node.wait_node_line(r"^Noisy\.0 liveness: exec `false` exit status 1 \(3 of 3\), restarting$", timeout=30)
    finally:
        node.terminate()
        if drain:
            drain.join(10)
        os.close(r)
