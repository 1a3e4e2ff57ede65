#!/usr/bin/python3
"""devnode watch benchmarks (issue 21, "The edit loop", item 1).

Prints figures, asserts nothing; every node started here is stopped (or killed with its
process group) before the script ends.

  L  edit-to-ready: from a file write under `watch:` to the new process ready, for a
     `ready: notify` Python service (one instance, no socket, so the old process stops
     first, as it would for most services). Goal: debounce + the process's own start +
     under 50 ms. The process's own start is measured apart: the same command spawned by
     this script with its own NOTIFY_SOCKET, until READY=1 arrives. The node's log splits
     the rest: the write to the `watch: ... restarting` line (minus the debounce), that
     line to the new process's `started`, `started` to `ready`.
  I  the node's idle CPU while watching a tree of 10,000 files in 1,000 folders, beside the
     same node and tree without `watch:` (the node samples its workers every second either
     way); goal: the watch adds 0. Also the first walk's time and the node's RSS.

Usage: bench_watch.py [--quick] [--only L,I]
"""
import datetime
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import TempNode, cpu_seconds, log, run_benches

PYTHON = "/usr/bin/python3"
DEBOUNCE_MS = 200
L_EDITS = 10
L_TARGET_OVERHEAD_MS = 50.0
I_FOLDERS = 1000
I_FILES_PER_FOLDER = 10
I_SECONDS = 10.0

NOTIFY_SERVICE = """\
import os, signal, socket
addr = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect("\\0" + addr[1:] if addr.startswith("@") else addr)
s.send(b"READY=1")
signal.pause()
"""


def log_records(node):
    path = os.path.join(node.dir, ".devnode", "logs", "devnode.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def rec_time(rec):
    return datetime.datetime.fromisoformat(rec["time"].replace("Z", "+00:00")).timestamp()


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    raise TimeoutError("timed out waiting for " + what)


def status_service(node, name):
    r = node.cli("status", "--json")
    for s in json.loads(r.stdout)["services"]:
        if s["name"] == name:
            return s
    raise KeyError(name)


def own_start_ms(script, runs):
    """The service's own start: spawn to READY=1, without the node."""
    times = []
    with tempfile.TemporaryDirectory(prefix="devnode-bench-notify-") as d:
        path = os.path.join(d, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(10)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVNODE_")}
        env["NOTIFY_SOCKET"] = path
        env["PYTHONUNBUFFERED"] = "1"
        for _ in range(runs):
            t0 = time.monotonic()
            p = subprocess.Popen([PYTHON, script], env=env, stdin=subprocess.DEVNULL)
            sock.recv(64)
            times.append((time.monotonic() - t0) * 1000)
            p.send_signal(signal.SIGTERM)
            p.wait()
        sock.close()
    return times


def bench_latency(results, quick):
    edits = 4 if quick else L_EDITS
    config = f"""
instances:
  Svc:
    command: {PYTHON} svc.py
    ready: notify
    watch: [src/]
    watch_debounce: {DEBOUNCE_MS}ms
"""
    log(f"== L: edit-to-ready, ready: notify Python service, debounce {DEBOUNCE_MS} ms, {edits} edits")
    node = TempNode(config)
    with open(os.path.join(node.dir, "svc.py"), "w") as f:
        f.write(NOTIFY_SERVICE)
    os.makedirs(os.path.join(node.dir, "src"))
    with open(os.path.join(node.dir, "src", "app.py"), "w") as f:
        f.write("")
    with node:
        own = own_start_ms(os.path.join(node.dir, "svc.py"), edits)
        wait_until(lambda: status_service(node, "Svc")["instances"][0]["ready"], 15, "Svc ready")
        totals, detects, spawns, readies = [], [], [], []
        for n in range(1, edits + 1):
            seen = len(log_records(node))
            t_write = time.time()
            with open(os.path.join(node.dir, "src", "app.py"), "w") as f:
                f.write(f"# {n}\n")

            def settled():
                w = status_service(node, "Svc")
                return w["watch"]["restarts"] == n and w["watch"]["state"] == "idle" and w["instances"][0]["ready"]
            wait_until(settled, 30, f"restart {n}")
            recs = [r for r in log_records(node)[seen:] if r.get("stream") == "node"]
            roll = next(r for r in recs if r["text"].startswith("watch: src/app.py changed"))
            started = next(r for r in recs if r["text"].startswith("Svc.0 started"))
            ready = next(r for r in recs if r["text"].startswith("Svc.0 ready"))
            totals.append((rec_time(ready) - t_write) * 1000)
            detects.append((rec_time(roll) - t_write) * 1000 - DEBOUNCE_MS)
            spawns.append((rec_time(started) - rec_time(roll)) * 1000)
            readies.append((rec_time(ready) - rec_time(started)) * 1000)
            time.sleep(0.3)  # between edits, so each is its own batch (a bench, not a test)
    own_med = statistics.median(own)
    total_med = statistics.median(totals)
    # The node's own part, read from its log: noticing the change (past the debounce) and
    # getting the new process spawned. `started` to `ready` is the process's own start plus
    # the notify message's trip, which the own-start figure beside it measures apart.
    overhead = statistics.median([d + s for d, s in zip(detects, spawns)])
    log(f"   write to ready: median {total_med:.1f} ms, max {max(totals):.1f} ms")
    log(f"   the service's own start (spawn to READY=1, without the node): median {own_med:.1f} ms")
    log(f"   write to the restart line minus the debounce: median {statistics.median(detects):.1f} ms")
    log(f"   restart line to `started` (old process stopped, new spawned): median {statistics.median(spawns):.1f} ms")
    log(f"   `started` to `ready`: median {statistics.median(readies):.1f} ms")
    log(f"   write to ready - debounce - own start: {total_med - DEBOUNCE_MS - own_med:.1f} ms")
    results["L edit-to-ready"] = (f"{total_med:.1f} ms", "-", None,
                                  f"debounce {DEBOUNCE_MS} ms + own start {own_med:.1f} ms + overhead")
    results["L overhead"] = (f"{overhead:.1f} ms", f"< {L_TARGET_OVERHEAD_MS:.0f} ms",
                             overhead < L_TARGET_OVERHEAD_MS,
                             f"detection + spawn from the log; total-debounce-own {total_med - DEBOUNCE_MS - own_med:.1f} ms")
    return True


def make_tree(root, folders, files):
    for d in range(folders):
        path = os.path.join(root, "src", f"d{d // 100:02}", f"e{d:04}")
        os.makedirs(path)
        for i in range(files):
            with open(os.path.join(path, f"m{i}.py"), "w") as f:
                f.write("")


def idle_cpu(config, seconds, tree):
    """The node's CPU and wake-ups over `seconds` of nothing happening, with the tree made
    before it started; returns (cpu %, wake-ups, rss KiB, folders watched, walk line)."""
    node = TempNode(config)
    make_tree(node.dir, *tree)
    watching = "watch:" in config
    with node:
        folders, walk = 0, None
        if watching:
            walk = wait_until(lambda: next((r["text"] for r in log_records(node)
                                            if r["text"].startswith("watch: ") and "walked" in r["text"]), None),
                              60, "the walk's line")
            folders = status_service(node, "Svc")["watch"]["folders"]
        time.sleep(1.5)  # start-up over, the sampler in its steady state
        pid = node.proc.pid
        with open(f"/proc/{pid}/status") as f:
            ctx0 = next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(pid), time.monotonic()
        with open(f"/proc/{pid}/status") as f:
            lines = f.read().splitlines()
        ctx1 = next(int(line.split()[1]) for line in lines if line.startswith("voluntary_ctxt_switches"))
        rss = next(int(line.split()[1]) for line in lines if line.startswith("VmRSS"))
        return (c1 - c0) / (t1 - t0) * 100, ctx1 - ctx0, rss, folders, walk


def bench_idle(results, quick):
    folders = 100 if quick else I_FOLDERS
    seconds = 3.0 if quick else I_SECONDS
    tree = (folders, I_FILES_PER_FOLDER)
    log(f"== I: idle node CPU, {folders * I_FILES_PER_FOLDER} files in {folders} folders, {seconds:.0f} s")
    base = """
instances:
  Svc:
    command: sleep 1000
"""
    watched = base + "    watch: [\"src/**/*.py\"]\n"
    cpu_w, ctx_w, rss_w, nfolders, walk = idle_cpu(watched, seconds, tree)
    log(f"   first walk: {walk}")
    cpu_b, ctx_b, rss_b, _, _ = idle_cpu(base, seconds, tree)
    log(f"   watching {nfolders} folders: cpu {cpu_w:.3f}%, {ctx_w} wake-ups, rss {rss_w} KiB")
    log(f"   no watch:              cpu {cpu_b:.3f}%, {ctx_b} wake-ups, rss {rss_b} KiB")
    extra = ctx_w - ctx_b
    results["I idle cpu, watching"] = (f"{cpu_w:.3f}%", "0 added", None, f"{nfolders} folders; no watch: {cpu_b:.3f}%")
    results["I wake-ups added"] = (f"{extra:+d} in {seconds:.0f} s", "0", extra <= 1,
                                   f"{ctx_w} watching vs {ctx_b} without (the 1 s sampler)")
    results["I rss added"] = (f"{rss_w - rss_b:+d} KiB", "-", None, "1 inotify watch per folder")
    return True


def main():
    quick = "--quick" in sys.argv
    only = None
    if "--only" in sys.argv:
        only = set(sys.argv[sys.argv.index("--only") + 1].split(","))
    results = {}
    benches = [("L", lambda: bench_latency(results, quick)), ("I", lambda: bench_idle(results, quick))]
    return run_benches(benches, only, results)


if __name__ == "__main__":
    sys.exit(main())
