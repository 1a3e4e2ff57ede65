/* tailprint: how `devnode tail` shows lines: the node's own human format (logformat_human),
 * JSON lines (logformat_json), or a trace's timeline (`+  12.345 ms Greeting.1 | text`), plus
 * the notice for lines a slow client missed. Output is collected and written in large chunks. */
#ifndef DEVNODE_TAILPRINT_H
#define DEVNODE_TAILPRINT_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>

#include "common/logformat.h"
#include "common/strbuf.h"

enum tailprint_mode { TAILPRINT_HUMAN, TAILPRINT_JSON, TAILPRINT_TIMELINE };

struct tailprint {
    enum tailprint_mode mode;
    int color;
    size_t name_width;            /* widest "Service.N" seen so far, at least 7 ("devnode") */
    int64_t base_ns;              /* timeline: wall time of the first line */
    int has_base;
    struct logformat_cache clock;
    struct strbuf out;
    const volatile sig_atomic_t *interrupted; /* when set and non-zero, a write cut by a signal gives up */
};

void tailprint_init(struct tailprint *p, enum tailprint_mode mode, int color);
void tailprint_free(struct tailprint *p);
/* Widens the name column for a line about to be shown (call for a whole batch first, so the
 * batch lines up). */
void tailprint_measure(struct tailprint *p, const struct log_line *line);
void tailprint_line(struct tailprint *p, const struct log_line *line);
/* "[devnode: N lines skipped]", or {"skipped": N} in JSON mode. */
void tailprint_skipped(struct tailprint *p, uint64_t count);
/* Writes what is collected to fd. 0, or -1 when the reader is gone (EPIPE) or writing failed. */
int tailprint_flush(struct tailprint *p, int fd);

#endif
