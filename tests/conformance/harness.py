"""The conformance suite's machinery: a cluster of adapters under a real `devnode up`, and the
test's own view of it through the node protocol alone (docs/protocol.md), so the suite checks
each client against the protocol and never one client against the other.

- Cluster: a project dir with a .lymph.yml of adapter services, its node, and teardown that
  fails the module when processes are left (the e2e suite's Project and Node do the work).
- NodeClient: a DEALER on the node (discover, bus_status, emit, status), written from the doc.
- Cluster.rpc: lymph's five-frame RPC straight to an instance's endpoint, with a trace id of
  the test's choosing.
- Gate: a service the test itself registers and serves, which holds every request it gets
  until released: a callee that is slow for as long as a scenario wants, in no client's code.
- reports(): the `conformance rpc|event {json}` lines adapters print, from the node's log file.
"""
import calendar
import importlib.util
import json
import os
import re
import sys
import threading
import time
import uuid
from pathlib import Path

import msgpack
import zmq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # e2e's conftest imports its neighbours


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# The e2e suite's project, node and process machinery, loaded under a name of its own (a second
# module named `conftest` would shadow this folder's).
e2e = _load("e2e_conftest", ROOT / "tests" / "e2e" / "conftest.py")
wait_for = e2e.wait_for
pid_alive = e2e.pid_alive
DEVNODE = e2e.DEVNODE
PYTHON = "/usr/bin/python3"  # Debian's, with python3-zmq and python3-msgpack

C_ADAPTER = ROOT / "build" / "conformance" / "c_adapter"
ADAPTER_DIR = HERE / "adapters"

# Each language's adapter: the command that runs it as a service. A client in another language
# adds a row here (README.md, "Adding a client").
# `service`: the name its service has in the scenarios' configs.
ADAPTERS = {
    "c": {"service": "C", "command": str(C_ADAPTER), "env": {}},
    "py": {"service": "Py", "command": f"{PYTHON} -m devnode instance py_adapter:Adapter",
           "env": {"PYTHONPATH": str(ADAPTER_DIR)}},
}
LANGS = list(ADAPTERS)
PAIRS = [(a, b) for a in LANGS for b in LANGS]
NAME = {lang: a["service"] for lang, a in ADAPTERS.items()}
NAMES = list(NAME.values())


def other(lang):
    """Another client than `lang` (itself when there is only one): for mixed scenarios."""
    return next((x for x in LANGS if x != lang), lang)

# What an adapter's client can do beyond the contract every client meets (README.md).
CAPABILITIES = {
    # a handler that is busy (not waiting in a call) leaves the instance serving other requests
    "busy_handler_beside_fast": {"c": False, "py": True},
}

TRACE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def svc(lang, count=1, subs="", **extra):
    """One service of a cluster config: (language, instances, CONFORMANCE_SUBS, more keys)."""
    return (lang, count, subs, extra)


def config(services, streams=None):
    """A .lymph.yml from {name: svc(...)}: each runs its language's adapter, ready: notify."""
    lines = ["instances:"]
    for name, (lang, count, subs, extra) in services.items():
        a = ADAPTERS[lang]
        lines += [f"    {name}:", f"        command: {a['command']}", f"        numprocesses: {count}",
                  "        ready: notify", "        stop_timeout: 3"]
        for k, v in extra.items():
            lines.append(f"        {k}: {v}")
        env = dict(a["env"], CONFORMANCE_SUBS=subs)
        lines.append("        env:")
        lines += [f"            {k}: {json.dumps(v)}" for k, v in env.items()]
    if streams:
        lines.append("streams:")
        for pattern, keep in streams.items():
            lines += [f"    '{pattern}':", f"        retain_events: {keep}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the node protocol

class NodeClient:
    """A DEALER on the node's control socket: one request at a time, replies matched by id."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.next_id = 1

    def request(self, type_, body=None, timeout=10.0):
        rid = self.next_id
        self.next_id += 1
        self.sock.send_multipart([b"1", type_.encode(), msgpack.packb(dict(body or {}, id=rid))])
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000) + 1):
                raise TimeoutError(f"the node did not answer {type_}")
            version, rtype, rbody = self.sock.recv_multipart()
            assert version == b"1", version
            reply = msgpack.unpackb(rbody, raw=False)
            if reply.get("id") == rid:
                return rtype.decode(), reply

    def discover(self, service=None):
        rtype, reply = self.request("discover", {"service": service})
        assert rtype == "services", reply
        return {s["name"]: s["instances"] for s in reply["services"]}

    def bus_status(self):
        rtype, reply = self.request("bus_status")
        assert rtype == "bus_status", reply
        return reply

    def groups(self, match):
        return [g for g in self.bus_status()["groups"] if match(g)]

    def emit(self, type_, body, trace_id=None, delay_ms=0):
        rtype, reply = self.request("emit", {"type": type_, "body": body, "source": "test", "delay_ms": delay_ms,
                                             "headers": {"trace_id": trace_id or uuid.uuid4().hex}})
        assert rtype == "ok", reply
        return reply

    def close(self):
        self.sock.close()
        self.ctx.term()


class RPCError(AssertionError):
    pass


class Cluster:
    """A project with adapter services under its own `devnode up`."""

    def __init__(self, project, node):
        self.project = project
        self.node = node
        self.client = NodeClient((project.run_dir / "endpoint").read_text().strip())
        self.ctx = zmq.Context()
        self.dealers = {}
        self.round_robin = {}

    # -- the registry
    def instances(self, service):
        return self.client.discover(service).get(service, [])

    def wait_registered(self, service, count, timeout=30):
        """`count` registered instances of `service`, each a live process; returns them by index."""
        def check():
            insts = self.instances(service)
            if len(insts) == count and all(pid_alive(i["pid"]) for i in insts):
                return insts or [None]
            return None
        found = wait_for(check, timeout, f"{count} registered instance(s) of {service}")
        return [i for i in found if i]

    def wait_members(self, group_match, count, timeout=30, what="group members"):
        wait_for(lambda: sum(g["members"] for g in self.client.groups(group_match)) == count, timeout,
                 lambda: f"{count} {what}; groups: {self.client.bus_status()['groups']}")

    def wait_settled(self, group_match, timeout=30):
        """Until the matching groups have nothing queued or in flight (every delivery acked)."""
        def check():
            gs = self.client.groups(group_match)
            return gs and all(g["queued"] == 0 and g["in_flight"] == 0 for g in gs)
        wait_for(check, timeout, "the bus groups to settle")

    # -- RPC, raw
    def _dealer(self, endpoint):
        sock = self.dealers.get(endpoint)
        if sock is None:
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
            self.dealers[endpoint] = sock
        return sock

    def endpoint_of(self, service, instance=None):
        insts = self.instances(service)
        if not insts:
            raise RPCError(f"no registered instance of {service}")
        if instance is None:
            n = self.round_robin.get(service, 0)
            self.round_robin[service] = n + 1
            return insts[n % len(insts)]["endpoint"]
        for i in insts:
            if i["instance"] == instance:
                return i["endpoint"]
        raise RPCError(f"no registered instance {service}.{instance}")

    def rpc_raw(self, subject, args=None, trace_id=None, timeout=20.0, instance=None, endpoint=None):
        """(reply type, headers, body) of one REQ, sent straight to an instance."""
        service, _, method = subject.partition(".")
        # `Service.lymph.ping` is the built-in `lymph.ping` asked of one of Service's instances
        wire_subject = method if "." in method else subject
        sock = self._dealer(endpoint or self.endpoint_of(service, instance))
        mid = uuid.uuid4().hex[:16].encode()
        headers = {"trace_id": trace_id} if trace_id else {}
        sock.send_multipart([mid, b"REQ", wire_subject.encode(), msgpack.packb(headers),
                             msgpack.packb(args if args is not None else {})])
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000) + 1):
                raise RPCError(f"no reply to {subject} in {timeout}s")
            frames = sock.recv_multipart()
            assert len(frames) == 5, frames
            if frames[2] == mid:
                return (frames[1].decode(), msgpack.unpackb(frames[3], raw=False),
                        msgpack.unpackb(frames[4], raw=False))

    def rpc(self, subject, args=None, **kw):
        """The result of a call that must succeed."""
        rtype, headers, body = self.rpc_raw(subject, args, **kw)
        if rtype != "REP":
            raise RPCError(f"{subject}({args}) answered {rtype} {body}")
        return body

    # -- the log
    def reports(self, kind=None, service=None, match=None):
        return reports(self.node, kind, service, match)

    def wait_reports(self, count, timeout=30, **kw):
        def check():
            found = self.reports(**kw)
            return found if len(found) >= count else None
        return wait_for(check, timeout, lambda: f"{count} report(s) {kw}; have {[r['text'] for r in self.reports(**kw)]}")

    def tail_trace(self, trace_id):
        """`devnode tail --trace`: (its output, the services whose lines it shows)."""
        r = self.project.cli("tail", "--trace", trace_id, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout, {m.group(1) for m in re.finditer(r"\b([A-Za-z][A-Za-z0-9_]*)\.\d+\s+\|", r.stdout)}

    def close(self):
        for sock in self.dealers.values():
            sock.close()
        self.ctx.term()
        self.client.close()


REPORT_RE = re.compile(r"conformance (rpc|event) (\{.*\})")


def reports(node, kind=None, service=None, match=None):
    """The adapters' report lines, parsed: each the JSON it printed plus the log record's
    service, instance, pid, wall_ns and `log_trace_id` (the trace id the node indexed)."""
    out = []
    for rec in node.records():
        if service and rec.get("service") != service:
            continue
        m = REPORT_RE.search(rec.get("text", ""))
        if not m or (kind and m.group(1) != kind):
            continue
        fields = json.loads(m.group(2))
        fields.update(kind=m.group(1), service=rec.get("service"), instance=rec.get("instance"),
                      log_pid=rec.get("pid"), wall_ns=_time_ns(rec.get("time")), log_trace_id=rec.get("trace_id"),
                      text=rec.get("text"))
        if match and not match(fields):
            continue
        out.append(fields)
    return out


def _time_ns(iso):
    """The log record's `time` (2026-12-07T00:03:02.959992Z) in ns since the epoch."""
    if not iso:
        return None
    whole, _, frac = iso.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return secs * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


def with_tag(tag):
    return lambda r: isinstance(r.get("body"), dict) and (r["body"].get("tag") == tag or
                                                          (isinstance(r["body"].get("body"), dict) and
                                                           r["body"]["body"].get("tag") == tag))


# ---------------------------------------------------------------- a service the test serves

class Gate:
    """Registers `name` with the node as this test process and serves `Name.wait` on a ROUTER,
    answering nothing until release(): a callee that is slow for as long as the test wants.
    One thread owns its sockets; it heartbeats every 0.5 s as the protocol asks."""

    def __init__(self, cluster, name="Gate"):
        self.name = name
        self.node_endpoint = cluster.client.endpoint
        self.endpoint = f"ipc://{cluster.project.dir}/gate-{uuid.uuid4().hex[:8]}.sock"
        self.arrived = []
        self.ready = threading.Event()
        self.released = threading.Event()
        self.done = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise AssertionError(f"the gate did not register: {self.error}")
        if self.error:
            raise AssertionError(f"the gate did not register: {self.error}")

    def _serve(self):
        ctx = zmq.Context()
        router = ctx.socket(zmq.ROUTER)
        node = ctx.socket(zmq.DEALER)
        for s in (router, node):
            s.setsockopt(zmq.LINGER, 0)
        held = []
        try:
            router.bind(self.endpoint)
            node.connect(self.node_endpoint)
            node.send_multipart([b"1", b"register", msgpack.packb({
                "id": 1, "service": self.name, "instance": -1, "pid": os.getpid(), "endpoint": self.endpoint,
                "methods": [{"name": "wait", "params": [], "help": "Answers once the test releases it"}]})])
            if not node.poll(10000):
                raise TimeoutError("no answer to register")
            _, rtype, body = node.recv_multipart()
            if rtype != b"ok":
                raise AssertionError(f"register: {rtype} {msgpack.unpackb(body)}")
            self.ready.set()
            next_beat = time.monotonic()
            poller = zmq.Poller()
            poller.register(router, zmq.POLLIN)
            poller.register(node, zmq.POLLIN)
            while True:
                if time.monotonic() >= next_beat:
                    node.send_multipart([b"1", b"heartbeat", msgpack.packb({"id": 0, "pid": os.getpid()})])
                    next_beat = time.monotonic() + 0.5
                for sock, _ in poller.poll(50):
                    frames = sock.recv_multipart()
                    if sock is router and len(frames) == 6 and frames[2] == b"REQ":
                        held.append(frames)
                        self.arrived.append({"headers": msgpack.unpackb(frames[4], raw=False),
                                             "args": msgpack.unpackb(frames[5], raw=False)})
                if self.released.is_set():
                    for f in held:  # REP: a new message id, the request's id as subject
                        router.send_multipart([f[0], uuid.uuid4().hex[:16].encode(), b"REP", f[1],
                                               f[4], msgpack.packb("released")])
                    held = []
                if self.done.is_set():
                    break
            node.send_multipart([b"1", b"unregister", msgpack.packb({"id": 2, "pid": os.getpid()})])
            node.poll(2000)
        except Exception as e:  # reported by the constructor or close()
            self.error = e
            self.ready.set()
        finally:
            router.close()
            node.close()
            ctx.term()

    def wait_arrived(self, count=1, timeout=30):
        wait_for(lambda: len(self.arrived) >= count, timeout, f"{count} request(s) at {self.name}")
        return self.arrived

    def release(self):
        self.released.set()

    def close(self):
        self.released.set()
        self.done.set()
        self.thread.join(10)
        assert self.error is None, self.error


def new_trace():
    return uuid.uuid4().hex


# ---------------------------------------------------------------- fixtures

def start_cluster(path, services, streams=None, wait=True):
    """`devnode up` in `path` with the adapter services; waits until each one's instances are
    registered (and so subscribed: adapters subscribe before they register)."""
    Path(path).mkdir(parents=True, exist_ok=True)
    project = e2e.Project(Path(path), uuid.uuid4().hex)
    project.write(config(services, streams))
    env = project.node_env()
    env["PATH"] = "/usr/bin:/bin:" + env.get("PATH", "")  # python3 in commands is Debian's
    try:
        node = project.up(env=env)
        cluster = Cluster(project, node)
    except BaseException:
        project.cleanup()
        raise
    try:
        if wait:
            for name, (lang, count, subs, extra) in services.items():
                cluster.wait_registered(name, count)
    except BaseException:
        cluster.close()
        project.cleanup()
        raise
    return cluster


def stop_cluster(cluster):
    """Stops the node; returns the processes still alive once it was gone (a failure)."""
    cluster.close()
    return cluster.project.cleanup()
