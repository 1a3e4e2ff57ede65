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
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PRINTER_BACKLOG_MAX (4u << 20)

struct printer_write {
    uv_write_t req;
    struct printer *printer;
    char *data;   /* owned */
    size_t len;
};

int printer_open(struct printer *p, uv_loop_t *loop, int fd, int color, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->loop = loop;
    p->fd = fd;
    p->color = color;
    p->name_width = 7;
    logformat_cache_init(&p->clock);
    strbuf_init(&p->pending);
    uv_handle_type type = uv_guess_handle(fd);
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
        p->kind = PRINTER_DISCARD;
    } else if (type == UV_TTY) {
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
    uv_timer_init(loop, &p->close_deadline);
    p->close_deadline.data = p;
    return 0;
}

void printer_set_name_width(struct printer *p, size_t width)
{
    p->name_width = width;
}

static void printer_format(struct printer *p, const struct log_line *line)
{
    logformat_human(&p->pending, line, &p->clock, p->color, p->name_width);
}

void printer_on_line(void *ctx, const struct log_line *line)
{
    struct printer *p = ctx;
    if (p->closing || p->kind == PRINTER_DISCARD)
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

static void printer_close_handles(struct printer *p)
{
    if (!uv_is_closing((uv_handle_t *)&p->handle))
        uv_close((uv_handle_t *)&p->handle, NULL); /* pending writes end with UV_ECANCELED */
    if (!uv_is_closing((uv_handle_t *)&p->close_deadline))
        uv_close((uv_handle_t *)&p->close_deadline, NULL);
}

static void printer_after_write(uv_write_t *req, int status)
{
    struct printer_write *w = (struct printer_write *)req;
    struct printer *p = w->printer;
    p->inflight_bytes -= w->len;
    free(w->data);
    free(w);
    (void)status; /* a closed terminal is not the node's failure; lines stay in the log file */
    if (p->closing && p->inflight_bytes == 0)
        printer_close_handles(p);
}

static void printer_on_close_deadline(uv_timer_t *timer)
{
    /* Nobody reads our stdout (a full pipe): give up on the last lines, they are in the
     * log file, and let the node exit. */
    printer_close_handles(timer->data);
}

void printer_flush(struct printer *p)
{
    if (p->pending.len == 0)
        return;
    if (p->kind == PRINTER_FILE || p->kind == PRINTER_DISCARD) {
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
    if (p->kind == PRINTER_TTY || p->kind == PRINTER_PIPE) {
        if (p->inflight_bytes == 0)
            printer_close_handles(p);
        else
            uv_timer_start(&p->close_deadline, printer_on_close_deadline, PRINTER_CLOSE_DEADLINE_MS, 0);
    } else {
        uv_close((uv_handle_t *)&p->close_deadline, NULL);
    }
    strbuf_free(&p->pending);
}
