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
import subprocess
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


def config(services, streams=None, backends=None):
    """A .lymph.yml from {name: svc(...)}: each runs its language's adapter, ready: notify;
    `backends` ({key: url}) becomes devnode's top-level `backends:` key (docs/backends.md)."""
    lines = []
    if backends:
        lines.append("backends:")
        lines += [f"    {k}: {v}" for k, v in backends.items()]
    lines.append("instances:")
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


# ---------------------------------------------------------------- back ends

# The back ends a scenario can run on (README.md, "Back ends"): each row names, for a key of
# devnode's `backends:` (docs/backends.md), the session fixture of tests/e2e/backends.py whose
# server takes that part; an empty row is the embedded node alone. A scenario module lists the
# rows it runs on in BACKENDS (default: embedded only), a test overrides that with
# @pytest.mark.backends(...).
BACKENDS = {
    "embedded": {},
    "zookeeper": {"registry": "zookeeper"},
    "rabbitmq": {"events": "rabbitmq"},
}
# what the registry and RPC scenarios run on
REGISTRY_BACKENDS = ["embedded", "zookeeper"]
# a killed instance's znode goes with its session: a short one keeps the scenarios quick
# (the fixture's ZooKeeper allows sessions from 200 ms)
ZK_SESSION_MS = 1000


class Backend:
    """One row of BACKENDS with its servers: what a cluster's .lymph.yml gets (`keys`, a
    ZooKeeper chroot or a RabbitMQ vhost of the cluster's own) and the test's view of the
    registry (`registry`) and of the broker (`events`)."""

    def __init__(self, name, servers, kazoo=None):
        self.name = name
        self.servers = servers  # {backends key: the fixture's server object}
        self.kazoo = kazoo

    def for_cluster(self):
        """({backends key: url}, registry view or None, broker view or None, node env additions)
        for one new cluster."""
        keys, registry, events, env = {}, None, None, {}
        zk = self.servers.get("registry")
        if zk is not None:
            chroot = "/conf" + uuid.uuid4().hex[:12]
            keys["registry"] = zk.url(chroot)
            registry = ZkRegistryView(self.kazoo, chroot)
            env["DEVNODE_REGISTRY_SESSION_MS"] = str(ZK_SESSION_MS)
        mq = self.servers.get("events")
        if mq is not None:
            # a vhost per cluster: its queues (named after services and subscriptions, the same
            # in every cluster) and its events are seen by no other cluster of the run
            events = AmqpEventsView(mq, "conf" + uuid.uuid4().hex[:12])
            keys["events"] = events.url
        return keys, registry, events, env


EMBEDDED = Backend("embedded", {})


RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"  # Debian's, without the su wrapper


class AmqpEventsView:
    """The broker's view of a cluster's events (its own vhost on the RabbitMQ fixture): the
    queues in lymph's layout (docs/backends.md), with their messages (ready and unacked) and
    consumers, through rabbitmqctl (the fixture's broker has no management plugin); and a
    publisher in lymph's format (kombu) for the events the test sends itself."""

    def __init__(self, mq, vhost):
        self.mq = mq
        self.vhost = vhost
        self.url = f"amqp://guest:guest@127.0.0.1:{mq.port}/{vhost}"
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def ctl(self, *args):
        env = self.mq.env(HOME=self.mq.dir, ERL_EPMD_PORT=self.mq.epmd_port, RABBITMQ_NODENAME=self.mq.nodename)
        r = subprocess.run([RABBITMQCTL, "-n", self.mq.nodename, *args], env=env, capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise AssertionError(f"rabbitmqctl {' '.join(args)}: {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout

    def queues(self):
        """{queue name: (messages ready + unacked, consumers)} of the vhost."""
        out = self.ctl("list_queues", "-p", self.vhost, "--quiet", "--no-table-headers",
                       "name", "messages", "consumers")
        found = {}
        for line in out.splitlines():
            if line.strip():
                name, messages, consumers = line.rsplit("\t", 2)
                found[name] = (int(messages), int(consumers))
        return found

    def publish(self, type_, body, trace_id, source="test"):
        """One event as lymph's KombuEventSystem.emit sends it: msgpack {type, headers, body,
        source} on the topic exchange `lymph`, routing key = the type."""
        import kombu
        from kombu.serialization import register
        register("lymph-msgpack", lambda v: msgpack.packb(v, use_bin_type=True),
                 lambda b: msgpack.unpackb(b, raw=False), content_type="application/lymph+x-msgpack",
                 content_encoding="binary")
        exchange = kombu.Exchange("lymph", type="topic", durable=True)
        with kombu.Connection(self.url, connect_timeout=15) as conn:
            conn.Producer(serializer="lymph-msgpack").publish(
                {"type": type_, "headers": {"trace_id": trace_id}, "body": body, "source": source},
                exchange=exchange, routing_key=type_, declare=[exchange])

    def close(self):
        try:
            self.ctl("delete_vhost", self.vhost)
        except AssertionError:
            pass  # the broker went first: its vhosts with it


class ZkRegistryView:
    """The registry as lymph's ZookeeperServiceRegistry reads it (kazoo, the cluster's chroot):
    `<chroot>/services/<Service>/<id>`, each an ephemeral znode holding a JSON description."""

    def __init__(self, kazoo, chroot):
        self.kazoo = kazoo
        self.chroot = chroot

    def instances(self, service):
        from kazoo.exceptions import NoNodeError
        path = f"{self.chroot}/services/{service}"
        try:
            children = self.kazoo.get_children(path)
        except NoNodeError:
            return []
        out = []
        for child in children:
            try:
                data, _ = self.kazoo.get(f"{path}/{child}")
            except NoNodeError:
                continue  # went between the two reads
            out.append(json.loads(data.decode()))
        return out

    def register(self, service, endpoint, pid):
        """An ephemeral registration of the test's own (devnode's wire); returns its path."""
        znode = uuid.uuid4().hex
        desc = {"id": znode, "identity": uuid.uuid4().hex, "version": None, "endpoint": endpoint,
                "log_endpoint": None, "monitoring_endpoint": None, "backdoor_endpoint": None,
                "hostname": "localhost", "fqdn": "localhost", "ip": "127.0.0.1", "type": False,
                "wire": "devnode/1", "pid": pid}
        path = f"{self.chroot}/services/{service}/{znode}"
        self.kazoo.create(path, json.dumps(desc).encode(), ephemeral=True, makepath=True)
        return path

    def unregister(self, path):
        from kazoo.exceptions import NoNodeError
        try:
            self.kazoo.delete(path)
        except NoNodeError:
            pass


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

    def __init__(self, project, node, backend=EMBEDDED, registry=None, events=None):
        self.project = project
        self.node = node
        self.backend = backend
        self.registry = registry  # a ZkRegistryView when the registry is ZooKeeper, else None
        self.events = events  # an AmqpEventsView when events go through RabbitMQ, else None
        self.client = NodeClient((project.run_dir / "endpoint").read_text().strip())
        self.ctx = zmq.Context()
        self.dealers = {}
        self.round_robin = {}

    # -- the registry
    def instances(self, service):
        """The registered instances of `service`, by instance index. With ZooKeeper they are
        its registrations (what a caller finds), each joined by pid to the node's record of
        the same process for what only the node knows (`instance`, `methods`, `node_endpoint`:
        the endpoint it told the node; None when the node does not know the process)."""
        node = self.client.discover(service).get(service, [])
        if self.registry is None:
            return node
        by_pid = {i["pid"]: i for i in node}
        out = []
        for desc in self.registry.instances(service):
            rec = by_pid.get(desc.get("pid"), {})
            out.append(dict(desc, instance=rec.get("instance"), methods=rec.get("methods"),
                            node_endpoint=rec.get("endpoint")))
        return sorted(out, key=lambda i: (i["instance"] is None, i["instance"] or 0))

    @property
    def endpoint_prefix(self):
        """How a serving instance's endpoint starts: ipc under the node, tcp with a registry."""
        return "ipc://" if self.registry is None else "tcp://127.0.0.1:"

    def wait_registered(self, service, count, timeout=30):
        """`count` registered instances of `service`, each a live process; returns them by index."""
        def check():
            insts = self.instances(service)
            if len(insts) == count and all(pid_alive(i["pid"]) and i["instance"] is not None for i in insts):
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

    # -- events, on the node's bus or the broker
    def emit(self, type_, body, trace_id=None):
        """An event the test sends itself, where the cluster's events go (source `test`)."""
        trace_id = trace_id or uuid.uuid4().hex
        if self.events is None:
            return self.client.emit(type_, body, trace_id=trace_id)
        return self.events.publish(type_, body, trace_id)

    def wait_subscribed(self, service, sub, members, broadcast=False, timeout=30):
        """`members` instances of `service` consume its subscription `sub`: a group's members
        on the node's bus; on RabbitMQ the consumers of queue `<Service>-<sub>` (a group), or
        as many queues `<Service>-<sub>-<hex>` with a consumer each (broadcast)."""
        if self.events is None:
            # a broadcast member's group on the node is nameless: count those with wait_members
            assert not broadcast, "on the node's bus, count broadcast members by pattern (wait_members)"
            return self.wait_members(lambda g: g["name"] == f"{service}.{sub}", members, timeout,
                                     what=f"members of {service}.{sub}")

        def check():
            qs = self.events.queues()
            if broadcast:
                mine = [c for n, (_, c) in qs.items() if n.startswith(f"{service}-{sub}-")]
                return len(mine) == members and all(c == 1 for c in mine)
            return qs.get(f"{service}-{sub}", (0, 0))[1] == members
        wait_for(check, timeout, lambda: f"{members} consumer(s) of {service}-{sub}; queues: {self.events.queues()}")

    def wait_drained(self, group_match=None, timeout=30):
        """Until the events are all handled and acked: the node's matching groups settled, or on
        RabbitMQ every queue of the cluster's vhost empty (nothing ready, unacked or delayed)."""
        if self.events is None:
            return self.wait_settled(group_match, timeout)
        wait_for(lambda: all(m == 0 for m, _ in self.events.queues().values()), timeout,
                 lambda: f"the broker's queues to drain: {self.events.queues()}")

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
        # with a registry it registers there too, on tcp as the clients do, so callers find it
        self.registry = cluster.registry
        self.registration = None
        if self.registry is None:
            self.endpoint = f"ipc://{cluster.project.dir}/gate-{uuid.uuid4().hex[:8]}.sock"
        else:
            self.endpoint = "tcp://127.0.0.1:*"  # the port the kernel picks: set once bound
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
            self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
            node.connect(self.node_endpoint)
            node.send_multipart([b"1", b"register", msgpack.packb({
                "id": 1, "service": self.name, "instance": -1, "pid": os.getpid(), "endpoint": self.endpoint,
                "methods": [{"name": "wait", "params": [], "help": "Answers once the test releases it"}]})])
            if not node.poll(10000):
                raise TimeoutError("no answer to register")
            _, rtype, body = node.recv_multipart()
            if rtype != b"ok":
                raise AssertionError(f"register: {rtype} {msgpack.unpackb(body)}")
            if self.registry is not None:
                self.registration = self.registry.register(self.name, self.endpoint, os.getpid())
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
        if self.registration:
            self.registry.unregister(self.registration)
        self.released.set()
        self.done.set()
        self.thread.join(10)
        assert self.error is None, self.error


def new_trace():
    return uuid.uuid4().hex


# ---------------------------------------------------------------- fixtures

def start_cluster(path, services, streams=None, wait=True, backend=EMBEDDED):
    """`devnode up` in `path` with the adapter services on `backend`; waits until each one's
    instances are registered (and so subscribed: adapters subscribe before they register)."""
    Path(path).mkdir(parents=True, exist_ok=True)
    project = e2e.Project(Path(path), uuid.uuid4().hex)
    keys, registry, events, extra_env = backend.for_cluster()
    project.write(config(services, streams, keys))
    env = project.node_env(**extra_env)
    env["PATH"] = "/usr/bin:/bin:" + env.get("PATH", "")  # python3 in commands is Debian's
    try:
        node = project.up(env=env)
        cluster = Cluster(project, node, backend, registry, events)
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
    left = cluster.project.cleanup()
    if cluster.events is not None:
        cluster.events.close()  # once its services are gone, or they would see their vhost go
    return left
