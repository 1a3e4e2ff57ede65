/* rpcclient: the CLI's caller side of lymph-style RPC (docs/protocol.md, "RPC between
 * services"). Resolves a service through the node's registry, connects one DEALER per
 * instance, spreads requests round robin and matches replies to requests by message id.
 * It never blocks past the earliest deadline of a request in flight, and uses no threads. */
#ifndef DEVNODE_RPCCLIENT_H
#define DEVNODE_RPCCLIENT_H

#include <stddef.h>

#include "cli/cli.h"
#include "proto/rpcwire.h"

#define RPCCLIENT_ENDPOINT_MAX (PATH_MAX + 16)

/* rpcclient_resolve: the service has no registered instance (lymph's LookupFailure). */
#define RPCCLIENT_NOT_FOUND (-2)

struct rpcclient_peer {
    void *sock;                              /* DEALER connected to endpoint */
    char endpoint[RPCCLIENT_ENDPOINT_MAX];
};

struct rpcclient_pending {
    char id[RPC_ID_MAX + 1];                 /* message id; "" when the slot is free */
    int tag;                                 /* the caller's, returned with the result */
    long long sent_ns;                       /* CLOCK_MONOTONIC */
    long long deadline_ns;
};

struct rpcclient {
    void *ctx;
    struct rpcclient_peer *peers;
    size_t peer_count, peer_cap;
    size_t next_peer;                        /* round robin cursor, starts at a random peer */
    zmq_pollitem_t *items;                   /* one per peer, rebuilt when peers change */
    struct rpcclient_pending *pending;       /* requests in flight, at most pending_cap */
    size_t pending_cap, in_flight;
    char id_prefix[9];                       /* random per client, so ids never repeat */
    unsigned long long seq;
};

struct rpcclient_result {
    int tag;                                 /* as given to rpcclient_send */
    int timed_out;                           /* 1: no reply in time; reply holds nothing */
    long long elapsed_ns;                    /* send to reply (or to the deadline) */
    struct rpc_msg reply;                    /* when !timed_out: free with rpc_msg_free */
};

/* max_in_flight bounds the requests rpcclient_send may have outstanding. 0 or -1. */
int rpcclient_init(struct rpcclient *c, size_t max_in_flight, char *err, size_t errlen);
void rpcclient_close(struct rpcclient *c);

/* Connects one more DEALER, to `endpoint` (ipc:// or tcp://). 0 or -1 with err set. */
int rpcclient_add_endpoint(struct rpcclient *c, const char *endpoint, char *err, size_t errlen);

/* Asks the project's node for the instances of `service` and connects to each.
 * 0, RPCCLIENT_NOT_FOUND, or -1 with err set (no node, node error, bad reply). */
int rpcclient_resolve(struct rpcclient *c, const struct cli_project *project, const char *service,
                      char *err, size_t errlen);

/* Sends REQ `subject` with the packed msgpack `params` to the next peer. trace_id NULL or
 * "" mints a new one. 0, or -1 with err set (nothing connected, nothing free, send failed). */
int rpcclient_send(struct rpcclient *c, int tag, const char *subject, const char *trace_id,
                   const char *params, size_t params_len, int timeout_ms, char *err, size_t errlen);

/* Waits for the next request in flight to finish, by reply or by timeout. 0 with *out
 * filled, 1 when nothing is in flight, -1 with err set. Late and unknown replies are
 * dropped. */
int rpcclient_next(struct rpcclient *c, struct rpcclient_result *out, char *err, size_t errlen);

/* Monotonic clock in nanoseconds, for callers that time a batch. */
long long rpcclient_now_ns(void);

#endif
