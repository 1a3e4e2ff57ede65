/* logformat: the two renderings of a log line, for humans (`HH:MM:SS.mmm Greeting.1 | text`,
 * one colour per service, escape sequences filtered) and as one JSON object (the log file,
 * `tail --json`). Shared by the node, `tail` and the dashboard so they always agree. */
#ifndef DEVNODE_LOGFORMAT_H
#define DEVNODE_LOGFORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "common/logline.h"
#include "common/strbuf.h"

/* Longer service names are formatted every time rather than cached. */
#define LOGFORMAT_CACHED_SERVICE_MAX 64

/* A formatted piece of a line that depends only on the line's source (service, instance, pid,
 * stream) and the formatter's options: kept for the last source and copied while it lasts. */
struct logformat_fragment {
    char service[LOGFORMAT_CACHED_SERVICE_MAX];
    int instance, pid, color;
    enum log_stream stream;
    size_t width;
    char text[LOGFORMAT_CACHED_SERVICE_MAX * 6 + 256];
    size_t len;               /* 0: nothing kept */
};

/* What the formatters remember from one line to the next: a run of lines mostly shares its
 * second, its source and consecutive seqs, so those are formatted once and copied after.
 * One cache per output (its time zone is the formatter's: local for human, UTC for JSON). */
struct logformat_cache {
    int64_t second;   /* the second `text` was formatted for; -1 initially */
    char text[32];    /* "HH:MM:SS" (local) or "2026-11-23T11:30:00." (UTC) */
    struct logformat_fragment source; /* human: the name column; JSON: ,"service".."stream" */
    /* The whole time of the last line, fraction included: the lines of one pipe read share it. */
    int64_t stamp_ns;
    char stamp[40];   /* "HH:MM:SS.mmm" (local) or "2026-11-23T11:30:00.123456" (UTC) */
    size_t stamp_len; /* 0: nothing cached */

    /* logformat_json only */
    uint64_t seq;              /* the seq whose digits are in seq_text; 0 initially */
    char seq_text[24];
    size_t seq_len;
};

void logformat_cache_init(struct logformat_cache *cache);

/* Appends "HH:MM:SS.mmm NAME | text\n". NAME is "Service.N" padded to name_width. With
 * colour, the child's SGR colour codes survive; without, all escapes are dropped. Cursor
 * movement, OSC titles and other control bytes never pass. */
void logformat_human(struct strbuf *sb, const struct log_line *line, struct logformat_cache *local_cache,
                     int color, size_t name_width);

/* Appends the line as one JSON object and "\n" (schema in docs/supervision.md). */
void logformat_json(struct strbuf *sb, const struct log_line *line, struct logformat_cache *utc_cache);

/* The ANSI colour code (31..96) of a service: stable across runs and programs. */
int logformat_service_color(const char *service);

/* Appends text with control bytes and escape sequences removed (keeping SGR when
 * keep_sgr). Returns 1 if an SGR sequence was kept, so the caller resets attributes. */
int logformat_clean_text(struct strbuf *sb, const char *text, size_t len, int keep_sgr);

#endif
