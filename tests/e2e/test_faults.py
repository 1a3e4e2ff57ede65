"""Fault injection (issue 7): the node killed mid-stream, floods, a log file that cannot
grow, broken clients, many tail clients, scaling to zero under load, and the node stopped
and continued. Each asserts what a user relies on: nothing left running, no line lost,
the node answering."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import msgpack
import zmq

from conftest import DEVNODE, ROOT, pid_alive, wait_for

WEB = ROOT / "build" / "examples" / "web"
TICKER = "sh -c 'i=0; while :; do echo \"tick $i\"; i=$((i+1)); sleep 0.002; done'"


def ticks_by_pid(node, records=None):
    seen = {}
    for rec in records if records is not None else node.records():
        m = re.fullmatch(r"tick (\d+)", rec.get("text", ""))
        if rec["service"] == "Ticker" and m:
            seen.setdefault(rec["pid"], []).append(int(m.group(1)))
    return seen


def assert_contiguous(seen):
    assert seen, "no ticker lines at all"
    for pid, nums in seen.items():
        assert nums == list(range(len(nums))), f"pid {pid}: a gap or reordering in its numbered lines"


def connect(project):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect((project.run_dir / "endpoint").read_text().strip())
    return s


def request(sock, type_, body, timeout_ms=5000):
    sock.send_multipart([b"1", type_.encode(), msgpack.packb(body)])
    while sock.poll(timeout_ms):
        frames = sock.recv_multipart()
        if frames[1] in (b"event", b"lines"):
            continue
        return frames[1].decode(), msgpack.unpackb(frames[2])
    raise AssertionError(f"no reply to {type_}")


def test_node_sigkilled_mid_stream_leaves_nothing_and_recovers(project):
    project.write(f"""
instances:
    Ticker:
        command: {TICKER}
        numprocesses: 2
    Worker:
        command: sh -c 'sleep 1000 & sleep 1000 & wait'
streams:
    job.#: {{retain_events: 1000}}
""")
    node = project.up()
    node.wait_running("Ticker", 2)
    pub = connect(project)
    for i in range(50):
        assert request(pub, "emit", {"id": i, "type": "job.done", "body": {"i": i}})[0] == "ok"
    # events in flight: a subscriber that never acks holds deliveries when the node dies
    sub = connect(project)
    assert request(sub, "subscribe", {"id": 1, "subscription": "s", "patterns": ["job.#"], "group": "G",
                                      "stream": "job.#", "from": "beginning"})[0] == "ok"
    wait_for(lambda: sum(len(v) for v in ticks_by_pid(node).values()) > 300, 15, "ticker lines")
    node.kill()
    wait_for(lambda: not [p for p in _marked(project) if pid_alive(p)], 10, "every worker to die with the node")
    # the log file is intact up to the kill: every line is whole JSON, no tick missing
    records = [json.loads(line) for line in (project.run_dir / "logs" / "devnode.jsonl").read_text().splitlines()]
    assert_contiguous(ticks_by_pid(node, records))
    # a new node takes over the run dir and still has the 50 retained events
    node2 = project.up()
    node2.wait_running("Ticker", 2)
    r = project.cli("events", "--json", check=True)
    offsets = [json.loads(l)["offset"] for l in r.stdout.splitlines()]
    assert offsets == list(range(50))
    node2.stop()


def _marked(project):
    from conftest import marked_pids
    return marked_pids(project.marker)


def test_ten_megabyte_line_on_stderr(project):
    project.write("""
instances:
    Flood:
        command: /usr/bin/python3 -c "import sys; sys.stderr.write('x' * (10 * 1024 * 1024) + '\\\\n'); sys.stderr.flush(); print('after', flush=True); import time; time.sleep(1000)"
""")
    node = project.up()
    node.wait_log(lambda r: r["service"] == "Flood" and r["text"] == "after", timeout=30)
    recs = [r for r in node.records() if r["service"] == "Flood" and r["stream"] == "stderr"]
    assert sum(len(r["text"]) for r in recs) == 10 * 1024 * 1024
    assert all(len(r["text"]) <= 65536 for r in recs)
    assert [bool(r.get("split")) for r in recs] == [True] * (len(recs) - 1) + [False]
    assert node.status()["services"][0]["running"] == 1


def test_log_file_that_cannot_grow_does_not_stop_supervision(project):
    """A full disk, simulated with RLIMIT_FSIZE on the node: writes fail with EFBIG."""
    project.write(f"""
instances:
    Ticker:
        command: {TICKER}
    Svc:
        command: sleep 1000
""")
    env = project.node_env()
    out = project.dir / "node-out.txt"
    with open(out, "wb") as f:
        proc = subprocess.Popen(["prlimit", "--fsize=300000", str(DEVNODE), "up", "--no-tui"], cwd=project.dir,
                                env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "cannot write" in out.read_text(errors="replace"), 30, "the node to say it cannot write")
        text = out.read_text(errors="replace")
        assert re.search(r"cannot write \S+devnode\.jsonl: File too large; supervising goes on", text), text[-2000:]
        # still supervising: a killed worker is replaced, status answers
        st = json.loads(project.cli("status", "--json", check=True).stdout)
        svc = [s for s in st["services"] if s["name"] == "Svc"][0]["instances"][0]
        os.kill(svc["pid"], signal.SIGKILL)

        def replaced():
            s = json.loads(project.cli("status", "--json", check=True).stdout)
            i = [x for x in s["services"] if x["name"] == "Svc"][0]["instances"][0]
            return i["pid"] != svc["pid"] and i["state"] == "running"
        wait_for(replaced, 15, "the killed worker to be replaced")
        assert proc.poll() is None
        assert os.path.getsize(project.run_dir / "logs" / "devnode.jsonl") <= 300000
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_a_batch_that_the_journal_cannot_take_says_how_much_was_emitted(project):
    """A retained stream on a full disk (RLIMIT_FSIZE again): a batch of emits stops at the
    event the journal refused, and the error says how many before it went out."""
    project.write("""
instances:
    Svc:
        command: sleep 1000
streams:
    audit.#: {retain_events: 100000}
""")
    out = project.dir / "node-out.txt"
    with open(out, "wb") as f:
        proc = subprocess.Popen(["prlimit", "--fsize=200000", str(DEVNODE), "up", "--no-tui"], cwd=project.dir,
                                env=project.node_env(), stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        endpoint = project.run_dir / "endpoint"
        wait_for(lambda: endpoint.exists() and endpoint.read_text().strip(), 15, "the node's endpoint")
        sock.connect(endpoint.read_text().strip())

        def request(type_, body):
            sock.send_multipart([b"1", type_.encode(), msgpack.packb(body)])
            assert sock.poll(10000), f"no reply to {type_}"
            _, ty, b = sock.recv_multipart()
            return ty.decode(), msgpack.unpackb(b)
        batch = [{"type": "audit.entry", "body": {"n": i, "pad": "x" * 1000}} for i in range(400)]
        rtype, reply = request("emit", {"id": 1, "source": "test", "events": batch})
        assert rtype == "error", reply
        m = re.fullmatch(r"emit: cannot keep the event in stream audit\.#: (?:File too large|No space left on device) "
                         r"\(event (\d+) of 400; the (\d+) before it were emitted\)", reply["message"])
        assert m, reply["message"]
        refused, before = int(m.group(1)), int(m.group(2))
        assert 1 < refused < 400 and before == refused - 1
        rtype, status = request("bus_status", {"id": 2})
        stream = [st for st in status["streams"] if st["pattern"] == "audit.#"][0]
        assert stream["next_offset"] == before, "the journal holds exactly the events said to be emitted"
        assert proc.poll() is None
    finally:
        sock.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_half_a_multipart_message_and_garbage_do_not_disturb(project):
    project.write("instances:\n    Svc: {command: sleep 1000}\n")
    node = project.up()
    ep = (project.run_dir / "endpoint").read_text().strip()
    ctx = zmq.Context.instance()
    for _ in range(20):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(ep)
        s.send(b"1", zmq.SNDMORE)
        s.send(b"status", zmq.SNDMORE)   # ... and never the body
        s.close()
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(ep[len("ipc://"):])
    raw.sendall(os.urandom(4096))        # not even ZMTP
    raw.close()
    st = node.status()
    assert st["services"][0]["running"] == 1


def test_a_frame_claiming_a_gigabyte_closes_its_connection_before_anything_is_allocated(project):
    """ZeroMQ allocates a frame as long as its header says before the bytes come: a local
    process announcing 1 GiB (or 2^62, which an ASan build reported) must not make the node
    reserve it. The node closes that connection and serves the others."""
    project.write("instances:\n    Svc: {command: sleep 1000}\n")
    node = project.up()
    ep = (project.run_dir / "endpoint").read_text().strip()
    raw = socket.socket(socket.AF_UNIX)
    raw.settimeout(5)
    try:
        raw.connect(ep[len("ipc://"):])
        # ZMTP 3.0: greeting (signature, version 3.0, NULL mechanism, as-client, filler), the
        # READY command of a DEALER, then the head of a long last frame of 1 GiB.
        raw.sendall(b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + bytes(31))
        ready = b"\x05READY" + b"\x0bSocket-Type" + (6).to_bytes(4, "big") + b"DEALER"
        raw.sendall(b"\x04" + bytes([len(ready)]) + ready)
        raw.sendall(b"\x02" + (1 << 30).to_bytes(8, "big"))
        closed = False
        try:
            while raw.recv(4096):  # the node's greeting and READY, if it sent them; then its close
                pass
            closed = True
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            pass
        assert closed, "the node kept the connection open, waiting for the gigabyte"
    finally:
        raw.close()
    rss_kib = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{node.pid}/status").read()).group(1))
    assert rss_kib < 200_000, f"the node holds {rss_kib} KiB"
    assert node.status()["services"][0]["running"] == 1


def test_two_hundred_tail_clients(project):
    project.write(f"instances:\n    Ticker:\n        command: {TICKER}\n")
    node = project.up()
    node.wait_running("Ticker", 1)
    socks = [connect(project) for _ in range(200)]
    for i, s in enumerate(socks):
        s.send_multipart([b"1", b"tail", msgpack.packb({"id": i, "backlog": 10, "follow": True, "services": [],
                                                       "trace": None, "level": None, "grep": None})])
    got = set()

    def all_got_lines():
        for i, s in enumerate(socks):
            while s.poll(0):
                frames = s.recv_multipart()
                if frames[1] == b"lines" and msgpack.unpackb(frames[2])["lines"]:
                    got.add(i)
        return len(got) == 200
    wait_for(all_got_lines, 30, lambda: f"all 200 followers to get lines; {len(got)} did")
    rss_before = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{node.pid}/status").read()).group(1))
    for s in socks:
        s.close()            # gone without untail: the node must not care
    st = node.status()
    assert st["services"][0]["running"] == 1
    assert rss_before < 200 * 1024, f"node RSS {rss_before} KiB with 200 followers"


def test_scale_to_zero_and_back_under_load(project):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    project.write(f"""
instances:
    Web:
        command: {WEB}
        numprocesses: 2
sockets:
    Web: {{port: {port}}}
""")
    node = project.up()
    node.wait_running("Web", 2)
    results = {"ok": 0, "fail": []}
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
                c.request("GET", "/health", headers={"Connection": "close"})
                ok = c.getresponse().status == 200
                c.close()
                results["ok" if ok else "fail"] = results["ok"] + 1 if ok else results["fail"] + ["status"]
            except Exception as e:  # noqa: BLE001
                results["fail"].append(repr(e))
    t = threading.Thread(target=load, daemon=True)
    t.start()
    wait_for(lambda: results["ok"] > 100, 15, "load to run")
    assert node.cli("scale", "Web", "0").returncode == 0
    node.wait_running("Web", 0)
    before = results["ok"]
    assert node.cli("scale", "Web", "2").returncode == 0
    node.wait_running("Web", 2)
    wait_for(lambda: results["ok"] > before + 100, 15, "requests to succeed again")
    stop.set()
    t.join(20)
    # connections that arrived with no worker waited in the node's listen queue
    assert results["fail"] == [], results["fail"][:5]


def test_node_stopped_and_continued(project):
    project.write(f"instances:\n    Ticker:\n        command: {TICKER}\n        numprocesses: 2\n")
    node = project.up()
    node.wait_running("Ticker", 2)
    pids = {i["pid"] for i in node.service("Ticker")["instances"]}
    wait_for(lambda: sum(len(v) for v in ticks_by_pid(node).values()) > 100, 15, "ticker lines")
    os.kill(node.pid, signal.SIGSTOP)
    time.sleep(1.5)          # the fault itself: the node is stopped for this long
    os.kill(node.pid, signal.SIGCONT)
    n = sum(len(v) for v in ticks_by_pid(node).values())
    wait_for(lambda: sum(len(v) for v in ticks_by_pid(node).values()) > n + 200, 15, "lines after SIGCONT")
    assert {i["pid"] for i in node.service("Ticker")["instances"]} == pids
    assert_contiguous(ticks_by_pid(node))
