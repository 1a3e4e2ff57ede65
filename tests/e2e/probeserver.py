"""A small HTTP server for the probe tests: GET /healthz answers 503 for the first
$FAIL_FIRST requests, then 200 (forever 503 when FAIL_FIRST is "always"). It serves on
$PORT, says each request on stdout, exits 0 on SIGTERM after saying so (a handled signal: a
stopped process runs the handler only once it is continued), and on SIGUSR1 closes its
listening socket but keeps running (a tcp probe then finds the port refused)."""
import os
import signal
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

fail_first = os.environ.get("FAIL_FIRST", "0")
count = 0


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        global count
        count += 1
        failing = fail_first == "always" or count <= int(fail_first)
        code = 503 if failing else 200
        print(f"GET {self.path} -> {code} (request {count})", flush=True)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", int(os.environ["PORT"])), Handler)


def on_term(signum, frame):
    print("got SIGTERM, exiting", flush=True)
    os._exit(0)


def on_usr1(signum, frame):
    threading.Thread(target=lambda: (server.shutdown(), server.server_close(),
                                     print("closed the port", flush=True))).start()


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGUSR1, on_usr1)
print(f"serving on {server.server_address[1]}", flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
# A signal may land on the server's thread; Python runs handlers in the main thread, which
# must therefore wake now and then rather than sleep in pause().
while True:
    time.sleep(0.1)
