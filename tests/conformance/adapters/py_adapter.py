"""py_adapter: the Python client's side of the conformance suite (tests/conformance/README.md is
the contract every adapter follows). Run as `python3 -m devnode instance py_adapter:Adapter`; its
subscriptions come from CONFORMANCE_SUBS and its RPC methods let the scenarios make it act: echo,
fail, sleep, hold, call, emit, whoami. Everything it handles it reports as one line on stdout,
`conformance rpc|event {json}`, through print (the runner appends the trace id). It must stay a
plain user of the devnode package's public API, as a lymph service would be.
"""
import json
import os
import sys
import time

import devnode


def report(kind, fields):
    fields["trace_id"] = devnode.trace_id() or ""
    fields["pid"] = os.getpid()
    print("conformance %s %s" % (kind, json.dumps(fields, sort_keys=True, separators=(",", ":"))))


def parse_subs(spec):
    """CONFORMANCE_SUBS: group:NAME:PATTERN, broadcast:NAME:PATTERN, stream:NAME:STREAM:FROM[:broadcast]."""
    subs = []
    for item in (spec or "").split():
        f = item.split(":")
        if len(f) < 3 or f[0] not in ("group", "broadcast", "stream") or (f[0] == "stream" and len(f) < 4):
            sys.stderr.write("py_adapter: CONFORMANCE_SUBS: bad item %r\n" % item)
            raise SystemExit(2)
        subs.append({"kind": f[0], "name": f[1], "pattern": f[2], "from": f[3] if f[0] == "stream" else None,
                     "broadcast": f[0] == "broadcast" or (len(f) == 5 and f[4] == "broadcast")})
    return subs


class _CustomError(Exception):
    pass


def _error_class(name):
    """An exception class named `name`: the callee's error type is its class name."""
    return type(str(name), (_CustomError,), {})


class Adapter(devnode.Interface):
    service_name = os.environ.get("DEVNODE_SERVICE")

    @devnode.rpc()
    def echo(self, value):
        """Returns value"""
        report("rpc", {"method": "echo", "args": {"value": value}})
        return value

    @devnode.rpc()
    def fail(self, type, message):
        """Fails with the given error type and message"""
        report("rpc", {"method": "fail", "args": {"type": type, "message": message}})
        raise _error_class(type or "HandlerError")(message)

    @devnode.rpc()
    def sleep(self, ms):
        """Sleeps ms milliseconds"""
        report("rpc", {"method": "sleep", "args": {"ms": ms}})
        time.sleep(max(ms, 0) / 1000.0)
        return ms

    @devnode.rpc()
    def hold(self, path):
        """Returns once the file path exists"""
        report("rpc", {"method": "hold", "args": {"path": path}})
        while not os.path.exists(path):
            time.sleep(0.02)
        return "held"

    @devnode.rpc()
    def call(self, subject, args=None, timeout_ms=None):
        """Calls subject with args"""
        report("rpc", {"method": "call", "args": {"subject": subject, "args": args, "timeout_ms": timeout_ms}})
        timeout = timeout_ms / 1000.0 if timeout_ms else None
        try:
            return {"result": self.request(subject, args or {}, timeout=timeout)}
        except devnode.DevnodeError as e:
            if isinstance(e, devnode.Nack):
                kind = "nack"
            elif isinstance(e, devnode.RemoteError):
                kind = "remote"
            elif isinstance(e, devnode.Timeout):
                kind = "timeout"
            elif isinstance(e, devnode.NotFound):
                kind = "not_found"
            elif isinstance(e, devnode.InvalidArgument):
                kind = "invalid"
            else:
                kind = "node"
            return {"error": {"kind": kind, "type": e.type, "message": e.message}}

    @devnode.rpc()
    def emit(self, type, body=None, delay_ms=0, wait=False, count=1):
        """Emits count events of type"""
        report("rpc", {"method": "emit", "args": {"type": type, "body": body, "delay_ms": delay_ms, "wait": wait,
                                                  "count": count}})
        offsets = []
        for i in range(count):
            b = {"i": i, "body": body} if count > 1 else body
            if wait:
                offsets.append(Interface_emit(self, type, b, delay_ms, True)["offset"])
            else:
                Interface_emit(self, type, b, delay_ms, False)
                offsets.append(None)
        return {"trace_id": devnode.trace_id() or "", "offsets": offsets}

    @devnode.rpc()
    def whoami(self):
        """Says which instance answers"""
        report("rpc", {"method": "whoami", "args": {}})
        return {"service": os.environ.get("DEVNODE_SERVICE"), "instance": int(os.environ.get("DEVNODE_INSTANCE", -1)),
                "pid": os.getpid(), "trace_id": devnode.trace_id() or "", "language": "python"}


def Interface_emit(iface, type_, body, delay_ms, wait):
    # The rpc method above is named emit, as the other adapters' is: reach the base class's.
    return devnode.Interface.emit(iface, type_, body, delay=delay_ms / 1000.0, wait=wait)


def _handler(sub):
    def on_event(self, event):
        report("event", {"sub": sub["name"], "type": event.type, "body": event.body, "source": event.source,
                         "event_trace_id": event.trace_id, "offset": event.offset,
                         "redelivered": bool(event.redelivered), "delivery": event.delivery,
                         "headers": event.headers})
        body = event.body if isinstance(event.body, dict) else {}
        if isinstance(body.get("relay"), str):
            Interface_emit(self, body["relay"], {k: v for k, v in body.items() if k != "relay"}, 0, False)
        if body.get("hold") is True and not event.redelivered:
            while True:  # never acks: the scenario kills this process
                time.sleep(0.1)
        if body.get("nack") is True and not event.redelivered:
            raise devnode.Requeue()  # given back: the node delivers it again

    stream = sub["pattern"] if sub["kind"] == "stream" else None
    return devnode.event(sub["pattern"], broadcast=sub["broadcast"], stream=stream, start=sub["from"],
                         name=sub["name"])(on_event)


for _sub in parse_subs(os.environ.get("CONFORMANCE_SUBS")):
    setattr(Adapter, "on_" + _sub["name"], _handler(_sub))
