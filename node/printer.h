/* printer: the plain view of the log stream on the node's stdout, `HH:MM:SS.mmm Greeting.1 | text`,
 * one stable colour per service. Formatting and writing run on a thread of the printer's own;
 * the loop only copies each line. Two ways to keep up, never by blocking the loop:
 * - lossy (default on a terminal): past a bounded backlog lines are skipped here (counted,
 *   and a notice says so); the log file keeps them all.
 * - lossless (default for a file or a pipe): every line reaches stdout; past the backlog the
 *   printer asks its owner to stop reading the workers' output until it has caught up. */
#ifndef DEVNODE_PRINTER_H
#define DEVNODE_PRINTER_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "common/logformat.h"
#include "common/strbuf.h"
#include "node/loghub.h"

enum printer_kind {
    PRINTER_TTY,
    PRINTER_PIPE,    /* or a socket, or another device: its reader may stall */
    PRINTER_FILE,    /* a regular file: writes do not wait for a reader */
    PRINTER_DISCARD, /* stdout is /dev/null: formatting would be wasted */
};

enum printer_mode {
    PRINTER_AUTO,     /* lossy on a terminal, lossless otherwise */
    PRINTER_LOSSY,
    PRINTER_LOSSLESS,
};

/* What a lossless printer asks of whoever feeds it, and what it reports. */
enum printer_event {
    PRINTER_CAUGHT_UP,     /* the backlog drained: read all output again */
    PRINTER_BEHIND,        /* past PRINTER_BACKLOG_BYTES: hold output back (what readiness needs may pass) */
    PRINTER_FULL,          /* past PRINTER_BACKLOG_HARD_BYTES: hold back all output */
    PRINTER_OUTPUT_FAILED, /* stdout failed (the reader went away: EPIPE); printing ended */
    PRINTER_CLOSED,        /* printer_close is done; unprinted_lines never reached stdout */
};

typedef void (*printer_event_cb)(void *ctx, enum printer_event event);

struct printer_chunk; /* staged lines, private to printer.c */

struct printer {
    uv_loop_t *loop;
    enum printer_kind kind;
    int lossless;
    int fd;                   /* the output fd (1) */
    int color;                /* emit ANSI colour */
    size_t name_width;        /* width of the "Service.N" column; set before the first line */
    printer_event_cb on_event;
    void *on_event_ctx;

    /* The loop thread's. */
    struct printer_chunk *staging; /* lines not handed to the thread yet; NULL when none */
    enum printer_event backlog;    /* CAUGHT_UP, BEHIND or FULL: what the owner was told last */
    uint64_t skipped_lines;        /* lossy: skipped since the last notice */
    uint64_t unprinted_lines;      /* lines that did not reach stdout (after a failure, at close) */
    int output_errno;              /* why stdout failed, 0 while it works */
    int closing;
    int thread_running;
    uv_async_t wakeup;             /* the thread: backlog drained, stdout failed, or done */
    uv_timer_t close_deadline;     /* a stdout nobody reads must not keep the node alive */

    /* Shared with the thread, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t wake;           /* the thread: lines handed over, or stop */
    struct printer_chunk *queue;   /* handed over, not written yet, oldest first */
    struct printer_chunk **queue_tail;
    struct printer_chunk *spare;   /* emptied chunks kept for reuse */
    size_t spare_count;
    size_t backlog_bytes;          /* staged bytes handed over and not yet written */
    uint64_t failed_lines;         /* dropped by the thread once writing failed or was abandoned */
    int failed_errno;              /* the thread's write error, 0 while writing works */
    int stop;                      /* write what is queued, then end */
    int abandon;                   /* end now (close deadline passed) */
    int thread_done;               /* the thread has left its loop: joining will not wait */
    int cancel_fd;                 /* eventfd: wakes a thread waiting for stdout to take bytes */

    /* The thread's. */
    struct strbuf out;             /* formatted, not written yet */
    struct logformat_cache clock;  /* local time formatting cache */
    pthread_t thread;
};

/* Queued bytes past which lines are skipped (lossy) or output is held back (lossless). */
#define PRINTER_BACKLOG_BYTES (4u << 20)
/* Lossless: past this even the output a readiness check waits for is held back. */
#define PRINTER_BACKLOG_HARD_BYTES (64u << 20)
/* Lossless: held-back output is read again once the backlog is below this. */
#define PRINTER_BACKLOG_LOW_BYTES (1u << 20)
/* How long printer_close waits for stdout to take the last lines (lossy, lossless). */
#define PRINTER_CLOSE_DEADLINE_MS 2000
#define PRINTER_LOSSLESS_CLOSE_DEADLINE_MS 5000

int printer_open(struct printer *p, uv_loop_t *loop, int fd, int color, enum printer_mode mode,
                 printer_event_cb on_event, void *ctx, char *err, size_t errlen);
void printer_set_name_width(struct printer *p, size_t width);
void printer_on_line(void *ctx, const struct log_line *line);
/* Hands staged lines to the thread; call once per loop iteration. */
void printer_flush(struct printer *p);
/* Hands over the rest and stops the thread once it wrote everything, or once the close
 * deadline passes (the rest counts as unprinted); PRINTER_CLOSED follows when done. */
void printer_close(struct printer *p);

#endif
