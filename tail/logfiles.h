/* logfiles: reads the run dir's JSON-lines logs without a node: devnode.jsonl.N .. .1 (the
 * rotated ones, oldest first) and then devnode.jsonl, one record per line, in the order they
 * were written. Used by `tail` and `traces` when no node runs (and for trace lines the node's
 * ring no longer holds). Never writes. */
#ifndef DEVNODE_LOGFILES_H
#define DEVNODE_LOGFILES_H

#include <jansson.h>
#include <stddef.h>

#include "common/logline.h"
#include "proto/tailwire.h"

/* Called with one raw line (no newline, not NUL-terminated); return non-zero to stop. */
typedef int (*logfiles_raw_cb)(void *ctx, const char *raw, size_t len);

/* Calls cb for every line of every log file, oldest first. With a needle, lines that do not
 * contain it are skipped before anyone parses them (a cheap prefilter). Returns the number of
 * files read, or -1 with err when the directory cannot be read. */
int logfiles_read(const char *logs_dir, const char *needle, logfiles_raw_cb cb, void *ctx, char *err,
                  size_t errlen);

/* The number N of the oldest rotated file devnode.jsonl.N present (0: none), or -1 with err
 * when the directory cannot be read. */
int logfiles_rotated_count(const char *logs_dir, char *err, size_t errlen);

/* The path of devnode.jsonl (k = 0) or of devnode.jsonl.K. */
void logfiles_path(const char *logs_dir, unsigned k, char *out, size_t cap);

/* A parsed record: line.service and line.text point into `json` (keep it until done). */
struct logfiles_record {
    struct tail_line tl;
    json_t *json;
};

/* Parses one record written by the node's log file. 0, or -1 for a line that is not one
 * (a torn last line, another program's output): such lines are skipped by callers. */
int logfiles_parse(const char *raw, size_t len, struct logfiles_record *out);
void logfiles_record_free(struct logfiles_record *rec);

#endif
