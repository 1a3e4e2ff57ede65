/* demo_web: the seed demo's Web service: HTTP on the socket the node shares (LISTEN_FDS, fd 3),
 * `GET /greet?name=joe` calls Greeting.greet and answers "Hi, joe!" with an X-Trace-Id header,
 * every line it logs carrying that trace. One libuv loop runs HTTP and libdevnode's fd together.
 * It must never shutdown(2) the inherited socket: the node and the other Web workers share it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <devnode.h>

enum {
    LISTEN_FDS_START = 3,       /* systemd's SD_LISTEN_FDS_START */
    LISTEN_BACKLOG = 1024,
    URL_MAX = 2048,
    HEADER_NAME_MAX = 32,
    NAME_MAX_BYTES = 256,       /* the longest name we greet */
    CALL_TIMEOUT_MS = 5000,
    STOP_DEADLINE_MS = 3000,    /* in-flight answers get this long after SIGTERM */
};

union stream {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
};

struct server;

struct conn {
    union stream sock;
    http_parser parser;
    struct server *server;
    struct conn *prev, *next;
    char url[URL_MAX + 1];
    size_t url_len;
    char header[HEADER_NAME_MAX + 1];
    size_t header_len;
    bool header_done;           /* the last callback was a value: a new name starts */
    bool capture_trace;
    char trace[DEVNODE_TRACE_ID_MAX + 1];
    size_t trace_len;
    unsigned writes_pending;
    bool close_after_writes;
    bool closing;
    bool in_request;            /* bytes of a request came that are not answered yet */
    unsigned answered;          /* requests answered on this connection */
};

struct server {
    uv_loop_t loop;
    union stream listener;
    bool is_tcp;
    uv_signal_t sigterm, sigint;
    uv_poll_t dn_poll;          /* libdevnode's fd: requests to us, node messages */
    uv_timer_t dn_timer;        /* heartbeats: devnode_process at the latest when it asks */
    uv_timer_t stop_deadline;
    struct devnode *dn;
    struct conn *conns;
    int pid;
    bool stopping;
    char read_buf[64 * 1024];   /* shared: libuv hands each read over before the next */
};

/* ---- libdevnode in the loop -------------------------------------------------------- */

static void dn_on_timer(uv_timer_t *t);

static void dn_pump(struct server *s)
{
    int wait_ms = devnode_process(s->dn);
    uv_timer_start(&s->dn_timer, dn_on_timer, (uint64_t)(wait_ms > 0 ? wait_ms : 0), 0);
}

static void dn_on_timer(uv_timer_t *t)
{
    dn_pump(t->data);
}

static void dn_on_poll(uv_poll_t *p, int status, int events)
{
    dn_pump(p->data);
}

/* ---- answers ----------------------------------------------------------------------- */

struct out {
    uv_write_t req;
    struct conn *conn;
    char bytes[];
};

static void conn_close(struct conn *c);

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct server *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    if (s->stopping && !s->conns)
        uv_stop(&s->loop);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close(&c->sock.handle, on_closed);
}

static void on_write(uv_write_t *req, int status)
{
    struct out *o = (struct out *)req;
    struct conn *c = o->conn;
    free(o);
    c->writes_pending--;
    if (status < 0 || (c->close_after_writes && c->writes_pending == 0))
        conn_close(c);
}

static void respond(struct conn *c, int status, const char *reason, const char *body, const char *trace,
                    bool head_only)
{
    bool keep = http_should_keep_alive(&c->parser) && !c->server->stopping;
    size_t body_len = strlen(body);
    size_t cap = body_len + 512;
    struct out *o = malloc(sizeof *o + cap);
    if (!o) {
        conn_close(c);
        return;
    }
    int n = snprintf(o->bytes, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
                     "%s%s%sConnection: %s\r\n\r\n",
                     status, reason, body_len, trace && *trace ? "X-Trace-Id: " : "", trace ? trace : "",
                     trace && *trace ? "\r\n" : "", keep ? "keep-alive" : "close");
    if (!head_only) {
        memcpy(o->bytes + n, body, body_len);
        n += (int)body_len;
    }
    o->conn = c;
    uv_buf_t buf = uv_buf_init(o->bytes, (unsigned)n);
    if (uv_write(&o->req, &c->sock.stream, &buf, 1, on_write) < 0) {
        free(o);
        conn_close(c);
        return;
    }
    c->writes_pending++;
    if (!keep) {
        c->close_after_writes = true;
        uv_read_stop(&c->sock.stream);
    }
}

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

static void route_greet(struct conn *c, const char *query, size_t query_len, bool head_only)
{
    struct devnode *dn = c->server->dn;
    /* The trace starts here: the client's X-Trace-Id if it sent a usable one, else a new one;
     * every line we log and the call to Greeting (and so its event) carry it. */
    while (c->trace_len && (c->trace[c->trace_len - 1] == ' ' || c->trace[c->trace_len - 1] == '\t'))
        c->trace[--c->trace_len] = '\0';
    devnode_set_trace_id(dn, c->trace_len ? c->trace : NULL);
    if (!devnode_trace_id(dn)[0])
        devnode_set_trace_id(dn, NULL); /* the client sent "None": that is no trace */
    char trace[DEVNODE_TRACE_ID_MAX + 1];
    snprintf(trace, sizeof trace, "%s", devnode_trace_id(dn));
    char name[NAME_MAX_BYTES + 1];
    if (!query_get(query, query_len, "name", name, sizeof name) || !name[0]) {
        devnode_log(dn, DEVNODE_WARNING, "GET /greet without a name: 400");
        respond(c, 400, "Bad Request", "name is required: /greet?name=joe\n", trace, head_only);
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
        respond(c, 200, "OK", json_string_value(result), trace, head_only);
    } else {
        char body[700];
        int status = rc == DEVNODE_E_TIMEOUT ? 504 : rc == DEVNODE_E_NOT_FOUND ? 503 : 502;
        if (rc == DEVNODE_OK)
            snprintf(body, sizeof body, "Greeting.greet returned something else than a string\n");
        else
            snprintf(body, sizeof body, "Greeting.greet failed: %s: %s\n", err.type, err.message);
        devnode_log(dn, DEVNODE_ERROR, "GET /greet %d %.*s", status, (int)strlen(body) - 1, body);
        respond(c, status, status == 504 ? "Gateway Timeout" : status == 503 ? "Service Unavailable" : "Bad Gateway",
                body, trace, head_only);
    }
    json_decref(result);
}

static void route(struct conn *c)
{
    enum http_method method = (enum http_method)c->parser.method;
    bool head_only = method == HTTP_HEAD;
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) {
        respond(c, 400, "Bad Request", "bad request target\n", NULL, head_only);
        return;
    }
    const char *path = c->url + u.field_data[UF_PATH].off;
    size_t path_len = u.field_data[UF_PATH].len;
    const char *query = (u.field_set & (1 << UF_QUERY)) ? c->url + u.field_data[UF_QUERY].off : "";
    size_t query_len = (u.field_set & (1 << UF_QUERY)) ? u.field_data[UF_QUERY].len : 0;
    if (method != HTTP_GET && method != HTTP_HEAD) {
        respond(c, 405, "Method Not Allowed", "only GET\n", NULL, false);
        return;
    }
    if (path_len == 6 && memcmp(path, "/greet", 6) == 0) {
        route_greet(c, query, query_len, head_only);
        devnode_set_trace_id(c->server->dn, ""); /* the trace ends with its answer */
    }
    else if (path_len == 7 && memcmp(path, "/health", 7) == 0)
        respond(c, 200, "OK", "ok\n", NULL, head_only);
    else if (path_len == 1 && path[0] == '/')
        respond(c, 200, "OK", "try /greet?name=joe\n", NULL, head_only);
    else
        respond(c, 404, "Not Found", "not found\n", NULL, head_only);
}

/* ---- HTTP parsing ------------------------------------------------------------------ */

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    c->in_request = true;
    c->url_len = c->header_len = c->trace_len = 0;
    c->url[0] = c->trace[0] = '\0';
    c->header_done = false;
    c->capture_trace = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->url_len + len > URL_MAX)
        len = URL_MAX - c->url_len; /* cut: such a target matches no route */
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->header_done) {
        c->header_done = false;
        c->header_len = 0;
    }
    if (c->header_len + len > HEADER_NAME_MAX) {
        c->header_len = HEADER_NAME_MAX + 1; /* longer than any we look for */
        return 0;
    }
    memcpy(c->header + c->header_len, at, len);
    c->header_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (!c->header_done) {
        c->header_done = true;
        c->capture_trace = c->header_len == 10 && strncasecmp(c->header, "x-trace-id", 10) == 0 &&
                           c->trace_len == 0;
    }
    if (!c->capture_trace)
        return 0;
    for (size_t i = 0; i < len && c->trace_len < DEVNODE_TRACE_ID_MAX; i++)
        c->trace[c->trace_len++] = at[i];
    c->trace[c->trace_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    if (!c->close_after_writes && !c->closing)
        route(c); /* answered at once: pipelined requests keep their order by construction */
    c->in_request = false;
    c->answered++;
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    *buf = uv_buf_init(c->server->read_buf, sizeof c->server->read_buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (c->writes_pending)
            c->close_after_writes = true; /* a half-close still gets its answers */
        else
            conn_close(c);
        uv_read_stop(stream);
        return;
    }
    size_t parsed = http_parser_execute(&c->parser, &settings, buf->base, (size_t)nread);
    /* A call made while answering may have read the node socket, which leaves its edge-
     * triggered fd quiet: let libdevnode look now rather than at its next timer. */
    dn_pump(c->server);
    if (c->close_after_writes || c->closing)
        return;
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || parsed != (size_t)nread) {
        /* The parser cannot resync on a byte stream: one 400, then close. */
        respond(c, 400, "Bad Request", "bad request\n", NULL, false);
        c->close_after_writes = true;
        uv_read_stop(stream);
        if (!c->writes_pending)
            conn_close(c);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct server *s = listener->data;
    if (status < 0 || s->stopping)
        return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->server = s;
    if (s->is_tcp)
        uv_tcp_init(&s->loop, &c->sock.tcp);
    else
        uv_pipe_init(&s->loop, &c->sock.pipe, 0);
    c->sock.handle.data = c;
    c->next = s->conns;
    if (c->next)
        c->next->prev = c;
    s->conns = c;
    if (uv_accept(listener, &c->sock.stream) < 0) {
        conn_close(c);
        return;
    }
    if (s->is_tcp)
        uv_tcp_nodelay(&c->sock.tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_read_start(&c->sock.stream, on_alloc, on_read) < 0)
        conn_close(c);
}

/* ---- stopping ---------------------------------------------------------------------- */

static void on_stop_deadline(uv_timer_t *t)
{
    uv_stop(&((struct server *)t->data)->loop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;
    if (s->stopping) {
        uv_stop(&s->loop); /* second signal: go now */
        return;
    }
    s->stopping = true;
    devnode_log(s->dn, DEVNODE_INFO, "web %d stopping on %s", s->pid, signum == SIGINT ? "SIGINT" : "SIGTERM");
    uv_close(&s->listener.handle, NULL); /* only our fd: the other workers keep accepting */
    /* Only idle keep-alive connections close now. One accepted a moment ago has its request
     * on the way (the client sent it to the shared port, trusting it to be answered): it gets
     * its answer, with `Connection: close`, within STOP_DEADLINE_MS. */
    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->in_request || c->answered == 0)
            continue; /* respond() closes it after its answer: we are stopping */
        if (c->writes_pending)
            c->close_after_writes = true;
        else
            conn_close(c);
    }
    if (!s->conns)
        uv_stop(&s->loop);
    uv_timer_start(&s->stop_deadline, on_stop_deadline, STOP_DEADLINE_MS, 0);
}

/* ---- the listening socket ---------------------------------------------------------- */

/* LISTEN_FDS (systemd), then lymph's LYMPH_SHARED_SOCKET_FDS ({"4080": 3}), then $PORT bound
 * on 127.0.0.1 for running it by hand. The LISTEN_* variables are removed either way. */
static int find_listen_fd(int pid)
{
    const char *fds = getenv("LISTEN_FDS"), *lpid = getenv("LISTEN_PID");
    int fd = -1;
    if (fds && atoi(fds) > 0 && (!lpid || atoi(lpid) == pid))
        fd = LISTEN_FDS_START;
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDNAMES");
    if (fd >= 0)
        return fd;
    const char *lymph = getenv("LYMPH_SHARED_SOCKET_FDS");
    const char *colon = lymph ? strchr(lymph, ':') : NULL;
    if (colon && atoi(colon + 1) > 0)
        return atoi(colon + 1);
    const char *port = getenv("PORT");
    if (!port || atoi(port) <= 0 || atoi(port) > 65535)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        fprintf(stderr, "web %d: cannot listen on 127.0.0.1:%s: %s\n", pid, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    int pid = (int)getpid();
    int fd = find_listen_fd(pid);
    if (fd < 0) {
        fprintf(stderr, "web %d: no socket: run it under devnode with `sockets: {Web: {port: 4080}}`, "
                        "or set PORT\n", pid);
        return 2;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "web %d: %s\n", pid, err);
        return 2;
    }
    struct server *s = calloc(1, sizeof *s);
    if (!s) {
        devnode_close(dn);
        return 1;
    }
    s->dn = dn;
    s->pid = pid;
    uv_loop_init(&s->loop);

    int type = 0;
    socklen_t tlen = sizeof type;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        fprintf(stderr, "web %d: fd %d is not a stream socket\n", pid, fd);
        return 2;
    }
    s->is_tcp = ss.ss_family != AF_UNIX;
    int rc = s->is_tcp ? uv_tcp_init(&s->loop, &s->listener.tcp) : uv_pipe_init(&s->loop, &s->listener.pipe, 0);
    if (rc == 0)
        rc = s->is_tcp ? uv_tcp_open(&s->listener.tcp, fd) : uv_pipe_open(&s->listener.pipe, fd);
    s->listener.handle.data = s;
    if (rc == 0)
        rc = uv_listen(&s->listener.stream, LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        fprintf(stderr, "web %d: cannot accept on fd %d: %s\n", pid, fd, uv_strerror(rc));
        return 1;
    }

    /* Register (Web has no methods, but discover lists it and lymph.* answer), then tell the
     * node we are ready: the socket is accepting by now. */
    if (devnode_start(dn) < 0) {
        fprintf(stderr, "web %d: %s\n", pid, devnode_last_error(dn));
        return 1;
    }
    uv_poll_init(&s->loop, &s->dn_poll, devnode_fd(dn));
    s->dn_poll.data = s;
    uv_poll_start(&s->dn_poll, UV_READABLE, dn_on_poll);
    uv_timer_init(&s->loop, &s->dn_timer);
    s->dn_timer.data = s;
    dn_pump(s);
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_timer_init(&s->loop, &s->stop_deadline);
    s->stop_deadline.data = s;
    devnode_log(dn, DEVNODE_INFO, "web %d serving HTTP on fd %d", pid, fd);

    uv_run(&s->loop, UV_RUN_DEFAULT);

    devnode_stop(dn);
    s->stopping = false; /* from here on closing is teardown, not a reason to uv_stop */
    for (struct conn *c = s->conns; c; c = c->next)
        conn_close(c);
    uv_walk(&s->loop, close_walk, NULL);
    while (uv_run(&s->loop, UV_RUN_DEFAULT) != 0) {
    }
    uv_loop_close(&s->loop);
    free(s);
    devnode_close(dn);
    printf("web %d stopped\n", pid);
    return 0;
}
