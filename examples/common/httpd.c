/* httpd: the example services' HTTP/1.1 server on the listening socket the node shares
 * (see httpd.h). One request is answered at once, before the next is parsed; routes are the
 * caller's. It must never shutdown(2) the inherited socket, only close its own fd. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <devnode.h>

enum {
    LISTEN_FDS_START = 3,       /* systemd's SD_LISTEN_FDS_START */
    LISTEN_BACKLOG = 1024,
    URL_MAX = 2048,
    HEADER_NAME_MAX = 32,
};

static const char text_plain[] = "text/plain; charset=utf-8";

union stream {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
};

struct httpd_conn {
    union stream sock;
    http_parser parser;
    struct httpd *server;
    struct httpd_conn *next;
    struct httpd_conn **pprev;  /* the link that points at it: server->conns or the previous next */
    char url[URL_MAX + 1];
    size_t url_len;
    char header[HEADER_NAME_MAX + 1];
    size_t header_len;
    bool header_done;           /* the last callback was a value: a new name starts */
    bool capture_trace;         /* the value coming is X-Trace-Id's */
    char trace[DEVNODE_TRACE_ID_MAX + 1]; /* no longer than devnode_set_trace_id takes */
    size_t trace_len;
    unsigned writes_pending;
    unsigned answered;          /* requests answered on it */
    bool in_request;            /* bytes of a request came that are not answered yet */
    bool close_after_writes;
};

struct httpd {
    uv_loop_t *loop;
    union stream listener;
    bool is_tcp;
    bool stopping;              /* httpd_stop: no more accepting, no more keep-alive */
    bool closed;                /* httpd_close: freed when handles_open falls to 0 */
    unsigned handles_open;      /* the listener and the connections not closed yet */
    struct httpd_callbacks callbacks;
    struct httpd_conn *conns;
    char read_buf[64 * 1024];   /* shared: libuv hands each read over before the next */
};

/* ---- the listening socket ---------------------------------------------------------- */

int httpd_listen_fd(char *err, size_t err_size)
{
    err[0] = '\0';
    const char *fds = getenv("LISTEN_FDS"), *lpid = getenv("LISTEN_PID");
    int fd = -1;
    if (fds && atoi(fds) > 0 && (!lpid || atoi(lpid) == (int)getpid()))
        fd = LISTEN_FDS_START;
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDNAMES");
    if (fd < 0) {
        const char *lymph = getenv("LYMPH_SHARED_SOCKET_FDS");
        const char *colon = lymph ? strchr(lymph, ':') : NULL;
        if (colon && atoi(colon + 1) > 0)
            fd = atoi(colon + 1);
    }
    if (fd < 0) {
        const char *port = getenv("PORT");
        if (!port || atoi(port) <= 0 || atoi(port) > 65535)
            return -1;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
            snprintf(err, err_size, "cannot listen on 127.0.0.1:%s: %s", port, strerror(errno));
            close(fd);
            return -1;
        }
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

/* ---- connections ------------------------------------------------------------------- */

/* The last close callback frees the server httpd_close gave up. */
static void server_handle_closed(struct httpd *h)
{
    h->handles_open--;
    if (h->closed && h->handles_open == 0)
        free(h);
}

static void on_listener_closed(uv_handle_t *handle)
{
    server_handle_closed(handle->data);
}

static void on_conn_closed(uv_handle_t *handle)
{
    struct httpd_conn *c = handle->data;
    struct httpd *h = c->server;
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
    free(c);
    if (h->stopping && !h->closed && !h->conns)
        uv_stop(h->loop);
    server_handle_closed(h);
}

/* Any number of times: libuv knows whether the close has started. */
static void conn_close(struct httpd_conn *c)
{
    if (!uv_is_closing(&c->sock.handle))
        uv_close(&c->sock.handle, on_conn_closed);
}

/* ---- answers ----------------------------------------------------------------------- */

#define HEAD_FORMAT "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: %s\r\n\r\n"

struct out {
    uv_write_t req;
    struct httpd_conn *conn;
    char bytes[];
};

static void on_write(uv_write_t *req, int status)
{
    struct out *o = (struct out *)req;
    struct httpd_conn *c = o->conn;
    free(o);
    c->writes_pending--;
    if (status < 0 || (c->close_after_writes && c->writes_pending == 0))
        conn_close(c);
}

static void conn_write_response(struct httpd_conn *c, int status, const char *content_type, const char *headers,
                                const char *body, bool head_only)
{
    bool keep = http_should_keep_alive(&c->parser) && !c->server->stopping;
    const char *reason = http_status_str((enum http_status)status);
    const char *connection = keep ? "keep-alive" : "close";
    size_t body_len = strlen(body);
    int head_len = snprintf(NULL, 0, HEAD_FORMAT, status, reason, content_type, body_len, headers, connection);
    struct out *o = head_len < 0 ? NULL : malloc(sizeof *o + (size_t)head_len + 1 + body_len);
    if (!o) {
        conn_close(c);
        return;
    }
    snprintf(o->bytes, (size_t)head_len + 1, HEAD_FORMAT, status, reason, content_type, body_len, headers,
             connection);
    size_t n = (size_t)head_len;
    if (!head_only) {
        memcpy(o->bytes + n, body, body_len);
        n += body_len;
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

void httpd_respond(struct httpd_conn *c, int status, const char *content_type, const char *headers,
                   const char *body)
{
    conn_write_response(c, status, content_type ? content_type : text_plain, headers ? headers : "", body,
                        c->parser.method == HTTP_HEAD);
}

/* ---- requests ---------------------------------------------------------------------- */

/* Splits the target into path and query, each NUL-terminated in place, and hands the
 * request over; a target without a path gets a 400 here. */
static void conn_dispatch(struct httpd_conn *c)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) {
        httpd_respond(c, 400, NULL, NULL, "bad request target\n");
        return;
    }
    while (c->trace_len && (c->trace[c->trace_len - 1] == ' ' || c->trace[c->trace_len - 1] == '\t'))
        c->trace[--c->trace_len] = '\0';
    struct httpd_request req = {.method = (enum http_method)c->parser.method, .query = "", .trace_id = c->trace};
    char *path = c->url + u.field_data[UF_PATH].off;
    path[u.field_data[UF_PATH].len] = '\0'; /* the '?' or '#' that follows, or the end */
    req.path = path;
    if (u.field_set & (1 << UF_QUERY)) {
        char *query = c->url + u.field_data[UF_QUERY].off;
        query[u.field_data[UF_QUERY].len] = '\0';
        req.query = query;
    }
    c->server->callbacks.on_request(c, &req, c->server->callbacks.ctx);
}

static int on_message_begin(http_parser *p)
{
    struct httpd_conn *c = p->data;
    c->in_request = true;
    c->url_len = c->header_len = c->trace_len = 0;
    c->url[0] = c->trace[0] = '\0';
    c->header_done = false;
    c->capture_trace = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct httpd_conn *c = p->data;
    if (c->url_len + len > URL_MAX)
        len = URL_MAX - c->url_len; /* cut: such a target matches no route */
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct httpd_conn *c = p->data;
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
    struct httpd_conn *c = p->data;
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
    struct httpd_conn *c = p->data;
    if (!c->close_after_writes && !uv_is_closing(&c->sock.handle))
        conn_dispatch(c); /* answered at once: pipelined requests keep their order by construction */
    c->in_request = false;
    c->answered++;
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct httpd_conn *c = handle->data;
    *buf = uv_buf_init(c->server->read_buf, sizeof c->server->read_buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct httpd_conn *c = stream->data;
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
    size_t parsed = http_parser_execute(&c->parser, &parser_settings, buf->base, (size_t)nread);
    if (c->close_after_writes || uv_is_closing(&c->sock.handle))
        return;
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || parsed != (size_t)nread) {
        /* The parser cannot resync on a byte stream: one 400, then close. */
        conn_write_response(c, 400, text_plain, "", "bad request\n", false);
        c->close_after_writes = true;
        uv_read_stop(stream);
        if (!c->writes_pending)
            conn_close(c);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct httpd *h = listener->data;
    if (status < 0 || h->stopping)
        return;
    struct httpd_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->server = h;
    if (h->is_tcp)
        uv_tcp_init(h->loop, &c->sock.tcp);
    else
        uv_pipe_init(h->loop, &c->sock.pipe, 0);
    c->sock.handle.data = c;
    c->next = h->conns;
    if (c->next)
        c->next->pprev = &c->next;
    c->pprev = &h->conns;
    h->conns = c;
    h->handles_open++;
    if (uv_accept(listener, &c->sock.stream) < 0) {
        conn_close(c);
        return;
    }
    if (h->is_tcp)
        uv_tcp_nodelay(&c->sock.tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_read_start(&c->sock.stream, on_alloc, on_read) < 0)
        conn_close(c);
}

/* ---- the server -------------------------------------------------------------------- */

int httpd_open(struct httpd **out, uv_loop_t *loop, int listen_fd, const struct httpd_callbacks *callbacks,
               char *err, size_t err_size)
{
    *out = NULL;
    int type = 0;
    socklen_t type_len = sizeof type;
    struct sockaddr_storage ss;
    socklen_t ss_len = sizeof ss;
    if (getsockopt(listen_fd, SOL_SOCKET, SO_TYPE, &type, &type_len) < 0 || type != SOCK_STREAM ||
        getsockname(listen_fd, (struct sockaddr *)&ss, &ss_len) < 0) {
        snprintf(err, err_size, "fd %d is not a stream socket", listen_fd);
        return -ENOTSOCK;
    }
    struct httpd *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    h->loop = loop;
    h->callbacks = *callbacks;
    h->is_tcp = ss.ss_family != AF_UNIX;
    int rc = h->is_tcp ? uv_tcp_init(loop, &h->listener.tcp) : uv_pipe_init(loop, &h->listener.pipe, 0);
    if (rc < 0) {
        free(h); /* no handle to close yet */
    } else {
        h->listener.handle.data = h;
        h->handles_open = 1;
        rc = h->is_tcp ? uv_tcp_open(&h->listener.tcp, listen_fd) : uv_pipe_open(&h->listener.pipe, listen_fd);
        if (rc == 0)
            rc = uv_listen(&h->listener.stream, LISTEN_BACKLOG, on_connection);
        if (rc < 0)
            httpd_close(h);
    }
    if (rc < 0) {
        snprintf(err, err_size, "cannot accept on fd %d: %s", listen_fd, uv_strerror(rc));
        return rc;
    }
    *out = h;
    return 0;
}

void httpd_stop(struct httpd *h)
{
    if (h->stopping)
        return;
    h->stopping = true;
    uv_close(&h->listener.handle, on_listener_closed); /* only our fd: the other workers keep accepting */
    /* Only idle keep-alive connections close now. One accepted a moment ago has its request
     * on the way (the client sent it to the shared port, trusting it to be answered): it is
     * answered, with `Connection: close`, like one half received. */
    for (struct httpd_conn *c = h->conns; c; c = c->next) {
        if (c->in_request || c->answered == 0)
            continue; /* its answer closes it: we are stopping */
        if (c->writes_pending)
            c->close_after_writes = true;
        else
            conn_close(c); /* uv_close: it leaves the list only in on_conn_closed */
    }
    if (!h->conns)
        uv_stop(h->loop);
}

void httpd_close(struct httpd *h)
{
    if (!h)
        return;
    h->closed = true; /* from here on closing is teardown, not a reason to uv_stop */
    if (!uv_is_closing(&h->listener.handle))
        uv_close(&h->listener.handle, on_listener_closed);
    for (struct httpd_conn *c = h->conns; c; c = c->next)
        conn_close(c);
    if (h->handles_open == 0)
        free(h); /* stopped, and every connection already gone */
}
