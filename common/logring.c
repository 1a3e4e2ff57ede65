/* logring: runs once per line of every burst (1.6M lines in the benchmark), so append is a
 * couple of memcpys, one hash probe for the service name and, for traced lines, one for the
 * trace id. Nothing here allocates per line; nothing scans the ring to answer a trace query. */
#include "common/logring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

_Static_assert(sizeof(struct logring_entry) == 40, "a buffered line costs 40 bytes plus its text");

#define OVERFLOW_SERVICE "(other)"

static uint32_t fnv1a(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

int logring_init(struct logring *ring, size_t max_lines, size_t max_traces)
{
    memset(ring, 0, sizeof *ring);
    ring->max_lines = max_lines ? max_lines : 1;
    ring->max_traces = max_traces ? max_traces : 1;
    if (ring->max_traces > UINT32_MAX - 1)
        ring->max_traces = UINT32_MAX - 1;
    ring->arena_bytes = (uint64_t)ring->max_lines * LOGRING_BYTES_PER_LINE;
    if (ring->arena_bytes < LOGRING_MIN_ARENA_BYTES)
        ring->arena_bytes = LOGRING_MIN_ARENA_BYTES;
    /* Large callocs and mallocs are fresh mappings: pages cost memory only once written. */
    ring->entries = calloc(ring->max_lines, sizeof *ring->entries);
    ring->arena = malloc(ring->arena_bytes);
    ring->service_names = calloc(LOGRING_MAX_SERVICES, sizeof *ring->service_names);
    ring->service_bucket_mask = pow2_at_least(2 * LOGRING_MAX_SERVICES) - 1;
    ring->service_buckets = calloc(ring->service_bucket_mask + 1, sizeof *ring->service_buckets);
    ring->traces = calloc(ring->max_traces, sizeof *ring->traces);
    ring->trace_bucket_mask = pow2_at_least(ring->max_traces) - 1;
    ring->trace_buckets = calloc(ring->trace_bucket_mask + 1, sizeof *ring->trace_buckets);
    if (!ring->entries || !ring->arena || !ring->service_names || !ring->service_buckets || !ring->traces ||
        !ring->trace_buckets) {
        logring_free(ring);
        return -ENOMEM;
    }
    return 0;
}

void logring_free(struct logring *ring)
{
    if (ring->service_names)
        for (size_t i = 0; i < ring->service_count; i++)
            free(ring->service_names[i]);
    free(ring->service_names);
    free(ring->service_buckets);
    free(ring->entries);
    free(ring->arena);
    free(ring->traces);
    free(ring->trace_buckets);
    memset(ring, 0, sizeof *ring);
}

void logring_set_evict_cb(struct logring *ring, logring_evict_cb cb, void *ctx)
{
    ring->on_evict = cb;
    ring->on_evict_ctx = ctx;
}

/* ---------------------------------------------------------------- service names */

static int service_lookup(const struct logring *ring, const char *name, size_t len, uint32_t hash,
                          size_t *bucket)
{
    for (size_t i = hash & ring->service_bucket_mask;; i = (i + 1) & ring->service_bucket_mask) {
        uint16_t b = ring->service_buckets[i];
        if (!b) {
            *bucket = i;
            return -1;
        }
        const char *known = ring->service_names[b - 1];
        if (strncmp(known, name, len) == 0 && known[len] == '\0')
            return b - 1;
    }
}

static uint16_t service_intern(struct logring *ring, const char *name)
{
    /* A run of lines mostly comes from one service: check the last one first. */
    if (ring->service_count && strcmp(ring->service_names[ring->last_service], name) == 0)
        return ring->last_service;
    size_t len = strlen(name), bucket;
    uint32_t hash = fnv1a(name, len);
    int id = service_lookup(ring, name, len, hash, &bucket);
    if (id >= 0)
        return ring->last_service = (uint16_t)id;
    /* The last id is kept for one catch-all name, so the table never fills up silently. */
    if (ring->service_count >= LOGRING_MAX_SERVICES - 1 && strcmp(name, OVERFLOW_SERVICE) != 0)
        return service_intern(ring, OVERFLOW_SERVICE);
    char *copy = xstrdup(name);
    ring->service_names[ring->service_count] = copy;
    ring->service_buckets[bucket] = (uint16_t)(ring->service_count + 1);
    return ring->last_service = (uint16_t)ring->service_count++;
}

const char *logring_service_name(const struct logring *ring, uint16_t id)
{
    return id < ring->service_count ? ring->service_names[id] : "";
}

int logring_service_id(const struct logring *ring, const char *name)
{
    size_t len = strlen(name), bucket;
    return service_lookup(ring, name, len, fnv1a(name, len), &bucket);
}

/* ---------------------------------------------------------------- trace summaries */

/* The two doubly linked lists over trace slots: by last update (LRU) and by creation (age). */
enum trace_list { LIST_LRU, LIST_AGE };

static uint32_t *list_prev(struct logring_trace *t, enum trace_list which)
{
    return which == LIST_LRU ? &t->lru_prev : &t->age_prev;
}

static uint32_t *list_next(struct logring_trace *t, enum trace_list which)
{
    return which == LIST_LRU ? &t->lru_next : &t->age_next;
}

static void list_unlink(struct logring *ring, uint32_t slot1, enum trace_list which)
{
    struct logring_trace *t = &ring->traces[slot1 - 1];
    uint32_t prev = *list_prev(t, which), next = *list_next(t, which);
    uint32_t *head = which == LIST_LRU ? &ring->lru_head : &ring->age_head;
    uint32_t *tail = which == LIST_LRU ? &ring->lru_tail : &ring->age_tail;
    if (prev)
        *list_next(&ring->traces[prev - 1], which) = next;
    else
        *head = next;
    if (next)
        *list_prev(&ring->traces[next - 1], which) = prev;
    else
        *tail = prev;
    *list_prev(t, which) = *list_next(t, which) = 0;
}

static void list_push_head(struct logring *ring, uint32_t slot1, enum trace_list which)
{
    struct logring_trace *t = &ring->traces[slot1 - 1];
    uint32_t *head = which == LIST_LRU ? &ring->lru_head : &ring->age_head;
    uint32_t *tail = which == LIST_LRU ? &ring->lru_tail : &ring->age_tail;
    *list_prev(t, which) = 0;
    *list_next(t, which) = *head;
    if (*head)
        *list_prev(&ring->traces[*head - 1], which) = slot1;
    *head = slot1;
    if (!*tail)
        *tail = slot1;
}

static struct logring_trace *trace_lookup(const struct logring *ring, const char *id, size_t len, uint32_t hash)
{
    uint32_t slot1 = ring->trace_buckets[hash & ring->trace_bucket_mask];
    while (slot1) {
        struct logring_trace *t = &ring->traces[slot1 - 1];
        if (t->hash == hash && t->id_len == len && memcmp(t->id, id, len) == 0)
            return t;
        slot1 = t->bucket_next;
    }
    return NULL;
}

static void trace_unlink_bucket(struct logring *ring, uint32_t slot1)
{
    struct logring_trace *t = &ring->traces[slot1 - 1];
    uint32_t *link = &ring->trace_buckets[t->hash & ring->trace_bucket_mask];
    while (*link && *link != slot1)
        link = &ring->traces[*link - 1].bucket_next;
    if (*link)
        *link = t->bucket_next;
}

static struct logring_trace *trace_create(struct logring *ring, const char *id, size_t len, uint32_t hash)
{
    uint32_t slot1;
    if (ring->trace_count < ring->max_traces) {
        slot1 = (uint32_t)++ring->trace_count;
    } else {
        slot1 = ring->lru_tail;
        trace_unlink_bucket(ring, slot1);
        list_unlink(ring, slot1, LIST_LRU);
        list_unlink(ring, slot1, LIST_AGE);
        ring->evicted_traces++;
    }
    struct logring_trace *t = &ring->traces[slot1 - 1];
    memset(t, 0, sizeof *t);
    memcpy(t->id, id, len);
    t->id[len] = '\0';
    t->id_len = (uint8_t)len;
    t->hash = hash;
    uint32_t *bucket = &ring->trace_buckets[hash & ring->trace_bucket_mask];
    t->bucket_next = *bucket;
    *bucket = slot1;
    list_push_head(ring, slot1, LIST_LRU);
    list_push_head(ring, slot1, LIST_AGE);
    return t;
}

static void trace_note_line(struct logring *ring, struct logring_entry *e, uint64_t seq, const char *id, size_t len)
{
    uint32_t hash = fnv1a(id, len);
    struct logring_trace *t = trace_lookup(ring, id, len, hash);
    if (!t) {
        t = trace_create(ring, id, len, hash);
        t->first_ns = e->wall_ns;
    } else {
        uint64_t distance = seq - t->newest_seq;
        e->trace_prev = distance <= UINT32_MAX ? (uint32_t)distance : 0;
        uint32_t slot1 = (uint32_t)(t - ring->traces) + 1;
        if (ring->lru_head != slot1) {
            list_unlink(ring, slot1, LIST_LRU);
            list_push_head(ring, slot1, LIST_LRU);
        }
    }
    t->newest_seq = seq;
    t->last_ns = e->wall_ns;
    t->lines++;
    if (e->level >= LOG_LEVEL_ERROR)
        t->error = 1;
    for (unsigned i = 0; i < t->service_count; i++)
        if (t->services[i] == e->service)
            return;
    if (t->service_count < LOGRING_TRACE_SERVICES)
        t->services[t->service_count++] = e->service;
    else
        t->services_truncated = 1;
}

const struct logring_trace *logring_trace_find(const struct logring *ring, const char *trace_id)
{
    size_t len = strlen(trace_id);
    if (len == 0 || len > TRACE_ID_MAX)
        return NULL;
    return trace_lookup(ring, trace_id, len, fnv1a(trace_id, len));
}

size_t logring_traces_newest(const struct logring *ring, const struct logring_trace **out, size_t cap)
{
    size_t n = 0;
    for (uint32_t slot1 = ring->age_head; slot1 && n < cap; slot1 = ring->traces[slot1 - 1].age_next)
        out[n++] = &ring->traces[slot1 - 1];
    return n;
}

/* ---------------------------------------------------------------- lines */

uint64_t logring_first_seq(const struct logring *ring)
{
    return ring->count ? ring->first_seq : ring->next_seq ? ring->next_seq : 1;
}

uint64_t logring_last_seq(const struct logring *ring)
{
    return logring_first_seq(ring) + ring->count - 1;
}

const struct logring_entry *logring_entry_at(const struct logring *ring, uint64_t seq)
{
    if (seq < ring->first_seq || seq - ring->first_seq >= ring->count)
        return NULL;
    size_t i = ring->first_index + (size_t)(seq - ring->first_seq);
    if (i >= ring->max_lines)
        i -= ring->max_lines;
    return &ring->entries[i];
}

const char *logring_entry_trace(const struct logring *ring, const struct logring_entry *e)
{
    return ring->arena + (e->pos + e->len) % ring->arena_bytes;
}

int logring_get(const struct logring *ring, uint64_t seq, struct log_line *out)
{
    const struct logring_entry *e = logring_entry_at(ring, seq);
    if (!e)
        return -1;
    out->seq = seq;
    out->wall_ns = e->wall_ns;
    out->service = logring_service_name(ring, e->service);
    out->instance = e->instance;
    out->pid = e->pid;
    out->stream = (enum log_stream)e->stream;
    out->level = (enum log_level)e->level;
    out->flags = e->flags;
    memcpy(out->trace_id, logring_entry_trace(ring, e), e->trace_len);
    out->trace_id[e->trace_len] = '\0';
    out->text = ring->arena + e->pos % ring->arena_bytes;
    out->len = e->len;
    return 0;
}

size_t logring_trace_seqs(const struct logring *ring, const struct logring_trace *trace, uint64_t *out,
                          size_t cap, int *complete)
{
    size_t n = 0;
    uint64_t seq = trace->newest_seq;
    while (n < cap) {
        const struct logring_entry *e = logring_entry_at(ring, seq);
        /* The id check guards against a seq reused after the ring was emptied by a gap. */
        if (!e || e->trace_len != trace->id_len ||
            memcmp(logring_entry_trace(ring, e), trace->id, trace->id_len) != 0)
            break;
        out[n++] = seq;
        if (!e->trace_prev || e->trace_prev >= seq)
            break;
        seq -= e->trace_prev;
    }
    *complete = n == trace->lines;
    return n;
}

static void evict_oldest(struct logring *ring)
{
    if (ring->on_evict)
        ring->on_evict(ring->on_evict_ctx, ring->first_seq);
    ring->first_index = ring->first_index + 1 == ring->max_lines ? 0 : ring->first_index + 1;
    ring->first_seq++;
    ring->count--;
    ring->evicted_lines++;
}

void logring_append(struct logring *ring, const struct log_line *line)
{
    if (ring->next_seq && line->seq != ring->next_seq)
        while (ring->count)
            evict_oldest(ring);
    if (ring->count == 0)
        ring->first_seq = line->seq;

    size_t trace_len = line->trace_id[0] ? strnlen(line->trace_id, TRACE_ID_MAX) : 0;
    size_t len = line->len;
    if (len > ring->arena_bytes / 2 - TRACE_ID_MAX)
        len = ring->arena_bytes / 2 - TRACE_ID_MAX;
    uint64_t need = len + trace_len;

    if (ring->count == ring->max_lines)
        evict_oldest(ring);
    /* One division per line: a 64-bit divide costs more than the rest of the bookkeeping. */
    uint64_t phys = ring->head_pos % ring->arena_bytes;
    if (phys + need > ring->arena_bytes) {
        ring->head_pos += ring->arena_bytes - phys; /* keep each line contiguous: wrap early */
        phys = 0;
    }
    while (ring->count && ring->entries[ring->first_index].pos + ring->arena_bytes < ring->head_pos + need)
        evict_oldest(ring);
    if (ring->count == 0)
        ring->first_seq = line->seq;

    char *dst = ring->arena + phys;
    memcpy(dst, line->text, len);
    memcpy(dst + len, line->trace_id, trace_len);

    size_t index = ring->first_index + ring->count;
    if (index >= ring->max_lines)
        index -= ring->max_lines;
    struct logring_entry *e = &ring->entries[index];
    e->wall_ns = line->wall_ns;
    e->pos = ring->head_pos;
    e->len = (uint32_t)len;
    e->trace_prev = 0;
    e->pid = line->pid;
    e->instance = line->instance;
    e->service = service_intern(ring, line->service ? line->service : "");
    e->stream = (uint8_t)line->stream;
    e->level = (uint8_t)line->level;
    e->flags = (uint8_t)line->flags;
    e->trace_len = (uint8_t)trace_len;
    ring->head_pos += need;
    ring->count++;
    ring->next_seq = line->seq + 1;
    if (trace_len)
        trace_note_line(ring, e, line->seq, line->trace_id, trace_len);
}
