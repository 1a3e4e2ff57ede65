#!/usr/bin/python3
"""devnode dashboard benchmarks (issue 5: "The curses dashboard").

Prints figures, asserts nothing. `devnode tui` runs in a private tmux server (120x40), so it
has a real terminal; its CPU comes from /proc/<pid>/stat and the bytes it wrote to the
terminal from /proc/<pid>/io (wchar), which shows how well redraws are coalesced.

  T1  idle: 100 instances (10 services x 10, all expanded in the table), nothing logging,
      dashboard CPU % over 10 s (goal <= 1 %), terminal bytes per second.
  T2  burst: 8 x 200,000 lines of 64 bytes while the dashboard follows the log: its CPU
      seconds and average CPU % from the scale to the last writer's exit (+1 s), the lines
      it showed and skipped, terminal bytes, and how long a key (`?`, the help) took to show
      mid-burst. Baseline: `devnode tail -f > /dev/null` following the same burst.

Usage: bench_tui.py [--quick] [--only T1,T2]
"""

import os
import re
import shutil
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_node import BURST, DEVNODE, Node, cpu_seconds, log, now  # noqa: E402
from benchlib import run_benches  # noqa: E402

T1_SERVICES = 10
T1_PER_SERVICE = 10
T1_SECONDS = 10.0
T1_TARGET_PCT = 1.0
T2_WRITERS = 8
T2_LINES = 200000


class Tmux:
    """A private tmux server running one command in a 120x40 window."""

    def __init__(self, command, cwd, width=120, height=40):
        self.socket = "devnode-bench-%s" % uuid.uuid4().hex[:12]
        env = dict(os.environ)
        env.pop("TMUX", None)
        env.update({"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
        self.env = env
        self.run("-f", "/dev/null", "new-session", "-d", "-s", "main", "-x", str(width), "-y", str(height),
                 "-c", cwd, "exec " + command)
        self.run("set-option", "-g", "status", "off")

    def run(self, *args):
        return subprocess.run(["tmux", "-L", self.socket] + list(args), env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=10)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "main").stdout

    def send(self, *keys):
        self.run("send-keys", "-t", "main", *keys)

    def pane_pid(self):
        out = self.run("display-message", "-p", "-t", "main", "#{pane_pid}").stdout.strip()
        return int(out) if out.isdigit() else None

    def wait(self, predicate, timeout, poll=0.02):
        deadline = now() + timeout
        while now() < deadline:
            s = self.screen()
            if predicate(s):
                return s
            time.sleep(poll)
        return None

    def kill(self):
        self.run("kill-server")


def wchar(pid):
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def fmt_pct(v):
    return "n/a" if v is None else "%.2f %%" % v


def wait_running(node, count, timeout):
    deadline = now() + timeout
    while now() < deadline:
        try:
            st = node.status_json()
            if sum(s["running"] for s in st["services"]) >= count:
                return True
        except Exception:  # noqa: BLE001 - the node may still be starting
            pass
        time.sleep(0.1)
    return False


def attach(node):
    """devnode tui in tmux on node; returns (tmux, pid) once the dashboard shows the table."""
    tmux = Tmux("%s tui -c %s" % (DEVNODE, node.config), node.dir)
    if not tmux.wait(lambda s: s.startswith(" devnode ") and "running" in s and " Logs" in s, 15):
        tmux.kill()
        raise RuntimeError("the dashboard did not come up: %r" % tmux.screen()[:400])
    return tmux, tmux.pane_pid()


# ---------------------------------------------------------------------------- T1

def bench_t1(results, seconds):
    lines = ["instances:"]
    for i in range(T1_SERVICES):
        lines += ["    Idle%d:" % i, "        command: sleep 100000", "        numprocesses: %d" % T1_PER_SERVICE]
    total = T1_SERVICES * T1_PER_SERVICE
    log("== T1: dashboard idle with %d instances, %.0f s" % (total, seconds))
    with Node("\n".join(lines) + "\n") as node:
        node.start()
        if not wait_running(node, total, 60):
            log("  ! the %d instances did not all run" % total)
            return False
        tmux, pid = attach(node)
        try:
            tmux.wait(lambda s: "%d/%d running" % (total, total) in s, 10)
            time.sleep(2.0)  # past the first frames and the initial backlog
            c0, w0, t0 = cpu_seconds(pid), wchar(pid), now()
            time.sleep(seconds)
            c1, w1, t1 = cpu_seconds(pid), wchar(pid), now()
            ncpu0 = cpu_seconds(node.pid)
            pct = (c1 - c0) / (t1 - t0) * 100
            bps = (w1 - w0) / (t1 - t0)
            log("  dashboard CPU %s over %.1f s (%.3f s CPU); terminal output %.0f bytes/s"
                % (fmt_pct(pct), t1 - t0, c1 - c0, bps))
            log("  (node CPU so far: %.2f s)" % (ncpu0 or 0))
            results["T1 idle CPU, 100 inst"] = (fmt_pct(pct), "<= %.1f %%" % T1_TARGET_PCT, pct <= T1_TARGET_PCT,
                                                "%.0f B/s to the terminal" % bps)
        finally:
            tmux.kill()
    return True


# ---------------------------------------------------------------------------- T2

def t2_config():
    return ("instances:\n"
            "    Burst:\n"
            "        command: %s %d b\n"
            "        numprocesses: 0\n"
            "        restart: never\n"
            "    Ticker:\n"
            "        command: sh -c 'while :; do echo tick; sleep 0.5; done'\n" % (BURST, T2_LINES))


def wait_burst_done(node, timeout):
    deadline = now() + timeout
    while now() < deadline:
        try:
            st = node.status_json()
            burst = next(s for s in st["services"] if s["name"] == "Burst")
            if burst["desired"] == T2_WRITERS and len(burst["instances"]) == T2_WRITERS and \
                    all(i["state"] == "exited" for i in burst["instances"]):
                return now()
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.05)
    return None


def t2_tail_baseline(node):
    """devnode tail -f > /dev/null through the same burst: its CPU seconds and skipped lines."""
    out_path = os.path.join(node.dir, "tail-out.txt")
    with open(out_path, "wb") as out:
        tail = subprocess.Popen([DEVNODE, "tail", "-f", "-n", "0", "-c", node.config], cwd=node.dir,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        node.cli("scale", "Burst", "0")
        time.sleep(0.5)
        t0 = now()
        node.cli("scale", "Burst", str(T2_WRITERS))
        done = wait_burst_done(node, 120)
        time.sleep(1.0)
        cpu = cpu_seconds(tail.pid)
    finally:
        tail.terminate()
        tail.wait(10)
    shown = skipped = 0
    with open(out_path, "rb") as f:
        for line in f:
            if b" | burst b " in line:
                shown += 1
            m = re.match(rb"\[devnode: (\d+) lines skipped\]", line)
            if m:
                skipped += int(m.group(1))
    return cpu, (done - t0) if done else None, shown, skipped


def bench_t2(results):
    total = T2_WRITERS * T2_LINES
    log("== T2: dashboard following a burst of %d x %d lines" % (T2_WRITERS, T2_LINES))
    with Node(t2_config()) as node:
        node.start()
        if not wait_running(node, 1, 30):
            log("  ! the node did not start")
            return False
        tmux, pid = attach(node)
        try:
            tmux.wait(lambda s: "tick" in s, 10)
            c0, w0, t0 = cpu_seconds(pid), wchar(pid), now()
            r = node.cli("scale", "Burst", str(T2_WRITERS))
            if r.returncode != 0:
                log("  ! scale failed: %s" % r.stderr.decode(errors="replace").strip())
                return False
            time.sleep(0.3)  # well inside the burst
            k0 = now()
            tmux.send("?")
            shown = tmux.wait(lambda s: "Keys" in s, 5, poll=0.005)
            key_ms = (now() - k0) * 1000 if shown else None
            tmux.send("Escape")
            done = wait_burst_done(node, 120)
            if done is None:
                log("  ! the burst did not finish within 120 s")
                return False
            time.sleep(1.0)
            c1, w1, t1 = cpu_seconds(pid), wchar(pid), now()
            screen = tmux.screen()
            m = re.search(r" Logs +(\d+) lines?(?:.*?skipped (\d+))?", screen)
            kept = int(m.group(1)) if m else None
            skipped = int(m.group(2)) if m and m.group(2) else 0
            burst_s = done - t0
            pct = (c1 - c0) / (t1 - t0) * 100
            log("  burst took %.2f s in the node (%.0f lines/s)" % (burst_s, total / burst_s))
            log("  dashboard CPU %.2f s over %.2f s = %s; terminal output %.0f KiB (%.0f KiB/s)"
                % (c1 - c0, t1 - t0, fmt_pct(pct), (w1 - w0) / 1024, (w1 - w0) / 1024 / (t1 - t0)))
            log("  dashboard lines: %d skipped by the node's flow control, %s received (%s kept in its "
                "50,000-line buffer)" % (skipped, "%d" % (total - skipped) if skipped <= total else "?", kept))
            log("  a key (?) mid-burst showed after %s" % ("%.0f ms" % key_ms if key_ms is not None else "TIMEOUT"))
            results["T2 burst CPU (dashboard)"] = ("%.2f s" % (c1 - c0), "-", None,
                                                   "%s avg over %.1f s" % (fmt_pct(pct), t1 - t0))
            results["T2 key latency mid-burst"] = ("%.0f ms" % key_ms if key_ms is not None else "TIMEOUT",
                                                   "< 1000 ms", key_ms is not None and key_ms < 1000, "")
        finally:
            tmux.kill()
        cpu, dur, shown_tail, skipped_tail = t2_tail_baseline(node)
        log("  baseline devnode tail -f > /dev/null: CPU %.2f s, %d lines shown, %d skipped"
            % (cpu or 0, shown_tail, skipped_tail))
        results["T2 burst CPU (tail -f)"] = ("%.2f s" % (cpu or 0), "-", None, "baseline")
    return True


def main(argv):
    quick = "--quick" in argv
    only = None
    for i, a in enumerate(argv):
        if a == "--only" and i + 1 < len(argv):
            only = set(argv[i + 1].split(","))
        elif a.startswith("--only="):
            only = set(a.split("=", 1)[1].split(","))
    if only is not None and not (only & {"T1", "T2"}):
        return 0  # asked for other benches only
    if not shutil.which("tmux"):
        log("bench_tui: tmux is not installed; nothing measured")
        return 1
    results = {}
    benches = [("T1", lambda: bench_t1(results, 5.0 if quick else T1_SECONDS)), ("T2", lambda: bench_t2(results))]
    return run_benches(benches, only, results)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
