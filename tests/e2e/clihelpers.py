"""Helpers for the tests of the registry, bus and RPC commands of the CLI: configs that run
the Python fake service, the node's protocol spoken raw, and a background CLI process
whose output is read line by line against a deadline."""
import json
import os
import select
import subprocess
import time
from pathlib import Path

import msgpack
import zmq

from conftest import DEVNODE, PYTHON, base_env, pid_alive, wait_for

FAKE = Path(__file__).resolve().parent / "fakeservice.py"


def fake_config(services, restart="always"):
    """A .lymph.yml running the fake service: services maps name -> (count, extra args)."""
    lines = ["instances:"]
    for name, spec in services.items():
        count, extra = spec if isinstance(spec, tuple) else (spec, "")
        lines += [f"    {name}:",
                  f"        command: exec {PYTHON} {FAKE} {extra}".rstrip(),
                  f"        numprocesses: {count}",
                  f"        restart: {restart}",
                  "        stop_timeout: 5"]
    return "\n".join(lines) + "\n"


def node_request(project, type_, body, timeout=5.0):
    """One request over the node protocol; returns (reply type, reply body)."""
    endpoint = (project.run_dir / "endpoint").read_text().strip()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send_multipart([b"1", type_.encode(), msgpack.packb(dict(body, id=1), use_bin_type=True)])
        if not sock.poll(int(timeout * 1000)):
            raise TimeoutError(f"node did not answer {type_}")
        _, rtype, rbody = sock.recv_multipart()
        return rtype.decode(), msgpack.unpackb(rbody, raw=False)
    finally:
        sock.close()
        ctx.term()


def discover_json(project):
    r = project.cli("discover", "--json")
    assert r.returncode == 0, f"discover --json exited {r.returncode}: {r.stderr}"
    return json.loads(r.stdout)


def wait_registered(project, service, count, timeout=10):
    """Waits until `service` has exactly `count` live registered instances; returns them."""
    def check():
        insts = discover_json(project).get(service, [])
        if len(insts) == count and all(pid_alive(i["pid"]) for i in insts):
            return (insts,)
        return None
    return wait_for(check, timeout, lambda: f"{count} registered instances of {service}; "
                    f"discover: {discover_json(project)}")[0]


def wait_subscribers(project, pattern, count=1, timeout=10):
    """Waits until broadcast groups holding `pattern` have `count` members in all."""
    def check():
        rtype, body = node_request(project, "bus_status", {})
        assert rtype == "bus_status", body
        n = sum(g["members"] for g in body["groups"] if g["broadcast"] and pattern in g["patterns"])
        return n >= count
    wait_for(check, timeout, f"{count} subscriber(s) of {pattern}")


def instance_status(endpoint):
    """lymph.status of one instance, through the CLI's --address."""
    r = subprocess.run([str(DEVNODE), "request", "--address", endpoint, "lymph.status", "{}"],
                       capture_output=True, text=True, timeout=10, env=base_env(), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


class Background:
    """A CLI command running in the background with its stdout read as lines."""

    def __init__(self, project, *args):
        cmd = [str(DEVNODE), args[0], "-c", str(project.config_path), *map(str, args[1:])]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=base_env(), cwd=project.dir)
        self.buf = b""
        self.lines = []

    def read_lines(self, count, timeout=10):
        """Returns the first `count` lines, waiting for them up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while len(self.lines) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"got {self.lines} of {count} lines; stderr: {self.stderr_now()}")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                if len(self.lines) < count:
                    raise AssertionError(f"output ended after {self.lines}; exit {self.proc.wait(5)}, "
                                         f"stderr: {self.proc.stderr.read().decode()}")
                break
            self.buf += chunk
            *done, self.buf = self.buf.split(b"\n")
            self.lines += [d.decode() for d in done]
        return self.lines[:count]

    def stderr_now(self):
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read().decode()

    def wait(self, timeout=10):
        rc = self.proc.wait(timeout)
        rest = self.proc.stdout.read()
        if rest:
            self.buf += rest
            *done, self.buf = self.buf.split(b"\n")
            self.lines += [d.decode() for d in done]
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
