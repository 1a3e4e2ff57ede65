/* logfilter: which log lines a `tail` wants: services or instances, one trace id, a minimum
 * level and a POSIX extended regex. The node's tail server and the offline reader of the log
 * files use this one definition, so a query answers the same online and offline. */
#ifndef DEVNODE_LOGFILTER_H
#define DEVNODE_LOGFILTER_H

#include <regex.h>
#include <stddef.h>

#include "common/logline.h"

#define LOGFILTER_MAX_TARGETS 64
#define LOGFILTER_NAME_MAX 255

struct logfilter_target {
    char service[LOGFILTER_NAME_MAX + 1];
    int instance;                   /* -1: every instance */
};

struct logfilter {
    struct logfilter_target targets[LOGFILTER_MAX_TARGETS];
    size_t target_count;            /* 0: every service */
    char trace_id[TRACE_ID_MAX + 1]; /* "": any line, traced or not */
    enum log_level level_min;       /* LOG_LEVEL_NONE: any line; else lines at least this level */
    int has_grep;
    regex_t grep;                   /* REG_EXTENDED | REG_NOSUB, matched against the text */
    char *grep_buf;                 /* a NUL-terminated copy of the text being matched */
    size_t grep_buf_cap;
};

void logfilter_init(struct logfilter *f);
void logfilter_free(struct logfilter *f);

/* Each returns 0, or -1 with a one-line reason in err. */
/* "Service" or "Service.N" (N a decimal instance index). */
int logfilter_add_target(struct logfilter *f, const char *spec, char *err, size_t errlen);
/* [A-Za-z0-9_-]{1,64} */
int logfilter_set_trace(struct logfilter *f, const char *trace_id, char *err, size_t errlen);
/* debug, info, warning (warn), error (err), critical (fatal); case-insensitive */
int logfilter_set_level(struct logfilter *f, const char *level, char *err, size_t errlen);
int logfilter_set_grep(struct logfilter *f, const char *pattern, char *err, size_t errlen);

/* 1 when the line passes every part of the filter. Not const: the regex works on a copy. */
int logfilter_match(struct logfilter *f, const struct log_line *line);

/* 1 when s is a valid trace id. */
int logfilter_trace_id_valid(const char *s);

#endif
