/* control: the node's one ROUTER socket on its ipc endpoint, serving every client (CLI, TUI,
 * tail, services). Messages are dispatched by type to handlers that modules register, so the
 * registry and event bus plug in without touching this file. */
#ifndef DEVNODE_CONTROL_H
#define DEVNODE_CONTROL_H

#include <stdint.h>
#include <uv.h>

#include "proto/proto.h"

struct control;

/* A request handler: reply (or not) with control_reply. `from` identifies the client. */
typedef void (*control_handler)(void *ctx, struct control *ctl, const struct wire_msg *msg);

#define CONTROL_MAX_HANDLERS 32

struct control {
    uv_loop_t *loop;
    void *zmq_ctx;
    void *router;
    uv_poll_t poll;            /* on ZMQ_FD, which is edge-triggered */
    uv_timer_t recheck;        /* re-reads ZMQ_EVENTS after sends made outside the poll callback */
    struct {
        char type[WIRE_TYPE_MAX + 1];
        control_handler fn;
        void *ctx;
    } handlers[CONTROL_MAX_HANDLERS];
    size_t handler_count;
    uint64_t malformed_messages;  /* counted and dropped */
    uint64_t unknown_messages;    /* well-formed, but of a type nobody handles */
    int closed;
};

/* Binds the ROUTER on endpoint. Returns 0, or -1 with err set. */
int control_open(struct control *ctl, uv_loop_t *loop, const char *endpoint, char *err, size_t errlen);
int control_register(struct control *ctl, const char *type, control_handler fn, void *ctx);

/* Replies to the sender of `to`: a body map from wire_body. */
void control_reply(struct control *ctl, const struct wire_msg *to, const char *type,
                   const struct wire_body *body);
/* Sends an unsolicited message to a client by routing id (events, tail streams) without
 * ever blocking. Returns 0, -EAGAIN when that client's queue is full (try again later),
 * -EHOSTUNREACH when the client is gone, or another -errno. */
int control_send(struct control *ctl, const void *routing, size_t routing_len, const char *type,
                 const struct wire_body *body);

/* Replies {id, message} with type "error". */
void control_reply_error(struct control *ctl, const struct wire_msg *to, const char *message);
/* Replies {id, ...} with type "ok": a convenience for requests that only need an ack. */
void control_reply_ok(struct control *ctl, const struct wire_msg *to);
/* Packs the request's id (echoed in every reply) as the first key of a map being built. */
void control_pack_id(msgpack_packer *pk, const struct wire_msg *to);

void control_close(struct control *ctl);

#endif
