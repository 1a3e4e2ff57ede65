/* tailprint: the human format must stay byte-for-byte the node's printer's (the same
 * logformat_human), so a tail of the node reads like the node's own terminal. */
#include "tail/tailprint.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void tailprint_init(struct tailprint *p, enum tailprint_mode mode, int color)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->color = color;
    p->name_width = 7;
    logformat_cache_init(&p->clock);
    strbuf_init(&p->out);
}

void tailprint_free(struct tailprint *p)
{
    strbuf_free(&p->out);
}

static size_t name_len(const struct log_line *line)
{
    size_t n = strlen(line->service);
    if (line->instance >= 0) {
        n += 2;
        for (int i = line->instance; i >= 10; i /= 10)
            n++;
    }
    return n;
}

void tailprint_measure(struct tailprint *p, const struct log_line *line)
{
    size_t n = name_len(line);
    if (n > p->name_width)
        p->name_width = n;
}

static void timeline_line(struct tailprint *p, const struct log_line *line)
{
    if (!p->has_base) {
        p->base_ns = line->wall_ns;
        p->has_base = 1;
    }
    /* In whole microseconds, the log file's precision, so the node and the files agree. */
    char offset[48];
    long long us = line->wall_ns / 1000 - p->base_ns / 1000;
    snprintf(offset, sizeof offset, "+%5lld.%03lld ms", us / 1000, us % 1000);
    if (p->color) {
        strbuf_puts(&p->out, "\033[2m");
        strbuf_puts(&p->out, offset);
        strbuf_puts(&p->out, "\033[0m \033[");
        strbuf_append_u64(&p->out, (unsigned long long)(line->stream == LOG_STREAM_NODE
                                                            ? 1 : logformat_service_color(line->service)));
        strbuf_putc(&p->out, 'm');
    } else {
        strbuf_puts(&p->out, offset);
        strbuf_putc(&p->out, ' ');
    }
    size_t before = p->out.len;
    strbuf_puts(&p->out, line->service);
    if (line->instance >= 0) {
        strbuf_putc(&p->out, '.');
        strbuf_append_u64(&p->out, (unsigned long long)line->instance);
    }
    for (size_t used = p->out.len - before; used < p->name_width; used++)
        strbuf_putc(&p->out, ' ');
    strbuf_puts(&p->out, p->color ? " |\033[0m " : " | ");
    int kept = logformat_clean_text(&p->out, line->text, line->len, p->color);
    if (p->color && kept)
        strbuf_puts(&p->out, "\033[0m");
    strbuf_putc(&p->out, '\n');
}

void tailprint_line(struct tailprint *p, const struct log_line *line)
{
    tailprint_measure(p, line);
    switch (p->mode) {
    case TAILPRINT_HUMAN:
        logformat_human(&p->out, line, &p->clock, p->color, p->name_width);
        break;
    case TAILPRINT_JSON:
        logformat_json(&p->out, line, &p->clock);
        break;
    case TAILPRINT_TIMELINE:
        timeline_line(p, line);
        break;
    }
}

void tailprint_skipped(struct tailprint *p, uint64_t count)
{
    if (p->mode == TAILPRINT_JSON) {
        strbuf_puts(&p->out, "{\"skipped\":");
        strbuf_append_u64(&p->out, count);
        strbuf_puts(&p->out, "}\n");
        return;
    }
    if (p->color)
        strbuf_puts(&p->out, "\033[33m");
    strbuf_puts(&p->out, "[devnode: ");
    strbuf_append_u64(&p->out, count);
    strbuf_puts(&p->out, " lines skipped]"); /* one fixed form: scripts match it */
    if (p->color)
        strbuf_puts(&p->out, "\033[0m");
    strbuf_putc(&p->out, '\n');
}

int tailprint_flush(struct tailprint *p, int fd)
{
    size_t done = 0;
    while (done < p->out.len) {
        ssize_t n = write(fd, p->out.data + done, p->out.len - done);
        if (n < 0 && errno == EINTR && !(p->interrupted && *p->interrupted))
            continue;
        if (n <= 0) {
            strbuf_reset(&p->out);
            return -1;
        }
        done += (size_t)n;
    }
    strbuf_reset(&p->out);
    return 0;
}
