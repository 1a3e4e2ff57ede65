/* msg_bus: encoders and decoders of the event bus's messages, side by side. */
#include "proto/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/topic.h"

/* ---------------------------------------------------------------- emit */

void proto_pack_emit_begin(msgpack_packer *pk, int64_t id, const struct proto_emit *e)
{
    msgpack_pack_map(pk, 6);
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_str(pk, "type", e->type);
    wire_pack_str(pk, "body");
}

void proto_pack_emit_end(msgpack_packer *pk, const struct proto_emit *e)
{
    wire_pack_str(pk, "headers");
    msgpack_pack_map(pk, 1);
    wire_pack_kv_str(pk, "trace_id", e->trace_id);
    wire_pack_kv_str(pk, "source", e->source);
    wire_pack_kv_int(pk, "delay_ms", e->delay_ms);
}

/* An event type: 1..PROTO_NAME_MAX bytes of dot-separated non-empty words, no * or # (nor a
 * NUL, which would cut it short as a C string). One pass over the bytes, no copy: a batch
 * checks a thousand of these per message. */
static int event_type_valid(const msgpack_object *t)
{
    if (t->type != MSGPACK_OBJECT_STR || t->via.str.size == 0 || t->via.str.size > PROTO_NAME_MAX)
        return 0;
    const char *p = t->via.str.ptr, *end = p + t->via.str.size;
    if (*p == '.' || end[-1] == '.')
        return 0;
    for (char prev = 0; p < end; prev = *p++)
        if (*p == '*' || *p == '#' || *p == '\0' || (*p == '.' && prev == '.'))
            return 0;
    return 1;
}

/* The first value of each key, as wire_map_get finds it, in one pass over the map. */
static void emit_event_fields(const msgpack_object *m, const msgpack_object **type, const msgpack_object **headers,
                              const msgpack_object **source, const msgpack_object **body,
                              const msgpack_object **delay)
{
    *type = *headers = *source = *body = *delay = NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            continue;
        const char *name = k->via.str.ptr;
        const msgpack_object **slot = NULL;
        switch (k->via.str.size) {
        case 4: slot = !memcmp(name, "type", 4) ? type : !memcmp(name, "body", 4) ? body : NULL; break;
        case 6: slot = !memcmp(name, "source", 6) ? source : NULL; break;
        case 7: slot = !memcmp(name, "headers", 7) ? headers : NULL; break;
        case 8: slot = !memcmp(name, "delay_ms", 8) ? delay : NULL; break;
        }
        if (slot && !*slot)
            *slot = v;
    }
}

int proto_unpack_emit_event(const msgpack_object *m, struct proto_emit_view *f, char *why, size_t whylen)
{
    memset(f, 0, sizeof *f);
    if (m->type != MSGPACK_OBJECT_MAP) {
        snprintf(why, whylen, "an event must be a map");
        return -1;
    }
    const msgpack_object *delay;
    emit_event_fields(m, &f->type, &f->headers, &f->source, &f->body, &delay);
    if (!f->type || !event_type_valid(f->type)) {
        snprintf(why, whylen, "the type must be dot-separated words (no * or #)");
        return -1;
    }
    if (f->headers && f->headers->type != MSGPACK_OBJECT_MAP && f->headers->type != MSGPACK_OBJECT_NIL) {
        snprintf(why, whylen, "headers must be a map");
        return -1;
    }
    if (f->source && (f->source->type != MSGPACK_OBJECT_STR || f->source->via.str.size > PROTO_NAME_MAX))
        f->source = NULL;
    if (delay) {
        if (delay->type == MSGPACK_OBJECT_POSITIVE_INTEGER && delay->via.u64 <= (uint64_t)PROTO_DELAY_MAX_MS)
            f->delay_ms = (int64_t)delay->via.u64;
        else if (delay->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            f->delay_ms = -1;
        else
            f->delay_ms = delay->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? PROTO_DELAY_MAX_MS + 1 : -1;
    }
    if (f->delay_ms < 0 || f->delay_ms > PROTO_DELAY_MAX_MS) {
        snprintf(why, whylen, "delay_ms must be between 0 and a week");
        return -1;
    }
    return 0;
}

int proto_unpack_emit_batch(const msgpack_object *body, const msgpack_object **events,
                            const msgpack_object **source, char *err, size_t errlen)
{
    *events = wire_map_get(body, "events");
    *source = NULL;
    if (!*events)
        return 0;
    if ((*events)->type != MSGPACK_OBJECT_ARRAY || (*events)->via.array.size == 0 ||
        (*events)->via.array.size > PROTO_EMIT_BATCH_MAX) {
        snprintf(err, errlen, "emit: events must be a list of 1 to %d events", PROTO_EMIT_BATCH_MAX);
        return -1;
    }
    const msgpack_object *s = wire_map_get(body, "source");
    if (s && s->type == MSGPACK_OBJECT_STR && s->via.str.size <= PROTO_NAME_MAX)
        *source = s;
    return 0;
}

void proto_pack_emit_reply(msgpack_packer *pk, const msgpack_object *id, size_t events, size_t groups,
                           int64_t offset)
{
    msgpack_pack_map(pk, events ? 4 : 3);
    proto_pack_id(pk, id);
    if (events)
        wire_pack_kv_int(pk, "events", (int64_t)events);
    wire_pack_kv_int(pk, "groups", (int64_t)groups);
    wire_pack_str(pk, "offset");
    if (offset >= 0)
        msgpack_pack_int64(pk, offset);
    else
        msgpack_pack_nil(pk);
}

int64_t proto_unpack_emit_offset(const msgpack_object *body)
{
    int64_t off;
    return wire_get_int(body, "offset", &off) == 0 && off >= 0 ? off : -1;
}

/* ---------------------------------------------------------------- coalesced emits */

void proto_pack_emit_batch_head(msgpack_packer *pk, int64_t id, const char *source, int quiet, size_t count)
{
    msgpack_pack_map(pk, quiet ? 4 : 3);
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_str(pk, "source", source);
    if (quiet)
        wire_pack_kv_bool(pk, "quiet", 1);
    wire_pack_str(pk, "events");
    msgpack_pack_array(pk, count);
}

void proto_pack_emit_item_begin(msgpack_packer *pk, const struct proto_emit *e)
{
    msgpack_pack_map(pk, 4);
    wire_pack_kv_str(pk, "type", e->type);
    wire_pack_str(pk, "body");
}

void proto_pack_emit_item_end(msgpack_packer *pk, const struct proto_emit *e)
{
    wire_pack_str(pk, "headers");
    msgpack_pack_map(pk, 1);
    wire_pack_kv_str(pk, "trace_id", e->trace_id);
    wire_pack_kv_int(pk, "delay_ms", e->delay_ms);
}

int proto_unpack_emit_quiet(const msgpack_object *body)
{
    const msgpack_object *q = wire_map_get(body, "quiet");
    return q && q->type == MSGPACK_OBJECT_BOOLEAN && q->via.boolean;
}

void proto_pack_emit_refused(msgpack_packer *pk, const msgpack_object *id, size_t events,
                             const struct proto_emit_refusal *refused, size_t count)
{
    msgpack_pack_map(pk, 3);
    proto_pack_id(pk, id);
    wire_pack_kv_int(pk, "events", (int64_t)events);
    wire_pack_str(pk, "refused");
    msgpack_pack_array(pk, count);
    for (size_t i = 0; i < count; i++) {
        msgpack_pack_map(pk, 3);
        wire_pack_kv_int(pk, "index", (int64_t)refused[i].index);
        wire_pack_str(pk, "type");
        if (refused[i].type) {
            msgpack_pack_str(pk, refused[i].type_len);
            msgpack_pack_str_body(pk, refused[i].type, refused[i].type_len);
        } else {
            msgpack_pack_nil(pk);
        }
        wire_pack_kv_str(pk, "message", refused[i].message);
    }
}

int proto_unpack_emit_refused(const msgpack_object *body, int64_t *events, const msgpack_object **refused)
{
    *refused = wire_map_get(body, "refused");
    if (wire_get_int(body, "events", events) < 0 || *events < 0 || !*refused ||
        (*refused)->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    return 0;
}

int proto_unpack_emit_refusal(const msgpack_object *item, int64_t *index, char *type, size_t typecap,
                              char *message, size_t messagecap)
{
    const msgpack_object *m = wire_map_get(item, "message");
    if (item->type != MSGPACK_OBJECT_MAP || wire_get_int(item, "index", index) < 0 || *index < 0 || !m ||
        m->type != MSGPACK_OBJECT_STR || messagecap == 0)
        return -1;
    /* A long reason is cut, not refused: the client still names the event. */
    size_t n = m->via.str.size < messagecap - 1 ? m->via.str.size : messagecap - 1;
    memcpy(message, m->via.str.ptr, n);
    message[n] = '\0';
    if (typecap)
        type[0] = '\0';
    const msgpack_object *t = wire_map_get(item, "type");
    if (t && t->type == MSGPACK_OBJECT_STR && wire_get_str(item, "type", type, typecap) < 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- subscribe */

void proto_pack_subscribe(msgpack_packer *pk, int64_t id, const struct proto_subscribe *s)
{
    msgpack_pack_map(pk, 7 + (s->batch != 0) + (s->stream ? 2 : 0));
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_str(pk, "subscription", s->subscription);
    wire_pack_str(pk, "patterns");
    msgpack_pack_array(pk, s->pattern_count);
    for (size_t i = 0; i < s->pattern_count; i++)
        wire_pack_str(pk, s->patterns[i]);
    wire_pack_kv_str(pk, "group", s->group);
    wire_pack_kv_bool(pk, "broadcast", s->broadcast);
    wire_pack_kv_int(pk, "pid", s->pid);
    wire_pack_kv_int(pk, "prefetch", s->prefetch);
    if (s->batch)
        wire_pack_kv_int(pk, "batch", s->batch);
    if (s->stream) {
        wire_pack_kv_str(pk, "stream", s->stream);
        /* The protocol takes an offset as an integer and the rest as words. */
        if (s->from[0] >= '0' && s->from[0] <= '9')
            wire_pack_kv_int(pk, "from", strtoll(s->from, NULL, 10));
        else
            wire_pack_kv_str(pk, "from", s->from);
    }
}

static int fail(char *err, size_t errlen, const char *message)
{
    snprintf(err, errlen, "%s", message);
    return -1;
}

int proto_unpack_subscribe(const msgpack_object *body, struct proto_subscribe_view *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (wire_get_str(body, "subscription", out->subscription, sizeof out->subscription) < 0 || !out->subscription[0])
        return fail(err, errlen, "subscribe needs a subscription name (a string of up to 64 bytes)");
    const msgpack_object *patterns = wire_map_get(body, "patterns");
    if (!patterns || patterns->type != MSGPACK_OBJECT_ARRAY || patterns->via.array.size == 0 ||
        patterns->via.array.size > PROTO_PATTERNS_MAX)
        return fail(err, errlen, "subscribe needs patterns: a list of 1 to 32 strings");
    for (uint32_t i = 0; i < patterns->via.array.size; i++) {
        const msgpack_object *p = &patterns->via.array.ptr[i];
        char text[PROTO_NAME_MAX + 1];
        if (p->type != MSGPACK_OBJECT_STR || p->via.str.size > PROTO_NAME_MAX)
            return fail(err, errlen, "subscribe: every pattern must be a string");
        memcpy(text, p->via.str.ptr, p->via.str.size);
        text[p->via.str.size] = '\0';
        if (!topic_pattern_valid(text)) {
            snprintf(err, errlen, "subscribe: '%s' is not a valid pattern (words, *, #)", text);
            return -1;
        }
    }
    out->patterns = patterns;
    const msgpack_object *bcast = wire_map_get(body, "broadcast");
    out->broadcast = bcast && bcast->type == MSGPACK_OBJECT_BOOLEAN && bcast->via.boolean;
    const msgpack_object *gobj = wire_map_get(body, "group");
    if (gobj && gobj->type == MSGPACK_OBJECT_STR && wire_get_str(body, "group", out->group, sizeof out->group) < 0)
        return fail(err, errlen, "subscribe: group must be a string of up to 200 bytes");
    for (const char *c = out->group; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return fail(err, errlen, "subscribe: a group name cannot hold control characters");
    if (!out->group[0])
        out->broadcast = 1;
    const msgpack_object *stream = wire_map_get(body, "stream");
    if (stream && stream->type != MSGPACK_OBJECT_NIL) {
        if (wire_get_str(body, "stream", out->stream, sizeof out->stream) < 0)
            return fail(err, errlen, "subscribe: stream must name a stream of `streams:` in .lymph.yml");
        out->has_stream = 1;
        const msgpack_object *from = wire_map_get(body, "from");
        char from_text[32];
        if (from && from->type != MSGPACK_OBJECT_NIL) {
            if (wire_get_int(body, "from", &out->from_offset) == 0 && out->from_offset >= 0) {
                out->from = PROTO_FROM_OFFSET;
            } else if (wire_get_str(body, "from", from_text, sizeof from_text) == 0 &&
                       (!strcmp(from_text, "beginning") || !strcmp(from_text, "now") ||
                        !strcmp(from_text, "resume"))) {
                out->from = !strcmp(from_text, "beginning") ? PROTO_FROM_BEGINNING
                            : !strcmp(from_text, "now")     ? PROTO_FROM_NOW
                                                            : PROTO_FROM_RESUME;
            } else {
                return fail(err, errlen, "subscribe: from must be an offset, beginning, now or resume");
            }
            out->has_from = out->from != PROTO_FROM_RESUME;
        }
    }
    out->prefetch = PROTO_PREFETCH_DEFAULT;
    wire_get_int(body, "pid", &out->pid);
    wire_get_int(body, "prefetch", &out->prefetch);
    if (out->prefetch < 1 || out->prefetch > PROTO_PREFETCH_MAX)
        out->prefetch = PROTO_PREFETCH_DEFAULT;
    out->batch = 1;
    if (wire_map_get(body, "batch") &&
        (wire_get_int(body, "batch", &out->batch) < 0 || out->batch < 1 || out->batch > PROTO_EMIT_BATCH_MAX))
        return fail(err, errlen, "subscribe: batch must be a number of events from 1 to 1000");
    return 0;
}

void proto_pack_unsubscribe(msgpack_packer *pk, int64_t id, const char *subscription)
{
    msgpack_pack_map(pk, 2);
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_str(pk, "subscription", subscription);
}

int proto_unpack_unsubscribe(const msgpack_object *body, char *subscription, size_t cap, char *err, size_t errlen)
{
    if (wire_get_str(body, "subscription", subscription, cap) < 0)
        return fail(err, errlen, "unsubscribe needs a subscription name");
    return 0;
}

/* ---------------------------------------------------------------- deliveries */

/* The seven fields every delivered event carries, after `subscription` or inside `events`. */
/* Deliveries are the hot path: their keys are literals, packed without a strlen each. */
#define PACK_KEY(pk, lit) wire_pack_strn(pk, lit, sizeof lit - 1)

static void pack_str_or_nil(msgpack_packer *pk, const char *s)
{
    if (s)
        wire_pack_str(pk, s);
    else
        msgpack_pack_nil(pk);
}

static void pack_event_fields(msgpack_packer *pk, msgpack_sbuffer *sb, const struct proto_event *ev)
{
    PACK_KEY(pk, "offset");
    if (ev->has_offset)
        msgpack_pack_uint64(pk, ev->offset);
    else
        msgpack_pack_nil(pk);
    PACK_KEY(pk, "delivery");
    msgpack_pack_uint64(pk, ev->delivery);
    PACK_KEY(pk, "type");
    pack_str_or_nil(pk, ev->type);
    PACK_KEY(pk, "headers");
    msgpack_sbuffer_write(sb, ev->headers, ev->headers_len);
    PACK_KEY(pk, "body");
    msgpack_sbuffer_write(sb, ev->body, ev->body_len);
    PACK_KEY(pk, "source");
    pack_str_or_nil(pk, ev->source);
    PACK_KEY(pk, "redelivered");
    if (ev->redelivered)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void proto_pack_event(msgpack_packer *pk, msgpack_sbuffer *sb, const char *subscription, const struct proto_event *ev)
{
    msgpack_pack_map(pk, 8);
    wire_pack_kv_str(pk, "subscription", subscription);
    pack_event_fields(pk, sb, ev);
}

void proto_pack_events_begin(msgpack_packer *pk, const char *subscription, size_t count)
{
    msgpack_pack_map(pk, 2);
    wire_pack_kv_str(pk, "subscription", subscription);
    wire_pack_str(pk, "events");
    msgpack_pack_array(pk, count);
}

void proto_pack_events_item(msgpack_packer *pk, msgpack_sbuffer *sb, const struct proto_event *ev)
{
    msgpack_pack_map(pk, 7);
    pack_event_fields(pk, sb, ev);
}

/* A non-negative integer, else -1. */
static int64_t event_uint(const msgpack_object *v)
{
    return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX ? (int64_t)v->via.u64 : -1;
}

/* One pass, as emit_event_fields: a member reads every field of every event it is handed. */
void proto_unpack_event_view(const msgpack_object *m, struct proto_event_view *out)
{
    *out = (struct proto_event_view){.delivery = -1, .offset = -1};
    if (m->type != MSGPACK_OBJECT_MAP)
        return;
    int seen_delivery = 0, seen_offset = 0, seen_redelivered = 0;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            continue;
        const char *name = k->via.str.ptr;
        switch (k->via.str.size) {
        case 4:
            if (!memcmp(name, "type", 4) && !out->type)
                out->type = v;
            else if (!memcmp(name, "body", 4) && !out->body)
                out->body = v;
            break;
        case 6:
            if (!memcmp(name, "source", 6) && !out->source)
                out->source = v;
            else if (!memcmp(name, "offset", 6) && !seen_offset++)
                out->offset = event_uint(v);
            break;
        case 7:
            if (!memcmp(name, "headers", 7) && !out->headers)
                out->headers = v;
            break;
        case 8:
            if (!memcmp(name, "delivery", 8) && !seen_delivery++)
                out->delivery = event_uint(v);
            break;
        case 11:
            if (!memcmp(name, "redelivered", 11) && !seen_redelivered++)
                out->redelivered = v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
            break;
        }
    }
    if (out->type && out->type->type != MSGPACK_OBJECT_STR)
        out->type = NULL;
    if (out->source && out->source->type != MSGPACK_OBJECT_STR)
        out->source = NULL;
}

void proto_pack_settle(msgpack_packer *pk, int64_t id, const uint64_t *deliveries, size_t count)
{
    msgpack_pack_map(pk, 1 + (id != 0));
    if (id)
        wire_pack_kv_int(pk, "id", id);
    if (count == 1) {
        wire_pack_kv_int(pk, "delivery", (int64_t)deliveries[0]);
    } else {
        wire_pack_str(pk, "deliveries");
        msgpack_pack_array(pk, count);
        for (size_t i = 0; i < count; i++)
            msgpack_pack_uint64(pk, deliveries[i]);
    }
}

void proto_unpack_settle(const msgpack_object *body, const msgpack_object **delivery, const msgpack_object **list)
{
    *delivery = *list = NULL;
    const msgpack_object *l = wire_map_get(body, "deliveries");
    if (l) {
        if (l->type == MSGPACK_OBJECT_ARRAY)
            *list = l;
        return;
    }
    const msgpack_object *d = wire_map_get(body, "delivery");
    if (d && d->type == MSGPACK_OBJECT_POSITIVE_INTEGER && d->via.u64 != 0)
        *delivery = d;
}

/* ---------------------------------------------------------------- bus_status */

void proto_pack_bus_status_head(msgpack_packer *pk, const msgpack_object *id, size_t stream_count)
{
    msgpack_pack_map(pk, 7);
    proto_pack_id(pk, id);
    wire_pack_str(pk, "streams");
    msgpack_pack_array(pk, stream_count);
}

void proto_pack_bus_status_stream(msgpack_packer *pk, const struct proto_bus_stream *s)
{
    msgpack_pack_map(pk, 3);
    wire_pack_kv_str(pk, "pattern", s->pattern);
    wire_pack_kv_int(pk, "first_offset", s->first_offset);
    wire_pack_kv_int(pk, "next_offset", s->next_offset);
}

void proto_pack_bus_status_totals(msgpack_packer *pk, const struct proto_bus_totals *t, size_t group_count)
{
    wire_pack_kv_int(pk, "emitted", t->emitted);
    wire_pack_kv_int(pk, "delivered", t->delivered);
    wire_pack_kv_int(pk, "dropped", t->dropped);
    wire_pack_kv_int(pk, "delayed", t->delayed);
    wire_pack_str(pk, "groups");
    msgpack_pack_array(pk, group_count);
}

void proto_pack_bus_status_group(msgpack_packer *pk, const struct proto_bus_group *g, const char *const *patterns,
                                 size_t pattern_count)
{
    msgpack_pack_map(pk, 12);
    wire_pack_kv_str(pk, "name", g->name);
    wire_pack_kv_str(pk, "stream", g->stream);
    wire_pack_kv_int(pk, "read_offset", g->read_offset);
    wire_pack_kv_int(pk, "committed_offset", g->committed_offset);
    wire_pack_kv_bool(pk, "broadcast", g->broadcast);
    wire_pack_str(pk, "patterns");
    msgpack_pack_array(pk, pattern_count);
    for (size_t k = 0; k < pattern_count; k++)
        wire_pack_str(pk, patterns[k]);
    wire_pack_kv_int(pk, "members", g->members);
    wire_pack_kv_int(pk, "queued", g->queued);
    wire_pack_kv_int(pk, "in_flight", g->in_flight);
    wire_pack_kv_int(pk, "delivered", g->delivered);
    wire_pack_kv_int(pk, "dropped", g->dropped);
    wire_pack_kv_int(pk, "paused", g->paused);
}

int proto_unpack_bus_status_stream(const msgpack_object *body, const char *pattern, const char *group,
                                   int64_t *next_offset, int64_t *committed_offset)
{
    int rc = -1;
    *committed_offset = -1;
    const msgpack_object *streams = wire_map_get(body, "streams");
    for (uint32_t i = 0; streams && streams->type == MSGPACK_OBJECT_ARRAY && i < streams->via.array.size; i++) {
        const msgpack_object *st = &streams->via.array.ptr[i];
        if (st->type == MSGPACK_OBJECT_MAP && wire_str_eq(wire_map_get(st, "pattern"), pattern) &&
            wire_get_int(st, "next_offset", next_offset) == 0) {
            rc = 0;
            break;
        }
    }
    const msgpack_object *groups = wire_map_get(body, "groups");
    for (uint32_t i = 0; group && groups && groups->type == MSGPACK_OBJECT_ARRAY && i < groups->via.array.size; i++) {
        const msgpack_object *g = &groups->via.array.ptr[i];
        if (g->type != MSGPACK_OBJECT_MAP || !wire_str_eq(wire_map_get(g, "name"), group) ||
            !wire_str_eq(wire_map_get(g, "stream"), pattern))
            continue;
        if (wire_get_int(g, "committed_offset", committed_offset) < 0)
            *committed_offset = -1;
        break;
    }
    return rc;
}
