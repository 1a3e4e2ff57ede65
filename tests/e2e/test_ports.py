"""PORT for every instance, and a word when a shared socket's connections wait for nobody
(issue 15, item 3). Services without sockets get foreman's PORT: a block of 100 per service
from port_base (5000), +1 per instance; a service with sockets gets its first TCP socket's
port; an `env: PORT` of the user wins. The workers here only print what they were given."""
import http.client
import re
import socket
import subprocess
import threading
import time

from conftest import DEVNODE, PYTHON, ROOT, marked_pids, wait_for

PRINTS_PORT = 'echo "port=$PORT"; exec sleep 1000'


def two_socketless(extra="", env_b=""):
    return f"""{extra}
instances:
    A:
        command: {PRINTS_PORT}
        numprocesses: 2
    B:
        command: {PRINTS_PORT}
        numprocesses: 2
{env_b}
"""


def printed_ports(node, service, count):
    """{index: PORT text} once every instance of `service` has printed its PORT."""
    def collect():
        # The log file also holds earlier runs of the project: read this node's lines only,
        # those after its own "node PID up" line.
        records = node.records()
        start = max((i for i, r in enumerate(records)
                     if r.get("stream") == "node" and r["text"].startswith(f"node {node.pid} up")), default=None)
        if start is None:
            return None
        got = {r["instance"]: r["text"].split("=", 1)[1] for r in records[start:]
               if r.get("service") == service and r["text"].startswith("port=")}
        return got if len(got) == count else None
    return wait_for(collect, 15, f"{count} instances of {service} to print their PORT")


def status_ports(node, service):
    return [i["port"] for i in node.service(service)["instances"]]


def test_socketless_services_get_a_block_of_ports_each(project):
    node = project.write(two_socketless()).up()
    assert printed_ports(node, "A", 2) == {0: "5000", 1: "5001"}
    assert printed_ports(node, "B", 2) == {0: "5100", 1: "5101"}
    assert status_ports(node, "A") == [5000, 5001]
    assert status_ports(node, "B") == [5100, 5101]
    text = node.cli("status", check=True).stdout
    header = next(l for l in text.splitlines() if l.startswith("INSTANCE"))
    assert header.split()[:4] == ["INSTANCE", "STATE", "PID", "PORT"], header
    rows = {l.split()[0]: l.split()[3] for l in text.splitlines() if l.startswith(("A.", "B."))}
    assert rows == {"A.0": "5000", "A.1": "5001", "B.0": "5100", "B.1": "5101"}, text
    # Scaling up stays in the block; the other service's ports never move.
    assert node.cli("scale", "A", "3").returncode == 0
    assert printed_ports(node, "A", 3)[2] == "5002"
    assert status_ports(node, "B") == [5100, 5101]
    check = project.cli("check", check=True).stdout
    assert "      PORT 5000-5001 (block 5000-5099)\n" in check
    assert "      PORT 5100-5101 (block 5100-5199)\n" in check


def test_port_base_from_the_file_and_from_up(project):
    project.write(two_socketless(extra="port_base: 7000"))
    check = project.cli("check", check=True).stdout
    assert "      PORT 7100-7101 (block 7100-7199)\n" in check
    check = project.cli("check", "--port-base", "8000", check=True).stdout
    assert "      PORT 8000-8001 (block 8000-8099)\n" in check
    node = project.up("--port-base", "8000")
    assert printed_ports(node, "A", 2) == {0: "8000", 1: "8001"}
    assert printed_ports(node, "B", 2) == {0: "8100", 1: "8101"}
    node.stop()
    node = project.up()
    assert printed_ports(node, "B", 2) == {0: "7100", 1: "7101"}
    assert status_ports(node, "A") == [7000, 7001]


def test_env_port_of_the_user_wins(project):
    env_b = "        env: {PORT: '9123'}\n"
    node = project.write(two_socketless(env_b=env_b)).up()
    assert printed_ports(node, "B", 2) == {0: "9123", 1: "9123"}
    assert printed_ports(node, "A", 2) == {0: "5000", 1: "5001"}
    assert status_ports(node, "B") == [9123, 9123]
    check = project.cli("check", check=True).stdout
    assert "      PORT 9123 (its env: PORT)\n" in check


def test_a_service_with_a_socket_keeps_the_sockets_port(project):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = project.write(f"""
instances:
    Web:
        command: {PRINTS_PORT}
    Other:
        command: {PRINTS_PORT}
sockets:
    Web: {{port: {port}}}
""").up()
    assert printed_ports(node, "Web", 1) == {0: str(port)}
    assert printed_ports(node, "Other", 1) == {0: "5100"}  # blocks go by position, Web keeps its own
    assert status_ports(node, "Web") == [port]


def test_a_port_that_falls_on_a_socket_is_refused_by_check_and_up(project):
    project.write("""instances:
    A:
        command: exec sleep 1000
    B:
        command: exec sleep 1000
        numprocesses: 2
sockets:
    Web: {port: 5101}
""")
    want = (f"devnode: {project.config_path}:4:5: instances.B: PORT 5101 of B.1 is the port of sockets.Web "
            "(line 8), which the node holds: a worker that binds $PORT would fail with "
            "\"Address already in use\" (change port_base, or give B an env: PORT)\n")
    r = project.cli("check")
    assert (r.returncode, r.stderr, r.stdout) == (2, want, "")
    r = subprocess.run([str(DEVNODE), "up", "--no-tui", "-c", str(project.config_path)], cwd=project.dir,
                       env=project.node_env(), capture_output=True, text=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stderr) == (2, want)
    assert marked_pids(project.marker) == []
    assert project.cli("check", "--port-base", "6000").returncode == 0

    project.write("""instances:
    A:
        command: exec sleep 1000
        env: {PORT: 5101}
sockets:
    Web: {port: 5101}
""")
    r = project.cli("check")
    assert r.returncode == 2
    assert r.stderr == (f"devnode: {project.config_path}:4:21: instances.A.env.PORT: PORT 5101 is the port of "
                        "sockets.Web (line 6), which the node holds: a worker that binds $PORT would fail with "
                        "\"Address already in use\"\n")


# ---------------------------------------------------------------- a shared socket nobody takes

# Holds the socket (fd 3) without accepting until a file `go` appears, then accepts everything.
LATE_ACCEPTOR = """
import os, socket, time
listener = socket.socket(fileno=3)
while not os.path.exists("go"):
    time.sleep(0.05)
while True:
    conn, _ = listener.accept()
    conn.close()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def socket_status(node, name):
    return next(s for s in node.status()["node"]["sockets"] if s["name"] == name)


def test_connections_nobody_accepts_are_reported_once_until_they_move(project):
    port = free_port()
    node = project.write(f"""
instances:
    Web:
        command: {PYTHON} late_acceptor.py
        numprocesses: 2
sockets:
    Web: {{port: {port}}}
""", {"late_acceptor.py": LATE_ACCEPTOR}).up()
    node.wait_running("Web", 2)
    assert socket_status(node, "Web")["warning"] is None
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(12)]
    try:
        want = (f"Web: 12 connections waiting on 127.0.0.1:{port}, none accepted for 5 s: "
                "do the workers use the socket?")
        line = node.wait_node_line(re.escape(want), timeout=20)
        assert line["level"] == "warning"
        sock = wait_for(lambda: (lambda s: s if s["warning"] and "for 7 s" in s["warning"] else None)(
            socket_status(node, "Web")), 10, "the warning to have lasted 7 s")
        assert sock["waiting"] == 12
        assert sock["warning"] == want.replace("for 5 s", "for 7 s")
        text = node.cli("status", check=True).stdout
        assert f"socket Web on 127.0.0.1:{port}\n  warning: Web: 12 connections waiting on 127.0.0.1:{port}, " \
               "none accepted for " in text, text
        assert len(node.node_lines("none accepted")) == 1, "said once, not per sample"

        (project.dir / "go").touch()
        node.wait_node_line(re.escape(f"Web: connections on 127.0.0.1:{port} are being accepted again"),
                            timeout=10, after_seq=line["seq"])
        sock = socket_status(node, "Web")
        assert (sock["waiting"], sock["warning"]) == (0, None)
        assert "warning:" not in node.cli("status", check=True).stdout
    finally:
        for c in clients:
            c.close()


def test_a_socket_no_service_takes_says_so(project):
    port = free_port()
    node = project.write(f"""
instances:
    Worker:
        command: exec sleep 1000
sockets:
    Spare: {{port: {port}}}
""").up()
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        node.wait_node_line(re.escape(
            f"Spare: 3 connections waiting on 127.0.0.1:{port}, none accepted for 5 s: no service takes the "
            "socket (name a service Spare, list it in `sockets:` or use $(socket.Spare.fd))"), timeout=20)
    finally:
        for c in clients:
            c.close()


def test_a_busy_web_service_is_not_reported(project):
    port = free_port()
    node = project.write(f"""
instances:
    Web:
        command: {ROOT / "build" / "examples" / "web"}
        numprocesses: 2
sockets:
    Web: {{port: {port}}}
""").up()
    node.wait_running("Web", 2)
    # Eight seconds of load: more than the 5 s a stalled queue needs to be reported.
    done = load(port, threads=8, seconds=8)
    assert done["ok"] > 100 and not done["failures"], done
    assert node.node_lines("none accepted") == []
    assert socket_status(node, "Web")["warning"] is None


def load(port, threads, seconds):
    """Requests on fresh connections from `threads` clients for `seconds`."""
    deadline = time.monotonic() + seconds
    result = {"ok": 0, "failures": []}
    lock = threading.Lock()

    def run():
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/pid", headers={"Connection": "close"})
                status = conn.getresponse().status
                conn.close()
                with lock:
                    if status == 200:
                        result["ok"] += 1
                    else:
                        result["failures"].append(status)
            except OSError as exc:
                with lock:
                    result["failures"].append(repr(exc))
    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 10)
    return result
