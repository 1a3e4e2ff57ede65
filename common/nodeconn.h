/* nodeconn: the one way a client (the CLI, the dashboard, libdevnode) opens its DEALER to the
 * node, so the socket options are decided here once. Connections to service instances (RPC)
 * are not the node's and keep their own options. */
#ifndef DEVNODE_NODECONN_H
#define DEVNODE_NODECONN_H

#include <stddef.h>

/* How long closing may wait for messages still queued: the only choice a caller makes. */
enum nodeconn_close {
    NODECONN_DROP,     /* one request, answered or given up: nothing left worth waiting for */
    NODECONN_FAREWELL, /* a conversation that ends with a last message (untail, unsubscribe,
                          a service's goodbye): give it NODECONN_FAREWELL_MS to leave */
};

#define NODECONN_FAREWELL_MS 200
#define NODECONN_HWM 100000 /* messages queued each way: an event burst must fit, flow control
                               (tail acks, event credits) keeps the usual load far below */

/* A DEALER of zctx connected to endpoint (ZeroMQ connects in the background, so a node not
 * listening yet is not an error). Returns the socket, or NULL with err. */
void *nodeconn_open(void *zctx, const char *endpoint, enum nodeconn_close on_close, char *err, size_t errlen);

#endif
