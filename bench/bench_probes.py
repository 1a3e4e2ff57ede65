#!/usr/bin/python3
"""Health probes (issue 20 item 3): the node's CPU with 100 liveness probes at 1 s.

  H  100 instances (`sleep`), each with `live: {http: URL, interval: 1s}`: the node's own CPU
     (utime+stime of its process, all threads) over a measured window, as % of one core,
     beside the same 100 instances without probes. The URL is one small HTTP server run by
     this script (asyncio, not measured), so the figure is the node's side of 100 GETs a
     second: connect, request, status line, close. Goal: under 1 % of one core in all.
  E  the same with `live: {exec: "true", interval: 1s}`: 100 forks a second. The node's CPU
     and, apart, its reaped children's (the probes' own sh), since each forks.

Prints figures, asserts nothing; every node started here is stopped or killed.
Usage: bench_probes.py [--seconds N] [--only H,E]
"""
import asyncio
import json
import os
import sys
import threading
import time

from benchlib import TempNode, log, run_benches

TCK = os.sysconf("SC_CLK_TCK")
INSTANCES = 100


def cpu(pid):
    """(own utime+stime, reaped children's cutime+cstime) in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK, (int(fields[13]) + int(fields[14])) / TCK


class Server:
    """GET anything -> 200, counting requests, on a thread of its own."""

    def __init__(self):
        self.requests = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    async def _serve(self, reader, writer):
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except Exception:
            pass
        writer.close()

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        srv = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024))
        self.port = srv.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()


class Node(TempNode):
    def __init__(self, config):
        super().__init__(config, prefix="devnode-bench-probes-")

    def status(self):
        r = self.cli("status", "--json", timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def wait_all(self, healthy, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the node exited early")
            st = self.status()
            if st:
                insts = st["services"][0]["instances"]
                if len(insts) == INSTANCES and all(i["state"] == "running" for i in insts) and \
                        (not healthy or all((i.get("health") or {}).get("result") == "ok" for i in insts)):
                    return
            time.sleep(0.2)
        raise RuntimeError("timed out waiting for the instances")


def config(live):
    return ("instances:\n    W:\n        command: exec sleep 100000\n"
            f"        numprocesses: {INSTANCES}\n" + (f"        live: {live}\n" if live else ""))


def measure(live, seconds, server=None):
    """(node CPU %, children CPU %, probes per second seen by the server or None)."""
    with Node(config(live)) as node:
        node.wait_all(healthy=bool(live))
        time.sleep(2)  # the start's own work is over
        c0, k0, t0 = *cpu(node.proc.pid), time.monotonic()
        r0 = server.requests if server else 0
        time.sleep(seconds)
        c1, k1, t1 = *cpu(node.proc.pid), time.monotonic()
        r1 = server.requests if server else 0
        wall = t1 - t0
        return 100 * (c1 - c0) / wall, 100 * (k1 - k0) / wall, ((r1 - r0) / wall if server else None)


def main():
    seconds = 20
    only = None
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--seconds":
            seconds = int(args.pop(0))
        elif a == "--only":
            only = set(args.pop(0).split(","))
        else:
            print(__doc__)
            return 2
    results = {}
    base = {}

    def baseline():
        if "node" not in base:
            base["node"], _, _ = measure(None, seconds)
            log(f"   baseline: 100 instances, no probes: node {base['node']:.2f} % of one core")
        return base["node"]

    def bench_http():
        b = baseline()
        server = Server()
        node_pct, _, rate = measure(f"{{http: 'http://127.0.0.1:{server.port}/healthz', interval: 1s, "
                                    f"timeout: 1s}}", seconds, server)
        log(f"H  100 http liveness probes at 1 s: node {node_pct:.2f} % of one core "
            f"({node_pct - b:+.2f} over no probes), {rate:.1f} probes/s answered")
        results["H node CPU, 100 http/1s"] = (f"{node_pct:.2f} % core", "< 1 %", node_pct < 1.0,
                                               f"no probes: {b:.2f} %; {rate:.0f} probes/s")
        return True

    def bench_exec():
        b = baseline()
        node_pct, kids_pct, _ = measure("{exec: 'true', interval: 1s, timeout: 1s}", seconds)
        log(f"E  100 exec liveness probes at 1 s: node {node_pct:.2f} % of one core "
            f"({node_pct - b:+.2f} over no probes); the probes' own processes {kids_pct:.2f} %")
        results["E node CPU, 100 exec/1s"] = (f"{node_pct:.2f} % core", "(reported)", None,
                                               f"probe processes: {kids_pct:.2f} % core")
        return True

    log(f"bench_probes: {INSTANCES} instances, {seconds} s windows (a shared machine: compare runs, "
        "not machines)")
    return run_benches([("H", bench_http), ("E", bench_exec)], only, results)


if __name__ == "__main__":
    sys.exit(main())
