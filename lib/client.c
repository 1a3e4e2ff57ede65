/* client.c: calling other services: resolving a service through the node's registry (cached
 * for a second), spreading calls round robin over its instances on DEALERs kept open, sync and
 * deferred calls matched to replies by id. While a call waits, requests to this instance are
 * served (nested), so self-calls and call cycles work. It must never sleep on a fixed delay
 * in the call path, nor hand a reply to a call it does not belong to. */
#include "lib/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/msgjson.h"

/* ---- peers and the discover cache ----------------------------------------------------- */

static void dn_peer_close(struct dn_peer *p)
{
    zmq_close(p->sock);
    free(p->endpoint);
    free(p);
}

static struct dn_peer *dn_peer_get(struct devnode *dn, const char *endpoint)
{
    for (struct dn_peer *p = dn->peers; p; p = p->next)
        if (strcmp(p->endpoint, endpoint) == 0)
            return p;
    struct dn_peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->endpoint = strdup(endpoint);
    p->sock = zmq_socket(dn->zctx, ZMQ_DEALER);
    if (!p->endpoint || !p->sock) {
        if (p->sock)
            zmq_close(p->sock);
        free(p->endpoint);
        free(p);
        return NULL;
    }
    /* IMMEDIATE: a send only queues on a live connection, so a dead instance shows up as
     * "cannot send" at once instead of a request that waits for its timeout. */
    int one = 1, zero = 0;
    zmq_setsockopt(p->sock, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(p->sock, endpoint) < 0) {
        dn_peer_close(p);
        return NULL;
    }
    p->next = dn->peers;
    dn->peers = p;
    return p;
}

/* Closes the connections no cached service lists and no call waits on. */
static void dn_peers_sweep(struct devnode *dn)
{
    for (struct dn_peer *p = dn->peers; p; p = p->next)
        p->listed = 0;
    for (struct dn_service *s = dn->services; s; s = s->next_service)
        for (size_t i = 0; i < s->count; i++)
            s->insts[i].peer->listed = 1;
    struct dn_peer **link = &dn->peers;
    while (*link) {
        struct dn_peer *p = *link;
        if (!p->listed && p->pending == 0) {
            *link = p->next;
            dn_peer_close(p);
        } else {
            link = &p->next;
        }
    }
}

static struct dn_service *dn_service_find(struct devnode *dn, const char *name, size_t len)
{
    for (struct dn_service *s = dn->services; s; s = s->next_service)
        if (strlen(s->name) == len && memcmp(s->name, name, len) == 0)
            return s;
    return NULL;
}

/* Asks the node for the instances of `name` and refreshes its cache entry. */
static int dn_discover(struct devnode *dn, struct dn_service *svc)
{
    struct wire_body b;
    wire_body_init(&b);
    uint64_t id = dn_next_request_id(dn);
    proto_pack_discover(&b.pk, (int64_t)id, svc->name);
    struct dn_queued *reply = NULL;
    int rc = dn_node_request(dn, PROTO_DISCOVER, &b, id, DN_NODE_TIMEOUT_MS, &reply);
    wire_body_free(&b);
    if (rc < 0)
        return rc;

    const msgpack_object *insts = proto_services_instances(proto_services_array(reply->msg.body), svc->name);
    size_t n = insts ? insts->via.array.size : 0;
    struct dn_instance *fresh = n ? calloc(n, sizeof *fresh) : NULL;
    size_t count = 0;
    for (size_t i = 0; fresh && i < n; i++) {
        const msgpack_object *inst = &insts->via.array.ptr[i];
        char endpoint[PATH_MAX + 8];
        if (wire_get_str(inst, "endpoint", endpoint, sizeof endpoint) < 0)
            continue;
        struct dn_peer *p = dn_peer_get(dn, endpoint);
        if (!p)
            continue;
        p->bad = 0; /* listed again: worth another try */
        int64_t v;
        fresh[count].peer = p;
        fresh[count].instance = wire_get_int(inst, "instance", &v) == 0 ? (int)v : -1;
        fresh[count].pid = wire_get_int(inst, "pid", &v) == 0 ? (int)v : 0;
        count++;
    }
    dn_queued_free(reply);
    free(svc->insts);
    svc->insts = fresh;
    svc->count = count;
    svc->fetched_ms = dn_now_ms();
    dn_peers_sweep(dn);
    return 0;
}

static void dn_service_drop_zk(struct dn_service *svc)
{
    if (svc->zk_list) {
        zkreg_list_free(svc->zk_list);
        free(svc->zk_list);
    }
    svc->zk_list = NULL;
    svc->zk_snapshot = NULL;
}

/* The same from the remote registry's watched cache: one lookup per call, no round trip. The
 * instances are rebuilt only when the registry published a new snapshot (the one held keeps
 * its address from being reused, so comparing it is safe). Instances that do not speak
 * devnode's wire (lymph's own processes) are never called: a service with only those fails
 * the call at once with why, instead of sending requests nobody will answer. */
static int dn_discover_remote(struct devnode *dn, struct dn_service *svc, int force)
{
    struct zkreg_list *list = malloc(sizeof *list);
    if (!list)
        return dn_fail(dn, DEVNODE_E_INVALID, "out of memory");
    int rc = dn_remote_lookup(dn, svc->name, list);
    if (rc < 0) {
        free(list);
        return rc;
    }
    if (svc->zk_list && list->snapshot == svc->zk_snapshot) {
        zkreg_list_free(list);
        free(list);
        for (size_t i = 0; force && i < svc->count; i++)
            svc->insts[i].peer->bad = 0; /* every one failed: worth another try */
    } else {
        struct dn_instance *fresh = list->count ? calloc(list->count, sizeof *fresh) : NULL;
        size_t count = 0;
        int refused = 0;
        for (size_t i = 0; fresh && i < list->count; i++) {
            const struct zkreg_instance *zi = &list->insts[i];
            if (!zi->wire || strcmp(zi->wire, ZKREG_WIRE_DEVNODE) != 0) {
                refused++;
                continue;
            }
            struct dn_peer *p = zi->endpoint ? dn_peer_get(dn, zi->endpoint) : NULL;
            if (!p)
                continue;
            p->bad = 0;
            json_int_t pid = json_integer_value(json_object_get(zi->description, "pid"));
            fresh[count].peer = p;
            fresh[count].instance = -1;
            fresh[count].pid = (int)pid;
            count++;
        }
        if (list->count && !fresh) {
            zkreg_list_free(list);
            free(list);
            return dn_fail(dn, DEVNODE_E_INVALID, "out of memory");
        }
        dn_service_drop_zk(svc);
        free(svc->insts);
        svc->insts = fresh;
        svc->count = count;
        svc->zk_list = list;
        svc->zk_snapshot = list->snapshot;
        svc->zk_refused = refused;
        dn_peers_sweep(dn);
    }
    svc->fetched_ms = dn_now_ms();
    if (svc->count == 0 && svc->zk_refused)
        return dn_fail(dn, DEVNODE_E_NOT_FOUND,
                       "%s: its %d instance(s) in the registry speak lymph's ZeroMQ wire (their registration has "
                       "no \"wire\": \"%s\"), which devnode cannot call",
                       svc->name, svc->zk_refused, ZKREG_WIRE_DEVNODE);
    return 0;
}

static int dn_resolve(struct devnode *dn, const char *name, size_t len, int force, struct dn_service **out)
{
    struct dn_service *svc = dn_service_find(dn, name, len);
    if (!svc) {
        svc = calloc(1, sizeof *svc);
        if (!svc || !(svc->name = strndup(name, len))) {
            free(svc);
            return dn_fail(dn, DEVNODE_E_INVALID, "out of memory");
        }
        /* Callers start at different instances (by pid), so many short-lived callers do not
         * all hit the first one; from there on each goes round robin. */
        svc->next = (size_t)dn->pid;
        svc->next_service = dn->services;
        dn->services = svc;
    }
    *out = svc;
    if (dn_remote(dn))
        return dn_discover_remote(dn, svc, force); /* the watched cache is always current */
    if (!force && svc->count && dn_now_ms() - svc->fetched_ms < DN_DISCOVER_TTL_MS)
        return 0;
    int rc = dn_discover(dn, svc);
    if (rc < 0 && svc->count)
        return 0; /* the node did not answer: what we knew a moment ago is the best guess */
    return rc;
}

void dn_client_free(struct devnode *dn)
{
    while (dn->calls) {
        struct devnode_call *c = dn->calls;
        dn->calls = c->next;
        json_decref(c->result);
        json_decref(c->headers);
        free(c);
    }
    while (dn->services) {
        struct dn_service *s = dn->services;
        dn->services = s->next_service;
        dn_service_drop_zk(s);
        free(s->insts);
        free(s->name);
        free(s);
    }
    while (dn->peers) {
        struct dn_peer *p = dn->peers;
        dn->peers = p->next;
        dn_peer_close(p);
    }
}

/* ---- sending ------------------------------------------------------------------------ */

static void call_fail(struct devnode_call *call, int code, const char *type, const char *fmt, const char *arg)
{
    call->done = 1;
    call->code = code;
    snprintf(call->err.type, sizeof call->err.type, "%s", type);
    snprintf(call->err.message, sizeof call->err.message, fmt, arg);
    call->err.code = code;
}

/* Sends the packed request on p: 0, or -1 when no live connection takes it in time. */
static int dn_send_on(struct devnode *dn, struct dn_peer *p, const char *id, const char *subject,
                      long long deadline_ms)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = rpc_send(p->sock, NULL, 0, id, RPC_REQ, subject, dn->out_headers.sbuf.data,
                          dn->out_headers.sbuf.size, dn->out.sbuf.data, dn->out.sbuf.size, ZMQ_DONTWAIT);
        if (rc == 0)
            return 0;
        if (rc != -EAGAIN || attempt)
            return -1;
        /* A fresh connection is not up yet (a connect on ipc takes well under a ms): wait
         * for it to become writable, a short bounded time. */
        long long left = deadline_ms - dn_now_ms();
        if (left > DN_CONNECT_WAIT_MS)
            left = DN_CONNECT_WAIT_MS;
        zmq_pollitem_t item = {.socket = p->sock, .events = ZMQ_POLLOUT};
        if (left <= 0 || zmq_poll(&item, 1, (long)left) <= 0)
            return -1;
    }
    return -1;
}

/* Packs the request and sends it to one instance of the service; fills call->peer, or marks
 * the call done with the reason it could not go out. */
static void dn_call_start(struct devnode *dn, struct devnode_call *call, const char *endpoint,
                          const char *subject, const json_t *args, int timeout_ms)
{
    memset(call, 0, sizeof *call);
    if (timeout_ms <= 0)
        timeout_ms = DEVNODE_DEFAULT_TIMEOUT_MS;
    call->deadline_ms = dn_now_ms() + timeout_ms;
    snprintf(call->id, sizeof call->id, "%s%08llx", dn->call_prefix, (unsigned long long)++dn->call_counter);

    size_t name_len;
    const char *wire_subject = rpc_call_subject(subject, &name_len);
    if (!wire_subject) {
        call_fail(call, DEVNODE_E_INVALID, "BadRequest", "subject '%s' is not Service.method", subject ? subject : "");
        return;
    }
    if (args && !json_is_object(args)) {
        call_fail(call, DEVNODE_E_INVALID, "BadArguments", "%s: arguments must be a JSON object", subject);
        return;
    }
    msgpack_sbuffer_clear(&dn->out.sbuf);
    if (!args)
        msgpack_pack_map(&dn->out.pk, 0);
    else if (msgjson_pack(&dn->out.pk, args) < 0) {
        call_fail(call, DEVNODE_E_INVALID, "BadArguments", "%s: arguments cannot be encoded", subject);
        return;
    }
    char tmp[DEVNODE_TRACE_ID_MAX + 1];
    msgpack_sbuffer_clear(&dn->out_headers.sbuf);
    rpc_pack_headers(&dn->out_headers.pk, dn_trace_or_new(dn, tmp));

    if (endpoint) {
        /* A given endpoint bypasses the registry: one peer, tried once, kept for the next call. */
        struct dn_peer *p = dn_peer_get(dn, endpoint);
        if (!p) {
            call_fail(call, DEVNODE_E_INVALID, "BadRequest", "cannot connect to %s", endpoint);
            return;
        }
        if (dn_send_on(dn, p, call->id, wire_subject, call->deadline_ms) < 0) {
            call_fail(call, DEVNODE_E_NOT_FOUND, "NotFound", "nothing answers at %s", endpoint);
            return;
        }
        call->peer = p;
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        struct dn_service *svc = NULL;
        int rc = dn_resolve(dn, subject, name_len, pass > 0, &svc);
        if (rc == DEVNODE_E_NOT_FOUND) {
            call_fail(call, DEVNODE_E_NOT_FOUND, "WireMismatch", "%s", dn->last_error);
            return;
        }
        if (rc < 0) {
            /* The registry did not answer: not the same as a service nobody runs. */
            call_fail(call, DEVNODE_E_NODE, "NodeError", "cannot look the service up: %s", dn->last_error);
            return;
        }
        for (size_t tried = 0; tried < svc->count; tried++) {
            struct dn_instance *inst = &svc->insts[svc->next++ % svc->count];
            if (inst->peer->bad)
                continue;
            if (dn_send_on(dn, inst->peer, call->id, wire_subject, call->deadline_ms) == 0) {
                call->peer = inst->peer;
                return;
            }
            inst->peer->bad = 1;
        }
        svc->fetched_ms = 0; /* every instance we knew failed: ask the registry again */
        if (dn_now_ms() >= call->deadline_ms)
            break;
    }
    char name[DN_NAME_MAX + 1];
    snprintf(name, sizeof name, "%.*s", (int)(name_len > DN_NAME_MAX ? DN_NAME_MAX : name_len), subject);
    call_fail(call, DEVNODE_E_NOT_FOUND, "NotFound", "no reachable instance of %s", name);
}

/* ---- receiving ---------------------------------------------------------------------- */

static void dn_record_reply(struct devnode_call *call, const struct rpc_msg *rep)
{
    call->done = 1;
    if (call->want_headers)
        call->headers = msgjson_to_json(rep->headers);
    if (rep->type == RPC_REP) {
        call->result = msgjson_to_json(rep->body);
        if (call->result) {
            call->code = DEVNODE_OK;
            return;
        }
        call_fail(call, DEVNODE_E_REMOTE, "BadReply", "%s", "the reply nests too deep");
        return;
    }
    call->code = rep->type == RPC_NACK ? DEVNODE_E_NACK : DEVNODE_E_REMOTE;
    call->err.code = call->code;
    rpc_unpack_error_body(rep->body, call->err.type, sizeof call->err.type, rep->type == RPC_NACK ? "Nack" : "Error",
                          call->err.message, sizeof call->err.message);
}

/* Reads every reply waiting on p and gives each to its call: `current`, or one on dn->calls. */
static void dn_drain_peer(struct devnode *dn, struct dn_peer *p, struct devnode_call *current)
{
    for (;;) {
        struct rpc_msg rep;
        char why[160];
        enum wire_recv_result r = rpc_recv(p->sock, 0, &rep, why, sizeof why);
        if (r == WIRE_MALFORMED) {
            dn->malformed++;
            continue;
        }
        if (r != WIRE_OK)
            return;
        if (rep.type != RPC_REQ && rep.type != RPC_ACK) {
            struct devnode_call *owner = NULL;
            if (current && !current->done && strcmp(current->id, rep.subject) == 0)
                owner = current;
            for (struct devnode_call *c = dn->calls; c && !owner; c = c->next)
                if (!c->done && c->peer == p && strcmp(c->id, rep.subject) == 0)
                    owner = c;
            if (owner)
                dn_record_reply(owner, &rep);
            /* else: the reply of a call that timed out or was cancelled */
        }
        rpc_msg_free(&rep);
    }
}

static void dn_call_timed_out(struct devnode *dn, struct devnode_call *call)
{
    call_fail(call, DEVNODE_E_TIMEOUT, "Timeout", "no reply from %s in time", call->peer->endpoint);
    /* The instance may be gone: look the service up again next time. */
    for (struct dn_service *s = dn->services; s; s = s->next_service)
        for (size_t i = 0; i < s->count; i++)
            if (s->insts[i].peer == call->peer)
                s->fetched_ms = 0;
}

/* Whether requests to this instance are served while one of its calls waits: as under
 * gevent in lymph, a service that calls itself, or calls one that calls it back, gets its
 * answer instead of waiting for the timeout. The handler runs nested, inside the call. */
static int dn_serves_while_waiting(const struct devnode *dn)
{
    return dn->router && dn->in_handler < DN_NEST_MAX;
}

static void dn_call_wait_done(struct devnode *dn, struct devnode_call *call)
{
    /* Poll before reading: right after the send a read finds nothing, and every read or poll
     * costs libzmq a round of syscalls, which is most of a round trip on ipc. */
    while (!call->done) {
        long long now = dn_now_ms();
        if (now >= call->deadline_ms) {
            dn_drain_peer(dn, call->peer, call); /* a deferred call's reply may be waiting */
            if (!call->done)
                dn_call_timed_out(dn, call);
            break;
        }
        dn_maybe_heartbeat(dn);
        long long wait = call->deadline_ms - now;
        if (dn->started && dn->next_heartbeat_ms - now < wait)
            wait = dn->next_heartbeat_ms - now;
        zmq_pollitem_t items[2] = {{.socket = call->peer->sock, .events = ZMQ_POLLIN},
                                   {.socket = dn->router, .events = ZMQ_POLLIN}};
        int serving = dn_serves_while_waiting(dn);
        if (zmq_poll(items, serving ? 2 : 1, wait > 0 ? (long)wait : 0) < 0 && errno != EINTR) {
            call_fail(call, DEVNODE_E_TIMEOUT, "Timeout", "poll failed: %s", zmq_strerror(errno));
            break;
        }
        dn_drain_peer(dn, call->peer, call);
        if (serving && !call->done && (items[1].revents & ZMQ_POLLIN))
            dn_process_rpc(dn); /* one request; the loop looks at our reply again first */
    }
}

static int dn_call_finish(struct devnode_call *call, json_t **result, json_t **headers, struct devnode_error *err)
{
    if (headers)
        *headers = call->headers;
    else
        json_decref(call->headers);
    call->headers = NULL;
    if (result)
        *result = call->code == DEVNODE_OK ? call->result : NULL;
    else
        json_decref(call->result);
    if (call->code != DEVNODE_OK)
        json_decref(call->result);
    call->result = NULL;
    if (err) {
        if (call->code == DEVNODE_OK)
            memset(err, 0, sizeof *err);
        else
            *err = call->err;
    }
    return call->code;
}

/* Puts a call that waits for its reply on dn->calls, so that a reply read by another call's
 * wait (a handler served while this call waits may call the same instance) finds it, and its
 * peer stays open. */
static void dn_call_link(struct devnode *dn, struct devnode_call *call)
{
    call->peer->pending++;
    call->prev = NULL;
    call->next = dn->calls;
    if (dn->calls)
        dn->calls->prev = call;
    dn->calls = call;
}

static void dn_call_unlink(struct devnode *dn, struct devnode_call *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        dn->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->peer->pending--;
}

int devnode_call(struct devnode *dn, const char *subject, const json_t *args, int timeout_ms,
                 json_t **result, struct devnode_error *err)
{
    struct devnode_call call;
    dn_call_start(dn, &call, NULL, subject, args, timeout_ms);
    if (!call.done) {
        dn_call_link(dn, &call);
        dn_call_wait_done(dn, &call);
        dn_call_unlink(dn, &call);
    }
    return dn_call_finish(&call, result, NULL, err);
}

struct devnode_call *devnode_call_async_to(struct devnode *dn, const char *endpoint, const char *subject,
                                           const json_t *args, int timeout_ms, unsigned flags,
                                           struct devnode_error *err)
{
    struct devnode_call *call = malloc(sizeof *call);
    if (!call) {
        devnode_error_set(err, "NoMemory", "out of memory");
        if (err)
            err->code = DEVNODE_E_INVALID;
        return NULL;
    }
    dn_call_start(dn, call, endpoint, subject, args, timeout_ms);
    if (call->done) {
        dn_call_finish(call, NULL, NULL, err);
        free(call);
        return NULL;
    }
    call->deferred = 1;
    call->want_headers = (flags & DEVNODE_CALL_HEADERS) != 0;
    dn_call_link(dn, call);
    return call;
}

struct devnode_call *devnode_call_async(struct devnode *dn, const char *subject, const json_t *args,
                                        int timeout_ms, struct devnode_error *err)
{
    return devnode_call_async_to(dn, NULL, subject, args, timeout_ms, 0, err);
}

int devnode_call_poll(struct devnode *dn, int timeout_ms)
{
    /* One poll over every peer a deferred call waits on, until the earliest deadline. */
    zmq_pollitem_t items[64];
    struct dn_peer *peers[64];
    int n = 0;
    long long now = dn_now_ms(), until = now + (timeout_ms > 0 ? timeout_ms : 0);
    for (struct dn_peer *p = dn->peers; p; p = p->next) {
        int waiting = 0;
        for (struct devnode_call *c = dn->calls; c; c = c->next) {
            if (c->peer != p || !c->deferred)
                continue;
            if (c->done || c->deadline_ms <= now)
                return 1;
            waiting = 1;
            if (c->deadline_ms < until)
                until = c->deadline_ms;
        }
        if (waiting && n < (int)(sizeof items / sizeof items[0])) {
            items[n] = (zmq_pollitem_t){.socket = p->sock, .events = ZMQ_POLLIN};
            peers[n++] = p;
        }
    }
    if (n == 0)
        return 0;
    if (zmq_poll(items, n, until > now ? (long)(until - now) : 0) < 0 && errno != EINTR)
        return 0;
    for (int i = 0; i < n; i++)
        if (items[i].revents & ZMQ_POLLIN)
            dn_drain_peer(dn, peers[i], NULL);
    now = dn_now_ms();
    for (struct devnode_call *c = dn->calls; c; c = c->next)
        if (c->deferred && (c->done || c->deadline_ms <= now))
            return 1;
    return 0;
}

int devnode_call_ready(struct devnode *dn, struct devnode_call *call)
{
    if (!call->done)
        dn_drain_peer(dn, call->peer, call);
    return call->done || dn_now_ms() >= call->deadline_ms;
}

int devnode_call_wait_headers(struct devnode *dn, struct devnode_call *call, json_t **result, json_t **headers,
                              struct devnode_error *err)
{
    if (headers)
        *headers = NULL;
    if (!call) {
        if (result)
            *result = NULL;
        devnode_error_set(err, "BadRequest", "no call to wait for");
        if (err)
            err->code = DEVNODE_E_INVALID;
        return DEVNODE_E_INVALID;
    }
    dn_call_wait_done(dn, call);
    dn_call_unlink(dn, call);
    int rc = dn_call_finish(call, result, headers, err);
    free(call);
    return rc;
}

int devnode_call_wait(struct devnode *dn, struct devnode_call *call, json_t **result,
                      struct devnode_error *err)
{
    return devnode_call_wait_headers(dn, call, result, NULL, err);
}

void devnode_call_cancel(struct devnode *dn, struct devnode_call *call)
{
    if (!call)
        return;
    dn_call_unlink(dn, call);
    json_decref(call->result);
    json_decref(call->headers);
    free(call);
}
