"""Helpers for the tests of retained streams and the bookshelf example (issue 8): the example's
own .lymph.yml made runnable from a temp project, `devnode request` and `devnode events`, a
stream reader speaking the node protocol raw, the journal's segment files, and (run as a
script) a supervised consumer of a named group that reads with `from: resume`:

    bookhelpers.py consume --log FILE --ack-below-file FILE

It appends `PID OFFSET REDELIVERED` to --log for each event it gets and acks the events whose
offset is below the number in --ack-below-file (read at start), holding the others unacked."""
import json
import os
import sys
import time
from pathlib import Path

import msgpack
import zmq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXAMPLES = ROOT / "build" / "examples"
BOOKSHELF_CONFIG = ROOT / "examples" / "bookshelf" / ".lymph.yml"
STREAM = "book.#"
CONSUMER_GROUP = "Audit.log"


def bookshelf_config(port):
    """The example's .lymph.yml with the binaries' absolute paths and `port` for LastRead."""
    text = BOOKSHELF_CONFIG.read_text()
    assert "port: 4090" in text and "../../build/examples/" in text, text
    return text.replace("port: 4090", f"port: {port}").replace("../../build/examples/", f"{EXAMPLES}/")


def stream_config(*services):
    """A config that retains `book.#`, with a quiet instance and `services` (lines of YAML)."""
    lines = ["instances:", "    Quiet:", "        command: exec sleep 100000", "        stop_timeout: 1",
             *services, "streams:", "    book.#: {retain_events: 100000}"]
    return "\n".join(lines) + "\n"


def consumer_service(log, ack_file):
    """The YAML lines of a service running this file's consumer (restarted when it dies)."""
    return [
        "    Audit:",
        f"        command: exec {sys.executable} {__file__} consume --log {log} --ack-below-file {ack_file}",
        "        restart: always",
        "        stop_timeout: 1",
    ]


def request(project, subject, args, *flags):
    """`devnode request`; returns (exit code, the reply as JSON or the error line)."""
    r = project.cli("request", *flags, subject, json.dumps(args))
    return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else r.stderr.strip())


def events_json(project, *args):
    """`devnode events --json ARGS`: the retained events, read from the journal files."""
    r = project.cli("events", "--json", *args)
    assert r.returncode == 0, f"devnode events exited {r.returncode}: {r.stderr}"
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def segments(project):
    """The journal's segment files of `book.#`, oldest first."""
    return sorted((project.run_dir / "streams").glob("*.seg"))


def offsets_file(project):
    """{group: committed offset} as the node last saved them for `book.#`."""
    found = {}
    for path in (project.run_dir / "streams").glob("*.offsets"):
        for line in path.read_text().splitlines():
            offset, _, group = line.partition(" ")
            found[group] = int(offset)
    return found


def bus_group(client, name):
    """The bus_status entry of group `name`, or None."""
    rtype, reply = client.request("bus_status")
    assert rtype == "bus_status", reply
    return next((g for g in reply["groups"] if g["name"] == name), None)


class StreamReader:
    """A subscription of its own to the stream (broadcast), from `start`, acking every event."""

    def __init__(self, project, start="beginning", prefetch=1000):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect((project.run_dir / "endpoint").read_text().strip())
        self.events = []
        self._send("subscribe", {"id": 1, "subscription": "r1", "patterns": [STREAM], "group": None,
                                 "broadcast": True, "pid": os.getpid(), "prefetch": prefetch,
                                 "stream": STREAM, "from": start})
        self._wait_reply(1)

    def _send(self, type_, body):
        self.sock.send_multipart([b"1", type_.encode(), msgpack.packb(body)])

    def _handle(self, type_, body):
        if type_ == b"event":
            ev = msgpack.unpackb(body, raw=False)
            self.events.append(ev)
            self._send("ack", {"delivery": ev["delivery"]})
            return None
        return msgpack.unpackb(body, raw=False)

    def _wait_reply(self, rid, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sock.poll(int(max(deadline - time.monotonic(), 0) * 1000) + 1):
                type_, body = self.sock.recv_multipart()[1:]
                reply = self._handle(type_, body)
                if reply is not None and reply.get("id") == rid:
                    assert type_ == b"ok", reply
                    return reply
        raise TimeoutError("the node did not answer subscribe")

    def read(self, count, timeout=15.0):
        """Reads until `count` events came (then a little longer, to see any extra); returns them."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            if self.sock.poll(100):
                self._handle(*self.sock.recv_multipart()[1:])
        # Whatever else is already on its way would show as a duplicate or an extra event.
        while self.sock.poll(200):
            self._handle(*self.sock.recv_multipart()[1:])
        return self.events

    def close(self):
        self.sock.close()
        self.ctx.term()


# ---------------------------------------------------------------- the consumer (a script)

def consume(log_path, ack_file):
    """A named group's member reading `book.#` with `from: resume` (see the module doc)."""
    ack_below = int(Path(ack_file).read_text().strip())
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(os.environ["DEVNODE_ENDPOINT"])

    def send(type_, body):
        sock.send_multipart([b"1", type_.encode(), msgpack.packb(body)])

    send("subscribe", {"id": 1, "subscription": "c1", "patterns": [STREAM], "group": CONSUMER_GROUP,
                       "broadcast": False, "pid": os.getpid(), "prefetch": 4, "stream": STREAM,
                       "from": "resume"})
    with open(log_path, "a") as log:
        next_beat = time.monotonic() + 1
        while True:
            if sock.poll(200):
                type_, body = sock.recv_multipart()[1:]
                msg = msgpack.unpackb(body, raw=False)
                if type_ == b"event":
                    log.write(f"{os.getpid()} {msg['offset']} {int(msg['redelivered'])}\n")
                    log.flush()
                    if msg["offset"] < ack_below:
                        send("ack", {"delivery": msg["delivery"]})
                elif type_ == b"error":
                    print(f"consumer: {msg.get('message')}", file=sys.stderr, flush=True)
                    return 1
            if time.monotonic() >= next_beat:
                send("heartbeat", {"id": 2, "pid": os.getpid()})
                next_beat = time.monotonic() + 1


def consumer_log(path):
    """[(pid, offset, redelivered)] from the consumer's log."""
    if not Path(path).exists():
        return []
    out = []
    for line in Path(path).read_text().splitlines():
        pid, offset, redelivered = line.split()
        out.append((int(pid), int(offset), redelivered == "1"))
    return out


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "consume" and sys.argv[2] == "--log" and \
            sys.argv[4] == "--ack-below-file":
        sys.exit(consume(sys.argv[3], sys.argv[5]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
