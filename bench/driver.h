/* driver.h: what the C drivers the benches compile at run time share (bench_bus.py,
 * bench_streams.py): clocks, a sorted-latency report, and a DEALER on the node's endpoint
 * that never drops or blocks on a high-water mark. Header-only, so each driver stays one
 * file the bench writes out and compiles with benchlib.compile_c. */
#ifndef DEVNODE_BENCH_DRIVER_H
#define DEVNODE_BENCH_DRIVER_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
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

#endif
