/* logfile: the run dir's JSON-lines log (logs/devnode.jsonl), one object per line, rotated by
 * size into devnode.jsonl.1 .. .N. It is the complete record: it never skips a line to keep up
 * (a full disk is the only loss, counted and reported). */
#ifndef DEVNODE_LOGFILE_H
#define DEVNODE_LOGFILE_H

#include <limits.h>
#include <stdint.h>

#include "common/logformat.h"
#include "common/strbuf.h"
#include "node/loghub.h"

#define LOGFILE_NAME "devnode.jsonl"

struct logfile {
    int fd;                   /* O_APPEND, -1 when closed */
    char path[PATH_MAX];      /* <logs>/devnode.jsonl */
    uint64_t size_bytes;      /* of the current file */
    uint64_t max_bytes;       /* rotate past this */
    unsigned keep_files;      /* rotated files kept */
    struct strbuf pending;    /* encoded lines not yet written */
    uint64_t pending_lines;
    uint64_t lines_written;
    uint64_t lines_lost;      /* dropped because writing failed */
    int last_errno;           /* of the last failed write, 0 when writing works */
    struct logformat_clock clock; /* UTC time formatting cache */
};

int logfile_open(struct logfile *lf, const char *logs_dir, uint64_t max_bytes, unsigned keep_files,
                 char *err, size_t errlen);
/* loghub subscriber: encodes the line; writes once enough is pending. */
void logfile_on_line(void *ctx, const struct log_line *line);
/* Writes what is pending. Returns 0, or -errno when writing failed (lines then count as lost
 * once the pending buffer passes its cap). */
int logfile_flush(struct logfile *lf);
void logfile_close(struct logfile *lf);

#endif
