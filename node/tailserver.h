/* tailserver: serves `devnode tail` and `devnode traces` from the node. It keeps the log ring
 * (every hub line is appended), answers trace lookups from the ring's trace index, and streams
 * lines to followers in batches, each with its own cursor. A slow or stopped client never slows
 * the node: it falls behind, is told how many lines it missed, and the log file has them all. */
#ifndef DEVNODE_TAILSERVER_H
#define DEVNODE_TAILSERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/strbuf.h"
#include "node/control.h"
#include "node/loghub.h"
#include "common/logring.h"

#define TAILSERVER_MAX_SUBS 1024
/* Unacknowledged batches across all followers: with many followers each gets a smaller
 * window, so even all of them stopped hold at most this many batches in the node. */
#define TAILSERVER_WINDOW_TOTAL 512

struct tail_sub;

struct tailserver {
    uv_loop_t *loop;
    struct loghub *hub;
    struct control *ctl;
    struct logring ring;
    struct tail_sub *subs;       /* linked list, newest first */
    size_t sub_count;
    uv_check_t check;            /* pushes batches once per loop iteration */
    uv_idle_t idle;              /* keeps the loop from blocking while a batch is ready */
    uv_timer_t expiry;           /* every second: drops subscriptions that stopped renewing */
    uv_timer_t retry;            /* after EAGAIN: try that client again a little later */
    struct strbuf scratch;       /* text re-encoding buffer */
    struct strbuf batch;         /* the lines of the message being built, msgpack-encoded */
    uint64_t *seq_buf;           /* trace walk scratch */
    size_t seq_cap;
    int closed;
};

/* Sizes the ring, subscribes to the hub and registers tail, tail_renew, untail and traces.
 * Call before the first line is appended. Returns 0, or -1 with err set. */
int tailserver_init(struct tailserver *ts, uv_loop_t *loop, struct loghub *hub, struct control *ctl,
                     size_t buffer_lines, char *err, size_t errlen);
/* Sends followers what they are owed and an `end`, unsubscribes, closes the handles. Call
 * while the control socket is still open. */
void tailserver_close(struct tailserver *ts);
/* Frees the ring once the loop has finished closing the handles. */
void tailserver_free(struct tailserver *ts);

#endif
