#!/usr/bin/python3
"""Shared-socket figures (issue 3): wrk -t2 -c64 against 1, 2 and 4 workers sharing one
port (requests/s and each worker's share), and the failures seen by wrk across rolling
restarts under load. Prints figures; asserts nothing. Loopback only."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEVNODE = ROOT / "devnode"
WEB = ROOT / "build" / "examples" / "web"
QUICK = "--quick" in sys.argv
SECONDS = 3 if QUICK else 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(project):
    r = subprocess.run([str(DEVNODE), "status", "--json", "-c", str(project / ".lymph.yml")],
                       capture_output=True, text=True, timeout=10)
    return json.loads(r.stdout) if r.returncode == 0 else None


def wait_running(project, n, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = status(project)
        if s and s["services"][0]["running"] == n and all(i["ready"] for i in s["services"][0]["instances"]):
            return s
        time.sleep(0.05)
    raise RuntimeError("workers did not start")


def run_wrk(port, seconds, lua=True):
    cmd = ["wrk", "-t2", "-c64", f"-d{seconds}s"]
    if lua:
        cmd += ["-s", str(ROOT / "bench" / "pid_share.lua")]
    cmd.append(f"http://127.0.0.1:{port}/pid")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def parse_wrk(text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    shares = {pid: int(n) for pid, n in re.findall(r"^PID (\S+) (\d+)$", text, re.M)}
    errors = [int(x) for x in re.search(r"^ERRORS (\d+) (\d+) (\d+) (\d+)$", text, re.M).groups()]
    non2xx = int(re.search(r"^NON2XX (\d+)$", text, re.M).group(1))
    return rps, shares, errors, non2xx


class NodeRun:
    def __init__(self, workers, ready="notify"):
        self.dir = Path(tempfile.mkdtemp(prefix="devnode-bench-sockets-"))
        self.port = free_port()
        (self.dir / ".lymph.yml").write_text(f"""
instances:
    Web:
        command: {WEB}
        numprocesses: {workers}
        ready: {ready}
        stop_timeout: 5
sockets:
    Web: {{port: {self.port}}}
""")
        self.proc = subprocess.Popen([str(DEVNODE), "up"], cwd=self.dir, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_running(self.dir, workers)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def bench_share():
    print(f"== S1 wrk -t2 -c64 -d{SECONDS}s on workers sharing one port")
    rows = []
    for workers in (1, 2, 4):
        run = NodeRun(workers)
        try:
            out, _ = run_wrk(run.port, SECONDS).communicate(timeout=SECONDS + 30)
            rps, shares, errors, non2xx = parse_wrk(out)
            counts = sorted(shares.values())
            ratio = counts[-1] / counts[0] if counts and counts[0] else float("inf")
            print(f"  {workers} worker(s): {rps:,.0f} req/s | shares {counts} | max/min {ratio:.2f} "
                  f"| errors {sum(errors)} non-2xx {non2xx}")
            rows.append((workers, rps, ratio))
        finally:
            run.close()
    return rows


def bench_rolling():
    print(f"== S2 rolling restarts under wrk load ({SECONDS}s, 2 workers, a restart every 2 s)")
    run = NodeRun(2)
    try:
        wrk = run_wrk(run.port, SECONDS)
        restarts = 0
        end = time.monotonic() + SECONDS - 1.5
        time.sleep(1.0)
        while time.monotonic() < end:
            r = subprocess.run([str(DEVNODE), "restart", "Web", "-c", str(run.dir / ".lymph.yml")],
                               capture_output=True, text=True, timeout=10)
            if r.returncode == 0:
                restarts += 1
            # wait for this roll to finish before the next one
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                s = status(run.dir)
                insts = s["services"][0]["instances"] if s else []
                if len(insts) == 2 and all(i["ready"] and i["state"] == "running" for i in insts):
                    break
                time.sleep(0.05)
            time.sleep(max(0.0, 2.0 - 0.05))
        out, _ = wrk.communicate(timeout=SECONDS + 30)
        rps, shares, errors, non2xx = parse_wrk(out)
        total = sum(shares.values())
        print(f"  {restarts} rolling restarts, {total:,} responses from {len(shares)} processes, {rps:,.0f} req/s")
        print(f"  failures: connect {errors[0]} read {errors[1]} write {errors[2]} timeout {errors[3]} "
              f"non-2xx {non2xx} (goal 0)")
        return restarts, sum(errors) + non2xx
    finally:
        run.close()


def main():
    if not shutil.which("wrk"):
        print("S: wrk is not installed (apt-get install wrk); skipping the shared-socket bench")
        return 0
    if not WEB.exists():
        print(f"S: {WEB} is missing: run `make all`")
        return 1
    rows = bench_share()
    restarts, failures = bench_rolling()
    print("== summary (shared sockets)")
    for workers, rps, ratio in rows:
        print(f"S1 {workers} worker(s)          {rps:>10,.0f} req/s   max/min share {ratio:.2f} (goal <= 1.5)")
    print(f"S2 rolling restarts        {restarts} rolls, {failures} failed requests (goal 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
