/* tailclient: one `tail` conversation (tailconv) with a running node, driven by zmq_poll for
 * the CLI: connects, sends what the conversation asks, feeds it what arrives, runs its timers,
 * notices a node whose lock went free, and watches the output for a reader that went away. */
#ifndef DEVNODE_TAILCLIENT_H
#define DEVNODE_TAILCLIENT_H

#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/wire.h"
#include "tail/tailconv.h"

struct tailclient {
    void *zmq_ctx;
    void *sock;                   /* DEALER connected to the node's endpoint */
    char project_dir[PATH_MAX];
    int64_t next_id;              /* ids of this client's subscriptions */
    struct tailconv conv;
    struct tailconv_out out;      /* what tailclient_next last returned */
    struct wire_msg msg;          /* the message out's lines point into */
    int have_msg;
    long long next_check_ms;      /* next look at the node's lock */
    int output_fd;                /* watched for a reader that went away (| head); -1: none */
    char failed[TAILCONV_ERROR_MAX]; /* a failure tailclient_keepalive met, for the next call */
};

enum tailclient_event {
    TAILCLIENT_LINES,       /* *out has the lines of a `lines` message and what was skipped before them */
    TAILCLIENT_END,         /* *out has what the `end` message said: nothing more comes */
    TAILCLIENT_RESUMED,     /* the node had dropped the subscription; a new one runs */
    TAILCLIENT_INTERRUPTED, /* *stop became non-zero, or output_fd's reader went away */
    TAILCLIENT_FAILED,      /* err says why (error reply, no answer, node gone) */
};

/* Connects to the node of project_dir and sends the request (kept by pointer). 0, or -1 with
 * err (e.g. "no node running in DIR"). */
int tailclient_open(struct tailclient *c, const char *project_dir, const struct tail_request *req,
                    const struct tailconv_options *opts, char *err, size_t errlen);
/* Waits for the next thing that happens. *out stays valid until the next call or the close. */
enum tailclient_event tailclient_next(struct tailclient *c, const struct tailconv_out **out,
                                      const volatile sig_atomic_t *stop, char *err, size_t errlen);
/* Runs the conversation's timers: for a caller busy elsewhere (reading the log files) for
 * longer than a renewal period. */
void tailclient_keepalive(struct tailclient *c);
/* Tells the node (`untail`) when the subscription is still open, then closes. */
void tailclient_close(struct tailclient *c);

#endif
