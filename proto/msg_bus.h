/* msg_bus: the event bus's messages (docs/protocol.md, "Events"): emit, subscribe,
 * unsubscribe, the `event`/`events` deliveries, ack/nack and bus_status. Included through
 * proto/proto.h. Deliveries are the bus's hot path: their encoders copy an event's packed
 * headers and body straight into the message, never re-encoding them. */
#ifndef DEVNODE_PROTO_MSG_BUS_H
#define DEVNODE_PROTO_MSG_BUS_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_NAME_MAX 200                  /* bytes of an event type, source, pattern or group */
#define PROTO_PATTERNS_MAX 32               /* patterns of one subscription */
#define PROTO_SUBSCRIPTION_MAX 64           /* bytes of a subscription name */
#define PROTO_DELAY_MAX_MS (7LL * 24 * 3600 * 1000)
#define PROTO_PREFETCH_DEFAULT 64
#define PROTO_PREFETCH_MAX 100000

/* ---- emit ----------------------------------------------------------------------------- */
/* `emit` {id, type, body, headers: {trace_id}, source, delay_ms} of one event. The body is
 * any msgpack value the caller packs between begin and end (so it is never copied). */
struct proto_emit {
    const char *type;      /* dot-separated words */
    const char *trace_id;  /* headers.trace_id */
    const char *source;    /* the emitting service, or "cli" */
    int64_t delay_ms;
};
void proto_pack_emit_begin(msgpack_packer *pk, int64_t id, const struct proto_emit *e);
void proto_pack_emit_end(msgpack_packer *pk, const struct proto_emit *e);

/* One event of an emit (the request itself, or an item of its `events`), checked. */
struct proto_emit_view {
    const msgpack_object *type;     /* a string: an event type */
    const msgpack_object *source;   /* a string of at most PROTO_NAME_MAX bytes, or NULL */
    const msgpack_object *headers;  /* a map, nil or NULL */
    const msgpack_object *body;     /* anything, or NULL */
    int64_t delay_ms;               /* 0 .. PROTO_DELAY_MAX_MS */
};
/* 0, or -1 with the reason (without the "emit: " the caller adds). */
int proto_unpack_emit_event(const msgpack_object *m, struct proto_emit_view *out, char *why, size_t whylen);
/* A batch emit's `events` (NULL for a single event) and its `source` (NULL when absent or not
 * a fitting string). 0, or -1 with err when `events` is not a list of 1 to PROTO_EMIT_BATCH_MAX. */
int proto_unpack_emit_batch(const msgpack_object *body, const msgpack_object **events,
                            const msgpack_object **source, char *err, size_t errlen);
/* The reply `ok` {id, events?, groups, offset}: events 0 leaves it out (a single event),
 * offset -1 packs nil. */
void proto_pack_emit_reply(msgpack_packer *pk, const msgpack_object *id, size_t events, size_t groups,
                           int64_t offset);
/* The offset, or -1 when nil or absent. */
int64_t proto_unpack_emit_offset(const msgpack_object *body);

/* ---- coalesced (quiet) emits ---------------------------------------------------------- */
/* A client coalesces the events it emits without waiting into one
 * `emit {id, source, quiet: true, events: [...]}` (docs/protocol.md, "Coalescing"). The node
 * sends no `ok` for a quiet emit; it checks and emits each event on its own and answers only
 * the events it refused, with one `emit_refused`. The items are packed first (each with
 * proto_pack_emit_item_begin, its body, proto_pack_emit_item_end), the head when the count is
 * known: proto_pack_emit_batch_head, then the items' bytes as they are. */
void proto_pack_emit_batch_head(msgpack_packer *pk, int64_t id, const char *source, int quiet, size_t count);
/* An item {type, body, headers: {trace_id}, delay_ms} (source: the batch's). */
void proto_pack_emit_item_begin(msgpack_packer *pk, const struct proto_emit *e);
void proto_pack_emit_item_end(msgpack_packer *pk, const struct proto_emit *e);
/* 1 when the emit asks for no `ok` (quiet: true), else 0. */
int proto_unpack_emit_quiet(const msgpack_object *body);

/* `emit_refused` {id, events, refused: [{index, type, message}]}: of the `events` events the
 * quiet emit `id` carried, those it did not emit, by their 0-based index in `events` (0 for
 * an emit of one event), with their type (nil when it was not a string) and why. */
struct proto_emit_refusal {
    size_t index;
    const char *type;      /* NULL: not a string */
    size_t type_len;
    const char *message;   /* one line */
};
void proto_pack_emit_refused(msgpack_packer *pk, const msgpack_object *id, size_t events,
                             const struct proto_emit_refusal *refused, size_t count);
/* Client side: 0 with *events and the `refused` array, or -1 when the body does not fit. */
int proto_unpack_emit_refused(const msgpack_object *body, int64_t *events, const msgpack_object **refused);
/* One item of that array: 0, or -1 when it does not fit. type "" when nil. */
int proto_unpack_emit_refusal(const msgpack_object *item, int64_t *index, char *type, size_t typecap,
                              char *message, size_t messagecap);

/* ---- subscribe / unsubscribe ---------------------------------------------------------- */
enum proto_from { PROTO_FROM_RESUME, PROTO_FROM_OFFSET, PROTO_FROM_BEGINNING, PROTO_FROM_NOW };
struct proto_subscribe {
    const char *subscription;
    const char *const *patterns;
    size_t pattern_count;
    const char *group;     /* NULL: a group of its own */
    int broadcast;
    int64_t pid;
    int64_t prefetch;
    int64_t batch;         /* 0: not sent (the node's default, 1) */
    const char *stream;    /* NULL: new events; else the stream's pattern */
    const char *from;      /* with stream: an offset in digits, "beginning", "now" or "resume" */
};
void proto_pack_subscribe(msgpack_packer *pk, int64_t id, const struct proto_subscribe *s);
/* Node side, every field checked; strings copied into the view's buffers. */
struct proto_subscribe_view {
    char subscription[PROTO_SUBSCRIPTION_MAX + 1];
    const msgpack_object *patterns;   /* 1 to PROTO_PATTERNS_MAX valid patterns (strings) */
    char group[PROTO_NAME_MAX + 1];   /* "": none */
    int broadcast;                    /* also set when there is no group */
    int64_t pid, prefetch, batch;     /* prefetch out of range: the default; batch 1 when absent */
    int has_stream;
    char stream[PROTO_NAME_MAX + 1];
    int has_from;                     /* a from other than resume was given */
    enum proto_from from;
    int64_t from_offset;              /* with PROTO_FROM_OFFSET */
};
/* 0, or -1 with a line for an `error` reply. */
int proto_unpack_subscribe(const msgpack_object *body, struct proto_subscribe_view *out, char *err, size_t errlen);

/* `unsubscribe` {id, subscription}. */
void proto_pack_unsubscribe(msgpack_packer *pk, int64_t id, const char *subscription);
int proto_unpack_unsubscribe(const msgpack_object *body, char *subscription, size_t cap, char *err, size_t errlen);

/* ---- deliveries ----------------------------------------------------------------------- */
/* One delivered event; headers and body are already packed msgpack. */
struct proto_event {
    uint64_t delivery;     /* unique per node */
    int has_offset;
    uint64_t offset;       /* its place in a retained stream */
    const char *type, *source;
    const char *headers;   /* a packed map */
    size_t headers_len;
    const char *body;      /* a packed value */
    size_t body_len;
    int redelivered;
};
/* `event` {subscription, offset, delivery, type, headers, body, source, redelivered}. sb is
 * the buffer pk writes to (the packed parts go straight in). */
void proto_pack_event(msgpack_packer *pk, msgpack_sbuffer *sb, const char *subscription, const struct proto_event *ev);
/* `events` {subscription, events: [...]}: begin, then each item. */
void proto_pack_events_begin(msgpack_packer *pk, const char *subscription, size_t count);
void proto_pack_events_item(msgpack_packer *pk, msgpack_sbuffer *sb, const struct proto_event *ev);

/* A delivered event as a client reads it, in one pass over its map (the first value of each
 * key); pointers into `m`. delivery is -1 when missing or not a non-negative integer, offset
 * -1 when nil or absent (a new event, not one read from a stream); type and source NULL when
 * not strings. */
struct proto_event_view {
    int64_t delivery, offset;
    const msgpack_object *type, *source, *body, *headers;
    int redelivered;
};
void proto_unpack_event_view(const msgpack_object *m, struct proto_event_view *out);

/* `ack` / `nack` {id?, delivery} or {id?, deliveries: [...]}: id 0 is not sent. */
void proto_pack_settle(msgpack_packer *pk, int64_t id, const uint64_t *deliveries, size_t count);
/* Node side: the one delivery (a positive integer object, else NULL) or the list (an array,
 * else NULL); both NULL when neither fits. */
void proto_unpack_settle(const msgpack_object *body, const msgpack_object **delivery, const msgpack_object **list);

/* ---- bus_status ----------------------------------------------------------------------- */
struct proto_bus_stream {
    const char *pattern;
    int64_t first_offset, next_offset;
};
struct proto_bus_totals {
    int64_t emitted, delivered, dropped, delayed;
};
struct proto_bus_group {
    const char *name;
    const char *stream;    /* NULL for a group of new events */
    int64_t read_offset, committed_offset; /* -1 without a stream */
    int broadcast;
    int64_t members, queued, in_flight, delivered, dropped;
    int64_t paused;        /* connections paused because its queue is full */
};
/* {id, streams: [...], emitted, delivered, dropped, delayed, groups: [...]}, as a stream:
 * head, each stream, totals (with the groups' count), then per group: group, its patterns. */
void proto_pack_bus_status_head(msgpack_packer *pk, const msgpack_object *id, size_t stream_count);
void proto_pack_bus_status_stream(msgpack_packer *pk, const struct proto_bus_stream *s);
void proto_pack_bus_status_totals(msgpack_packer *pk, const struct proto_bus_totals *t, size_t group_count);
void proto_pack_bus_status_group(msgpack_packer *pk, const struct proto_bus_group *g, const char *const *patterns,
                                 size_t pattern_count);
/* Client side: next_offset of the stream `pattern`; and the committed offset of the group
 * `group` reading that stream (-1 when none or group is NULL). 0, or -1 when the node keeps no
 * such stream. */
int proto_unpack_bus_status_stream(const msgpack_object *body, const char *pattern, const char *group,
                                   int64_t *next_offset, int64_t *committed_offset);

#endif
