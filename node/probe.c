/* probe: each run owns its timer, its TCP handle (http, tcp) or its child (exec), and frees
 * itself once every one of them is done: the timer and the handle closed, the child reaped.
 * A report ends the run (the handle closes, a child still running is killed) so nothing of
 * it outlives its answer but the wait for the close callbacks and the reaper. */
#include "node/probe.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/xalloc.h"
#include "config/config.h"
#include "node/httpstatus.h"
#include "node/spawn.h"

#define PROBE_RESPONSE_MAX 512
#define PROBE_REQUEST_MAX 2600

struct probe {
    uv_loop_t *loop;
    struct probe_set *set;
    enum probe_kind kind;
    probe_cb cb;                    /* NULL once reported or cancelled */
    void *ctx;
    unsigned timeout_ms;
    int finished;                   /* reported or cancelled: tearing down */
    int pending;                    /* handles not closed, requests not back, child not reaped */
    uv_timer_t timer;               /* the timeout */
    int tcp_open;                   /* tcp was initialised (it closes in finish) */
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_getaddrinfo_t resolve;
    uv_write_t write;
    char request[PROBE_REQUEST_MAX];
    size_t request_len;
    char response[PROBE_RESPONSE_MAX];
    size_t response_len;
    char early[64];                 /* a failure found while starting, reported from the loop */
    pid_t pid;                      /* EXEC: the child, 0 once reaped */
    struct probe *next;             /* EXEC: in set->execs until reaped */
};

static void probe_try_free(struct probe *p)
{
    if (p->finished && p->pending == 0)
        free(p);
}

static void probe_on_handle_closed(uv_handle_t *handle)
{
    struct probe *p = handle->data;
    p->pending--;
    probe_try_free(p);
}

/* Ends the run: no callback after this; handles close, a live child is killed. */
static void probe_finish(struct probe *p)
{
    if (p->finished)
        return;
    p->finished = 1;
    p->cb = NULL;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, probe_on_handle_closed);
    if (p->tcp_open && !uv_is_closing((uv_handle_t *)&p->tcp))
        uv_close((uv_handle_t *)&p->tcp, probe_on_handle_closed);
    if (p->pid)
        kill(-p->pid, SIGKILL); /* reaped later; probe_set_reaped frees what is left */
}

static void probe_report(struct probe *p, int ok, const char *detail)
{
    probe_cb cb = p->cb;
    void *ctx = p->ctx;
    probe_finish(p);
    if (cb)
        cb(ctx, ok, detail);
}

static void probe_on_timeout(uv_timer_t *timer)
{
    struct probe *p = timer->data;
    if (p->early[0]) {
        probe_report(p, 0, p->early);
        return;
    }
    char detail[64];
    if (p->timeout_ms % 1000 == 0)
        snprintf(detail, sizeof detail, "timed out after %us", p->timeout_ms / 1000);
    else
        snprintf(detail, sizeof detail, "timed out after %ums", p->timeout_ms);
    probe_report(p, 0, detail);
}

/* A failure while starting: reported from the loop, so cb never runs inside probe_start. */
static void probe_fail_soon(struct probe *p, const char *detail)
{
    snprintf(p->early, sizeof p->early, "%s", detail);
    uv_timer_start(&p->timer, probe_on_timeout, 0, 0);
}

/* ---- http and tcp ---- */

static void probe_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct probe *p = handle->data;
    buf->base = p->response + p->response_len;
    buf->len = sizeof p->response - p->response_len;
}

static void probe_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct probe *p = stream->data;
    if (p->finished)
        return;
    if (nread < 0) {
        probe_report(p, 0, nread == UV_EOF ? "connection closed before a status line" : uv_strerror((int)nread));
        return;
    }
    p->response_len += (size_t)nread;
    int code = 0;
    int rc = http_status_parse(p->response, p->response_len, &code);
    if (rc == 0 && p->response_len < sizeof p->response)
        return;
    if (rc <= 0) {
        probe_report(p, 0, "the answer is not HTTP");
        return;
    }
    char detail[32];
    snprintf(detail, sizeof detail, "HTTP %d", code);
    probe_report(p, code >= 200 && code < 400, detail);
}

static void probe_on_written(uv_write_t *req, int status)
{
    struct probe *p = req->data;
    p->pending--;
    if (status < 0 && !p->finished)
        probe_report(p, 0, uv_strerror(status));
    probe_try_free(p);
}

static void probe_on_connect(uv_connect_t *req, int status)
{
    struct probe *p = req->data;
    p->pending--;
    if (p->finished) {
        probe_try_free(p);
        return;
    }
    if (status < 0) {
        probe_report(p, 0, status == UV_ECONNREFUSED ? "connection refused" : uv_strerror(status));
        return;
    }
    if (p->kind == PROBE_TCP) {
        probe_report(p, 1, "connected");
        return;
    }
    uv_buf_t buf = uv_buf_init(p->request, (unsigned)p->request_len);
    p->write.data = p;
    if (uv_write(&p->write, (uv_stream_t *)&p->tcp, &buf, 1, probe_on_written) < 0) {
        probe_report(p, 0, "cannot send the request");
        return;
    }
    p->pending++;
    uv_read_start((uv_stream_t *)&p->tcp, probe_on_alloc, probe_on_read);
}

static void probe_connect(struct probe *p, const struct sockaddr *addr)
{
    uv_tcp_init(p->loop, &p->tcp);
    p->tcp.data = p;
    p->tcp_open = 1;
    p->pending++; /* the close */
    p->connect.data = p;
    int rc = uv_tcp_connect(&p->connect, &p->tcp, addr, probe_on_connect);
    if (rc < 0) {
        probe_fail_soon(p, uv_strerror(rc));
        return;
    }
    p->pending++;
}

static void probe_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct probe *p = req->data;
    p->pending--;
    if (!p->finished) {
        if (status < 0 || !res)
            probe_report(p, 0, status < 0 ? uv_strerror(status) : "no address");
        else
            probe_connect(p, res->ai_addr);
    }
    if (res)
        uv_freeaddrinfo(res);
    probe_try_free(p);
}

static void probe_start_net(struct probe *p, const struct probe_spec *spec)
{
    if (spec->kind == PROBE_HTTP) {
        int ipv6 = strchr(spec->host, ':') != NULL;
        int n = snprintf(p->request, sizeof p->request,
                         "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUser-Agent: devnode-probe\r\nAccept: */*\r\n"
                         "Connection: close\r\n\r\n",
                         spec->path, ipv6 ? "[" : "", spec->host, ipv6 ? "]" : "", spec->port);
        p->request_len = n < 0 ? 0 : (size_t)n < sizeof p->request ? (size_t)n : sizeof p->request - 1;
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(spec->host, spec->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(spec->host, spec->port, (struct sockaddr_in6 *)&ss) == 0) {
        probe_connect(p, (struct sockaddr *)&ss);
        return;
    }
    /* A name: resolved on libuv's thread pool, never on the loop. */
    char service[16];
    snprintf(service, sizeof service, "%d", spec->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    p->resolve.data = p;
    int rc = uv_getaddrinfo(p->loop, &p->resolve, probe_on_resolved, spec->host, service, &hints);
    if (rc < 0) {
        probe_fail_soon(p, uv_strerror(rc));
        return;
    }
    p->pending++;
}

/* ---- exec ---- */

static int probe_start_exec(struct probe *p, const struct probe_spec *spec, char *err, size_t errlen)
{
    struct spawn_request req = {
        .command = spec->command,
        .cwd = spec->cwd,
        .envp = spec->envp,
        .stdin_fd = spec->devnull_fd,
        .stdout_fd = spec->devnull_fd,
        .stderr_fd = spec->devnull_fd,
    };
    if (spawn_process(&req, &p->pid, err, errlen) < 0)
        return -1;
    p->pending++; /* until reaped */
    p->next = p->set->execs;
    p->set->execs = p;
    return 0;
}

int probe_set_reaped(struct probe_set *set, pid_t pid, int status)
{
    for (struct probe **at = &set->execs; *at; at = &(*at)->next) {
        struct probe *p = *at;
        if (p->pid != pid)
            continue;
        *at = p->next;
        p->pid = 0;
        kill(-pid, SIGKILL); /* what it left in its group */
        p->pending--;
        if (!p->finished) {
            char detail[64];
            if (WIFSIGNALED(status))
                snprintf(detail, sizeof detail, "killed by signal %d", WTERMSIG(status));
            else
                snprintf(detail, sizeof detail, "exit status %d", WEXITSTATUS(status));
            probe_report(p, WIFEXITED(status) && WEXITSTATUS(status) == 0, detail);
        }
        probe_try_free(p);
        return 1;
    }
    return 0;
}

void probe_set_free(struct probe_set *set)
{
    while (set->execs) {
        struct probe *p = set->execs;
        set->execs = p->next;
        p->pid = 0;
        p->pending--;
        probe_try_free(p);
    }
}

/* ---- public ---- */

struct probe *probe_start(uv_loop_t *loop, struct probe_set *set, const struct probe_spec *spec,
                          unsigned timeout_ms, probe_cb cb, void *ctx, char *err, size_t errlen)
{
    struct probe *p = xcalloc(1, sizeof *p);
    p->loop = loop;
    p->set = set;
    p->kind = spec->kind;
    p->timeout_ms = timeout_ms;
    if (spec->kind == PROBE_EXEC && probe_start_exec(p, spec, err, errlen) < 0) {
        free(p);
        return NULL;
    }
    p->cb = cb;
    p->ctx = ctx;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->pending++; /* the timer's close */
    uv_timer_start(&p->timer, probe_on_timeout, timeout_ms, 0);
    if (spec->kind == PROBE_HTTP || spec->kind == PROBE_TCP)
        probe_start_net(p, spec);
    return p;
}

void probe_cancel(struct probe *p)
{
    probe_finish(p);
    probe_try_free(p);
}

void probe_describe(const struct probe_spec *spec, char *buf, size_t cap)
{
    int ipv6 = spec->host && strchr(spec->host, ':') != NULL;
    const char *lb = ipv6 ? "[" : "", *rb = ipv6 ? "]" : "";
    switch (spec->kind) {
    case PROBE_HTTP:
        snprintf(buf, cap, "GET http://%s%s%s:%d%s", lb, spec->host, rb, spec->port, spec->path);
        return;
    case PROBE_TCP:
        snprintf(buf, cap, "TCP %s%s%s:%d", lb, spec->host, rb, spec->port);
        return;
    case PROBE_EXEC:
        snprintf(buf, cap, "exec `%s`", spec->command);
        return;
    case PROBE_NONE:
        break;
    }
    snprintf(buf, cap, "no probe");
}
