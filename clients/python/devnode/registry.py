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
import logging
import os
import re
import socket
import sys
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


class _Service:
    """One service of the cache: its instances as last read, and the watch that reads it again."""

    def __init__(self, name, watch):
        self.name = name
        self.path = "/services/%s" % name
        self.descs = None            # [description, ...] sorted by id, once read
        self.loaded = threading.Event()
        self.watch = watch           # one callable per service: kazoo keeps a set of them per path


class ZookeeperRegistry:
    """One kazoo session: our registration (written again after the session expired) and a
    watched cache of the services looked up.

    kazoo reconnects by itself; the cache's side is ours (as lib/zkregistry.c's): a keeper thread
    does every read, so neither kazoo's threads nor a caller ever waits on a round trip for
    another; each watch that fires queues its service for a read; after every reconnection
    (same session or a new one) every cached service is read again, so nothing missed while
    the connection was away stays out of the cache; a read that fails is done again on the next
    reconnection. Lookups of a cached service never wait; the first lookup of one waits for its
    read at most the session timeout, then fails naming ZooKeeper's address."""

    def __init__(self, url, session_ms=SESSION_MS):
        try:
            from kazoo.client import KazooClient, KazooState
        except ImportError:
            raise NodeError("DEVNODE_REGISTRY=%s needs python3-kazoo (apt-get install python3-kazoo)" % url)
        self.url = url
        hosts, self.chroot = parse_url(url)
        self.hosts = hosts
        self.session_s = session_ms / 1000.0
        self._state = KazooState
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._services = {}          # name -> _Service (under _lock)
        self._queue = []             # names to read, in order, each once (under _lock)
        self._regs = {}              # path -> JSON bytes, written again after an expiry (under _lock)
        self._restore = False        # the session expired: write the registrations again (under _lock)
        self._lost = False           # the connection went and that was said (under _lock)
        self._expired_session = 0
        self._closing = False
        # kazoo logs every failed connection attempt: the listener below says it once instead
        klog = logging.getLogger("devnode.registry.kazoo")
        klog.setLevel(logging.ERROR)
        # kazoo's own reconnection backoff doubles up to an hour: after an outage of a few
        # seconds it would wait past the session timeout (ZooKeeper gives every session its whole
        # timeout again when it starts) and lose a session it could have kept. Capped here.
        retry = dict(max_tries=-1, delay=0.1, backoff=2, max_jitter=0.1,
                     max_delay=max(0.1, min(1.0, self.session_s / 4)))
        # kazoo waits session / len(hosts) for the answer to each connection attempt: one attempt
        # stuck on a server that listens but does not serve yet (a restarting ZooKeeper) would
        # cost the whole session. Each host listed three times makes an attempt a third of it.
        hosts = ",".join([hosts] * 3)
        if self.chroot:
            # kazoo warns about a chroot that does not exist; make it first, as zkregistry does
            root = KazooClient(hosts=hosts, timeout=self.session_s, logger=klog, connection_retry=retry)
            self._start(root, session_ms)
            try:
                root.ensure_path(self.chroot)
            finally:
                root.stop()
                root.close()
        self.zk = KazooClient(hosts=hosts + self.chroot, timeout=self.session_s, logger=klog,
                               connection_retry=retry)
        self._start(self.zk, session_ms)
        self._session_id = self.zk.client_id[0] if self.zk.client_id else 0
        self.zk.add_listener(self._on_state)
        self._keeper = threading.Thread(target=self._keep, name="devnode-registry", daemon=True)
        self._keeper.start()

    def _start(self, client, session_ms):
        try:
            client.start(timeout=max(1.0, session_ms / 1000.0))
        except Exception as e:
            client.close()
            raise NodeError("registry %s: no ZooKeeper session with %s within %d ms (%s)" %
                            (self.url, self.hosts, session_ms, e))

    def _say(self, text):
        sys.stderr.write("registry %s: %s\n" % (self.url, text))
        sys.stderr.flush()

    def _on_state(self, state):
        # kazoo's connection thread: it must not block, the keeper does the work
        with self._lock:
            if self._closing:
                return
            if state == self._state.SUSPENDED:
                if not self._lost:
                    self._lost = True
                    say = "lost the connection to ZooKeeper; lookups answer from the cache until it is back"
                else:
                    say = None
            elif state == self._state.LOST:
                self._lost = False    # the renewal is said once it is done
                self._restore = True
                self._expired_session = self._session_id
                say = None
            else:                     # CONNECTED: read every cached service again
                say = "connected to ZooKeeper again in the same session; the cached services are read again" \
                    if self._lost else None
                self._lost = False
                for name in self._services:
                    if name not in self._queue:
                        self._queue.append(name)
                self._wake.notify()
        if say:
            self._say(say)

    def _keep(self):
        while True:
            with self._lock:
                while not self._closing and not self._queue and not (self._restore and self._connected()):
                    self._wake.wait()
                if self._closing:
                    return
                restore = self._restore and self._connected()
                if restore:
                    self._restore = False
                    regs = dict(self._regs)
                    name = None
                else:
                    name = self._queue.pop(0)
            if restore:
                self._rewrite(regs)
            else:
                self._read(name)

    def _connected(self):
        return self.zk.state == self._state.CONNECTED

    def _rewrite(self, regs):
        written = 0
        for path, data in regs.items():
            try:
                self._write(path, data)
                written += 1
            except Exception:
                with self._lock:
                    self._restore = True      # retried at the next reconnection
        cid = self.zk.client_id
        self._session_id = cid[0] if cid else 0
        self._say("the ZooKeeper session 0x%x expired; renewed as 0x%x, %d registration(s) written again%s" %
                  (self._expired_session, self._session_id, written,
                   " (some failed: retried later)" if written < len(regs) else ""))

    def _read(self, name):
        """Reads a service's children and each child's description, watching them all."""
        from kazoo.exceptions import NoNodeError
        with self._lock:
            svc = self._services[name]
        try:
            self._call(self.zk.ensure_path_async(svc.path))  # a children watch needs the znode, as lymph's lookup did
            children = self._call(self.zk.get_children_async(svc.path, watch=svc.watch))
            descs = []
            for child in sorted(children):
                try:
                    data, _ = self._call(self.zk.get_async("%s/%s" % (svc.path, child), watch=svc.watch))
                except NoNodeError:
                    continue          # gone meanwhile: the children watch reads again
                try:
                    desc = json.loads(data.decode("utf-8"))
                except ValueError:
                    continue          # not lymph's JSON: nothing could call it
                if isinstance(desc, dict):
                    descs.append(desc)
        except Exception:
            return                    # the connection went: read again when it is back
        with self._lock:
            svc.descs = descs
        svc.loaded.set()

    def _call(self, async_result):
        return async_result.get(timeout=self.session_s)

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
            self._call(self.zk.delete_async(path))
        except Exception:
            pass  # it goes with the session

    def lookup(self, service):
        """The descriptions of `service`'s instances, from the cache once watched."""
        with self._lock:
            svc = self._services.get(service)
            if svc is None:
                svc = _Service(service, lambda event, name=service: self._watched(name))
                self._services[service] = svc
                self._queue.append(service)
                self._wake.notify()
            descs = svc.descs
        if descs is not None:
            return descs
        if not svc.loaded.wait(self.session_s):
            raise NodeError("registry %s: no answer from ZooKeeper at %s about %s within %d ms" %
                            (self.url, self.hosts, service, self.session_s * 1000))
        with self._lock:
            return svc.descs

    def _watched(self, name):
        # kazoo's callback thread: queue the read, the keeper does it
        with self._lock:
            if name not in self._queue:
                self._queue.append(name)
                self._wake.notify()

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
        with self._lock:
            self._closing = True
            self._wake.notify()
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:
            pass
