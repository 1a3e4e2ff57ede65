"""The exceptions devnode raises. A remote failure keeps the callee's type and message:
`except devnode.RemoteError as e: e.type, e.message`, or by type, lymph's way:
`except devnode.RemoteError.ValueError:`."""


class DevnodeError(Exception):
    """Base of every devnode error. `type` names it as the protocol does."""

    type = "DevnodeError"

    def __init__(self, message="", type=None):
        super().__init__(message)
        self.message = message
        if type is not None:
            self.type = type


class _RemoteErrorMeta(type):
    _cache = {}

    def __getattr__(cls, name):
        # RemoteError.ValueError: a subclass per remote type, made on first use, so that
        # `except RemoteError.ValueError` catches exactly the callee's ValueError.
        if name.startswith("_") or cls is not RemoteError:
            raise AttributeError(name)
        return cls.of(name)


class RemoteError(DevnodeError, metaclass=_RemoteErrorMeta):
    """The callee answered ERROR {type, message}: its handler raised, or BadArguments."""

    type = "RemoteError"

    @classmethod
    def of(cls, remote_type):
        sub = _RemoteErrorMeta._cache.get((cls, remote_type))
        if sub is None:
            sub = _RemoteErrorMeta(str(remote_type), (cls,), {"type": remote_type})
            _RemoteErrorMeta._cache[(cls, remote_type)] = sub
        return sub

    def __str__(self):
        return "%s: %s" % (self.type, self.message)


class Nack(RemoteError):
    """The callee answered NACK: UnknownMethod or BadRequest."""

    type = "Nack"


class Timeout(DevnodeError):
    """No reply in time (the call was sent; a late reply is dropped)."""

    type = "Timeout"


class NotFound(DevnodeError):
    """No registered instance of the service took the request."""

    type = "NotFound"


class NodeError(DevnodeError):
    """The node did not answer, refused a request, or is not there."""

    type = "NodeError"


class InvalidArgument(DevnodeError, ValueError):
    """A bad subject, event type, delay or argument, refused before anything was sent."""

    type = "BadRequest"


class Requeue(Exception):
    """Raise from an event handler to give the event back (nack) for another instance."""
