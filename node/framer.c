/* framer: cuts one child pipe's byte stream into line records for the log hub.
 * Must never drop, reorder or alter a byte (except the "\n" and a "\r" right before it),
 * never hold more than FRAMER_MAX_LINE bytes, and never copy a line it can emit in place. */
#include "node/framer.h"

#include <stdlib.h>
#include <string.h>

/* Records of a line longer than the limit: the line's content (the bytes before "\n",
 * less the "\r" of a CRLF) is cut into FRAMER_MAX_LINE pieces flagged FRAMER_SPLIT while
 * more than the limit remains. The cut depends only on the bytes, never on how the pipe
 * reads chunked them. To tell a CRLF from a "\r" inside the text, the pending buffer may
 * hold one byte more than the limit: a "\r" right after a full piece.
 *
 * The callback must not call back into the same framer. */

#define FRAMER_MIN_CAP 256

_Static_assert(FRAMER_MIN_CAP <= FRAMER_MAX_LINE, "initial buffer must fit the limit");

void framer_init(struct framer *f)
{
    f->buf = NULL;
    f->len = 0;
    f->cap = 0;
}

void framer_free(struct framer *f)
{
    free(f->buf);
    framer_init(f);
}

/* Emits a complete raw line (no "\n") that is `len` bytes of contiguous memory. */
static void emit_line(const char *p, size_t len, framer_line_cb cb, void *ctx)
{
    if (len > 0 && p[len - 1] == '\r')
        len--;
    while (len > FRAMER_MAX_LINE) {
        cb(ctx, p, FRAMER_MAX_LINE, FRAMER_SPLIT);
        p += FRAMER_MAX_LINE;
        len -= FRAMER_MAX_LINE;
    }
    cb(ctx, p, len, 0);
}

/* Emits bytes that belong to a line that goes on, all flagged FRAMER_SPLIT. Used only
 * when the pending buffer cannot grow, so that nothing is lost. */
static void emit_split(const char *p, size_t len, framer_line_cb cb, void *ctx)
{
    while (len > 0) {
        size_t n = len < FRAMER_MAX_LINE ? len : FRAMER_MAX_LINE;
        cb(ctx, p, n, FRAMER_SPLIT);
        p += n;
        len -= n;
    }
}

/* Makes room for `need` pending bytes (need <= FRAMER_MAX_LINE). Geometric growth keeps
 * the thousands of mostly short-lined streams small and long lines cheap. */
static int ensure_cap(struct framer *f, size_t need)
{
    if (need <= f->cap)
        return 0;
    size_t cap = f->cap ? f->cap : FRAMER_MIN_CAP;
    while (cap < need)
        cap *= 2;
    if (cap > FRAMER_MAX_LINE + 1)
        cap = FRAMER_MAX_LINE + 1;
    char *buf = realloc(f->buf, cap);
    if (!buf)
        return -1;
    f->buf = buf;
    f->cap = cap;
    return 0;
}

/* Adds `len` bytes (no "\n" among them) to the pending partial line. A full buffer
 * followed by more bytes means the line is longer than the limit: the full buffer goes
 * out as a split piece. Returns -1 if the buffer could not grow (bytes are then emitted
 * as split records and the pending line is empty). */
static int pending_add(struct framer *f, const char *p, size_t len, framer_line_cb cb, void *ctx)
{
    while (len > 0) {
        if (f->len == FRAMER_MAX_LINE && p[0] == '\r') {
            /* Maybe a CRLF ending a line of exactly the limit: hold it until we know. */
            if (ensure_cap(f, FRAMER_MAX_LINE + 1) == 0) {
                f->buf[f->len++] = '\r';
                p++;
                len--;
                continue;
            }
        }
        if (f->len >= FRAMER_MAX_LINE) {
            /* More text follows a full piece: it was a split, and a held "\r" was text. */
            cb(ctx, f->buf, FRAMER_MAX_LINE, FRAMER_SPLIT);
            size_t rest = f->len - FRAMER_MAX_LINE;
            if (rest)
                f->buf[0] = f->buf[FRAMER_MAX_LINE];
            f->len = rest;
        }
        size_t room = FRAMER_MAX_LINE - f->len;
        size_t n = len < room ? len : room;
        if (ensure_cap(f, f->len + n) < 0) {
            if (f->len > 0)
                cb(ctx, f->buf, f->len, FRAMER_SPLIT);
            f->len = 0;
            emit_split(p, len, cb, ctx);
            return -1;
        }
        memcpy(f->buf + f->len, p, n);
        f->len += n;
        p += n;
        len -= n;
    }
    return 0;
}

int framer_feed(struct framer *f, const char *data, size_t len, framer_line_cb cb, void *ctx)
{
    const char *p = data;
    const char *end = data + len;
    int rc = 0;

    /* Finish the line a previous feed left pending; it must be copied to be whole. */
    if (f->len > 0 && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        if (pending_add(f, p, (size_t)(stop - p), cb, ctx) < 0)
            rc = -1;
        if (!nl)
            return rc;
        /* pending_add leaves at most FRAMER_MAX_LINE bytes: this is the last piece. */
        emit_line(f->buf, f->len, cb, ctx);
        f->len = 0;
        p = nl + 1;
    }

    /* Fast path: at a line start, every complete line goes out straight from `data`. */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        emit_line(p, (size_t)(nl - p), cb, ctx);
        p = nl + 1;
    }

    /* Only the trailing partial line is copied, and never more than the limit: what is
     * beyond it is already known to be split pieces. */
    size_t tail = (size_t)(end - p);
    while (tail > FRAMER_MAX_LINE && !(tail == FRAMER_MAX_LINE + 1 && p[FRAMER_MAX_LINE] == '\r')) {
        cb(ctx, p, FRAMER_MAX_LINE, FRAMER_SPLIT);
        p += FRAMER_MAX_LINE;
        tail -= FRAMER_MAX_LINE;
    }
    if (tail > 0 && pending_add(f, p, tail, cb, ctx) < 0)
        rc = -1;
    return rc;
}

void framer_flush(struct framer *f, framer_line_cb cb, void *ctx)
{
    if (f->len == 0)
        return;
    /* No "\n" came, so a trailing "\r" is part of the text, not of a CRLF. */
    size_t len = f->len;
    f->len = 0;
    if (len > FRAMER_MAX_LINE) {
        cb(ctx, f->buf, FRAMER_MAX_LINE, FRAMER_SPLIT);
        cb(ctx, f->buf + FRAMER_MAX_LINE, len - FRAMER_MAX_LINE, FRAMER_UNTERMINATED);
        return;
    }
    cb(ctx, f->buf, len, FRAMER_UNTERMINATED);
}
