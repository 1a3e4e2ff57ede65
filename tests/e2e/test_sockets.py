"""Shared listening sockets: bound once by the node, passed to every worker, kept open
through crashes and rolling restarts (issue 3). Load loops are bounded and only ever
target 127.0.0.1 / ::1 / unix sockets made by the test."""
import http.client
import os
import re
import signal
import socket
import threading
import time
from datetime import datetime, timezone

import pytest

from conftest import PYTHON, ROOT, pid_alive, proc_environ, wait_for

WEB = ROOT / "build" / "examples" / "web"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def get(path, port=None, host="127.0.0.1", unix=None, timeout=5):
    """One request on a fresh connection; returns (status, body, headers)."""
    conn = UnixHTTPConnection(unix, timeout) if unix else http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        r = conn.getresponse()
        return r.status, r.read().decode(), dict(r.getheaders())
    finally:
        conn.close()


class Load:
    """A bounded HTTP load on a port: `threads` clients, new connection per request."""

    def __init__(self, port, threads=4, seconds=30.0, parse=int):
        self.port, self.deadline, self.parse = port, time.monotonic() + seconds, parse
        self.ok = 0
        self.failures = []
        self.pids = set()
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        while not self.stop_flag.is_set() and time.monotonic() < self.deadline:
            try:
                status, body, _ = get("/pid", self.port)
                with self.lock:
                    if status == 200:
                        self.ok += 1
                        self.pids.add(self.parse(body))
                    else:
                        self.failures.append(f"status {status}")
            except Exception as e:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.failures.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(10)

    def count(self):
        with self.lock:
            return self.ok


def web_config(port, n=2, extra="", socket_extra=""):
    return f"""
instances:
    Web:
        command: {WEB}
        numprocesses: {n}
        stop_timeout: 5
{extra}
sockets:
    Web:
        port: {port}
{socket_extra}
"""


def test_two_workers_share_one_port_and_both_serve(project):
    port = free_port()
    node = project.write(web_config(port)).up()
    insts = node.wait_running("Web", 2)
    pids = {i["pid"] for i in insts}
    seen = set()
    wait_for(lambda: seen.add(int(get("/pid", port)[1])) or seen == pids, 15,
             lambda: f"both workers {pids} to answer; seen {seen}")
    for inst in insts:
        env = proc_environ(inst["pid"])
        assert env["LISTEN_PID"] == str(inst["pid"])
        assert env["LISTEN_FDS"] == "1"
        assert env["LISTEN_FDNAMES"] == "Web"
        assert env["LYMPH_SHARED_SOCKET_FDS"] == f'{{"{port}": 3}}'
        assert env["PORT"] == str(port)
    status = node.status()
    assert status["node"]["sockets"] == [{"name": "Web", "address": f"127.0.0.1:{port}", "port": port,
                                          "waiting": 0, "warning": None}]
    assert node.service("Web", status)["sockets"] == ["Web"]


def test_only_the_passed_sockets_are_open_in_a_worker(project):
    port = free_port()
    project.write(f"""
instances:
    Web:
        command: sleep 1000
    Other:
        command: sleep 1000
        sockets: [Api]
sockets:
    Web: {{port: {port}}}
    Api: {{port: 0}}
""")
    node = project.up()
    web = node.wait_running("Web", 1)[0]
    other = node.wait_running("Other", 1)[0]
    assert sorted(os.listdir(f"/proc/{web['pid']}/fd"), key=int) == ["0", "1", "2", "3"]
    assert sorted(os.listdir(f"/proc/{other['pid']}/fd"), key=int) == ["0", "1", "2", "3"]
    # fd 3 of each is a listening socket on the port the node bound
    api_port = [s["port"] for s in node.status()["node"]["sockets"] if s["name"] == "Api"][0]
    assert api_port > 0
    env = proc_environ(other["pid"])
    assert env["LISTEN_FDNAMES"] == "Api" and env["PORT"] == str(api_port)


def test_port_in_use_is_a_clear_error_and_nothing_runs(project):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        project.write(f"""
instances:
    Web:
        command: sleep 1000
sockets:
    Web:
        port: {port}
""")
        node = project.up(wait=False)
        assert node.wait_exit() == 2
        out = node.output()
        assert f"{project.config_path}:6: sockets.Web: cannot listen on 127.0.0.1:{port}: Address already in use" in out
        assert f"held by pid {os.getpid()}" in out
        assert "started" not in out
    finally:
        holder.close()


def test_port_zero_picks_a_port_that_serves(project):
    node = project.write(web_config(0, n=1)).up()
    node.wait_running("Web", 1)
    port = node.status()["node"]["sockets"][0]["port"]
    assert port > 0
    assert get("/health", port)[:2] == (200, "ok\n")


def test_unix_socket(project):
    node = project.write(f"""
instances:
    Web:
        command: {WEB}
sockets:
    Web:
        path: run/web.sock
""", files={"run/.keep": ""}).up()
    node.wait_running("Web", 1)
    path = str(project.dir / "run" / "web.sock")
    assert node.status()["node"]["sockets"][0]["address"] == f"unix:{path}"
    status, body, _ = wait_for(lambda: _try(lambda: get("/health", unix=path)), 10, "the unix socket to answer")
    assert (status, body) == (200, "ok\n")


def test_ipv6_loopback(project):
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    node = project.write(web_config(0, n=1, socket_extra='        host: "::1"')).up()
    node.wait_running("Web", 1)
    sock = node.status()["node"]["sockets"][0]
    assert sock["address"] == f"[::1]:{sock['port']}"
    status, body, _ = wait_for(lambda: _try(lambda: get("/health", sock["port"], host="::1")), 10, "::1 to answer")
    assert status == 200


def test_socket_fd_and_port_substitution(project):
    port = free_port()
    node = project.write(f"""
instances:
    Srv:
        command: {WEB} --fd $(socket.Api.fd)
    Echo:
        command: echo fd=$(socket.Api.fd) port=$(socket.Api.port); exec sleep 1000
sockets:
    Api: {{port: {port}}}
""").up()
    node.wait_running("Srv", 1)
    node.wait_log(lambda r: r["service"] == "Echo" and r["text"] == f"fd=3 port={port}")
    assert wait_for(lambda: _try(lambda: get("/health", port)), 10, "the substituted fd to serve")[0] == 200


def test_killed_worker_port_keeps_answering(project):
    port = free_port()
    node = project.write(web_config(port)).up()
    victim = node.wait_running("Web", 2)[0]["pid"]
    with Load(port, threads=2) as load:
        wait_for(lambda: load.count() > 200, 20, "load to get going")
        os.kill(victim, signal.SIGKILL)
        before = load.count()
        wait_for(lambda: load.count() > before + 500, 20, "requests to keep succeeding after the kill")
        insts = node.wait_running("Web", 2)
    assert victim not in {i["pid"] for i in insts}
    # A request that the killed worker had accepted may be cut; nothing else fails.
    assert len(load.failures) <= 2, load.failures[:5]


def test_rolling_restart_under_load_fails_no_request(project):
    port = free_port()
    node = project.write(web_config(port, n=2, extra="        ready: notify")).up()
    old = {i["pid"] for i in node.wait_running("Web", 2)}
    with Load(port, threads=4) as load:
        wait_for(lambda: load.count() > 200, 20, "load to get going")
        for round_ in range(3):
            seq = node.records()[-1]["seq"] if node.records() else 0
            r = node.cli("restart", "Web")
            assert r.returncode == 0, r.stderr
            node.wait_node_line("rolling restart of Web done", timeout=30, after_seq=seq)
        before = load.count()
        wait_for(lambda: load.count() > before + 100, 20, "requests after the last restart")
    new = {i["pid"] for i in node.wait_running("Web", 2)}
    assert not (old & new)
    assert load.failures == [], load.failures[:5]
    # Requests flowed before and after the rolls (the waits above); how many is the
    # machine's business, not a property of the roll.
    assert any("ready (it sent READY=1)" in rec["text"] for rec in node.node_lines("ready"))
    for inst in node.status()["services"][0]["instances"]:
        assert inst["ready"] is True and inst["restarts"] == 3


def test_replacement_that_never_gets_ready_keeps_the_old_process(project):
    port = free_port()
    marker_file = project.dir / "broken"
    # Once `broken` exists, new processes never print the ready line.
    project.write(f"""
instances:
    Web:
        command: /bin/sh -c 'test -e {marker_file} || echo up; exec {WEB}'
        ready: {{log: '^up$', timeout: 1s}}
sockets:
    Web: {{port: {port}}}
""")
    node = project.up()
    old = node.wait_running("Web", 1)[0]["pid"]
    marker_file.write_text("")
    r = node.cli("restart", "Web")
    assert (r.returncode, r.stderr) == (1, "devnode: restart Web: Web.0 was not ready (log) within 1.0s; "
                                           "Web.0 still runs its old process\n"), r
    node.wait_node_line(re.escape("not ready (log) within 1.0s; killing it and keeping pid"), timeout=15)
    node.wait_node_line("rolling restart of Web stopped", timeout=15)
    inst = node.wait_running("Web", 1)[0]
    assert inst["pid"] == old
    assert get("/health", port)[0] == 200


def _try(fn):
    try:
        return fn()
    except OSError:
        return None


# ---------------------------------------------------------------- ready: {tcp: ...}

# The time is taken just before listen(): the probe cannot connect before it.
LISTEN_LATER = ("import socket, time; time.sleep(0.3); s = socket.socket(); "
                "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', {port})); "
                "t = time.time(); s.listen(8); print('listening since %.6f' % t, flush=True); time.sleep(1000)")


def test_tcp_readiness_waits_for_the_port(project):
    port = free_port()
    node = project.write(f"""\
instances:
    Db:
        command: exec {PYTHON} -c "{LISTEN_LATER.format(port=port)}"
        ready: {{tcp: {port}, timeout: 20s}}
""").up()
    rec = node.wait_node_line(r"Db\.0 ready \(its port answered\)")
    listening = node.wait_log(lambda r: r["service"] == "Db" and r["text"].startswith("listening since "))
    # Not by seq: the probe may connect before the node has read the line printed after
    # listen(). By time: ready is stamped after the connect, so after listen() began. The
    # log's time is cut to the microsecond, the printed one rounded to it: 1 us of slack.
    listen_at = float(listening["text"].split()[-1])
    ready_at = datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    assert ready_at >= listen_at - 1e-6, ("ready only once the port listens", rec["time"], listen_at)
    assert node.service("Db")["instances"][0]["ready"] is True


def test_a_tcp_probe_that_hangs_does_not_stall_the_node(project):
    # A listener whose accept queue is full: the kernel drops new SYNs, so a connect to it
    # hangs (retrying for minutes) instead of being refused.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        check = socket.socket()
        check.settimeout(0.5)
        try:
            check.connect(("127.0.0.1", port))
            pytest.skip("this kernel does not leave connects to a full accept queue hanging")
        except socket.timeout:
            pass
        finally:
            check.close()
        node = project.write(f"""\
instances:
    Stuck:
        command: exec sleep 1000
        ready: {{tcp: {port}, timeout: 30s}}
    Other:
        command: exec sleep 1000
""").up()
        node.wait_running("Other", 1)
        # The probe is in flight the whole time; the node must answer as usual meanwhile.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            st = node.service("Stuck")
            assert time.monotonic() - t0 < 2.0, "status took too long: the loop is blocked"
            assert st["instances"][0]["ready"] is False
        _, code = node.stop()
        assert code == 0
    finally:
        for c in fillers:
            c.close()
        srv.close()


# A worker started before `broken` exists ignores TERM and says "up"; one started after it
# never gets ready and dies on TERM.
STUBBORN = ("import os, signal, time; broken = os.path.exists({marker!r}); "
            "signal.signal(signal.SIGTERM, signal.SIG_DFL if broken else signal.SIG_IGN); "
            "print('broken' if broken else 'up', flush=True); time.sleep(1000)")


def test_scaled_away_twice_while_its_old_process_stops_still_kills_it(project):
    # Web.0 is being replaced; scaled to 0, its new process dies at once and its old one
    # ignores TERM. Scaling to 0 again then must not forget that old process: it is killed
    # after stop_timeout and only then is the instance gone.
    marker = project.dir / "broken"
    script = project.dir / "stubborn.py"
    script.write_text(STUBBORN.format(marker=str(marker)))
    project.write(f"""
instances:
    Web:
        command: {PYTHON} {script}
        stop_timeout: 2
        ready: {{log: '^up$', timeout: 60s}}
sockets:
    Web: {{port: {free_port()}}}
""")
    node = project.up()
    old = node.wait_running("Web", 1)[0]["pid"]
    marker.write_text("")
    assert node.cli("restart", "--no-wait", "Web.0").returncode == 0
    node.wait_log(lambda r: r.get("service") == "Web" and r.get("text") == "broken", what="the new process")
    assert node.cli("scale", "--no-wait", "Web", "0").returncode == 0
    node.wait_node_line(r"Web\.0 stopped \(killed by SIGTERM \(signal 15\)\); scaled away")
    assert pid_alive(old)
    assert node.cli("scale", "--no-wait", "Web", "0").returncode == 0
    node.wait_node_line(rf"Web\.0 old process {old} did not stop within 2\.0s; sending KILL")
    wait_for(lambda: not pid_alive(old), 10, f"old process {old} to be killed")
    wait_for(lambda: node.service("Web")["instances"] == [], 10, "Web.0 to be gone")


def test_scaled_up_again_while_its_old_process_stops_starts_again(project):
    # As above, but wanted again before the old process is gone: a new process starts once it is.
    marker = project.dir / "broken"
    script = project.dir / "stubborn.py"
    script.write_text(STUBBORN.format(marker=str(marker)))
    project.write(f"""
instances:
    Web:
        command: {PYTHON} {script}
        stop_timeout: 2
        ready: {{log: '^up$', timeout: 60s}}
sockets:
    Web: {{port: {free_port()}}}
""")
    node = project.up()
    old = node.wait_running("Web", 1)[0]["pid"]
    marker.write_text("")
    assert node.cli("restart", "--no-wait", "Web.0").returncode == 0
    node.wait_log(lambda r: r.get("service") == "Web" and r.get("text") == "broken", what="the new process")
    assert node.cli("scale", "--no-wait", "Web", "0").returncode == 0
    node.wait_node_line(r"Web\.0 stopped \(killed by SIGTERM \(signal 15\)\); scaled away")
    marker.unlink()
    assert node.cli("scale", "--no-wait", "Web", "1").returncode == 0
    new = node.wait_running("Web", 1, timeout=20)[0]["pid"]
    assert new != old and not pid_alive(old)
