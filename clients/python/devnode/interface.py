"""interface.py: lymph's service API over core.Core and calls.Caller: Interface with @rpc()
methods and @event() handlers, self.emit and self.proxy, and the Container that hosts the
interfaces of one process (the runner's, or a test's). Handlers run on worker threads
(docs/python.md "Concurrency"); nothing here touches a socket.
"""
import inspect
import logging
import os
import threading

from . import trace as _trace
from .calls import Caller, Proxy
from .core import Core, Method
from .errors import InvalidArgument, NodeError

log = logging.getLogger("devnode")


def rpc(name=None, help=None):
    """Marks a method of an Interface as an RPC method, served as <Interface>.<name>. Its
    parameters are the arguments callers must give (those with defaults are optional; **kwargs
    accepts any); its docstring is the help `devnode inspect` shows."""

    def mark(fn):
        fn._devnode_rpc = {"name": name or fn.__name__, "help": help}
        return fn

    if callable(name):  # @rpc without parentheses
        fn, name = name, None
        return mark(fn)
    return mark


def event(*patterns, broadcast=False, stream=None, start=None, catch_up=False, name=None):
    """Marks a method of an Interface as the handler of events matching `patterns` (AMQP topic
    rules: `order.*`, `order.#`). Each event is handled once per service (group
    <Service>.<method>), by one of its instances; broadcast=True: by every instance.
    stream='book.#' reads the node's retained stream from `start` ('beginning', 'now',
    'resume' (default) or an offset); catch_up=True handles it to its end before the instance
    registers and says READY=1. The handler gets an Event (event['name'] reads the body,
    event.offset its place in the stream). Raising devnode.Requeue gives it back."""
    if not patterns and stream:
        patterns = (stream,)
    if not patterns:
        raise InvalidArgument("event: want at least one pattern")

    def mark(fn):
        fn._devnode_event = {"patterns": list(patterns), "broadcast": broadcast, "stream": stream,
                             "start": start, "catch_up": catch_up, "name": name or fn.__name__}
        return fn

    return mark


def _method_of(name, fn, help_text):
    sig = inspect.signature(fn)
    params, optional, any_kwargs = [], [], False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            any_kwargs = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            params.append(p.name)
            if p.default is not p.empty:
                optional.append(p.name)
    doc = help_text if help_text is not None else (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")
    return Method(name, fn, params, optional, any_kwargs, doc)


class Interface:
    """A service interface as lymph had it. Subclass it, decorate methods with @devnode.rpc()
    and @devnode.event(...); the runner (python3 -m devnode instance module:Class) serves it."""

    #: the name it is served and registered as (default: the config key, else the class name)
    service_name = None

    def __init__(self, container=None, name=None):
        self.container = container
        self.name = name or self.service_name or type(self).__name__
        self.config = {}

    # hooks, as lymph's
    def apply_config(self, config):
        self.config = config or {}

    def on_start(self):
        pass

    def on_stop(self):
        pass

    # what handlers use
    def emit(self, event_type, payload=None, headers=None, delay=0, wait=False):
        """Emits an event with the current trace id (and any extra `headers`), as lymph's
        emit(event_type, payload, headers=None, delay=0). Without wait it returns at once and the
        event leaves with others as one message (docs/python.md); a refusal by the node comes
        later as a `WARNING devnode:` line naming it. `delay` in seconds. wait=True returns once
        the node queued it, with {groups, offset} (offset: its place in a retained stream)."""
        delay_ms = int(round(float(delay or 0) * 1000))
        core = self.container.core
        if wait:
            return core.emit(event_type, payload, delay_ms, headers=headers)
        core.emit_nowait(event_type, payload, delay_ms, headers=headers)
        return None

    def proxy(self, name, timeout=None, **_ignored):
        """A proxy to service `name`: self.proxy('Greeting').greet(name='joe')."""
        return Proxy(self.container.caller, name, timeout)

    def request(self, subject, body=None, timeout=None):
        """Calls `subject` ('Service.method') with the dict `body` of arguments."""
        return self.container.caller.call(subject, body or {}, timeout)

    def catch_up(self, name, timeout=5.0):
        """Handles the stream subscription `name` (the handler's method name) up to the
        stream's end as it is now: read-your-writes for state kept from a stream."""
        return self.container.catch_up(self, name, timeout)

    @property
    def trace_id(self):
        return _trace.trace_id()

    def _rpc_methods(self):
        for attr in dir(type(self)):
            fn = getattr(type(self), attr, None)
            info = getattr(fn, "_devnode_rpc", None)
            if info:
                yield info["name"], getattr(self, attr), info["help"]

    def _event_handlers(self):
        for attr in dir(type(self)):
            fn = getattr(type(self), attr, None)
            info = getattr(fn, "_devnode_event", None)
            if info:
                yield info, getattr(self, attr)


class Container:
    """The interfaces of one process, its node connection and its RPC endpoint. `service`
    (default DEVNODE_SERVICE, else the first interface's name) is what it registers as; every
    interface answers under its own name too. Outside devnode (no DEVNODE_ENDPOINT) it fails
    with NodeError('not started by devnode: ...') unless `endpoint` is given."""

    def __init__(self, service=None, endpoint=None, instance=None, run_dir=None):
        env = os.environ
        self.endpoint = endpoint or env.get("DEVNODE_ENDPOINT") or None
        self._service = service or env.get("DEVNODE_SERVICE") or None
        inst = env.get("DEVNODE_INSTANCE") if instance is None else instance
        try:
            self.instance = int(inst) if inst not in (None, "") else -1
        except ValueError:
            raise InvalidArgument("DEVNODE_INSTANCE=%s: want an instance index" % inst)
        self.run_dir = run_dir if run_dir is not None else env.get("DEVNODE_RUN_DIR", "")
        self.interfaces = []
        self.core = None
        self.caller = None
        self._subs = {}
        self._stopped = threading.Event()

    def install(self, cls, name=None, config=None):
        """Instantiates `cls` (an Interface subclass) as `name`; returns the instance."""
        iface = cls(self, name)
        iface.apply_config(config or {})
        self.interfaces.append(iface)
        return iface

    @property
    def service(self):
        return self._service or (self.interfaces[0].name if self.interfaces else "client")

    def start(self):
        if not self.endpoint:
            raise NodeError("not started by devnode: DEVNODE_ENDPOINT is not set")
        self.core = Core(self.endpoint, self.service, self.instance, self.run_dir, serve=True)
        self.caller = Caller(self.core)
        if self.interfaces and self.service != self.interfaces[0].name and \
                all(i.name != self.service for i in self.interfaces):
            self.core.aliases[self.service] = self.interfaces[0].name  # Greeting2 serves Greeting.*
        for iface in self.interfaces:
            for mname, fn, help_text in iface._rpc_methods():
                self.core.methods[(iface.name, mname)] = _method_of(mname, fn, help_text)
            for info, fn in iface._event_handlers():
                sub = self.core.add_subscription(info["patterns"], info["name"], fn, info["broadcast"],
                                                 info["stream"], info["start"], info["catch_up"])
                self._subs[(iface.name, info["name"])] = sub
        for iface in self.interfaces:
            iface.on_start()
        self.core.start()

    def catch_up(self, iface, name, timeout=5.0):
        sub = self._subs.get((iface.name, name))
        if sub is None or not sub.stream:
            raise InvalidArgument("catch up: no stream subscription named '%s'" % name)
        if not sub.active:
            raise InvalidArgument("catch up: %s is not subscribed" % sub.group)
        return self.core.catch_up(sub, timeout)

    def stop(self):
        """Stops serving (see core.Core.stop); returns how many no-wait events the node did not
        confirm."""
        if self._stopped.is_set():
            return 0
        self._stopped.set()
        for iface in self.interfaces:
            try:
                iface.on_stop()
            except Exception as e:
                log.error("%s.on_stop raised %s: %s", iface.name, type(e).__name__, e)
        unconfirmed = 0
        if self.caller is not None:
            self.caller.close()
        if self.core is not None:
            unconfirmed = self.core.stop()
        return unconfirmed


class Client:
    """A client the node did not start (a script, a test, a tool), like devnode_open: it calls,
    emits and subscribes as `name`, and serves nothing. `endpoint` None reads .devnode/endpoint
    of the current directory; use it as a context manager or call close()."""

    def __init__(self, endpoint=None, name="client"):
        if endpoint is None:
            endpoint = os.environ.get("DEVNODE_ENDPOINT")
        if endpoint is None and os.path.exists(".devnode/endpoint"):
            with open(".devnode/endpoint") as f:
                endpoint = f.read().strip()
        self.core = Core(endpoint, name, -1, None, serve=False)
        self.caller = Caller(self.core)

    def call(self, subject, args=None, timeout=None, address=None):
        return self.caller.call(subject, args, timeout, address)

    def proxy(self, service, timeout=None):
        return Proxy(self.caller, service, timeout)

    def emit(self, event_type, body=None, headers=None, delay=0, wait=False):
        delay_ms = int(round(float(delay or 0) * 1000))
        if wait:
            return self.core.emit(event_type, body, delay_ms, headers=headers)
        self.core.emit_nowait(event_type, body, delay_ms, headers=headers)

    def subscribe(self, patterns, fn, name=None, broadcast=False, stream=None, start=None):
        """fn(event) for every event matching `patterns`, in group <name>.<name or pattern>."""
        return self.core.add_subscription(patterns, name, fn, broadcast, stream, start)

    def close(self):
        """Waits until the node has every no-wait event (10 s at most), unsubscribes, closes."""
        self.caller.close()
        unconfirmed = self.core.confirm() + self.core.close_events()
        for sub in self.core.subs.values():
            if sub.active:
                sub.active = False
                try:
                    self.core.request("unsubscribe", {"subscription": sub.id}, 1.0)
                except NodeError:
                    pass
        self.core.close()
        return unconfirmed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
