/* servicelog: `logs: {per_service: true}`: besides the complete JSON-lines log, each service's
 * lines as plain text in logs/<Service>.log (`2026-12-06 12:30:00.123 Web.1 | text`, escapes
 * dropped), for editors and grep, rotated like the main log (<Service>.log.1 .. .N past
 * file_max_mb). It runs on the log file's writer thread only (logfile.c calls it), so it
 * costs the node's loop nothing; a failure here is counted and never touches the main log. */
#ifndef DEVNODE_SERVICELOG_H
#define DEVNODE_SERVICELOG_H

#include <limits.h>
#include <stdint.h>

#include "common/logformat.h"
#include "common/logline.h"
#include "common/strbuf.h"

#define SERVICELOG_SUFFIX ".log"

struct servicelog_file {
    char *service;
    char path[PATH_MAX];    /* <logs>/<service>.log */
    int fd;                 /* O_APPEND; -1 until the first write, or after a failed one */
    uint64_t size_bytes;    /* of the current file */
    struct strbuf pending;  /* formatted lines not yet written */
};

struct servicelog {
    char dir[PATH_MAX];     /* the logs dir */
    uint64_t max_bytes;     /* rotate past this; 0: never */
    unsigned keep_files;    /* rotated files kept per service */
    struct servicelog_file *files;
    size_t count, cap;
    struct logformat_cache format;
    int64_t day_second;     /* the second `day` was formatted for; -1 initially */
    char day[16];           /* "2026-12-06 " (local) */
    uint64_t lines_lost;    /* formatted but not written (a failed write) */
    int last_errno;         /* of the last failed write, 0 when writing works */
};

void servicelog_init(struct servicelog *sl, const char *logs_dir, uint64_t max_bytes, unsigned keep_files);
/* Formats the line for its service's file (a file per service, created on its first line). */
void servicelog_append(struct servicelog *sl, const struct log_line *line);
/* Writes what is formatted, rotating between whole lines. 0, or -errno of the first failure
 * (those lines are dropped and counted in lines_lost; the next write opens the file again). */
int servicelog_write(struct servicelog *sl);
/* Writes what is formatted, then closes every file so the next line opens each at its path
 * again (SIGUSR1, after logrotate moved them). */
void servicelog_reopen(struct servicelog *sl);
/* Writes what is left and frees everything. */
void servicelog_close(struct servicelog *sl);

#endif
