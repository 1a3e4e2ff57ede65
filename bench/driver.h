/* driver.h: what the C drivers the benches compile at run time share (bench_bus.py,
 * bench_streams.py): clocks, a sorted-latency report, and a DEALER on the node's endpoint
 * that never drops or blocks on a high-water mark. Header-only, so each driver stays one
 * file the bench writes out and compiles with benchlib.compile_c. */
#ifndef DEVNODE_BENCH_DRIVER_H
#define DEVNODE_BENCH_DRIVER_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static inline double wall(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static inline double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static inline long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static inline int compare_ns(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Sorts n latencies and prints "p50 p99 max" in ns, the line the benches parse. */
static inline void print_latencies(long long *lat, long n)
{
    qsort(lat, (size_t)n, sizeof *lat, compare_ns);
    printf("%lld %lld %lld\n", lat[n / 2], lat[(n * 99) / 100], lat[n - 1]);
}

static inline void *connect_node(void *ctx, const char *endpoint)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, linger = 2000;
    zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(s, endpoint);
    return s;
}

/* Waits up to 10 s for the node to send something on s. When nothing came, prints
 * "<stalled> after <done>" and returns -1, so a stuck node fails the bench, never hangs it. */
static inline int wait_for_node(void *s, const char *stalled, long done)
{
    zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, 10000) == 0) {
        fprintf(stderr, "%s after %ld\n", stalled, done);
        return -1;
    }
    return 0;
}

#ifdef DEVNODE_WIRE_H /* drivers that speak the node's protocol include proto/wire.h first */
/* Takes the next well-formed message queued on s into m (the caller frees it): 1, or 0 when
 * nothing is left. A malformed one is skipped, as the node would. */
static inline int next_message(void *s, struct wire_msg *m)
{
    char err[128];
    enum wire_recv_result r;
    while ((r = wire_recv(s, 0, m, err, sizeof err)) != WIRE_AGAIN)
        if (r == WIRE_OK)
            return 1;
    return 0;
}

/* Subscribes on s to one pattern: in `group`, or (NULL) broadcast in a group of its own;
 * with `batch` > 0 deliveries come in batches; with a `stream`, replayed from its beginning. */
static inline void send_subscribe(void *s, const char *subscription, const char *pattern, const char *group,
                                  int prefetch, int batch, const char *stream)
{
    struct wire_body b;
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 7 + (batch > 0) + (stream ? 2 : 0));
    wire_pack_kv_int(&b.pk, "id", 1);
    wire_pack_kv_str(&b.pk, "subscription", subscription);
    wire_pack_str(&b.pk, "patterns");
    msgpack_pack_array(&b.pk, 1);
    wire_pack_str(&b.pk, pattern);
    wire_pack_kv_str(&b.pk, "group", group);
    wire_pack_kv_bool(&b.pk, "broadcast", group == NULL);
    wire_pack_kv_int(&b.pk, "pid", getpid());
    wire_pack_kv_int(&b.pk, "prefetch", prefetch);
    if (batch > 0)
        wire_pack_kv_int(&b.pk, "batch", batch);
    if (stream) {
        wire_pack_kv_str(&b.pk, "stream", stream);
        wire_pack_kv_str(&b.pk, "from", "beginning");
    }
    wire_send(s, NULL, 0, "subscribe", b.sbuf.data, b.sbuf.size, 0);
    wire_body_free(&b);
}

/* Acknowledges one delivery, as a subscriber does once its handler is done with the event. */
static inline void send_ack(void *s, int64_t delivery)
{
    struct wire_body a;
    wire_body_init(&a);
    msgpack_pack_map(&a.pk, 1);
    wire_pack_kv_int(&a.pk, "delivery", delivery);
    wire_send(s, NULL, 0, "ack", a.sbuf.data, a.sbuf.size, 0);
    wire_body_free(&a);
}

/* A heartbeat once a second keeps a subscriber registered while it only reads. */
static inline void heartbeat_every_second(void *s, double *next_beat)
{
    if (mono() < *next_beat)
        return;
    struct wire_body b;
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 2);
    wire_pack_kv_int(&b.pk, "id", 2);
    wire_pack_kv_int(&b.pk, "pid", getpid());
    wire_send(s, NULL, 0, "heartbeat", b.sbuf.data, b.sbuf.size, 0);
    wire_body_free(&b);
    *next_beat = mono() + 1;
}
#endif

#endif
