/* rpcclient: lymph-style RPC from the CLI: DEALER -> each instance's ROUTER, replies matched
 * by id, one zmq_poll loop for every socket. It must never trust a reply's id to be one it
 * sent, and never wait longer than the earliest deadline in flight. */
#include "cli/rpcclient.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

long long rpcclient_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int rpcclient_init(struct rpcclient *c, size_t max_in_flight, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (max_in_flight == 0)
        max_in_flight = 1;
    c->pending = calloc(max_in_flight, sizeof *c->pending);
    c->ctx = zmq_ctx_new();
    if (!c->pending || !c->ctx) {
        snprintf(err, errlen, "cannot set up ZeroMQ: %s", zmq_strerror(errno));
        free(c->pending);
        if (c->ctx)
            zmq_ctx_term(c->ctx);
        memset(c, 0, sizeof *c);
        return -1;
    }
    c->pending_cap = max_in_flight;
    /* Ids are "<prefix><seq>": a random prefix per client keeps them unique across the
     * callers a service sees, and a counter avoids a getrandom() per request. */
    char hex[17];
    rpc_new_id(hex);
    memcpy(c->id_prefix, hex, 8);
    c->id_prefix[8] = '\0';
    /* lymph picked a random instance for each call; starting the round robin at a random
     * peer keeps one-shot CLI calls from always landing on the first instance. */
    unsigned int r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (unsigned int)time(NULL);
    c->next_peer = r;
    return 0;
}

void rpcclient_close(struct rpcclient *c)
{
    for (size_t i = 0; i < c->peer_count; i++)
        zmq_close(c->peers[i].sock);
    free(c->peers);
    free(c->items);
    free(c->pending);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    memset(c, 0, sizeof *c);
}

int rpcclient_add_endpoint(struct rpcclient *c, const char *endpoint, char *err, size_t errlen)
{
    if (strlen(endpoint) >= RPCCLIENT_ENDPOINT_MAX) {
        snprintf(err, errlen, "endpoint too long: %.60s...", endpoint);
        return -1;
    }
    if (c->peer_count == c->peer_cap) {
        size_t cap = c->peer_cap ? c->peer_cap * 2 : 4;
        struct rpcclient_peer *peers = realloc(c->peers, cap * sizeof *peers);
        if (!peers) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        c->peers = peers;
        zmq_pollitem_t *items = realloc(c->items, cap * sizeof *items);
        if (!items) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        c->items = items;
        c->peer_cap = cap;
    }
    void *sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (!sock) {
        snprintf(err, errlen, "cannot create a socket: %s", zmq_strerror(errno));
        return -1;
    }
    /* A request to a dead instance must not keep the CLI from exiting. */
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(sock, endpoint) < 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(sock);
        return -1;
    }
    struct rpcclient_peer *p = &c->peers[c->peer_count];
    p->sock = sock;
    snprintf(p->endpoint, sizeof p->endpoint, "%s", endpoint);
    c->items[c->peer_count] = (zmq_pollitem_t){.socket = sock, .events = ZMQ_POLLIN};
    c->peer_count++;
    return 0;
}

/* Connects to every instance of the matching entry of a discover reply's `services`. */
static int connect_instances(struct rpcclient *c, const msgpack_object *services, const char *service,
                             char *err, size_t errlen)
{
    if (!services || services->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(err, errlen, "the node's discover reply has no 'services' list");
        return -1;
    }
    for (uint32_t i = 0; i < services->via.array.size; i++) {
        const msgpack_object *svc = &services->via.array.ptr[i];
        if (svc->type != MSGPACK_OBJECT_MAP || !wire_str_eq(wire_map_get(svc, "name"), service))
            continue;
        const msgpack_object *instances = wire_map_get(svc, "instances");
        if (!instances || instances->type != MSGPACK_OBJECT_ARRAY)
            continue;
        for (uint32_t j = 0; j < instances->via.array.size; j++) {
            const msgpack_object *inst = &instances->via.array.ptr[j];
            char endpoint[RPCCLIENT_ENDPOINT_MAX];
            if (inst->type != MSGPACK_OBJECT_MAP ||
                wire_get_str(inst, "endpoint", endpoint, sizeof endpoint) < 0)
                continue; /* an entry we cannot reach is no reason to fail the others */
            if (rpcclient_add_endpoint(c, endpoint, err, errlen) < 0)
                return -1;
        }
    }
    return c->peer_count ? 0 : RPCCLIENT_NOT_FOUND;
}

int rpcclient_resolve(struct rpcclient *c, const struct cli_project *project, const char *service,
                      char *err, size_t errlen)
{
    struct wire_body body;
    wire_body_init(&body);
    proto_pack_discover(&body.pk, 1, service);
    struct wire_msg reply;
    int rc = cli_request(project, PROTO_DISCOVER, &body, CLI_ANSWER_TIMEOUT_MS, &reply, err, errlen);
    wire_body_free(&body);
    if (rc < 0)
        return -1;
    rc = connect_instances(c, proto_services_array(reply.body), service, err, errlen);
    wire_msg_free(&reply);
    return rc;
}

static void pack_headers(msgpack_packer *pk, const char *trace_id)
{
    rpc_pack_headers(pk, trace_id);
}

int rpcclient_send(struct rpcclient *c, int tag, const char *subject, const char *trace_id,
                   const char *params, size_t params_len, int timeout_ms, char *err, size_t errlen)
{
    if (c->peer_count == 0) {
        snprintf(err, errlen, "no instance to send '%s' to", subject);
        return -1;
    }
    struct rpcclient_pending *slot = NULL;
    for (size_t i = 0; i < c->pending_cap && !slot; i++)
        if (!c->pending[i].id[0])
            slot = &c->pending[i];
    if (!slot) {
        snprintf(err, errlen, "already %zu requests in flight", c->in_flight);
        return -1;
    }
    char minted[33];
    if (!trace_id || !*trace_id) {
        rpc_new_trace_id(minted);
        trace_id = minted;
    }
    struct wire_body hb;
    wire_body_init(&hb);
    pack_headers(&hb.pk, trace_id);

    char id[RPC_ID_MAX + 1];
    snprintf(id, sizeof id, "%s%llx", c->id_prefix, ++c->seq);
    struct rpcclient_peer *peer = &c->peers[c->next_peer++ % c->peer_count];
    int rc = rpc_send(peer->sock, NULL, 0, id, RPC_REQ, subject, hb.sbuf.data, hb.sbuf.size, params,
                      params_len, 0);
    wire_body_free(&hb);
    if (rc < 0) {
        snprintf(err, errlen, "cannot send to %s: %s", peer->endpoint, zmq_strerror(-rc));
        return -1;
    }
    snprintf(slot->id, sizeof slot->id, "%s", id);
    slot->tag = tag;
    slot->sent_ns = rpcclient_now_ns();
    slot->deadline_ns = slot->sent_ns + (long long)timeout_ms * 1000000LL;
    c->in_flight++;
    return 0;
}

static struct rpcclient_pending *earliest(struct rpcclient *c)
{
    struct rpcclient_pending *best = NULL;
    for (size_t i = 0; i < c->pending_cap; i++)
        if (c->pending[i].id[0] && (!best || c->pending[i].deadline_ns < best->deadline_ns))
            best = &c->pending[i];
    return best;
}

static struct rpcclient_pending *find_pending(struct rpcclient *c, const char *id)
{
    for (size_t i = 0; i < c->pending_cap; i++)
        if (c->pending[i].id[0] && strcmp(c->pending[i].id, id) == 0)
            return &c->pending[i];
    return NULL;
}

static void finish(struct rpcclient *c, struct rpcclient_pending *p, struct rpcclient_result *out, long long now)
{
    out->tag = p->tag;
    out->elapsed_ns = now - p->sent_ns;
    p->id[0] = '\0';
    c->in_flight--;
}

/* Reads what one socket has; 0 with *out filled when a reply matched a request in flight. */
static int drain_socket(struct rpcclient *c, void *sock, struct rpcclient_result *out, char *err, size_t errlen)
{
    for (;;) {
        char why[160];
        enum wire_recv_result r = rpc_recv(sock, 0, &out->reply, why, sizeof why);
        if (r == WIRE_AGAIN)
            return 1;
        if (r == WIRE_MALFORMED)
            continue; /* a broken reply is the service's bug; its request will time out */
        if (r == WIRE_ERROR) {
            snprintf(err, errlen, "receive failed: %s", zmq_strerror(errno));
            return -1;
        }
        struct rpcclient_pending *p =
            out->reply.type == RPC_REQ ? NULL : find_pending(c, out->reply.subject);
        if (!p) {
            rpc_msg_free(&out->reply); /* late (after its timeout) or not ours */
            continue;
        }
        finish(c, p, out, rpcclient_now_ns());
        out->timed_out = 0;
        return 0;
    }
}

int rpcclient_next(struct rpcclient *c, struct rpcclient_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    while (c->in_flight) {
        struct rpcclient_pending *first = earliest(c);
        long long now = rpcclient_now_ns();
        if (now >= first->deadline_ns) {
            finish(c, first, out, now);
            out->timed_out = 1;
            return 0;
        }
        /* Round up so a wait never ends just short of the deadline and spins. */
        long wait_ms = (long)((first->deadline_ns - now + 999999) / 1000000);
        int n = zmq_poll(c->items, (int)c->peer_count, wait_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "poll failed: %s", zmq_strerror(errno));
            return -1;
        }
        for (size_t i = 0; i < c->peer_count && n > 0; i++) {
            if (!(c->items[i].revents & ZMQ_POLLIN))
                continue;
            int rc = drain_socket(c, c->items[i].socket, out, err, errlen);
            if (rc <= 0)
                return rc;
        }
    }
    return 1;
}
