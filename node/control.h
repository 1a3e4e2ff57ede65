/* control: the node's one ROUTER socket on its ipc endpoint, serving every client (CLI, TUI,
 * tail, services). Messages are dispatched by type to handlers that modules register, so the
 * registry and event bus plug in without touching this file. */
#ifndef DEVNODE_CONTROL_H
#define DEVNODE_CONTROL_H

#include <stdint.h>
#include <uv.h>

#include "node/peers.h"
#include "proto/proto.h"

struct control;
struct control_parked;

/* A request handler: reply (or not) with control_reply. `from` identifies the client. */
typedef void (*control_handler)(void *ctx, struct control *ctl, const struct wire_msg *msg);
/* Called around one wake-up's worth of messages (a turn): begin before the first handler of
 * the turn, end after the last, so a module can act once per turn (the bus sends what a
 * turn's emits and acks queued in one delivery per member). Turns without messages call
 * neither. */
typedef void (*control_turn_hook)(void *ctx);

#define CONTROL_MAX_HANDLERS 32
#define CONTROL_MAX_TURN_HOOKS 4

struct control {
    uv_loop_t *loop;
    void *zmq_ctx;
    void *router;
    uv_poll_t poll;            /* on ZMQ_FD, which is edge-triggered */
    uv_timer_t recheck;        /* re-reads ZMQ_EVENTS after sends made outside the poll callback */
    uv_prepare_t before_poll;  /* notes when the loop's poll should end, to see it woke late */
    struct {
        char type[WIRE_TYPE_MAX + 1];
        control_handler fn;
        void *ctx;
        int unparked;              /* handled even from a paused connection */
    } handlers[CONTROL_MAX_HANDLERS];
    size_t handler_count;
    struct {
        control_turn_hook begin, end;
        void *ctx;
    } turn_hooks[CONTROL_MAX_TURN_HOOKS];
    size_t turn_hook_count;
    int draining;                 /* in a drain's read loop, which ends reading ZMQ_EVENTS */
    uint64_t caught_up_ms;        /* loop time a drain last found nothing left to read */
    uint64_t poll_due_ms;         /* loop time the coming poll should end by; UINT64_MAX: none */
    uint64_t late_from_ms;        /* the loop woke late: it was due at this loop time... */
    uint64_t late_until_ms;       /* ...and the socket may lack what came meanwhile until this one */
    struct peers peers;           /* when each connection last sent a message */
    struct control_parked *parked; /* paused connections and the messages kept for them */
    uint64_t malformed_messages;  /* counted and dropped */
    uint64_t unknown_messages;    /* well-formed, but of a type nobody handles */
    int closed;
};

/* Binds the ROUTER on endpoint. Returns 0, or -1 with err set. */
int control_open(struct control *ctl, uv_loop_t *loop, const char *endpoint, char *err, size_t errlen);
int control_register(struct control *ctl, const char *type, control_handler fn, void *ctx);
/* Like control_register, for messages handled even from a paused connection (an ack must
 * free room in a full queue, whoever sends it). */
int control_register_unparked(struct control *ctl, const char *type, control_handler fn, void *ctx);
/* Flow control. A paused connection's messages (but unparked ones) are kept, in order, not
 * handled, until control_resume; then they are handled before its newer ones. The node keeps
 * reading its socket meanwhile, so everyone else is served; a client that waits for replies
 * (a window of emits, a ping) slows down instead of filling a queue. */
void control_pause(struct control *ctl, const void *routing, size_t routing_len);
void control_resume(struct control *ctl, const void *routing, size_t routing_len);
/* Adds hooks called around each turn of messages (either may be NULL). 0, or -1 when full. */
int control_add_turn_hooks(struct control *ctl, control_turn_hook begin, control_turn_hook end, void *ctx);
/* Removes the hooks added with ctx (a module closing before the control socket). */
void control_remove_turn_hooks(struct control *ctl, void *ctx);
/* The loop time up to which the node has read what its clients sent: now when nothing waits
 * to be read, else the last time a drain emptied the socket. Expiry timers judge silence
 * against it, so a peer whose heartbeat is only queued behind a flood is not taken for dead.
 * When the loop itself woke late (the node was stopped or starved), the time it was due stands
 * for a while: what clients sent meanwhile may still be on its way into the socket. */
uint64_t control_heard_until_ms(struct control *ctl);
/* The loop time of the last message handled from the connection `routing`; 0 when none. Any
 * message shows a client alive: its heartbeat may be queued behind its own flood of emits. */
uint64_t control_last_heard_ms(struct control *ctl, const void *routing, size_t routing_len);

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
