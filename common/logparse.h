/* logparse: what the node learns from the text of one log line: its trace_id and level.
 * Pure functions over bytes; never allocates. */
#ifndef DEVNODE_LOGPARSE_H
#define DEVNODE_LOGPARSE_H

#include <stddef.h>

#define TRACE_ID_MAX 64

enum log_level {
    LOG_LEVEL_NONE = 0,  /* not recognised */
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARNING,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_CRITICAL,
};

/* Finds a trace id in the forms trace_id=V, trace_id="V", "trace_id": "V", trace_id: V
 * (V is [A-Za-z0-9_-]{1,64}; the value None means no trace). Copies V NUL-terminated
 * into out (TRACE_ID_MAX + 1 bytes) and returns its length, or returns 0. */
size_t logparse_trace_id(const char *text, size_t len, char out[TRACE_ID_MAX + 1]);

/* Recognises the level of JSON lines ("level": "info"), logfmt (level=info) and the usual
 * plain forms ([INFO], INFO:, " ERROR ", lymph's "[WARNING]"). Case-insensitive;
 * warn/warning, err/error, fatal/critical are folded. LOG_LEVEL_NONE when absent. */
enum log_level logparse_level(const char *text, size_t len);

/* "debug" .. "critical"; "" for LOG_LEVEL_NONE. */
const char *logparse_level_name(enum log_level level);
/* Inverse of logparse_level_name, case-insensitive, accepting the folded forms; -1 if unknown. */
int logparse_level_from_name(const char *name);

#endif
