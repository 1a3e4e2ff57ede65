/* printer: the plain terminal view of the log stream, `HH:MM:SS.mmm Greeting.1 | text`,
 * one stable colour per service. A slow terminal never blocks the node: past a bounded
 * backlog lines are skipped here (and counted), while the log file keeps them all. */
#ifndef DEVNODE_PRINTER_H
#define DEVNODE_PRINTER_H

#include <stdint.h>
#include <uv.h>

#include "common/logformat.h"
#include "common/strbuf.h"
#include "node/loghub.h"

enum printer_kind {
    PRINTER_TTY,
    PRINTER_PIPE,
    PRINTER_FILE,
    PRINTER_DISCARD, /* stdout is /dev/null: formatting would be wasted */
};

struct printer {
    uv_loop_t *loop;
    enum printer_kind kind;
    union {
        uv_tty_t tty;
        uv_pipe_t pipe;
    } handle;                 /* used for PRINTER_TTY / PRINTER_PIPE */
    int fd;                   /* the output fd (1) */
    int color;                /* emit ANSI colour */
    size_t name_width;        /* width of the "Service.N" column */
    struct strbuf pending;    /* formatted, not yet handed to the kernel or libuv */
    size_t inflight_bytes;    /* handed to uv_write, not yet completed */
    uint64_t skipped_lines;   /* skipped since the last notice */
    struct logformat_cache clock; /* local time formatting cache */
    int closing;
    uv_timer_t close_deadline;  /* a terminal nobody reads must not keep the node alive */
};

/* How long printer_close waits for the terminal to take the last lines. */
#define PRINTER_CLOSE_DEADLINE_MS 2000

int printer_open(struct printer *p, uv_loop_t *loop, int fd, int color, char *err, size_t errlen);
void printer_set_name_width(struct printer *p, size_t width);
void printer_on_line(void *ctx, const struct log_line *line);
/* Hands pending output to the terminal; call once per loop iteration. */
void printer_flush(struct printer *p);
/* Flushes, then closes the handle once in-flight writes are done. */
void printer_close(struct printer *p);

#endif
