/* offline: `tail` and `traces` answered from the log files when no node runs (or when the
 * node's ring no longer holds a trace). The same filter and the same trace summaries as the
 * node's, so the answer has the same shape online and offline. */
#ifndef DEVNODE_OFFLINE_H
#define DEVNODE_OFFLINE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "tail/linebuf.h"
#include "proto/logfilter.h"

/* The newest `backlog` lines matching f, oldest first, into out (initialised here).
 * Returns the number of log files read (0: none exist), or -1 with err. */
int offline_tail(const char *logs_dir, struct logfilter *f, int64_t backlog, struct linebuf *out,
                 char *err, size_t errlen);

/* The newest `limit` traces by first line, as a JSON array of {trace_id, first_ns, last_ns,
 * lines, error, services}: the rows of the node's `traces` reply. NULL with err on failure. */
json_t *offline_traces(const char *logs_dir, size_t limit, char *err, size_t errlen);

#endif
