"""amqp.py: events through RabbitMQ in lymph's layout (docs/backends.md, "The RabbitMQ layout"),
the Python client's counterpart of lib/amqpevents.c, on python3-kombu. Used when
DEVNODE_EVENTS=amqp://user:pass@host:5672/vhost is set; kombu is imported only then.

Two connections, each owned by one thread, since py-amqp's are not thread-safe:
- the publisher thread publishes in confirm mode, in the order emits were made: a waited emit
  returns once the broker confirmed it; a no-wait one once it is queued for that thread (at most
  WINDOW of them), and a nack or a lost connection is a warning and is counted (flush);
- the consumer thread declares lymph's queues, hands each delivery to the worker pool, and acks
  (or gives back through lymph_retry) once the handler returned.
Both connections ask the broker for heartbeats (DEVNODE_EVENTS_HEARTBEAT_S, 15 s by default, as in C)
and their threads check them, so a broker gone silent (stopped, cut off by a firewall) is noticed in
about twice that instead of never.
It must never ack an event whose handler did not return, nor drop an accepted event silently."""
import collections
import os
import threading
import time
import urllib.parse

import msgpack

from .errors import InvalidArgument, NodeError

EXCHANGE, WAITING, RETRY = "lymph", "lymph_waiting", "lymph_retry"
CONTENT_MSGPACK, CONTENT_JSON = "application/lymph+x-msgpack", "application/lymph+json"
WINDOW = 8192
PREFETCH = 1000
TIMEOUT_S = 5.0
RECONNECT_S = 1.0
HEARTBEAT_S = 15  # lib/internal.h's DN_AMQP_HEARTBEAT_S


def heartbeat_s(env=None):
    """DEVNODE_EVENTS_HEARTBEAT_S, checked as libdevnode checks it (0: no heartbeats)."""
    v = (os.environ if env is None else env).get("DEVNODE_EVENTS_HEARTBEAT_S") or ""
    if not v:
        return HEARTBEAT_S
    if not v.isdigit() or int(v) > 600:
        raise InvalidArgument("DEVNODE_EVENTS_HEARTBEAT_S=%s: want seconds from 1 to 600, or 0 for none" % v[:32])
    return int(v)


def redact(url):
    """The URL as messages may show it: its password as ***."""
    p = urllib.parse.urlsplit(url)
    if p.password is None:
        return url
    netloc = "%s:***@%s" % (p.username or "", p.hostname or "") + (":%d" % p.port if p.port else "")
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))


def check_url(url):
    if url.startswith("amqps://"):
        raise InvalidArgument("DEVNODE_EVENTS: amqps:// (TLS) is not supported: want amqp://user:pass@host:5672/vhost")
    p = urllib.parse.urlsplit(url)
    if p.scheme != "amqp" or not p.hostname:
        raise InvalidArgument("DEVNODE_EVENTS: not an AMQP URL: want amqp://user:pass@host:5672/vhost "
                              "(the vhost percent-encoded: %2F for /)")


def _connect(url, shown, heartbeat):
    import kombu
    conn = kombu.Connection(url, connect_timeout=TIMEOUT_S, heartbeat=heartbeat,
                            transport_options={"confirm_publish": True})
    try:
        conn.connect()
        ch = conn.default_channel
        for name, kind in ((EXCHANGE, "topic"), (WAITING, "direct"), (RETRY, "direct")):
            ch.exchange_declare(name, kind, durable=True, auto_delete=False)
    except Exception as e:
        conn.release()
        raise NodeError("DEVNODE_EVENTS=%s: cannot connect: %s" % (shown, e))
    return conn, ch


class _Publish:
    __slots__ = ("exchange", "key", "body", "ctype", "headers", "type", "done", "error", "delay")

    def __init__(self, exchange, key, body, ctype, headers, type, wait, delay=0):
        self.exchange, self.key, self.body, self.ctype, self.headers, self.type, self.delay = \
            exchange, key, body, ctype, headers, type, delay
        self.done = threading.Event() if wait else None
        self.error = None


class _Sub:
    def __init__(self, queue, patterns, broadcast, handle):
        self.queue, self.patterns, self.broadcast, self.handle = queue, list(patterns), broadcast, handle
        self.name = None  # the declared queue (a broadcast one has a suffix)


class AmqpBus:
    """handle(sub_queue, event_fields, done) runs a handler (on the caller's pool) and calls
    done(ok) when it returned; warn(text) says what the bus notices on its own."""

    def __init__(self, url, source, warn):
        check_url(url)
        self.url, self.shown, self.source, self.warn = url, redact(url), source, warn
        self.heartbeat = heartbeat_s()
        self._pub_conn, self._pub = _connect(url, self.shown, self.heartbeat)  # fail at open, naming the URL
        self._pub_beat = 0.0
        self._queue = collections.deque()
        self._cond = threading.Condition()
        self._lost = 0
        self._inflight = 0
        self._wait_queues = set()
        self._quit = False
        self._pub_thread = threading.Thread(target=self._pub_main, name="devnode-amqp-pub", daemon=True)
        self._pub_thread.start()
        self._subs = []
        self._cmds = collections.deque()   # (fn, threading.Event, [result]) for the consumer thread
        self._done = collections.deque()   # (message, ok, sub) from the workers
        self._con_thread = None
        self._con_quit = False
        self._con_conn = self._con = None

    # ---- publishing (any thread) --------------------------------------------------------------

    def publish(self, type, body, headers, delay_ms=0, wait=False):
        try:
            data = msgpack.packb({"type": type, "headers": headers, "body": body, "source": self.source},
                                 use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as e:
            raise InvalidArgument("emit %s: the body cannot be encoded: %s" % (type, e))
        exchange, key = EXCHANGE, type
        if delay_ms:
            exchange, key = WAITING, "%s-wait_%d" % (type, delay_ms)
        p = _Publish(exchange, key, data, CONTENT_MSGPACK, None, type, wait, delay_ms)
        self._enqueue(p)
        if wait:
            if not p.done.wait(TIMEOUT_S + 1):
                raise NodeError("emit %s: the broker %s did not confirm it within %.0f s" % (type, self.shown, TIMEOUT_S))
            if p.error:
                raise NodeError("emit %s: %s" % (type, p.error))

    def _enqueue(self, p):
        deadline = time.monotonic() + 30
        with self._cond:
            while len(self._queue) + self._inflight >= WINDOW:
                left = deadline - time.monotonic()
                if left <= 0 or self._quit:
                    raise NodeError("emit %s without waiting: %d events wait for the broker for 30 s"
                                    % (p.type, len(self._queue)))
                self._cond.wait(min(left, 0.1))
            self._queue.append(p)
            self._cond.notify_all()

    def flush(self, timeout=10.0):
        """Waits until every queued publish was confirmed or refused; returns how many no-wait
        events since the last call were refused, lost or not confirmed in time (said)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._queue or self._inflight) and time.monotonic() < deadline:
                self._cond.wait(0.05)
            left = len(self._queue) + self._inflight
            if left:
                self.warn("%d event(s) emitted without waiting were not confirmed by the broker %s within %d ms"
                          % (left, self.shown, timeout * 1000))
            lost, self._lost = self._lost + left, 0
            self._queue.clear()
        return lost

    def _beat_due(self, last):
        """True when a connection's heartbeats are due a check (about four per interval)."""
        return self.heartbeat and time.monotonic() - last >= min(1.0, self.heartbeat / 4.0)

    def _beat_failed(self, e):
        """Why heartbeat_check failed: py-amqp's "Too many heartbeats missed", said as C says it."""
        if "heartbeat" in str(e).lower():
            return "no heartbeat from the broker for %d s" % (2 * self.heartbeat)
        return str(e)

    def _pub_check(self):
        """The publisher thread's heartbeat turn: sends ours when due, notices the broker's missing."""
        if self._pub is None or not self._beat_due(self._pub_beat):
            return
        self._pub_beat = time.monotonic()
        import socket
        try:
            try:
                # py-amqp counts what it read as heartbeats: read the idle publisher's socket first
                self._pub_conn.drain_events(timeout=0)
            except socket.timeout:
                pass
            self._pub_conn.heartbeat_check()
        except Exception as e:
            self.warn("lost the connection to the broker %s (%s)" % (self.shown, self._beat_failed(e)))
            try:
                self._pub_conn.release()
            except Exception:
                pass
            self._pub = None  # nothing is in flight between two publishes: opened again at the next

    def _pub_main(self):
        while True:
            self._pub_check()
            with self._cond:
                if not self._queue and not self._quit:
                    self._cond.wait(0.25)  # a turn at least this often, for the heartbeats
                if not self._queue:
                    if self._quit:
                        return
                    continue
                p = self._queue.popleft()
                self._inflight = 1
            error = self._publish_one(p)
            with self._cond:
                self._inflight = 0
                if error and p.done is None:
                    self._lost += 1
                self._cond.notify_all()
            if p.done is not None:
                p.error = error
                p.done.set()
            elif error:
                self.warn("the broker refused the event %s emitted without waiting: %s" % (p.type, error))

    def _publish_one(self, p):
        """Publishes and waits for the confirm: None, or why it failed."""
        for attempt in (0, 1):
            try:
                if self._pub is None:
                    self._pub_conn, self._pub = _connect(self.url, self.shown, self.heartbeat)
                    self._wait_queues.clear()
                if p.exchange == WAITING and p.key not in self._wait_queues:
                    self._pub.queue_declare(p.key, durable=False, auto_delete=False, arguments={
                        "x-ha-policy": "all", "x-dead-letter-exchange": EXCHANGE,
                        "x-dead-letter-routing-key": p.type, "x-message-ttl": int(p.delay)})
                    self._pub.queue_bind(p.key, WAITING, p.key)
                    self._wait_queues.add(p.key)
                msg = self._pub.prepare_message(p.body, priority=0, content_type=p.ctype,
                                                content_encoding="binary", headers=p.headers or {},
                                                properties={"delivery_mode": 2})
                # A confirm that never comes (a broker gone silent) must not hold the thread forever.
                self._pub.basic_publish(msg, exchange=p.exchange, routing_key=p.key, confirm_timeout=TIMEOUT_S)
                return None
            except Exception as e:  # a nack (MessageNacked) or a lost connection
                nack = type(e).__name__ == "MessageNacked"
                if not nack:
                    self.warn("lost the connection to the broker %s (%s)" % (self.shown, e))
                    try:
                        self._pub_conn.release()
                    except Exception:
                        pass
                    self._pub = None
                    if attempt == 0:
                        continue  # once more on a new connection: a publish not confirmed may be sent twice
                return "the broker refused it (nack)" if nack else "lost the connection to the broker (%s)" % e
        return "no connection to the broker"

    # ---- consuming -----------------------------------------------------------------------------

    def subscribe(self, queue, patterns, broadcast, handle):
        sub = _Sub(queue, patterns, broadcast, handle)
        if self._con_thread is None:
            self._con_conn, self._con = _connect(self.url, self.shown, self.heartbeat)
            self._con.basic_qos(0, PREFETCH, False)
            self._con_thread = threading.Thread(target=self._con_main, name="devnode-amqp-con", daemon=True)
            self._con_thread.start()
        self._call(lambda: self._setup(sub))
        self._subs.append(sub)

    def _call(self, fn):
        ev, box = threading.Event(), [None]
        self._cmds.append((fn, ev, box))
        if not ev.wait(TIMEOUT_S * 2):
            raise NodeError("the broker %s did not answer in time" % self.shown)
        if isinstance(box[0], Exception):
            raise NodeError("subscribe: %s" % box[0])

    def _setup(self, sub):
        import uuid
        sub.name = "%s-%s" % (sub.queue, uuid.uuid4().hex) if sub.broadcast else sub.queue
        self._con.queue_declare(sub.name, durable=False, auto_delete=sub.broadcast, arguments={"x-ha-policy": "all"})
        for p in sub.patterns:
            self._con.queue_bind(sub.name, EXCHANGE, p)
        self._con.queue_bind(sub.name, RETRY, sub.name)
        self._con.basic_consume(sub.name, callback=lambda m, s=sub: self._on_message(s, m), no_ack=False)

    def _on_message(self, sub, m):
        ctype = m.properties.get("content_type")
        try:
            if ctype == CONTENT_MSGPACK:
                doc = msgpack.unpackb(m.body, raw=False)
            elif ctype in (CONTENT_JSON, "application/json"):
                import json
                doc = json.loads(m.body)
            else:
                raise ValueError("content type %r is not lymph's (%s)" % (ctype, CONTENT_MSGPACK))
            if not isinstance(doc, dict):
                raise ValueError("the body is not a {type, headers, body, source} map")
        except Exception as e:
            self.warn("dropped a message of queue %s: %s" % (sub.name, e))
            self._con.basic_reject(m.delivery_tag, requeue=False)
            return
        headers = m.properties.get("application_headers") or {}
        retries = headers.get("retry_count") if isinstance(headers.get("retry_count"), int) else 0
        fields = {"type": doc.get("type") if isinstance(doc.get("type"), str) else m.delivery_info["routing_key"],
                  "headers": doc.get("headers") if isinstance(doc.get("headers"), dict) else {},
                  "body": doc.get("body"), "source": doc.get("source") if isinstance(doc.get("source"), str) else "",
                  "delivery": m.delivery_tag, "redelivered": bool(m.delivery_info.get("redelivered")) or retries > 0}
        sub.handle(fields, lambda ok: self._done.append((m, ok, sub, retries)))

    def _con_main(self):
        import socket
        beat = time.monotonic()
        while not self._con_quit:
            while self._cmds:
                fn, ev, box = self._cmds.popleft()
                try:
                    box[0] = fn()
                except Exception as e:
                    box[0] = e
                ev.set()
            while self._done:
                self._settle(*self._done.popleft())
            if self._con is None:
                time.sleep(RECONNECT_S)
                try:
                    self._con_conn, self._con = _connect(self.url, self.shown, self.heartbeat)
                    self._con.basic_qos(0, PREFETCH, False)
                    for sub in self._subs:
                        self._setup(sub)
                    self.warn("subscribed again to %s" % self.shown)
                except Exception as e:
                    self._con = None
                    self.warn("cannot subscribe again: %s" % e)
                continue
            try:
                if self._beat_due(beat):
                    beat = time.monotonic()
                    self._con_conn.heartbeat_check()  # sends ours when due, raises when the broker's stopped
                self._con_conn.drain_events(timeout=0.02)
            except socket.timeout:
                pass
            except Exception as e:
                self.warn("lost the consumer connection to the broker %s (%s): subscribing again in %d ms"
                          % (self.shown, self._beat_failed(e), RECONNECT_S * 1000))
                try:
                    self._con_conn.release()
                except Exception:
                    pass
                self._con = None
                self._done.clear()  # the broker hands those deliveries to other consumers

    def _settle(self, m, ok, sub, retries):
        if m.channel is not self._con:
            return  # from a connection since lost: the broker redelivers it
        if ok:
            self._con.basic_ack(m.delivery_tag)
            return
        # given back: through lymph_retry to this queue, confirmed before the reject
        p = _Publish(RETRY, sub.name, m.body, m.properties.get("content_type") or CONTENT_MSGPACK,
                     {"retry_count": retries + 1}, "retry", True)
        self._enqueue(p)
        p.done.wait(TIMEOUT_S + 1)
        self._con.basic_reject(m.delivery_tag, requeue=bool(p.error or not p.done.is_set()))

    def unsubscribe_all(self, timeout=5.0):
        """Sends what the workers finished, then closes the consumer connection (the broker
        hands unacked deliveries to other consumers)."""
        if self._con_thread is None:
            return
        try:
            self._call(lambda: None)  # one turn: acks of handlers that returned are sent
        except NodeError:
            pass
        self._quit_consumer()

    def _quit_consumer(self):
        t, self._con_thread = self._con_thread, None
        self._con_quit = True
        t.join(2.0)
        self._con_quit = False
        try:
            if self._con_conn is not None:
                self._con_conn.release()
        except Exception:
            pass
        self._con = self._con_conn = None
        self._subs = []

    def close(self):
        if self._con_thread is not None:
            self._quit_consumer()
        with self._cond:
            self._quit = True
            self._cond.notify_all()
        self._pub_thread.join(2.0)
        try:
            self._pub_conn.release()
        except Exception:
            pass
