"""The Python client (clients/python) beside libdevnode in one run (issue 18 "Bench"), with
lymph's own figures from ../shared/reference/lymph-figures.md for scale:

  PR  RPC round trip, sequential calls from one caller: p50 and calls/s. Python caller ->
      Python service (lymph.ping, served on the I/O thread, and a user method echo(), run on a
      worker thread); C caller (bench/bus_caller.c) -> C Greeting lymph.ping.
  PE  one no-wait emit per event, 100,000 events from one client, until the node confirmed
      them all: Python Client.emit (the same path as self.emit) vs C devnode_emit_nowait.
  PC  consumption: a subscriber to a retained stream reads 100,000 events from the journal
      (a backlog), Python handler vs C handler; and live: Python consumer while the Python
      emitter runs (plain subscription), events handled per second.
  PM  RSS of one idle Python Greeting (examples/python) and, separately, one idle Web (werkzeug).

Usage: /usr/bin/python3 bench/bench_python.py [--quick]. Prints figures; asserts nothing.
Loopback only; every node is stopped whatever happens.
"""
import os
import shutil
import subprocess
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, TempNode, compile_c, log, run_benches  # noqa: E402

PYTHON = "/usr/bin/python3"
CLIENT = os.path.join(ROOT, "clients", "python")
C_GREETING = os.path.join(ROOT, "build", "examples", "greeting")
LYMPH = {"rpc_p50_us": 1450, "rpc_rps": 592, "emit": 3600, "consume_live": 3600, "consume_backlog": 13000}
GOALS = {"rpc_p50_us": 150, "rpc_rps": 6000, "emit": 50000, "consume": 50000, "rss_mb": 30}

ECHO_SERVICE = '''
import devnode


class Echo(devnode.Interface):

    @devnode.rpc()
    def echo(self, payload=None):
        return payload
'''

# A Python caller / emitter / consumer run as its own process, like a service's peer.
PY_DRIVER = r'''
import sys, time
sys.path.insert(0, sys.argv[1])
import devnode

mode, endpoint, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
c = devnode.Client(endpoint, "bench")
if mode == "call":
    subject = sys.argv[5]
    for _ in range(300):
        c.call(subject, {"payload": "x"})
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        a = time.perf_counter_ns()
        c.call(subject, {"payload": "x"})
        lat.append(time.perf_counter_ns() - a)
    total = time.perf_counter() - t0
    lat.sort()
    print(lat[n // 2], lat[n * 99 // 100], n / total)
elif mode == "emit":
    t0 = time.perf_counter()
    for i in range(n):
        c.emit("tick.n", {"n": i})
    left = c.core.confirm()
    print(n / (time.perf_counter() - t0), left)
elif mode in ("consume", "live"):
    import threading
    done = threading.Event()
    seen = [0, 0.0, 0.0]
    last = [0.0]
    def on(ev):
        if seen[0] == 0:
            seen[1] = time.perf_counter()
        seen[0] += 1
        last[0] = time.perf_counter()
        if seen[0] == n:
            seen[2] = time.perf_counter()
            done.set()
    if mode == "consume":
        c.subscribe("tick.#", on, name="pyc", broadcast=True, stream="tick.#", start="beginning")
    else:
        c.subscribe("tick.#", on, name="pylive")
        print("subscribed", flush=True)
    # live: events a full group queue (10,000) refused never come; stop 1 s after the last one
    deadline = time.monotonic() + 120
    count = -1
    while not done.wait(1.0) and time.monotonic() < deadline:
        if seen[0] == count and count > 0:
            break  # nothing for a second: the rest was dropped
        count = seen[0]
    got = seen[0]
    if not done.is_set():
        seen[2] = last[0]
    print((got - 1) / (seen[2] - seen[1]) if got > 1 else 0, got)
c.close()
'''

C_DRIVER = r'''
/* bench_python's C side: devnode_emit_nowait N events, or a stream subscriber reading N. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <devnode.h>

static double mono(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static long want, seen; static double first, last;

static int on_tick(const struct devnode_event *ev, void *ctx)
{
    (void)ev; (void)ctx;
    if (seen++ == 0) first = mono();
    if (seen == want) last = mono();
    return 0;
}

int main(int argc, char **argv)
{
    char err[256];
    want = atol(argv[3]);
    struct devnode *dn = devnode_open(argv[2], "cbench", err, sizeof err);
    if (!dn) { fprintf(stderr, "%s\n", err); return 1; }
    if (strcmp(argv[1], "emit") == 0) {
        json_t *body = json_object();
        double t0 = mono();
        for (long i = 0; i < want; i++) {
            json_object_set_new(body, "n", json_integer(i));
            if (devnode_emit_nowait(dn, "tick.n", body, 0) != 0) { fprintf(stderr, "%s\n", devnode_last_error(dn)); return 1; }
        }
        int left = devnode_close(dn);
        printf("%f %d\n", want / (mono() - t0), left);
        json_decref(body);
        return 0;
    }
    if (devnode_subscribe_stream(dn, "cc", "tick.#", NULL, "beginning", DEVNODE_BROADCAST, on_tick, NULL) != 0) {
        fprintf(stderr, "%s\n", devnode_last_error(dn)); return 1;
    }
    double deadline = mono() + 120;
    while (seen < want && mono() < deadline) {
        int wait_ms = devnode_process(dn);
        struct pollfd p = {.fd = devnode_fd(dn), .events = POLLIN};
        if (seen < want && wait_ms > 0)
            poll(&p, 1, wait_ms);
    }
    printf("%f %ld\n", seen >= want ? (want - 1) / (last - first) : 0.0, seen);
    devnode_close(dn);
    return 0;
}
'''

results = {}
QUICK = "--quick" in sys.argv


def py_driver(node, mode, n, *extra, timeout=300):
    path = os.path.join(node.dir, "pydriver.py")
    with open(path, "w") as f:
        f.write(PY_DRIVER)
    r = subprocess.run([PYTHON, path, CLIENT, mode, node.endpoint, str(n), *extra], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"python {mode} failed: {r.stderr.strip()[-400:]}")
    return r.stdout.split()


def c_driver(node, workdir):
    src = os.path.join(workdir, "pybench_c.c")
    with open(src, "w") as f:
        f.write(C_DRIVER)
    exe = os.path.join(workdir, "pybench_c")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libzmq", "msgpack", "jansson"], capture_output=True,
                           text=True).stdout.split()
    r = subprocess.run(["cc", "-O2", "-D_GNU_SOURCE", "-I", os.path.join(ROOT, "lib"), "-o", exe, src,
                        os.path.join(ROOT, "build", "libdevnode.a"), *flags, "-lzookeeper_mt", "-lrabbitmq", "-lpthread", "-lm"], capture_output=True, text=True)
    if r.returncode != 0:
        log(f"   (C driver not built: {r.stderr[:300]})")
        return None
    return exe


def wait_registered(node, service, count=1):
    node.wait(lambda: node.cli("discover").stdout.count(f"{service} [{count}]") == 1, 30, f"{service} to register")


def example_services(*names):
    """The `instances:` of examples/python's services NAMES (each reads conf/<name>.yml)."""
    return "instances:\n" + "".join(textwrap.indent(textwrap.dedent(f"""\
        {name}:
            command: {PYTHON} -m devnode instance --config=conf/{name.lower()}.yml
            ready: notify
            env:
                PYTHONPATH: services
        """), "    ") for name in names)


def start_examples(node, *names):
    """Copies examples/python's services and conf into node's project and starts NAMES there
    (they could not start before): returns once each is registered."""
    for sub in ("services", "conf"):
        shutil.copytree(os.path.join(ROOT, "examples", "python", sub), os.path.join(node.dir, sub))
    for name in names:
        node.cli("restart", name)
    for name in names:
        wait_registered(node, name)


def ratio(a, b):
    return f"{a / b:.2f}x C" if b else "-"


def bench_rpc():
    n = 2000 if QUICK else 10000
    config = textwrap.dedent(f"""\
        instances:
            Echo:
                command: {PYTHON} -m devnode instance benchsvc:Echo
                ready: notify
            Greeting:
                command: {C_GREETING}
                ready: notify
        """)
    with TempNode(config) as node:
        with open(os.path.join(node.dir, "benchsvc.py"), "w") as f:
            f.write(ECHO_SERVICE)
        node.cli("restart", "Echo")
        wait_registered(node, "Echo")
        wait_registered(node, "Greeting")
        caller = compile_c(node.dir, "bus_caller", ["libzmq", "msgpack", "jansson"],
                           ["-I", os.path.join(ROOT, "lib"), os.path.join(ROOT, "build", "libdevnode.a")])
        c_p50 = None
        if caller:
            env = dict(os.environ, DEVNODE_ENDPOINT=node.endpoint, DEVNODE_SERVICE="Bench")
            t0 = time.perf_counter()
            r = subprocess.run([caller, str(n)], capture_output=True, text=True, timeout=300, env=env)
            total = time.perf_counter() - t0
            if r.returncode == 0:
                c_p50, c_p99, _ = (int(x) / 1000 for x in r.stdout.split())
                log(f"PR C caller -> C Greeting.lymph.ping: p50 {c_p50:.0f} us  p99 {c_p99:.0f} us  "
                    f"(~{(n + 500) / total:,.0f} calls/s incl. start)")
                results["C rpc p50 (ping)"] = (f"{c_p50:.0f} us", "-", None, f"{n} calls")
        for subject in ("Echo.lymph.ping", "Echo.echo"):
            p50, p99, rps = py_driver(node, "call", n, subject)
            p50, p99, rps = int(p50) / 1000, int(p99) / 1000, float(rps)
            log(f"PR Python caller -> Python {subject}: p50 {p50:.0f} us  p99 {p99:.0f} us  {rps:,.0f} calls/s "
                f"sequential  (lymph: p50 {LYMPH['rpc_p50_us']} us, {LYMPH['rpc_rps']} req/s)")
            note = f"{ratio(p50, c_p50)} p50" if c_p50 else ""
            results[f"py rpc p50 ({subject.split('.', 1)[1]})"] = (f"{p50:.0f} us", f"<= {GOALS['rpc_p50_us']} us",
                                                                  p50 <= GOALS["rpc_p50_us"], note)
            results[f"py rpc seq ({subject.split('.', 1)[1]})"] = (f"{rps:,.0f} req/s", f">= {GOALS['rpc_rps']:,}",
                                                                 rps >= GOALS["rpc_rps"],
                                                                 f"{rps / LYMPH['rpc_rps']:.1f}x lymph")
    # The Python server alone: the C caller against a Python Greeting (examples/python).
    with TempNode(example_services("Greeting")) as node:
        start_examples(node, "Greeting")
        caller = compile_c(node.dir, "bus_caller", ["libzmq", "msgpack", "jansson"],
                           ["-I", os.path.join(ROOT, "lib"), os.path.join(ROOT, "build", "libdevnode.a")])
        if caller:
            env = dict(os.environ, DEVNODE_ENDPOINT=node.endpoint, DEVNODE_SERVICE="Bench")
            r = subprocess.run([caller, str(n)], capture_output=True, text=True, timeout=300, env=env)
            if r.returncode == 0:
                p50, p99, _ = (int(x) / 1000 for x in r.stdout.split())
                log(f"PR C caller -> Python Greeting.lymph.ping: p50 {p50:.0f} us  p99 {p99:.0f} us")
                results["C->py rpc p50 (ping)"] = (f"{p50:.0f} us", "-", None, "the Python server alone")
    return True


def bench_events():
    n = 20000 if QUICK else 100000
    config = f"instances:\n    Idle:\n        command: sleep 3600\nstreams:\n    'tick.#':\n        retain_events: {2 * n + 10}\n"
    with TempNode(config) as node:
        exe = c_driver(node, node.dir)
        c_emit = c_consume = None
        if exe:
            r = subprocess.run([exe, "emit", node.endpoint, str(n)], capture_output=True, text=True, timeout=300)
            if r.returncode == 0:
                c_emit = float(r.stdout.split()[0])
                log(f"PE C devnode_emit_nowait x{n}, until confirmed: {c_emit:,.0f} events/s")
        rate, left = py_driver(node, "emit", n)
        rate = float(rate)
        log(f"PE Python emit x{n} (no wait, coalesced), until confirmed: {rate:,.0f} events/s "
            f"({left} unconfirmed; lymph {LYMPH['emit']:,}/s)")
        results["py emit"] = (f"{rate:,.0f} ev/s", f">= {GOALS['emit']:,}", rate >= GOALS["emit"],
                              (ratio(rate, c_emit) + "; " if c_emit else "") + f"{rate / LYMPH['emit']:.0f}x lymph")
        if c_emit:
            results["C emit_nowait"] = (f"{c_emit:,.0f} ev/s", "-", None, "")
        # the stream now holds 2n events (n when the C side could not run): read n from the start
        if exe:
            r = subprocess.run([exe, "consume", node.endpoint, str(n)], capture_output=True, text=True, timeout=300)
            if r.returncode == 0 and float(r.stdout.split()[0]) > 0:
                c_consume = float(r.stdout.split()[0])
                log(f"PC C stream subscriber, {n} events from the journal: {c_consume:,.0f} events/s")
                results["C consume (backlog)"] = (f"{c_consume:,.0f} ev/s", "-", None, "")
        rate, seen = py_driver(node, "consume", n)
        rate = float(rate)
        log(f"PC Python stream subscriber, {n} events from the journal: {rate:,.0f} events/s "
            f"(lymph from a backlog {LYMPH['consume_backlog']:,}/s)")
        results["py consume (backlog)"] = (f"{rate:,.0f} ev/s", f">= {GOALS['consume']:,}",
                                           rate >= GOALS["consume"],
                                           (ratio(rate, c_consume) + "; " if c_consume else "") +
                                           f"{rate / LYMPH['consume_backlog']:.1f}x lymph")
        # live: a consumer subscribed while a Python emitter runs (a plain subscription, no journal)
        live_n = min(n, 50000)
        path = os.path.join(node.dir, "pydriver.py")
        consumer = subprocess.Popen([PYTHON, path, CLIENT, "live", node.endpoint, str(live_n)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert consumer.stdout.readline().strip() == "subscribed"
            py_driver(node, "emit", live_n)
            out, err = consumer.communicate(timeout=180)
        finally:
            if consumer.poll() is None:
                consumer.kill()
                consumer.wait()
        rate, seen = out.split()
        rate = float(rate)
        log(f"PC Python consumer live, beside the Python emitter: {rate:,.0f} events/s ({seen} of {live_n} "
            f"came: a group queue holds 10,000, the rest was dropped while the emitter ran ahead; "
            f"lymph live {LYMPH['consume_live']:,}/s)")
        results["py consume (live)"] = (f"{rate:,.0f} ev/s", f">= {GOALS['consume']:,}", rate >= GOALS["consume"],
                                        f"{seen}/{live_n} got; {rate / LYMPH['consume_live']:.0f}x lymph")
    return True


def bench_rss():
    config = example_services("Greeting", "Web") + "sockets:\n    Web:\n        port: 0\n"
    with TempNode(config) as node:
        start_examples(node, "Greeting", "Web")
        time.sleep(2)  # idle: let start-up garbage settle
        import json
        status = json.loads(node.cli("status", "--json").stdout)
        for svc in status["services"]:
            pid = svc["instances"][0]["pid"]
            with open(f"/proc/{pid}/status") as f:
                rss_kib = int(next(line for line in f if line.startswith("VmRSS:")).split()[1])
            mb = rss_kib / 1024
            log(f"PM idle Python {svc['name']}: RSS {mb:.1f} MB")
            goal = GOALS["rss_mb"] if svc["name"] == "Greeting" else None
            results[f"py RSS idle {svc['name']}"] = (f"{mb:.1f} MB", f"<= {goal} MB" if goal else "(reported)",
                                                    mb <= goal if goal else None, "")
    return True


def main():
    if not os.access(C_GREETING, os.X_OK):
        log("bench_python: build first (make all)")
        return 1
    log("== Python client beside libdevnode (bench/bench_python.py)")
    return run_benches([("PR", bench_rpc), ("PE/PC", bench_events), ("PM", bench_rss)], None, results)


if __name__ == "__main__":
    sys.exit(main())
