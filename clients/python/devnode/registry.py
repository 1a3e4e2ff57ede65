"""registry.py: the back ends a process uses, read from its environment (docs/backends.md), and
the ZooKeeper registry in lymph's layout through python3-kazoo.

Unset DEVNODE_REGISTRY keeps the node's embedded registry (nothing here runs, kazoo is never
imported). DEVNODE_REGISTRY=zookeeper://host:port[,host:port...][/chroot] registers an ephemeral
znode <chroot>/services/<Service>/<id> holding lymph's JSON description plus devnode's "wire",
and answers lookups from a cache that a children watch keeps current (no round trip per call).
DEVNODE_EVENTS=amqp://… is checked here and used by amqp.py (RabbitMQ in lymph's layout).
"""
import hashlib
import json
import os
import re
import socket
import threading

from .errors import InvalidArgument, NodeError

WIRE = "devnode/1"           # the RPC wire a registration says it speaks; lymph's have none
DEFAULT_CHROOT = "/lymph"
DEFAULT_PORT = 2181
SESSION_MS = 5000            # as libdevnode's DN_ZK_SESSION_MS

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


def parse_url(url):
    """zookeeper://host[:port][,host[:port]...][/chroot] -> (kazoo hosts "h:p,h:p", chroot) with
    the rules of common/zkurl.c: port 2181 by default, chroot /lymph unless named ("/" is the
    root), no user info, query or fragment. InvalidArgument says what is wrong."""
    expect = " (expected zookeeper://host:port[,host:port...][/chroot])"
    if not url.startswith("zookeeper://"):
        raise InvalidArgument("registry URL: want the scheme zookeeper://" + expect)
    rest = url[len("zookeeper://"):]
    if any(c in rest for c in "@?#"):
        raise InvalidArgument("registry URL: no user info, query or fragment" + expect)
    hostpart, slash, chroot = rest.partition("/")
    hosts = []
    for item in hostpart.split(","):
        host, colon, port = item.partition(":")
        if not host or not _HOST.match(host):
            raise InvalidArgument("registry URL: '%s' is not a host name or IPv4 address%s" % (host, expect))
        if colon:
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise InvalidArgument("registry URL: the port must be a number from 1 to 65535" + expect)
        hosts.append("%s:%s" % (host, port if colon else DEFAULT_PORT))
    if not slash:
        chroot = DEFAULT_CHROOT
    elif chroot == "":
        chroot = ""
    else:
        parts = chroot.split("/")
        if any(p in ("", ".", "..") for p in parts) or len(chroot) > 254:
            raise InvalidArgument("registry URL: the chroot '/%s' is not a path" % chroot + expect)
        chroot = "/" + chroot
    return ",".join(hosts), chroot


class Backends:
    """DEVNODE_REGISTRY, DEVNODE_IP, DEVNODE_REGISTRY_SESSION_MS and DEVNODE_EVENTS, checked."""

    def __init__(self, env=None):
        env = os.environ if env is None else env
        # RabbitMQ events (amqp.py); checked here, never repeated in a message: it holds a password
        self.events = env.get("DEVNODE_EVENTS") or None
        if self.events:
            from .amqp import check_url
            check_url(self.events)
        self.registry = env.get("DEVNODE_REGISTRY") or None
        if self.registry:
            try:
                parse_url(self.registry)
            except InvalidArgument as e:
                raise InvalidArgument("DEVNODE_REGISTRY: %s" % e)
        ip = env.get("DEVNODE_IP") or "127.0.0.1"
        try:
            ok = socket.inet_pton(socket.AF_INET, ip) != b"\0\0\0\0"
        except OSError:
            ok = False
        if not ok:
            raise InvalidArgument("DEVNODE_IP=%s: want the IPv4 address other machines reach this one at (not "
                                  "0.0.0.0: it is registered as where to call)" % ip[:64])
        self.ip = ip
        session = env.get("DEVNODE_REGISTRY_SESSION_MS")
        self.session_ms = SESSION_MS
        if session:
            if not session.isdigit() or not 200 <= int(session) <= 600000:
                raise InvalidArgument("DEVNODE_REGISTRY_SESSION_MS=%s: want milliseconds from 200 to 600000" %
                                      session[:32])
            self.session_ms = int(session)


class Refused(Exception):
    """Every instance of a service speaks a wire devnode cannot call."""


class ZookeeperRegistry:
    """One kazoo session: our registration (written again after the session expired) and a
    watched cache of the services looked up."""

    def __init__(self, url, session_ms=SESSION_MS):
        try:
            from kazoo.client import KazooClient, KazooState
        except ImportError:
            raise NodeError("DEVNODE_REGISTRY=%s needs python3-kazoo (apt-get install python3-kazoo)" % url)
        self.url = url
        hosts, self.chroot = parse_url(url)
        self._state = KazooState
        self._lock = threading.Lock()
        self._cache = {}             # service -> [description, ...] sorted by id
        self._loaded = {}            # service -> Event set once its first read is in the cache
        self._regs = {}              # path -> JSON bytes, written again after an expiry
        self._lost = False
        if self.chroot:
            # kazoo warns about a chroot that does not exist; make it first, as zkregistry does
            root = KazooClient(hosts=hosts, timeout=session_ms / 1000.0)
            self._start(root, session_ms)
            try:
                root.ensure_path(self.chroot)
            finally:
                root.stop()
                root.close()
        self.zk = KazooClient(hosts=hosts + self.chroot, timeout=session_ms / 1000.0)
        self._start(self.zk, session_ms)
        self.zk.add_listener(self._on_state)

    def _start(self, client, session_ms):
        try:
            client.start(timeout=max(1.0, session_ms / 1000.0))
        except Exception as e:
            client.close()
            raise NodeError("registry %s: no ZooKeeper session within %d ms (%s)" % (self.url, session_ms, e))

    def _on_state(self, state):
        # a listener must not block: the registrations are written again from a thread of ours
        if state == self._state.LOST:
            self._lost = True
        elif state == self._state.CONNECTED and self._lost:
            self._lost = False
            threading.Thread(target=self._restore, daemon=True).start()

    def _restore(self):
        with self._lock:
            regs = dict(self._regs)
        for path, data in regs.items():
            try:
                self._write(path, data)
            except Exception:
                pass

    def _write(self, path, data):
        from kazoo.exceptions import NoNodeError
        self.zk.ensure_path(path.rsplit("/", 1)[0])
        try:
            self.zk.delete(path)      # lymph's fast-restart protection: the old session's znode
        except NoNodeError:
            pass
        self.zk.create(path, data, ephemeral=True)

    def register(self, service, endpoint, ip, pid):
        """Writes our ephemeral znode; returns (id, identity)."""
        host = socket.gethostname()
        identity = hashlib.md5(repr((endpoint, host, pid)).encode()).hexdigest()
        iid = hashlib.md5(repr((identity, service)).encode()).hexdigest()
        desc = {"id": iid, "identity": identity, "version": None, "endpoint": endpoint, "log_endpoint": None,
                "monitoring_endpoint": None, "backdoor_endpoint": None, "fqdn": host, "hostname": host,
                "ip": ip, "type": False, "wire": WIRE, "pid": pid}
        path = "/services/%s/%s" % (service, iid)
        data = json.dumps(desc, sort_keys=True, separators=(",", ":")).encode()
        try:
            self._write(path, data)
        except Exception as e:
            raise NodeError("registry %s: cannot write %s: %s" % (self.url, path, e))
        with self._lock:
            self._regs[path] = data
        return iid, identity

    def unregister(self, service, iid):
        path = "/services/%s/%s" % (service, iid)
        with self._lock:
            self._regs.pop(path, None)
        try:
            self.zk.delete(path)
        except Exception:
            pass  # it goes with the session

    def lookup(self, service):
        """The descriptions of `service`'s instances, from the cache once watched."""
        with self._lock:
            hit = self._cache.get(service)
        if hit is not None:
            return hit
        path = "/services/%s" % service
        try:
            self.zk.ensure_path(path)   # a children watch needs the znode, as lymph's lookup did
        except Exception as e:
            raise NodeError("registry %s: cannot read %s: %s" % (self.url, path, e))
        loaded = threading.Event()

        def changed(children):
            descs = []
            for child in sorted(children):
                try:
                    data, _ = self.zk.get("%s/%s" % (path, child))
                    desc = json.loads(data.decode("utf-8"))
                except Exception:
                    continue      # gone meanwhile, or not lymph's JSON: nothing could call it
                if isinstance(desc, dict):
                    descs.append(desc)
            with self._lock:
                self._cache[service] = descs
            loaded.set()

        with self._lock:
            loaded_now = self._loaded.get(service)
            first = loaded_now is None
            if first:
                self._loaded[service] = loaded
            else:
                loaded = loaded_now
        if first:
            self.zk.ChildrenWatch(path, changed)
        loaded.wait(10.0)
        with self._lock:
            hit = self._cache.get(service)
        if hit is None:
            raise NodeError("registry %s: no answer from ZooKeeper about %s" % (self.url, service))
        return hit

    def endpoints(self, service):
        """The endpoints devnode can call; Refused when every instance registered speaks another
        wire (lymph's own processes register none)."""
        descs = self.lookup(service)
        ok = [d["endpoint"] for d in descs if d.get("wire") == WIRE and isinstance(d.get("endpoint"), str)]
        if not ok and descs:
            raise Refused("%s: its %d instance(s) in the registry speak lymph's ZeroMQ wire (their registration "
                          "has no \"wire\": \"%s\"), which devnode cannot call" % (service, len(descs), WIRE))
        return ok

    def close(self):
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:
            pass
