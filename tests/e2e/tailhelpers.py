"""Helpers for the `devnode tail` / `devnode traces` tests: running the CLI as a long-lived
process, parsing its three output formats, reading every log file in order, and a raw pyzmq
client that speaks the tail protocol (with acknowledgements) for protocol-level checks."""
import json
import os
import re
import subprocess
import threading

import msgpack
import zmq

from conftest import DEVNODE, base_env, wait_for

HUMAN_RE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) (\S+)( *) \| (.*)$")
TIMELINE_RE = re.compile(r"^\+ *(\d+\.\d{3}) ms (\S+)( *) \| (.*)$")
SKIPPED_RE = re.compile(r"^\[devnode: (\d+) lines skipped\]$")


def start_tail(project, *args, stdout):
    """`devnode tail -c CONFIG ARGS...` in the background, stdout to an open file."""
    return subprocess.Popen([str(DEVNODE), "tail", "-c", str(project.config_path), *map(str, args)],
                            cwd=project.dir, env=base_env(), stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.PIPE)


class Pty:
    """A pseudo-terminal for a process's stdout, drained by a thread so the writer never blocks.
    text() is what arrived so far, with the terminal's CR LF turned back into LF."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        self.data = bytearray()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._drain, daemon=True)

    def _drain(self):
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.data += chunk

    def start(self):
        os.close(self.slave)
        self.thread.start()

    def text(self):
        with self.lock:
            return self.data.decode(errors="replace").replace("\r\n", "\n")

    def finish(self):
        self.thread.join(10)
        os.close(self.master)
        return self.text()


def log_files(project):
    """Every log file, oldest first: devnode.jsonl.N .. .1, then devnode.jsonl."""
    logs = project.run_dir / "logs"
    rotated = sorted((p for p in logs.glob("devnode.jsonl.*") if p.suffix[1:].isdigit()),
                     key=lambda p: -int(p.suffix[1:]))
    return [*rotated, logs / "devnode.jsonl"]


def file_records(project):
    recs = []
    for path in log_files(project):
        recs += [json.loads(l) for l in path.read_bytes().splitlines() if l]
    return recs


def name_of(rec):
    return "devnode" if rec["stream"] == "node" else f"{rec['service']}.{rec['instance']}"


def human_lines(text):
    """Parses `HH:MM:SS.mmm NAME | text` lines into (clock, name, text); fails on anything else."""
    out = []
    for line in text.splitlines():
        m = HUMAN_RE.match(line)
        assert m, f"not in the human tail format: {line!r}"
        out.append((m.group(1), m.group(2), m.group(4)))
    return out


def timeline_lines(text):
    out = []
    for line in text.splitlines():
        m = TIMELINE_RE.match(line)
        assert m, f"not in the timeline format: {line!r}"
        out.append((float(m.group(1)), m.group(2), m.group(4)))
    return out


class RawClient:
    """A DEALER on the node's endpoint speaking the wire protocol directly."""

    def __init__(self, project, rcvhwm=None):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if rcvhwm is not None:
            self.sock.rcvhwm = rcvhwm
        self.sock.connect((project.run_dir / "endpoint").read_text().strip())

    def send(self, type_, body):
        self.sock.send_multipart([b"1", type_.encode(), msgpack.packb(body)])

    def recv(self, timeout=5.0):
        if not self.sock.poll(int(timeout * 1000)):
            raise TimeoutError("no message from the node")
        version, type_, body = self.sock.recv_multipart()
        assert version == b"1"
        return type_.decode(), msgpack.unpackb(body)

    def request(self, type_, body, timeout=5.0):
        self.send(type_, body)
        return self.recv(timeout)

    def tail(self, timeout=10.0, **query):
        """A one-shot tail: returns (lines, skipped, end body), acknowledging as it goes."""
        query.setdefault("id", 1)
        self.send("tail", query)
        lines, skipped, received = [], 0, 0
        while True:
            type_, body = self.recv(timeout)
            if body.get("id") != query["id"]:
                continue  # e.g. the answer to an ack that reached the node after an earlier `end`
            if type_ == "error":
                raise RuntimeError(body["message"])
            if type_ == "end":
                return lines, skipped + body.get("skipped", 0), body
            assert type_ == "lines", type_
            lines += body["lines"]
            skipped += body["skipped"]
            received += 1
            self.send("tail_renew", {"id": query["id"], "received": received})

    def close(self):
        self.sock.close()
        self.ctx.term()


def wait_file_text(path, predicate, timeout, what):
    def check():
        text = path.read_text(errors="replace")
        return text if predicate(text) else None
    return wait_for(check, timeout, what)
