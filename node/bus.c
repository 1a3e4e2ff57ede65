/* bus: groups, members, queues and in-flight deliveries. Event payloads are kept as the
 * packed msgpack the emitter sent (headers, body), so delivering one is a copy of bytes,
 * never a re-encode. Every event is reference-counted by the queues and deliveries that
 * hold it; the last release frees it. */
#include "node/bus.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/journal.h"
#include "proto/streamrec.h"
#include "common/topic.h"
#include "common/xalloc.h"

#define BUS_MAX_PATTERNS PROTO_PATTERNS_MAX
#define BUS_NAME_MAX PROTO_NAME_MAX
#define BUS_COMMIT_INTERVAL_MS 200
#define BUS_STREAM_OFFSETS_MAX 4096

struct bus_event {
    unsigned refs;
    int size_class;      /* its pool's class, or EVENT_UNPOOLED */
    struct bus_event *next_free; /* while in its pool */
    uint64_t offset;     /* journal offset, for events replayed from a retained stream */
    int has_offset;
    const char *type;    /* these four point into data[] */
    const char *source;
    const char *headers; /* packed msgpack map */
    size_t headers_len;
    const char *body;    /* packed msgpack value */
    size_t body_len;
    char data[];
};

/* Released event records are kept for reuse by size class (data of 256 B, 512 B, ... 8 KiB),
 * up to EVENT_POOL_KEEP_BYTES per class, so the emit -> deliver -> ack path allocates nothing
 * once it runs. Larger events are allocated and freed each time. bus_close frees the pool
 * after every holder released its events, so a leak still shows. */
#define EVENT_POOL_CLASSES 6
#define EVENT_POOL_MIN_DATA 256
#define EVENT_POOL_KEEP_BYTES (8u << 20)
#define EVENT_UNPOOLED (-1)

struct bus_event_pool {
    struct bus_event *free[EVENT_POOL_CLASSES];
    size_t kept[EVENT_POOL_CLASSES];
};

struct bus_pending {
    struct bus_event *event;
    int redelivered;
};

struct bus_member {
    struct bus_group *group;
    unsigned batch;                  /* events per message; 1 sends `event`, more `events` */
    char subscription[65];
    unsigned char routing[WIRE_IDENTITY_MAX];
    size_t routing_len;
    pid_t pid;
    unsigned prefetch;
    unsigned in_flight;
    uint64_t last_seen_ms;
    int unreachable;                 /* its connection is gone: skipped, then dropped */
};

struct bus_group {
    char *name;
    int broadcast;                   /* a group of one member; goes with it */
    char *patterns[BUS_MAX_PATTERNS];
    size_t pattern_count;
    struct bus_pending *queue;       /* ring buffer */
    size_t head, count, cap;
    struct bus_member **members;
    size_t member_count, member_cap;
    size_t next_member;              /* round robin */
    size_t batch_sum;                /* the members' batch sizes added: what one round sends */
    int dispatch_pending;            /* touched while dispatching was held */
    struct {                         /* connections paused because this queue is full */
        unsigned char routing[WIRE_IDENTITY_MAX];
        size_t routing_len;
    } *paused;
    size_t paused_count, paused_cap;
    uint64_t paused_since_ms;
    int pausing_gave_up;             /* paused BUS_PAUSE_MAX_MS in vain: drops until half empty */
    uint64_t delivered, dropped;
    uint64_t dropped_reported;
    uint64_t last_drop_report_ms;
    /* A stream group reads a retained stream's journal instead of a queue of new events;
     * the queue only holds events handed back for redelivery. */
    struct bus_stream *stream;
    struct journal_reader *reader;
    uint64_t read_next;              /* next journal offset to read */
    uint64_t *unacked;               /* offsets delivered and not acked, ascending */
    size_t unacked_count, unacked_cap;
    uint64_t committed;              /* every offset below this is handled */
};

/* One retained stream: its journal and the committed offset of each named group. */
struct bus_stream {
    char *pattern;
    struct journal *journal;
    char offsets_path[4200];
    struct {
        char *group;
        uint64_t committed;
    } offsets[BUS_STREAM_OFFSETS_MAX];
    size_t offset_count;
    int offsets_dirty;
    int sync_pending;
};

struct bus_delivery {
    uint64_t tag;                    /* 0 = empty slot */
    struct bus_event *event;
    struct bus_member *member;
    int redelivered;
};

struct bus_delivery_table {
    struct bus_delivery *slots;      /* open addressing, linear probing */
    size_t cap;                      /* a power of two */
    size_t count;
};

/* ---- events ---------------------------------------------------------------------------- */

static size_t event_class_data(int size_class)
{
    return (size_t)EVENT_POOL_MIN_DATA << size_class;
}

static void event_release(struct bus_event_pool *pool, struct bus_event *ev)
{
    if (--ev->refs != 0)
        return;
    int c = ev->size_class;
    if (c == EVENT_UNPOOLED || (pool->kept[c] + 1) * event_class_data(c) > EVENT_POOL_KEEP_BYTES) {
        free(ev);
        return;
    }
    ev->next_free = pool->free[c];
    pool->free[c] = ev;
    pool->kept[c]++;
}

static struct bus_event *event_alloc(struct bus_event_pool *pool, size_t data_len)
{
    for (int c = 0; c < EVENT_POOL_CLASSES; c++) {
        if (data_len > event_class_data(c))
            continue;
        struct bus_event *ev = pool->free[c];
        if (ev) {
            pool->free[c] = ev->next_free;
            pool->kept[c]--;
        } else {
            ev = xmalloc(sizeof *ev + event_class_data(c));
            ev->size_class = c;
        }
        return ev;
    }
    struct bus_event *ev = xmalloc(sizeof *ev + data_len);
    ev->size_class = EVENT_UNPOOLED;
    return ev;
}

static void event_pool_free(struct bus_event_pool *pool)
{
    for (int c = 0; c < EVENT_POOL_CLASSES; c++) {
        while (pool->free[c]) {
            struct bus_event *ev = pool->free[c];
            pool->free[c] = ev->next_free;
            free(ev);
        }
        pool->kept[c] = 0;
    }
}

/* One record per event: its type, source and packed headers and body follow the struct.
 * `scratch` is only used while packing. Absent headers become an empty map, an absent body nil. */
/* A new event of headers and body as msg carried them: their packed bytes are copied straight
 * from the received frame when they can be found there (msg non-NULL), else packed again. */
static struct bus_event *event_new(struct bus *bus, const char *type, size_t type_len, const char *source,
                                   size_t source_len, const msgpack_object *headers, const msgpack_object *body,
                                   const struct wire_msg *msg)
{
    msgpack_sbuffer *scratch = &bus->event_scratch;
    msgpack_sbuffer_clear(scratch);
    msgpack_packer pk;
    msgpack_packer_init(&pk, scratch, msgpack_sbuffer_write);
    const char *raw;
    size_t raw_len;
    if (!headers || headers->type == MSGPACK_OBJECT_NIL)
        msgpack_pack_map(&pk, 0);
    else if (msg && wire_value_bytes(msg, headers, &raw, &raw_len) == 0)
        msgpack_sbuffer_write(scratch, raw, raw_len);
    else
        msgpack_pack_object(&pk, *headers);
    size_t headers_len = scratch->size;
    if (!body)
        msgpack_pack_nil(&pk);
    else if (msg && wire_value_bytes(msg, body, &raw, &raw_len) == 0)
        msgpack_sbuffer_write(scratch, raw, raw_len);
    else
        msgpack_pack_object(&pk, *body);
    struct bus_event *ev = event_alloc(bus->event_pool, type_len + 1 + source_len + 1 + scratch->size);
    char *p = ev->data;
    memcpy(p, type, type_len);
    p[type_len] = '\0';
    ev->type = p;
    p += type_len + 1;
    memcpy(p, source, source_len);
    p[source_len] = '\0';
    ev->source = p;
    p += source_len + 1;
    memcpy(p, scratch->data, scratch->size);
    ev->headers = p;
    ev->headers_len = headers_len;
    ev->body = p + headers_len;
    ev->body_len = scratch->size - headers_len;
    ev->refs = 0;
    ev->offset = 0;
    ev->has_offset = 0;
    return ev;
}

/* ---- delivery table -------------------------------------------------------------------- */

static size_t slot_of(const struct bus_delivery_table *t, uint64_t tag)
{
    return (size_t)(tag * 0x9e3779b97f4a7c15ull) & (t->cap - 1);
}

static void table_insert(struct bus_delivery_table *t, struct bus_delivery d);

static void table_grow(struct bus_delivery_table *t)
{
    struct bus_delivery *old = t->slots;
    size_t old_cap = t->cap;
    t->cap = old_cap ? old_cap * 2 : 1024;
    t->slots = xcalloc(t->cap, sizeof *t->slots);
    t->count = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].tag)
            table_insert(t, old[i]);
    free(old);
}

static void table_insert(struct bus_delivery_table *t, struct bus_delivery d)
{
    if ((t->count + 1) * 2 > t->cap)
        table_grow(t);
    size_t i = slot_of(t, d.tag);
    while (t->slots[i].tag)
        i = (i + 1) & (t->cap - 1);
    t->slots[i] = d;
    t->count++;
}

/* Removes and returns the delivery with `tag`; tag 0 in the result when absent. */
static struct bus_delivery table_take(struct bus_delivery_table *t, uint64_t tag)
{
    struct bus_delivery none = {0};
    if (!t->cap || !tag)
        return none;
    size_t i = slot_of(t, tag);
    while (t->slots[i].tag && t->slots[i].tag != tag)
        i = (i + 1) & (t->cap - 1);
    if (!t->slots[i].tag)
        return none;
    struct bus_delivery found = t->slots[i];
    t->slots[i].tag = 0;
    t->count--;
    /* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & (t->cap - 1);
        if (!t->slots[j].tag)
            break;
        size_t home = slot_of(t, t->slots[j].tag);
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (between)
            continue;
        t->slots[i] = t->slots[j];
        t->slots[j].tag = 0;
        i = j;
    }
    return found;
}

/* ---- queues ---------------------------------------------------------------------------- */

static int queue_push(struct bus_group *g, struct bus_pending p, int front)
{
    if (g->count == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        struct bus_pending *q = xmalloc(cap * sizeof *q);
        for (size_t i = 0; i < g->count; i++)
            q[i] = g->queue[(g->head + i) % g->cap];
        free(g->queue);
        g->queue = q;
        g->head = 0;
        g->cap = cap;
    }
    if (front) {
        g->head = (g->head + g->cap - 1) % g->cap;
        g->queue[g->head] = p;
    } else {
        g->queue[(g->head + g->count) % g->cap] = p;
    }
    g->count++;
    return 0;
}

static struct bus_pending queue_pop(struct bus_group *g)
{
    struct bus_pending p = g->queue[g->head];
    g->head = (g->head + 1) % g->cap;
    g->count--;
    return p;
}

/* ---- delivery -------------------------------------------------------------------------- */

static struct proto_event delivered(const struct bus_event *ev, uint64_t tag, int redelivered)
{
    return (struct proto_event){.delivery = tag,
                                .has_offset = ev->has_offset,
                                .offset = ev->offset,
                                .type = ev->type,
                                .source = ev->source,
                                .headers = ev->headers,
                                .headers_len = ev->headers_len,
                                .body = ev->body,
                                .body_len = ev->body_len,
                                .redelivered = redelivered};
}

/* Sends `count` events to m, with tags first_tag, first_tag + 1, ...: one `event` message
 * when the member asked for no batches, else one `events` message. */
static int send_events(struct bus *bus, struct bus_member *m, const struct bus_pending *events, size_t count,
                       uint64_t first_tag)
{
    msgpack_sbuffer_clear(&bus->scratch);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &bus->scratch, msgpack_sbuffer_write);
    if (m->batch <= 1) {
        struct proto_event ev = delivered(events[0].event, first_tag, events[0].redelivered);
        proto_pack_event(&pk, &bus->scratch, m->subscription, &ev);
    } else {
        proto_pack_events_begin(&pk, m->subscription, count);
        for (size_t i = 0; i < count; i++) {
            struct proto_event ev = delivered(events[i].event, first_tag + i, events[i].redelivered);
            proto_pack_events_item(&pk, &bus->scratch, &ev);
        }
    }
    struct wire_body body = {.sbuf = bus->scratch};
    return control_send(bus->ctl, m->routing, m->routing_len, m->batch <= 1 ? PROTO_EVENT : PROTO_EVENTS, &body);
}

static void group_report_drops(struct bus *bus, struct bus_group *g)
{
    uint64_t now = uv_now(bus->loop);
    if (g->dropped == g->dropped_reported || now - g->last_drop_report_ms < 1000)
        return;
    loghub_node_line(bus->hub, getpid(), LOG_LEVEL_WARNING,
                     "event queue of %s is full (%d events): %llu event%s dropped", g->name, BUS_QUEUE_CAP,
                     (unsigned long long)(g->dropped - g->dropped_reported),
                     g->dropped - g->dropped_reported == 1 ? "" : "s");
    g->dropped_reported = g->dropped;
    g->last_drop_report_ms = now;
}


/* ---- retained streams ------------------------------------------------------------------- */

static struct bus_event *event_from_record(struct bus *bus, const void *payload, size_t len, uint64_t offset)
{
    struct streamrec rec;
    if (streamrec_unpack(&rec, payload, len) < 0)
        return NULL;
    struct bus_event *ev = event_new(bus, rec.type->via.str.ptr, rec.type->via.str.size,
                                     rec.source->via.str.ptr, rec.source->via.str.size, rec.headers, rec.body, NULL);
    ev->offset = offset;
    ev->has_offset = 1;
    streamrec_free(&rec);
    return ev;
}

static int group_matches(const struct bus_group *g, const char *type)
{
    for (size_t k = 0; k < g->pattern_count; k++)
        if (topic_match(g->patterns[k], type))
            return 1;
    return 0;
}

static void stream_group_update_commit(struct bus_group *g)
{
    uint64_t c = g->unacked_count ? g->unacked[0] : g->read_next;
    if (c != g->committed) {
        g->committed = c;
        if (!g->broadcast)
            g->stream->offsets_dirty = 1;
    }
}

static void unacked_remove(struct bus_group *g, uint64_t offset)
{
    for (size_t i = 0; i < g->unacked_count; i++) {
        if (g->unacked[i] == offset) {
            memmove(&g->unacked[i], &g->unacked[i + 1], (g->unacked_count - i - 1) * sizeof *g->unacked);
            g->unacked_count--;
            return;
        }
    }
}

/* Reads the stream's next record that this group wants into its queue. Returns 1 when one
 * was queued, 0 at the end of the journal. */
static int stream_group_fill(struct bus *bus, struct bus_group *g)
{
    for (;;) {
        uint64_t offset;
        const void *payload;
        size_t len;
        int rc = journal_reader_next(g->reader, &offset, &payload, &len);
        if (rc <= 0)
            return 0;
        g->read_next = offset + 1;
        struct bus_event *ev = event_from_record(bus, payload, len, offset);
        if (!ev || !group_matches(g, ev->type)) {
            if (ev) {
                ev->refs = 1;
                event_release(bus->event_pool, ev);
            }
            stream_group_update_commit(g);
            continue;
        }
        if (g->unacked_count == g->unacked_cap) {
            g->unacked_cap = g->unacked_cap ? g->unacked_cap * 2 : 64;
            g->unacked = xrealloc(g->unacked, g->unacked_cap * sizeof *g->unacked);
        }
        g->unacked[g->unacked_count++] = offset;
        ev->refs = 1;
        queue_push(g, (struct bus_pending){ev, 0}, 0);
        return 1;
    }
}

static uint64_t *stream_stored_offset(struct bus_stream *st, const char *group)
{
    for (size_t i = 0; i < st->offset_count; i++)
        if (strcmp(st->offsets[i].group, group) == 0)
            return &st->offsets[i].committed;
    return NULL;
}

static void stream_load_offsets(struct bus_stream *st)
{
    FILE *f = fopen(st->offsets_path, "re");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f) && st->offset_count < BUS_STREAM_OFFSETS_MAX) {
        /* "<committed> <group>\n": the group is the rest of the line, spaces and all. */
        char *end;
        unsigned long long committed = strtoull(line, &end, 10);
        if (end == line || *end != ' ')
            continue;
        char *group = end + 1;
        group[strcspn(group, "\n")] = '\0';
        if (!*group)
            continue;
        st->offsets[st->offset_count].group = xstrdup(group);
        st->offsets[st->offset_count].committed = committed;
        st->offset_count++;
    }
    fclose(f);
}

/* Writes the committed offsets of the stream's named groups (temp file + rename, so a
 * crash leaves the old file or the new one, never half of one). */
static void stream_save_offsets(struct bus *bus, struct bus_stream *st)
{
    for (size_t i = 0; i < bus->group_count; i++) {
        struct bus_group *g = bus->groups[i];
        if (g->stream != st || g->broadcast)
            continue;
        uint64_t *known = stream_stored_offset(st, g->name);
        if (known) {
            *known = g->committed;
        } else if (st->offset_count < BUS_STREAM_OFFSETS_MAX) {
            st->offsets[st->offset_count].group = xstrdup(g->name);
            st->offsets[st->offset_count].committed = g->committed;
            st->offset_count++;
        }
    }
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", st->offsets_path);
    FILE *f = fopen(tmp, "we");
    if (!f)
        return;
    for (size_t i = 0; i < st->offset_count; i++)
        fprintf(f, "%llu %s\n", (unsigned long long)st->offsets[i].committed, st->offsets[i].group);
    if (fflush(f) == 0 && fdatasync(fileno(f)) == 0 && fclose(f) == 0)
        rename(tmp, st->offsets_path);
    else
        unlink(tmp);
    st->offsets_dirty = 0;
}

static void bus_on_commit_timer(uv_timer_t *timer)
{
    struct bus *bus = timer->data;
    for (size_t i = 0; i < bus->stream_count; i++) {
        struct bus_stream *st = &bus->streams[i];
        if (st->sync_pending) {
            journal_sync(st->journal);
            st->sync_pending = 0;
        }
        if (st->offsets_dirty)
            stream_save_offsets(bus, st);
    }
}

static struct bus_stream *bus_find_stream(struct bus *bus, const char *pattern)
{
    for (size_t i = 0; i < bus->stream_count; i++)
        if (strcmp(bus->streams[i].pattern, pattern) == 0)
            return &bus->streams[i];
    return NULL;
}

/* Points a stream group at `start` (dropping what it had queued). */
static void stream_group_seek(struct bus *bus, struct bus_group *g, uint64_t start)
{
    while (g->count > 0)
        event_release(bus->event_pool, queue_pop(g).event);
    g->unacked_count = 0;
    journal_reader_close(g->reader);
    g->reader = NULL;
    uint64_t first = journal_first_offset(g->stream->journal), next = journal_next_offset(g->stream->journal);
    if (start < first)
        start = first;
    if (start > next)
        start = next;
    if (journal_reader_open(g->stream->journal, start, &g->reader) < 0)
        g->reader = NULL;
    g->read_next = g->committed = start;
}

/* ---- flow control ----------------------------------------------------------------------- */
/* A queue at BUS_QUEUE_CAP with a member to drain it pauses the connections that emit into it
 * (control keeps their messages, in order) instead of dropping; they resume at half of it, when
 * the last member goes, or after BUS_PAUSE_MAX_MS so that no cycle of services waiting on each
 * other's queues can stall. A group without a live member drops past BUS_QUEUE_CAP, as no one
 * may come to drain it. */

static int group_has_live_member(const struct bus_group *g)
{
    for (size_t i = 0; i < g->member_count; i++)
        if (!g->members[i]->unreachable)
            return 1;
    return 0;
}

static size_t group_queue_limit(const struct bus_group *g)
{
    return group_has_live_member(g) ? BUS_QUEUE_HARD_CAP : BUS_QUEUE_CAP;
}

static int group_has_routing(const struct bus_group *g, const void *routing, size_t len)
{
    for (size_t i = 0; i < g->member_count; i++)
        if (g->members[i]->routing_len == len && memcmp(g->members[i]->routing, routing, len) == 0)
            return 1;
    return 0;
}

static void group_resume_emitters(struct bus *bus, struct bus_group *g)
{
    for (size_t i = 0; i < g->paused_count; i++) {
        /* another full group may hold the same connection: it stays paused for that one */
        int held = 0;
        for (size_t k = 0; k < bus->group_count && !held; k++) {
            const struct bus_group *o = bus->groups[k];
            for (size_t j = 0; o != g && j < o->paused_count && !held; j++)
                held = o->paused[j].routing_len == g->paused[i].routing_len &&
                       memcmp(o->paused[j].routing, g->paused[i].routing, g->paused[i].routing_len) == 0;
        }
        if (!held)
            control_resume(bus->ctl, g->paused[i].routing, g->paused[i].routing_len);
    }
    g->paused_count = 0;
}

/* After an emit message from `msg`'s connection: pauses it on every full group it may fill. */
static void bus_pause_if_full(struct bus *bus, const struct wire_msg *msg)
{
    for (size_t i = 0; i < bus->group_count; i++) {
        struct bus_group *g = bus->groups[i];
        if (g->count < BUS_QUEUE_CAP || g->pausing_gave_up || !group_has_live_member(g) ||
            group_has_routing(g, msg->identity, msg->identity_len)) /* it must stay free to ack */
            continue;
        int known = 0;
        for (size_t k = 0; k < g->paused_count && !known; k++)
            known = g->paused[k].routing_len == msg->identity_len &&
                    memcmp(g->paused[k].routing, msg->identity, msg->identity_len) == 0;
        if (known)
            continue;
        if (g->paused_count == g->paused_cap) {
            g->paused_cap = g->paused_cap ? g->paused_cap * 2 : 4;
            g->paused = xrealloc(g->paused, g->paused_cap * sizeof *g->paused);
        }
        if (g->paused_count == 0)
            g->paused_since_ms = uv_now(bus->loop);
        memcpy(g->paused[g->paused_count].routing, msg->identity, msg->identity_len);
        g->paused[g->paused_count].routing_len = msg->identity_len;
        g->paused_count++;
        control_pause(bus->ctl, msg->identity, msg->identity_len);
    }
}

static void group_dispatch_now(struct bus *bus, struct bus_group *g);

static void group_dispatch(struct bus *bus, struct bus_group *g)
{
    group_dispatch_now(bus, g);
    if (g->count < BUS_QUEUE_CAP / 2)
        g->pausing_gave_up = 0;
    if (g->paused_count && (g->count < BUS_QUEUE_CAP / 2 || !group_has_live_member(g)))
        group_resume_emitters(bus, g);
}

/* Reads a stream group's journal until its queue holds n events or the journal has no more;
 * returns how many are queued (a group of new events just has what it has). */
static size_t group_fill_to(struct bus *bus, struct bus_group *g, size_t n)
{
    while (g->count < n && g->stream && g->reader && stream_group_fill(bus, g))
        ;
    return g->count;
}

/* Silly-window avoidance (TCP's, for deliveries): a member that holds more than one full
 * message's worth of events, min(batch, half its prefetch), is sent only full messages.
 * Otherwise a member whose prefetch once filled with small messages (a trickle of emits)
 * would free a little room at each ack and be sent as little again: one event per message for
 * good. It loses nothing by waiting, as it has work in hand and its ack comes before it would
 * reach these events; a member holding less gets what is queued at once, so no one idles. */
static int member_takes_now(struct bus *bus, struct bus_group *g, const struct bus_member *m, size_t room)
{
    size_t full = m->batch < (m->prefetch + 1) / 2 ? m->batch : (m->prefetch + 1) / 2;
    if (m->in_flight <= full)
        return 1;
    return room >= full && group_fill_to(bus, g, full) >= full;
}

/* Hands queued events to members with room, round robin: each turn gives one member as
 * many as its batch size and its room allow, in one message. While dispatching is held (the
 * messages of one control turn, or one emitted batch, are being handled) a group waits for
 * the end, so the events of a turn travel together; but only until its queue holds a full
 * round for its members, since waiting longer would not fill a message more and the queue is
 * bounded. */
static void group_dispatch_now(struct bus *bus, struct bus_group *g)
{
    if (bus->dispatch_holds) {
        g->dispatch_pending = 1;
        if (g->count < g->batch_sum || g->member_count == 0)
            return;
    }
    size_t failed_sends = 0;
    while (g->member_count > 0 && failed_sends < g->member_count) {
        if (group_fill_to(bus, g, 1) == 0)
            return;
        struct bus_member *m = NULL;
        size_t want = 0;
        for (size_t tries = 0; tries < g->member_count && !m; tries++) {
            struct bus_member *cand = g->members[(g->next_member + tries) % g->member_count];
            if (cand->unreachable || cand->in_flight >= cand->prefetch)
                continue;
            want = cand->prefetch - cand->in_flight;
            if (want > cand->batch)
                want = cand->batch;
            if (!member_takes_now(bus, g, cand, want))
                continue;
            m = cand;
            g->next_member = (g->next_member + tries + 1) % g->member_count;
        }
        if (!m)
            return;
        size_t count = group_fill_to(bus, g, want) < want ? g->count : want;
        for (size_t i = 0; i < count; i++)
            bus->batch_buf[i] = queue_pop(g);
        uint64_t first_tag = bus->next_tag + 1;
        bus->next_tag += count;
        int rc = send_events(bus, m, bus->batch_buf, count, first_tag);
        if (rc < 0) {
            /* Its queue is full (try others, and it again on the next ack or emit) or its
             * connection is gone (skip it until expiry drops it): the events stay queued,
             * in their order. */
            for (size_t i = count; i-- > 0;)
                queue_push(g, bus->batch_buf[i], 1);
            if (rc == -EHOSTUNREACH)
                m->unreachable = 1;
            failed_sends++;
            continue;
        }
        m->in_flight += (unsigned)count;
        for (size_t i = 0; i < count; i++)
            table_insert(bus->deliveries, (struct bus_delivery){first_tag + i, bus->batch_buf[i].event, m,
                                                                bus->batch_buf[i].redelivered});
    }
}

/* Starts a batch: dispatching waits for the matching bus_end_batch. Batches nest (an emitted
 * batch inside a control turn); the outermost end dispatches. */
static void bus_begin_batch(struct bus *bus)
{
    bus->dispatch_holds++;
}

static void bus_end_batch(struct bus *bus)
{
    if (--bus->dispatch_holds > 0)
        return;
    for (size_t i = 0; i < bus->group_count; i++) {
        struct bus_group *g = bus->groups[i];
        if (g->dispatch_pending) {
            g->dispatch_pending = 0;
            group_dispatch(bus, g);
        }
    }
}

/* The control turn hooks: a turn's emits and acks are dispatched once, at its end. */
static void bus_on_turn_begin(void *ctx)
{
    bus_begin_batch(ctx);
}

static void bus_on_turn_end(void *ctx)
{
    bus_end_batch(ctx);
}

/* Routes a new event to every group whose patterns match; returns how many. */
static size_t bus_route(struct bus *bus, struct bus_event *ev)
{
    size_t groups = 0;
    ev->refs++; /* held while routing */
    for (size_t i = 0; i < bus->group_count; i++) {
        struct bus_group *g = bus->groups[i];
        if (g->stream || !group_matches(g, ev->type))
            continue;
        if (g->count >= group_queue_limit(g) || queue_push(g, (struct bus_pending){ev, 0}, 0) < 0) {
            g->dropped++;
            bus->dropped++;
            group_report_drops(bus, g);
            continue;
        }
        ev->refs++;
        groups++;
        group_dispatch(bus, g);
    }
    bus->emitted++;
    event_release(bus->event_pool, ev);
    return groups;
}

/* Appends the event to every retained stream whose pattern matches and wakes their groups.
 * *offset: its offset in the last such stream (-1 when none retains it). */
static int bus_journal_event(struct bus *bus, struct bus_event *ev, int64_t *offset, char *why, size_t whylen)
{
    *offset = -1;
    for (size_t i = 0; i < bus->stream_count; i++) {
        struct bus_stream *st = &bus->streams[i];
        if (!topic_match(st->pattern, ev->type))
            continue;
        msgpack_sbuffer_clear(&bus->scratch);
        streamrec_pack(&bus->scratch, ev->type, ev->source, ev->headers, ev->headers_len, ev->body,
                       ev->body_len, loghub_wall_ns());
        uint64_t off;
        int rc = journal_append(st->journal, bus->scratch.data, bus->scratch.size, &off);
        if (rc < 0) {
            snprintf(why, whylen, "cannot keep the event in stream %s: %s", st->pattern, strerror(-rc));
            return -1;
        }
        st->sync_pending = 1;
        *offset = (int64_t)off;
        for (size_t k = 0; k < bus->group_count; k++)
            if (bus->groups[k]->stream == st)
                group_dispatch(bus, bus->groups[k]);
    }
    return 0;
}

/* ---- delayed events -------------------------------------------------------------------- */

static int delayed_before(const struct bus_delayed *a, const struct bus_delayed *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->order < b->order);
}

static void delayed_push(struct bus *bus, struct bus_delayed d)
{
    if (bus->delayed_count == bus->delayed_cap) {
        bus->delayed_cap = bus->delayed_cap ? bus->delayed_cap * 2 : 64;
        bus->delayed = xrealloc(bus->delayed, bus->delayed_cap * sizeof *bus->delayed);
    }
    size_t i = bus->delayed_count++;
    bus->delayed[i] = d;
    while (i > 0 && delayed_before(&bus->delayed[i], &bus->delayed[(i - 1) / 2])) {
        struct bus_delayed tmp = bus->delayed[i];
        bus->delayed[i] = bus->delayed[(i - 1) / 2];
        bus->delayed[(i - 1) / 2] = tmp;
        i = (i - 1) / 2;
    }
}

static struct bus_delayed delayed_pop(struct bus *bus)
{
    struct bus_delayed top = bus->delayed[0];
    bus->delayed[0] = bus->delayed[--bus->delayed_count];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < bus->delayed_count && delayed_before(&bus->delayed[l], &bus->delayed[m]))
            m = l;
        if (r < bus->delayed_count && delayed_before(&bus->delayed[r], &bus->delayed[m]))
            m = r;
        if (m == i)
            break;
        struct bus_delayed tmp = bus->delayed[i];
        bus->delayed[i] = bus->delayed[m];
        bus->delayed[m] = tmp;
        i = m;
    }
    return top;
}

static void bus_on_delay_timer(uv_timer_t *timer);

static void bus_arm_delay_timer(struct bus *bus)
{
    if (bus->delayed_count == 0)
        return;
    uint64_t now = uv_now(bus->loop), due = bus->delayed[0].due_ms;
    uv_timer_start(&bus->delay_timer, bus_on_delay_timer, due > now ? due - now : 0, 0);
}

static void bus_on_delay_timer(uv_timer_t *timer)
{
    struct bus *bus = timer->data;
    uint64_t now = uv_now(bus->loop);
    while (bus->delayed_count > 0 && bus->delayed[0].due_ms <= now) {
        struct bus_delayed d = delayed_pop(bus);
        int64_t offset;
        char why[300];
        if (bus_journal_event(bus, d.event, &offset, why, sizeof why) < 0)
            loghub_node_line(bus->hub, getpid(), LOG_LEVEL_ERROR, "delayed event %s: %s", d.event->type, why);
        bus_route(bus, d.event);
        event_release(bus->event_pool, d.event);
    }
    bus_arm_delay_timer(bus);
}

/* ---- members --------------------------------------------------------------------------- */

static void group_free(struct bus *bus, struct bus_group *g)
{
    group_resume_emitters(bus, g);
    free(g->paused);
    journal_reader_close(g->reader);
    free(g->unacked);
    while (g->count > 0)
        event_release(bus->event_pool, queue_pop(g).event);
    for (size_t i = 0; i < g->pattern_count; i++)
        free(g->patterns[i]);
    for (size_t i = 0; i < g->member_count; i++)
        free(g->members[i]);
    free(g->members);
    free(g->queue);
    free(g->name);
    free(g);
}

static void bus_remove_group(struct bus *bus, struct bus_group *g)
{
    for (size_t i = 0; i < bus->group_count; i++) {
        if (bus->groups[i] == g) {
            memmove(&bus->groups[i], &bus->groups[i + 1], (bus->group_count - i - 1) * sizeof *bus->groups);
            bus->group_count--;
            break;
        }
    }
    group_free(bus, g);
}

/* Takes a member out: its in-flight events go back to the front of its group's queue, in
 * their original order, marked redelivered. */
static void bus_remove_member(struct bus *bus, struct bus_member *m)
{
    struct bus_group *g = m->group;
    struct bus_delivery_table *t = bus->deliveries;
    size_t n = 0;
    struct bus_delivery *mine = xmalloc((m->in_flight ? m->in_flight : 1) * sizeof *mine);
    for (size_t i = 0; i < t->cap && n < m->in_flight; i++)
        if (t->slots[i].tag && t->slots[i].member == m)
            mine[n++] = t->slots[i];
    for (size_t i = 0; i < n; i++)
        table_take(t, mine[i].tag);
    /* newest first to the front, so the oldest ends up first */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (mine[j].tag > mine[i].tag) {
                struct bus_delivery tmp = mine[i];
                mine[i] = mine[j];
                mine[j] = tmp;
            }
    for (size_t i = 0; i < n; i++)
        queue_push(g, (struct bus_pending){mine[i].event, 1}, 1);
    free(mine);
    for (size_t i = 0; i < g->member_count; i++) {
        if (g->members[i] == m) {
            memmove(&g->members[i], &g->members[i + 1], (g->member_count - i - 1) * sizeof *g->members);
            g->member_count--;
            g->batch_sum -= m->batch;
            break;
        }
    }
    if (g->next_member >= g->member_count)
        g->next_member = 0;
    free(m);
    if (g->broadcast && g->member_count == 0) {
        bus_remove_group(bus, g);
        return;
    }
    group_dispatch(bus, g);
}

static struct bus_group *bus_find_group(struct bus *bus, const char *name)
{
    for (size_t i = 0; i < bus->group_count; i++)
        if (strcmp(bus->groups[i]->name, name) == 0)
            return bus->groups[i];
    return NULL;
}

static struct bus_member *bus_find_member(struct bus *bus, const void *routing, size_t routing_len,
                                          const char *subscription)
{
    for (size_t i = 0; i < bus->group_count; i++) {
        struct bus_group *g = bus->groups[i];
        for (size_t k = 0; k < g->member_count; k++) {
            struct bus_member *m = g->members[k];
            if (m->routing_len == routing_len && memcmp(m->routing, routing, routing_len) == 0 &&
                strcmp(m->subscription, subscription) == 0)
                return m;
        }
    }
    return NULL;
}

/* ---- handlers -------------------------------------------------------------------------- */

/* Emits one checked event: journaled (when due now and retained), then routed or scheduled.
 * Adds the groups it was queued for to *groups; *offset is its offset in a retained stream. */
static int emit_one(struct bus *bus, const struct wire_msg *msg, const struct proto_emit_view *f,
                    const msgpack_object *batch_source, size_t *groups, int64_t *offset, char *why, size_t whylen)
{
    const msgpack_object *src = f->source ? f->source : batch_source;
    struct bus_event *ev = event_new(bus, f->type->via.str.ptr, f->type->via.str.size,
                                     src ? src->via.str.ptr : "unknown", src ? src->via.str.size : 7, f->headers,
                                     f->body, msg);
    /* Retained first: an event is acknowledged only once its journal has it (a delayed
     * one is journaled when it is due, like it reaches everyone else then). */
    if (f->delay_ms > 0) {
        ev->refs = 1; /* held by the delay heap */
        /* The loop's clock was read when this turn began, maybe before the emit came: a delay
         * counted from it could end early by the length of the turn. */
        uv_update_time(bus->loop);
        delayed_push(bus, (struct bus_delayed){uv_now(bus->loop) + (uint64_t)f->delay_ms, bus->delayed_order++, ev});
        bus_arm_delay_timer(bus);
        return 0;
    }
    int64_t off = -1;
    if (bus_journal_event(bus, ev, &off, why, whylen) < 0) {
        ev->refs = 1;
        event_release(bus->event_pool, ev);
        return -1;
    }
    if (off >= 0)
        *offset = off;
    *groups += bus_route(bus, ev);
    return 0;
}

/* The events a quiet emit did not emit, for its one `emit_refused`. Allocated at the first
 * refusal only: the happy path allocates nothing. */
struct emit_refusals {
    struct proto_emit_refusal *items;
    char (*messages)[300];
    size_t count;
};

static void refusals_add(struct emit_refusals *r, size_t n, size_t index, const struct proto_emit_view *f,
                         const char *reason)
{
    if (!r->items) {
        r->items = xmalloc(n * sizeof *r->items);
        r->messages = xmalloc(n * sizeof *r->messages);
    }
    struct proto_emit_refusal *it = &r->items[r->count];
    snprintf(r->messages[r->count], sizeof r->messages[0], "%s", reason);
    it->index = index;
    it->message = r->messages[r->count];
    it->type = NULL;
    it->type_len = 0;
    if (f->type && f->type->type == MSGPACK_OBJECT_STR) {
        it->type = f->type->via.str.ptr;
        /* a refused type may be any length: echoed no longer than a name may be */
        it->type_len = f->type->via.str.size < PROTO_NAME_MAX ? f->type->via.str.size : PROTO_NAME_MAX;
    }
    r->count++;
}

/* A quiet emit (`quiet: true`, docs/protocol.md "Coalescing"): every event is checked and
 * emitted on its own, in order, so one bad event costs only itself; no `ok`, and one
 * `emit_refused` naming by index those that were not emitted, when there are any. */
static void emit_quiet(struct bus *bus, struct control *ctl, const struct wire_msg *msg,
                       const msgpack_object *batch, const msgpack_object *batch_source)
{
    size_t n = batch ? batch->via.array.size : 1, groups = 0;
    int64_t offset = -1;
    struct emit_refusals refused = {0};
    char reason[300];
    bus_begin_batch(bus);
    for (size_t i = 0; i < n; i++) {
        struct proto_emit_view f;
        if (proto_unpack_emit_event(batch ? &batch->via.array.ptr[i] : msg->body, &f, reason, sizeof reason) < 0 ||
            emit_one(bus, msg, &f, batch_source, &groups, &offset, reason, sizeof reason) < 0)
            refusals_add(&refused, n, i, &f, reason);
    }
    bus_end_batch(bus);
    bus_pause_if_full(bus, msg);
    if (refused.count) {
        msgpack_sbuffer_clear(&bus->reply.sbuf);
        proto_pack_emit_refused(&bus->reply.pk, proto_request_id(msg->body), n, refused.items, refused.count);
        control_reply(ctl, msg, PROTO_EMIT_REFUSED, &bus->reply);
        free(refused.items);
        free(refused.messages);
    }
}

/* `emit` carries one event, or a batch in `events` that is checked whole before any of it
 * is emitted, and answered with one reply; or, quiet, events emitted one by one. */
static void handle_emit(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct bus *bus = ctx;
    char why[400], reason[300];
    struct proto_emit_view f;
    const msgpack_object *batch, *batch_source;
    size_t n = 1;
    if (proto_unpack_emit_batch(msg->body, &batch, &batch_source, why, sizeof why) < 0) {
        control_reply_error(ctl, msg, why);
        return;
    }
    if (proto_unpack_emit_quiet(msg->body)) {
        emit_quiet(bus, ctl, msg, batch, batch_source);
        return;
    }
    if (batch) {
        n = batch->via.array.size;
        for (size_t i = 0; i < n; i++) {
            if (proto_unpack_emit_event(&batch->via.array.ptr[i], &bus->emit_views[i], reason, sizeof reason) < 0) {
                snprintf(why, sizeof why, "emit: event %zu of %zu: %s", i + 1, n, reason);
                control_reply_error(ctl, msg, why);
                return;
            }
        }
    } else if (proto_unpack_emit_event(msg->body, &f, reason, sizeof reason) < 0) {
        snprintf(why, sizeof why, "emit: %s", reason);
        control_reply_error(ctl, msg, why);
        return;
    }
    size_t groups = 0;
    int64_t offset = -1;
    if (batch)
        bus_begin_batch(bus);
    for (size_t i = 0; i < n; i++) {
        if (emit_one(bus, msg, batch ? &bus->emit_views[i] : &f, batch_source, &groups, &offset, reason,
                     sizeof reason) < 0) {
            if (batch) {
                bus_end_batch(bus);
                snprintf(why, sizeof why, "emit: %s (event %zu of %zu; the %zu before it were emitted)", reason, i + 1,
                         n, i);
            } else {
                snprintf(why, sizeof why, "emit: %s", reason);
            }
            control_reply_error(ctl, msg, why);
            return;
        }
    }
    if (batch)
        bus_end_batch(bus);
    bus_pause_if_full(bus, msg);
    msgpack_sbuffer_clear(&bus->reply.sbuf);
    proto_pack_emit_reply(&bus->reply.pk, proto_request_id(msg->body), batch ? n : 0, groups, offset);
    control_reply(ctl, msg, PROTO_OK, &bus->reply);
}

static void handle_subscribe(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct bus *bus = ctx;
    struct proto_subscribe_view req;
    char err[300];
    if (proto_unpack_subscribe(msg->body, &req, err, sizeof err) < 0) {
        control_reply_error(ctl, msg, err);
        return;
    }
    const char *subscription = req.subscription, *group_name = req.group;
    const msgpack_object *patterns = req.patterns;
    int broadcast = req.broadcast;
    if (bus_find_member(bus, msg->identity, msg->identity_len, subscription)) {
        control_reply_error(ctl, msg, "subscribe: this connection already has that subscription");
        return;
    }
    /* A stream subscription reads a retained stream from a chosen offset. */
    struct bus_stream *stream = NULL;
    if (req.has_stream && !(stream = bus_find_stream(bus, req.stream))) {
        control_reply_error(ctl, msg, "subscribe: stream must name a stream of `streams:` in .lymph.yml");
        return;
    }
    int has_from = req.has_from;
    int64_t from_offset = req.from == PROTO_FROM_OFFSET ? req.from_offset : -1;
    int64_t pid = req.pid, prefetch = req.prefetch, batch_size = req.batch;

    struct bus_group *g = NULL;
    if (broadcast) {
        /* A group of its own, named after the connection and subscription. */
        char name[BUS_NAME_MAX + 80];
        int n = snprintf(name, sizeof name, "~");
        for (size_t i = 0; i < msg->identity_len && n < 60; i++)
            n += snprintf(name + n, sizeof name - (size_t)n, "%02x", msg->identity[i]);
        snprintf(name + n, sizeof name - (size_t)n, ":%s", subscription);
        g = xcalloc(1, sizeof *g);
        g->name = xstrdup(name);
        g->broadcast = 1;
    } else {
        g = bus_find_group(bus, group_name);
        if (g && g->stream != stream) {
            control_reply_error(ctl, msg, stream ? "subscribe: that group already reads new events, not a stream"
                                                 : "subscribe: that group reads a stream: give its stream");
            return;
        }
        if (!g) {
            g = xcalloc(1, sizeof *g);
            g->name = xstrdup(group_name);
        }
    }
    if (stream && (!g->stream || (g->member_count == 0 && has_from))) {
        int fresh = !g->stream;
        g->stream = stream;
        uint64_t start = journal_next_offset(stream->journal);
        if (from_offset >= 0)
            start = (uint64_t)from_offset;
        else if (req.from == PROTO_FROM_BEGINNING)
            start = journal_first_offset(stream->journal);
        else if (!has_from && fresh && !g->broadcast) {
            uint64_t *stored = stream_stored_offset(stream, g->name);
            if (stored)
                start = *stored;
        }
        stream_group_seek(bus, g, start);
        if (!g->broadcast)
            stream->offsets_dirty = 1;
    }
    if (g->member_count == 0 && g->pattern_count == 0) {
        if (bus->group_count == bus->group_cap) {
            bus->group_cap = bus->group_cap ? bus->group_cap * 2 : 16;
            bus->groups = xrealloc(bus->groups, bus->group_cap * sizeof *bus->groups);
        }
        bus->groups[bus->group_count++] = g;
    }
    /* Patterns of a group are the union of its members' (instances of one service agree). */
    for (uint32_t i = 0; i < patterns->via.array.size; i++) {
        const msgpack_object *p = &patterns->via.array.ptr[i];
        int known = 0;
        for (size_t k = 0; k < g->pattern_count; k++)
            known |= strlen(g->patterns[k]) == p->via.str.size &&
                     memcmp(g->patterns[k], p->via.str.ptr, p->via.str.size) == 0;
        if (!known && g->pattern_count < BUS_MAX_PATTERNS)
            g->patterns[g->pattern_count++] = xstrndup(p->via.str.ptr, p->via.str.size);
    }
    struct bus_member *m = xcalloc(1, sizeof *m);
    m->group = g;
    snprintf(m->subscription, sizeof m->subscription, "%s", subscription);
    memcpy(m->routing, msg->identity, msg->identity_len);
    m->routing_len = msg->identity_len;
    m->pid = (pid_t)pid;
    m->prefetch = (unsigned)prefetch;
    m->batch = (unsigned)batch_size;
    m->last_seen_ms = uv_now(bus->loop);
    if (g->member_count == g->member_cap) {
        g->member_cap = g->member_cap ? g->member_cap * 2 : 8;
        g->members = xrealloc(g->members, g->member_cap * sizeof *g->members);
    }
    g->members[g->member_count++] = m;
    g->batch_sum += m->batch;
    control_reply_ok(ctl, msg);
    group_dispatch(bus, g);
}

static void handle_unsubscribe(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct bus *bus = ctx;
    char subscription[PROTO_SUBSCRIPTION_MAX + 1], err[160];
    if (proto_unpack_unsubscribe(msg->body, subscription, sizeof subscription, err, sizeof err) < 0) {
        control_reply_error(ctl, msg, err);
        return;
    }
    struct bus_member *m = bus_find_member(bus, msg->identity, msg->identity_len, subscription);
    if (m)
        bus_remove_member(bus, m);
    control_reply_ok(ctl, msg);
}

static void settle_one(struct bus *bus, const msgpack_object *tag_obj, int requeue)
{
    if (!tag_obj || tag_obj->type != MSGPACK_OBJECT_POSITIVE_INTEGER || tag_obj->via.u64 == 0)
        return;
    struct bus_delivery d = table_take(bus->deliveries, tag_obj->via.u64);
    if (!d.tag)
        return; /* already settled or its member was dropped: at-least-once allows this */
    struct bus_member *m = d.member;
    struct bus_group *g = m->group;
    m->in_flight--;
    if (requeue) {
        queue_push(g, (struct bus_pending){d.event, 1}, 1);
    } else {
        g->delivered++;
        bus->delivered++;
        if (g->stream && d.event->has_offset) {
            unacked_remove(g, d.event->offset);
            stream_group_update_commit(g);
        }
        event_release(bus->event_pool, d.event);
    }
    group_dispatch(bus, g);
}

/* `ack`/`nack` settle one `delivery`, or every one listed in `deliveries`. */
static void settle(struct bus *bus, const struct wire_msg *msg, int requeue)
{
    bus_touch(bus, msg->identity, msg->identity_len);
    const msgpack_object *one, *list;
    proto_unpack_settle(msg->body, &one, &list);
    if (one)
        settle_one(bus, one, requeue);
    if (!list)
        return;
    bus_begin_batch(bus);
    /* A nacked batch goes back to the front newest first, so it keeps its order. */
    for (uint32_t i = 0; i < list->via.array.size; i++)
        settle_one(bus, &list->via.array.ptr[requeue ? list->via.array.size - 1 - i : i], requeue);
    bus_end_batch(bus);
}

static void handle_ack(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    (void)ctl;
    settle(ctx, msg, 0);
}

static void handle_nack(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    (void)ctl;
    settle(ctx, msg, 1);
}

static void handle_bus_status(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct bus *bus = ctx;
    struct wire_body b;
    wire_body_init(&b);
    msgpack_packer *pk = &b.pk;
    proto_pack_bus_status_head(pk, proto_request_id(msg->body), bus->stream_count);
    for (size_t i = 0; i < bus->stream_count; i++) {
        struct proto_bus_stream st = {.pattern = bus->streams[i].pattern,
                                      .first_offset = (int64_t)journal_first_offset(bus->streams[i].journal),
                                      .next_offset = (int64_t)journal_next_offset(bus->streams[i].journal)};
        proto_pack_bus_status_stream(pk, &st);
    }
    struct proto_bus_totals totals = {.emitted = (int64_t)bus->emitted,
                                      .delivered = (int64_t)bus->delivered,
                                      .dropped = (int64_t)bus->dropped,
                                      .delayed = (int64_t)bus->delayed_count};
    proto_pack_bus_status_totals(pk, &totals, bus->group_count);
    for (size_t i = 0; i < bus->group_count; i++) {
        const struct bus_group *g = bus->groups[i];
        unsigned in_flight = 0;
        for (size_t k = 0; k < g->member_count; k++)
            in_flight += g->members[k]->in_flight;
        struct proto_bus_group out = {.name = g->name,
                                      .stream = g->stream ? g->stream->pattern : NULL,
                                      .read_offset = g->stream ? (int64_t)g->read_next : -1,
                                      .committed_offset = g->stream ? (int64_t)g->committed : -1,
                                      .broadcast = g->broadcast,
                                      .members = (int64_t)g->member_count,
                                      .queued = (int64_t)g->count,
                                      .in_flight = in_flight,
                                      .delivered = (int64_t)g->delivered,
                                      .dropped = (int64_t)g->dropped,
                                      .paused = (int64_t)g->paused_count};
        proto_pack_bus_status_group(pk, &out, (const char *const *)g->patterns, g->pattern_count);
    }
    control_reply(ctl, msg, PROTO_BUS_STATUS, &b);
    wire_body_free(&b);
}

/* ---- liveness -------------------------------------------------------------------------- */

void bus_touch(struct bus *bus, const void *routing, size_t routing_len)
{
    uint64_t now = uv_now(bus->loop);
    for (size_t i = 0; i < bus->group_count; i++) {
        struct bus_group *g = bus->groups[i];
        for (size_t k = 0; k < g->member_count; k++) {
            struct bus_member *m = g->members[k];
            if (m->routing_len == routing_len && memcmp(m->routing, routing, routing_len) == 0)
                m->last_seen_ms = now;
        }
    }
}

/* Removes every member matching `dead`; restarts the scan after each removal because a
 * removal may free a (broadcast) group. */
static void bus_remove_members_if(struct bus *bus, int (*dead)(struct bus *, struct bus_member *, void *),
                                  void *arg)
{
    for (int again = 1; again;) {
        again = 0;
        for (size_t i = 0; i < bus->group_count && !again; i++) {
            struct bus_group *g = bus->groups[i];
            for (size_t k = 0; k < g->member_count; k++) {
                if (dead(bus, g->members[k], arg)) {
                    bus_remove_member(bus, g->members[k]);
                    again = 1;
                    break;
                }
            }
        }
    }
}

static int member_of_pid(struct bus *bus, struct bus_member *m, void *arg)
{
    return m->pid && m->pid == *(pid_t *)arg;
}

void bus_on_process_exit(struct bus *bus, pid_t pid)
{
    bus_remove_members_if(bus, member_of_pid, &pid);
}

static int member_gone(struct bus *bus, struct bus_member *m, void *arg)
{
    uint64_t heard = *(uint64_t *)arg;
    if (m->unreachable)
        return 1;
    uint64_t last = m->last_seen_ms, on_conn = control_last_heard_ms(bus->ctl, m->routing, m->routing_len);
    if (on_conn > last)
        last = on_conn;
    if (heard <= last || heard - last <= PROTO_SUBSCRIPTION_EXPIRY_MS)
        return 0;
    /* A busy handler may miss heartbeats; a live process keeps its subscriptions. */
    return m->pid <= 0 || kill(m->pid, 0) != 0;
}

static void bus_on_expiry(uv_timer_t *timer)
{
    struct bus *bus = timer->data;
    /* Not the clock: a heartbeat still queued behind a flood of other messages is not late. */
    uint64_t heard = control_heard_until_ms(bus->ctl);
    bus_remove_members_if(bus, member_gone, &heard);
    uint64_t now = uv_now(bus->loop);
    for (size_t i = 0; i < bus->group_count; i++) {
        struct bus_group *g = bus->groups[i];
        if (g->paused_count && now - g->paused_since_ms >= BUS_PAUSE_MAX_MS) {
            g->pausing_gave_up = 1;
            group_resume_emitters(bus, g);
        }
        group_report_drops(bus, g);
    }
}

static int bus_open_streams(struct bus *bus, const struct config *cfg, const char *run_dir, char *err,
                            size_t errlen)
{
    if (cfg->stream_count == 0)
        return 0;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/streams", run_dir);
    bus->streams = xcalloc(cfg->stream_count, sizeof *bus->streams);
    for (size_t i = 0; i < cfg->stream_count; i++) {
        const struct config_stream *cs = &cfg->streams[i];
        struct bus_stream *st = &bus->streams[i];
        char name[600];
        streamrec_journal_name(cs->pattern, name, sizeof name);
        struct journal_options o = {.dir = dir, .name = name, .retain_records = cs->retain_events};
        struct journal_recovery rep;
        if (journal_open(&st->journal, &o, &rep, err, errlen) < 0)
            return -1;
        st->pattern = xstrdup(cs->pattern);
        bus->stream_count++;
        snprintf(st->offsets_path, sizeof st->offsets_path, "%s/%s.offsets", dir, name);
        stream_load_offsets(st);
        if (rep.truncated_bytes || rep.dropped_segments)
            loghub_node_line(bus->hub, getpid(), LOG_LEVEL_WARNING,
                             "stream %s: journal had a torn or corrupt tail: cut %llu bytes%s; %llu events kept",
                             cs->pattern, (unsigned long long)rep.truncated_bytes,
                             rep.dropped_segments ? " and later segments" : "", (unsigned long long)rep.records);
        loghub_node_line(bus->hub, getpid(), LOG_LEVEL_INFO, "stream %s: events %llu..%llu retained (keeps %llu)",
                         cs->pattern, (unsigned long long)journal_first_offset(st->journal),
                         (unsigned long long)journal_next_offset(st->journal),
                         (unsigned long long)cs->retain_events);
    }
    return 0;
}

int bus_init(struct bus *bus, uv_loop_t *loop, struct loghub *hub, struct control *ctl,
             const struct config *cfg, const char *run_dir, char *err, size_t errlen)
{
    memset(bus, 0, sizeof *bus);
    bus->loop = loop;
    bus->hub = hub;
    bus->ctl = ctl;
    bus->deliveries = xcalloc(1, sizeof *bus->deliveries);
    table_grow(bus->deliveries);
    bus->batch_buf = xmalloc(PROTO_EMIT_BATCH_MAX * sizeof *bus->batch_buf);
    bus->emit_views = xmalloc(PROTO_EMIT_BATCH_MAX * sizeof *bus->emit_views);
    msgpack_sbuffer_init(&bus->scratch);
    msgpack_sbuffer_init(&bus->event_scratch);
    wire_body_init(&bus->reply);
    bus->event_pool = xcalloc(1, sizeof *bus->event_pool);
    uv_timer_init(loop, &bus->delay_timer);
    bus->delay_timer.data = bus;
    uv_timer_init(loop, &bus->expiry_timer);
    bus->expiry_timer.data = bus;
    uv_timer_start(&bus->expiry_timer, bus_on_expiry, 1000, 1000);
    control_register(ctl, PROTO_EMIT, handle_emit, bus);
    control_register(ctl, PROTO_SUBSCRIBE, handle_subscribe, bus);
    control_register(ctl, PROTO_UNSUBSCRIBE, handle_unsubscribe, bus);
    control_register_unparked(ctl, PROTO_ACK, handle_ack, bus);
    control_register_unparked(ctl, PROTO_NACK, handle_nack, bus);
    control_register(ctl, PROTO_BUS_STATUS, handle_bus_status, bus);
    control_add_turn_hooks(ctl, bus_on_turn_begin, bus_on_turn_end, bus);
    uv_timer_init(loop, &bus->commit_timer);
    bus->commit_timer.data = bus;
    uv_timer_start(&bus->commit_timer, bus_on_commit_timer, BUS_COMMIT_INTERVAL_MS, BUS_COMMIT_INTERVAL_MS);
    return bus_open_streams(bus, cfg, run_dir, err, errlen);
}

void bus_close(struct bus *bus)
{
    control_remove_turn_hooks(bus->ctl, bus);
    for (size_t i = 0; i < bus->stream_count; i++)
        stream_save_offsets(bus, &bus->streams[i]);
    uv_close((uv_handle_t *)&bus->commit_timer, NULL);
    uv_close((uv_handle_t *)&bus->delay_timer, NULL);
    uv_close((uv_handle_t *)&bus->expiry_timer, NULL);
    struct bus_delivery_table *t = bus->deliveries;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].tag)
            event_release(bus->event_pool, t->slots[i].event);
    free(t->slots);
    free(t);
    for (size_t i = 0; i < bus->group_count; i++)
        group_free(bus, bus->groups[i]);
    free(bus->groups);
    for (size_t i = 0; i < bus->delayed_count; i++)
        event_release(bus->event_pool, bus->delayed[i].event);
    free(bus->delayed);
    msgpack_sbuffer_destroy(&bus->scratch);
    msgpack_sbuffer_destroy(&bus->event_scratch);
    wire_body_free(&bus->reply);
    free(bus->batch_buf);
    free(bus->emit_views);
    for (size_t i = 0; i < bus->stream_count; i++) {
        struct bus_stream *st = &bus->streams[i];
        journal_close(st->journal);
        free(st->pattern);
        for (size_t k = 0; k < st->offset_count; k++)
            free(st->offsets[k].group);
    }
    free(bus->streams);
    /* Last: every holder has released its events by now, so what is still out is a leak. */
    event_pool_free(bus->event_pool);
    free(bus->event_pool);
}
