"""Helpers for the end-to-end tests of libdevnode and the demo services (examples/): configs
that run the C examples from build/examples, the node protocol and lymph's RPC frames spoken
raw from Python, the `call` example as the library's caller, and HTTP against the Web demo."""
import http.client
import json
import os
import re
import socket
import subprocess
import uuid

import msgpack
import zmq

from conftest import ROOT, base_env, pid_alive, wait_for

EXAMPLES = ROOT / "build" / "examples"
GREETING = EXAMPLES / "greeting"
LISTEN = EXAMPLES / "listen"
DEMO_WEB = EXAMPLES / "demo_web"
CALL = EXAMPLES / "call"
STAGE = EXAMPLES / "pipeline_stage"
PIPELINE_CLIENT = EXAMPLES / "pipeline_client"


def examples_config(services, sockets=None):
    """A .lymph.yml from {name: (binary, count, args, {key: value})}; sockets: {name: port}.
    Every service gets `ready: notify` (libdevnode sends READY=1 once registered) and a short
    stop_timeout unless the extra keys say otherwise."""
    lines = ["instances:"]
    for name, spec in services.items():
        binary, count, args, extra = (tuple(spec) + ("", {}))[:4]
        keys = {"command": f"{binary} {args}".rstrip(), "numprocesses": count, "ready": "notify",
                "stop_timeout": 3}
        keys.update(extra)
        lines.append(f"    {name}:")
        lines += [f"        {k}: {v}" for k, v in keys.items()]
    if sockets:
        lines.append("sockets:")
        for name, port in sockets.items():
            lines += [f"    {name}:", f"        port: {port}"]
    return "\n".join(lines) + "\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the node protocol

class NodeClient:
    """A DEALER on the node's endpoint: requests by id, as docs/protocol.md describes."""

    def __init__(self, project):
        self.endpoint = (project.run_dir / "endpoint").read_text().strip()
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.endpoint)
        self.next_id = 1

    def request(self, type_, body=None, timeout=5.0):
        rid = self.next_id
        self.next_id += 1
        self.sock.send_multipart([b"1", type_.encode(), msgpack.packb(dict(body or {}, id=rid))])
        while True:
            if not self.sock.poll(int(timeout * 1000)):
                raise TimeoutError(f"the node did not answer {type_}")
            _, rtype, rbody = self.sock.recv_multipart()
            reply = msgpack.unpackb(rbody, raw=False)
            if reply.get("id") == rid:
                return rtype.decode(), reply

    def discover(self, service=None):
        rtype, reply = self.request("discover", {"service": service})
        assert rtype == "services", reply
        return {s["name"]: s["instances"] for s in reply["services"]}

    def emit(self, type_, body, trace_id=None, delay_ms=0):
        rtype, reply = self.request("emit", {"type": type_, "body": body, "source": "test",
                                             "headers": {"trace_id": trace_id or uuid.uuid4().hex},
                                             "delay_ms": delay_ms})
        assert rtype == "ok", reply
        return reply

    def close(self):
        self.sock.close()
        self.ctx.term()


def wait_registered(client, service, count, timeout=15):
    """Waits until `service` has `count` live registered instances; returns them."""
    def check():
        insts = client.discover(service).get(service, [])
        if len(insts) == count and all(pid_alive(i["pid"]) for i in insts):
            return insts
        return None
    return wait_for(check, timeout, f"{count} registered instance(s) of {service}")


def wait_group_members(client, group, count, timeout=15):
    """Waits until the bus group `group` has `count` members (the subscriptions are in)."""
    def check():
        rtype, reply = client.request("bus_status")
        assert rtype == "bus_status", reply
        return sum(g["members"] for g in reply["groups"] if g["name"] == group) == count
    wait_for(check, timeout, f"{count} member(s) in group {group}")


def wait_broadcast_members(client, pattern, count, timeout=15):
    def check():
        rtype, reply = client.request("bus_status")
        assert rtype == "bus_status", reply
        return sum(g["members"] for g in reply["groups"]
                   if g.get("broadcast") and pattern in g["patterns"]) == count
    wait_for(check, timeout, f"{count} broadcast member(s) of {pattern}")


def wait_settled(client, match, timeout=15):
    """Waits until the groups selected by `match(group)` have nothing queued and nothing in
    flight, and returns how many events they delivered. Once every delivery is acked and
    nothing is left, no redelivery can follow: a duplicate shows in this count, not later."""
    def check():
        rtype, reply = client.request("bus_status")
        assert rtype == "bus_status", reply
        groups = [g for g in reply["groups"] if match(g)]
        if groups and all(g["queued"] == 0 and g["in_flight"] == 0 for g in groups):
            return (sum(g["delivered"] for g in groups),)
        return None
    return wait_for(check, timeout, "the bus groups to settle")[0]


def group_named(name):
    return lambda g: g["name"] == name


def broadcast_of(pattern):
    return lambda g: g.get("broadcast") and pattern in g["patterns"]


# ---------------------------------------------------------------- lymph RPC, raw

class RawRPC:
    """A DEALER on one service instance's endpoint, speaking lymph's five frames."""

    def __init__(self, endpoint):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send_frames(self, frames):
        self.sock.send_multipart(frames)

    def request(self, subject, body=None, trace_id=None, timeout=5.0):
        """Returns (type, headers, body) of the reply."""
        mid = uuid.uuid4().hex[:16].encode()
        headers = {"trace_id": trace_id} if trace_id else {}
        self.sock.send_multipart([mid, b"REQ", subject.encode(), msgpack.packb(headers),
                                  msgpack.packb(body if body is not None else {})])
        while True:
            if not self.sock.poll(int(timeout * 1000)):
                raise TimeoutError(f"no reply to {subject}")
            frames = self.sock.recv_multipart()
            assert len(frames) == 5, frames
            if frames[2] == mid:
                return (frames[1].decode(), msgpack.unpackb(frames[3], raw=False),
                        msgpack.unpackb(frames[4], raw=False))

    def close(self):
        self.sock.close()
        self.ctx.term()


# ---------------------------------------------------------------- the library's caller side

def call(project, subject, args=None, *flags, timeout=30):
    """Runs the `call` example (libdevnode's devnode_call) in the project; returns the list
    of reply lines (dicts) and the exit code."""
    cmd = [str(CALL), "-C", str(project.dir), *map(str, flags), subject]
    if args is not None:
        cmd.append(json.dumps(args))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=base_env(),
                       stdin=subprocess.DEVNULL)
    assert not r.stderr.strip() or r.returncode != 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    return lines, r.returncode


# ---------------------------------------------------------------- HTTP and the log

def http_get(port, path, headers=None, timeout=10):
    """One request on a fresh connection; returns (status, body, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=dict({"Connection": "close"}, **(headers or {})))
        r = conn.getresponse()
        return r.status, r.read().decode(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def lines_of(node, service=None, pattern=None, trace_id=None):
    """Log records of `service` (all services when None) matching a text regex / trace id."""
    out = []
    for rec in node.records():
        if service and rec.get("service") != service:
            continue
        if trace_id and rec.get("trace_id") != trace_id:
            continue
        if pattern and not re.search(pattern, rec.get("text", "")):
            continue
        out.append(rec)
    return out


def wait_lines(node, count, timeout=15, **match):
    """Waits until at least `count` records match; returns them."""
    return wait_for(lambda: (lambda found: found if len(found) >= count else None)(lines_of(node, **match)),
                    timeout, lambda: f"{count} log line(s) matching {match}; have "
                                     f"{[r.get('text') for r in lines_of(node, **match)]}")


def socket_files(project):
    rpc = project.run_dir / "rpc"
    return sorted(os.listdir(rpc)) if rpc.exists() else []
