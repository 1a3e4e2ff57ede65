/* loghub: every line any process printed, and the node's own lifecycle lines, pass through
 * here once and fan out to subscribers (terminal printer, log file, later the ring, the TUI
 * and tail clients). It owns no process and never blocks on a subscriber. */
#ifndef DEVNODE_LOGHUB_H
#define DEVNODE_LOGHUB_H

#include <stddef.h>
#include <stdint.h>

#include "common/logline.h"

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
