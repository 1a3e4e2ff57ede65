/* nodeconn: no routing id is set: the node's ROUTER gives each connection its own, which is
 * what its subscriptions and replies are keyed by. */
#include "common/nodeconn.h"

#include <errno.h>
#include <stdio.h>
#include <zmq.h>

void *nodeconn_open(void *zctx, const char *endpoint, enum nodeconn_close on_close, char *err, size_t errlen)
{
    void *sock = zmq_socket(zctx, ZMQ_DEALER);
    if (!sock) {
        snprintf(err, errlen, "cannot create a socket: %s", zmq_strerror(errno));
        return NULL;
    }
    int linger_ms = on_close == NODECONN_FAREWELL ? NODECONN_FAREWELL_MS : 0, hwm = NODECONN_HWM;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_connect(sock, endpoint) < 0) {
        snprintf(err, errlen, "cannot connect to the node at %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}
