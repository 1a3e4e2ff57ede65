"""devnode.web: lymph's WebServiceInterface on werkzeug. A class attribute `url_map` (a
werkzeug Map) routes to methods named by each Rule's endpoint; a handler takes a werkzeug
Request (and the rule's values) and returns a Response. The runner serves it on the socket the
node shares (LISTEN_FDS, fd 3), one thread per request; the trace id comes from X-Trace-Id or
is made new, is current while the handler runs and is returned in the response's X-Trace-Id.
"""
import logging
import os
import socket
import threading
import time

from . import _deps
from . import trace as _trace
from .interface import Interface

try:
    from werkzeug.exceptions import HTTPException, NotFound as _HTTPNotFound  # noqa: F401
    from werkzeug.routing import Map
    from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
    from werkzeug.wrappers import Request, Response
except ModuleNotFoundError as _e:
    if not _deps.under_runner:  # the runner says it once, where it imports the service
        _deps.report(_e)
    raise

log = logging.getLogger("devnode.web")


class WebServiceInterface(Interface):
    """An Interface that also answers HTTP. Subclass it with `url_map = Map([Rule('/greet',
    endpoint='greet')])` and a method `greet(self, request)`; it may have @rpc and @event
    methods too."""

    url_map = Map([])

    def dispatch_request(self, request):
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
            handler = endpoint if callable(endpoint) else getattr(self, endpoint)
            return handler(request, **values)
        except HTTPException as e:
            return e

    def handle_exception(self, request, error):
        """The response to a handler that raised (logged with the trace id): 500 by default."""
        return Response("Internal Server Error\n", status=500, mimetype="text/plain")

    def wsgi_app(self, environ, start_response):
        request = Request(environ)
        tid = _trace.sanitize(request.headers.get("X-Trace-Id")) or _trace.new_trace_id()
        t0 = time.monotonic()
        with _trace.traced(tid):
            try:
                response = self.dispatch_request(request)
            except Exception as e:
                log.error("%s %s raised %s: %s", request.method, request.full_path.rstrip("?"), type(e).__name__, e)
                response = self.handle_exception(request, e)
            if isinstance(response, (str, bytes)):
                response = Response(response)
            if isinstance(response, HTTPException):
                response = response.get_response(environ)
            response.headers["X-Trace-Id"] = tid
            log.info("%s %s %d (%.1f ms)", request.method, request.full_path.rstrip("?"), response.status_code,
                     (time.monotonic() - t0) * 1000)
            self.container.core.flush_emits()
            return response(environ, start_response)

    def __call__(self, environ, start_response):
        return self.wsgi_app(environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without its own access log: wsgi_app logs each request with its trace."""

    def log_request(self, *args, **kwargs):
        pass

    def log(self, type, message, *args):
        if type == "error":
            log.error(message, *args)


def listen_fd(service):
    """The fd of the socket the node shares with this instance (LISTEN_FDS, by LISTEN_FDNAMES
    when several), or None."""
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if count <= 0:
        return None
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    if service in names and names.index(service) < count:
        return 3 + names.index(service)
    return 3


def serve(iface, host=None, port=None):
    """Starts the HTTP server of `iface` on a thread: on the shared socket (LISTEN_FDS) when
    there is one, else on host:port (PORT, else 4080). Returns the server (shutdown() stops it)."""
    fd = listen_fd(iface.container.service if iface.container else iface.name)
    if fd is not None:
        probe = socket.socket(fileno=os.dup(fd))
        family = probe.family
        address = probe.getsockname()
        probe.close()
        if family == socket.AF_UNIX:
            host = "unix://" + (address if isinstance(address, str) and address else "devnode")
            port = 0
        else:
            host, port = (address[0], address[1])
        server = ThreadedWSGIServer(host, port, iface, handler=_QuietHandler, fd=fd)
    else:
        port = int(port or os.environ.get("PORT") or 4080)
        server = ThreadedWSGIServer(host or "127.0.0.1", port, iface, handler=_QuietHandler)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="devnode-http",
                         daemon=True)
    t.start()
    return server


__all__ = ["WebServiceInterface", "serve", "listen_fd"]
