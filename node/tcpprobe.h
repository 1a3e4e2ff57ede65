/* tcpprobe: one "does HOST:PORT accept a TCP connection?" check on the node's loop, for
 * `ready: {tcp: ...}`. The name is resolved on libuv's thread pool and the connect runs
 * asynchronously, so a slow DNS server or a host that drops SYNs never stalls the loop that
 * supervises everything else. */
#ifndef DEVNODE_TCPPROBE_H
#define DEVNODE_TCPPROBE_H

#include <uv.h>

struct tcpprobe;

/* ok: 1 when the connection was accepted, 0 when it was refused or failed. */
typedef void (*tcpprobe_cb)(void *ctx, int ok);

/* Starts a probe; cb runs exactly once, later, unless the probe is cancelled first. NULL
 * when it could not even start (cb never runs then). */
struct tcpprobe *tcpprobe_start(uv_loop_t *loop, const char *host, int port, tcpprobe_cb cb, void *ctx);

/* cb will not run; the probe frees itself once libuv is done with it. p must be a probe
 * whose cb has not run yet. */
void tcpprobe_cancel(struct tcpprobe *p);

#endif
