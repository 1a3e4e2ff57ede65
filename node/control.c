/* control: ZeroMQ inside libuv. ZMQ_FD is edge-triggered, so every wake-up drains until
 * ZMQ_EVENTS stops saying readable, and a send made elsewhere re-arms a zero-delay recheck;
 * missing either hangs clients. A bad message is counted and dropped, never fatal. */
#include "node/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "node/parkedmsg.h"

#define CONTROL_DRAIN_BUDGET 256
#define CONTROL_PARKED_MAX_BYTES (64u << 20) /* per connection: past it, it is resumed */
#define CONTROL_FRAME_MAX (4 * (int64_t)WIRE_BODY_MAX) /* a longer frame closes its connection */
#define CONTROL_LATE_MS 250                  /* a loop waking this much past its due time was late */
#define CONTROL_LATE_GRACE_MS 2000           /* for ZeroMQ's I/O thread to pass on what came meanwhile */

struct control_parked {
    struct control_parked *next;
    unsigned char routing[WIRE_IDENTITY_MAX];
    size_t routing_len;
    int paused;
    size_t bytes;                  /* held by the kept messages (parked_msg.bytes) */
    struct parked_msg *head, *tail;
};

static void control_drain(struct control *ctl);

static void control_on_recheck(uv_timer_t *timer)
{
    control_drain(timer->data);
}

static void control_schedule_recheck(struct control *ctl)
{
    /* Inside a drain's loop the drain itself ends by reading ZMQ_EVENTS. */
    if (!ctl->closed && !ctl->draining)
        uv_timer_start(&ctl->recheck, control_on_recheck, 0, 0);
}

static struct control_parked *parked_find(struct control *ctl, const void *routing, size_t len)
{
    for (struct control_parked *p = ctl->parked; p; p = p->next)
        if (p->routing_len == len && memcmp(p->routing, routing, len) == 0)
            return p;
    return NULL;
}

static int type_unparked(struct control *ctl, const char *type)
{
    for (size_t i = 0; i < ctl->handler_count; i++)
        if (strcmp(ctl->handlers[i].type, type) == 0)
            return ctl->handlers[i].unparked;
    return 0;
}

/* Keeps msg for its paused (or still catching up) connection; 1 when kept, and then msg is
 * left with nothing but what wire_msg_free still releases. The message itself is kept (its
 * frame and decoded body), neither copied nor decoded again when it is handled. */
static int control_park(struct control *ctl, struct wire_msg *msg)
{
    struct control_parked *p = parked_find(ctl, msg->identity, msg->identity_len);
    if (!p || (!p->paused && !p->head) || type_unparked(ctl, msg->type))
        return 0;
    struct parked_msg *m = parked_msg_take(msg);
    if (p->tail)
        p->tail->next = m;
    else
        p->head = m;
    p->tail = m;
    /* A client that does not wait for anything would fill the node instead of the queue:
     * past the bound its messages are handled again (in order), and a full queue drops. */
    p->bytes += m->bytes;
    if (p->bytes > CONTROL_PARKED_MAX_BYTES)
        p->paused = 0;
    return 1;
}

static void parked_unlink(struct control *ctl, struct control_parked *gone)
{
    for (struct control_parked **pp = &ctl->parked; *pp; pp = &(*pp)->next) {
        if (*pp == gone) {
            *pp = gone->next;
            break;
        }
    }
    while (gone->head) {
        struct parked_msg *m = gone->head;
        gone->head = m->next;
        parked_msg_free(m);
    }
    free(gone);
}

/* Takes the oldest kept message of a resumed connection into msg, as it was received; 1 when
 * there was one. Entries with nothing left and no pause go. */
static int control_unpark(struct control *ctl, struct wire_msg *msg)
{
    for (struct control_parked *p = ctl->parked, *next; p; p = next) {
        next = p->next;
        if (p->paused)
            continue;
        if (!p->head) {
            parked_unlink(ctl, p);
            continue;
        }
        struct parked_msg *m = p->head;
        p->head = m->next;
        p->bytes -= m->bytes;
        if (!p->head)
            p->tail = NULL;
        parked_msg_give(m, p->routing, p->routing_len, msg);
        return 1;
    }
    return 0;
}

void control_pause(struct control *ctl, const void *routing, size_t routing_len)
{
    if (routing_len == 0 || routing_len > WIRE_IDENTITY_MAX)
        return;
    struct control_parked *p = parked_find(ctl, routing, routing_len);
    if (!p) {
        p = xcalloc(1, sizeof *p);
        memcpy(p->routing, routing, routing_len);
        p->routing_len = routing_len;
        p->next = ctl->parked;
        ctl->parked = p;
    }
    p->paused = 1;
}

void control_resume(struct control *ctl, const void *routing, size_t routing_len)
{
    struct control_parked *p = parked_find(ctl, routing, routing_len);
    if (!p || !p->paused)
        return;
    p->paused = 0;
    if (!p->head)
        parked_unlink(ctl, p);
    else if (!ctl->closed)
        uv_timer_start(&ctl->recheck, control_on_recheck, 0, 0); /* even inside a drain: it may end first */
}

static void control_dispatch(struct control *ctl, const struct wire_msg *msg)
{
    for (size_t i = 0; i < ctl->handler_count; i++) {
        if (strcmp(ctl->handlers[i].type, msg->type) == 0) {
            ctl->handlers[i].fn(ctl->handlers[i].ctx, ctl, msg);
            return;
        }
    }
    ctl->unknown_messages++;
    char why[96];
    snprintf(why, sizeof why, "unknown message type '%s'", msg->type);
    control_reply_error(ctl, msg, why);
}

static void control_turn_begin(struct control *ctl)
{
    for (size_t i = 0; i < ctl->turn_hook_count; i++)
        if (ctl->turn_hooks[i].begin)
            ctl->turn_hooks[i].begin(ctl->turn_hooks[i].ctx);
}

static void control_turn_end(struct control *ctl)
{
    for (size_t i = 0; i < ctl->turn_hook_count; i++)
        if (ctl->turn_hooks[i].end)
            ctl->turn_hooks[i].end(ctl->turn_hooks[i].ctx);
}

/* 1 when a message waits to be read. Reading ZMQ_EVENTS also re-arms the edge-triggered
 * ZMQ_FD, so a drain ends with it, never with a bare EAGAIN. */
static int control_readable(struct control *ctl)
{
    int events = 0;
    size_t len = sizeof events;
    return zmq_getsockopt(ctl->router, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN);
}

/* One turn: up to CONTROL_DRAIN_BUDGET messages, handled between the turn hooks. The
 * messages are read until EAGAIN rather than asking ZMQ_EVENTS before each one: that
 * getsockopt polls ZeroMQ's command pipe, a system call per message. */
static void control_drain(struct control *ctl)
{
    int handled = 0;
    ctl->draining = 1;
    while (!ctl->closed && handled < CONTROL_DRAIN_BUDGET) {
        struct wire_msg msg;
        char err[160];
        if (ctl->parked && control_unpark(ctl, &msg)) {
            if (handled++ == 0)
                control_turn_begin(ctl);
            control_dispatch(ctl, &msg);
            wire_msg_free(&msg);
            continue;
        }
        enum wire_recv_result rc = wire_recv(ctl->router, 1, &msg, err, sizeof err);
        if (rc == WIRE_AGAIN) {
            if (control_readable(ctl))
                continue;
            ctl->caught_up_ms = uv_now(ctl->loop);
            break;
        }
        if (handled++ == 0)
            control_turn_begin(ctl);
        if (rc == WIRE_OTHER_VERSION) {
            /* Not served, so counted with the malformed ones; but the sender is told why, in
             * one line naming both versions, instead of waiting for an answer that never comes. */
            ctl->malformed_messages++;
            char why[300];
            proto_version_mismatch(why, sizeof why, WIRE_VERSION, msg.version, "client");
            control_reply_error(ctl, &msg, why);
            wire_msg_free(&msg);
            continue;
        }
        if (rc != WIRE_OK) {
            ctl->malformed_messages++;
            continue;
        }
        peers_heard(&ctl->peers, msg.identity, msg.identity_len, uv_now(ctl->loop));
        if (!ctl->parked || !control_park(ctl, &msg))
            control_dispatch(ctl, &msg);
        wire_msg_free(&msg);
    }
    ctl->draining = 0;
    /* A handler may have closed the node (stop); then its modules are gone, turn and all. */
    if (ctl->closed)
        return;
    if (handled)
        control_turn_end(ctl);
    /* Budget spent with more waiting: yield to the loop, come back right after. */
    if (handled >= CONTROL_DRAIN_BUDGET)
        control_schedule_recheck(ctl);
}

static void control_on_poll(uv_poll_t *handle, int status, int events)
{
    control_drain(handle->data);
}

/* A stopped process (SIGSTOP, a debugger, a VM pause) stops ZeroMQ's I/O thread too: when it
 * runs again, the loop's timers fire before that thread has moved what clients sent meanwhile
 * from the kernel into the socket, which then looks empty. A loop that woke well past the time
 * its poll was due to end notes it, and control_heard_until_ms holds at that time a while. */
static void control_note_late(struct control *ctl, uint64_t now)
{
    if (ctl->poll_due_ms != UINT64_MAX && now > ctl->poll_due_ms + CONTROL_LATE_MS) {
        ctl->late_from_ms = ctl->poll_due_ms;
        ctl->late_until_ms = now + CONTROL_LATE_GRACE_MS;
    }
    ctl->poll_due_ms = UINT64_MAX;
}

static void control_on_prepare(uv_prepare_t *handle)
{
    struct control *ctl = handle->data;
    uint64_t now = uv_now(ctl->loop);
    control_note_late(ctl, now);
    int timeout_ms = uv_backend_timeout(ctl->loop);
    ctl->poll_due_ms = timeout_ms < 0 ? UINT64_MAX : now + (uint64_t)timeout_ms;
}

int control_open(struct control *ctl, uv_loop_t *loop, const char *endpoint, char *err, size_t errlen)
{
    memset(ctl, 0, sizeof *ctl);
    ctl->loop = loop;
    peers_init(&ctl->peers);
    ctl->zmq_ctx = zmq_ctx_new();
    if (!ctl->zmq_ctx) {
        snprintf(err, errlen, "cannot create ZeroMQ context: %s", zmq_strerror(errno));
        return -1;
    }
    ctl->router = zmq_socket(ctl->zmq_ctx, ZMQ_ROUTER);
    /* Linger briefly so the last replies (the ack of `stop`) leave before the node exits. */
    int linger_ms = 500, hwm = 100000;
    zmq_setsockopt(ctl->router, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
    zmq_setsockopt(ctl->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(ctl->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    /* A full or vanished peer is reported (EAGAIN, EHOSTUNREACH) instead of the message
     * being dropped silently, so a tail stream keeps its place or ends its subscription. */
    int mandatory = 1;
    zmq_setsockopt(ctl->router, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
    /* ZeroMQ allocates a frame as long as its header claims before a byte of it came: any
     * local process could make the node reserve gigabytes. Past this the connection is closed;
     * between WIRE_BODY_MAX and it, a body is still read and dropped as documented. */
    int64_t frame_max = CONTROL_FRAME_MAX;
    zmq_setsockopt(ctl->router, ZMQ_MAXMSGSIZE, &frame_max, sizeof frame_max);
    if (zmq_bind(ctl->router, endpoint) < 0) {
        snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(ctl->router);
        zmq_ctx_term(ctl->zmq_ctx);
        return -1;
    }
    int fd;
    size_t fdlen = sizeof fd;
    zmq_getsockopt(ctl->router, ZMQ_FD, &fd, &fdlen);
    uv_poll_init(loop, &ctl->poll, fd);
    ctl->poll.data = ctl;
    uv_poll_start(&ctl->poll, UV_READABLE, control_on_poll);
    uv_timer_init(loop, &ctl->recheck);
    ctl->recheck.data = ctl;
    ctl->caught_up_ms = uv_now(loop);
    ctl->poll_due_ms = UINT64_MAX;
    uv_prepare_init(loop, &ctl->before_poll);
    ctl->before_poll.data = ctl;
    uv_prepare_start(&ctl->before_poll, control_on_prepare);
    uv_unref((uv_handle_t *)&ctl->before_poll); /* it alone must not keep the loop running */
    control_schedule_recheck(ctl);
    return 0;
}

int control_register(struct control *ctl, const char *type, control_handler fn, void *ctx)
{
    if (ctl->handler_count == CONTROL_MAX_HANDLERS || strlen(type) > WIRE_TYPE_MAX)
        return -1;
    snprintf(ctl->handlers[ctl->handler_count].type, sizeof ctl->handlers[0].type, "%s", type);
    ctl->handlers[ctl->handler_count].fn = fn;
    ctl->handlers[ctl->handler_count].ctx = ctx;
    ctl->handlers[ctl->handler_count].unparked = 0;
    ctl->handler_count++;
    return 0;
}

int control_register_unparked(struct control *ctl, const char *type, control_handler fn, void *ctx)
{
    if (control_register(ctl, type, fn, ctx) < 0)
        return -1;
    ctl->handlers[ctl->handler_count - 1].unparked = 1;
    return 0;
}

int control_add_turn_hooks(struct control *ctl, control_turn_hook begin, control_turn_hook end, void *ctx)
{
    if (ctl->turn_hook_count == CONTROL_MAX_TURN_HOOKS)
        return -1;
    ctl->turn_hooks[ctl->turn_hook_count].begin = begin;
    ctl->turn_hooks[ctl->turn_hook_count].end = end;
    ctl->turn_hooks[ctl->turn_hook_count].ctx = ctx;
    ctl->turn_hook_count++;
    return 0;
}

void control_remove_turn_hooks(struct control *ctl, void *ctx)
{
    size_t kept = 0;
    for (size_t i = 0; i < ctl->turn_hook_count; i++)
        if (ctl->turn_hooks[i].ctx != ctx)
            ctl->turn_hooks[kept++] = ctl->turn_hooks[i];
    ctl->turn_hook_count = kept;
}

uint64_t control_heard_until_ms(struct control *ctl)
{
    uint64_t now = uv_now(ctl->loop);
    if (ctl->closed)
        return now;
    uint64_t heard = now;
    if (control_readable(ctl)) {
        heard = ctl->caught_up_ms;
        /* Reading ZMQ_EVENTS took ZMQ_FD's edge: the poll will not wake for what waits. */
        control_schedule_recheck(ctl);
    }
    control_note_late(ctl, now); /* timers run before the next prepare: look now */
    if (now < ctl->late_until_ms && heard > ctl->late_from_ms)
        heard = ctl->late_from_ms;
    return heard;
}

uint64_t control_last_heard_ms(struct control *ctl, const void *routing, size_t routing_len)
{
    return peers_last_heard(&ctl->peers, routing, routing_len);
}

void control_pack_id(msgpack_packer *pk, const struct wire_msg *to)
{
    proto_pack_id(pk, proto_request_id(to->body));
}

void control_reply(struct control *ctl, const struct wire_msg *to, const char *type,
                   const struct wire_body *body)
{
    if (ctl->closed)
        return;
    /* ZMQ_DONTWAIT: a client that stopped reading must not stall the node; ROUTER drops. */
    wire_send(ctl->router, to->identity, to->identity_len, type, body->sbuf.data, body->sbuf.size,
              ZMQ_DONTWAIT);
    control_schedule_recheck(ctl);
}

int control_send(struct control *ctl, const void *routing, size_t routing_len, const char *type,
                 const struct wire_body *body)
{
    if (ctl->closed)
        return -EHOSTUNREACH;
    int rc = wire_send(ctl->router, routing, routing_len, type, body->sbuf.data, body->sbuf.size, ZMQ_DONTWAIT);
    control_schedule_recheck(ctl);
    return rc;
}

void control_reply_error(struct control *ctl, const struct wire_msg *to, const char *message)
{
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_error(&b.pk, proto_request_id(to->body), message);
    control_reply(ctl, to, PROTO_ERROR, &b);
    wire_body_free(&b);
}

void control_reply_ok(struct control *ctl, const struct wire_msg *to)
{
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_ok(&b.pk, proto_request_id(to->body));
    control_reply(ctl, to, PROTO_OK, &b);
    wire_body_free(&b);
}

void control_close(struct control *ctl)
{
    if (ctl->closed)
        return;
    ctl->closed = 1;
    uv_close((uv_handle_t *)&ctl->poll, NULL);
    uv_close((uv_handle_t *)&ctl->recheck, NULL);
    uv_close((uv_handle_t *)&ctl->before_poll, NULL);
    zmq_close(ctl->router);
    zmq_ctx_term(ctl->zmq_ctx);
    peers_free(&ctl->peers);
    while (ctl->parked)
        parked_unlink(ctl, ctl->parked);
}
