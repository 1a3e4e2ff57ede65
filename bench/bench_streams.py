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

The publisher and subscriber are C (built here against common/wire.c from libcore.a), so the
figure is the node's; when no compiler is at hand the bench says so and measures nothing.

Usage: bench_streams.py [--quick] [--only JA,JR,JL]
"""
import os
import signal
import subprocess
import sys

from benchlib import DEVNODE, ROOT, TempNode, compile_c, cpu_seconds, log

CORE = os.path.join(ROOT, "build", "rel", "libcore.a")
LIBDEVNODE = os.path.join(ROOT, "build", "libdevnode.a")

EVENTS, EVENTS_QUICK = 1000000, 200000
WINDOW = 4000            # emits in flight before waiting for the node's ok replies
PREFETCH = 1000          # unacked deliveries to the replaying subscriber


DRIVER_C = r"""
#include <string.h>
#include <unistd.h>
#include "bench/driver.h"
#include "common/wire.h"

/* Emits n book.added events, `window` in flight; prints seconds, refused, last offset. */
static int publish(const char *endpoint, long n, long window)
{
    void *ctx = zmq_ctx_new(), *s = connect_node(ctx, endpoint);
    long sent = 0, done = 0, refused = 0;
    int64_t last_offset = -1;
    char title[32];
    double start = mono();
    while (done < n) {
        for (; sent < n && sent - done < window; sent++) {
            struct wire_body b;
            wire_body_init(&b);
            msgpack_pack_map(&b.pk, 6);
            wire_pack_kv_int(&b.pk, "id", sent);
            wire_pack_kv_str(&b.pk, "type", "book.added");
            wire_pack_str(&b.pk, "body");
            msgpack_pack_map(&b.pk, 2);
            wire_pack_kv_int(&b.pk, "n", sent);
            snprintf(title, sizeof title, "Book %ld", sent);
            wire_pack_kv_str(&b.pk, "title", title);
            wire_pack_str(&b.pk, "headers");
            msgpack_pack_map(&b.pk, 1);
            wire_pack_kv_str(&b.pk, "trace_id", "bench");
            wire_pack_kv_str(&b.pk, "source", "bench");
            wire_pack_kv_int(&b.pk, "delay_ms", 0);
            wire_send(s, NULL, 0, "emit", b.sbuf.data, b.sbuf.size, 0);
            wire_body_free(&b);
        }
        zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 10000) == 0) {
            fprintf(stderr, "the node stopped answering emits after %ld\n", done);
            return 1;
        }
        struct wire_msg m;
        char err[128];
        enum wire_recv_result r;
        while ((r = wire_recv(s, 0, &m, err, sizeof err)) != WIRE_AGAIN) {
            if (r != WIRE_OK)
                continue;
            int64_t off;
            if (strcmp(m.type, "ok") != 0)
                refused++;
            else if (wire_get_int(m.body, "offset", &off) == 0 && off > last_offset)
                last_offset = off;
            done++;
            wire_msg_free(&m);
        }
    }
    printf("%.6f %ld %lld\n", mono() - start, refused, (long long)last_offset);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

/* Subscribes to `stream` from the beginning (a group of its own), acks every event until n
 * came; prints seconds, events, and how many arrived out of order or twice. */
static int replay(const char *endpoint, const char *stream, long n, int prefetch)
{
    void *ctx = zmq_ctx_new(), *s = connect_node(ctx, endpoint);
    double start = mono(), next_beat = start + 1;
    struct wire_body b;
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 9);
    wire_pack_kv_int(&b.pk, "id", 1);
    wire_pack_kv_str(&b.pk, "subscription", "r1");
    wire_pack_str(&b.pk, "patterns");
    msgpack_pack_array(&b.pk, 1);
    wire_pack_str(&b.pk, stream);
    wire_pack_kv_str(&b.pk, "group", NULL);
    wire_pack_kv_bool(&b.pk, "broadcast", 1);
    wire_pack_kv_int(&b.pk, "pid", getpid());
    wire_pack_kv_int(&b.pk, "prefetch", prefetch);
    wire_pack_kv_str(&b.pk, "stream", stream);
    wire_pack_kv_str(&b.pk, "from", "beginning");
    wire_send(s, NULL, 0, "subscribe", b.sbuf.data, b.sbuf.size, 0);
    wire_body_free(&b);
    long count = 0, disorder = 0;
    int64_t expect = 0;
    while (count < n) {
        zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 10000) == 0) {
            fprintf(stderr, "no event for 10 s after %ld\n", count);
            return 1;
        }
        struct wire_msg m;
        char err[128];
        enum wire_recv_result r;
        while ((r = wire_recv(s, 0, &m, err, sizeof err)) != WIRE_AGAIN) {
            if (r != WIRE_OK)
                continue;
            if (!strcmp(m.type, "event")) {
                int64_t delivery = 0, offset = -1;
                wire_get_int(m.body, "delivery", &delivery);
                wire_get_int(m.body, "offset", &offset);
                disorder += offset != expect;
                expect = offset + 1;
                count++;
                struct wire_body a;
                wire_body_init(&a);
                msgpack_pack_map(&a.pk, 1);
                wire_pack_kv_int(&a.pk, "delivery", delivery);
                wire_send(s, NULL, 0, "ack", a.sbuf.data, a.sbuf.size, 0);
                wire_body_free(&a);
            } else if (!strcmp(m.type, "error")) {
                char msg[256] = "?";
                wire_get_str(m.body, "message", msg, sizeof msg);
                fprintf(stderr, "subscribe refused: %s\n", msg);
                return 1;
            }
            wire_msg_free(&m);
        }
        if (mono() >= next_beat) {
            wire_body_init(&b);
            msgpack_pack_map(&b.pk, 2);
            wire_pack_kv_int(&b.pk, "id", 2);
            wire_pack_kv_int(&b.pk, "pid", getpid());
            wire_send(s, NULL, 0, "heartbeat", b.sbuf.data, b.sbuf.size, 0);
            wire_body_free(&b);
            next_beat = mono() + 1;
        }
    }
    printf("%.6f %ld %ld\n", mono() - start, count, disorder);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "pub"))
        return publish(argv[2], atol(argv[3]), atol(argv[4]));
    if (argc == 6 && !strcmp(argv[1], "replay"))
        return replay(argv[2], argv[3], atol(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: driver pub ENDPOINT N WINDOW | replay ENDPOINT STREAM N PREFETCH\n");
    return 2;
}
"""

# A libdevnode service whose start-up replays the stream, as the bookshelf's view does.
LIB_REPLAY_C = r"""
#include <devnode.h>
#include "bench/driver.h"

static int on_event(const struct devnode_event *ev, void *ctx)
{
    long *count = ctx;
    if (json_integer_value(json_object_get(ev->body, "n")) == *count) /* a handler looks at the body */
        (*count)++;
    return 0;
}

int main(void)
{
    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    long count = 0;
    devnode_subscribe_stream(dn, "bench", "book.#", NULL, "beginning", DEVNODE_BROADCAST | DEVNODE_CATCH_UP,
                             on_event, &count);
    double t0 = mono();
    int rc = devnode_start(dn);
    double took = mono() - t0;
    if (rc != 0)
        fprintf(stderr, "%s\n", devnode_last_error(dn));
    printf("%.6f %ld\n", took, count);
    devnode_close(dn);
    return rc != 0;
}
"""


def build(workdir):
    """Compiles the drivers; returns (driver, lib_replay or None), or (None, None)."""
    pkgs = ["libzmq", "msgpack", "jansson"]
    exe = compile_c(workdir, "stream_driver", DRIVER_C, pkgs, [CORE])
    if not exe:
        return None, None
    lib_exe = None
    if os.path.exists(LIBDEVNODE):
        lib_exe = compile_c(workdir, "lib_replay", LIB_REPLAY_C, pkgs, ["-I", os.path.join(ROOT, "lib"), LIBDEVNODE])
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
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    quick = "--quick" in argv
    only = None
    if "--only" in argv:
        only = set(argv[argv.index("--only") + 1].upper().split(","))
        if not only & {"JA", "JR", "JL"}:
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
