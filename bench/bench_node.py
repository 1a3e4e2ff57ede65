#!/usr/bin/python3
"""devnode benchmarks (issue: "devnode up: config, supervision, multiplexed output, control CLI").

Prints figures, asserts nothing. Exit status 0 unless something could not be measured
at all. Every wait has a timeout (the figure is then printed as TIMEOUT) and every node
started here is stopped, or killed with its whole process tree, before the script ends.

  W1  start-up of 100 tiny instances until all "ready" lines are in the JSON-lines log,
      and `devnode stop` wall time; baseline: plain fork/exec from Python.
  W2  log burst: 8 x 200,000 lines of 64 bytes through the node into the log file, with the
      node's stdout on /dev/null, on a regular file, and on a pipe into `cat > file`: time
      until every line is in the log file and on stdout, lines delivered to stdout (all of
      them: a file or a pipe is lossless), and the CPU of all node threads per line;
      baseline: the same 8 writers writing to files. Floors in the same runs: w2_relay.c,
      one thread that only reads the 8 pipes and writes the same JSON (the least any node
      could do).
  R   node RSS with 100 instances running.
  C   node CPU% during 10 s of a crash loop (10 x `sh -c 'exit 1'`, restart: always).

Usage: bench_node.py [--quick] [--only W1,W2,R,C]
"""

import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import bench_argv, compile_c, run_benches

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVNODE = os.path.join(ROOT, "devnode")
BURST = os.path.join(ROOT, "build", "helpers", "burst")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

W1_INSTANCES = 100
W1_TARGET_MS = 150.0
W2_WRITERS = 8
W2_LINES = 200000
W2_WIDTH = 64
W2_TARGET_RATIO = 1.5
W2_STDOUT_TARGET_RATIO = 2.5   # stdout on a file or a pipe: every line printed as well
W2_TARGET_NS_PER_LINE = 300    # CPU of all node threads
R_TARGET_KIB = 8 * 1024
C_INSTANCES = 10
C_SECONDS = 10.0
C_TARGET_PCT = 2.0


class Timeout(Exception):
    pass


def now():
    return time.perf_counter()


def log(msg):
    print(msg, flush=True)


def fmt_ms(v):
    return "TIMEOUT" if v is None else "%.1f ms" % v


def median_min(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    return statistics.median(vals), min(vals)


# ---------------------------------------------------------------------------- /proc helpers

def proc_stat_fields(pid):
    """Fields of /proc/PID/stat from field 3 (state) on, or None when the process is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()


def thread_cpu_seconds(pid):
    """{thread name: seconds on CPU} of a process's threads (schedstat: nanoseconds, not ticks)."""
    out = {}
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                out[name] = out.get(name, 0) + int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    return out


def cpu_seconds(pid):
    """utime+stime of the process (all its threads, not its reaped children), in seconds."""
    f = proc_stat_fields(pid)
    if f is None:
        return None
    return (int(f[14 - 3]) + int(f[15 - 3])) / CLK_TCK


def status_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def all_ppids():
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = proc_stat_fields(int(name))
        if f is not None:
            out[int(name)] = int(f[1])
    return out


def descendants(pid):
    ppids = all_ppids()
    children = {}
    for p, pp in ppids.items():
        children.setdefault(pp, []).append(p)
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


# ---------------------------------------------------------------------------- node handling

class Node:
    """One `devnode up` in a fresh temp project dir. Use as a context manager: leaving it
    stops the node (gracefully if possible) and kills whatever is left of its tree."""

    def __init__(self, config_text, stdout_path=None, stdout_via_cat=False):
        self.dir = tempfile.mkdtemp(prefix="devnode-bench-")
        self.config = os.path.join(self.dir, ".lymph.yml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.logpath = os.path.join(self.dir, ".devnode", "logs", "devnode.jsonl")
        self.stdout_path = stdout_path
        self.stdout_via_cat = stdout_via_cat  # stdout is a pipe into `cat > stdout_path`
        self.cat = None
        self.proc = None
        self.t_launch = None
        self.env = dict(os.environ)
        for k in ("LYMPH_CONFIG", "LYMPH_VARS"):
            self.env.pop(k, None)
        self.env["NO_COLOR"] = "1"
        self._tree = set()

    def __enter__(self):
        return self

    def start(self):
        out = open(self.stdout_path or os.devnull, "wb")
        try:
            if self.stdout_via_cat:
                self.cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=out)
            self.t_launch = now()
            self.proc = subprocess.Popen(
                [DEVNODE, "up", "-c", self.config, "--no-tui", "--color=never"],
                cwd=self.dir, env=self.env, stdin=subprocess.DEVNULL,
                stdout=self.cat.stdin if self.cat else out, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            out.close()
            if self.cat:
                self.cat.stdin.close()
        return self.t_launch

    @property
    def pid(self):
        return self.proc.pid

    def cli(self, *args, timeout=15):
        return subprocess.run([DEVNODE] + list(args) + ["-c", self.config], cwd=self.dir,
                              env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)

    def status_json(self):
        r = self.cli("status", "--json")
        if r.returncode != 0:
            raise RuntimeError("devnode status --json failed (%d): %s"
                               % (r.returncode, r.stderr.decode(errors="replace").strip()))
        return json.loads(r.stdout)

    def remember_tree(self):
        """Note the node's descendants so cleanup can reach them even if they get orphaned."""
        if self.proc and self.proc.poll() is None:
            self._tree.update(descendants(self.pid))

    def stop(self, timeout=20):
        """`devnode stop`, timed. Returns wall ms, or None if it failed or timed out."""
        t0 = now()
        try:
            r = self.cli("stop", "--timeout", str(timeout), timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            log("  ! devnode stop did not return within %ds" % (timeout + 5))
            return None
        ms = (now() - t0) * 1000
        if r.returncode != 0:
            log("  ! devnode stop exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace").strip()))
            return None
        return ms

    def __exit__(self, *exc):
        try:
            if self.proc is not None:
                self.remember_tree()
                if self.proc.poll() is None:
                    self.stop(timeout=10)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    log("  ! node %d still running after stop: killing its process tree" % self.pid)
                    self.remember_tree()
                    try:
                        os.killpg(self.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    self.proc.wait(timeout=10)
                # Anything of the tree still alive (workers are in their own groups).
                leftovers = [p for p in self._tree if proc_stat_fields(p) is not None]
                for p in leftovers:
                    for kill in (lambda: os.killpg(p, signal.SIGKILL), lambda: os.kill(p, signal.SIGKILL)):
                        try:
                            kill()
                        except OSError:
                            pass
                if leftovers:
                    time.sleep(0.1)
                    still = [p for p in leftovers if proc_stat_fields(p) is not None
                             and proc_stat_fields(p)[0] != b"Z"]
                    if still:
                        log("  ! node left %d processes behind after stopping; killed them" % len(still))
        finally:
            if self.cat:
                try:
                    self.cat.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.cat.kill()
                    self.cat.wait()
            shutil.rmtree(self.dir, ignore_errors=True)
        return False


class LogTail:
    """Reads a JSON-lines file incrementally: only the new bytes each poll, complete lines only."""

    def __init__(self, path):
        self.path = path
        self.f = None
        self.rest = b""
        self.bytes = 0

    def read_lines_blob(self, max_bytes=64 << 20):
        """New complete lines as one bytes blob (ending in b'\\n'), or b''."""
        if self.f is None:
            try:
                self.f = open(self.path, "rb")
            except FileNotFoundError:
                return b""
        data = self.f.read(max_bytes)
        if not data:
            return b""
        self.bytes += len(data)
        data = self.rest + data
        cut = data.rfind(b"\n") + 1
        self.rest = data[cut:]
        return data[:cut]

    def close(self):
        if self.f:
            self.f.close()


# ---------------------------------------------------------------------------- W1

def w1_config():
    return ("instances:\n"
            "  Tiny:\n"
            "    command: \"echo ready; exec sleep 1000\"\n"
            "    numprocesses: %d\n" % W1_INSTANCES)


def wait_ready(node, count, timeout, poll=0.002):
    """Polls the log file until `count` stdout lines with text "ready" are in it.
    Returns the perf_counter time at which they were seen."""
    tail = LogTail(node.logpath)
    ready = 0
    deadline = node.t_launch + timeout
    try:
        while True:
            blob = tail.read_lines_blob()
            if blob:
                for line in blob.splitlines():
                    if b'"ready"' not in line:
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("text") == "ready" and rec.get("stream") == "stdout":
                        ready += 1
                if ready >= count:
                    return now()
                continue
            if node.proc.poll() is not None:
                raise RuntimeError("node exited with status %d before %d ready lines (saw %d)"
                                   % (node.proc.returncode, count, ready))
            if now() > deadline:
                raise Timeout("only %d of %d ready lines after %.0fs" % (ready, count, timeout))
            time.sleep(poll)
    finally:
        tail.close()


def iso_to_epoch(s):
    d = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def w1_breakdown(logpath, wall_launch, wall_seen):
    """Where the start-up time went, from the line timestamps in the log file (ms after launch):
    node's first line, first and last "started", last "ready" captured, ready seen in the file."""
    node_up = started = ready = None
    first_started = None
    with open(logpath, "rb") as f:
        for line in f:
            try:
                rec = json.loads(line)
                t = (iso_to_epoch(rec["time"]) - wall_launch) * 1000
            except (ValueError, KeyError):
                continue
            text = rec.get("text", "")
            if rec.get("stream") == "node":
                if node_up is None:
                    node_up = t
                if text.endswith(")") and " started (pid " in text:
                    if first_started is None:
                        first_started = t
                    started = t
            elif rec.get("stream") == "stdout" and text == "ready":
                ready = t if ready is None else max(ready, t)
    return {"node_up": node_up, "first_started": first_started, "last_started": started,
            "last_ready": ready, "seen": (wall_seen - wall_launch) * 1000}


def w1_devnode_once():
    with Node(w1_config()) as node:
        wall0 = time.time()
        t0 = node.start()
        up_ms = stop_ms = breakdown = None
        try:
            t_ready = wait_ready(node, W1_INSTANCES, timeout=15)
            wall_seen = time.time()
            up_ms = (t_ready - t0) * 1000
            breakdown = w1_breakdown(node.logpath, wall0, wall_seen)
        except Timeout as e:
            log("  ! W1 TIMEOUT: %s" % e)
        node.remember_tree()
        if node.proc.poll() is None:
            stop_ms = node.stop()
        return up_ms, stop_ms, breakdown


def w1_plain_once():
    procs = []
    try:
        t0 = now()
        for _ in range(W1_INSTANCES):
            procs.append(subprocess.Popen(["sh", "-c", "echo ready; exec sleep 1000"],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          start_new_session=True))
        for p in procs:
            if p.stdout.readline() != b"ready\n":
                raise RuntimeError("plain fork/exec child did not print ready")
        return (now() - t0) * 1000
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        for p in procs:
            p.wait()
            p.stdout.close()


def bench_w1(reps, results):
    log("== W1: start-up of %d instances until every \"ready\" line is in the log file; stop time (%d runs)"
        % (W1_INSTANCES, reps))
    ups, stops, plains, breakdowns = [], [], [], []
    for i in range(reps):
        try:
            up, st, bd = w1_devnode_once()
            if bd:
                breakdowns.append(bd)
        except Exception as e:  # noqa: BLE001 - keep going, report what failed
            log("  ! W1 run %d failed: %s" % (i + 1, e))
            up, st = None, None
        ups.append(up)
        stops.append(st)
        plains.append(w1_plain_once())
        log("  run %d: devnode up %s, devnode stop %s, plain fork/exec %s"
            % (i + 1, fmt_ms(up), fmt_ms(st), fmt_ms(plains[-1])))
    up_med, up_min = median_min(ups)
    st_med, st_min = median_min(stops)
    pl_med, pl_min = median_min(plains)
    if up_med is None:
        log("W1 devnode up to %d ready: TIMEOUT | plain fork/exec: median %s (min %s)"
            % (W1_INSTANCES, fmt_ms(pl_med), fmt_ms(pl_min)))
    else:
        log("W1 devnode up to %d ready: median %s (min %s) | plain fork/exec: median %s (min %s) | "
            "ratio %.2f (target <= %.0f ms)"
            % (W1_INSTANCES, fmt_ms(up_med), fmt_ms(up_min), fmt_ms(pl_med), fmt_ms(pl_min),
               up_med / pl_med, W1_TARGET_MS))
    if breakdowns:
        def med(k):
            vals = [b[k] for b in breakdowns if b[k] is not None]
            return statistics.median(vals) if vals else float("nan")
        log("W1 where the time goes (median ms after launch, from the log's timestamps): node's first line %.1f | "
            "first \"started\" %.1f | last \"started\" %.1f (%.2f ms per spawn) | last \"ready\" read %.1f | "
            "seen in file %.1f"
            % (med("node_up"), med("first_started"), med("last_started"),
               (med("last_started") - med("first_started")) / max(W1_INSTANCES - 1, 1),
               med("last_ready"), med("seen")))
    if ups.count(None):
        log("W1 %d of %d runs timed out or failed" % (ups.count(None), reps))
    log("W1 devnode stop (%d instances): median %s (min %s)  [stop polls the lock every 20 ms]"
        % (W1_INSTANCES, fmt_ms(st_med), fmt_ms(st_min)))
    results["W1 up (100 ready)"] = (fmt_ms(up_med), "<= %.0f ms" % W1_TARGET_MS,
                                    None if up_med is None else up_med <= W1_TARGET_MS,
                                    "plain %s, ratio %s" % (fmt_ms(pl_med),
                                                            "-" if up_med is None else "%.2f" % (up_med / pl_med)))
    results["W1 stop (100)"] = (fmt_ms(st_med), "", None, "min %s" % fmt_ms(st_min))
    return up_med is not None


# ---------------------------------------------------------------------------- W2

def w2_config():
    return ("instances:\n"
            "  Burst:\n"
            "    command: \"exec %s %d $DEVNODE_INSTANCE %d\"\n"
            "    numprocesses: %d\n"
            "    restart: never\n"
            "logs:\n"
            "  file_max_mb: 100000\n" % (BURST, W2_LINES, W2_WIDTH, W2_WRITERS))


def w2_offset_after(path, marker, count):
    """The byte offset just past the line holding the count-th occurrence of marker, or None."""
    seen, base = 0, 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(64 << 20)
            if not chunk:
                return None
            chunk += f.readline()
            n = chunk.count(marker)
            if seen + n >= count:
                pos = -1
                for _ in range(count - seen):
                    pos = chunk.index(marker, pos + 1)
                return base + chunk.index(b"\n", pos) + 1
            seen += n
            base += len(chunk)


def w2_stdout_lines(path):
    """(burst lines, per writer, writers whose lines came out of order) in a stdout capture."""
    per_tag = [0] * W2_WRITERS
    disorder = set()
    with open(path, "rb") as f:
        for line in f:
            i = line.find(b"| burst ")
            if i < 0:
                continue
            parts = line[i + 8:].split(b" ", 2)
            tag, k = int(parts[0]), int(parts[1])
            if k != per_tag[tag]:
                disorder.add(tag)
            per_tag[tag] = k + 1
    return sum(per_tag), per_tag, sorted(disorder)


def w2_devnode_once(stdout_path=None, timeout=90, via_cat=False):
    """Returns dict(ms, exits_ms, cpu_s, lines, per_tag, bytes, out_lines, ...) or raises.

    While the burst runs the harness only stat()s the log file every 5 ms and notes when its
    size changed: reading and counting ~300 MB as it grows took a core's worth of CPU from the
    node and the writers on a small machine. Afterwards (untimed) it finds the byte offset
    where the last burst line ends, and the time is that of the first sample at or past it.
    With stdout on a file (or a pipe into `cat > file`) the time is when both the log file
    and that file hold every line, found the same way in the stdout samples."""
    want = W2_WRITERS * W2_LINES
    marker = b'"text":"burst '
    tag_markers = [(b'"text":"burst %d ' % i) for i in range(W2_WRITERS)]
    exit_marker = b"not restarting (restart: never)"
    out_marker = b"| burst "
    with Node(w2_config(), stdout_path=stdout_path, stdout_via_cat=via_cat) as node:
        t0 = node.start()
        samples = []          # (time, size) at every size change
        out_samples = []      # the same for the stdout file
        size, out_size, changed = -1, -1, now()
        while True:
            try:
                cur = os.stat(node.logpath).st_size
            except FileNotFoundError:
                cur = 0
            out_cur = os.stat(stdout_path).st_size if stdout_path else 0
            t = now()
            if cur != size or out_cur != out_size:
                if cur != size:
                    samples.append((t, cur))
                if out_cur != out_size:
                    out_samples.append((t, out_cur))
                size, out_size, changed = cur, out_cur, t
            elif size > 0 and t - changed > 1.0:
                # Quiet for a second: either done or lost lines; check, untimed.
                with open(node.logpath, "rb") as f:
                    blob = f.read()
                if blob.count(marker) >= want and blob.count(exit_marker) >= W2_WRITERS:
                    break
                changed = now()
            if node.proc.poll() is not None:
                raise RuntimeError("node exited with status %d during the burst" % node.proc.returncode)
            if t - t0 > timeout:
                raise Timeout("the log file stopped at %d bytes after %.0fs" % (size, timeout))
            time.sleep(0.005)
        cpu = cpu_seconds(node.pid)
        threads = thread_cpu_seconds(node.pid)
        node.remember_tree()
        node.stop()
        end_lines = w2_offset_after(node.logpath, marker, want)
        end_exits = w2_offset_after(node.logpath, exit_marker, W2_WRITERS)
        t_all = next((t for t, sz in samples if end_lines is not None and sz >= end_lines), None)
        t_exits = next((t for t, sz in samples if end_exits is not None and sz >= end_exits), None)
        out_lines = out_per_tag = out_disorder = None
        if stdout_path:
            out_lines, out_per_tag, out_disorder = w2_stdout_lines(stdout_path)
            end_out = w2_offset_after(stdout_path, out_marker, out_lines) if out_lines else None
            t_out = next((t for t, sz in out_samples if end_out is not None and sz >= end_out), None)
            t_all = None if t_all is None or t_out is None else max(t_all, t_out)
        # Untimed check: every writer's lines arrived, none split or unterminated.
        per_tag = [0] * W2_WRITERS
        flagged = lines = 0
        with open(node.logpath, "rb") as f:
            while True:
                chunk = f.read(64 << 20)
                if not chunk:
                    break
                chunk += f.readline()
                lines += chunk.count(marker)
                for i, m in enumerate(tag_markers):
                    per_tag[i] += chunk.count(m)
                flagged += chunk.count(b'"split":true') + chunk.count(b'"unterminated":true')
        size = os.path.getsize(node.logpath)
    return {"ms": None if t_all is None else (t_all - t0) * 1000,
            "exits_ms": None if t_exits is None else (t_exits - t0) * 1000,
            "cpu_s": cpu, "loop_s": threads.get("devnode"), "writer_s": threads.get("devnode-log"),
            "printer_s": threads.get("devnode-print"), "threads_s": sum(threads.values()) if threads else None,
            "lines": lines, "per_tag": per_tag, "bytes": size, "flagged": flagged,
            "out_lines": out_lines, "out_per_tag": out_per_tag, "out_disorder": out_disorder}


def w2_plain_once():
    d = tempfile.mkdtemp(prefix="devnode-bench-plain-")
    procs = []
    try:
        t0 = now()
        for i in range(W2_WRITERS):
            procs.append(subprocess.Popen([BURST, str(W2_LINES), str(i), str(W2_WIDTH),
                                           os.path.join(d, "burst%d.txt" % i)],
                                          stdin=subprocess.DEVNULL))
        for p in procs:
            if p.wait(timeout=120) != 0:
                raise RuntimeError("burst exited with status %d" % p.returncode)
        return (now() - t0) * 1000
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(d, ignore_errors=True)


def w2_build_relay(workdir):
    return compile_c(workdir, "w2_relay", [],
                     [os.path.join(ROOT, "common", name) for name in ("logformat.c", "strbuf.c", "logparse.c", "xalloc.c")])


def w2_relay_once(relay):
    """(ms, cpu_s) of w2_relay moving the burst into a JSON log, or None after saying why."""
    d = tempfile.mkdtemp(prefix="devnode-bench-relay-")
    try:
        out = subprocess.run([relay, BURST, str(W2_LINES), str(W2_WIDTH), str(W2_WRITERS),
                              os.path.join(d, "relay.jsonl")], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            log("  ! w2_relay exited with %d: %s" % (out.returncode, out.stderr.strip()[:200]))
            return None
        ms, cpu = out.stdout.split()
        return float(ms), float(cpu)
    except (OSError, subprocess.TimeoutExpired, ValueError) as e:
        log("  ! w2_relay: %s" % e)
        return None
    finally:
        shutil.rmtree(d, ignore_errors=True)


def bench_w2(reps, file_reps, results):
    workdir = tempfile.mkdtemp(prefix="devnode-bench-w2-")
    try:
        return bench_w2_runs(reps, file_reps, results, w2_build_relay(workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


W2_MODES = (("devnull", "stdout>/dev/null"), ("file", "stdout>file"), ("pipe", "stdout|cat>file"))


def bench_w2_runs(reps, file_reps, results, relay):
    want = W2_WRITERS * W2_LINES
    plan = ["devnull"] * reps + ["file", "pipe"] * file_reps
    log("== W2: log burst, %d writers x %d lines of %d bytes (%d lines) into the JSON-lines log, the node's "
        "stdout on /dev/null, a file, a pipe into cat (%d runs)" % (W2_WRITERS, W2_LINES, W2_WIDTH, want, len(plan)))
    runs = {mode: [] for mode, _ in W2_MODES}
    cpus = {mode: [] for mode, _ in W2_MODES}
    delivered = {mode: [] for mode, _ in W2_MODES}
    plains = []
    relays = []
    ok = True
    for i, mode in enumerate(plan):
        out_dir = None
        try:
            stdout_path = None
            if mode != "devnull":
                out_dir = tempfile.mkdtemp(prefix="devnode-bench-out-")
                stdout_path = os.path.join(out_dir, "node-stdout.txt")
            r = w2_devnode_once(stdout_path, via_cat=mode == "pipe")
            out_size = os.path.getsize(stdout_path) if stdout_path else None
        except Timeout as e:
            log("  ! W2 (%s) TIMEOUT: %s" % (mode, e))
            r, out_size = None, None
        except Exception as e:  # noqa: BLE001
            log("  ! W2 (%s) run failed: %s" % (mode, e))
            r, out_size = None, None
        finally:
            if out_dir:
                shutil.rmtree(out_dir, ignore_errors=True)
        plains.append(w2_plain_once())
        relayed = w2_relay_once(relay) if relay else None
        if relayed:
            relays.append(relayed)
        if r is None:
            runs[mode].append(None)
            ok = False
            continue
        runs[mode].append(r["ms"])
        if r["cpu_s"] is not None:
            cpus[mode].append(r["cpu_s"])
        note = ""
        if r["lines"] != want or any(c != W2_LINES for c in r["per_tag"]):
            note = "  LOST/EXTRA LINES: %d of %d, per writer %s" % (r["lines"], want, r["per_tag"])
        if r["flagged"]:
            note += "  %d lines flagged split/unterminated" % r["flagged"]
        if r["out_lines"] is not None:
            delivered[mode].append(r["out_lines"])
            note += ", %d lines on stdout" % r["out_lines"]
            if r["out_lines"] != want:
                note += " (MISSING %d, per writer %s)" % (want - r["out_lines"], r["out_per_tag"])
            if r["out_disorder"]:
                note += " OUT OF ORDER for writers %s" % r["out_disorder"]
        rate = "" if r["ms"] is None else ", %.2f M lines/s" % (want / r["ms"] / 1000)
        split = ("" if r["loop_s"] is None or r["writer_s"] is None
                 else " (loop %.2f, log writer %.2f, printer %.2f)" % (r["loop_s"], r["writer_s"], r["printer_s"] or 0))
        log("  run %d (node stdout -> %s): all lines in %s %s%s, 8 exits seen %s, node CPU %.2f s = %.0f ns/line%s, "
            "log %.0f MB%s%s | plain %s | relay %s"
            % (i + 1, dict(W2_MODES)[mode].split("stdout")[1].lstrip(">|"), "log" if mode == "devnull" else "log and stdout",
               fmt_ms(r["ms"]), rate, fmt_ms(r["exits_ms"]), r["cpu_s"] or 0, (r["cpu_s"] or 0) / want * 1e9, split,
               r["bytes"] / 1e6, "" if out_size is None else ", node stdout %.0f MB" % (out_size / 1e6), note,
               fmt_ms(plains[-1]), "-" if not relayed else "%s (CPU %.2f s)" % (fmt_ms(relayed[0]), relayed[1])))
    pl_med, pl_min = median_min(plains)
    if relays:
        rl_med, _ = median_min([ms for ms, _ in relays])
        rl_cpu = statistics.median([cpu for _, cpu in relays])
        log("W2 relay floor: one thread reading the 8 pipes and writing the same JSON log, nothing else: "
            "median %s, %.2fx plain, its CPU %.2f s: the best ratio any node can reach on this machine"
            % (fmt_ms(rl_med), rl_med / pl_med, rl_cpu))
        results["W2 relay floor"] = ("%s (%.2fx)" % (fmt_ms(rl_med), rl_med / pl_med), "", None,
                                     "read pipes + write JSON only, CPU %.2f s" % rl_cpu)
    for mode, label in W2_MODES:
        if not runs[mode]:
            continue
        target = W2_TARGET_RATIO if mode == "devnull" else W2_STDOUT_TARGET_RATIO
        med, mn = median_min(runs[mode])
        cpu = statistics.median(cpus[mode]) if cpus[mode] else None
        ns = None if cpu is None else cpu / want * 1e9
        lines = min(delivered[mode]) if delivered[mode] else None
        if med is None:
            log("W2 burst %d lines (%s): TIMEOUT | plain 8 writers to files: median %s"
                % (want, label, fmt_ms(pl_med)))
            results["W2 burst (%s)" % label] = ("TIMEOUT", "<= %.1fx plain" % target, None, "")
            continue
        ratio = med / pl_med
        log("W2 burst %d lines (%s): median %s (min %s) | plain 8 writers to files: median %s (min %s) | "
            "ratio %.2f (target <= %.1fx) | node CPU %s s = %s ns/line (target <= %d)%s"
            % (want, label, fmt_ms(med), fmt_ms(mn), fmt_ms(pl_med), fmt_ms(pl_min), ratio, target,
               "?" if cpu is None else "%.2f" % cpu, "?" if ns is None else "%.0f" % ns, W2_TARGET_NS_PER_LINE,
               "" if lines is None else " | stdout got %d of %d lines (fewest of the runs)" % (lines, want)))
        results["W2 burst (%s)" % label] = ("%s (%.2fx)" % (fmt_ms(med), ratio), "<= %.1fx plain" % target,
                                            ratio <= target,
                                            "plain %s, node CPU %s s" % (fmt_ms(pl_med),
                                                                         "?" if cpu is None else "%.2f" % cpu))
        if ns is not None:
            results["W2 CPU/line (%s)" % label] = ("%.0f ns" % ns, "<= %d ns" % W2_TARGET_NS_PER_LINE,
                                                   ns <= W2_TARGET_NS_PER_LINE, "all node threads")
        if lines is not None:
            results["W2 lines (%s)" % label] = ("%d" % lines, "%d" % want, lines == want, "on the node's stdout")
    return ok


# ---------------------------------------------------------------------------- R

def bench_r(results):
    log("== R: node RSS with %d instances running" % W1_INSTANCES)
    with Node(w1_config()) as node:
        node.start()
        try:
            wait_ready(node, W1_INSTANCES, timeout=15)
        except Timeout as e:
            log("R TIMEOUT: %s" % e)
            results["R node RSS"] = ("TIMEOUT", "<= 8 MiB", None, "")
            return False
        time.sleep(1.5)  # let the 1 s /proc sampling run once
        node.remember_tree()
        rss = status_kib(node.pid, "VmRSS")
        hwm = status_kib(node.pid, "VmHWM")
        threads = None
        try:
            threads = len(os.listdir("/proc/%d/task" % node.pid))
        except OSError:
            pass
        guards = [p for p in descendants(node.pid) if comm(p) == "devnode-guard"]
        guard_rss = status_kib(guards[0], "VmRSS") if guards else None
        st_rss = None
        try:
            st_rss = node.status_json()["node"].get("rss_kib")
        except Exception as e:  # noqa: BLE001
            log("  ! status --json: %s" % e)
        node.stop()
    log("R node RSS, %d instances up: VmRSS %s KiB (%.1f MiB), VmHWM %s KiB | status --json rss_kib %s | "
        "%s threads | guardian VmRSS %s KiB (target <= 8 MiB)"
        % (W1_INSTANCES, rss, (rss or 0) / 1024, hwm, st_rss, threads, guard_rss))
    results["R node RSS (100 up)"] = ("%.1f MiB" % (rss / 1024) if rss else "?", "<= 8 MiB",
                                      None if rss is None else rss <= R_TARGET_KIB,
                                      "status rss_kib %s, HWM %s KiB" % (st_rss, hwm))
    return rss is not None


# ---------------------------------------------------------------------------- C

def bench_c(results, seconds=C_SECONDS):
    log("== C: node CPU during %.0f s of a crash loop (%d x sh -c 'exit 1', restart: always)"
        % (seconds, C_INSTANCES))
    cfg = ("instances:\n"
           "  Crash:\n"
           "    command: \"sh -c 'exit 1'\"\n"
           "    numprocesses: %d\n"
           "    restart: always\n" % C_INSTANCES)
    with Node(cfg) as node:
        node.start()
        # Wait until the node is up (its first lifecycle line is in the log file).
        deadline = now() + 10
        while not (os.path.exists(node.logpath) and os.path.getsize(node.logpath) > 0):
            if node.proc.poll() is not None or now() > deadline:
                log("C TIMEOUT: node did not come up")
                results["C crash-loop CPU"] = ("TIMEOUT", "<= 2 %", None, "")
                return False
            time.sleep(0.002)
        c0, t0 = cpu_seconds(node.pid), now()
        peak_tree = 0
        while now() - t0 < seconds:
            time.sleep(0.25)
            node.remember_tree()
            peak_tree = max(peak_tree, len(descendants(node.pid)))
        c1, t1 = cpu_seconds(node.pid), now()
        restarts = None
        states = {}
        try:
            st = node.status_json()
            restarts = sum(i.get("restarts", 0) for s in st["services"] for i in s["instances"])
            for s in st["services"]:
                for i in s["instances"]:
                    states[i.get("state")] = states.get(i.get("state"), 0) + 1
        except Exception as e:  # noqa: BLE001
            log("  ! status --json: %s" % e)
        node.stop()
    if c0 is None or c1 is None:
        log("C: node CPU could not be read")
        return False
    pct = (c1 - c0) / (t1 - t0) * 100
    log("C node CPU in crash loop: %.2f %% over %.1f s (%.2f s CPU) | restarts %s | states at end %s "
        "(target <= %.0f %%)" % (pct, t1 - t0, c1 - c0, restarts, states, C_TARGET_PCT))
    results["C crash-loop CPU"] = ("%.2f %%" % pct, "<= 2 %", pct <= C_TARGET_PCT,
                                   "%s restarts in %.0f s" % (restarts, t1 - t0))
    return True


# ---------------------------------------------------------------------------- main

def main(argv):
    quick, only = bench_argv(argv)  # cleanup (Node.__exit__) runs on SIGTERM/SIGHUP too
    for path in (DEVNODE, BURST):
        if not os.access(path, os.X_OK):
            log("bench: %s is missing; run `make all` first" % path)
            return 1
    log("devnode bench: %s, %d CPUs, kernel %s" % (ROOT, os.cpu_count(), os.uname().release))
    results = {}
    benches = [
        ("W1", lambda: bench_w1(2 if quick else 5, results)),
        ("W2", lambda: bench_w2(1 if quick else 5, 1 if quick else 3, results)),
        ("R", lambda: bench_r(results)),
        ("C", lambda: bench_c(results, 3.0 if quick else C_SECONDS)),
    ]
    return run_benches(benches, only, results)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
