/* logring: the node's memory of recent log lines. A bounded ring that copies every line into
 * a byte arena (no malloc per line), finds a line by seq in O(1), and keeps an index from
 * trace_id to a summary of that trace plus a link from each line to the previous line of
 * its trace, so a trace is read by walking links, never by scanning the ring.
 * Pure data structure: no I/O, no libuv, no ZeroMQ. */
#ifndef DEVNODE_LOGRING_H
#define DEVNODE_LOGRING_H

#include <stddef.h>
#include <stdint.h>

#include "common/logline.h"

/* Average text budget per buffered line: the arena holds max_lines * this many bytes.
 * A full ring costs LOGRING_ENTRY_BYTES + the line's text + its trace id per line,
 * i.e. about 140 bytes for a 100-byte line (200,000 lines: about 28 MiB). */
#define LOGRING_BYTES_PER_LINE 128
#define LOGRING_MIN_ARENA_BYTES (1u << 20)  /* so one 64 KiB line always fits */
#define LOGRING_TRACE_SERVICES 16           /* services remembered per trace */
#define LOGRING_MAX_SERVICES 4096           /* distinct service names interned */

/* One buffered line (40 bytes). Text and trace id live in the arena, back to back. */
struct logring_entry {
    int64_t wall_ns;
    uint64_t pos;             /* virtual arena offset of the text; physical = pos % arena_bytes */
    uint32_t len;             /* text bytes */
    uint32_t trace_prev;      /* seq distance to the previous line of the same trace; 0: none */
    int32_t pid;
    int32_t instance;
    uint16_t service;         /* interned service id */
    uint8_t stream;           /* enum log_stream */
    uint8_t level;            /* enum log_level */
    uint8_t flags;            /* LOG_LINE_SPLIT | LOG_LINE_UNTERMINATED */
    uint8_t trace_len;        /* bytes of the trace id after the text; 0: no trace */
};
#define LOGRING_ENTRY_BYTES sizeof(struct logring_entry)

/* What the ring knows of one trace, kept even when its lines have left the ring. */
struct logring_trace {
    char id[TRACE_ID_MAX + 1];
    uint8_t id_len;
    uint8_t service_count;    /* entries used in services[] */
    uint8_t error;            /* some line was at level error or above */
    uint8_t services_truncated; /* more services than LOGRING_TRACE_SERVICES touched it */
    int64_t first_ns;         /* wall time of its first line */
    int64_t last_ns;          /* wall time of its newest line */
    uint64_t newest_seq;      /* seq of its newest line: where a walk starts */
    uint64_t lines;           /* lines seen in total */
    uint32_t hash;
    uint32_t bucket_next;     /* slot + 1 of the next trace in the hash bucket; 0: end */
    uint32_t lru_prev, lru_next;   /* slot + 1; most recently updated at lru_head */
    uint32_t age_prev, age_next;   /* slot + 1; most recently created at age_head */
    uint16_t services[LOGRING_TRACE_SERVICES]; /* interned ids in first-seen order */
};

/* Called for each line about to be evicted (the line is still readable with logring_get). */
typedef void (*logring_evict_cb)(void *ctx, uint64_t seq);

struct logring {
    struct logring_entry *entries;  /* max_lines slots, circular */
    size_t max_lines;
    size_t count;                   /* lines held */
    size_t first_index;             /* slot of the oldest line */
    uint64_t first_seq;             /* seq of the oldest line held (valid when count > 0) */
    uint64_t next_seq;              /* seq the next appended line must carry; 0 before the first */

    char *arena;
    uint64_t arena_bytes;
    uint64_t head_pos;              /* virtual offset where the next text goes */

    char **service_names;           /* interned, owned; id = index */
    size_t service_count;
    uint16_t *service_buckets;      /* id + 1, open addressing; 0: empty */
    size_t service_bucket_mask;
    uint16_t last_service;          /* id of the last name interned or found */

    struct logring_trace *traces;   /* max_traces slots */
    size_t max_traces;
    size_t trace_count;
    uint32_t *trace_buckets;        /* slot + 1 of the first trace in the bucket; 0: empty */
    size_t trace_bucket_mask;
    uint32_t lru_head, lru_tail;    /* slot + 1 */
    uint32_t age_head, age_tail;    /* slot + 1 */

    logring_evict_cb on_evict;
    void *on_evict_ctx;

    uint64_t evicted_lines;         /* lines pushed out since init */
    uint64_t evicted_traces;        /* summaries dropped to stay bounded */
};

/* Sizes the ring for max_lines lines and max_traces trace summaries (each at least 1).
 * Memory is reserved, not touched: the resident size grows as lines arrive.
 * Returns 0 or -ENOMEM. */
int logring_init(struct logring *ring, size_t max_lines, size_t max_traces);
void logring_free(struct logring *ring);
void logring_set_evict_cb(struct logring *ring, logring_evict_cb cb, void *ctx);

/* Copies the line in, evicting the oldest lines as needed. line->seq must follow the last
 * appended seq; a gap (a line the ring never saw) empties the ring first, so seq arithmetic
 * stays exact. Text longer than half the arena is cut to fit. */
void logring_append(struct logring *ring, const struct log_line *line);

/* Seq of the oldest and newest line held; first > last when the ring is empty. */
uint64_t logring_first_seq(const struct logring *ring);
uint64_t logring_last_seq(const struct logring *ring);

/* Fills *out with a view of line `seq` (text points into the arena and stays valid until the
 * next append). Returns 0, or -1 when that seq is not held. */
int logring_get(const struct logring *ring, uint64_t seq, struct log_line *out);
/* The raw entry of a held seq, or NULL: cheaper than logring_get for filtering. */
const struct logring_entry *logring_entry_at(const struct logring *ring, uint64_t seq);
/* The trace id bytes of an entry (entry->trace_len of them). */
const char *logring_entry_trace(const struct logring *ring, const struct logring_entry *e);

const char *logring_service_name(const struct logring *ring, uint16_t id);
/* The interned id of a service name, or -1 if the ring never saw it. */
int logring_service_id(const struct logring *ring, const char *name);

/* The summary of a trace, or NULL when unknown (never seen, or dropped as least recent). */
const struct logring_trace *logring_trace_find(const struct logring *ring, const char *trace_id);
/* Writes the seqs of the trace's lines still held, newest first, up to cap. Sets *complete to
 * 1 when the walk reached the trace's first line (nothing evicted or cut by cap). Returns the
 * number written. */
size_t logring_trace_seqs(const struct logring *ring, const struct logring_trace *trace, uint64_t *out,
                          size_t cap, int *complete);
/* The most recently created trace summaries, newest first; returns how many were written. */
size_t logring_traces_newest(const struct logring *ring, const struct logring_trace **out, size_t cap);

#endif
