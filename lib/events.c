/* events.c: subscriptions (to new events and to retained streams), emitting, and handling
 * deliveries from the node's event bus, with the ack sent only after the handler returned
 * (at-least-once). It must never ack an event it did not hand to a handler, nor run a handler
 * inside another one except a stream subscription's inside an RPC handler (devnode_catch_up). */
#include "lib/events.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/msgjson.h"
#include "common/topic.h"

#define DN_PATTERN_MAX 255

/* ---- the RabbitMQ back end (DEVNODE_EVENTS=amqp://…, lib/amqpevents.h) ----------------- */

static void dn_amqp_warn(void *ctx, const char *message)
{
    dn_warn(ctx, DEVNODE_WARNING, "%s", message);
}

/* Which bus carries this process's events: 0 the node's, 1 RabbitMQ (opened here the first
 * time), or a negative status when DEVNODE_EVENTS names a broker that cannot be used. */
static int dn_events_amqp(struct devnode *dn)
{
    if (dn->events_backend == 0) {
        const char *url = getenv("DEVNODE_EVENTS");
        dn->events_backend = url && *url ? 2 : 1;
    }
    if (dn->events_backend == 1)
        return 0;
    if (dn->amqp)
        return 1;
    /* A broker that is not there costs each emit of a loop a connect (up to the timeout on an
     * address that drops packets): after a failure, calls within a second fail at once. */
    if (dn->amqp_failed_ms && dn_now_ms() - dn->amqp_failed_ms < 1000)
        return dn_fail(dn, DEVNODE_E_NODE, "DEVNODE_EVENTS=%s", dn->amqp_error);
    char err[400];
    dn->amqp = amqpev_open(getenv("DEVNODE_EVENTS"), dn->service, DN_NODE_TIMEOUT_MS, dn->amqp_heartbeat_s,
                           dn_amqp_warn, dn, err, sizeof err);
    if (!dn->amqp) {
        dn->amqp_failed_ms = dn_now_ms();
        snprintf(dn->amqp_error, sizeof dn->amqp_error, "%s", err);
        return dn_fail(dn, DEVNODE_E_NODE, "DEVNODE_EVENTS=%s", err);
    }
    return 1;
}

static int dn_amqp_status(int rc)
{
    return rc == AMQPEV_E_TIMEOUT ? DEVNODE_E_TIMEOUT : rc == AMQPEV_E_INVALID ? DEVNODE_E_INVALID : DEVNODE_E_NODE;
}

/* lymph's queue of a subscription: "<Service>-<name>" (its group is "<Service>.<name>"). */
static int dn_amqp_subscribe(struct devnode *dn, struct dn_sub *sub, long index)
{
    char queue[2 * DN_PATTERN_MAX + 2];
    snprintf(queue, sizeof queue, "%s-%s", dn->service, sub->group + strlen(dn->service) + 1);
    const char *patterns[1 + PROTO_PATTERNS_MAX] = {sub->pattern};
    size_t count = 1;
    for (size_t i = 0; i < sub->more_count && count < sizeof patterns / sizeof patterns[0]; i++)
        patterns[count++] = sub->more[i];
    char err[400];
    int rc = amqpev_subscribe(dn->amqp, queue, patterns, count, (sub->flags & DEVNODE_BROADCAST) != 0, (int)index,
                              err, sizeof err);
    if (rc < 0)
        return dn_fail(dn, dn_amqp_status(rc), "subscribe to %s: %s", sub->pattern, err);
    sub->active = 1;
    sub->start_offset = 0;
    return 0;
}

static int dn_amqp_emit(struct devnode *dn, const char *type, const json_t *body, unsigned delay_ms, int wait)
{
    char tmp[DEVNODE_TRACE_ID_MAX + 1];
    json_t *headers = json_pack("{ss}", "trace_id", dn_trace_or_new(dn, tmp));
    if (!headers)
        return dn_fail(dn, DEVNODE_E_INVALID, "out of memory");
    char err[400];
    int rc = amqpev_publish(dn->amqp, type, headers, body, delay_ms, wait, wait ? DN_NODE_TIMEOUT_MS : DN_ROOM_TIMEOUT_MS,
                            err, sizeof err);
    json_decref(headers);
    if (rc == 0)
        return 0;
    rc = dn_fail(dn, dn_amqp_status(rc), "emit %s%s: %s", type, wait ? "" : " without waiting", err);
    if (!wait && rc != DEVNODE_E_INVALID)
        dn_warn(dn, DEVNODE_WARNING, "%s", dn->last_error);
    return rc;
}

/* From the node's bus_status: the stream's next offset, and the committed offset of `group`
 * (-1 when the node has no such group, or group is NULL). 0 or DEVNODE_E_NODE. */
static int dn_stream_status(struct devnode *dn, const char *stream, const char *group, int64_t *next,
                            int64_t *committed)
{
    *committed = -1;
    struct wire_body b;
    wire_body_init(&b);
    uint64_t id = dn_next_request_id(dn);
    proto_pack_request_id(&b.pk, (int64_t)id);
    struct dn_queued *reply = NULL;
    int rc = dn_node_request(dn, PROTO_BUS_STATUS, &b, id, DN_NODE_TIMEOUT_MS, &reply);
    wire_body_free(&b);
    if (rc < 0)
        return rc;
    rc = 0;
    if (proto_unpack_bus_status_stream(reply->msg.body, stream, group, next, committed) < 0)
        rc = dn_fail(dn, DEVNODE_E_NODE, "the node keeps no stream %s (streams: in .lymph.yml)", stream);
    dn_queued_free(reply);
    return rc;
}

int dn_send_subscription(struct devnode *dn, struct dn_sub *sub)
{
    int backend = dn_events_amqp(dn);
    if (backend < 0)
        return backend;
    if (backend)
        return dn_amqp_subscribe(dn, sub, sub - dn->subs);
    struct wire_body b;
    wire_body_init(&b);
    uint64_t id = dn_next_request_id(dn);
    int broadcast = (sub->flags & DEVNODE_BROADCAST) != 0;
    const char *patterns[1 + PROTO_PATTERNS_MAX] = {sub->pattern};
    size_t count = 1;
    for (size_t i = 0; i < sub->more_count && count < sizeof patterns / sizeof patterns[0]; i++)
        patterns[count++] = sub->more[i];
    /* A broadcast subscription asks for a group of its own: every instance gets every event. */
    struct proto_subscribe req = {.subscription = sub->id,
                                  .patterns = patterns,
                                  .pattern_count = count,
                                  .group = broadcast ? NULL : sub->group,
                                  .broadcast = broadcast,
                                  .pid = dn->pid,
                                  .prefetch = DN_PREFETCH,
                                  .batch = DN_BATCH,
                                  .stream = sub->stream,
                                  .from = sub->from};
    proto_pack_subscribe(&b.pk, (int64_t)id, &req);
    int rc = dn_node_request(dn, PROTO_SUBSCRIBE, &b, id, DN_NODE_TIMEOUT_MS, NULL);
    wire_body_free(&b);
    if (rc < 0)
        return rc;
    sub->active = 1;
    /* A group of our own starts where `from` says; devnode_catch_up must not wait for events
     * before that. "now" (and "resume", which is now for a group nobody kept) is the stream's
     * end right after the subscription: a little later than the node's start, never earlier. */
    sub->start_offset = 0;
    if (sub->stream && broadcast) {
        int64_t next, unused;
        if (sub->from[0] >= '0' && sub->from[0] <= '9')
            sub->start_offset = strtoll(sub->from, NULL, 10);
        else if (strcmp(sub->from, "beginning") != 0 && dn_stream_status(dn, sub->stream, NULL, &next, &unused) == 0)
            sub->start_offset = next;
    }
    return 0;
}

uint64_t dn_send_unsubscribes(struct devnode *dn)
{
    uint64_t last = 0;
    if (dn->amqp) {
        /* The consumer connection goes: the broker hands our unacked events to the others. */
        amqpev_unsubscribe_all(dn->amqp);
        for (size_t i = 0; i < dn->sub_count; i++)
            dn->subs[i].active = 0;
        return 0;
    }
    for (size_t i = 0; i < dn->sub_count; i++) {
        if (!dn->subs[i].active)
            continue;
        struct wire_body b;
        wire_body_init(&b);
        last = dn_next_request_id(dn);
        proto_pack_unsubscribe(&b.pk, (int64_t)last, dn->subs[i].id);
        dn_node_send(dn, PROTO_UNSUBSCRIBE, &b);
        wire_body_free(&b);
        dn->subs[i].active = 0;
    }
    return last;
}

/* Adds a subscription; `stream` NULL for new events, else a validated stream and `from`. `more`
 * (owned from here on, also on failure) holds more_count further patterns of it. */
static int dn_add_subscription_more(struct devnode *dn, const char *name, const char *pattern, char **more,
                                    size_t more_count, const char *stream, const char *from, unsigned flags,
                                    devnode_event_fn fn, void *ctx)
{
    int rc = 0;
    struct dn_sub *grown = NULL;
    if (!pattern || !*pattern || strlen(pattern) > DN_PATTERN_MAX || !fn) {
        rc = dn_fail(dn, DEVNODE_E_INVALID, "subscribe: want a pattern of 1-%d bytes and a handler",
                     DN_PATTERN_MAX);
        goto fail;
    }
    if (!name || !*name)
        name = pattern;
    if ((rc = dn_events_amqp(dn)) < 0)
        goto fail; /* a broker that cannot be used is said at the call, not at start */
    if (rc > 0 && stream) {
        rc = dn_fail(dn, DEVNODE_E_INVALID, "subscribe to stream %s: retained streams are the embedded node's only; "
                     "DEVNODE_EVENTS=amqp://... has none (unset it to read the stream)", stream);
        goto fail;
    }
    rc = 0;
    grown = realloc(dn->subs, (dn->sub_count + 1) * sizeof *grown);
    if (!grown) {
        rc = dn_fail(dn, DEVNODE_E_INVALID, "out of memory");
        goto fail;
    }
    dn->subs = grown;
    struct dn_sub *sub = &dn->subs[dn->sub_count];
    memset(sub, 0, sizeof *sub);
    snprintf(sub->id, sizeof sub->id, "s%zu", dn->sub_count + 1);
    sub->pattern = strdup(pattern);
    sub->stream = stream ? strdup(stream) : NULL;
    size_t glen = strlen(dn->service) + strlen(name) + 2;
    sub->group = malloc(glen);
    if (!sub->pattern || !sub->group || (stream && !sub->stream)) {
        free(sub->pattern);
        free(sub->group);
        free(sub->stream);
        rc = dn_fail(dn, DEVNODE_E_INVALID, "out of memory");
        goto fail;
    }
    snprintf(sub->group, glen, "%s.%s", dn->service, name);
    snprintf(sub->from, sizeof sub->from, "%s", from ? from : "");
    sub->more = more;
    sub->more_count = more_count;
    sub->flags = flags;
    sub->fn = fn;
    sub->ctx = ctx;
    sub->last_offset = -1;
    dn->sub_count++;
    if (!dn->started && !dn->client)
        return 0; /* sent by devnode_start */
    return dn_send_subscription(dn, sub);
fail:
    for (size_t i = 0; i < more_count; i++)
        free(more[i]);
    free(more);
    return rc;
}

static int dn_add_subscription(struct devnode *dn, const char *name, const char *pattern, const char *stream,
                               const char *from, unsigned flags, devnode_event_fn fn, void *ctx)
{
    return dn_add_subscription_more(dn, name, pattern, NULL, 0, stream, from, flags, fn, ctx);
}

int devnode_subscribe_named(struct devnode *dn, const char *name, const char *pattern,
                            unsigned flags, devnode_event_fn fn, void *ctx)
{
    /* Catching up needs a stream's end to catch up to. */
    return dn_add_subscription(dn, name, pattern, NULL, NULL, flags & ~DEVNODE_CATCH_UP, fn, ctx);
}

int devnode_subscribe(struct devnode *dn, const char *pattern, unsigned flags, devnode_event_fn fn,
                      void *ctx)
{
    return devnode_subscribe_named(dn, NULL, pattern, flags, fn, ctx);
}

int devnode_subscribe_patterns(struct devnode *dn, const char *const *patterns, size_t count, unsigned flags,
                               devnode_event_fn fn, void *ctx)
{
    if (!patterns || count == 0 || count > PROTO_PATTERNS_MAX)
        return dn_fail(dn, DEVNODE_E_INVALID, "subscribe: want 1-%d patterns", PROTO_PATTERNS_MAX);
    for (size_t i = 1; i < count; i++)
        if (!patterns[i] || !*patterns[i] || strlen(patterns[i]) > DN_PATTERN_MAX)
            return dn_fail(dn, DEVNODE_E_INVALID, "subscribe: want patterns of 1-%d bytes", DN_PATTERN_MAX);
    char **more = count > 1 ? calloc(count - 1, sizeof *more) : NULL;
    if (count > 1 && !more)
        return dn_fail(dn, DEVNODE_E_INVALID, "out of memory");
    for (size_t i = 1; i < count; i++) {
        if (!(more[i - 1] = strdup(patterns[i]))) {
            for (size_t j = 1; j < i; j++)
                free(more[j - 1]);
            free(more);
            return dn_fail(dn, DEVNODE_E_INVALID, "out of memory");
        }
    }
    return dn_add_subscription_more(dn, NULL, patterns[0], more, count - 1, NULL, NULL, flags & ~DEVNODE_CATCH_UP,
                                    fn, ctx);
}

/* "beginning", "now", "resume" or a decimal offset the node can take (an int64). */
static int valid_from(const char *from)
{
    if (!strcmp(from, "beginning") || !strcmp(from, "now") || !strcmp(from, "resume"))
        return 1;
    size_t n = strlen(from);
    if (n == 0 || n > 18)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (from[i] < '0' || from[i] > '9')
            return 0;
    return 1;
}

int devnode_subscribe_stream(struct devnode *dn, const char *name, const char *stream, const char *pattern,
                             const char *from, unsigned flags, devnode_event_fn fn, void *ctx)
{
    if (!stream || !*stream || strlen(stream) > DN_PATTERN_MAX)
        return dn_fail(dn, DEVNODE_E_INVALID, "subscribe: want the stream's pattern (1-%d bytes)", DN_PATTERN_MAX);
    if (!from)
        from = "resume";
    if (!valid_from(from))
        return dn_fail(dn, DEVNODE_E_INVALID,
                       "subscribe to %s: from must be beginning, now, resume or an offset, not '%.40s'", stream,
                       from);
    if (dn->started && (flags & DEVNODE_CATCH_UP))
        return dn_fail(dn, DEVNODE_E_INVALID,
                       "subscribe to %s: DEVNODE_CATCH_UP is for before devnode_start (use devnode_catch_up)",
                       stream);
    if ((flags & DEVNODE_CATCH_UP) && pattern && strcmp(pattern, stream) != 0 && strcmp(pattern, "#") != 0)
        return dn_fail(dn, DEVNODE_E_INVALID,
                       "subscribe to %s: catching up needs every event of the stream, not only %s (filter in "
                       "the handler)", stream, pattern);
    return dn_add_subscription(dn, name, pattern ? pattern : stream, stream, from, flags, fn, ctx);
}

/* The node refuses what it cannot take (docs/protocol.md, "Coalescing"); a caller that does not
 * wait would only hear of it as a warning, so all of it is checked here, for both kinds. */
static int dn_emit_check(struct devnode *dn, const char *type, unsigned delay_ms)
{
    if (!type || !*type || strlen(type) > PROTO_NAME_MAX || !topic_pattern_valid(type) || strchr(type, '*') ||
        strchr(type, '#'))
        return dn_fail(dn, DEVNODE_E_INVALID, "emit: want an event type of dot-separated words (1-%d bytes, no * "
                       "or #)", PROTO_NAME_MAX);
    if ((long long)delay_ms > PROTO_DELAY_MAX_MS)
        return dn_fail(dn, DEVNODE_E_INVALID, "emit %s: delay_ms %u is over a week (%lld)", type, delay_ms,
                       (long long)PROTO_DELAY_MAX_MS);
    return 0;
}

static int dn_emit_nowait_failed(struct devnode *dn, const char *type, int rc)
{
    char why[sizeof dn->last_error];
    snprintf(why, sizeof why, "%s", dn->last_error);
    dn_fail(dn, rc, "emit %s without waiting: %s", type, why);
    dn_warn(dn, DEVNODE_WARNING, "%s", dn->last_error);
    return rc;
}

/* Packs the event into the connection's queue (no send, no allocation once the buffer has
 * grown); the queue goes out as one quiet emit when it is full, its linger is over, at the end
 * of the loop's turn, or before anything else is sent to the node (conn.c). */
static int dn_emit_queued(struct devnode *dn, const char *type, const json_t *body, unsigned delay_ms)
{
    struct dn_emit_queue *eq = &dn->emitq;
    if (!dn->node)
        return dn_fail(dn, DEVNODE_E_NODE, "emit %s: needs a node: opened without one", type);
    int rc = 0;
    if (eq->count && dn_now_us() - eq->first_us >= eq->linger_us)
        rc = dn_emitq_send(dn, DN_ROOM_TIMEOUT_MS);
    if (rc == 0)
        rc = dn_emit_window(dn, DN_ROOM_TIMEOUT_MS);
    if (rc < 0)
        return dn_emit_nowait_failed(dn, type, rc);
    char tmp[DEVNODE_TRACE_ID_MAX + 1];
    struct proto_emit e = {.type = type, .trace_id = dn_trace_or_new(dn, tmp), .delay_ms = delay_ms};
    size_t start = eq->buf.sbuf.size;
    proto_pack_emit_item_begin(&eq->buf.pk, &e);
    if (!body)
        msgpack_pack_nil(&eq->buf.pk);
    else if (msgjson_pack(&eq->buf.pk, body) < 0) {
        eq->buf.sbuf.size = start;
        return dn_fail(dn, DEVNODE_E_INVALID, "emit %s: the body cannot be encoded", type);
    }
    proto_pack_emit_item_end(&eq->buf.pk, &e);
    size_t len = eq->buf.sbuf.size - start;
    if (len > WIRE_BODY_MAX - DN_EMIT_HEAD_ROOM) {
        eq->buf.sbuf.size = start;
        return dn_fail(dn, DEVNODE_E_INVALID, "emit %s: the event takes %zu bytes, more than a message to the node "
                       "holds (%u)", type, len, WIRE_BODY_MAX - DN_EMIT_HEAD_ROOM);
    }
    if (eq->count == 0)
        eq->first_us = dn_now_us();
    eq->count++;
    /* A message holds WIRE_BODY_MAX at most: an event that would not fit goes in the next one. */
    if (eq->count > 1 && eq->buf.sbuf.size > WIRE_BODY_MAX)
        rc = dn_emitq_send_first(dn, eq->count - 1, start, DN_ROOM_TIMEOUT_MS);
    if (rc == 0 && (eq->linger_us == 0 || eq->count >= DN_EMIT_QUEUE_MAX ||
                    eq->buf.sbuf.size - DN_EMIT_HEAD_ROOM >= DN_EMIT_QUEUE_BYTES))
        rc = dn_emitq_send(dn, DN_ROOM_TIMEOUT_MS);
    if (rc < 0) {
        /* Not accepted: this event leaves the queue (it is the last one); those before it stay. */
        eq->buf.sbuf.size -= len;
        eq->count--;
        return dn_emit_nowait_failed(dn, type, rc);
    }
    return 0;
}

static int dn_emit(struct devnode *dn, const char *type, const json_t *body, unsigned delay_ms, int64_t *offset)
{
    if (offset)
        *offset = -1;
    int rc = dn_emit_check(dn, type, delay_ms);
    if (rc < 0)
        return rc;
    if ((rc = dn_events_amqp(dn)) != 0)
        return rc < 0 ? rc : dn_amqp_emit(dn, type, body, delay_ms, 1); /* no stream: offset -1 */
    char tmp[DEVNODE_TRACE_ID_MAX + 1];
    const char *trace = dn_trace_or_new(dn, tmp);
    struct wire_body b;
    wire_body_init(&b);
    uint64_t id = dn_next_request_id(dn);
    struct proto_emit e = {.type = type, .trace_id = trace, .source = dn->service, .delay_ms = delay_ms};
    proto_pack_emit_begin(&b.pk, (int64_t)id, &e);
    if (!body)
        msgpack_pack_nil(&b.pk);
    else if (msgjson_pack(&b.pk, body) < 0) {
        wire_body_free(&b);
        return dn_fail(dn, DEVNODE_E_INVALID, "emit %s: the body cannot be encoded", type);
    }
    proto_pack_emit_end(&b.pk, &e);
    if (b.sbuf.size > WIRE_BODY_MAX) {
        size_t size = b.sbuf.size;
        wire_body_free(&b);
        return dn_fail(dn, DEVNODE_E_INVALID, "emit %s: the event takes %zu bytes, more than a message to the node "
                       "holds (%u)", type, size, WIRE_BODY_MAX);
    }
    /* dn_node_request sends the queued no-wait events first: the node gets them in order. */
    struct dn_queued *reply = NULL;
    rc = dn_node_request(dn, PROTO_EMIT, &b, id, DN_NODE_TIMEOUT_MS, offset ? &reply : NULL);
    wire_body_free(&b);
    int64_t off;
    if (rc == 0 && reply && (off = proto_unpack_emit_offset(reply->msg.body)) >= 0)
        *offset = off;
    dn_queued_free(reply);
    return rc;
}

int devnode_emit(struct devnode *dn, const char *type, const json_t *body, unsigned delay_ms)
{
    return dn_emit(dn, type, body, delay_ms, NULL);
}

int devnode_emit_nowait(struct devnode *dn, const char *type, const json_t *body, unsigned delay_ms)
{
    int rc = dn_emit_check(dn, type, delay_ms);
    if (rc == 0 && (rc = dn_events_amqp(dn)) > 0)
        return dn_amqp_emit(dn, type, body, delay_ms, 0);
    return rc < 0 ? rc : dn_emit_queued(dn, type, body, delay_ms);
}

int devnode_emit_offset(struct devnode *dn, const char *type, const json_t *body, unsigned delay_ms,
                        int64_t *offset)
{
    int64_t ignored;
    return dn_emit(dn, type, body, delay_ms, offset ? offset : &ignored);
}

int devnode_set_emit_linger(struct devnode *dn, unsigned microseconds)
{
    if (microseconds > DEVNODE_EMIT_LINGER_MAX_US)
        return dn_fail(dn, DEVNODE_E_INVALID, "emit linger: want 0-%d microseconds", DEVNODE_EMIT_LINGER_MAX_US);
    dn->emitq.linger_us = microseconds;
    return 0;
}

/* The outcome of the events of one delivery message, sent as one ack and one nack. */
struct dn_settlement {
    uint64_t acks[DN_BATCH], nacks[DN_BATCH];
    size_t ack_count, nack_count;
};

static void dn_send_settlement(struct devnode *dn, const char *type, const uint64_t *deliveries, size_t count)
{
    if (count == 0)
        return;
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_settle(&b.pk, 0, deliveries, count);
    dn_node_send(dn, type, &b);
    wire_body_free(&b);
}

/* Notes an outcome; a full list is sent at once (a node may send more than DN_BATCH). */
static void dn_settle(struct devnode *dn, struct dn_settlement *st, uint64_t delivery, int ok)
{
    uint64_t *list = ok ? st->acks : st->nacks;
    size_t *count = ok ? &st->ack_count : &st->nack_count;
    if (*count == DN_BATCH) {
        dn_send_settlement(dn, ok ? PROTO_ACK : PROTO_NACK, list, *count);
        *count = 0;
    }
    list[(*count)++] = delivery;
}

/* The index of the active subscription an event names, or -1. */
static long dn_sub_of_event(const struct devnode *dn, const msgpack_object *m)
{
    char sub_id[16];
    if (wire_get_str(m, "subscription", sub_id, sizeof sub_id) < 0)
        return -1;
    for (size_t i = 0; i < dn->sub_count; i++)
        if (strcmp(dn->subs[i].id, sub_id) == 0 && dn->subs[i].active)
            return (long)i;
    return -1;
}

/* An acked stream event moves its subscription's mark, which devnode_catch_up waits on. */
static void dn_note_offset(struct devnode *dn, long index, int64_t offset)
{
    if (index >= 0 && (size_t)index < dn->sub_count && offset > dn->subs[index].last_offset)
        dn->subs[index].last_offset = offset;
}

/* Runs subscription index's handler on ev, whose trace id (from its headers, else a new one)
 * and subscription are filled in here: the node's bus and RabbitMQ both hand their events on
 * through this. */
static int dn_run_handler(struct devnode *dn, long index, struct devnode_event *ev)
{
    char trace[DEVNODE_TRACE_ID_MAX + 1] = "";
    const char *t = json_string_value(json_object_get(ev->headers, "trace_id"));
    if (t)
        dn_trace_sanitize(trace, t, strlen(t));
    if (!trace[0])
        rpc_new_trace_id(trace);
    ev->trace_id = trace;
    ev->subscription = dn->subs[index].group;
    char saved[DEVNODE_TRACE_ID_MAX + 1];
    memcpy(saved, dn->trace_id, sizeof saved);
    snprintf(dn->trace_id, sizeof dn->trace_id, "%s", ev->trace_id);
    dn->in_handler++;
    dn->subs[index].running++;
    struct dn_sub *sub = &dn->subs[index];
    int rc = sub->fn(ev, sub->ctx);
    /* An index, not the pointer: the handler may have subscribed again, which moves dn->subs. */
    dn->subs[index].running--;
    dn->in_handler--;
    memcpy(dn->trace_id, saved, sizeof saved);
    return rc;
}

/* Runs the handler of one event `m` for subscription `index` (-1: none of ours is active) and
 * notes the outcome in st. */
static void dn_dispatch_event(struct devnode *dn, long index, const msgpack_object *m, struct dn_settlement *st)
{
    struct proto_event_view f;
    char type[DN_PATTERN_MAX + 1], source[DN_NAME_MAX + 1];
    proto_unpack_event_view(m, &f);
    if (f.delivery < 0) {
        dn->malformed++;
        dn_warn(dn, DEVNODE_WARNING, "dropped an event without a delivery number");
        return;
    }
    uint64_t delivery = (uint64_t)f.delivery;
    if (index < 0 || wire_str_copy(f.type, type, sizeof type) < 0) {
        dn_settle(dn, st, delivery, 0); /* not ours to handle: someone else should */
        return;
    }
    if (wire_str_copy(f.source, source, sizeof source) < 0)
        source[0] = '\0';
    json_t *body = f.body ? msgjson_to_json(f.body) : json_null();
    json_t *headers = f.headers && f.headers->type == MSGPACK_OBJECT_MAP ? msgjson_to_json(f.headers) : json_object();
    if (!body || !headers) {
        json_decref(body);
        json_decref(headers);
        dn->malformed++;
        dn_settle(dn, st, delivery, 1); /* it can never be handled: do not loop it */
        dn_note_offset(dn, index, f.offset);
        dn_warn(dn, DEVNODE_WARNING, "dropped event %s: its body nests too deep", type);
        return;
    }
    struct devnode_event ev = {
        .dn = dn,
        .type = type,
        .body = body,
        .headers = headers,
        .source = source,
        .delivery = delivery,
        .redelivered = f.redelivered,
        .offset = f.offset,
    };
    int rc = dn_run_handler(dn, index, &ev);
    json_decref(body);
    json_decref(headers);
    dn_settle(dn, st, delivery, rc == 0);
    if (rc == 0)
        dn_note_offset(dn, index, f.offset);
}

/* Handles every event of a delivery message in order, then settles them with one ack (and
 * one nack): a process that dies in the middle gets the whole message redelivered, which
 * at-least-once allows. */
static void dn_dispatch_delivery(struct devnode *dn, const msgpack_object *body, int batch)
{
    struct dn_settlement st = {.ack_count = 0, .nack_count = 0};
    /* Each event looks its subscription up again: a handler before it may have ended it. */
    if (!batch) {
        dn_dispatch_event(dn, dn_sub_of_event(dn, body), body, &st);
    } else {
        const msgpack_object *events = wire_map_get(body, "events");
        if (!events || events->type != MSGPACK_OBJECT_ARRAY) {
            dn->malformed++;
            dn_warn(dn, DEVNODE_WARNING, "dropped a batch of events without its list");
            return;
        }
        for (uint32_t i = 0; i < events->via.array.size; i++) {
            const msgpack_object *ev = &events->via.array.ptr[i];
            if (ev->type == MSGPACK_OBJECT_MAP)
                dn_dispatch_event(dn, dn_sub_of_event(dn, body), ev, &st);
            else
                dn->malformed++;
        }
    }
    /* What the handlers emitted without waiting goes before their acks: a process that dies
     * after acking an event has sent the events it caused (at least once, down a chain). */
    if (dn_emitq_send(dn, DN_ROOM_TIMEOUT_MS) < 0)
        dn_warn(dn, DEVNODE_WARNING, "events emitted without waiting are still queued: %s", dn->last_error);
    dn_send_settlement(dn, PROTO_ACK, st.acks, st.ack_count);
    dn_send_settlement(dn, PROTO_NACK, st.nacks, st.nack_count);
}

void dn_handle_node_msg(struct devnode *dn, struct dn_queued *q)
{
    if (!dn_is_delivery(q)) {
        dn_unasked_reply(dn, q);
        return;
    }
    dn_dispatch_delivery(dn, q->msg.body, strcmp(q->msg.type, PROTO_EVENTS) == 0);
    dn_queued_free(q);
}

/* One event from RabbitMQ: 0 acks it, anything else gives it back (through lymph_retry). */
static int dn_amqp_deliver(void *ctx, const struct amqpev_delivery *d)
{
    struct devnode *dn = ctx;
    long index = d->tag;
    if (index < 0 || (size_t)index >= dn->sub_count || !dn->subs[index].active)
        return 1;
    struct devnode_event ev = {
        .dn = dn,
        .type = d->type,
        .body = d->body,
        .headers = d->headers,
        .source = d->source,
        .delivery = d->delivery_tag,
        .redelivered = d->redelivered,
        .offset = -1,
    };
    return dn_run_handler(dn, index, &ev);
}

/* devnode_fd's epoll set follows the broker's sockets, which change when a connection is
 * opened again (a closed socket leaves the set by itself). */
static void dn_amqp_watch_fds(struct devnode *dn)
{
    if (dn->epfd < 0 || !dn->amqp)
        return;
    int fds[2];
    unsigned opened = amqpev_fds(dn->amqp, fds);
    if (opened == dn->amqp_watched)
        return;
    dn->amqp_watched = opened;
    for (int i = 0; i < 2; i++) {
        struct epoll_event ev = {.events = EPOLLIN};
        if (fds[i] >= 0)
            epoll_ctl(dn->epfd, EPOLL_CTL_ADD, fds[i], &ev); /* EEXIST when it is there already */
    }
}

int dn_events_process(struct devnode *dn)
{
    if (!dn->amqp)
        return 0;
    int handled = amqpev_process(dn->amqp, dn_amqp_deliver, dn, DN_BATCH);
    dn_amqp_watch_fds(dn);
    return handled;
}

int dn_events_ready(struct devnode *dn)
{
    return dn->amqp && amqpev_ready(dn->amqp);
}

void dn_events_fds(struct devnode *dn, int fds[2])
{
    fds[0] = fds[1] = -1;
    if (dn->amqp) {
        amqpev_fds(dn->amqp, fds);
        dn_amqp_watch_fds(dn);
    }
}

int dn_events_timeout_ms(struct devnode *dn)
{
    return dn->amqp ? amqpev_timeout_ms(dn->amqp) : -1;
}

int dn_events_flush(struct devnode *dn, int timeout_ms)
{
    uint64_t lost = dn->amqp ? amqpev_flush(dn->amqp, timeout_ms) : 0;
    return lost > INT_MAX ? INT_MAX : (int)lost;
}

/* ---- catching up with a stream ------------------------------------------------------- */

/* Takes the oldest queued event of subscription `index` out of dn's queue; NULL when none. */
static struct dn_queued *dn_unqueue_event_of(struct devnode *dn, long index)
{
    struct dn_queued *prev = NULL;
    for (struct dn_queued *q = dn->queue_head; q; prev = q, q = q->next) {
        if (!dn_is_delivery(q) || dn_sub_of_event(dn, q->msg.body) != index)
            continue;
        if (prev)
            prev->next = q->next;
        else
            dn->queue_head = q->next;
        if (dn->queue_tail == q)
            dn->queue_tail = prev;
        q->next = NULL;
        return q;
    }
    return NULL;
}

int dn_catch_up(struct devnode *dn, size_t sub_index, long long deadline_ms)
{
    long index = (long)sub_index;
    char stream[DN_PATTERN_MAX + 1];
    snprintf(stream, sizeof stream, "%s", dn->subs[index].stream);
    int broadcast = (dn->subs[index].flags & DEVNODE_BROADCAST) != 0;
    int64_t end, committed;
    int rc = dn_stream_status(dn, stream, broadcast ? NULL : dn->subs[index].group, &end, &committed);
    if (rc < 0)
        return rc;
    /* Everything below `done` is handled or never comes: a named group's committed offset
     * covers what other members (and earlier runs) did. */
    int64_t done = broadcast ? dn->subs[index].start_offset : committed;
    long long idle_deadline_ms = dn_now_ms() + DN_CATCH_UP_IDLE_MS;
    /* Events of other subscriptions keep their order in the queue for devnode_process. */
    while (dn->subs[index].last_offset + 1 < end && done < end) {
        struct dn_queued *q = dn_unqueue_event_of(dn, index);
        if (!q && (q = dn_node_recv(dn)) != NULL) {
            if (!dn_is_delivery(q)) {
                dn_unasked_reply(dn, q);
                continue;
            }
            if (dn_sub_of_event(dn, q->msg.body) != index) {
                dn_enqueue(dn, q);
                continue;
            }
        }
        if (q) {
            dn_dispatch_delivery(dn, q->msg.body, strcmp(q->msg.type, PROTO_EVENTS) == 0);
            dn_queued_free(q);
            idle_deadline_ms = dn_now_ms() + DN_CATCH_UP_IDLE_MS;
            continue;
        }
        long long now = dn_now_ms();
        long long until = deadline_ms && deadline_ms < idle_deadline_ms ? deadline_ms : idle_deadline_ms;
        if (now >= until)
            return dn_fail(dn, DEVNODE_E_TIMEOUT, "%s: caught up to offset %lld of %lld only", dn->subs[index].group,
                           (long long)dn->subs[index].last_offset + 1, (long long)end);
        if ((rc = dn_node_poll_until(dn, now, until)) < 0)
            return rc;
    }
    return 0;
}

int devnode_catch_up(struct devnode *dn, const char *name, int timeout_ms)
{
    if (!dn->started)
        return dn_fail(dn, DEVNODE_E_INVALID, "catch up: start first (DEVNODE_CATCH_UP does it at start)");
    char group[2 * DN_PATTERN_MAX + 2];
    snprintf(group, sizeof group, "%s.%s", dn->service, name ? name : "");
    for (size_t i = 0; i < dn->sub_count; i++) {
        const struct dn_sub *sub = &dn->subs[i];
        if (!sub->stream || strcmp(sub->group, group) != 0)
            continue;
        if (!sub->active)
            return dn_fail(dn, DEVNODE_E_INVALID, "catch up: %s is not subscribed", sub->group);
        if (sub->running)
            return dn_fail(dn, DEVNODE_E_INVALID, "catch up: %s from inside its own handler", sub->group);
        /* Offsets of events a narrower pattern leaves out never arrive: nothing to wait on. */
        if (strcmp(sub->pattern, sub->stream) != 0 && strcmp(sub->pattern, "#") != 0)
            return dn_fail(dn, DEVNODE_E_INVALID, "catch up: %s filters stream %s with %s", sub->group, sub->stream,
                           sub->pattern);
        return dn_catch_up(dn, i, dn_now_ms() + (timeout_ms > 0 ? timeout_ms : DEVNODE_DEFAULT_TIMEOUT_MS));
    }
    return dn_fail(dn, DEVNODE_E_INVALID, "catch up: no stream subscription named '%s'", name ? name : "");
}

void dn_events_free(struct devnode *dn)
{
    for (size_t i = 0; i < dn->sub_count; i++) {
        for (size_t j = 0; j < dn->subs[i].more_count; j++)
            free(dn->subs[i].more[j]);
        free(dn->subs[i].more);
        free(dn->subs[i].pattern);
        free(dn->subs[i].group);
        free(dn->subs[i].stream);
    }
    free(dn->subs);
    dn->subs = NULL;
    dn->sub_count = 0;
    amqpev_close(dn->amqp); /* after devnode_stop/close flushed it */
    dn->amqp = NULL;
}
