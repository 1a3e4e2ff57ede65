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

/* What the formatters remember from one line to the next: a run of lines mostly shares its
 * second, its source and consecutive seqs, so those are formatted once and copied after.
 * One cache per output (its time zone is the formatter's: local for human, UTC for JSON). */
struct logformat_cache {
    int64_t second;   /* the second `text` was formatted for; -1 initially */
    char text[32];    /* "HH:MM:SS" (local) or "2026-11-23T11:30:00." (UTC) */

    /* logformat_human only: the name column and what surrounds it, for the last source */
    char name_service[LOGFORMAT_CACHED_SERVICE_MAX]; /* "" : nothing cached */
    int name_instance, name_node, name_color;
    size_t name_width;
    char name_text[LOGFORMAT_CACHED_SERVICE_MAX + 256];
    size_t name_len;

    /* logformat_json only */
    uint64_t seq;              /* the seq whose digits are in seq_text; 0 initially */
    char seq_text[24];
    size_t seq_len;
    char source_service[LOGFORMAT_CACHED_SERVICE_MAX]; /* the source of `source`, NUL-ended */
    int source_instance, source_pid;
    enum log_stream source_stream;
    char source[LOGFORMAT_CACHED_SERVICE_MAX * 6 + 96]; /* ,"service":...,"stream":"..." */
    size_t source_len;         /* 0: nothing cached */
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
