/* logfile: the run dir's JSON-lines log (logs/devnode.jsonl), one object per line, rotated by
 * size into devnode.jsonl.1 .. .N. It is the complete record: it never skips a line to keep up
 * (a full disk is the only loss, counted and reported).
 *
 * Encoding and writing run on a writer thread of the logfile's own, so a burst of output costs
 * the node's loop a copy of each line, not its JSON and its write(2). The loop stages lines in
 * fixed-size chunks and hands them over in logfile_flush; the writer gives emptied chunks back
 * for reuse, so a burst neither reallocates nor faults in fresh memory. When the writer is more
 * than LOGFILE_BACKLOG_CHUNKS behind, the hand-over waits for it (as a blocking write did
 * before) instead of losing lines. */
#ifndef DEVNODE_LOGFILE_H
#define DEVNODE_LOGFILE_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "common/logformat.h"
#include "common/strbuf.h"
#include "node/loghub.h"
#include "node/servicelog.h"

#define LOGFILE_NAME "devnode.jsonl"

struct logfile_chunk; /* staged records, private to logfile.c */

struct logfile {
    char path[PATH_MAX];      /* <logs>/devnode.jsonl */

    /* The loop thread's. */
    struct logfile_chunk *staging; /* records not handed to the writer yet; NULL when none */

    /* Shared, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* the writer: lines handed over, or stop */
    pthread_cond_t idle;      /* the loop: the writer took or finished its lines */
    struct logfile_chunk *queue;  /* handed over, not taken by the writer yet, oldest first */
    struct logfile_chunk **queue_tail;
    size_t queued_chunks;
    struct logfile_chunk *spare;  /* emptied chunks kept for reuse */
    size_t spare_count;
    int writer_busy;          /* it is encoding or writing what it took */
    int stop;
    uint64_t lines_written;
    uint64_t lines_lost;      /* dropped because writing failed */
    int last_errno;           /* of the last failed write, 0 when writing works */

    /* The writer thread's (the loop's before it starts and after it is joined). */
    int fd;                   /* O_APPEND, -1 when closed */
    uint64_t size_bytes;      /* of the current file */
    uint64_t max_bytes;       /* rotate past this */
    unsigned keep_files;      /* rotated files kept */
    struct strbuf pending;    /* encoded lines not yet written */
    uint64_t pending_lines;
    struct logformat_cache format; /* what the JSON of one line leaves for the next */
    struct servicelog *services; /* logs: {per_service: true}; NULL when off (logfile_per_service) */
    pthread_t thread;
};

int logfile_open(struct logfile *lf, const char *logs_dir, uint64_t max_bytes, unsigned keep_files,
                 char *err, size_t errlen);
/* Also writes each service's lines to logs/<Service>.log (servicelog.h), rotated like the
 * main file. Call right after logfile_open, before the first line. */
void logfile_per_service(struct logfile *lf, const char *logs_dir);
/* loghub subscriber: stages the line; hands lines over once enough are staged. */
void logfile_on_line(void *ctx, const struct log_line *line);
/* Hands what is staged to the writer. Returns 0, or -errno when the writer's last write
 * failed (lines then count as lost once its backlog passes its cap). */
int logfile_flush(struct logfile *lf);
/* Reopens the file at its path (SIGUSR1, after logrotate moved it away): lines logged before
 * the call end in the old file, lines after it in the new one, none lost. */
void logfile_reopen(struct logfile *lf);
/* Waits until everything handed over is written (or failed). For tests and shutdown. */
void logfile_sync(struct logfile *lf);
/* Lines lost so far, and the errno of the last failed write (0 when writing works). */
void logfile_health(struct logfile *lf, uint64_t *lines_lost, int *last_errno);
/* Writes what is left, stops the writer and closes the file. */
void logfile_close(struct logfile *lf);

#endif
