/* tailclient: one `tail` conversation with a running node, from the client side: sends the
 * request, keeps the subscription alive (tail_renew every second, which also acknowledges the
 * `lines` messages received so the node may send more), notices a node that went away, and
 * resubscribes if the node dropped us (e.g. after Ctrl-Z for longer than 5 s). */
#ifndef DEVNODE_TAILCLIENT_H
#define DEVNODE_TAILCLIENT_H

#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/wire.h"
#include "tail/tailwire.h"

struct tailclient {
    void *zmq_ctx;
    void *sock;                   /* DEALER connected to the node's endpoint */
    char project_dir[PATH_MAX];
    const struct tail_request *req;
    int64_t id;                   /* id of the current subscription */
    uint64_t received;            /* `lines` messages received under this id */
    uint64_t acked;               /* the last count told to the node */
    long long next_renew_ms;
    long long answer_deadline_ms; /* until the node's first answer */
    long long gone_deadline_ms;   /* the node's lock was free: fail at this time; 0: node alive */
    int confirmed;                /* the node answered this subscription */
    int output_fd;                /* watched for a reader that went away (| head); -1: none */
    int64_t resume_backlog;       /* the backlog asked for when resubscribing (default 0) */
};

enum tailclient_event {
    TAILCLIENT_LINES,       /* *msg is a `lines` message of this subscription */
    TAILCLIENT_END,         /* *msg is its `end` message: nothing more comes */
    TAILCLIENT_RESUMED,     /* the node had dropped the subscription; a new one (resume_backlog) runs */
    TAILCLIENT_INTERRUPTED, /* *stop became non-zero, or output_fd's reader went away */
    TAILCLIENT_FAILED,      /* err says why (error reply, no answer, node gone) */
};

/* Connects to the node of project_dir and sends the request (kept by pointer). 0, or -1 with
 * err (e.g. "no node running in DIR"). */
int tailclient_open(struct tailclient *c, const char *project_dir, const struct tail_request *req, char *err,
                    size_t errlen);
/* Waits for the next thing that happens. For LINES and END the caller frees *msg. */
enum tailclient_event tailclient_next(struct tailclient *c, struct wire_msg *msg, const volatile sig_atomic_t *stop,
                                      char *err, size_t errlen);
/* Renews the subscription if it is due: for a caller busy elsewhere (reading the log files)
 * for longer than a renewal period. */
void tailclient_keepalive(struct tailclient *c);
/* With unsubscribe, tells the node (`untail`) before closing. */
void tailclient_close(struct tailclient *c, int unsubscribe);

#endif
