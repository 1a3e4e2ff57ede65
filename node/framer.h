/* framer: turns the byte stream of one child pipe into whole lines.
 * It never holds more than FRAMER_MAX_LINE (+1 for a pending "\r") per stream, never tears a line:
 * a line longer than the limit is cut into records marked FRAMER_SPLIT. */
#ifndef DEVNODE_FRAMER_H
#define DEVNODE_FRAMER_H

#include <stddef.h>

#define FRAMER_MAX_LINE (64 * 1024)

enum framer_flags {
    FRAMER_SPLIT = 1,        /* the line goes on in the next record (it was longer than the limit) */
    FRAMER_UNTERMINATED = 2, /* flushed at end of stream without a newline */
};

/* Called once per line, without the newline (and without a "\r" before it).
 * `text` is valid only during the call. */
typedef void (*framer_line_cb)(void *ctx, const char *text, size_t len, unsigned flags);

struct framer {
    char *buf;   /* pending partial line, owned; NULL until needed */
    size_t len;  /* bytes pending */
    size_t cap;  /* allocated size of buf, at most FRAMER_MAX_LINE */
};

void framer_init(struct framer *f);
/* Feeds bytes; emits every complete line. Returns 0, or -1 on allocation failure
 * (the pending bytes are then emitted as a split record, nothing is lost silently). */
int framer_feed(struct framer *f, const char *data, size_t len, framer_line_cb cb, void *ctx);
/* End of stream: emits a pending partial line flagged FRAMER_UNTERMINATED. */
void framer_flush(struct framer *f, framer_line_cb cb, void *ctx);
void framer_free(struct framer *f);

#endif
