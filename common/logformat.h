/* logformat: the two renderings of a log line, for humans (`HH:MM:SS.mmm Greeting.1 | text`,
 * one colour per service, escape sequences filtered) and as one JSON object (the log file,
 * `tail --json`). Shared by the node, `tail` and the dashboard so they always agree. */
#ifndef DEVNODE_LOGFORMAT_H
#define DEVNODE_LOGFORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "common/logline.h"
#include "common/strbuf.h"

/* Formatting a timestamp is the costly part of a line; it is redone once per second. */
struct logformat_clock {
    int64_t second;   /* the second `text` was formatted for; -1 initially */
    char text[32];    /* "HH:MM:SS" (local) or "2026-11-23T11:30:00." (UTC) */
};

void logformat_clock_init(struct logformat_clock *clock);

/* Appends "HH:MM:SS.mmm NAME | text\n". NAME is "Service.N" padded to name_width. With
 * colour, the child's SGR colour codes survive; without, all escapes are dropped. Cursor
 * movement, OSC titles and other control bytes never pass. */
void logformat_human(struct strbuf *sb, const struct log_line *line, struct logformat_clock *local_clock,
                     int color, size_t name_width);

/* Appends the line as one JSON object and "\n" (schema in docs/supervision.md). */
void logformat_json(struct strbuf *sb, const struct log_line *line, struct logformat_clock *utc_clock);

/* The ANSI colour code (31..96) of a service: stable across runs and programs. */
int logformat_service_color(const char *service);

/* Appends text with control bytes and escape sequences removed (keeping SGR when
 * keep_sgr). Returns 1 if an SGR sequence was kept, so the caller resets attributes. */
int logformat_clean_text(struct strbuf *sb, const char *text, size_t len, int keep_sgr);

#endif
