"""Trace ids: the id of the request or event a thread is handling, carried on by calls, emits and
log lines (logging through TraceIdFilter, print() through TraceStdout), so the node's log hub
files every line of one request under one id. Pure Python, no third-party import."""
import logging
import os
import re
import sys
import threading

_local = threading.local()
_BAD = re.compile(r"[^A-Za-z0-9_-]")
_GOOD = re.compile(r"[A-Za-z0-9_-]{1,64}").fullmatch
TRACE_ID_MAX = 64


def new_trace_id():
    """A fresh trace id: 32 hex digits, as libdevnode makes them."""
    return os.urandom(16).hex()


def sanitize(value):
    """What the node indexes: [A-Za-z0-9_-]{1,64}; anything else folded to '_', and '' for
    None/'None' (the log parser's word for no trace)."""
    if value is None:
        return ""
    if isinstance(value, str) and _GOOD(value):
        return "" if value == "None" else value
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = _BAD.sub("_", str(value)[:TRACE_ID_MAX])
    return "" if value == "None" else value


def trace_id():
    """The current thread's trace id, or None outside a request, event or set_trace_id()."""
    return getattr(_local, "trace_id", None) or None


def set_trace_id(value=None):
    """Makes `value` (sanitized; None: a new id; '': none) the current trace id; returns it."""
    value = new_trace_id() if value is None else sanitize(value)
    _local.trace_id = value or None
    return _local.trace_id


def trace_or_new():
    return getattr(_local, "trace_id", None) or new_trace_id()


class traced:
    """`with traced(id):` makes id current for the block and restores the previous one."""

    __slots__ = ("value", "saved")

    def __init__(self, value):
        self.value = value

    def __enter__(self):
        self.saved = getattr(_local, "trace_id", None)
        _local.trace_id = self.value or None
        return self.value

    def __exit__(self, *exc):
        _local.trace_id = self.saved
        return False


class TraceIdFilter(logging.Filter):
    """Puts record.trace_id (the current id, or 'None') on every record, for a format with
    %(trace_id)s; the runner installs it on the root handler."""

    def filter(self, record):
        if not hasattr(record, "trace_id"):
            record.trace_id = trace_id() or "None"
        return True


LOG_FORMAT = "%(levelname)s %(name)s: %(message)s trace_id=%(trace_id)s"


class TraceStdout:
    """A text stream over sys.stdout (or stderr) that writes whole lines only, one at a time
    and flushed, each ending in ` trace_id=ID` when its thread has a current trace and the line
    names none yet: print() in a handler is found by `devnode tail --trace` like a log line.
    Each thread assembles its own partial line, so lines of concurrent handlers never mix."""

    def __init__(self, raw):
        self._raw = raw
        self._lock = threading.Lock()
        self._local = threading.local()

    # the parts of io.TextIOBase that print(), logging and friends use
    @property
    def encoding(self):
        return getattr(self._raw, "encoding", "utf-8")

    @property
    def errors(self):
        return getattr(self._raw, "errors", "strict")

    def fileno(self):
        return self._raw.fileno()

    def isatty(self):
        return self._raw.isatty()

    def writable(self):
        return True

    def readable(self):
        return False

    @property
    def buffer(self):
        return self._raw.buffer

    def write(self, text):
        if not text:
            return 0
        pending = getattr(self._local, "pending", "")
        data = pending + text if pending else text
        if "\n" not in data:
            self._local.pending = data
            return len(text)
        head, _, rest = data.rpartition("\n")
        self._local.pending = rest
        tid = getattr(_local, "trace_id", None)
        if tid:
            out = []
            for line in head.split("\n"):
                if line and "trace_id" not in line:
                    line = "%s trace_id=%s" % (line, tid)
                out.append(line)
            head = "\n".join(out)
        with self._lock:
            self._raw.write(head + "\n")
            self._raw.flush()
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pending = getattr(self._local, "pending", "")
        if pending:
            self._local.pending = ""
            self.write(pending + "\n")
            return
        with self._lock:
            self._raw.flush()

    def __getattr__(self, name):
        return getattr(self._raw, name)


def install_stdio():
    """Wraps sys.stdout and sys.stderr in TraceStdout (once)."""
    if not isinstance(sys.stdout, TraceStdout) and sys.stdout is not None:
        sys.stdout = TraceStdout(sys.stdout)
    if not isinstance(sys.stderr, TraceStdout) and sys.stderr is not None:
        sys.stderr = TraceStdout(sys.stderr)


def install_logging(level=logging.INFO, stream=None):
    """Root logging as the node indexes it: `LEVEL logger: message trace_id=ID` on stdout."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(TraceIdFilter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
