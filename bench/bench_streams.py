#!/usr/bin/python3
"""devnode benchmarks of retained event streams (issue 8).

Prints figures, asserts nothing. Exit status 0 unless nothing could be measured.
Every node started here is stopped, and every process started here killed, before the end;
the journal (about 80 MB for a million events) lives in a temp dir removed at the end.

  JA  journal append: 1 publisher emitting small bodies (`book.added {n, title}`), pipelined
      (4,000 in flight), to a type the node retains (`streams: {book.#: ...}`), no subscriber.
      events/s from the first emit to the last `ok` (each `ok` means the journal has it).
  JR  replay: a subscriber with `from: beginning` (a group of its own, prefetch 1,000) that
      acks every event, on the 1,000,000-event journal JA wrote: events/s from the subscribe
      to the last event received and acked, checking offsets 0..N-1 arrive once, in order.
  JL  replay through libdevnode: a C service's DEVNODE_CATCH_UP stream subscription (what
      examples/bookshelf's LastRead does at start), timing devnode_start: events/s including
      the library's msgpack->JSON per event and its prefetch of 64.

The publisher and subscriber are C (built here against proto/wire.c from libcore.a), so the
figure is the node's; when no compiler is at hand the bench says so and measures nothing.

Usage: bench_streams.py [--quick] [--only JA,JR,JL]
"""
import os
import subprocess
import sys

from benchlib import DEVNODE, ROOT, TempNode, bench_argv, compile_c, cpu_seconds, log

CORE = os.path.join(ROOT, "build", "rel", "libcore.a")
LIBDEVNODE = os.path.join(ROOT, "build", "libdevnode.a")

EVENTS, EVENTS_QUICK = 1000000, 200000
WINDOW = 4000            # emits in flight before waiting for the node's ok replies
PREFETCH = 1000          # unacked deliveries to the replaying subscriber


def build(workdir):
    """Compiles the drivers; returns (driver, lib_replay or None), or (None, None)."""
    pkgs = ["libzmq", "msgpack", "jansson"]
    exe = compile_c(workdir, "stream_driver", pkgs, [CORE])
    if not exe:
        return None, None
    lib_exe = None
    if os.path.exists(LIBDEVNODE):
        lib_exe = compile_c(workdir, "stream_lib_replay", pkgs, ["-I", os.path.join(ROOT, "lib"), LIBDEVNODE])
    return exe, lib_exe


class Node(TempNode):
    """A TempNode retaining `book.#`, that can measure its journal."""

    def __init__(self, retain):
        super().__init__("instances:\n    Quiet:\n        command: exec sleep 100000\n"
                         f"streams:\n    book.#: {{retain_events: {retain}}}\n", prefix="devnode-bstream-")

    def journal_bytes(self):
        d = os.path.join(self.dir, ".devnode", "streams")
        return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".seg"))


def run(cmd, env=None, timeout=600):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"{os.path.basename(cmd[0])} failed: {r.stderr.strip()[:300]}")
    return r.stdout.split()


def bench(quick, only):
    n = EVENTS_QUICK if quick else EVENTS
    measured = 0
    with Node(retain=n) as node:
        driver, lib_replay = build(node.dir)
        if not driver:
            return 0
        # JA writes the journal the replays read, so it runs whenever any of them is asked for.
        log(f"JA journal append: 1 publisher, {n:,} small events to a retained type, {WINDOW} in flight")
        cpu0 = cpu_seconds(node.proc.pid)
        secs, refused, last = run([driver, "pub", node.endpoint, str(n), str(WINDOW)])
        secs, refused, last = float(secs), int(refused), int(last)
        cpu = cpu_seconds(node.proc.pid) - cpu0
        size = node.journal_bytes()
        if not only or "JA" in only:
            log(f"   {n / secs:,.0f} events/s appended ({secs:.2f} s), {refused} refused, last offset {last}; "
                f"journal {size / 1e6:.1f} MB ({size / n:.0f} B/event); node CPU {cpu / n * 1e6:.1f} us/event")
            measured += 1
        if refused or last != n - 1:
            raise RuntimeError(f"the journal does not hold {n} events (last offset {last}, {refused} refused)")

        if not only or "JR" in only:
            log(f"JR replay from offset 0 of the {n:,}-event journal: 1 subscriber, prefetch {PREFETCH}, acks each")
            cpu0 = cpu_seconds(node.proc.pid)
            secs, count, disorder = run([driver, "replay", node.endpoint, "book.#", str(n), str(PREFETCH)])
            secs, count, disorder = float(secs), int(count), int(disorder)
            cpu = cpu_seconds(node.proc.pid) - cpu0
            log(f"   {count / secs:,.0f} events/s replayed and acked ({secs:.2f} s for {count:,}); "
                f"{disorder} out of order or repeated; node CPU {cpu / count * 1e6:.1f} us/event")
            measured += 1

        if (not only or "JL" in only) and lib_replay:
            log("JL replay through libdevnode: DEVNODE_CATCH_UP from offset 0 (prefetch 64, msgpack->JSON each)")
            env = dict(node.env, DEVNODE_ENDPOINT=node.endpoint, DEVNODE_SERVICE="BenchView")
            secs, count = run([lib_replay], env=env)
            secs, count = float(secs), int(count)
            log(f"   {count / secs:,.0f} events/s handled ({secs:.2f} s for {count:,} until devnode_start returned)")
            measured += 1
    return measured


def main(argv):
    quick, only = bench_argv(argv)
    if only and not only & {"JA", "JR", "JL"}:
        return 0  # bench/run passes every bench the same --only: none of ours was asked for
    if not os.access(DEVNODE, os.X_OK) or not os.path.exists(CORE):
        log("bench_streams: ./devnode or build/rel/libcore.a missing; run `make all` first")
        return 1
    try:
        return 0 if bench(quick, only) else 1
    except Exception as exc:  # noqa: BLE001
        log(f"   streams: not measured: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
