/* tcpprobe: resolve (thread pool), connect (non-blocking), report once, close. Every path
 * ends in exactly one free: on_resolved's when no socket was opened, else on_closed's. */
#include "node/tcpprobe.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/xalloc.h"

enum probe_stage { PROBE_RESOLVING, PROBE_CONNECTING };

struct tcpprobe {
    uv_loop_t *loop;
    enum probe_stage stage;
    uv_getaddrinfo_t resolve;
    uv_tcp_t tcp;
    uv_connect_t connect;
    tcpprobe_cb cb;          /* NULL once reported or cancelled */
    void *ctx;
};

static void probe_report(struct tcpprobe *p, int ok)
{
    tcpprobe_cb cb = p->cb;
    p->cb = NULL;
    if (cb)
        cb(p->ctx, ok);
}

static void on_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct tcpprobe *p = req->data;
    probe_report(p, status == 0);
    if (!uv_is_closing((uv_handle_t *)&p->tcp)) /* a cancel closes it itself */
        uv_close((uv_handle_t *)&p->tcp, on_closed);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct tcpprobe *p = req->data;
    if (status < 0 || !res || !p->cb) {
        if (res)
            uv_freeaddrinfo(res);
        probe_report(p, 0);
        free(p);
        return;
    }
    p->stage = PROBE_CONNECTING;
    uv_tcp_init(p->loop, &p->tcp);
    p->tcp.data = p;
    int rc = uv_tcp_connect(&p->connect, &p->tcp, res->ai_addr, on_connect);
    uv_freeaddrinfo(res);
    if (rc < 0) {
        probe_report(p, 0);
        uv_close((uv_handle_t *)&p->tcp, on_closed);
    }
}

struct tcpprobe *tcpprobe_start(uv_loop_t *loop, const char *host, int port, tcpprobe_cb cb, void *ctx)
{
    struct tcpprobe *p = xcalloc(1, sizeof *p);
    p->loop = loop;
    p->stage = PROBE_RESOLVING;
    p->cb = cb;
    p->ctx = ctx;
    p->resolve.data = p;
    p->connect.data = p;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    if (uv_getaddrinfo(loop, &p->resolve, on_resolved, host, service, &hints) < 0) {
        free(p);
        return NULL;
    }
    return p;
}

void tcpprobe_cancel(struct tcpprobe *p)
{
    p->cb = NULL;
    if (p->stage == PROBE_RESOLVING)
        uv_cancel((uv_req_t *)&p->resolve); /* on_resolved still runs (and frees), now or later */
    else if (!uv_is_closing((uv_handle_t *)&p->tcp))
        uv_close((uv_handle_t *)&p->tcp, on_closed); /* on_connect gets UV_ECANCELED first */
}
