/* linebuf: owned copies of log lines on the client side, for what must be seen whole before
 * it is printed: a trace's timeline (sorted by time) and the newest N lines of the log files. */
#ifndef DEVNODE_LINEBUF_H
#define DEVNODE_LINEBUF_H

#include <stddef.h>

#include "common/logline.h"

struct linebuf {
    struct log_line *lines;   /* service and text point into each line's own allocation */
    size_t count;
    size_t cap;
    size_t keep_last;         /* 0: keep every line; else only the newest keep_last */
    size_t start;             /* index of the oldest line once the buffer wrapped */
};

void linebuf_init(struct linebuf *b, size_t keep_last);
void linebuf_free(struct linebuf *b);
/* Copies the line (its service and text too). */
void linebuf_add(struct linebuf *b, const struct log_line *line);
/* The i-th line in order (oldest first, or by time after linebuf_sort_by_time). */
const struct log_line *linebuf_get(const struct linebuf *b, size_t i);
/* Orders by wall time, then seq: the order of a trace's timeline. */
void linebuf_sort_by_time(struct linebuf *b);

#endif
