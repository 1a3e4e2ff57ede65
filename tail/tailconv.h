/* tailconv: one `tail` conversation with the node (docs/protocol.md, "Log tail"), sans I/O: it
 * is fed the messages received and the time, and says what to send, which lines to show, what
 * was skipped and whether the conversation ended. It owns no socket and never reads a clock,
 * so `devnode tail` (zmq_poll) and the dashboard (libuv) drive the same state machine. */
#ifndef DEVNODE_TAILCONV_H
#define DEVNODE_TAILCONV_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"
#include "proto/tailwire.h"
#include "proto/wire.h"

#define TAILCONV_RENEW_MS PROTO_HEARTBEAT_MS /* tail_renew period; the node drops a subscription after 5 s without */
#define TAILCONV_ANSWER_MS PROTO_ANSWER_TIMEOUT_MS /* for the node's first answer to a request */
#define TAILCONV_ACK_EVERY PROTO_TAIL_ACK_EVERY /* `lines` messages between acknowledgements (the node sends 16 ahead) */
#define TAILCONV_GONE_GRACE_MS 300   /* a node that stopped sends `end` before freeing its lock */
#define TAILCONV_SEND_MAX 2          /* messages one step may ask to send */
#define TAILCONV_ERROR_MAX 400

enum tailconv_state {
    TAILCONV_IDLE,    /* not started, or stopped */
    TAILCONV_ASKED,   /* request sent, no answer yet */
    TAILCONV_LIVE,    /* the node answered with `lines`: renewed and acknowledged */
    TAILCONV_ENDED,   /* `end` received: nothing more comes */
    TAILCONV_FAILED,  /* error reply before any line, no answer in time, or the node is gone */
};

struct tailconv_options {
    int64_t resume_backlog;   /* backlog asked for when the node dropped a live subscription */
    int resume;               /* 1: subscribe again when the node dropped us; 0: that fails */
    int retry_unanswered;     /* 1: ask again when the node does not answer in time; 0: that fails */
    int resume_gap;           /* 1: after a resubscription the seqs between the last line shown and
                                 the first the node still had are reported as a gap (to read from
                                 the log files) in place of the new subscription's `skipped` */
};

struct tailconv {
    const struct tail_request *req; /* kept by pointer: the caller keeps it alive */
    struct tailconv_options opts;
    int64_t *next_id;               /* the caller's id counter, shared with its other requests */
    enum tailconv_state state;
    int64_t id;                     /* of the current subscription */
    uint64_t received;              /* `lines` messages received under this id */
    uint64_t acked;                 /* the last count told to the node */
    long long asked_ms;             /* when the current request was sent */
    long long next_renew_ms;
    long long gone_deadline_ms;     /* the node's lock was free: fail at this time; 0: node alive */
    uint64_t last_seq;              /* newest seq shown or handed off as a gap; lines at or below are left out */
    uint64_t resume_from;           /* after a resubscription (resume_gap): first seq not seen; 0: none */
    struct tail_line *lines;        /* the decoded lines of the last `lines` message */
    size_t lines_cap;
};

enum tailconv_event {
    TAILCONV_EV_NONE,     /* nothing for the caller (sends may still be due) */
    TAILCONV_EV_LINES,    /* out->lines (maybe none) and out->gap before them */
    TAILCONV_EV_END,      /* `end`: out->gap and out->truncated; the conversation is over */
    TAILCONV_EV_RESUMED,  /* the node had dropped the subscription; a new one is being sent */
    TAILCONV_EV_RETRIED,  /* no answer in time; the request is being sent again */
    TAILCONV_EV_FAILED,   /* out->error says why; the conversation is over */
};

struct tailconv_send {
    const char *type;         /* message type: a string literal */
    struct wire_body body;
};

struct tailconv_out {
    enum tailconv_event event;
    struct tailconv_send send[TAILCONV_SEND_MAX]; /* to send in this order, then tailconv_out_free */
    size_t send_count;
    const struct tail_line *lines;  /* seq order; line.service and line.text valid until the next
                                       feed and while the fed message lives */
    size_t line_count;
    int malformed;                  /* the `lines` message was not one (its lines are dropped) */
    int gap;                        /* matching lines the node could not send come before `lines` */
    uint64_t skipped;               /* how many (0: unknown, after a resubscription) */
    int gap_seqs_known;             /* the node said which seqs: ... */
    uint64_t gap_first, gap_last;   /* ... those in [gap_first, gap_last] (empty when first > last:
                                       all shown already) */
    int truncated;                  /* `end` of a trace query the ring could not fully answer */
    char error[TAILCONV_ERROR_MAX];
};

/* req and next_id are kept by pointer. Starts nothing: see tailconv_start. */
void tailconv_init(struct tailconv *c, const struct tail_request *req, const struct tailconv_options *opts,
                   int64_t *next_id);
void tailconv_free(struct tailconv *c);

/* Sends a new request (a new id), dropping a current subscription without telling the node
 * (see tailconv_stop). out gets the request. */
void tailconv_start(struct tailconv *c, long long now_ms, struct tailconv_out *out);
/* Ends the subscription: out gets an `untail` when one is asked for or live. State IDLE. */
void tailconv_stop(struct tailconv *c, struct tailconv_out *out);

/* Consumes one message from the node. Returns 1 when it belongs to this conversation (its id,
 * one of lines/end/error), 0 when it is another's (out then holds nothing). */
int tailconv_feed(struct tailconv *c, const char *type, const msgpack_object *body, long long now_ms,
                  struct tailconv_out *out);
/* Timers: renewal (acknowledging what was received), the answer timeout, the node-gone grace. */
void tailconv_tick(struct tailconv *c, long long now_ms, struct tailconv_out *out);
/* When tailconv_tick next has something to do; -1: never (not asked nor live). */
long long tailconv_next_deadline(const struct tailconv *c);

/* The node's lock is free: unless `end` arrives within the grace, the conversation fails. */
void tailconv_node_gone(struct tailconv *c, long long now_ms);
/* Another node (its seqs start again at 1): lines are no longer compared with the old ones. */
void tailconv_forget_seqs(struct tailconv *c);
/* Asked or live. */
int tailconv_open(const struct tailconv *c);

/* Frees what out holds (the packed messages). */
void tailconv_out_free(struct tailconv_out *out);

#endif
