/* loghub: every line any process printed, and the node's own lifecycle lines, pass through
 * here once and fan out to subscribers (terminal printer, log file, later the ring, the TUI
 * and tail clients). It owns no process and never blocks on a subscriber. */
#ifndef DEVNODE_LOGHUB_H
#define DEVNODE_LOGHUB_H

#include <stddef.h>
#include <stdint.h>

#include "node/logparse.h"

enum log_stream { LOG_STREAM_STDOUT, LOG_STREAM_STDERR, LOG_STREAM_NODE };

struct log_line {
    uint64_t seq;                     /* assigned by the hub: 1, 2, 3, ... */
    int64_t wall_ns;                  /* CLOCK_REALTIME when the line was framed */
    const char *service;              /* "Greeting", or "devnode" for the node's own lines */
    int instance;                     /* index within the service; -1 for the node */
    int pid;                          /* the process that printed it (the node's pid for its own) */
    enum log_stream stream;
    enum log_level level;             /* parsed from the text unless the producer set it */
    unsigned flags;                   /* FRAMER_SPLIT | FRAMER_UNTERMINATED */
    char trace_id[TRACE_ID_MAX + 1];  /* "" when the line carries none */
    const char *text;                 /* not NUL-terminated; valid during delivery only */
    size_t len;
};

typedef void (*loghub_line_cb)(void *ctx, const struct log_line *line);

#define LOGHUB_MAX_SUBSCRIBERS 16

struct loghub {
    uint64_t last_seq;
    struct {
        loghub_line_cb on_line;
        void *ctx;
    } subscribers[LOGHUB_MAX_SUBSCRIBERS];
    size_t subscriber_count;
};

void loghub_init(struct loghub *hub);
int loghub_subscribe(struct loghub *hub, loghub_line_cb on_line, void *ctx);
void loghub_unsubscribe(struct loghub *hub, loghub_line_cb on_line, void *ctx);

/* Stamps seq (and wall_ns, trace_id, level when the producer left them empty) and delivers. */
void loghub_append_line(struct loghub *hub, struct log_line *line);

/* The node's own line (service "devnode"), formatted like printf. */
void loghub_node_line(struct loghub *hub, int pid, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

int64_t loghub_wall_ns(void);

#endif
