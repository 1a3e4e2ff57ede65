/* printer: formats lines for a human and writes them without ever blocking the loop.
 * A child's escape sequences are filtered: colour (SGR) survives when we print colour,
 * anything that moves the cursor or retitles the terminal never reaches it. */
#include "node/printer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PRINTER_BACKLOG_MAX (4u << 20)

struct printer_write {
    uv_write_t req;
    struct printer *printer;
    char *data;   /* owned */
    size_t len;
};

static const int service_palette[] = {36, 33, 32, 35, 34, 96, 93, 92, 95, 94};

unsigned printer_service_color(const char *service)
{
    unsigned h = 2166136261u;
    for (const unsigned char *s = (const unsigned char *)service; *s; s++)
        h = (h ^ *s) * 16777619u;
    return h % (sizeof service_palette / sizeof service_palette[0]);
}

int printer_open(struct printer *p, uv_loop_t *loop, int fd, int color, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->loop = loop;
    p->fd = fd;
    p->color = color;
    p->name_width = 7;
    p->cached_second = -1;
    strbuf_init(&p->pending);
    uv_handle_type type = uv_guess_handle(fd);
    int rc = 0;
    if (type == UV_TTY) {
        p->kind = PRINTER_TTY;
        rc = uv_tty_init(loop, &p->handle.tty, fd, 0);
    } else if (type == UV_NAMED_PIPE) {
        p->kind = PRINTER_PIPE;
        rc = uv_pipe_init(loop, &p->handle.pipe, 0);
        if (rc == 0)
            rc = uv_pipe_open(&p->handle.pipe, fd);
    } else {
        p->kind = PRINTER_FILE;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot use fd %d for output: %s", fd, uv_strerror(rc));
        strbuf_free(&p->pending);
        return -1;
    }
    return 0;
}

void printer_set_name_width(struct printer *p, size_t width)
{
    p->name_width = width;
}

/* Copies text, dropping control bytes and escape sequences; keeps SGR colour when allowed.
 * Returns 1 if an SGR sequence was kept (so the caller resets attributes after the line). */
static int printer_append_clean(struct strbuf *sb, const char *text, size_t len, int keep_sgr)
{
    int kept_sgr = 0;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c != 0x7f) {
            continue;
        }
        strbuf_append(sb, text + run, i - run);
        if (c == '\t') {
            strbuf_putc(sb, '\t');
        } else if (c == 0x1b && i + 1 < len && text[i + 1] == '[') {
            /* CSI: parameters, intermediates, one final byte in 0x40..0x7e */
            size_t j = i + 2;
            while (j < len && (unsigned char)text[j] >= 0x20 && (unsigned char)text[j] <= 0x3f)
                j++;
            while (j < len && (unsigned char)text[j] >= 0x20 && (unsigned char)text[j] <= 0x2f)
                j++;
            if (j < len && text[j] == 'm' && keep_sgr) {
                strbuf_append(sb, text + i, j + 1 - i);
                kept_sgr = 1;
            }
            i = j < len ? j : len - 1;
        } else if (c == 0x1b && i + 1 < len && text[i + 1] == ']') {
            /* OSC: up to BEL or ST */
            size_t j = i + 2;
            while (j < len && text[j] != 0x07 && !(text[j] == 0x1b && j + 1 < len && text[j + 1] == '\\'))
                j++;
            i = j < len && text[j] == 0x1b ? j + 1 : j;
            if (i >= len)
                i = len - 1;
        } else if (c == 0x1b && i + 1 < len) {
            i++; /* two-byte escape */
        }
        run = i + 1;
    }
    if (run < len)
        strbuf_append(sb, text + run, len - run);
    return kept_sgr;
}

static void printer_format(struct printer *p, const struct log_line *line)
{
    struct strbuf *sb = &p->pending;
    int64_t second = line->wall_ns / 1000000000;
    if (second != p->cached_second) {
        time_t t = (time_t)second;
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(p->cached_clock, sizeof p->cached_clock, "%H:%M:%S", &tm);
        p->cached_second = second;
    }
    char name[160];
    if (line->instance >= 0)
        snprintf(name, sizeof name, "%s.%d", line->service, line->instance);
    else
        snprintf(name, sizeof name, "%s", line->service);
    int ms = (int)((line->wall_ns % 1000000000) / 1000000);
    if (p->color) {
        int code = line->stream == LOG_STREAM_NODE ? 1 : service_palette[printer_service_color(line->service)];
        strbuf_printf(sb, "\033[2m%s.%03d\033[0m \033[%dm%-*s |\033[0m ", p->cached_clock, ms, code,
                      (int)p->name_width, name);
        if (line->stream == LOG_STREAM_NODE && line->level >= LOG_LEVEL_WARNING)
            strbuf_puts(sb, line->level >= LOG_LEVEL_ERROR ? "\033[31m" : "\033[33m");
    } else {
        strbuf_printf(sb, "%s.%03d %-*s | ", p->cached_clock, ms, (int)p->name_width, name);
    }
    int kept = printer_append_clean(sb, line->text, line->len, p->color);
    if (p->color && (kept || (line->stream == LOG_STREAM_NODE && line->level >= LOG_LEVEL_WARNING)))
        strbuf_puts(sb, "\033[0m");
    strbuf_putc(sb, '\n');
}

void printer_on_line(void *ctx, const struct log_line *line)
{
    struct printer *p = ctx;
    if (p->closing)
        return;
    if (p->inflight_bytes + p->pending.len > PRINTER_BACKLOG_MAX) {
        p->skipped_lines++;
        return;
    }
    if (p->skipped_lines) {
        char note[160];
        int n = snprintf(note, sizeof note,
                         "[devnode: %llu lines not shown, the terminal was too slow; all are in the log file]",
                         (unsigned long long)p->skipped_lines);
        struct log_line notice = {.wall_ns = line->wall_ns, .service = "devnode", .instance = -1,
                                  .stream = LOG_STREAM_NODE, .level = LOG_LEVEL_WARNING,
                                  .text = note, .len = (size_t)n};
        p->skipped_lines = 0;
        printer_format(p, &notice);
    }
    printer_format(p, line);
}

static void printer_after_write(uv_write_t *req, int status)
{
    struct printer_write *w = (struct printer_write *)req;
    struct printer *p = w->printer;
    p->inflight_bytes -= w->len;
    free(w->data);
    free(w);
    (void)status; /* a closed terminal is not the node's failure; lines stay in the log file */
    if (p->closing && p->inflight_bytes == 0 && !uv_is_closing((uv_handle_t *)&p->handle))
        uv_close((uv_handle_t *)&p->handle, NULL);
}

void printer_flush(struct printer *p)
{
    if (p->pending.len == 0)
        return;
    if (p->kind == PRINTER_FILE) {
        size_t done = 0;
        while (done < p->pending.len) {
            ssize_t n = write(p->fd, p->pending.data + done, p->pending.len - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            done += (size_t)n;
        }
        strbuf_reset(&p->pending);
        return;
    }
    uv_stream_t *stream = (uv_stream_t *)&p->handle;
    size_t offset = 0;
    if (p->inflight_bytes == 0) {
        uv_buf_t buf = uv_buf_init(p->pending.data, (unsigned)p->pending.len);
        int n = uv_try_write(stream, &buf, 1);
        if (n > 0)
            offset = (size_t)n;
    }
    if (offset < p->pending.len) {
        struct printer_write *w = malloc(sizeof *w);
        char *copy = w ? malloc(p->pending.len - offset) : NULL;
        if (!copy) {
            free(w);
            strbuf_reset(&p->pending);
            return;
        }
        memcpy(copy, p->pending.data + offset, p->pending.len - offset);
        w->printer = p;
        w->data = copy;
        w->len = p->pending.len - offset;
        uv_buf_t buf = uv_buf_init(copy, (unsigned)w->len);
        if (uv_write(&w->req, stream, &buf, 1, printer_after_write) == 0) {
            p->inflight_bytes += w->len;
        } else {
            free(copy);
            free(w);
        }
    }
    strbuf_reset(&p->pending);
}

void printer_close(struct printer *p)
{
    printer_flush(p);
    p->closing = 1;
    if (p->kind != PRINTER_FILE && p->inflight_bytes == 0)
        uv_close((uv_handle_t *)&p->handle, NULL);
    strbuf_free(&p->pending);
}
