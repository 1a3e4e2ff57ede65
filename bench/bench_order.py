#!/usr/bin/python3
"""depends_on's cost at start-up (issue 20, Bench): 100 services in a 10-layer dependency graph
(each service of layer k waits for two of layer k-1), each ready at once, against the same 100
services with no dependencies. The figure is the time from the node's first line to the last
service ready, read from the node's own log (its wall clock, one clock for both runs), as a
ratio layered / independent; goal <= 1.2x.

Two kinds of "ready at once": no ready: check (ready when spawned: the node's "started"
line), and `ready: notify` (build/helpers/notify_ready sends READY=1 first thing: the node's
"ready" line), where every layer costs a real round trip through a child process.

Prints figures, asserts nothing. Usage: bench_order.py [--runs N] (default 3, the median)
"""
import datetime
import json
import os
import statistics
import sys

from benchlib import ROOT, TempNode, log

NOTIFY_READY = os.path.join(ROOT, "build", "helpers", "notify_ready")
LAYERS, WIDTH = 10, 10


def config(layered, notify):
    lines = ["instances:"]
    for layer in range(LAYERS):
        for i in range(WIDTH):
            lines.append(f"    S{layer}_{i}:")
            lines.append(f"        command: {NOTIFY_READY if notify else 'exec sleep 1000'}")
            lines.append("        stop_timeout: 2s")
            if notify:
                lines.append("        ready: notify")
            if layered and layer:
                deps = sorted({f"S{layer - 1}_{i}", f"S{layer - 1}_{(i + 1) % WIDTH}"})
                lines.append(f"        depends_on: [{', '.join(deps)}]")
    return "\n".join(lines) + "\n"


def wall(rec):
    t = datetime.datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def records(node):
    path = os.path.join(node.dir, ".devnode", "logs", "devnode.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def startup_s(layered, notify):
    """Seconds from "node N up" to the last of the 100 services ready."""
    word = " ready (" if notify else " started (pid"
    with TempNode(config(layered, notify), prefix="devnode-bench-order-") as node:
        def all_ready():
            return sum(1 for r in records(node) if r.get("service") == "devnode" and word in r["text"]) >= 100
        node.wait(all_ready, 60, "100 services ready")
        recs = records(node)
        t0 = wall(next(r for r in recs if r["text"].startswith("node ")))
        t1 = max(wall(r) for r in recs if r.get("service") == "devnode" and word in r["text"])
        return t1 - t0


def main():
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
    if not os.path.exists(NOTIFY_READY):
        log("build/helpers/notify_ready is missing: run `make helpers`")
        return 1
    log(f"100 services, {LAYERS} layers of {WIDTH} (each waits for 2 of the layer before) vs 100 independent; "
        f"median of {runs} runs; machine: {os.cpu_count()} cores (shared)")
    log("%-22s %12s %12s %8s %s" % ("ready", "independent", "layered", "ratio", "goal <= 1.2x"))
    for notify in (False, True):
        flat = statistics.median(startup_s(False, notify) for _ in range(runs))
        layered = statistics.median(startup_s(True, notify) for _ in range(runs))
        ratio = layered / flat if flat > 0 else float("inf")
        log("%-22s %10.1f ms %10.1f ms %7.2fx %s" % ("notify" if notify else "at start (no ready:)", flat * 1000,
                                                      layered * 1000, ratio, "yes" if ratio <= 1.2 else "NO"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
