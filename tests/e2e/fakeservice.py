#!/usr/bin/python3
"""A service written straight against docs/protocol.md, for tests that must not depend on
the C client library: it registers with the node (and heartbeats every second), serves
lymph-style RPC on a ROUTER bound under the run dir, answers the built-in lymph.ping,
lymph.status and lymph.inspect, and can subscribe to events and ack them.

Run by the node (it reads DEVNODE_ENDPOINT, DEVNODE_SERVICE, DEVNODE_INSTANCE and
DEVNODE_RUN_DIR) or by hand with --node and --name. Methods of the service:

  greet(name)        -> "Hello, <name>!"
  echo(**params)     -> {params, headers, pid, instance}: shows what arrived, trace id included
  whoami()           -> {service, instance, pid}
  fail(message)      -> ERROR {type: "ValueError", message}
  hang()             -> never answers (the process keeps heartbeating)
  emit(type, body)   -> emits an event through the node with the request's trace id

Every event it receives is printed as one line, `event TYPE trace_id=ID body=JSON`, so it
lands in the node's log with its trace id, and then acked.
"""
import argparse
import json
import os
import signal
import sys
import time

import msgpack
import zmq

HEARTBEAT_S = 1.0

METHODS = [
    {"name": "greet", "params": ["name"], "help": "Returns a greeting for name."},
    {"name": "echo", "params": [], "help": "Returns the params and headers it received."},
    {"name": "whoami", "params": [], "help": "Returns the service, instance and pid that answered."},
    {"name": "fail", "params": ["message"], "help": "Always raises ValueError(message)."},
    {"name": "hang", "params": [], "help": "Never answers."},
    {"name": "emit", "params": ["type", "body"], "help": "Emits an event with the request's trace id."},
]
BUILTINS = [
    {"name": "lymph.ping", "params": ["payload"], "help": "Returns the payload."},
    {"name": "lymph.status", "params": [], "help": "Describes this instance."},
    {"name": "lymph.inspect", "params": [], "help": "Lists the RPC methods of this service."},
]


class BadArguments(Exception):
    pass


class UnknownMethod(Exception):
    pass


class FakeService:
    def __init__(self, args):
        self.name = args.name or os.environ.get("DEVNODE_SERVICE") or "Fake"
        self.instance = int(os.environ.get("DEVNODE_INSTANCE", "-1"))
        self.pid = os.getpid()
        self.started = time.monotonic()
        self.served = 0
        self.identity = None
        self.args = args
        self.ctx = zmq.Context()
        self.endpoint = self._bind_endpoint()
        self.rpc = self.ctx.socket(zmq.ROUTER)
        self.rpc.setsockopt(zmq.LINGER, 0)
        self.rpc.bind(self.endpoint)
        node = args.node or os.environ.get("DEVNODE_ENDPOINT")
        self.node = None
        if node:
            self.node = self.ctx.socket(zmq.DEALER)
            self.node.setsockopt(zmq.LINGER, 500)
            self.node.connect(node)
        self.next_id = 1
        self.running = True

    def _bind_endpoint(self):
        if self.args.endpoint:
            return self.args.endpoint
        run_dir = os.environ.get("DEVNODE_RUN_DIR") or f"/tmp/devnode-fake-{os.getuid()}"
        path = os.path.join(run_dir, "rpc", f"{self.name}.{self.instance}.{self.pid}.sock")
        if len(path) > 100:  # unix socket paths are limited to ~107 bytes
            path = f"/tmp/devnode-fake-{os.getuid()}/{self.name}.{self.instance}.{self.pid}.sock"
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        return "ipc://" + path

    # ------------------------------------------------------------ node protocol

    def node_send(self, type_, body):
        body = dict(body, id=self.next_id)
        self.next_id += 1
        self.node.send_multipart([b"1", type_.encode(), msgpack.packb(body, use_bin_type=True)])
        return body["id"]

    def register(self):
        self.node_send("register", {
            "service": self.name, "instance": self.instance, "pid": self.pid,
            "endpoint": self.endpoint, "methods": METHODS,
        })
        if self.args.subscribe:
            group = None if self.args.broadcast else f"{self.name}.on_event"
            self.node_send("subscribe", {
                "subscription": "s1", "patterns": self.args.subscribe, "group": group,
                "broadcast": bool(self.args.broadcast), "pid": self.pid, "prefetch": 64,
            })

    def on_node_message(self, frames):
        if len(frames) != 3:
            return
        type_ = frames[1].decode()
        body = msgpack.unpackb(frames[2], raw=False)
        if type_ == "event":
            headers = body.get("headers") or {}
            print(f"event {body.get('type')} trace_id={headers.get('trace_id')} "
                  f"body={json.dumps(body.get('body'), sort_keys=True)}", flush=True)
            self.node_send("ack", {"delivery": body.get("delivery")})
        elif type_ == "error":
            print(f"node error: {body.get('message')}", file=sys.stderr, flush=True)
        elif type_ == "ok" and "identity" in body:
            self.identity = body["identity"]
            print(f"{self.name}.{self.instance} registered pid={self.pid} endpoint={self.endpoint}", flush=True)

    # ------------------------------------------------------------ RPC

    def call(self, method, params, headers):
        if method == "lymph.ping":
            return params.get("payload")
        if method == "lymph.status":
            return {"service": self.name, "instance": self.instance, "pid": self.pid,
                    "endpoint": self.endpoint, "identity": self.identity,
                    "uptime_ms": int((time.monotonic() - self.started) * 1000), "served": self.served}
        if method == "lymph.inspect":
            return {"methods": METHODS + BUILTINS}  # the service's own by bare name, as libdevnode
        if method == "greet":
            if set(params) != {"name"}:
                raise BadArguments(f"greet() takes exactly 'name', got {sorted(params)}")
            return f"Hello, {params['name']}!"
        if method == "echo":
            return {"params": params, "headers": headers, "pid": self.pid, "instance": self.instance}
        if method == "whoami":
            return {"service": self.name, "instance": self.instance, "pid": self.pid}
        if method == "fail":
            raise ValueError(params.get("message", "boom"))
        if method == "emit":
            self.node_send("emit", {"type": params["type"], "body": params.get("body"),
                                    "headers": {"trace_id": headers.get("trace_id")},
                                    "source": self.name, "delay_ms": 0})
            return None
        raise UnknownMethod(method)

    def on_request(self, frames):
        if len(frames) != 6:
            return  # malformed: dropped, as a real service would
        routing, msg_id, type_, subject, headers, body = frames
        if type_ != b"REQ":
            return
        headers = msgpack.unpackb(headers, raw=False)
        params = msgpack.unpackb(body, raw=False)
        subject = subject.decode()
        interface, _, method = subject.rpartition(".")
        reply_headers = {"trace_id": headers.get("trace_id")}
        if interface == "lymph":
            method = subject
        elif interface != self.name:
            method = None
        if method == "hang":
            return
        try:
            if method is None or not isinstance(params, dict):
                raise UnknownMethod(subject)
            result = self.call(method, params, headers)
            rtype, rbody = b"REP", result
        except UnknownMethod:
            rtype, rbody = b"NACK", {"type": "UnknownMethod", "message": f"no method {subject}"}
        except BadArguments as exc:
            rtype, rbody = b"ERROR", {"type": "BadArguments", "message": str(exc)}
        except Exception as exc:
            rtype, rbody = b"ERROR", {"type": type(exc).__name__, "message": str(exc)}
        self.served += 1
        self.rpc.send_multipart([routing, os.urandom(8).hex().encode(), rtype, msg_id,
                                 msgpack.packb(reply_headers, use_bin_type=True),
                                 msgpack.packb(rbody, use_bin_type=True)])

    # ------------------------------------------------------------ loop

    def run(self):
        poller = zmq.Poller()
        poller.register(self.rpc, zmq.POLLIN)
        if self.node:
            poller.register(self.node, zmq.POLLIN)
            self.register()
        else:
            print(f"{self.name} serving on {self.endpoint} (no node)", flush=True)
        next_beat = time.monotonic() + HEARTBEAT_S
        while self.running:
            timeout = max(0.0, next_beat - time.monotonic())
            try:
                ready = dict(poller.poll(timeout * 1000))
            except zmq.ZMQError:
                continue  # EINTR from a signal: self.running says what to do
            if self.rpc in ready:
                while True:
                    try:
                        self.on_request(self.rpc.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
            if self.node is not None and self.node in ready:
                while True:
                    try:
                        self.on_node_message(self.node.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
            if self.node is not None and time.monotonic() >= next_beat:
                self.node_send("heartbeat", {"pid": self.pid})
                next_beat = time.monotonic() + HEARTBEAT_S
        if self.node is not None:
            self.node_send("unregister", {"pid": self.pid})
        self.rpc.close()
        if self.node is not None:
            self.node.close()
        self.ctx.term()
        if self.endpoint.startswith("ipc://"):
            try:
                os.unlink(self.endpoint[len("ipc://"):])
            except OSError:
                pass

    def stop(self, *_):
        self.running = False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", help="service name (default: $DEVNODE_SERVICE)")
    ap.add_argument("--node", help="node endpoint (default: $DEVNODE_ENDPOINT)")
    ap.add_argument("--endpoint", help="RPC endpoint to bind (default: ipc under the run dir)")
    ap.add_argument("--subscribe", action="append", default=[], metavar="PATTERN")
    ap.add_argument("--broadcast", action="store_true", help="one group per instance")
    svc = FakeService(ap.parse_args())
    signal.signal(signal.SIGTERM, svc.stop)
    signal.signal(signal.SIGINT, svc.stop)
    svc.run()


if __name__ == "__main__":
    main()
