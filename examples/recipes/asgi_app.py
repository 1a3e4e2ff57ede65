"""An ASGI app for the uvicorn recipe of docs/sockets.md: answers with the devnode instance
and the pid that served the request."""
import os


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"{os.environ.get('DEVNODE_INSTANCE', '?')} {os.getpid()}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
