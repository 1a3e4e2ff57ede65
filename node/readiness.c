/* readiness: delay, tcp, log-pattern and sd_notify checks on the node's loop. A TCP probe
 * runs asynchronously (tcpprobe.c) and notify datagrams are read without blocking, so a
 * check never stalls the loop that supervises everything else. */
#include "node/readiness.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "node/probe.h"
#include "node/tcpprobe.h"

#define TCP_PROBE_FIRST_MS 20
#define TCP_PROBE_EVERY_MS 100
#define HEALTH_PROBE_EVERY_MS 200 /* http and exec: an exec probe forks, so not too often */
#define HEALTH_PROBE_TIMEOUT_MS 1000

const char *ready_kind_name(enum ready_kind kind)
{
    switch (kind) {
    case READY_AT_START: return "start";
    case READY_NOTIFY: return "notify";
    case READY_LOG: return "log";
    case READY_TCP: return "tcp";
    case READY_DELAY: return "delay";
    case READY_HTTP: return "http";
    case READY_EXEC: return "exec";
    }
    return "?";
}

static void ready_check_on_closed(uv_handle_t *handle)
{
    struct ready_check *rc = handle->data;
    if (rc->on_closed)
        rc->on_closed(rc->ctx);
}

void ready_check_init(struct ready_check *rc, uv_loop_t *loop, const struct config_ready *cfg, void *ctx,
                      void (*on_ready)(void *ctx, const char *how), void (*on_timeout)(void *ctx),
                      void (*on_closed)(void *ctx))
{
    memset(rc, 0, sizeof *rc);
    rc->cfg = cfg;
    rc->ctx = ctx;
    rc->on_ready = on_ready;
    rc->on_timeout = on_timeout;
    rc->on_closed = on_closed;
    uv_timer_init(loop, &rc->timer);
    rc->timer.data = rc;
}

void ready_check_use_probes(struct ready_check *rc,
                            struct probe *(*start_probe)(void *ctx, const struct config_probe *cfg, unsigned timeout_ms,
                                                         void (*cb)(void *, int, const char *), void *cbctx))
{
    rc->start_probe = start_probe;
}

void ready_check_stop(struct ready_check *rc)
{
    uv_timer_stop(&rc->timer);
    if (rc->run) {
        probe_cancel(rc->run);
        rc->run = NULL;
    }
    if (rc->probe) {
        tcpprobe_cancel(rc->probe);
        rc->probe = NULL;
    }
}

void ready_check_close(struct ready_check *rc)
{
    ready_check_stop(rc);
    uv_close((uv_handle_t *)&rc->timer, ready_check_on_closed);
}

static void ready_check_on_probe(void *ctx, int ok)
{
    struct ready_check *rc = ctx;
    rc->probe = NULL;
    if (ok) {
        ready_check_stop(rc);
        rc->on_ready(rc->ctx, "its port answered");
    }
}

static void ready_check_on_health_probe(void *ctx, int ok, const char *detail)
{
    struct ready_check *rc = ctx;
    rc->run = NULL;
    if (ok) {
        char how[96];
        snprintf(how, sizeof how, "its %s probe answered %s", ready_kind_name(rc->cfg->kind), detail);
        ready_check_stop(rc);
        rc->on_ready(rc->ctx, how);
    }
}

static void ready_check_on_timer(uv_timer_t *timer)
{
    struct ready_check *rc = timer->data;
    const struct config_ready *r = rc->cfg;
    uv_update_time(timer->loop);
    uint64_t waited = uv_now(timer->loop) - rc->started_ms;
    if (r->kind == READY_DELAY) {
        rc->on_ready(rc->ctx, "its delay passed");
        return;
    }
    if (r->kind == READY_HTTP || r->kind == READY_EXEC) {
        if (!rc->run && rc->start_probe && waited < r->timeout_ms) {
            unsigned left = r->timeout_ms - (unsigned)waited;
            rc->run = rc->start_probe(rc->ctx, &r->probe, left < HEALTH_PROBE_TIMEOUT_MS ? left : HEALTH_PROBE_TIMEOUT_MS,
                                      ready_check_on_health_probe, rc);
        }
        if (waited < r->timeout_ms)
            return;
        ready_check_stop(rc);
    }
    if (r->kind == READY_TCP) {
        /* One probe at a time; the timer keeps counting towards the timeout meanwhile. */
        if (!rc->probe)
            rc->probe = tcpprobe_start(timer->loop, r->tcp_host, r->tcp_port, ready_check_on_probe, rc);
        if (waited < r->timeout_ms)
            return; /* the repeating timer probes again */
        ready_check_stop(rc);
    }
    /* Log and notify checks stay open after this: a late READY=1 or line still counts. */
    rc->on_timeout(rc->ctx);
}

int ready_check_arm(struct ready_check *rc, uint64_t started_ms)
{
    const struct config_ready *r = rc->cfg;
    ready_check_stop(rc);
    rc->started_ms = started_ms;
    switch (r->kind) {
    case READY_AT_START:
        return 1;
    case READY_DELAY:
        uv_timer_start(&rc->timer, ready_check_on_timer, r->delay_ms, 0);
        return 0;
    case READY_TCP:
        uv_timer_start(&rc->timer, ready_check_on_timer, TCP_PROBE_FIRST_MS, TCP_PROBE_EVERY_MS);
        return 0;
    case READY_HTTP:
    case READY_EXEC:
        uv_timer_start(&rc->timer, ready_check_on_timer, TCP_PROBE_FIRST_MS, HEALTH_PROBE_EVERY_MS);
        return 0;
    case READY_LOG:
    case READY_NOTIFY:
        uv_timer_start(&rc->timer, ready_check_on_timer, r->timeout_ms, 0);
        return 0;
    }
    return 0;
}

int ready_pattern_compile(regex_t *re, const struct config_ready *cfg)
{
    if (cfg->kind != READY_LOG || !cfg->log_pattern)
        return -1;
    return regcomp(re, cfg->log_pattern, REG_EXTENDED | REG_NOSUB) == 0 ? 0 : -1;
}

int ready_pattern_match(const regex_t *re, const char *text, size_t len)
{
    char buf[4096];
    size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    return regexec(re, buf, 0, NULL, 0) == 0;
}

/* sd_notify datagrams: "READY=1" from a worker (or anything in its process group). */
static void notify_socket_on_readable(uv_poll_t *handle, int status, int events)
{
    struct notify_socket *ns = handle->data;
    for (int budget = 0; budget < 64; budget++) {
        char buf[4096];
        union {
            struct cmsghdr align;
            char space[CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf - 1};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof control};
        ssize_t n = recvmsg(ns->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
            return;
        buf[n] = '\0';
        pid_t sender = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                struct ucred cred;
                memcpy(&cred, CMSG_DATA(c), sizeof cred);
                sender = cred.pid;
            }
        }
        if (!sender)
            continue;
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            if (strcmp(line, "READY=1") == 0)
                ns->on_ready(ns->ctx, sender);
    }
}

int notify_socket_open(struct notify_socket *ns, uv_loop_t *loop, const char *dir,
                       void (*on_ready)(void *ctx, pid_t sender), void *ctx, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    ns->fd = -1;
    ns->on_ready = on_ready;
    ns->ctx = ctx;
    snprintf(ns->path, sizeof ns->path, "%s/notify.sock", dir);
    if (strlen(ns->path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "notify socket path %s is too long", ns->path);
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, ns->path);
    unlink(ns->path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) {
        int rc = -errno;
        snprintf(err, errlen, "cannot open notify socket %s: %s", ns->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int rc = uv_poll_init(loop, &ns->poll, fd);
    if (rc < 0) {
        snprintf(err, errlen, "cannot watch notify socket %s: %s", ns->path, uv_strerror(rc));
        close(fd);
        unlink(ns->path);
        return rc;
    }
    ns->fd = fd;
    ns->poll.data = ns;
    uv_poll_start(&ns->poll, UV_READABLE, notify_socket_on_readable);
    return 0;
}

void notify_socket_close(struct notify_socket *ns)
{
    if (ns->fd >= 0)
        uv_close((uv_handle_t *)&ns->poll, NULL);
}

void notify_socket_free(struct notify_socket *ns)
{
    if (ns->fd >= 0) {
        close(ns->fd);
        unlink(ns->path);
        ns->fd = -1;
    }
}
