/* fuzz_zmq: the inproc sockets the wire harnesses push fuzzed multipart messages through:
 * a ROUTER/DEALER pair (routed messages) and a PAIR pair (unrouted ones). Set up once per
 * process; libFuzzer calls the target millions of times. */
#ifndef DEVNODE_FUZZ_ZMQ_H
#define DEVNODE_FUZZ_ZMQ_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <zmq.h>

#include "tests/fuzz/fuzz_util.h"

struct fuzz_sockets {
    void *ctx;
    void *router, *dealer;   /* DEALER sends, ROUTER receives with a routing id */
    void *pair_rx, *pair_tx; /* no routing id */
};

static inline void *fuzz_sock_new(void *ctx, int type)
{
    void *s = zmq_socket(ctx, type);
    int zero = 0, big = 1000000;
    FUZZ_CHECK(s != NULL, "zmq_socket");
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDHWM, &big, sizeof big);
    zmq_setsockopt(s, ZMQ_RCVHWM, &big, sizeof big);
    return s;
}

/* Opens the sockets on inproc endpoints named after `name`, once. */
static inline void fuzz_sockets_open(struct fuzz_sockets *fs, const char *name)
{
    if (fs->ctx)
        return;
    char router_ep[128], pair_ep[128];
    snprintf(router_ep, sizeof router_ep, "inproc://fuzz-%s-router", name);
    snprintf(pair_ep, sizeof pair_ep, "inproc://fuzz-%s-pair", name);
    fs->ctx = zmq_ctx_new();
    fs->router = fuzz_sock_new(fs->ctx, ZMQ_ROUTER);
    fs->dealer = fuzz_sock_new(fs->ctx, ZMQ_DEALER);
    fs->pair_rx = fuzz_sock_new(fs->ctx, ZMQ_PAIR);
    fs->pair_tx = fuzz_sock_new(fs->ctx, ZMQ_PAIR);
    FUZZ_CHECK(zmq_bind(fs->router, router_ep) == 0, "bind");
    FUZZ_CHECK(zmq_connect(fs->dealer, router_ep) == 0, "connect");
    FUZZ_CHECK(zmq_bind(fs->pair_rx, pair_ep) == 0, "bind");
    FUZZ_CHECK(zmq_connect(fs->pair_tx, pair_ep) == 0, "connect");
}

/* Where one fuzzed message went: sent on tx, to be received on rx (a ROUTER when routed). */
struct fuzz_route {
    void *tx, *rx;
    int routed;
};

/* Splits the input into the frames of one message and sends it: DEALER to ROUTER when the
 * input asks for a routed message, else PAIR to PAIR. */
static inline struct fuzz_route fuzz_send_input(struct fuzz_sockets *fs, const uint8_t *data, size_t size)
{
    struct fuzz_frames fr;
    fuzz_split_frames(data, size, &fr);
    struct fuzz_route r = {fr.routed ? fs->dealer : fs->pair_tx, fr.routed ? fs->router : fs->pair_rx, fr.routed};
    for (size_t i = 0; i < fr.count; i++)
        FUZZ_CHECK(zmq_send(r.tx, fr.data[i], fr.len[i], i + 1 < fr.count ? ZMQ_SNDMORE : 0) == (int)fr.len[i],
                   "send: %s", zmq_strerror(errno));
    return r;
}

static inline int fuzz_rcvmore(void *s)
{
    int more = 0;
    size_t len = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &len);
    return more;
}

#endif
