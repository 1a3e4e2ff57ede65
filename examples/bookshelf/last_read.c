/* last_read: the bookshelf's view (examples/bookshelf). It rebuilds "the five books read last"
 * from the retained stream `book.#`, replayed from the beginning before it registers or accepts
 * a connection, keeps it current from the `book.read` events that follow, and answers
 * `GET /last-read` with it as JSON on the socket the node shares (fd 3). One libuv loop runs
 * HTTP and libdevnode's fd. It must never answer from a half-replayed stream, nor shutdown(2)
 * the inherited socket: the node and the other LastRead workers hold it too. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <devnode.h>

#define STREAM "book.#"
#define LAST_READ_MAX 5

enum {
    LISTEN_FDS_START = 3,       /* systemd's SD_LISTEN_FDS_START */
    LISTEN_BACKLOG = 1024,
    URL_MAX = 2048,
    HEADER_NAME_MAX = 32,
    STOP_DEADLINE_MS = 3000,    /* in-flight answers get this long after SIGTERM */
};

/* ---- the view: a model that knows nothing of HTTP ---------------------------------------- */

struct reading {
    char *title, *author, *read_at;   /* owned */
};

struct view {
    struct reading recent[LAST_READ_MAX]; /* newest first */
    size_t count;
    uint64_t events;                   /* applied, replayed or live */
    int64_t last_offset;               /* of the newest event applied; -1 before any */
    bool live;                         /* the replay is over: log each reading */
};

static void reading_free(struct reading *r)
{
    free(r->title);
    free(r->author);
    free(r->read_at);
    memset(r, 0, sizeof *r);
}

/* Puts a reading first; a book read again moves up rather than showing twice. 0 or -1. */
static int view_read(struct view *v, const char *title, const char *author, const char *read_at)
{
    struct reading r = {strdup(title), strdup(author), strdup(read_at)};
    if (!r.title || !r.author || !r.read_at) {
        reading_free(&r);
        return -1;
    }
    size_t drop = v->count < LAST_READ_MAX ? v->count : LAST_READ_MAX - 1; /* the slot that goes */
    for (size_t i = 0; i < v->count; i++)
        if (strcmp(v->recent[i].title, title) == 0)
            drop = i;
    if (drop < v->count)
        reading_free(&v->recent[drop]);
    else
        v->count++;
    memmove(&v->recent[1], &v->recent[0], drop * sizeof v->recent[0]);
    v->recent[0] = r;
    return 0;
}

static json_t *view_json(const struct view *v)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < v->count; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "title", v->recent[i].title, "author",
                                               v->recent[i].author, "read_at", v->recent[i].read_at));
    return list;
}

static int on_book_event(const struct devnode_event *ev, void *ctx)
{
    struct view *v = ctx;
    v->events++;
    v->last_offset = ev->offset;
    if (strcmp(ev->type, "book.read") != 0)
        return 0; /* book.added: what was read is all this view shows */
    const char *title = json_string_value(json_object_get(ev->body, "title"));
    const char *author = json_string_value(json_object_get(ev->body, "author"));
    const char *read_at = json_string_value(json_object_get(ev->body, "read_at"));
    if (!title || !author || !read_at) {
        /* Emitted by hand without the fields: acked all the same, or it would come back forever. */
        devnode_log(ev->dn, DEVNODE_WARNING, "skipped book.read at offset %lld: want title, author, read_at",
                    (long long)ev->offset);
        return 0;
    }
    if (view_read(v, title, author, read_at) < 0)
        return -1;
    if (v->live) /* during the replay one line per event would flood the log */
        devnode_log(ev->dn, DEVNODE_INFO, "book.read '%s' by %s at offset %lld: now first of the last read",
                    title, author, (long long)ev->offset);
    return 0;
}

/* ---- HTTP ------------------------------------------------------------------------------- */

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
    unsigned answered;          /* requests answered on it */
    bool in_request;            /* bytes of a request came that are not answered yet */
    bool close_after_writes;
    bool closing;
};

struct server {
    uv_loop_t loop;
    union stream listener;
    bool is_tcp;
    uv_signal_t sigterm, sigint;
    uv_poll_t dn_poll;          /* libdevnode's fd: node messages, RPC built-ins */
    uv_timer_t dn_timer;        /* heartbeats: devnode_process at the latest when it asks */
    uv_timer_t stop_deadline;
    struct devnode *dn;
    struct view *view;
    struct conn *conns;
    bool stopping;
    char read_buf[64 * 1024];   /* shared: libuv hands each read over before the next */
};

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

struct out {
    uv_write_t req;
    struct conn *conn;
    char bytes[];
};

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

/* `extra` holds whole header lines ("Name: value\r\n"), or is "". */
static void respond(struct conn *c, int status, const char *reason, const char *type, const char *extra,
                    const char *body, bool head_only)
{
    bool keep = http_should_keep_alive(&c->parser) && !c->server->stopping;
    size_t body_len = strlen(body);
    size_t cap = body_len + strlen(extra) + 512;
    struct out *o = malloc(sizeof *o + cap);
    if (!o) {
        conn_close(c);
        return;
    }
    int n = snprintf(o->bytes, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: %s\r\n\r\n",
                     status, reason, type, body_len, extra, keep ? "keep-alive" : "close");
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

static void route_last_read(struct conn *c, bool head_only)
{
    struct server *s = c->server;
    /* The trace starts here: the client's X-Trace-Id if it sent a usable one, else a new one. */
    while (c->trace_len && (c->trace[c->trace_len - 1] == ' ' || c->trace[c->trace_len - 1] == '\t'))
        c->trace[--c->trace_len] = '\0';
    devnode_set_trace_id(s->dn, c->trace_len ? c->trace : NULL);
    if (!devnode_trace_id(s->dn)[0])
        devnode_set_trace_id(s->dn, NULL); /* the client sent "None": that is no trace */
    json_t *list = view_json(s->view);
    char *body = list ? json_dumps(list, JSON_COMPACT) : NULL;
    json_decref(list);
    char extra[200];
    snprintf(extra, sizeof extra, "X-Trace-Id: %s\r\nX-Stream-Offset: %lld\r\n", devnode_trace_id(s->dn),
             (long long)s->view->last_offset);
    if (!body) {
        devnode_log(s->dn, DEVNODE_ERROR, "GET /last-read 500: out of memory");
        respond(c, 500, "Internal Server Error", "text/plain; charset=utf-8", extra, "out of memory\n", head_only);
    } else {
        devnode_log(s->dn, DEVNODE_INFO, "GET /last-read 200: %zu books as of offset %lld", s->view->count,
                    (long long)s->view->last_offset);
        size_t n = strlen(body);
        char *line = realloc(body, n + 2);
        if (line) {
            body = line;
            memcpy(body + n, "\n", 2);
        }
        respond(c, 200, "OK", "application/json", extra, body, head_only);
        free(body);
    }
    devnode_set_trace_id(s->dn, ""); /* the trace ends with its answer */
}

static void route(struct conn *c)
{
    enum http_method method = (enum http_method)c->parser.method;
    bool head_only = method == HTTP_HEAD;
    struct http_parser_url u;
    http_parser_url_init(&u);
    static const char text[] = "text/plain; charset=utf-8";
    if (http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) {
        respond(c, 400, "Bad Request", text, "", "bad request target\n", head_only);
        return;
    }
    const char *path = c->url + u.field_data[UF_PATH].off;
    size_t path_len = u.field_data[UF_PATH].len;
    if (method != HTTP_GET && method != HTTP_HEAD)
        respond(c, 405, "Method Not Allowed", text, "Allow: GET, HEAD\r\n", "only GET\n", false);
    else if (path_len == 10 && memcmp(path, "/last-read", 10) == 0)
        route_last_read(c, head_only);
    else if (path_len == 7 && memcmp(path, "/health", 7) == 0)
        respond(c, 200, "OK", text, "", "ok\n", head_only);
    else
        respond(c, 404, "Not Found", text, "", "not found: try /last-read\n", head_only);
}

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
    if (c->close_after_writes || c->closing)
        return;
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || parsed != (size_t)nread) {
        /* The parser cannot resync on a byte stream: one 400, then close. */
        respond(c, 400, "Bad Request", "text/plain; charset=utf-8", "", "bad request\n", false);
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

/* ---- stopping --------------------------------------------------------------------------- */

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
    devnode_log(s->dn, DEVNODE_INFO, "LastRead.%d stopping on %s", devnode_instance(s->dn),
                signum == SIGINT ? "SIGINT" : "SIGTERM");
    uv_close(&s->listener.handle, NULL); /* only our fd: the other workers keep accepting */
    /* Only idle keep-alive connections close now. One accepted a moment ago has its request
     * on the way (the client sent it to the shared port, trusting it to be answered): it is
     * answered, with `Connection: close`, like one half received, within STOP_DEADLINE_MS. */
    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->in_request || c->answered == 0)
            continue; /* respond() closes it after its answer: we are stopping */
        if (c->writes_pending)
            c->close_after_writes = true;
        else
            conn_close(c); /* uv_close: it leaves the list only in on_closed */
    }
    if (!s->conns)
        uv_stop(&s->loop);
    uv_timer_start(&s->stop_deadline, on_stop_deadline, STOP_DEADLINE_MS, 0);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* LISTEN_FDS (systemd), then lymph's LYMPH_SHARED_SOCKET_FDS ({"4090": 3}), then $PORT bound on
 * 127.0.0.1 for running it by hand. The LISTEN_* variables are removed either way. */
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
        fprintf(stderr, "last_read: cannot listen on 127.0.0.1:%s: %s\n", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Takes fd as the listener of s's loop; 0, or -1 with why on stderr. */
static int listen_on(struct server *s, int fd)
{
    int type = 0;
    socklen_t tlen = sizeof type;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        fprintf(stderr, "last_read: fd %d is not a stream socket\n", fd);
        return -1;
    }
    s->is_tcp = ss.ss_family != AF_UNIX;
    int rc = s->is_tcp ? uv_tcp_init(&s->loop, &s->listener.tcp) : uv_pipe_init(&s->loop, &s->listener.pipe, 0);
    if (rc == 0)
        rc = s->is_tcp ? uv_tcp_open(&s->listener.tcp, fd) : uv_pipe_open(&s->listener.pipe, fd);
    s->listener.handle.data = s;
    if (rc == 0)
        rc = uv_listen(&s->listener.stream, LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        fprintf(stderr, "last_read: cannot accept on fd %d: %s\n", fd, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    int fd = find_listen_fd((int)getpid());
    if (fd < 0) {
        fprintf(stderr, "last_read: no socket: run it under devnode with `sockets: {LastRead: {port: 4090}}`, "
                        "or set PORT\n");
        return 2;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "last_read: %s\n", err);
        return 2;
    }
    struct view view = {.last_offset = -1};
    struct server *s = calloc(1, sizeof *s);
    if (!s) {
        devnode_close(dn);
        return 1;
    }
    s->dn = dn;
    s->view = &view;
    uv_loop_init(&s->loop);
    int status = 1;

    /* A group of its own from the beginning: each instance rebuilds the whole view, and
     * devnode_start replays the stream to its end before it registers and says READY=1.
     * Connections wait in the shared listen queue meanwhile (another instance may take them). */
    long long t0 = mono_ms();
    if (devnode_subscribe_stream(dn, "view", STREAM, NULL, "beginning", DEVNODE_BROADCAST | DEVNODE_CATCH_UP,
                                 on_book_event, &view) != 0 ||
        devnode_start(dn) != 0) {
        fprintf(stderr, "last_read: %s\n", devnode_last_error(dn));
        goto out;
    }
    view.live = true;
    devnode_log(dn, DEVNODE_INFO, "LastRead.%d rebuilt from %llu events (to offset %lld) in %lld ms: %zu books",
                devnode_instance(dn), (unsigned long long)view.events, (long long)view.last_offset,
                mono_ms() - t0, view.count);
    if (listen_on(s, fd) < 0)
        goto out;
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
    devnode_log(dn, DEVNODE_INFO, "LastRead.%d serving GET /last-read on fd %d", devnode_instance(dn), fd);

    uv_run(&s->loop, UV_RUN_DEFAULT);
    status = 0;

out:
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
    for (size_t i = 0; i < view.count; i++)
        reading_free(&view.recent[i]);
    return status;
}
