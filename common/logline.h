/* logline: one log line as it travels from a child's pipe to every consumer (printer,
 * log file, ring, dashboard, tail clients). A plain value type; text is borrowed. */
#ifndef DEVNODE_LOGLINE_H
#define DEVNODE_LOGLINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/logparse.h"

enum log_stream { LOG_STREAM_STDOUT, LOG_STREAM_STDERR, LOG_STREAM_NODE };

/* flags: the same values as the framer's FRAMER_SPLIT / FRAMER_UNTERMINATED */
#define LOG_LINE_SPLIT 1u        /* the line goes on in the next record */
#define LOG_LINE_UNTERMINATED 2u /* the stream ended without a newline */

struct log_line {
    uint64_t seq;                     /* assigned by the hub: 1, 2, 3, ... */
    int64_t wall_ns;                  /* CLOCK_REALTIME when the line was read */
    const char *service;              /* "Greeting", or "devnode" for the node's own lines */
    int instance;                     /* index within the service; -1 for the node */
    int pid;                          /* the process that printed it (the node's pid for its own) */
    enum log_stream stream;
    enum log_level level;             /* parsed from the text unless the producer set it */
    unsigned flags;                   /* LOG_LINE_SPLIT | LOG_LINE_UNTERMINATED */
    char trace_id[TRACE_ID_MAX + 1];  /* "" when the line carries none */
    const char *text;                 /* not NUL-terminated; valid during delivery only */
    size_t len;
};

const char *log_stream_name(enum log_stream stream);

#endif
