/* linebuf: one allocation per kept line holding its service name and text; with keep_last
 * the buffer is a ring, so reading a huge log for its last 10 lines stays within 10 lines. */
#include "tail/linebuf.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

void linebuf_init(struct linebuf *b, size_t keep_last)
{
    memset(b, 0, sizeof *b);
    b->keep_last = keep_last;
}

static void line_release(struct log_line *l)
{
    free((char *)l->service); /* the one allocation of the copy starts with the service name */
}

void linebuf_free(struct linebuf *b)
{
    for (size_t i = 0; i < b->count; i++)
        line_release(&b->lines[i]);
    free(b->lines);
    memset(b, 0, sizeof *b);
}

static void copy_line(struct log_line *dst, const struct log_line *src)
{
    size_t slen = strlen(src->service);
    char *mem = xmalloc(slen + 1 + src->len + 1);
    memcpy(mem, src->service, slen + 1);
    memcpy(mem + slen + 1, src->text, src->len);
    mem[slen + 1 + src->len] = '\0';
    *dst = *src;
    dst->service = mem;
    dst->text = mem + slen + 1;
}

void linebuf_add(struct linebuf *b, const struct log_line *line)
{
    if (b->keep_last && b->count == b->keep_last) {
        line_release(&b->lines[b->start]);
        copy_line(&b->lines[b->start], line);
        b->start = (b->start + 1) % b->keep_last;
        return;
    }
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        if (b->keep_last && cap > b->keep_last)
            cap = b->keep_last;
        struct log_line *p = xrealloc(b->lines, cap * sizeof *p);
        b->lines = p;
        b->cap = cap;
    }
    copy_line(&b->lines[b->count++], line);
}

const struct log_line *linebuf_get(const struct linebuf *b, size_t i)
{
    size_t k = b->start + i;
    if (k >= b->count)
        k -= b->count;
    return &b->lines[k];
}

static int by_time(const void *a, const void *b)
{
    const struct log_line *x = a, *y = b;
    if (x->wall_ns != y->wall_ns)
        return x->wall_ns < y->wall_ns ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void linebuf_sort_by_time(struct linebuf *b)
{
    qsort(b->lines, b->count, sizeof *b->lines, by_time);
    b->start = 0;
}
