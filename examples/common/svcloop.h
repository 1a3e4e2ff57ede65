/* svcloop: the libuv loop of an example service that runs its own I/O next to libdevnode
 * (demo_web, bookshelf's last_read): it polls devnode_fd, calls devnode_process when the
 * library asks (heartbeats), and turns SIGTERM/SIGINT into one stop with a deadline. It knows
 * nothing of what else runs on the loop; the caller owns the struct. */
#ifndef EXAMPLES_COMMON_SVCLOOP_H
#define EXAMPLES_COMMON_SVCLOOP_H

#include <stdbool.h>

#include <uv.h>

#include <devnode.h>

struct svcloop {
    uv_loop_t loop;             /* the service's one loop: put its own handles on it too */
    struct devnode *dn;
    uv_poll_t dn_poll;          /* devnode_fd: readable when the library has work */
    uv_timer_t dn_timer;        /* devnode_process again at the latest when it last asked */
    uv_signal_t sigterm, sigint;
    uv_timer_t stop_deadline;   /* after the first signal the loop stops by then regardless */
    bool stopping;              /* a signal came */
    void (*on_stop)(const char *signal_name, void *ctx);
    void *ctx;
};

/* Initializes the loop alone, so the service can open its own handles on it first. 0 or a
 * libuv error. */
int svcloop_init(struct svcloop *s);

/* After devnode_start: watches dn on the loop and handles what is waiting now, then takes
 * SIGTERM and SIGINT. The first calls on_stop("SIGTERM" or "SIGINT", ctx), which must start
 * the service's own stop, and ends the loop (uv_stop) after 3 s at the latest; a second
 * ends it at once. 0 or a libuv error. */
int svcloop_start(struct svcloop *s, struct devnode *dn, void (*on_stop)(const char *signal_name, void *ctx),
                  void *ctx);

/* devnode_process now: after devnode_call or devnode_emit from the service's own callbacks,
 * whose replies may have left devnode_fd's edge-triggered readiness spent. */
void svcloop_process(struct svcloop *s);

/* Closes every handle still on the loop (the service's must have their close started, those
 * that need a callback), runs it until they are gone, and closes the loop. */
void svcloop_close(struct svcloop *s);

#endif
