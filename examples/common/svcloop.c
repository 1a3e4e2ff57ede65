/* svcloop: libdevnode and the stop signals on an example service's libuv loop (see svcloop.h).
 * It never blocks the loop: devnode_process handles only what is waiting. */
#include "svcloop.h"

#include <signal.h>

enum {
    STOP_DEADLINE_MS = 3000,    /* in-flight answers get this long after SIGTERM */
};

static void on_dn_timer(uv_timer_t *t)
{
    svcloop_process(t->data);
}

static void on_dn_readable(uv_poll_t *p, int status, int events)
{
    svcloop_process(p->data);
}

void svcloop_process(struct svcloop *s)
{
    int wait_ms = devnode_process(s->dn);
    uv_timer_start(&s->dn_timer, on_dn_timer, (uint64_t)(wait_ms > 0 ? wait_ms : 0), 0);
}

static void on_stop_deadline(uv_timer_t *t)
{
    struct svcloop *s = t->data;
    uv_stop(&s->loop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct svcloop *s = h->data;
    if (s->stopping) {
        uv_stop(&s->loop); /* second signal: go now */
        return;
    }
    s->stopping = true;
    s->on_stop(signum == SIGINT ? "SIGINT" : "SIGTERM", s->ctx);
    uv_timer_start(&s->stop_deadline, on_stop_deadline, STOP_DEADLINE_MS, 0);
}

int svcloop_init(struct svcloop *s)
{
    *s = (struct svcloop){0};
    return uv_loop_init(&s->loop);
}

int svcloop_start(struct svcloop *s, struct devnode *dn, void (*on_stop)(const char *signal_name, void *ctx),
                  void *ctx)
{
    s->dn = dn;
    s->on_stop = on_stop;
    s->ctx = ctx;
    int rc = uv_poll_init(&s->loop, &s->dn_poll, devnode_fd(dn));
    if (rc < 0)
        return rc;
    s->dn_poll.data = s;
    uv_poll_start(&s->dn_poll, UV_READABLE, on_dn_readable);
    uv_timer_init(&s->loop, &s->dn_timer);
    s->dn_timer.data = s;
    svcloop_process(s);
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_timer_init(&s->loop, &s->stop_deadline);
    s->stop_deadline.data = s;
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void svcloop_close(struct svcloop *s)
{
    uv_walk(&s->loop, close_walk, NULL);
    while (uv_run(&s->loop, UV_RUN_DEFAULT) != 0) {
    }
    uv_loop_close(&s->loop);
}
