/* parkedmsg: a received message kept for later (control parks a paused connection's messages)
 * without copying its bytes or decoding it again: the body frame moves out of the wire_msg,
 * and its decoded objects move with it, still pointing into that frame. */
#ifndef DEVNODE_PARKEDMSG_H
#define DEVNODE_PARKEDMSG_H

#include <stddef.h>

#include "proto/wire.h"

struct parked_msg {
    struct parked_msg *next;              /* the owner's queue */
    char version[WIRE_VERSION_MAX + 1];
    char type[WIRE_TYPE_MAX + 1];
    zmq_msg_t body_frame;                 /* the received frame itself, moved here */
    msgpack_unpacked unpacked;            /* the decoded body, in a zone of its own exact size */
    size_t bytes;                         /* memory held: the body, its objects, this struct */
};

/* Takes msg's body (its frame and decoded objects) into a new parked message. msg is left
 * holding only the zone of its first decode: the caller still releases it with wire_msg_free. */
struct parked_msg *parked_msg_take(struct wire_msg *msg);
/* Turns pm back into a received message from `routing` in msg (released with wire_msg_free,
 * as one from wire_recv) and frees pm. */
void parked_msg_give(struct parked_msg *pm, const void *routing, size_t routing_len, struct wire_msg *msg);
void parked_msg_free(struct parked_msg *pm);

#endif
