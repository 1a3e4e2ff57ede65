"""calls.py: calling other services' RPC methods (docs/protocol.md "RPC between services").

A caller resolves a service through the node's `discover` (cached for a second), connects one
DEALER per instance and goes round robin, as lymph did. The DEALERs live in channels that a
calling thread checks out for the length of one call, so concurrent calls never share a socket
and a thread that makes many calls reuses open connections. The calling thread does its own
I/O: the I/O thread of core.py keeps serving meanwhile, so a call cycle (Ping.foo -> Pong.bar ->
Ping.foo) completes. It must never retry a call that was sent (no method runs twice).
"""
import concurrent.futures
import itertools
import os
import threading
import time

import zmq

from . import trace as _trace
from .core import NOBLOCK, packb, recv_frames, send_frames, unpackb
from .errors import InvalidArgument, Nack, NodeError, NotFound, RemoteError, Timeout
from .registry import Refused

DEFAULT_TIMEOUT = 5.0
DISCOVER_TTL = 1.0
CONNECT_WAIT = 0.2          # how long a fresh connection may take before another instance is tried
CHANNELS_KEPT = 64


class _Channel:
    __slots__ = ("sockets",)

    def __init__(self):
        self.sockets = {}   # endpoint -> (DEALER, connected_at)


class Caller:
    """Calls for one process. `core` (a core.Core) answers discover; None calls only given
    endpoints (Caller.call(..., address=...))."""

    def __init__(self, core=None, ctx=None):
        self.core = core
        self.ctx = ctx or (core.ctx if core is not None else zmq.Context.instance())
        self._free = []
        self._lock = threading.Lock()
        self._cache = {}             # service -> (expires, [endpoints])
        self._rr = {}
        self._prefix = os.urandom(4).hex().encode()
        self._counter = itertools.count(1)
        self._closed = False
        self._deferred = None

    # ---- channels -----------------------------------------------------------------------------

    def _take(self):
        with self._lock:
            if self._free:
                return self._free.pop()
        return _Channel()

    def _give(self, ch):
        with self._lock:
            if not self._closed and len(self._free) < CHANNELS_KEPT:
                self._free.append(ch)
                return
        for sock, _ in ch.sockets.values():
            sock.close(0)

    def close(self):
        with self._lock:
            self._closed = True
            free, self._free = self._free, []
        for ch in free:
            for sock, _ in ch.sockets.values():
                sock.close(0)
        if self._deferred is not None:
            self._deferred.shutdown(wait=False)

    def _socket(self, ch, endpoint):
        entry = ch.sockets.get(endpoint)
        if entry is None:
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IMMEDIATE, 1)   # a dead instance is skipped at once, not a timeout
            sock.connect(endpoint)
            entry = (sock, time.monotonic())
            ch.sockets[endpoint] = entry
        return entry

    # ---- discovery ------------------------------------------------------------------------------

    def instances(self, service, fresh=False):
        """The endpoints of `service`'s registered instances (cached DISCOVER_TTL s)."""
        if self.core is not None and self.core.backends.registry:
            # the registry's watched cache is always current: one lookup, no round trip
            try:
                return self.core.remote().endpoints(service)
            except Refused as e:
                raise NotFound(str(e))
        now = time.monotonic()
        hit = self._cache.get(service)
        if hit and not fresh and hit[0] > now:
            return hit[1]
        if self.core is None or self.core.node is None:
            raise NodeError("calling %s needs a node (or an address): opened without one" % service)
        _, body = self.core.request("discover", {"service": service})
        endpoints = []
        for svc in body.get("services") or []:
            if isinstance(svc, dict) and svc.get("name") == service:
                for inst in svc.get("instances") or []:
                    if isinstance(inst, dict) and isinstance(inst.get("endpoint"), str):
                        endpoints.append(inst["endpoint"])
        self._cache[service] = (now + DISCOVER_TTL, endpoints)
        return endpoints

    def forget(self, service):
        self._cache.pop(service, None)

    # ---- calls -------------------------------------------------------------------------------------

    def call(self, subject, args=None, timeout=None, address=None, with_headers=False):
        """Calls `subject` ("Service.method", or "Service.lymph.status" for a built-in) with `args` and
        returns the result (with_headers: (result, reply headers)). Raises RemoteError.<type>
        (ERROR), Nack (NACK), Timeout, NotFound, NodeError, InvalidArgument."""
        service, dot, method = subject.partition(".") if isinstance(subject, str) else ("", "", "")
        if not service or not dot or not method:
            raise InvalidArgument("call: want Service.method, not %r" % (subject,))
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise InvalidArgument("call %s: the arguments must be a dict of names" % subject)
        timeout = DEFAULT_TIMEOUT if not timeout else float(timeout)
        tid = _trace.trace_or_new()
        msg_id = b"%s%08x" % (self._prefix, next(self._counter))
        # "Service.lymph.status" (or any Service.Interface.method) sends "lymph.status" to one of
        # Service's instances; "Service.method" is sent as it is
        wire_subject = method if "." in method else subject
        try:
            payload = [msg_id, b"REQ", wire_subject.encode(), packb({"trace_id": tid}), packb(args)]
        except (TypeError, ValueError, OverflowError) as e:
            raise InvalidArgument("call %s: the arguments cannot be encoded: %s" % (subject, e))
        deadline = time.monotonic() + timeout
        ch = self._take()
        try:
            sock = self._send(ch, service, payload, address, deadline)
            return self._wait(sock, msg_id, subject, deadline, timeout, service, with_headers)
        finally:
            self._give(ch)

    def _send(self, ch, service, payload, address, deadline):
        if address:
            candidates = [address]
        else:
            candidates = self.instances(service)
        for attempt in range(2):
            if candidates:
                n = len(candidates)
                start = self._rr.get(service, 0)
                self._rr[service] = start + 1
                for i in range(n):
                    endpoint = candidates[(start + i) % n]
                    sock, born = self._socket(ch, endpoint)
                    try:
                        send_frames(sock, payload, NOBLOCK)
                        return sock
                    except zmq.Again:
                        # a fresh connection needs its handshake before IMMEDIATE lets a message out
                        now = time.monotonic()
                        wait_ms = min(max(0, int((born + CONNECT_WAIT - now) * 1000)),
                                      max(0, int((deadline - now) * 1000)))
                        if wait_ms and sock.poll(wait_ms, zmq.POLLOUT):
                            try:
                                send_frames(sock, payload, NOBLOCK)
                                return sock
                            except zmq.Again:
                                pass
            if address or attempt:
                break
            candidates = self.instances(service, fresh=True)  # every known instance failed
        if address:
            raise NotFound("NotFound: nothing answers at %s" % address)
        raise NotFound("no instance of %s is reachable" % service if candidates else
                       "no instance of %s is registered" % service)

    def _wait(self, sock, msg_id, subject, deadline, timeout, service, with_headers):
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise zmq.Again()
                # a receive timeout rather than a poll: no poller to build per call
                sock.setsockopt(zmq.RCVTIMEO, max(1, int(left * 1000)))
                frames = recv_frames(sock)
            except zmq.Again:
                self.forget(service)
                raise Timeout("%s: no reply within %d ms" % (subject, timeout * 1000))
            if len(frames) != 5 or frames[2] != msg_id:
                continue  # a late reply to a call that timed out
            rtype = frames[1]
            try:
                body = unpackb(frames[4])
            except Exception:
                raise RemoteError.of("BadReply")("%s: the reply cannot be decoded" % subject)
            if rtype == b"REP":
                if with_headers:
                    try:
                        headers = unpackb(frames[3])
                    except Exception:
                        headers = {}
                    return body, headers
                return body
            etype, message = "HandlerError", ""
            if isinstance(body, dict):
                etype = body.get("type") if isinstance(body.get("type"), str) else etype
                message = body.get("message") if isinstance(body.get("message"), str) else ""
            if rtype == b"NACK":
                raise Nack.of(etype)(message, etype)
            raise RemoteError.of(etype)(message, etype)

    def defer(self, subject, args=None, timeout=None, address=None):
        """A call made on another thread, like lymph's proxy(...).method.defer(): a Future whose
        result() is the call's result (or raises its error). Carries the current trace id."""
        if self._deferred is None:
            with self._lock:
                if self._deferred is None:
                    self._deferred = concurrent.futures.ThreadPoolExecutor(32, "devnode-defer")
        tid = _trace.trace_or_new()

        def run():
            with _trace.traced(tid):
                return self.call(subject, args, timeout, address)

        return self._deferred.submit(run)


class _Method:
    __slots__ = ("_caller", "_subject", "_timeout")

    def __init__(self, caller, subject, timeout):
        self._caller = caller
        self._subject = subject
        self._timeout = timeout

    def __call__(self, **kwargs):
        return self._caller.call(self._subject, kwargs, self._timeout)

    def defer(self, **kwargs):
        return self._caller.defer(self._subject, kwargs, self._timeout)


class Proxy:
    """self.proxy('Greeting').greet(name='joe'): calls Greeting.greet; .greet.defer(...) returns
    a Future. `timeout` in seconds (default 5)."""

    def __init__(self, caller, service, timeout=None, namespace=None):
        self._caller = caller
        self._service = service
        self._timeout = timeout
        self._namespace = namespace or service

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Method(self._caller, "%s.%s" % (self._namespace, name), self._timeout)

    def _call(self, method, **kwargs):
        return self._caller.call("%s.%s" % (self._namespace, method), kwargs, self._timeout)

    def __repr__(self):
        return "<Proxy %s>" % self._service
