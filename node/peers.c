/* peers: a small hash table of routing id -> last message time. Rebuilt (dropping the
 * connections silent for PEERS_FORGET_MS) when half full, so it never needs tombstones and
 * stays the size of the connections of the last minute. */
#include "node/peers.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

#define PEERS_MIN_CAP 64

static size_t peers_hash(const unsigned char *id, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ id[i]) * 1099511628211ull;
    return (size_t)h;
}

static struct peer *peers_find(const struct peers *p, const void *id, size_t id_len)
{
    if (!p->cap)
        return NULL;
    size_t i = peers_hash(id, id_len) & (p->cap - 1);
    for (;;) {
        struct peer *s = &p->slots[i];
        if (!s->id_len || (s->id_len == id_len && memcmp(s->id, id, id_len) == 0))
            return s;
        i = (i + 1) & (p->cap - 1);
    }
}

/* Rehashes into `cap` slots, keeping the connections heard since `keep_since`. */
static void peers_rebuild(struct peers *p, size_t cap, uint64_t keep_since)
{
    struct peer *old = p->slots;
    size_t old_cap = p->cap;
    p->slots = xcalloc(cap, sizeof *p->slots);
    p->cap = cap;
    p->count = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].id_len || old[i].heard_ms < keep_since)
            continue;
        *peers_find(p, old[i].id, old[i].id_len) = old[i];
        p->count++;
    }
    free(old);
}

void peers_init(struct peers *p)
{
    memset(p, 0, sizeof *p);
}

void peers_free(struct peers *p)
{
    free(p->slots);
    memset(p, 0, sizeof *p);
}

void peers_heard(struct peers *p, const void *id, size_t id_len, uint64_t now_ms)
{
    if (id_len == 0 || id_len > PEERS_ID_MAX)
        return;
    struct peer *s = peers_find(p, id, id_len);
    if (s && s->id_len) {
        s->heard_ms = now_ms;
        return;
    }
    if ((p->count + 1) * 2 > p->cap) {
        uint64_t keep_since = now_ms > PEERS_FORGET_MS ? now_ms - PEERS_FORGET_MS : 0;
        peers_rebuild(p, p->cap ? p->cap : PEERS_MIN_CAP, keep_since);
        if ((p->count + 1) * 2 > p->cap)
            peers_rebuild(p, p->cap * 2, 0);
        s = peers_find(p, id, id_len);
    }
    memcpy(s->id, id, id_len);
    s->id_len = (uint8_t)id_len;
    s->heard_ms = now_ms;
    p->count++;
}

uint64_t peers_last_heard(const struct peers *p, const void *id, size_t id_len)
{
    if (id_len == 0 || id_len > PEERS_ID_MAX)
        return 0;
    const struct peer *s = peers_find(p, id, id_len);
    return s && s->id_len ? s->heard_ms : 0;
}
