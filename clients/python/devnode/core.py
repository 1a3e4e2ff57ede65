"""core.py: one process's connection to its node and its RPC endpoint (docs/protocol.md).

One I/O thread owns both ZeroMQ sockets (the DEALER to the node, the ROUTER it serves on): it
reads requests and deliveries, answers the lymph.* built-ins itself, hands user handlers to a
pool of worker threads, sends what the workers hand back (replies, acks, emits), heartbeats
every second and registers again after a stall. Other threads never touch a socket: they queue
work in a deque and wake the I/O thread through a pipe. It must never run a user handler on the
I/O thread (a slow handler would stop heartbeats) nor ack an event before its handler returned.
"""
import collections
import itertools
import logging
import os
import queue
import socket
import sys
import threading
import time

import msgpack
import zmq

from . import trace as _trace
from .errors import InvalidArgument, NodeError, Requeue, Timeout
from .registry import Backends, ZookeeperRegistry

log = logging.getLogger("devnode")

VERSION = b"1"
HEARTBEAT_S = 1.0                 # PROTO_HEARTBEAT_MS
REREGISTER_GAP_S = 2.5            # a stall this long may have cost the registry entry (3 s)
NODE_TIMEOUT_S = 5.0              # PROTO_ANSWER_TIMEOUT_MS
STOP_TIMEOUT_S = 1.0              # unsubscribe + unregister at the end
DRAIN_QUIET_S = 0.3               # a stopping server answers until quiet this long...
DRAIN_MAX_S = 1.2                 # ...or callers' discover caches (1 s) have expired
FLUSH_TIMEOUT_S = 10.0            # stop waits this long for the node to confirm no-wait emits
EMIT_BATCH_MAX = 1000             # PROTO_EMIT_BATCH_MAX
EMIT_BATCH_BYTES = 1 << 20        # a quiet emit goes out at this many bytes of events
EMIT_LINGER_S = 0.001             # ...or this long after its first event
EMIT_UNSENT_MAX = 100000          # an emit waits for room past this many unsent events
EMIT_ROOM_TIMEOUT_S = 30.0
BODY_MAX = 16 << 20               # a message body, at most
NAME_MAX = 200                    # PROTO_NAME_MAX
DELAY_MAX_MS = 7 * 24 * 3600 * 1000
PREFETCH = 128
BATCH = 64
CATCH_UP_IDLE_S = 5.0
PROCESS_BUDGET = 256

_packb = msgpack.Packer(use_bin_type=True).pack  # only the I/O thread uses this one

# pyzmq's send_multipart/recv_multipart spend more on flag enums than on the frames (about
# 10 us a message): the hot paths call the backend's methods with plain int flags.
try:
    from zmq.backend.cython.socket import Socket as _RawSocket
    _raw_send, _raw_recv, _raw_get = _RawSocket.send, _RawSocket.recv, _RawSocket.get
except ImportError:  # another backend: the plain methods
    _raw_send, _raw_recv, _raw_get = zmq.Socket.send, zmq.Socket.recv, zmq.Socket.get
_MORE, NOBLOCK, _RCVMORE = int(zmq.SNDMORE), int(zmq.NOBLOCK), int(zmq.RCVMORE)


def send_frames(sock, frames, flags=0):
    """send_multipart without its overhead; zmq.Again when the first frame cannot go (then
    nothing went)."""
    last = len(frames) - 1
    for i, f in enumerate(frames):
        _raw_send(sock, f, (flags | _MORE) if i < last else flags)


def recv_frames(sock, flags=0):
    """recv_multipart without its overhead (the other frames of a message are there already)."""
    out = [_raw_recv(sock, flags)]
    while _raw_get(sock, _RCVMORE):
        out.append(_raw_recv(sock, 0))
    return out


def _recv_waiting(sock):
    """The messages waiting on sock, PROCESS_BUDGET at most so the loop's other sockets get their
    turn; ends at the first that is not there yet (zmq.Again) or at a closed socket."""
    for _ in range(PROCESS_BUDGET):
        try:
            yield recv_frames(sock, NOBLOCK)
        except zmq.ZMQError:  # zmq.Again included
            return


def packb(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpackb(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def _valid_word_char(c):
    return c.isalnum() or c in "_-"


def _valid_topic_word(word):
    # What the node takes (common/topic.c, as AMQP): a word is any non-empty run of characters
    # but '.'; '*' and '#' only as whole words of a pattern. A stricter check here would refuse
    # types that C services and the CLI emit (`bestellung.größe`, `user signed-up`).
    return bool(word) and "*" not in word and "#" not in word and "\0" not in word


def valid_event_type(t):
    """Dot-separated words, no * or #, 1..NAME_MAX bytes (what the node accepts)."""
    if not isinstance(t, str) or not t or len(t.encode()) > NAME_MAX:
        return False
    return all(_valid_topic_word(word) for word in t.split("."))


def valid_pattern(p):
    if not isinstance(p, str) or not p or len(p.encode()) > 255:
        return False
    return all(word in ("*", "#") or _valid_topic_word(word) for word in p.split("."))


def valid_service_name(s):
    return isinstance(s, str) and 0 < len(s) <= 127 and all(c.isascii() and _valid_word_char(c) for c in s)


class Pool:
    """Worker threads that grow on demand up to `max_workers`: a handler that blocks (sleep, a
    call waiting for its reply) holds one thread, never the others, as a greenlet would."""

    def __init__(self, name="devnode-worker", max_workers=256):
        self._q = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._count = 0
        self._max = max_workers
        self._name = name
        self._busy = 0
        self._done = threading.Condition(self._lock)

    def submit(self, fn, *args):
        spawn = False
        with self._lock:
            self._busy += 1
            if self._idle > 0:
                self._idle -= 1
            elif self._count < self._max:
                self._count += 1
                spawn = True
        self._q.put((fn, args))
        if spawn:
            threading.Thread(target=self._work, name="%s-%d" % (self._name, self._count), daemon=True).start()

    def _work(self):
        while True:
            fn, args = self._q.get()
            if fn is None:
                return
            try:
                fn(*args)
            except BaseException:  # a handler's failure is the handler's: keep the worker
                log.exception("devnode: a task failed")
            with self._lock:
                self._busy -= 1
                self._idle += 1
                if self._busy == 0:
                    self._done.notify_all()

    def wait_idle(self, timeout):
        """Waits until no task runs or is queued; False when `timeout` s passed first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True

    @property
    def busy(self):
        return self._busy


class Method:
    """An RPC method: fn(**kwargs), its param names, which are optional, and its help."""

    __slots__ = ("name", "fn", "params", "optional", "any_kwargs", "help")

    def __init__(self, name, fn, params, optional=(), any_kwargs=False, help=""):
        self.name = name
        self.fn = fn
        self.params = list(params)
        self.optional = set(optional)
        self.any_kwargs = any_kwargs
        self.help = help or ""

    def check(self, args):
        """None when args fit, else why (BadArguments)."""
        for k in args:
            if not isinstance(k, str):
                return "%s: argument names must be strings" % self.name
            if not self.any_kwargs and k not in self.params:
                return "%s() got an unexpected argument '%s'" % (self.name, k[:64])
        for p in self.params:
            if p not in self.optional and p not in args:
                return "%s() is missing the argument '%s'" % (self.name, p)
        return None

    def describe(self):
        return {"name": self.name, "params": list(self.params), "help": self.help}


def _run_handler(sub, event):
    """Runs sub's handler on event under the event's trace id: True to ack it, False to give it
    back (the handler raised Requeue). Any other exception is logged, and the event acked."""
    with _trace.traced(event.trace_id):
        try:
            sub.fn(event)
        except Requeue:
            return False
        except Exception as e:
            log.error("%s: the handler of %s raised %s: %s", sub.group, event.type, type(e).__name__, e)
    return True


class Event:
    """An event as a handler gets it; event['name'] reads the body, as lymph's did."""

    __slots__ = ("type", "body", "headers", "source", "trace_id", "delivery", "offset", "redelivered",
                 "subscription")

    def __init__(self, type, body, headers, source, trace_id, delivery, offset, redelivered, subscription):
        self.type = type
        self.body = body
        self.headers = headers
        self.source = source
        self.trace_id = trace_id
        self.delivery = delivery
        self.offset = offset
        self.redelivered = redelivered
        self.subscription = subscription

    def __getitem__(self, key):
        return self.body[key]

    def get(self, key, default=None):
        return self.body.get(key, default) if isinstance(self.body, dict) else default

    def __repr__(self):
        return "Event(type=%r, body=%r, source=%r, offset=%r)" % (self.type, self.body, self.source, self.offset)


class Subscription:
    """One subscription: patterns, its group, and the handler fn(event). A retained stream's
    events are handled one at a time in offset order; other events concurrently, each message
    of the node (up to BATCH events) in order."""

    def __init__(self, sid, patterns, group, fn, broadcast=False, stream=None, start=None, catch_up=False):
        self.id = sid
        self.patterns = list(patterns)
        self.group = group
        self.fn = fn
        self.broadcast = broadcast
        self.stream = stream
        self.start = start or ("resume" if stream else None)
        self.catch_up = catch_up
        self.active = False
        self.start_offset = 0
        self.last_offset = -1
        self.serial = stream is not None
        self.backlog = collections.deque()
        self.running = False
        self.serial_lock = threading.Lock()
        self.cond = threading.Condition()

    def request(self, pid):
        body = {"subscription": self.id, "patterns": self.patterns,
                "group": None if self.broadcast else self.group, "broadcast": bool(self.broadcast),
                "pid": pid, "prefetch": PREFETCH, "batch": BATCH}
        if self.stream:
            body["stream"] = self.stream
            # an offset goes as an integer: the node refuses "120" (protocol.md, subscribe)
            body["from"] = int(self.start) if self.start.isdigit() else self.start
        return body


class _Waiter:
    __slots__ = ("event", "type", "body", "error", "abandoned", "confirms")

    def __init__(self):
        self.confirms = 0
        self.event = threading.Event()
        self.type = None
        self.body = None
        self.error = None
        self.abandoned = False


class Core:
    """The connection of one process. `service` names it (the source of its emits, the prefix
    of its groups); `serve` decides whether it binds an RPC endpoint and registers (a service)
    or only calls, emits and subscribes (a client, like devnode_open)."""

    def __init__(self, node_endpoint, service, instance=-1, run_dir=None, serve=True):
        if not valid_service_name(service):
            raise InvalidArgument("service name '%s': want 1-127 letters, digits, '_' or '-'" % service)
        self.node_endpoint = node_endpoint
        self.service = service
        self.instance = instance
        self.run_dir = run_dir or ""
        self.serve = serve
        self.pid = os.getpid()
        self.backends = Backends()   # DEVNODE_REGISTRY, DEVNODE_IP, DEVNODE_EVENTS
        self._bus = None             # RabbitMQ (amqp.py) when DEVNODE_EVENTS is set, opened at the first need
        self._remote = None          # the ZooKeeper registry, opened at the first need
        self._remote_id = None       # our znode's name there once registered
        self.ctx = zmq.Context()
        self.node = None
        if node_endpoint:
            self.node = self.ctx.socket(zmq.DEALER)
            self.node.setsockopt(zmq.LINGER, 200)
            self.node.setsockopt(zmq.SNDHWM, 100000)
            self.node.connect(node_endpoint)
        self.router = None
        self.rpc_endpoint = ""
        self.identity = None
        self.started = False
        self.registered = False
        self.started_at = time.monotonic()
        self.served = 0
        self.malformed = 0
        self.pool = Pool()
        self.methods = {}            # (interface, method) -> Method, set before start
        self.aliases = {}            # interface name served as another (DEVNODE_SERVICE) -> name
        self.subs = {}               # subscription id -> Subscription
        self._sub_counter = itertools.count(1)
        self._ids = itertools.count(1)
        self._pending = {}           # request id -> _Waiter
        self._outbox = collections.deque()
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        self._woken = False
        self._quit = False
        self._thread = None
        self._acks = []
        self._nacks = []
        self._next_heartbeat = 0.0
        self._last_heartbeat = None
        self._reregister_due = False
        self._last_rpc = 0.0
        self._dispatching = True
        # the no-wait emit queue, filled by any thread, sent by the I/O thread
        self._eq_lock = threading.Lock()
        self._eq_room = threading.Condition(self._eq_lock)
        self._eq_items = []
        self._eq_types = []
        self._eq_bytes = 0
        self._eq_first = 0.0
        self._eq_unsent = 0          # events queued or in batches not yet handed to ZeroMQ
        self._eq_backlog = collections.deque()  # (body bytes, count) ZeroMQ would not take yet
        self._eq_flush = False
        self._quiet = collections.OrderedDict()  # quiet emit id -> its event types (recent ones)
        self.unconfirmed = 0
        self.on_warning = None       # fn(text): replaces the stderr line (tests, own loggers)

    # ---- threads and waking ---------------------------------------------------------------

    def wake(self):
        if not self._woken:
            self._woken = True
            try:
                os.write(self._wfd, b"x")
            except BlockingIOError:
                pass

    def _post(self, item):
        self._outbox.append(item)
        self.wake()

    def start_io(self):
        if self._thread is None:
            self._next_heartbeat = time.monotonic() + HEARTBEAT_S
            self._thread = threading.Thread(target=self._io_main, name="devnode-io", daemon=True)
            self._thread.start()

    def warn(self, text, level="WARNING"):
        """What the client notices on its own: one `LEVEL devnode: text` line on stderr (with the
        current trace id when there is one), or on_warning(text) when set."""
        text = " ".join(str(text).splitlines())
        if self.on_warning:
            self.on_warning(text)
            return
        try:
            tid = _trace.trace_id()
            sys.stderr.write("%s devnode: %s%s\n" % (level, text, " trace_id=%s" % tid if tid else ""))
            sys.stderr.flush()
        except Exception:
            pass

    # ---- requests to the node (from any thread) ---------------------------------------------

    def request(self, type, body, timeout=NODE_TIMEOUT_S):
        """Sends a request through the I/O thread (after every no-wait emit queued before it) and
        waits for its reply: (type, body). NodeError when the node refuses it or is silent."""
        if self.node is None:
            raise NodeError("'%s' needs a node: opened without one" % type)
        self.start_io()
        w = _Waiter()
        if threading.current_thread() is self._thread:
            raise NodeError("'%s' from the I/O thread" % type)
        self._post(("request", type, dict(body), w))
        if not w.event.wait(timeout):
            w.abandoned = True
            raise NodeError("the node did not answer '%s' in time" % type)
        if w.error:
            raise NodeError(w.error)
        if w.type == "error":
            raise NodeError("the node refused '%s': %s" % (type, (w.body or {}).get("message", "")))
        return w.type, w.body

    def send_soon(self, type, body):
        """A message with no reply (heartbeat, ack) sent by the I/O thread."""
        self._post(("send", type, body))

    # ---- emits --------------------------------------------------------------------------------

    def emit_nowait(self, type, body, delay_ms=0, trace_id=None, headers=None):
        """Queues an event; it leaves with the others as one quiet emit (see the module doc)."""
        if not valid_event_type(type):
            raise InvalidArgument("emit: want an event type of dot-separated words (1-%d bytes, no * or #), not %r"
                                  % (NAME_MAX, type))
        delay_ms = int(delay_ms)
        if delay_ms < 0 or delay_ms > DELAY_MAX_MS:
            raise InvalidArgument("emit %s: delay must be between 0 and a week" % type)
        if self.backends.events:
            return self.bus().publish(type, body, _headers(headers, trace_id), delay_ms, wait=False)
        if self.node is None:
            raise NodeError("emit %s needs a node: opened without one" % type)
        try:
            item = packb({"type": type, "body": body, "headers": _headers(headers, trace_id), "delay_ms": delay_ms})
        except (TypeError, ValueError, OverflowError) as e:
            raise InvalidArgument("emit %s: the body cannot be encoded: %s" % (type, e))
        if len(item) > BODY_MAX - 4096:
            raise InvalidArgument("emit %s: the body is over 16 MiB" % type)
        with self._eq_lock:
            if self._eq_unsent >= EMIT_UNSENT_MAX:
                deadline = time.monotonic() + EMIT_ROOM_TIMEOUT_S
                while self._eq_unsent >= EMIT_UNSENT_MAX:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._quit:
                        raise NodeError("emit %s without waiting: %d events are waiting for the node for %.0f s "
                                        "(is the node stuck?)" % (type, self._eq_unsent, EMIT_ROOM_TIMEOUT_S))
                    self._eq_room.wait(min(left, 0.1))
                    self.wake()
            first = not self._eq_items
            if first:
                self._eq_first = time.monotonic()
            self._eq_items.append(item)
            self._eq_types.append(type)
            self._eq_bytes += len(item)
            self._eq_unsent += 1
            full = len(self._eq_items) >= EMIT_BATCH_MAX or self._eq_bytes >= EMIT_BATCH_BYTES
            if full:
                self._eq_flush = True
        if first or full:
            self.wake()

    def flush_emits(self):
        """Asks the I/O thread to send queued events now (end of a handler's turn)."""
        if self._eq_items:
            self._eq_flush = True
            self.wake()

    def emit(self, type, body, delay_ms=0, trace_id=None, headers=None):
        """Emits and waits until the node queued it: the reply {groups, offset}."""
        if not valid_event_type(type):
            raise InvalidArgument("emit: want an event type of dot-separated words (1-%d bytes, no * or #), not %r"
                                  % (NAME_MAX, type))
        if self.backends.events:
            delay_ms = int(delay_ms)
            if delay_ms < 0 or delay_ms > DELAY_MAX_MS:
                raise InvalidArgument("emit %s: delay must be between 0 and a week" % type)
            self.bus().publish(type, body, _headers(headers, trace_id), delay_ms, wait=True)
            return {"events": 1, "offset": None}  # confirmed by the broker; no retained stream there
        _, reply = self.request("emit", {"type": type, "body": body, "headers": _headers(headers, trace_id),
                                         "source": self.service, "delay_ms": int(delay_ms)})
        return reply

    def confirm(self, timeout=FLUSH_TIMEOUT_S):
        """Waits until the node has every no-wait event emitted before (a ping after them).
        Returns how many it did not confirm (0: all)."""
        if self.node is None:
            return 0
        pending = self.unconfirmed + self._eq_unsent
        if pending == 0:
            return 0
        try:
            self.request("ping", {}, timeout)
            return 0
        except NodeError as e:
            lost = self.unconfirmed + self._eq_unsent
            self.warn("%d event(s) emitted without waiting were not confirmed by the node within %d ms: %s"
                      % (lost, timeout * 1000, e))
            return lost

    # ---- subscriptions --------------------------------------------------------------------------

    def add_subscription(self, patterns, group_name, fn, broadcast=False, stream=None, start=None,
                         catch_up=False):
        if isinstance(patterns, str):
            patterns = [patterns]
        patterns = list(patterns)
        if not patterns or len(patterns) > 32 or not all(valid_pattern(p) for p in patterns):
            raise InvalidArgument("subscribe: want 1-32 patterns of dot-separated words, * or #: %r" % (patterns,))
        if stream is not None:
            if not valid_pattern(stream):
                raise InvalidArgument("subscribe: want the stream's pattern, not %r" % (stream,))
            start = "resume" if start is None else str(start)
            if start not in ("beginning", "now", "resume") and not (start.isdigit() and len(start) <= 18):
                raise InvalidArgument("subscribe to %s: from must be beginning, now, resume or an offset, not '%s'"
                                      % (stream, start[:40]))
            if catch_up and patterns[0] not in (stream, "#"):
                raise InvalidArgument("subscribe to %s: catching up needs every event of the stream, not only %s "
                                      "(filter in the handler)" % (stream, patterns[0]))
        if stream is not None and self.backends.events:
            raise InvalidArgument("subscribe to stream %s: retained streams are the embedded node's only; "
                                  "DEVNODE_EVENTS=amqp://... has none (unset it to read the stream)" % stream)
        sub = Subscription("s%d" % next(self._sub_counter), patterns, "%s.%s" % (self.service, group_name or
                           patterns[0]), fn, broadcast, stream, start, catch_up)
        self.subs[sub.id] = sub
        if self.started or not self.serve:
            self.send_subscription(sub)
        return sub

    def close_events(self, timeout=FLUSH_TIMEOUT_S):
        """DEVNODE_EVENTS: stops consuming (handled events acked first) and waits for the broker's
        confirms; returns how many no-wait events it refused or did not confirm. 0 otherwise."""
        if self._bus is None:
            return 0
        self._bus.unsubscribe_all()
        for sub in self.subs.values():
            sub.active = False
        return self._bus.flush(timeout)

    def bus(self):
        if self._bus is None:
            from .amqp import AmqpBus
            self._bus = AmqpBus(self.backends.events, self.service, self.warn)
        return self._bus

    def _send_amqp_subscription(self, sub):
        # lymph's queue of (service, handler): "<Service>-<name>", the group being "<Service>.<name>"
        queue = "%s-%s" % (self.service, sub.group[len(self.service) + 1:])
        self.bus().subscribe(queue, sub.patterns, sub.broadcast,
                             lambda fields, done: self.pool.submit(self._run_amqp, sub, fields, done))
        sub.active = True

    def _run_amqp(self, sub, fields, done):
        if not self._dispatching:
            return  # stopping: left unacked, the broker hands it to another consumer
        headers = fields["headers"]
        tid = _trace.sanitize(headers.get("trace_id")) or _trace.new_trace_id()
        event = Event(fields["type"], fields["body"], headers, fields["source"], tid, fields["delivery"], -1,
                      fields["redelivered"], sub.group)
        done(_run_handler(sub, event))

    def send_subscription(self, sub):
        if self.backends.events:
            return self._send_amqp_subscription(sub)
        self.start_io()
        self.request("subscribe", sub.request(self.pid))
        sub.active = True
        sub.start_offset = 0
        if sub.stream and sub.broadcast:
            if sub.start.isdigit():
                sub.start_offset = int(sub.start)
            elif sub.start != "beginning":
                try:
                    sub.start_offset, _ = self.stream_status(sub.stream, None)
                except NodeError:
                    pass

    def stream_status(self, stream, group):
        """(next offset of `stream`, committed offset of `group` or -1)."""
        _, body = self.request("bus_status", {})
        nxt = None
        for st in body.get("streams") or []:
            if isinstance(st, dict) and st.get("pattern") == stream:
                nxt = st.get("next_offset")
        if nxt is None:
            raise NodeError("the node keeps no stream %s (streams: in .lymph.yml)" % stream)
        committed = -1
        for g in body.get("groups") or []:
            if group and isinstance(g, dict) and g.get("name") == group and g.get("stream") == stream:
                c = g.get("committed_offset")
                committed = c if isinstance(c, int) else -1
                break
        return nxt, committed

    def catch_up(self, sub, timeout=5.0, idle=CATCH_UP_IDLE_S):
        """Waits until `sub` handled its stream up to the end the node has now."""
        end, committed = self.stream_status(sub.stream, None if sub.broadcast else sub.group)
        done = sub.start_offset if sub.broadcast else committed
        deadline = time.monotonic() + timeout if timeout else None
        with sub.cond:
            mark = sub.last_offset
            idle_deadline = time.monotonic() + idle
            while sub.last_offset + 1 < end and done < end:
                now = time.monotonic()
                if sub.last_offset != mark:
                    mark = sub.last_offset
                    idle_deadline = now + idle
                until = min(idle_deadline, deadline) if deadline else idle_deadline
                if now >= until:
                    raise Timeout("%s: caught up to offset %d of %d only" % (sub.group, sub.last_offset + 1, end))
                sub.cond.wait(min(until - now, 0.5))

    # ---- start and stop -----------------------------------------------------------------------

    def remote(self):
        """The ZooKeeper registry DEVNODE_REGISTRY names (NodeError when it cannot be reached)."""
        if self._remote is None:
            self._remote = ZookeeperRegistry(self.backends.registry, self.backends.session_ms)
        return self._remote

    def _bind_tcp(self, router):
        # callers may be on other machines: tcp on DEVNODE_IP (loopback unless the user named an
        # address: RPC has no authentication), a port the kernel picks
        try:
            router.bind("tcp://%s:*" % self.backends.ip)
        except zmq.ZMQError as e:
            router.close(0)
            raise NodeError("cannot bind the RPC endpoint tcp://%s:*: %s" % (self.backends.ip, e))
        self.rpc_endpoint = router.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.router = router
        return self.rpc_endpoint

    def bind(self):
        """Binds the ROUTER on <dir>/rpc/<Service>.<instance>.<pid>.sock, in the run dir, else the
        node's socket dir, else /tmp/devnode-<uid>/ (a unix socket path fits in 107 bytes); with a
        remote registry on tcp://DEVNODE_IP:<port>."""
        name = "%s.%d.%d.sock" % (self.service, self.instance, self.pid)
        dirs = []
        if self.run_dir:
            dirs.append(self.run_dir)
        if self.node_endpoint and self.node_endpoint.startswith("ipc://"):
            d = os.path.dirname(self.node_endpoint[6:])
            if d:
                dirs.append(d)
        dirs.append("/tmp/devnode-%d" % os.getuid())
        router = self.ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 100)
        router.setsockopt(zmq.SNDHWM, 100000)
        router.setsockopt(zmq.RCVHWM, 100000)
        if self.backends.registry:
            return self._bind_tcp(router)
        tried = ""
        for i, base in enumerate(dirs):
            d = os.path.join(base, "rpc")
            path = os.path.join(d, name)
            if len(path.encode()) > 107:
                tried = "%s (too long for a unix socket)" % path
                continue
            try:
                if i == len(dirs) - 1:
                    os.makedirs(base, 0o700, exist_ok=True)
                    st = os.lstat(base)
                    if not os.path.isdir(base) or os.path.islink(base) or st.st_uid != os.getuid():
                        tried = "%s is not a directory of ours" % base
                        continue
                os.makedirs(d, 0o700, exist_ok=True)
            except OSError as e:
                tried = "%s: %s" % (d, e.strerror)
                continue
            self._sweep_stale(d)
            try:
                router.bind("ipc://" + path)
            except zmq.ZMQError as e:
                tried = "ipc://%s: %s" % (path, e)
                continue
            self.rpc_endpoint = "ipc://" + path
            self.router = router
            return self.rpc_endpoint
        router.close(0)
        raise NodeError("cannot bind the RPC endpoint: %s" % tried)

    def _sweep_stale(self, d):
        prefix = self.service + "."
        try:
            names = os.listdir(d)
        except OSError:
            return
        for n in names:
            if not n.startswith(prefix) or not n.endswith(".sock"):
                continue
            parts = n[len(prefix):-5].split(".")
            if len(parts) != 2:
                continue
            try:
                pid = int(parts[1])
                int(parts[0])
            except ValueError:
                continue
            if pid <= 0 or pid == self.pid:
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                try:
                    os.unlink(os.path.join(d, n))
                except OSError:
                    pass
            except PermissionError:
                pass

    def register(self):
        if self.backends.registry and self._remote_id is None:
            # where callers look; the node still hears of us (status). Written once: after a
            # session expiry the registry writes it again itself.
            self._remote_id, self.identity = self.remote().register(self.service, self.rpc_endpoint,
                                                                    self.backends.ip, self.pid)
        if self.node is None:
            return
        methods = [m.describe() for (iface, _), m in self.methods.items() if iface == self.primary]
        _, body = self.request("register", {"service": self.service, "instance": self.instance, "pid": self.pid,
                                            "endpoint": self.rpc_endpoint, "methods": methods})
        if not self.backends.registry:
            self.identity = (body or {}).get("identity")
        self.registered = True

    @property
    def primary(self):
        return self.aliases.get(self.service, self.service)

    def start(self):
        """Binds, catches up with DEVNODE_CATCH_UP-style subscriptions, registers, subscribes the
        rest and tells NOTIFY_SOCKET READY=1. A refused register is said, not fatal."""
        if self.started:
            return
        if self.backends.registry:
            self.remote()  # a registry that cannot be reached fails the start, naming its URL
        self.bind()
        self.started_at = time.monotonic()
        self.start_io()
        self._post(("router",))
        self.started = True
        for sub in list(self.subs.values()):
            if sub.catch_up and sub.stream:
                try:
                    self.send_subscription(sub)
                    t0 = time.monotonic()
                    self.catch_up(sub, timeout=0)
                    if time.monotonic() - t0 >= 1.0:
                        self.warn("%s caught up with stream %s (to offset %d) in %.1fs" % (
                            sub.group, sub.stream, sub.last_offset, time.monotonic() - t0), "INFO")
                except (NodeError, Timeout) as e:
                    self.stop()
                    raise NodeError("cannot catch up with stream %s: %s" % (sub.stream, e))
        if self.node is not None:
            try:
                self.register()
            except NodeError as e:
                self.warn("%s.%d could not register: %s" % (self.service, self.instance, e))
            self._subscribe_inactive()
        if self.backends.events:  # no node needed for the broker's subscriptions
            self._subscribe_inactive()
        notify_ready()

    def _subscribe_inactive(self):
        """Sends every subscription not active yet; one that fails is warned about, not raised."""
        for sub in list(self.subs.values()):
            if not sub.active:
                try:
                    self.send_subscription(sub)
                except NodeError as e:
                    self.warn("%s.%d could not subscribe to '%s': %s" % (self.service, self.instance,
                                                                         sub.patterns[0], e))

    def stop(self, handler_timeout=5.0):
        """Handlers of events finish and are acked; unsubscribe and unregister; requests that still
        come are answered until quiet; every no-wait emit is confirmed by the node (10 s at most);
        then the sockets close. Returns how many no-wait events the node did not confirm."""
        self._dispatching = False
        self.pool.wait_idle(handler_timeout)
        if self._bus is not None:
            self._bus.unsubscribe_all()  # the handlers' acks go first
            for sub in self.subs.values():
                sub.active = False
        if self._remote_id is not None:
            # out of the registry first: callers watching it stop picking us while we drain
            self._remote.unregister(self.service, self._remote_id)
            self._remote_id = None
        if self.node is not None and self._thread is not None:
            last = None
            for sub in self.subs.values():
                if sub.active:
                    sub.active = False
                    last = self._post_request("unsubscribe", {"subscription": sub.id})
            if self.registered:
                self.registered = False
                last = self._post_request("unregister", {"pid": self.pid})
            if last is not None:
                last.event.wait(STOP_TIMEOUT_S)
        if self.router is not None and self._thread is not None:
            self._dispatching = True  # requests still on their way are answered
            start = time.monotonic()
            self._last_rpc = start
            while True:
                now = time.monotonic()
                if now - self._last_rpc >= DRAIN_QUIET_S or now - start >= DRAIN_MAX_S:
                    break
                time.sleep(0.02)
            self._dispatching = False
            self.pool.wait_idle(handler_timeout)
        unconfirmed = self.confirm(FLUSH_TIMEOUT_S) if self._thread is not None else 0
        if self._bus is not None:
            unconfirmed += self._bus.flush(FLUSH_TIMEOUT_S)
        self.started = False
        self.close()
        return unconfirmed

    def _post_request(self, type, body):
        w = _Waiter()
        self._post(("request", type, body, w))
        return w

    def close(self):
        if self._thread is not None:
            self._quit = True
            self.wake()
            self._thread.join(3.0)
            self._thread = None
        if self.router is not None:
            self.router.close(100)
            self.router = None
            if self.rpc_endpoint.startswith("ipc://"):
                try:
                    os.unlink(self.rpc_endpoint[6:])
                except OSError:
                    pass
        if self.node is not None:
            self.node.close(200)
            self.node = None
        if self._bus is not None:
            self._bus.close()
            self._bus = None
        if self._remote is not None:
            self._remote.close()  # the session's znodes go with it
            self._remote = None
        for fd in (self._rfd, self._wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._rfd = self._wfd = -1
        self.ctx.term()

    # ---- the I/O thread --------------------------------------------------------------------------

    def _io_main(self):
        poller = zmq.Poller()
        if self.node is not None:
            poller.register(self.node, zmq.POLLIN)
        poller.register(self._rfd, zmq.POLLIN)
        node_flags = zmq.POLLIN
        while True:
            timeout = self._timeout_ms()
            want = zmq.POLLIN | (zmq.POLLOUT if self._eq_backlog else 0)
            if self.node is not None and want != node_flags:
                poller.modify(self.node, want)
                node_flags = want
            try:
                ready = dict(poller.poll(timeout))
            except zmq.ZMQError as e:
                if e.errno == zmq.ETERM:
                    return
                continue
            if self._rfd in ready:
                try:
                    while os.read(self._rfd, 4096):
                        pass
                except (BlockingIOError, OSError):
                    pass
                self._woken = False
            try:
                self._drain_outbox(poller)
                if self.router is not None and ready.get(self.router, 0) & zmq.POLLIN:
                    self._read_router()
                if self.node is not None and ready.get(self.node, 0) & zmq.POLLIN:
                    self._read_node()
                self._end_of_turn()
            except Exception as e:  # a bug here must not silence the process: say it, go on
                self.warn("the I/O thread caught %s: %s" % (type(e).__name__, e), "ERROR")
            if self._quit and not self._outbox:
                self._end_of_turn(final=True)
                return

    def _timeout_ms(self):
        if self._outbox or self._eq_flush or self._acks or self._nacks:
            return 0
        now = time.monotonic()
        wait = self._next_heartbeat - now
        if self._eq_items:
            wait = min(wait, self._eq_first + EMIT_LINGER_S - now)
        if self._eq_backlog:
            wait = min(wait, 0.1)
        return max(0, int(wait * 1000 + 0.999))

    def _drain_outbox(self, poller):
        out = self._outbox
        while out:
            item = out.popleft()
            kind = item[0]
            if kind == "reply":
                try:
                    send_frames(self.router, item[1], NOBLOCK)
                except (zmq.ZMQError, AttributeError):
                    pass  # a caller that went away: ROUTER drops what it cannot route
            elif kind == "request":
                _, type, body, w = item
                rid = next(self._ids)
                body["id"] = rid
                self._send_emits()  # no-wait events first: one connection, in order
                w.confirms = self.unconfirmed
                self._pending[rid] = w
                if not self._node_send(type, body):
                    self._pending.pop(rid, None)
                    w.error = "cannot send '%s' to the node" % type
                    w.event.set()
            elif kind == "send":
                self._node_send(item[1], item[2])
            elif kind == "router":
                if self.router is not None:
                    poller.register(self.router, zmq.POLLIN)

    def _node_send(self, type, body):
        if self.node is None:
            return False
        msg = [VERSION, type.encode(), packb(body)]
        try:
            send_frames(self.node, msg, NOBLOCK)
            return True
        except zmq.Again:
            # 100k messages wait for the node: give it a second, as a write to a full pipe would;
            # then a heartbeat or an ack is better dropped than the loop stalled
            try:
                if self.node.poll(1000, zmq.POLLOUT):
                    send_frames(self.node, msg, NOBLOCK)
                    return True
            except zmq.ZMQError:
                pass
            return False
        except zmq.ZMQError:
            return False

    def _end_of_turn(self, final=False):
        if self._acks:
            acks, self._acks = self._acks, []
            self._node_send("ack", {"deliveries": acks})
        if self._nacks:
            nacks, self._nacks = self._nacks, []
            self._node_send("nack", {"deliveries": nacks})
        now = time.monotonic()
        if self._eq_items and (self._eq_flush or final or now >= self._eq_first + EMIT_LINGER_S):
            self._send_emits()
        elif self._eq_backlog:
            self._send_backlog()
        if now >= self._next_heartbeat:
            self._heartbeat(now)
        if self._reregister_due and self.started and self.registered:
            self._reregister_due = False
            methods = [m.describe() for (iface, _), m in self.methods.items() if iface == self.primary]
            rid = next(self._ids)
            self._pending[rid] = _Waiter()
            self._pending[rid].abandoned = True
            self._node_send("register", {"id": rid, "service": self.service, "instance": self.instance,
                                         "pid": self.pid, "endpoint": self.rpc_endpoint, "methods": methods})

    def _heartbeat(self, now):
        subscribed = any(s.active for s in self.subs.values())
        self._next_heartbeat = now + HEARTBEAT_S
        if not (self.started or subscribed) or self.node is None:
            return
        if self._last_heartbeat is not None and now - self._last_heartbeat > REREGISTER_GAP_S and self.registered:
            self.warn("%s.%d sent no heartbeat for %.1fs (the process stalled); registering again"
                      % (self.service, self.instance, now - self._last_heartbeat))
            self._reregister_due = True
        self._last_heartbeat = now
        self._node_send("heartbeat", {"id": next(self._ids), "pid": self.pid})

    def _send_emits(self):
        with self._eq_lock:
            items, types = self._eq_items, self._eq_types
            self._eq_items, self._eq_types, self._eq_bytes = [], [], 0
            self._eq_flush = False
        for start in range(0, len(items), EMIT_BATCH_MAX):
            chunk = items[start:start + EMIT_BATCH_MAX]
            rid = next(self._ids)
            head = b"".join((_packb_map_header(4), _packb("id"), _packb(rid), _packb("source"),
                             _packb(self.service), _packb("quiet"), _packb(True), _packb("events"),
                             _packb_array_header(len(chunk))))
            self._quiet[rid] = types[start:start + EMIT_BATCH_MAX]
            while len(self._quiet) > 512:
                self._quiet.popitem(last=False)
            self._eq_backlog.append((head + b"".join(chunk), len(chunk)))
        self._send_backlog()

    def _send_backlog(self):
        sent = 0
        while self._eq_backlog:
            body, count = self._eq_backlog[0]
            try:
                send_frames(self.node, [VERSION, b"emit", body], NOBLOCK)
            except zmq.Again:
                break
            except zmq.ZMQError:
                break
            self._eq_backlog.popleft()
            sent += count
        if sent:
            with self._eq_lock:
                self._eq_unsent -= sent
                self.unconfirmed += sent
                self._eq_room.notify_all()

    def _read_node(self):
        for frames in _recv_waiting(self.node):
            if len(frames) != 3:
                self.malformed += 1
                self.warn("dropped a malformed message from the node: %d frames" % len(frames))
                continue
            version, mtype, raw = frames
            if version != VERSION:
                self.malformed += 1
                self.warn("dropped a message from the node: the node speaks protocol %s, this client %s: run the "
                          "node and its clients from the same devnode build" % (version.decode("ascii", "replace"),
                                                                                 VERSION.decode()))
                continue
            try:
                body = unpackb(raw)
            except Exception:
                body = None
            if not isinstance(body, dict):
                self.malformed += 1
                self.warn("dropped a malformed message from the node: the body is not a map")
                continue
            mtype = mtype.decode("ascii", "replace")
            if mtype == "event":
                self._on_delivery(body, [body])
            elif mtype == "events":
                events = body.get("events")
                if isinstance(events, list):
                    self._on_delivery(body, [e for e in events if isinstance(e, dict)])
                else:
                    self.malformed += 1
            elif mtype == "emit_refused":
                self._on_refused(body)
            else:
                self._on_reply(mtype, body)

    def _on_reply(self, mtype, body):
        rid = body.get("id")
        w = self._pending.pop(rid, None) if isinstance(rid, int) else None
        if w is not None:
            # the node answers a connection in order: the events sent before the request are in
            self.unconfirmed = max(0, self.unconfirmed - w.confirms)
            w.type, w.body = mtype, body
            w.event.set()
            return
        types = self._quiet.pop(rid, None) if isinstance(rid, int) else None
        if types is not None and mtype == "error":
            # a node without quiet emits refused the whole batch at once
            self.warn("the node refused %d event(s) emitted without waiting (%s): %s"
                      % (len(types), ", ".join(sorted(set(types))[:5]), body.get("message", "")))

    def _on_refused(self, body):
        rid = body.get("id")
        types = self._quiet.pop(rid, None) or []
        for r in body.get("refused") or []:
            if not isinstance(r, dict):
                continue
            index = r.get("index")
            etype = r.get("type")
            if not etype and isinstance(index, int) and 0 <= index < len(types):
                etype = types[index]
            self.warn("the node refused the event %s emitted without waiting (%s of %s in one emit): %s"
                      % (etype or "(no type)", (index + 1) if isinstance(index, int) else "?",
                         body.get("events", "?"), r.get("message", "")))

    # ---- events ---------------------------------------------------------------------------------

    def _on_delivery(self, msg, events):
        sub = self.subs.get(msg.get("subscription"))
        if sub is None or not sub.active or not self._dispatching:
            self._nacks.extend(e["delivery"] for e in events if isinstance(e.get("delivery"), int))
            return
        if sub.serial:
            with sub.serial_lock:
                sub.backlog.append(events)
                start = not sub.running
                sub.running = True
            if start:
                self.pool.submit(self._run_serial, sub)
        else:
            self.pool.submit(self._run_events, sub, events)

    def _run_serial(self, sub):
        while True:
            with sub.serial_lock:  # one runner per stream subscription, in offset order
                if not sub.backlog:
                    sub.running = False
                    return
                events = sub.backlog.popleft()
            self._run_events(sub, events)

    def _run_events(self, sub, events):
        acks, nacks = [], []
        high = -1
        for ev in events:
            delivery = ev.get("delivery")
            if not isinstance(delivery, int) or delivery < 0:
                self.malformed += 1
                continue
            etype = ev.get("type")
            if not isinstance(etype, str):
                nacks.append(delivery)
                continue
            headers = ev.get("headers")
            if not isinstance(headers, dict):
                headers = {}
            tid = _trace.sanitize(headers.get("trace_id")) or _trace.new_trace_id()
            offset = ev.get("offset")
            offset = offset if isinstance(offset, int) and offset >= 0 else -1
            event = Event(etype, ev.get("body"), headers, ev.get("source") or "", tid, delivery, offset,
                          bool(ev.get("redelivered")), sub.group)
            ok = _run_handler(sub, event)
            (acks if ok else nacks).append(delivery)
            if ok and offset > high:
                high = offset
        if high > sub.last_offset:  # catch_up waits on this mark: once per message is enough
            with sub.cond:
                if high > sub.last_offset:
                    sub.last_offset = high
                sub.cond.notify_all()
        self._acks.extend(acks)
        self._nacks.extend(nacks)
        self.flush_emits()
        self.wake()

    # ---- serving RPC ------------------------------------------------------------------------------

    def _read_router(self):
        for frames in _recv_waiting(self.router):
            self._last_rpc = time.monotonic()
            if len(frames) != 6 or frames[2] != b"REQ" or not frames[1] or len(frames[1]) > 64:
                self.malformed += 1
                self.warn("dropped a malformed RPC message (%d frames)" % len(frames))
                continue
            self._serve(frames)

    def _reply(self, frames, type, trace_id, body_bytes):
        rid = b"%s%08x" % (_REPLY_PREFIX, next(_reply_counter))
        send_frames(self.router, [frames[0], rid, type, frames[1], packb({"trace_id": trace_id}), body_bytes],
                    NOBLOCK)

    def _reply_error(self, frames, type, trace_id, etype, message):
        self._reply(frames, type, trace_id, packb({"type": etype, "message": message}))

    def _serve(self, frames):
        try:
            headers = unpackb(frames[4])
        except Exception:
            headers = None
        tid = _trace.sanitize(headers.get("trace_id")) if isinstance(headers, dict) else ""
        tid = tid or _trace.new_trace_id()
        self.served += 1
        try:
            subject = frames[3].decode()
        except UnicodeDecodeError:
            subject = ""
        iface, dot, method = subject.partition(".")
        try:
            body = unpackb(frames[5])
        except Exception:
            body = None
        try:
            if not iface or not dot or not method:
                return self._reply_error(frames, b"NACK", tid, "BadRequest", "subject must be Interface.method")
            if not isinstance(body, dict):
                return self._reply_error(frames, b"NACK", tid, "BadRequest",
                                         "the body must be a map of keyword arguments")
            if iface == "lymph":
                return self._serve_builtin(frames, tid, method, body)
            name = self.aliases.get(iface, iface)
            m = self.methods.get((name, method))
            if m is None:
                if any(i == name for i, _ in self.methods) or name == self.primary:
                    why = "%s has no method '%s'" % (iface, method)
                else:
                    why = "no interface '%s' here (this is %s)" % (iface[:100], self.service)
                return self._reply_error(frames, b"NACK", tid, "UnknownMethod", why)
            why = m.check(body)
            if why:
                return self._reply_error(frames, b"ERROR", tid, "BadArguments", why)
        except zmq.ZMQError:
            return
        self.pool.submit(self._run_method, frames, tid, m, body)

    def _run_method(self, frames, tid, m, body):
        with _trace.traced(tid):
            try:
                result = m.fn(**body)
                try:
                    out = (b"REP", packb(result))
                except (TypeError, ValueError, OverflowError) as e:
                    out = (b"ERROR", packb({"type": "HandlerError",
                                            "message": "the result cannot be encoded: %s" % e}))
            except Exception as e:
                etype = e.type if getattr(e, "type", None) and isinstance(e.type, str) else type(e).__name__
                log.warning("%s.%s raised %s: %s", self.service, m.name, etype, e)
                out = (b"ERROR", packb({"type": etype, "message": str(e)}))
        rid = b"%s%08x" % (_REPLY_PREFIX, next(_reply_counter))
        self._outbox.append(("reply", [frames[0], rid, out[0], frames[1], packb({"trace_id": tid}), out[1]]))
        if self._eq_items:
            self._eq_flush = True
        self.wake()

    def _serve_builtin(self, frames, tid, method, body):
        if method == "ping":
            result = body.get("payload")
        elif method == "status":
            result = {"service": self.service, "instance": self.instance, "pid": self.pid,
                      "endpoint": self.rpc_endpoint, "identity": self.identity,
                      "uptime_ms": int((time.monotonic() - self.started_at) * 1000), "served": self.served}
        elif method == "inspect":
            methods = [m.describe() for (iface, _), m in self.methods.items() if iface == self.primary]
            methods += [{"name": "lymph.ping", "params": ["payload"], "help": "Returns the payload"},
                        {"name": "lymph.status", "params": [],
                         "help": "Service, instance, pid, endpoint, uptime and requests served"},
                        {"name": "lymph.inspect", "params": [], "help": "The methods of this service"}]
            result = {"methods": methods}
        else:
            return self._reply_error(frames, b"NACK", tid, "UnknownMethod", "unknown method 'lymph.%s'" % method[:100])
        self._reply(frames, b"REP", tid, packb(result))


_REPLY_PREFIX = os.urandom(4).hex().encode()
_reply_counter = itertools.count(1)


def _packb_map_header(n):
    return msgpack.Packer().pack_map_header(n)


def _packb_array_header(n):
    return msgpack.Packer().pack_array_header(n)


def _headers(extra, trace_id):
    """An event's headers: the caller's, with the trace id (given, current, or new) on top."""
    headers = dict(extra) if extra else {}
    headers["trace_id"] = trace_id or _trace.trace_or_new()
    return headers


def notify_ready():
    """sd_notify(3) READY=1 on NOTIFY_SOCKET (`ready: notify`); advisory, like libdevnode's."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path or path[0] not in "/@":
        return
    addr = "\0" + path[1:] if path[0] == "@" else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(b"READY=1", addr)
    except OSError as e:
        log.warning("NOTIFY_SOCKET=%s: %s", path, e)
