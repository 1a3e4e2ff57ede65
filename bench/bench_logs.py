#!/usr/bin/python3
"""devnode benchmarks for the log ring, `tail` and `traces` (issue 4). Prints figures,
asserts nothing; every wait has a deadline and every node started here is stopped (or its
process group killed) before the script ends.

  T   trace lookup over 1,000,000 buffered lines (logs: {buffer_lines: 1000000}): time for
      the node to answer `traces` and a `tail --trace` request (p50/p99 over pyzmq).
  F   `tail -f` during the 8 x 200,000-line burst: lines received vs skipped, and how long
      after the burst the follower had everything.
  M   node RSS with an empty ring, a full 200,000-line ring and a full 1,000,000-line ring
      of ~100-byte lines.

Usage: bench_logs.py [--quick] [--only T,F,M]
"""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVNODE = os.path.join(ROOT, "devnode")
BURST = os.path.join(ROOT, "build", "helpers", "burst")
PYTHON = "/usr/bin/python3"

T_LINES = 1000000
T_TARGET_MS = 5.0
F_WRITERS = 8
F_LINES = 200000

# A worker printing N lines of about 100 bytes; every 10th carries one of N/100 trace ids, so
# each trace has 10 lines spread across the whole run (the worst case for a ring scan).
GEN_PY = r"""
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
chunk = []
for i in range(n):
    if i % 10 == 0:
        t = (i // 10) % (n // 100)
        chunk.append(b"2026-01-01 12:00:00,000 [INFO] gen: handled request %08d - trace_id=\"tr%08d\"\n" % (i, t))
    else:
        chunk.append(b"2026-01-01 12:00:00,000 [INFO] gen: background line number %09d ....\n" % i)
    if len(chunk) == 4096:
        out.write(b"".join(chunk))
        chunk = []
out.write(b"".join(chunk))
out.flush()
"""


def log(msg):
    print(msg, flush=True)


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def wait(predicate, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(interval)
    return None


class Node:
    def __init__(self, config, files=None):
        self.dir = tempfile.mkdtemp(prefix="devnode-bench-logs-")
        with open(os.path.join(self.dir, ".lymph.yml"), "w") as f:
            f.write(config)
        for name, text in (files or {}).items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        self.proc = None
        self.ctx = zmq.Context()
        self.sock = None
        self.next_id = 1

    def __enter__(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVNODE_", "LYMPH_"))}
        self.proc = subprocess.Popen([DEVNODE, "up"], cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        ep = os.path.join(self.dir, ".devnode", "endpoint")
        if not wait(lambda: os.path.exists(ep) and open(ep).read().strip(), 10):
            raise RuntimeError("node did not start")
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(open(ep).read().strip())
        if not wait(lambda: self.request("ping", {}, timeout=1.0), 10):
            raise RuntimeError("node did not answer")
        return self

    def cli(self, *args, timeout=30):
        return subprocess.run([DEVNODE, args[0], "-c", os.path.join(self.dir, ".lymph.yml"), *args[1:]],
                              capture_output=True, text=True, timeout=timeout)

    def send(self, type_, body):
        body = dict(body)
        body.setdefault("id", self.next_id)
        self.next_id += 1
        self.sock.send_multipart([b"1", type_.encode(), msgpack.packb(body)])
        return body["id"]

    def recv(self, timeout):
        if not self.sock.poll(int(timeout * 1000)):
            return None
        _, type_, body = self.sock.recv_multipart()
        return type_.decode(), msgpack.unpackb(body)

    def request(self, type_, body, timeout=5.0):
        rid = self.send(type_, body)
        while True:
            got = self.recv(timeout)
            if got is None or got[1].get("id") == rid:
                return got

    def status(self):
        got = self.request("status", {})
        return got[1] if got else None

    def all_exited(self, service, count):
        st = self.status()
        if not st:
            return False
        for s in st["services"]:
            if s["name"] == service:
                insts = s["instances"]
                return len(insts) == count and all(i["state"] in ("exited", "stopped") for i in insts)
        return False

    def __exit__(self, *exc):
        try:
            if self.proc and self.proc.poll() is None:
                self.cli("stop", timeout=30)
                self.proc.wait(30)
        except Exception:
            pass
        finally:
            if self.proc and self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
            if self.sock is not None:
                self.sock.close()
            self.ctx.term()
            shutil.rmtree(self.dir, ignore_errors=True)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def time_requests(node, make, n):
    """Times n requests from send to their last message (`end` for a tail); ms values."""
    out = []
    for i in range(n):
        kind, body = make(i)
        t0 = time.perf_counter()
        rid = node.send(kind, body)
        received = 0
        while True:
            got = node.recv(10)
            if got is None:
                return None
            type_, reply = got
            if reply.get("id") != rid:
                continue
            if type_ in ("traces", "end", "error"):
                break
            received += 1
            node.send("tail_renew", {"id": rid, "received": received})
        out.append((time.perf_counter() - t0) * 1000)
    return out


def bench_trace_lookup(results, quick):
    n = T_LINES // 10 if quick else T_LINES
    config = f"""\
instances:
    Gen:
        command: exec {PYTHON} gen.py {n}
        numprocesses: 0
        restart: never
logs: {{buffer_lines: {n}}}
"""
    with Node(config, {"gen.py": GEN_PY}) as node:
        empty = rss_kib(node.proc.pid)
        t0 = time.perf_counter()
        node.request("scale", {"service": "Gen", "count": 1})
        if not wait(lambda: node.all_exited("Gen", 1), 120, 0.1):
            log("T   TIMEOUT waiting for %d lines" % n)
            return
        fill_s = time.perf_counter() - t0
        full = rss_kib(node.proc.pid)
        traces = n // 100
        reps = 50 if quick else 200
        tr = time_requests(node, lambda i: ("traces", {"limit": 20}), reps)
        tt = time_requests(node, lambda i: ("tail", {"backlog": 1000, "follow": False,
                                                     "trace": "tr%08d" % ((i * 7919) % traces)}), reps)
        for name, vals in (("traces (limit 20)", tr), ("tail --trace (10 lines)", tt)):
            if vals is None:
                log("T   %-24s TIMEOUT" % name)
                continue
            log("T   %-24s over %d buffered lines: p50 %.3f ms  p99 %.3f ms  max %.3f ms  (goal <= %.0f ms)"
                % (name, n, statistics.median(vals), pct(vals, 99), max(vals), T_TARGET_MS))
            results[name] = (statistics.median(vals), pct(vals, 99))
        log("T   ring filled in %.2f s; node RSS %s KiB empty -> %s KiB with %d lines (%d traces)"
            % (fill_s, empty, full, n, traces))
        results["rss_%d" % n] = (empty, full)


def bench_follow_burst(results, quick):
    lines = F_LINES // 4 if quick else F_LINES
    config = f"""\
instances:
    Marker:
        command: echo marker-line; exec sleep 100000
    Burst:
        command: exec {BURST} {lines} $DEVNODE_INSTANCE
        numprocesses: 0
        restart: never
logs: {{file_max_mb: 4000}}
"""
    total = F_WRITERS * lines
    with Node(config) as node:
        tail = subprocess.Popen([DEVNODE, "tail", "-c", os.path.join(node.dir, ".lymph.yml"), "-f", "-n", "5",
                                 "--color=never", "Burst", "Marker"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            fd = tail.stdout.fileno()
            os.set_blocking(fd, False)
            state = {"partial": b"", "burst": 0, "skipped": 0, "marker": False, "last": None}
            notice = re.compile(rb"^\[devnode: (\d+) lines skipped\]$")

            def pump():
                while True:
                    try:
                        data = os.read(fd, 1 << 20)
                    except BlockingIOError:
                        return
                    if not data:
                        return
                    state["last"] = time.perf_counter()
                    buf = state["partial"] + data
                    cut = buf.rfind(b"\n") + 1
                    state["partial"] = buf[cut:]
                    block = buf[:cut]
                    state["burst"] += block.count(b" | burst ")
                    if not state["marker"] and b"marker-line" in block:
                        state["marker"] = True
                    if b"[devnode: " in block:
                        for line in block.split(b"\n"):
                            m = notice.match(line)
                            if m:
                                state["skipped"] += int(m.group(1))

            def subscribed():
                pump()
                return state["marker"]

            if not wait(subscribed, 10, 0.01):
                log("F   TIMEOUT: tail -f did not start")
                return
            t0 = time.perf_counter()
            node.request("scale", {"service": "Burst", "count": F_WRITERS})
            done = wait(lambda: (pump() or True) and state["burst"] + state["skipped"] >= total, 120, 0.005)
            t_all = time.perf_counter() - t0
            node_done = wait(lambda: node.all_exited("Burst", F_WRITERS), 60, 0.05)
            if not done:
                log("F   TIMEOUT: follower has %d received + %d skipped of %d"
                    % (state["burst"], state["skipped"], total))
                return
            log("F   tail -f during %d x %d-line burst: %d received, %d skipped (%.2f%%), complete after %.2f s%s"
                % (F_WRITERS, lines, state["burst"], state["skipped"], 100.0 * state["skipped"] / total, t_all,
                   "" if node_done else " (node status TIMEOUT)"))
            results["follow"] = (state["burst"], state["skipped"], t_all)
            # For scale: how fast one client drains a full ring when nothing else competes.
            t0 = time.perf_counter()
            r = subprocess.run([DEVNODE, "tail", "-c", os.path.join(node.dir, ".lymph.yml"), "-n", "200000",
                                "--color=never", "Burst"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               timeout=60)
            dt = time.perf_counter() - t0
            got = r.stdout.count(b"\n")
            log("F   replay of the full ring (tail -n 200000): %d lines in %.2f s (%.2f M lines/s)"
                % (got, dt, got / dt / 1e6))
        finally:
            tail.send_signal(signal.SIGINT)
            try:
                tail.wait(10)
            except subprocess.TimeoutExpired:
                tail.kill()
                tail.wait()


def bench_memory(results, quick):
    lines = 200000
    config = f"""\
instances:
    Burst:
        command: exec {BURST} {lines} m 100
        numprocesses: 0
        restart: never
"""
    with Node(config) as node:
        empty = rss_kib(node.proc.pid)
        node.request("scale", {"service": "Burst", "count": 1})
        if not wait(lambda: node.all_exited("Burst", 1), 60, 0.05):
            log("M   TIMEOUT")
            return
        full = rss_kib(node.proc.pid)
        log("M   node RSS: %s KiB with an empty ring, %s KiB with a full %d-line ring of 100-byte lines "
            "(+%.1f MiB, %.0f bytes/line)" % (empty, full, lines, (full - empty) / 1024.0,
                                             (full - empty) * 1024.0 / lines))
        results["rss_200000"] = (empty, full)


def main(argv):
    quick = "--quick" in argv
    only = None
    if "--only" in argv:
        only = set(argv[argv.index("--only") + 1].split(","))
    if not os.access(DEVNODE, os.X_OK) or not os.access(BURST, os.X_OK):
        log("bench_logs: ./devnode or build/helpers/burst missing; run `make all` first")
        return 1
    results = {}
    benches = [(k, fn) for k, fn in (("T", bench_trace_lookup), ("F", bench_follow_burst), ("M", bench_memory))
               if not only or k in only]
    if not benches:
        return 0  # `--only` named other scripts' benches (bench/run passes options to every script)
    log("== logs: ring, tail, traces" + (" (quick)" if quick else ""))
    for key, fn in benches:
        try:
            fn(results, quick)
        except Exception as exc:  # a figure we could not take is reported, never fatal
            log("%s   FAILED: %s" % (key, exc))
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
