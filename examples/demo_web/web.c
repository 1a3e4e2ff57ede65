/* demo_web: the seed demo's Web service: HTTP on the socket the node shares (LISTEN_FDS, fd 3),
 * `GET /greet?name=joe` calls Greeting.greet and answers "Hi, joe!" with an X-Trace-Id header,
 * every line it logs carrying that trace. One libuv loop (examples/common/svcloop) runs HTTP
 * (examples/common/httpd) and libdevnode's fd together. It must never shutdown(2) the inherited
 * socket: the node and the other Web workers share it. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <devnode.h>

#include "../common/httpd.h"
#include "../common/svcloop.h"

enum {
    NAME_MAX_BYTES = 256,       /* the longest name we greet */
    CALL_TIMEOUT_MS = 5000,
};

struct web {
    struct svcloop svc;
    struct httpd *httpd;
    struct devnode *dn;
    int pid;
};

/* ---- routes ------------------------------------------------------------------------ */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Finds `key` in a query string and URL-decodes its value into out; false when absent. */
static bool query_get(const char *q, size_t len, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && q[end] != '&')
            end++;
        if (end - i > klen && memcmp(q + i, key, klen) == 0 && q[i + klen] == '=') {
            size_t o = 0;
            for (size_t j = i + klen + 1; j < end && o + 1 < cap; j++) {
                int hi, lo;
                if (q[j] == '+') {
                    out[o++] = ' ';
                } else if (q[j] == '%' && j + 2 < end + 1 && (hi = hexval(q[j + 1])) >= 0 &&
                           (lo = hexval(q[j + 2])) >= 0) {
                    out[o++] = (char)(hi * 16 + lo);
                    j += 2;
                } else {
                    out[o++] = q[j];
                }
            }
            out[o] = '\0';
            return true;
        }
        i = end + 1;
    }
    return false;
}

static void route_greet(struct web *w, struct httpd_conn *conn, const struct httpd_request *req)
{
    struct devnode *dn = w->dn;
    /* The trace starts here: the client's X-Trace-Id if it sent a usable one, else a new one;
     * every line we log and the call to Greeting (and so its event) carry it. */
    devnode_set_trace_id(dn, req->trace_id[0] ? req->trace_id : NULL);
    if (!devnode_trace_id(dn)[0])
        devnode_set_trace_id(dn, NULL); /* the client sent "None": that is no trace */
    const char *trace = devnode_trace_id(dn);
    char headers[DEVNODE_TRACE_ID_MAX + 32]; /* X-Trace-Id's line, or "" without a trace */
    snprintf(headers, sizeof headers, "%s%s%s", *trace ? "X-Trace-Id: " : "", trace, *trace ? "\r\n" : "");
    char name[NAME_MAX_BYTES + 1];
    if (!query_get(req->query, strlen(req->query), "name", name, sizeof name) || !name[0]) {
        devnode_log(dn, DEVNODE_WARNING, "GET /greet without a name: 400");
        httpd_respond(conn, 400, NULL, headers, "name is required: /greet?name=joe\n");
        return;
    }
    for (char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' '; /* it goes into log lines */
    devnode_log(dn, DEVNODE_INFO, "About to greet %s", name);
    json_t *args = json_pack("{s:s}", "name", name);
    json_t *result = NULL;
    struct devnode_error err;
    int rc = args ? devnode_call(dn, "Greeting.greet", args, CALL_TIMEOUT_MS, &result, &err) : DEVNODE_E_INVALID;
    json_decref(args);
    if (rc == DEVNODE_OK && json_is_string(result)) {
        devnode_log(dn, DEVNODE_INFO, "GET /greet 200 %s", json_string_value(result));
        httpd_respond(conn, 200, NULL, headers, json_string_value(result));
    } else {
        char body[700];
        int status = rc == DEVNODE_E_TIMEOUT ? 504 : rc == DEVNODE_E_NOT_FOUND ? 503 : 502;
        if (rc == DEVNODE_OK)
            snprintf(body, sizeof body, "Greeting.greet returned something else than a string\n");
        else
            snprintf(body, sizeof body, "Greeting.greet failed: %s: %s\n", err.type, err.message);
        devnode_log(dn, DEVNODE_ERROR, "GET /greet %d %.*s", status, (int)strlen(body) - 1, body);
        httpd_respond(conn, status, NULL, headers, body);
    }
    json_decref(result);
}

static void on_request(struct httpd_conn *conn, const struct httpd_request *req, void *ctx)
{
    struct web *w = ctx;
    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
        httpd_respond(conn, 405, NULL, NULL, "only GET\n");
    } else if (strcmp(req->path, "/greet") == 0) {
        route_greet(w, conn, req);
        devnode_set_trace_id(w->dn, ""); /* the trace ends with its answer */
    } else if (strcmp(req->path, "/health") == 0) {
        httpd_respond(conn, 200, NULL, NULL, "ok\n");
    } else if (strcmp(req->path, "/") == 0) {
        httpd_respond(conn, 200, NULL, NULL, "try /greet?name=joe\n");
    } else {
        httpd_respond(conn, 404, NULL, NULL, "not found\n");
    }
    /* A call made while answering may have read the node socket, which leaves its edge-
     * triggered fd quiet: let libdevnode look now rather than at its next timer. */
    svcloop_process(&w->svc);
}

/* ---- the service ------------------------------------------------------------------- */

static void on_stop(const char *signal_name, void *ctx)
{
    struct web *w = ctx;
    devnode_log(w->dn, DEVNODE_INFO, "web %d stopping on %s", w->pid, signal_name);
    /* A request on its way (the client sent it to the shared port, trusting it to be
     * answered) gets its answer, with `Connection: close`, before the stop deadline. */
    httpd_stop(w->httpd);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    struct web w = {.pid = (int)getpid()};
    char err[256];
    int fd = httpd_listen_fd(err, sizeof err);
    if (fd < 0) {
        if (err[0])
            fprintf(stderr, "web %d: %s\n", w.pid, err);
        fprintf(stderr, "web %d: no socket: run it under devnode with `sockets: {Web: {port: 4080}}`, "
                        "or set PORT\n", w.pid);
        return 2;
    }
    w.dn = devnode_connect(err, sizeof err);
    if (!w.dn) {
        fprintf(stderr, "web %d: %s\n", w.pid, err);
        return 2;
    }
    const struct httpd_callbacks callbacks = {.on_request = on_request, .ctx = &w};
    int rc = svcloop_init(&w.svc);
    if (rc < 0) {
        fprintf(stderr, "web %d: %s\n", w.pid, uv_strerror(rc));
        return 1;
    }
    rc = httpd_open(&w.httpd, &w.svc.loop, fd, &callbacks, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "web %d: %s\n", w.pid, err);
        return rc == -ENOTSOCK ? 2 : 1;
    }

    /* Register (Web has no methods, but discover lists it and lymph.* answer), then tell the
     * node we are ready: the socket is accepting by now. */
    if (devnode_start(w.dn) < 0) {
        fprintf(stderr, "web %d: %s\n", w.pid, devnode_last_error(w.dn));
        return 1;
    }
    rc = svcloop_start(&w.svc, w.dn, on_stop, &w);
    if (rc < 0) {
        fprintf(stderr, "web %d: cannot watch the node's fd: %s\n", w.pid, uv_strerror(rc));
        return 1;
    }
    devnode_log(w.dn, DEVNODE_INFO, "web %d serving HTTP on fd %d", w.pid, fd);

    uv_run(&w.svc.loop, UV_RUN_DEFAULT);

    devnode_stop(w.dn);
    httpd_close(w.httpd);
    svcloop_close(&w.svc);
    devnode_close(w.dn);
    printf("web %d stopped\n", w.pid);
    return 0;
}
