"""A WSGI app for the gunicorn recipes of docs/sockets.md. It answers every request with the
devnode instance and the pid that served it, so a test (or you) can see the workers share
the port."""
import os


def app(environ, start_response):
    body = f"{os.environ.get('DEVNODE_INSTANCE', '?')} {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
