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

#include "node/topic.h"

#define BUS_MAX_PATTERNS 32
#define BUS_NAME_MAX 200

struct bus_event {
    unsigned refs;
    char *type;
    char *source;
    char *headers;       /* packed msgpack map */
    size_t headers_len;
    char *body;          /* packed msgpack value */
    size_t body_len;
};

struct bus_pending {
    struct bus_event *event;
    int redelivered;
};

struct bus_member {
    struct bus_group *group;
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
    uint64_t delivered, dropped;
    uint64_t dropped_reported;
    uint64_t last_drop_report_ms;
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

static void event_release(struct bus_event *ev)
{
    if (--ev->refs > 0)
        return;
    free(ev->type);
    free(ev->source);
    free(ev->headers);
    free(ev->body);
    free(ev);
}

static char *pack_copy(const msgpack_object *obj, size_t *len, int empty_map_if_nil)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (!obj || (obj->type == MSGPACK_OBJECT_NIL && empty_map_if_nil))
        empty_map_if_nil ? msgpack_pack_map(&pk, 0) : msgpack_pack_nil(&pk);
    else
        msgpack_pack_object(&pk, *obj);
    *len = sb.size;
    return sb.data; /* ownership moves to the caller */
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
    t->slots = calloc(t->cap, sizeof *t->slots);
    if (!t->slots)
        abort();
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
        if (g->cap >= BUS_QUEUE_CAP && !front)
            return -1;
        size_t cap = g->cap ? g->cap * 2 : 64;
        struct bus_pending *q = malloc(cap * sizeof *q);
        if (!q)
            abort();
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

static int send_event(struct bus *bus, struct bus_member *m, struct bus_event *ev, uint64_t tag, int redelivered)
{
    msgpack_sbuffer_clear(&bus->scratch);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &bus->scratch, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    wire_pack_kv_str(&pk, "subscription", m->subscription);
    wire_pack_str(&pk, "delivery");
    msgpack_pack_uint64(&pk, tag);
    wire_pack_kv_str(&pk, "type", ev->type);
    wire_pack_str(&pk, "headers");
    msgpack_sbuffer_write(&bus->scratch, ev->headers, ev->headers_len);
    wire_pack_str(&pk, "body");
    msgpack_sbuffer_write(&bus->scratch, ev->body, ev->body_len);
    wire_pack_kv_str(&pk, "source", ev->source);
    wire_pack_kv_bool(&pk, "redelivered", redelivered);
    struct wire_body body = {.sbuf = bus->scratch};
    int rc = control_send(bus->ctl, m->routing, m->routing_len, "event", &body);
    return rc;
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

/* Hands queued events to members with room, round robin. */
static void group_dispatch(struct bus *bus, struct bus_group *g)
{
    size_t failed_sends = 0;
    while (g->count > 0 && g->member_count > 0 && failed_sends < g->member_count) {
        struct bus_member *m = NULL;
        for (size_t tries = 0; tries < g->member_count; tries++) {
            struct bus_member *cand = g->members[(g->next_member + tries) % g->member_count];
            if (!cand->unreachable && cand->in_flight < cand->prefetch) {
                m = cand;
                g->next_member = (g->next_member + tries + 1) % g->member_count;
                break;
            }
        }
        if (!m)
            return;
        struct bus_pending p = queue_pop(g);
        uint64_t tag = ++bus->next_tag;
        int rc = send_event(bus, m, p.event, tag, p.redelivered);
        if (rc < 0) {
            /* Its queue is full (try others, and it again on the next ack or emit) or its
             * connection is gone (skip it until expiry drops it): the event stays queued. */
            queue_push(g, p, 1);
            if (rc == -EHOSTUNREACH)
                m->unreachable = 1;
            failed_sends++;
            continue;
        }
        m->in_flight++;
        table_insert(bus->deliveries, (struct bus_delivery){tag, p.event, m, p.redelivered});
    }
}

/* Routes a new event to every group whose patterns match; returns how many. */
static size_t bus_route(struct bus *bus, struct bus_event *ev)
{
    size_t groups = 0;
    ev->refs++; /* held while routing */
    for (size_t i = 0; i < bus->group_count; i++) {
        struct bus_group *g = bus->groups[i];
        int match = 0;
        for (size_t k = 0; k < g->pattern_count && !match; k++)
            match = topic_match(g->patterns[k], ev->type);
        if (!match)
            continue;
        if (queue_push(g, (struct bus_pending){ev, 0}, 0) < 0) {
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
    event_release(ev);
    return groups;
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
        bus->delayed = realloc(bus->delayed, bus->delayed_cap * sizeof *bus->delayed);
        if (!bus->delayed)
            abort();
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
        bus_route(bus, d.event);
        event_release(d.event);
    }
    bus_arm_delay_timer(bus);
}

/* ---- members --------------------------------------------------------------------------- */

static void group_free(struct bus_group *g)
{
    while (g->count > 0)
        event_release(queue_pop(g).event);
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
    group_free(g);
}

/* Takes a member out: its in-flight events go back to the front of its group's queue, in
 * their original order, marked redelivered. */
static void bus_remove_member(struct bus *bus, struct bus_member *m)
{
    struct bus_group *g = m->group;
    struct bus_delivery_table *t = bus->deliveries;
    size_t n = 0;
    struct bus_delivery *mine = malloc((m->in_flight ? m->in_flight : 1) * sizeof *mine);
    if (!mine)
        abort();
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

static void handle_emit(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct bus *bus = ctx;
    char type[BUS_NAME_MAX + 1], source[BUS_NAME_MAX + 1] = "unknown";
    if (wire_get_str(msg->body, "type", type, sizeof type) < 0 || !topic_pattern_valid(type) ||
        strchr(type, '*') || strchr(type, '#')) {
        control_reply_error(ctl, msg, "emit needs a type of dot-separated words (no * or #)");
        return;
    }
    const msgpack_object *headers = wire_map_get(msg->body, "headers");
    if (headers && headers->type != MSGPACK_OBJECT_MAP && headers->type != MSGPACK_OBJECT_NIL) {
        control_reply_error(ctl, msg, "emit: headers must be a map");
        return;
    }
    wire_get_str(msg->body, "source", source, sizeof source);
    int64_t delay_ms = 0;
    wire_get_int(msg->body, "delay_ms", &delay_ms);
    if (delay_ms < 0 || delay_ms > 7LL * 24 * 3600 * 1000) {
        control_reply_error(ctl, msg, "emit: delay_ms must be between 0 and a week");
        return;
    }
    struct bus_event *ev = calloc(1, sizeof *ev);
    if (!ev)
        abort();
    ev->type = strdup(type);
    ev->source = strdup(source);
    ev->headers = pack_copy(headers, &ev->headers_len, 1);
    ev->body = pack_copy(wire_map_get(msg->body, "body"), &ev->body_len, 0);
    size_t groups = 0;
    if (delay_ms > 0) {
        ev->refs = 1; /* held by the delay heap */
        delayed_push(bus, (struct bus_delayed){uv_now(bus->loop) + (uint64_t)delay_ms, bus->delayed_order++, ev});
        bus_arm_delay_timer(bus);
    } else {
        groups = bus_route(bus, ev);
    }
    struct wire_body b;
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 2);
    control_pack_id(&b.pk, msg);
    wire_pack_kv_int(&b.pk, "groups", (int64_t)groups);
    control_reply(ctl, msg, "ok", &b);
    wire_body_free(&b);
}

static void handle_subscribe(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct bus *bus = ctx;
    char subscription[65], group_name[BUS_NAME_MAX + 1] = "";
    if (wire_get_str(msg->body, "subscription", subscription, sizeof subscription) < 0 || !subscription[0]) {
        control_reply_error(ctl, msg, "subscribe needs a subscription name (a string of up to 64 bytes)");
        return;
    }
    const msgpack_object *patterns = wire_map_get(msg->body, "patterns");
    if (!patterns || patterns->type != MSGPACK_OBJECT_ARRAY || patterns->via.array.size == 0 ||
        patterns->via.array.size > BUS_MAX_PATTERNS) {
        control_reply_error(ctl, msg, "subscribe needs patterns: a list of 1 to 32 strings");
        return;
    }
    for (uint32_t i = 0; i < patterns->via.array.size; i++) {
        const msgpack_object *p = &patterns->via.array.ptr[i];
        char text[BUS_NAME_MAX + 1];
        if (p->type != MSGPACK_OBJECT_STR || p->via.str.size > BUS_NAME_MAX) {
            control_reply_error(ctl, msg, "subscribe: every pattern must be a string");
            return;
        }
        memcpy(text, p->via.str.ptr, p->via.str.size);
        text[p->via.str.size] = '\0';
        if (!topic_pattern_valid(text)) {
            char why[300];
            snprintf(why, sizeof why, "subscribe: '%s' is not a valid pattern (words, *, #)", text);
            control_reply_error(ctl, msg, why);
            return;
        }
    }
    const msgpack_object *bcast = wire_map_get(msg->body, "broadcast");
    int broadcast = bcast && bcast->type == MSGPACK_OBJECT_BOOLEAN && bcast->via.boolean;
    const msgpack_object *gobj = wire_map_get(msg->body, "group");
    if (gobj && gobj->type == MSGPACK_OBJECT_STR && wire_get_str(msg->body, "group", group_name, sizeof group_name) < 0) {
        control_reply_error(ctl, msg, "subscribe: group must be a string of up to 200 bytes");
        return;
    }
    if (!group_name[0])
        broadcast = 1;
    if (bus_find_member(bus, msg->identity, msg->identity_len, subscription)) {
        control_reply_error(ctl, msg, "subscribe: this connection already has that subscription");
        return;
    }
    int64_t pid = 0, prefetch = BUS_DEFAULT_PREFETCH;
    wire_get_int(msg->body, "pid", &pid);
    wire_get_int(msg->body, "prefetch", &prefetch);
    if (prefetch < 1 || prefetch > 100000)
        prefetch = BUS_DEFAULT_PREFETCH;

    struct bus_group *g = NULL;
    if (broadcast) {
        /* A group of its own, named after the connection and subscription. */
        char name[BUS_NAME_MAX + 80];
        int n = snprintf(name, sizeof name, "~");
        for (size_t i = 0; i < msg->identity_len && n < 60; i++)
            n += snprintf(name + n, sizeof name - (size_t)n, "%02x", msg->identity[i]);
        snprintf(name + n, sizeof name - (size_t)n, ":%s", subscription);
        g = calloc(1, sizeof *g);
        if (!g)
            abort();
        g->name = strdup(name);
        g->broadcast = 1;
    } else {
        g = bus_find_group(bus, group_name);
        if (!g) {
            g = calloc(1, sizeof *g);
            if (!g)
                abort();
            g->name = strdup(group_name);
        }
    }
    if (g->member_count == 0 && g->pattern_count == 0) {
        if (bus->group_count == bus->group_cap) {
            bus->group_cap = bus->group_cap ? bus->group_cap * 2 : 16;
            bus->groups = realloc(bus->groups, bus->group_cap * sizeof *bus->groups);
            if (!bus->groups)
                abort();
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
            g->patterns[g->pattern_count++] = strndup(p->via.str.ptr, p->via.str.size);
    }
    struct bus_member *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    m->group = g;
    snprintf(m->subscription, sizeof m->subscription, "%s", subscription);
    memcpy(m->routing, msg->identity, msg->identity_len);
    m->routing_len = msg->identity_len;
    m->pid = (pid_t)pid;
    m->prefetch = (unsigned)prefetch;
    m->last_seen_ms = uv_now(bus->loop);
    if (g->member_count == g->member_cap) {
        g->member_cap = g->member_cap ? g->member_cap * 2 : 8;
        g->members = realloc(g->members, g->member_cap * sizeof *g->members);
        if (!g->members)
            abort();
    }
    g->members[g->member_count++] = m;
    control_reply_ok(ctl, msg);
    group_dispatch(bus, g);
}

static void handle_unsubscribe(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct bus *bus = ctx;
    char subscription[65];
    if (wire_get_str(msg->body, "subscription", subscription, sizeof subscription) < 0) {
        control_reply_error(ctl, msg, "unsubscribe needs a subscription name");
        return;
    }
    struct bus_member *m = bus_find_member(bus, msg->identity, msg->identity_len, subscription);
    if (m)
        bus_remove_member(bus, m);
    control_reply_ok(ctl, msg);
}

static void settle(struct bus *bus, const struct wire_msg *msg, int requeue)
{
    int64_t tag = 0;
    if (wire_get_int(msg->body, "delivery", &tag) < 0 || tag <= 0)
        return;
    bus_touch(bus, msg->identity, msg->identity_len);
    struct bus_delivery d = table_take(bus->deliveries, (uint64_t)tag);
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
        event_release(d.event);
    }
    group_dispatch(bus, g);
}

static void handle_ack(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    settle(ctx, msg, 0);
}

static void handle_nack(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    settle(ctx, msg, 1);
}

static void handle_bus_status(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct bus *bus = ctx;
    struct wire_body b;
    wire_body_init(&b);
    msgpack_packer *pk = &b.pk;
    msgpack_pack_map(pk, 6);
    control_pack_id(pk, msg);
    wire_pack_kv_int(pk, "emitted", (int64_t)bus->emitted);
    wire_pack_kv_int(pk, "delivered", (int64_t)bus->delivered);
    wire_pack_kv_int(pk, "dropped", (int64_t)bus->dropped);
    wire_pack_kv_int(pk, "delayed", (int64_t)bus->delayed_count);
    wire_pack_str(pk, "groups");
    msgpack_pack_array(pk, bus->group_count);
    for (size_t i = 0; i < bus->group_count; i++) {
        const struct bus_group *g = bus->groups[i];
        unsigned in_flight = 0;
        for (size_t k = 0; k < g->member_count; k++)
            in_flight += g->members[k]->in_flight;
        msgpack_pack_map(pk, 8);
        wire_pack_kv_str(pk, "name", g->name);
        wire_pack_kv_bool(pk, "broadcast", g->broadcast);
        wire_pack_str(pk, "patterns");
        msgpack_pack_array(pk, g->pattern_count);
        for (size_t k = 0; k < g->pattern_count; k++)
            wire_pack_str(pk, g->patterns[k]);
        wire_pack_kv_int(pk, "members", (int64_t)g->member_count);
        wire_pack_kv_int(pk, "queued", (int64_t)g->count);
        wire_pack_kv_int(pk, "in_flight", in_flight);
        wire_pack_kv_int(pk, "delivered", (int64_t)g->delivered);
        wire_pack_kv_int(pk, "dropped", (int64_t)g->dropped);
    }
    control_reply(ctl, msg, "bus_status", &b);
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
    uint64_t now = *(uint64_t *)arg;
    if (m->unreachable)
        return 1;
    if (now - m->last_seen_ms <= BUS_MEMBER_TIMEOUT_MS)
        return 0;
    /* A busy handler may miss heartbeats; a live process keeps its subscriptions. */
    return m->pid <= 0 || kill(m->pid, 0) != 0;
}

static void bus_on_expiry(uv_timer_t *timer)
{
    struct bus *bus = timer->data;
    uint64_t now = uv_now(bus->loop);
    bus_remove_members_if(bus, member_gone, &now);
    for (size_t i = 0; i < bus->group_count; i++)
        group_report_drops(bus, bus->groups[i]);
}

void bus_init(struct bus *bus, uv_loop_t *loop, struct loghub *hub, struct control *ctl)
{
    memset(bus, 0, sizeof *bus);
    bus->loop = loop;
    bus->hub = hub;
    bus->ctl = ctl;
    bus->deliveries = calloc(1, sizeof *bus->deliveries);
    if (!bus->deliveries)
        abort();
    table_grow(bus->deliveries);
    msgpack_sbuffer_init(&bus->scratch);
    uv_timer_init(loop, &bus->delay_timer);
    bus->delay_timer.data = bus;
    uv_timer_init(loop, &bus->expiry_timer);
    bus->expiry_timer.data = bus;
    uv_timer_start(&bus->expiry_timer, bus_on_expiry, 1000, 1000);
    control_register(ctl, "emit", handle_emit, bus);
    control_register(ctl, "subscribe", handle_subscribe, bus);
    control_register(ctl, "unsubscribe", handle_unsubscribe, bus);
    control_register(ctl, "ack", handle_ack, bus);
    control_register(ctl, "nack", handle_nack, bus);
    control_register(ctl, "bus_status", handle_bus_status, bus);
}

void bus_close(struct bus *bus)
{
    uv_close((uv_handle_t *)&bus->delay_timer, NULL);
    uv_close((uv_handle_t *)&bus->expiry_timer, NULL);
    struct bus_delivery_table *t = bus->deliveries;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].tag)
            event_release(t->slots[i].event);
    free(t->slots);
    free(t);
    for (size_t i = 0; i < bus->group_count; i++)
        group_free(bus->groups[i]);
    free(bus->groups);
    for (size_t i = 0; i < bus->delayed_count; i++)
        event_release(bus->delayed[i].event);
    free(bus->delayed);
    msgpack_sbuffer_destroy(&bus->scratch);
}
