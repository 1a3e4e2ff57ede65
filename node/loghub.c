/* loghub: the single path of log lines from producers to subscribers. It stamps and
 * classifies a line exactly once, so every subscriber sees the same seq, time and trace. */
#include "node/loghub.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t loghub_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void loghub_init(struct loghub *hub)
{
    memset(hub, 0, sizeof *hub);
}

int loghub_subscribe(struct loghub *hub, loghub_line_cb on_line, void *ctx)
{
    if (hub->subscriber_count == LOGHUB_MAX_SUBSCRIBERS)
        return -1;
    hub->subscribers[hub->subscriber_count].on_line = on_line;
    hub->subscribers[hub->subscriber_count].ctx = ctx;
    hub->subscriber_count++;
    return 0;
}

void loghub_unsubscribe(struct loghub *hub, loghub_line_cb on_line, void *ctx)
{
    for (size_t i = 0; i < hub->subscriber_count; i++) {
        if (hub->subscribers[i].on_line == on_line && hub->subscribers[i].ctx == ctx) {
            memmove(&hub->subscribers[i], &hub->subscribers[i + 1],
                    (hub->subscriber_count - i - 1) * sizeof hub->subscribers[0]);
            hub->subscriber_count--;
            return;
        }
    }
}

void loghub_append_line(struct loghub *hub, struct log_line *line)
{
    line->seq = ++hub->last_seq;
    if (!line->wall_ns)
        line->wall_ns = loghub_wall_ns();
    if (!line->trace_id[0])
        logparse_trace_id(line->text, line->len, line->trace_id);
    if (line->level == LOG_LEVEL_NONE)
        line->level = logparse_level(line->text, line->len);
    for (size_t i = 0; i < hub->subscriber_count; i++)
        hub->subscribers[i].on_line(hub->subscribers[i].ctx, line);
}

void loghub_node_line(struct loghub *hub, int pid, enum log_level level, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    struct log_line line = {
        .service = "devnode",
        .instance = -1,
        .pid = pid,
        .stream = LOG_STREAM_NODE,
        .level = level,
        .text = text,
        .len = (size_t)n < sizeof text ? (size_t)n : sizeof text - 1,
    };
    loghub_append_line(hub, &line);
}
