/* catchup: a follower's lossless path. When the node's ring moved past lines a `tail -f` had not
 * read yet, the node names their seqs; catchup reads exactly those lines of the running node's
 * log files (devnode.jsonl and its rotated files), filtered as the node would have. It only
 * reads, and it never holds more than one line in memory. */
#ifndef DEVNODE_CATCHUP_H
#define DEVNODE_CATCHUP_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/logline.h"
#include "proto/logfilter.h"

struct catchup {
    char logs_dir[PATH_MAX];
    int placed;           /* where the current node run starts in the files is known */
    dev_t dev;            /* the file holding the next record to read ... */
    ino_t ino;            /* ... followed through rotation by its inode */
    off_t offset;         /* bytes of it already read */
    uint64_t seq;         /* seq of the last record read (0: none yet) */
};

/* Called for each line found; line.service and line.text are valid during the call only.
 * Return non-zero to stop reading (the output is gone). */
typedef int (*catchup_line_cb)(void *ctx, const struct log_line *line);
/* Called every few thousand records and while waiting for the node to write, so the caller
 * keeps its subscription alive. */
typedef void (*catchup_tick_cb)(void *ctx);

void catchup_init(struct catchup *c, const char *logs_dir);

/* Reads the node run's records with first_seq <= seq <= last_seq, in order, and passes those
 * matching f to cb. Records the node has not written yet are waited for, up to wait_ms after
 * the last progress. Returns how many lines cb got (fewer than expected when the files lost
 * some: a full disk, rotated away), or -1 with err when the files cannot be read at all. */
int64_t catchup_read(struct catchup *c, uint64_t first_seq, uint64_t last_seq, struct logfilter *f, int wait_ms,
                     catchup_line_cb cb, catchup_tick_cb tick, void *ctx, char *err, size_t errlen);

#endif
