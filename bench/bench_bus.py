#!/usr/bin/python3
"""devnode benchmarks of the registry, the event bus and RPC (issue 6).

Prints figures, asserts nothing. Exit status 0 unless nothing could be measured.
Every node started here is stopped, and every process started here killed, before the end.

  E  events/s through the node: 1 publisher emitting small msgpack bodies, pipelined,
     -> a 4-member group (one subscription group, 4 processes that ack every event).
     Reports events/s from the first emit to the last delivery, and how many were lost
     or delivered twice. Goal >= 300,000/s.
  P  RPC round trip p50/p99 on ipc against the C demo Greeting (build/examples/greeting) when
     it exists, else the Python fake service: first service to service, a libdevnode caller
     timing devnode_call(Greeting.lymph.ping) (goal p50 <= 100 us); then through the CLI,
     `devnode request -N 20000 -C 1` of Greeting.lymph.ping and of Greeting.greet, whose
     handler also logs a line and emits an event (a round trip to the node).
  L  registry lookup p50/p99: `discover` round trips over the node protocol from a Python
     DEALER (so Python's own ~20 us per round trip are included).

Usage: bench_bus.py [--quick] [--only E,P,L]
       bench_bus.py --sink ENDPOINT GROUP PATTERN   (internal: one subscriber process)
"""
import array
import json
import os
import re
import statistics
import subprocess
import sys
import time

import msgpack
import zmq

from benchlib import DEVNODE, ROOT, TempNode, compile_c, cpu_seconds, log

FAKE = os.path.join(ROOT, "tests", "e2e", "fakeservice.py")
C_GREETING = os.path.join(ROOT, "build", "examples", "greeting")
PYTHON = "/usr/bin/python3"

E_EVENTS, E_EVENTS_QUICK = 400000, 60000
E_SINKS = 4
E_WINDOW = 4000          # emits in flight before waiting for the node's ok replies
E_PREFETCH = 1000        # unacked deliveries per sink
E_BATCH = 250            # events per emit, per delivery message and per ack, in the batched run
E_GOAL = 300000
P_REQUESTS, P_REQUESTS_QUICK = 20000, 3000
P_GOAL_US = 100
L_LOOKUPS, L_LOOKUPS_QUICK = 5000, 1000


def pack(type_, body):
    return [b"1", type_, msgpack.packb(body, use_bin_type=True)]


# ---------------------------------------------------------------------------- a node

class Node(TempNode):
    """A TempNode that can also list the registry."""

    def __init__(self, config):
        super().__init__(config, prefix="devnode-bbus-")

    def discover(self):
        r = self.cli("discover", "--json")
        return json.loads(r.stdout) if r.returncode == 0 else {}


# ---------------------------------------------------------------------------- E: events


def raw_zmq_floor(workdir, n):
    """(p50, p99, max) in us of the plain libzmq round trip, or None."""
    exe = compile_c(workdir, "bus_raw_echo", ["libzmq"])
    if not exe:
        return None
    try:
        r = subprocess.run([exe, str(n), "ipc://" + os.path.join(workdir, "raw.sock")], capture_output=True,
                           text=True, timeout=300, check=True)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log(f"   (plain libzmq floor not measured: {getattr(exc, 'stderr', exc)!s:.200})")
        return None
    return tuple(int(x) / 1000 for x in r.stdout.split())


def build_caller(workdir):
    """Compiles the libdevnode caller; returns its path, or None."""
    return compile_c(workdir, "bus_caller", ["libzmq", "msgpack", "jansson"],
                     ["-I", os.path.join(ROOT, "lib"), os.path.join(ROOT, "build", "libdevnode.a")])


def build_driver(workdir):
    """Compiles the C driver; returns its path, or None (then Python drivers are used)."""
    return compile_c(workdir, "bus_driver", ["libzmq", "msgpack"],
                     [os.path.join(ROOT, "build", "rel", "libcore.a")])


def sink_main(endpoint, group, pattern):
    """The Python sink: acks every event, and prints its received sequence numbers and the
    time of its last delivery once no event came for a second."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.connect(endpoint)
    sock.send_multipart(pack(b"subscribe", {"id": 1, "subscription": "s1", "patterns": [pattern],
                                            "group": group, "broadcast": False, "pid": os.getpid(),
                                            "prefetch": E_PREFETCH}))
    seqs, last, ready = [], None, False
    next_beat = time.monotonic() + 1
    unpackb, send = msgpack.unpackb, sock.send_multipart
    while True:
        if not sock.poll(1000):
            if seqs:
                break
            continue
        while True:
            try:
                _, type_, body = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if type_ == b"event":
                ev = unpackb(body, raw=False)
                seqs.append(ev["body"]["n"])
                send([b"1", b"ack", msgpack.packb({"delivery": ev["delivery"]})])
            elif type_ == b"ok" and not ready:
                ready = True
                print("ready", flush=True)
            elif type_ == b"error":
                print("error " + unpackb(body, raw=False).get("message", "?"), flush=True)
                return
        last = time.time()
        if time.monotonic() >= next_beat:
            send(pack(b"heartbeat", {"id": 2, "pid": os.getpid()}))
            next_beat = time.monotonic() + 1
    print(json.dumps({"last": last, "seqs": seqs}), flush=True)
    sock.close()
    ctx.term()


def python_publish(endpoint, n):
    """The Python publisher: bodies packed before the clock starts. Returns (start, end, refused)."""
    frames = [msgpack.packb({"id": i, "type": "bench.evt", "body": {"n": i, "name": "joe"},
                             "headers": {"trace_id": "bench"}, "source": "bench"}) for i in range(n)]
    ctx = zmq.Context()
    pub = ctx.socket(zmq.DEALER)
    pub.setsockopt(zmq.LINGER, 0)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.setsockopt(zmq.RCVHWM, 0)
    pub.connect(endpoint)
    sent = done = refused = 0
    start = time.time()
    while done < n:
        while sent < n and sent - done < E_WINDOW:
            pub.send_multipart([b"1", b"emit", frames[sent]])
            sent += 1
        if not pub.poll(10000):
            raise TimeoutError(f"the node stopped answering emits after {done}")
        while True:
            try:
                _, type_, _ = pub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            done += 1
            refused += type_ != b"ok"
    end = time.time()
    pub.close()
    ctx.term()
    return start, end, refused


def bench_events(quick):
    """Once with one event per message (emit, event, ack), once with batches of E_BATCH."""
    rates = [events_run(quick, 1)]
    if rates[0] is not None:
        rates.append(events_run(quick, E_BATCH))
    return max(r for r in rates if r is not None)


def events_run(quick, batch):
    """Returns events/s, or None when batching was asked for and there is no C driver."""
    n = E_EVENTS_QUICK if quick else E_EVENTS
    config = "instances:\n    Quiet:\n        command: exec sleep 100000\n"
    sinks = []
    with Node(config) as node:
        driver = build_driver(node.dir)
        kind = "C" if driver else "Python"
        if batch > 1 and not driver:
            return None
        how = f"batches of {batch} (emit, events, ack)" if batch > 1 else "one event per message"
        log(f"E  events/s: 1 publisher -> {E_SINKS}-member group that acks, {n} events, {how} ({kind} drivers)")
        try:
            for i in range(E_SINKS):
                if driver:
                    cmd = [driver, "sink", node.endpoint, "Bench.on_event", "bench.evt", str(E_PREFETCH),
                           str(batch), os.path.join(node.dir, f"seqs{i}")]
                else:
                    cmd = [PYTHON, os.path.abspath(__file__), "--sink", node.endpoint, "Bench.on_event",
                           "bench.evt"]
                sinks.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL))
            for s in sinks:
                line = s.stdout.readline().strip()
                if line != "ready":
                    raise RuntimeError(f"a sink did not subscribe: {line!r}")
            cpu0 = cpu_seconds(node.proc.pid)
            if driver:
                r = subprocess.run([driver, "pub", node.endpoint, str(n), str(E_WINDOW), str(batch)],
                                   capture_output=True,
                                   text=True, timeout=600)
                if r.returncode != 0:
                    raise RuntimeError(f"the publisher failed: {r.stderr.strip()}")
                start, emitted_at, refused = r.stdout.split()
                start, emitted_at, refused = float(start), float(emitted_at), int(refused)
            else:
                start, emitted_at, refused = python_publish(node.endpoint, n)
            results = []
            for i, s in enumerate(sinks):
                line = s.stdout.readline()
                if driver:
                    last, _ = line.split()
                    seqs = array.array("I")
                    with open(os.path.join(node.dir, f"seqs{i}"), "rb") as f:
                        seqs.frombytes(f.read())
                    results.append({"last": float(last), "seqs": seqs})
                else:
                    results.append(json.loads(line))
            node_cpu = cpu_seconds(node.proc.pid) - cpu0
            for s in sinks:
                s.wait(10)
        finally:
            for s in sinks:
                if s.poll() is None:
                    s.kill()
                    s.wait()
    last = max(r["last"] for r in results if r["last"])
    got = [x for r in results for x in r["seqs"]]
    unique = set(got)
    lost = n - len(unique & set(range(n)))
    rate = n / (last - start)
    log(f"   emitted {n} in {emitted_at - start:.2f} s ({n / (emitted_at - start):,.0f}/s accepted), "
        f"{refused} refused")
    log(f"   delivered: {rate:,.0f} events/s  (goal >= {E_GOAL:,})  "
        f"per member {[len(r['seqs']) for r in results]}")
    log(f"   lost {lost}, delivered twice {len(got) - len(unique)}; node CPU {node_cpu:.2f} s "
        f"({node_cpu / n * 1e6:.1f} us per event: emit, delivery and ack)")
    return rate


# ---------------------------------------------------------------------------- P: RPC

def bench_rpc(quick):
    """The round trip itself is lymph.ping (the goal's figure); greet adds what its handler
    does: a log line and an emit that waits for the node."""
    n = P_REQUESTS_QUICK if quick else P_REQUESTS
    if os.access(C_GREETING, os.X_OK):
        what, command = "C demo Greeting", f"exec {C_GREETING}"
    else:
        what, command = "Python fake Greeting", f"exec {PYTHON} {FAKE}"
    config = f"instances:\n    Greeting:\n        command: {command}\n        numprocesses: 1\n"
    p50s = {}
    with Node(config) as node:
        node.wait(lambda: node.discover().get("Greeting"), 15, "Greeting to register")
        caller = build_caller(node.dir)
        if caller:
            log(f"P  RPC round trip on ipc, service to service: {n} devnode_call(Greeting.lymph.ping) from a "
                f"libdevnode caller against the {what}")
            env = dict(os.environ, DEVNODE_ENDPOINT=node.endpoint, DEVNODE_SERVICE="Bench")
            r = subprocess.run([caller, str(n)], capture_output=True, text=True, timeout=300, env=env)
            if r.returncode == 0:
                p50, p99, mx = (int(x) / 1000 for x in r.stdout.split())
                p50s["lib"] = p50
                log(f"   p50 {p50:.0f} us  p99 {p99:.0f} us  max {mx:.0f} us  goal p50 <= {P_GOAL_US} us")
            else:
                log(f"   the caller failed: {r.stderr.strip()}")
        floor = raw_zmq_floor(node.dir, n)
        if floor:
            ratio = f"; devnode_call is {p50s['lib'] / floor[0]:.2f}x this" if "lib" in p50s else ""
            log(f"P  plain libzmq on this machine now (DEALER -> ROUTER echo over ipc, same frames): "
                f"p50 {floor[0]:.0f} us  p99 {floor[1]:.0f} us  max {floor[2]:.0f} us{ratio}")
        for subject, params in (("Greeting.lymph.ping", '{"payload": "x"}'), ("Greeting.greet", '{"name": "joe"}')):
            log(f"P  RPC round trip on ipc: devnode request -N {n} -C 1 {subject} against the {what}")
            r = node.cli("request", "-N", str(n), "-C", "1", subject, params, timeout=120)
            if r.returncode != 0:
                raise RuntimeError(f"devnode request failed ({r.returncode}): {r.stderr.strip()}")
            pct = dict(re.findall(r"^ +(\d+)%\s+([\d.]+)", r.stdout, re.M))
            rps = re.search(r"Requests per second: +([\d.]+)", r.stdout).group(1)
            p50, p99 = float(pct["50"]) * 1000, float(pct["99"]) * 1000
            p50s[subject] = p50
            goal = "  (through the CLI)" if subject.endswith("ping") else "  (through the CLI; greet also emits)"
            log(f"   p50 {p50:.0f} us  p99 {p99:.0f} us  max {float(pct['100']) * 1000:.0f} us  "
                f"({float(rps):,.0f} requests/s){goal}")
    return p50s.get("lib", p50s["Greeting.lymph.ping"])


# ---------------------------------------------------------------------------- L: lookups

def bench_lookup(quick):
    n = L_LOOKUPS_QUICK if quick else L_LOOKUPS
    log(f"L  registry lookup: {n} discover round trips (Python DEALER), 3 registered instances")
    config = f"instances:\n    Greeting:\n        command: exec {PYTHON} {FAKE}\n        numprocesses: 3\n"
    with Node(config) as node:
        node.wait(lambda: len(node.discover().get("Greeting", [])) == 3, 15, "Greeting x3 to register")
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(node.endpoint)
        times = []
        for i in range(n + 100):
            t0 = time.perf_counter()
            sock.send_multipart(pack(b"discover", {"id": i, "service": "Greeting"}))
            if not sock.poll(5000):
                raise TimeoutError("discover was not answered")
            _, type_, body = sock.recv_multipart()
            if i >= 100:  # the first ones warm up the connection
                times.append((time.perf_counter() - t0) * 1e6)
            if type_ != b"services":
                raise RuntimeError(f"discover answered {type_!r}")
        sock.close()
        ctx.term()
    times.sort()
    p50, p99 = statistics.median(times), times[int(0.99 * len(times)) - 1]
    log(f"   p50 {p50:.0f} us  p99 {p99:.0f} us")
    return p50


def main(argv):
    if argv[:1] == ["--sink"]:
        sink_main(*argv[1:4])
        return 0
    quick = "--quick" in argv
    only = None
    if "--only" in argv:
        only = set(argv[argv.index("--only") + 1].split(","))
    if not os.access(DEVNODE, os.X_OK):
        log("bench_bus: ./devnode missing; run `make all` first")
        return 1
    if only is not None and not only & {"E", "P", "L"}:
        return 0  # bench/run passes every bench the same --only: none of ours was asked for
    measured = 0
    for key, fn in (("E", bench_events), ("P", bench_rpc), ("L", bench_lookup)):
        if only and key not in only:
            continue
        try:
            fn(quick)
            measured += 1
        except Exception as exc:
            log(f"   {key}: not measured: {exc}")
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
