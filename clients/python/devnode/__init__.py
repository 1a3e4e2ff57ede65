"""devnode: lymph's service API for services that `devnode up` runs (docs/python.md).

    import devnode

    class Greeting(devnode.Interface):
        @devnode.rpc()
        def greet(self, name):
            print('Saying hi to %s' % name)          # carries the request's trace id
            self.emit('greeted', {'name': name})     # no wait; coalesced with others
            return 'Hi, %s!' % name

Run it with `python3 -m devnode instance greeting:Greeting` (or lymph's
`--config conf/greeting.yml`). Public names: Interface, rpc, event, Event, Client, Container,
trace_id, set_trace_id, TraceIdFilter, and the errors RemoteError, Nack, Timeout, NotFound,
NodeError, InvalidArgument, Requeue.
"""
import sys as _sys

from . import _deps

try:
    import zmq  # noqa: F401
    import msgpack  # noqa: F401
except ModuleNotFoundError as _e:  # the interpreter trap: say which python ran and what it lacks
    if _deps.report(_e) and _sys.argv[:1] == ["-m"]:
        # `python3 -m devnode instance ...` imports this package first: the line is the whole
        # story, a traceback through runpy would only bury it
        raise SystemExit(1)
    raise

from .core import Event, valid_event_type  # noqa: E402
from .errors import (DevnodeError, InvalidArgument, Nack, NodeError, NotFound, RemoteError,  # noqa: E402
                     Requeue, Timeout)
from .interface import Client, Container, Interface, event, rpc  # noqa: E402
from .trace import TraceIdFilter, new_trace_id, set_trace_id, trace_id  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Interface", "rpc", "event", "Event", "Client", "Container", "trace_id", "set_trace_id",
           "new_trace_id", "TraceIdFilter", "DevnodeError", "RemoteError", "Nack", "Timeout", "NotFound",
           "NodeError", "InvalidArgument", "Requeue", "valid_event_type"]
