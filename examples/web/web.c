/* web: the example HTTP worker that devnode's tests and benches run on shared listening
 * sockets (LISTEN_FDS, LYMPH_SHARED_SOCKET_FDS, --fd) to exercise zero-downtime restarts.
 * It must never shutdown(2) the inherited socket: the node and other workers still use it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <http_parser.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

enum {
    LISTEN_FDS_START = 3,              /* SD_LISTEN_FDS_START: passed fds start here */
    LISTEN_BACKLOG = 1024,
    READ_BUFFER_BYTES = 64 * 1024,
    URL_MAX_BYTES = 2048,              /* a longer target matches no route: it is cut and gets 404 */
    HEADER_NAME_MAX_BYTES = 32,        /* room for the longest header name we look for */
    TRACE_ID_MAX_BYTES = 128,
    EXPECT_MAX_BYTES = 32,
    SLOW_MAX_MS = 3600 * 1000,
    WRITE_BACKLOG_MAX_BYTES = 1 << 20, /* stop reading a client that does not read its answers */
    LINGER_MS = 2000,                  /* how long a closing connection waits for the client's FIN */
    IDLE_GRACE_MS = 100,               /* at stop, an idle keep-alive connection may still get one */
    STOP_DEADLINE_MS = 4000,           /* in-flight requests get this long: exit well within 5 s */
    RESPONSE_MAX_BYTES = 512,          /* status line, our few headers and the longest body */
};

/* Headers whose value we keep; every other header is skipped. */
enum header_kind {
    HEADER_OTHER = 0,
    HEADER_TRACE_ID,    /* X-Trace-Id, echoed in the request log line */
    HEADER_EXPECT,      /* Expect: 100-continue gets an interim answer */
};

/* The request being parsed; reset when the next one begins. */
struct request {
    char url[URL_MAX_BYTES];
    size_t url_len;
    char header_name[HEADER_NAME_MAX_BYTES];
    size_t header_name_len;
    bool header_name_too_long;      /* longer than any name we look for: cannot match */
    bool in_header_value;           /* last callback was a value: the next name starts anew */
    enum header_kind capturing;     /* which value the current header's pieces go to */
    char trace_id[TRACE_ID_MAX_BYTES + 1];
    size_t trace_id_len;
    char expect[EXPECT_MAX_BYTES + 1];
    size_t expect_len;
    enum http_method method;        /* copied at message end; the parser moves on */
    bool keep_alive;                /* what the client asked for, before we consider stopping */
    bool http_1_0;                  /* keep-alive must then be confirmed by a header */
};

union stream_handle {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
};

struct server;

struct connection {
    union stream_handle socket;     /* a TCP or unix stream, like the listener it came from */
    uv_timer_t timer;               /* the /slow delay, the idle grace at stop, the linger */
    uv_shutdown_t shutdown_req;
    http_parser parser;
    struct request request;
    struct server *server;
    struct connection *prev, *next; /* the server's list of open connections */
    char *stash;                    /* bytes read past a request we are still answering */
    size_t stash_len;
    size_t stash_off;               /* how much of the stash has been parsed */
    unsigned writes_pending;        /* uv_write requests whose callback has not run */
    int handles_open;               /* socket and timer; the struct is freed when both closed */
    bool in_request;                /* bytes of a request arrived and it is not answered yet */
    bool waiting_slow;              /* the timer runs for /slow; the parser is paused */
    bool close_after_writes;        /* no more requests: close once the answers are written */
    bool peer_eof;                  /* the client will send nothing more */
    bool lingering;                 /* our FIN is sent; draining the client's bytes until its own */
    bool reading;
    bool closing;
};

struct server {
    uv_loop_t loop;
    union stream_handle listener;
    bool listener_is_tcp;
    char address[160];              /* the listener's address, for the log lines */
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t stop_deadline;
    struct connection *connections; /* head of the list of open connections */
    unsigned connection_count;
    const char *notify_socket;      /* NOTIFY_SOCKET, or NULL */
    int pid;
    bool log_requests;
    bool stopping;
    char read_buffer[READ_BUFFER_BYTES]; /* shared: libuv hands over each read before the next */
};

static int on_message_begin(http_parser *parser);
static int on_url(http_parser *parser, const char *at, size_t len);
static int on_header_field(http_parser *parser, const char *at, size_t len);
static int on_header_value(http_parser *parser, const char *at, size_t len);
static int on_headers_complete(http_parser *parser);
static int on_message_complete(http_parser *parser);

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
    /* bodies are read and dropped: no on_body */
};

/* ---- small helpers ----------------------------------------------------------------- */

/* Parses all of `text` as a decimal in [min, max]; false if it is anything else. */
static bool parse_long(const char *text, long min, long max, long *out)
{
    if (!text || !*text)
        return false;
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || *end != '\0' || value < min || value > max)
        return false;
    *out = value;
    return true;
}

/* Appends at most what fits, keeping dst NUL-terminated (dst holds cap + 1 bytes). */
static void append_capped(char *dst, size_t *dst_len, size_t cap, const char *src, size_t len)
{
    size_t room = cap - *dst_len;
    if (len > room)
        len = room;
    memcpy(dst + *dst_len, src, len);
    *dst_len += len;
    dst[*dst_len] = '\0';
}

/* ---- readiness (sd_notify) --------------------------------------------------------- */

/* Sends one sd_notify(3) datagram. Failure is only logged: readiness is advisory and
 * the worker serves either way. */
static void notify_send(const struct server *server, const char *message)
{
    const char *path = server->notify_socket;
    if (!path || !*path)
        return;
    size_t path_len = strlen(path);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if ((path[0] != '/' && path[0] != '@') || path_len >= sizeof addr.sun_path) {
        fprintf(stderr, "web %d: NOTIFY_SOCKET=%s is not an absolute path or @name; not notifying\n",
                server->pid, path);
        return;
    }
    memcpy(addr.sun_path, path, path_len);
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0'; /* abstract namespace: the name has no trailing NUL */
    else
        addr_len += 1;

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "web %d: NOTIFY_SOCKET: socket: %s\n", server->pid, strerror(errno));
        return;
    }
    if (sendto(fd, message, strlen(message), MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len) < 0)
        fprintf(stderr, "web %d: NOTIFY_SOCKET=%s: %s\n", server->pid, path, strerror(errno));
    close(fd);
}

/* ---- writing answers --------------------------------------------------------------- */

/* One write in flight; the bytes live right after the request so one free releases both. */
struct outgoing {
    uv_write_t req;
    struct connection *conn;
    char bytes[];
};

static void conn_close(struct connection *conn);
static void conn_maybe_finish(struct connection *conn);
static void conn_update_reading(struct connection *conn);
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
    struct outgoing *out = (struct outgoing *)req;
    struct connection *conn = out->conn;
    free(out);
    conn->writes_pending--;
    if (conn->closing)
        return; /* UV_ECANCELED from our own uv_close */
    if (status < 0) {
        conn_close(conn); /* the client went away; nothing to answer any more */
        return;
    }
    conn_maybe_finish(conn);
    conn_update_reading(conn);
}

static void conn_write(struct connection *conn, const char *bytes, size_t len)
{
    if (conn->closing)
        return;
    struct outgoing *out = malloc(sizeof *out + len);
    if (!out) {
        conn_close(conn);
        return;
    }
    out->conn = conn;
    memcpy(out->bytes, bytes, len);
    uv_buf_t buf = uv_buf_init(out->bytes, (unsigned)len);
    if (uv_write(&out->req, &conn->socket.stream, &buf, 1, on_write) < 0) {
        free(out);
        conn_close(conn);
        return;
    }
    conn->writes_pending++;
}

static const char *status_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    default: return "Unknown";
    }
}

static void log_request(const struct connection *conn, const char *method, int status,
                        const char *error)
{
    const struct server *server = conn->server;
    const struct request *req = &conn->request;
    if (!server->log_requests)
        return;
    printf("%s %.*s %d %d trace_id=%s%s%s\n", method, (int)(req->url_len ? req->url_len : 1),
           req->url_len ? req->url : "-", status, server->pid,
           req->trace_id_len ? req->trace_id : "-", error ? " error=" : "", error ? error : "");
}

/* Queues one complete answer. After an answer that says close, nothing more is parsed
 * from this connection; it is closed once the answer is written. */
static void conn_respond(struct connection *conn, int status, const char *body, bool keep_alive,
                         bool head_only)
{
    const struct request *req = &conn->request;
    size_t body_len = strlen(body);
    const char *connection_header = "";
    if (!keep_alive)
        connection_header = "Connection: close\r\n";
    else if (req->http_1_0)
        connection_header = "Connection: keep-alive\r\n";

    char response[RESPONSE_MAX_BYTES];
    int header_len = snprintf(response, sizeof response,
                              "HTTP/1.1 %d %s\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: %zu\r\n"
                              "X-Pid: %d\r\n"
                              "%s"
                              "\r\n",
                              status, status_reason(status), body_len, conn->server->pid,
                              connection_header);
    size_t len = (size_t)header_len;
    if (!head_only && len + body_len <= sizeof response) {
        memcpy(response + len, body, body_len);
        len += body_len;
    }
    conn_write(conn, response, len);
    if (!keep_alive) {
        conn->close_after_writes = true;
        /* Stops http_parser_execute right after this message: the pipelined rest is dropped. */
        if (HTTP_PARSER_ERRNO(&conn->parser) == HPE_OK)
            http_parser_pause(&conn->parser, 1);
    }
}

/* Answers the request the parser just finished (or that /slow held back). */
static void conn_finish_request(struct connection *conn, int status, const char *body)
{
    const struct request *req = &conn->request;
    bool keep_alive = req->keep_alive && !conn->server->stopping;
    conn->in_request = false;
    conn_respond(conn, status, body, keep_alive, req->method == HTTP_HEAD);
    log_request(conn, http_method_str(req->method), status, NULL);
}

/* ---- routes ------------------------------------------------------------------------ */

/* Finds ms=N in a query string; -1 if it is there but not a number in range, 0 if absent. */
static long query_slow_ms(const char *query, size_t len)
{
    const char *end = query + len;
    const char *item = query;
    while (item < end) {
        const char *item_end = memchr(item, '&', (size_t)(end - item));
        if (!item_end)
            item_end = end;
        if (item_end - item > 3 && memcmp(item, "ms=", 3) == 0) {
            char digits[16];
            size_t n = (size_t)(item_end - item - 3);
            if (n >= sizeof digits)
                return -1;
            memcpy(digits, item + 3, n);
            digits[n] = '\0';
            long ms;
            return parse_long(digits, 0, SLOW_MAX_MS, &ms) ? ms : -1;
        }
        item = item_end + 1;
    }
    return 0;
}

static void on_slow_timer(uv_timer_t *timer);

static void conn_route(struct connection *conn)
{
    struct request *req = &conn->request;
    char body[64];
    int pid = conn->server->pid;

    struct http_parser_url parts;
    http_parser_url_init(&parts);
    bool is_get = req->method == HTTP_GET || req->method == HTTP_HEAD;
    if (!is_get || http_parser_parse_url(req->url, req->url_len, req->method == HTTP_CONNECT, &parts) != 0
        || !(parts.field_set & (1 << UF_PATH))) {
        conn_finish_request(conn, 404, "not found\n");
        return;
    }
    const char *path = req->url + parts.field_data[UF_PATH].off;
    size_t path_len = parts.field_data[UF_PATH].len;
#define PATH_IS(literal) (path_len == sizeof literal - 1 && memcmp(path, literal, path_len) == 0)
    if (PATH_IS("/")) {
        snprintf(body, sizeof body, "hello from %d\n", pid);
        conn_finish_request(conn, 200, body);
    } else if (PATH_IS("/pid")) {
        snprintf(body, sizeof body, "%d\n", pid);
        conn_finish_request(conn, 200, body);
    } else if (PATH_IS("/health")) {
        conn_finish_request(conn, 200, "ok\n");
    } else if (PATH_IS("/slow")) {
        long ms = 0;
        if (parts.field_set & (1 << UF_QUERY))
            ms = query_slow_ms(req->url + parts.field_data[UF_QUERY].off,
                               parts.field_data[UF_QUERY].len);
        if (ms < 0) {
            conn_finish_request(conn, 400, "bad ms\n");
            return;
        }
        /* Answers from the timer; pipelined requests behind this one wait (in order) in
         * the stash until then, so the parser is paused and reading stops. */
        conn->waiting_slow = true;
        http_parser_pause(&conn->parser, 1);
        uv_timer_start(&conn->timer, on_slow_timer, (uint64_t)ms, 0);
    } else {
        conn_finish_request(conn, 404, "not found\n");
    }
#undef PATH_IS
}

/* ---- http-parser callbacks --------------------------------------------------------- */

static int on_message_begin(http_parser *parser)
{
    struct connection *conn = parser->data;
    struct request *req = &conn->request;
    req->url_len = 0;
    req->url[0] = '\0';
    req->header_name_len = 0;
    req->header_name_too_long = false;
    req->in_header_value = false;
    req->capturing = HEADER_OTHER;
    req->trace_id_len = 0;
    req->trace_id[0] = '\0';
    req->expect_len = 0;
    req->expect[0] = '\0';
    conn->in_request = true;
    return 0;
}

static int on_url(http_parser *parser, const char *at, size_t len)
{
    struct request *req = &((struct connection *)parser->data)->request;
    append_capped(req->url, &req->url_len, sizeof req->url - 1, at, len);
    return 0;
}

/* A header's name and value may each come in several pieces (split across reads). */
static int on_header_field(http_parser *parser, const char *at, size_t len)
{
    struct request *req = &((struct connection *)parser->data)->request;
    if (req->in_header_value) {
        req->in_header_value = false;
        req->header_name_len = 0;
        req->header_name_too_long = false;
    }
    if (req->header_name_len + len > sizeof req->header_name) {
        req->header_name_too_long = true;
        return 0;
    }
    memcpy(req->header_name + req->header_name_len, at, len);
    req->header_name_len += len;
    return 0;
}

static bool header_name_is(const struct request *req, const char *name)
{
    size_t len = strlen(name);
    return !req->header_name_too_long && req->header_name_len == len
           && strncasecmp(req->header_name, name, len) == 0;
}

static int on_header_value(http_parser *parser, const char *at, size_t len)
{
    struct request *req = &((struct connection *)parser->data)->request;
    if (!req->in_header_value) {
        req->in_header_value = true;
        req->capturing = HEADER_OTHER;
        /* The first X-Trace-Id wins; a repeated one is ignored. */
        if (header_name_is(req, "x-trace-id") && req->trace_id_len == 0)
            req->capturing = HEADER_TRACE_ID;
        else if (header_name_is(req, "expect"))
            req->capturing = HEADER_EXPECT;
    }
    if (req->capturing == HEADER_TRACE_ID) {
        size_t start = req->trace_id_len;
        append_capped(req->trace_id, &req->trace_id_len, TRACE_ID_MAX_BYTES, at, len);
        /* It goes into a log line: keep it to one printable word. */
        for (size_t i = start; i < req->trace_id_len; i++) {
            unsigned char c = (unsigned char)req->trace_id[i];
            if (c <= ' ' || c > '~')
                req->trace_id[i] = '?';
        }
    } else if (req->capturing == HEADER_EXPECT) {
        append_capped(req->expect, &req->expect_len, EXPECT_MAX_BYTES, at, len);
    }
    return 0;
}

static int on_headers_complete(http_parser *parser)
{
    struct connection *conn = parser->data;
    const struct request *req = &conn->request;
    /* A client that waits for 100 Continue before its body (curl does, for big bodies)
     * would otherwise stall a second. */
    if (strcasecmp(req->expect, "100-continue") == 0 && parser->http_major == 1
        && parser->http_minor >= 1) {
        static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_write(conn, interim, sizeof interim - 1);
    }
    return 0;
}

static int on_message_complete(http_parser *parser)
{
    struct connection *conn = parser->data;
    struct request *req = &conn->request;
    req->method = (enum http_method)parser->method;
    req->http_1_0 = parser->http_major == 1 && parser->http_minor == 0;
    /* After an upgrade or CONNECT the bytes are another protocol: answer, then close. */
    req->keep_alive = http_should_keep_alive(parser) && !parser->upgrade;
    conn_route(conn);
    return 0;
}

/* ---- connections ------------------------------------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *handle)
{
    struct connection *conn = handle->data;
    if (--conn->handles_open > 0)
        return;
    struct server *server = conn->server;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        server->connections = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    server->connection_count--;
    free(conn->stash);
    free(conn);
}

static void conn_close(struct connection *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    conn->reading = false;
    /* Pending writes and the shutdown get UV_ECANCELED before the close callbacks run,
     * so the struct outlives every callback that points at it. */
    uv_close(&conn->socket.handle, on_conn_handle_closed);
    uv_close((uv_handle_t *)&conn->timer, on_conn_handle_closed);
}

static void conn_update_reading(struct connection *conn)
{
    bool want = !conn->closing && !conn->peer_eof && !conn->waiting_slow
                && (conn->lingering
                    || (!conn->close_after_writes
                        && uv_stream_get_write_queue_size(&conn->socket.stream) < WRITE_BACKLOG_MAX_BYTES));
    if (want == conn->reading)
        return;
    conn->reading = want;
    if (!want) {
        uv_read_stop(&conn->socket.stream);
        return;
    }
    int rc = uv_read_start(&conn->socket.stream, on_alloc, on_read);
    if (rc < 0)
        conn_close(conn);
}

static void on_linger_timeout(uv_timer_t *timer)
{
    conn_close(timer->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct connection *conn = req->handle->data;
    if (status < 0)
        conn_close(conn);
}

/* Closes the connection once everything it asked for is answered and written. A
 * connection we close while the client may still be sending is shut down first and
 * drained for a moment: closing with unread bytes would send a RST, which can destroy
 * our last answer before the client reads it. */
static void conn_maybe_finish(struct connection *conn)
{
    if (conn->closing || conn->lingering || conn->waiting_slow || conn->writes_pending > 0)
        return;
    if (conn->peer_eof) {
        conn_close(conn);
        return;
    }
    if (!conn->close_after_writes)
        return;
    conn->lingering = true;
    if (uv_shutdown(&conn->shutdown_req, &conn->socket.stream, on_shutdown) < 0) {
        conn_close(conn);
        return;
    }
    uv_timer_start(&conn->timer, on_linger_timeout, LINGER_MS, 0);
}

/* Parses bytes; returns how many were consumed. Fewer than len only when /slow paused
 * the parser: the caller keeps the rest for later. */
static size_t conn_parse(struct connection *conn, const char *data, size_t len)
{
    size_t parsed = http_parser_execute(&conn->parser, &parser_settings, data, len);
    if (conn->close_after_writes)
        return len; /* what follows a closing answer is never looked at */
    enum http_errno err = HTTP_PARSER_ERRNO(&conn->parser);
    if (err == HPE_PAUSED)
        return parsed;
    if (err != HPE_OK) {
        /* Garbage, an oversized header block (HPE_HEADER_OVERFLOW), a bad chunk: one 400,
         * then the connection goes; the parser cannot resync on a byte stream. */
        if (!conn->in_request) {
            /* It failed before a request began: what we hold is the previous request's. */
            conn->request.url_len = 0;
            conn->request.trace_id_len = 0;
        }
        conn->in_request = false;
        conn_respond(conn, 400, "bad request\n", false, false);
        log_request(conn, "-", 400, http_errno_name(err));
        return len;
    }
    if (conn->parser.upgrade) {
        conn->close_after_writes = true;
        return len;
    }
    return parsed;
}

static bool conn_stash_append(struct connection *conn, const char *data, size_t len)
{
    size_t kept = conn->stash_len - conn->stash_off;
    char *grown = malloc(kept + len);
    if (!grown)
        return false;
    if (kept)
        memcpy(grown, conn->stash + conn->stash_off, kept);
    memcpy(grown + kept, data, len);
    free(conn->stash);
    conn->stash = grown;
    conn->stash_off = 0;
    conn->stash_len = kept + len;
    return true;
}

/* Parses what piled up behind a /slow request, until it is gone or another pauses. */
static void conn_parse_stash(struct connection *conn)
{
    while (conn->stash_off < conn->stash_len && !conn->waiting_slow && !conn->close_after_writes
           && !conn->closing)
        conn->stash_off += conn_parse(conn, conn->stash + conn->stash_off, conn->stash_len - conn->stash_off);
    if (conn->stash_off >= conn->stash_len || conn->close_after_writes) {
        free(conn->stash);
        conn->stash = NULL;
        conn->stash_len = conn->stash_off = 0;
    }
}

static void on_slow_timer(uv_timer_t *timer)
{
    struct connection *conn = timer->data;
    char body[64];
    snprintf(body, sizeof body, "slow %d\n", conn->server->pid);
    conn->waiting_slow = false;
    conn_finish_request(conn, 200, body);
    if (!conn->close_after_writes) {
        http_parser_pause(&conn->parser, 0);
        conn_parse_stash(conn);
    }
    conn_maybe_finish(conn);
    conn_update_reading(conn);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct connection *conn = handle->data;
    *buf = uv_buf_init(conn->server->read_buffer, sizeof conn->server->read_buffer);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct connection *conn = stream->data;
    if (nread == 0)
        return; /* EAGAIN */
    if (nread < 0) {
        conn->peer_eof = true;
        /* A client that half-closes after its requests still gets its answers; a reset or
         * an error means nobody is left to read them. */
        if (nread != UV_EOF || conn->lingering)
            conn_close(conn);
        else
            conn_maybe_finish(conn);
        conn_update_reading(conn);
        return;
    }
    if (conn->lingering || conn->close_after_writes)
        return; /* drained and dropped */
    size_t len = (size_t)nread;
    size_t consumed = 0; /* bytes behind a held-back request queue after the stash, in order */
    if (!conn->waiting_slow && conn->stash_len == conn->stash_off)
        consumed = conn_parse(conn, buf->base, len);
    if (consumed < len && !conn->close_after_writes && !conn->closing
        && !conn_stash_append(conn, buf->base + consumed, len - consumed))
        conn_close(conn);
    conn_maybe_finish(conn);
    conn_update_reading(conn);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct server *server = listener->data;
    if (status < 0) {
        /* EMFILE and friends: libuv retries on the next readiness; keep serving the rest. */
        fprintf(stderr, "web %d: accept: %s\n", server->pid, uv_strerror(status));
        return;
    }
    struct connection *conn = calloc(1, sizeof *conn);
    if (!conn) {
        /* Without a handle libuv cannot hand the accepted fd over and stops accepting. */
        fprintf(stderr, "web %d: out of memory accepting a connection\n", server->pid);
        exit(1);
    }
    conn->server = server;
    if (server->listener_is_tcp)
        uv_tcp_init(&server->loop, &conn->socket.tcp);
    else
        uv_pipe_init(&server->loop, &conn->socket.pipe, 0);
    uv_timer_init(&server->loop, &conn->timer);
    conn->socket.handle.data = conn;
    conn->timer.data = conn;
    conn->handles_open = 2;
    conn->next = server->connections;
    if (conn->next)
        conn->next->prev = conn;
    server->connections = conn;
    server->connection_count++;

    int rc = uv_accept(listener, &conn->socket.stream);
    if (rc < 0) {
        fprintf(stderr, "web %d: accept: %s\n", server->pid, uv_strerror(rc));
        conn_close(conn);
        return;
    }
    if (server->listener_is_tcp)
        uv_tcp_nodelay(&conn->socket.tcp, 1); /* pipelined answers must not wait on Nagle */
    http_parser_init(&conn->parser, HTTP_REQUEST);
    conn->parser.data = conn;
    conn_update_reading(conn);
}

/* ---- stopping ---------------------------------------------------------------------- */

static void server_close_all(struct server *server, const char *why)
{
    unsigned open = 0;
    for (struct connection *conn = server->connections; conn; conn = conn->next)
        open += !conn->closing;
    if (open)
        printf("web %d %s: closing %u connections now\n", server->pid, why, open);
    for (struct connection *conn = server->connections; conn; conn = conn->next)
        conn_close(conn); /* unlinked only in the close callback, so the walk stays valid */
}

/* A request already on its way when we stopped would hit a closed socket; a busy client
 * (a benchmark, a proxy) sends its next one within this grace and gets it answered with
 * Connection: close instead of a reset. */
static void on_idle_grace_timeout(uv_timer_t *timer)
{
    struct connection *conn = timer->data;
    if (conn->in_request || conn->waiting_slow || conn->lingering)
        return; /* a request came: its answer says Connection: close */
    conn->close_after_writes = true;
    if (conn->writes_pending == 0) {
        conn_close(conn); /* idle: nothing to flush and nothing sent to us */
        return;
    }
    conn_maybe_finish(conn);
    conn_update_reading(conn);
}

static void on_stop_deadline(uv_timer_t *timer)
{
    server_close_all(timer->data, "stop deadline passed");
}

/* Stops accepting and lets what is in flight finish. The listening fd is only closed:
 * shutdown(2) on it would stop the node's other workers from accepting too. */
static void server_begin_stop(struct server *server, int signum)
{
    if (server->stopping) {
        server_close_all(server, signum == SIGINT ? "second SIGINT" : "second SIGTERM");
        return;
    }
    server->stopping = true;
    printf("web %d stopping: %u connections open\n", server->pid, server->connection_count);
    notify_send(server, "STOPPING=1");
    uv_close(&server->listener.handle, NULL);

    for (struct connection *conn = server->connections; conn; conn = conn->next) {
        if (conn->closing || conn->lingering || conn->in_request || conn->waiting_slow)
            continue; /* closing already, or its answer will say Connection: close */
        uv_timer_start(&conn->timer, on_idle_grace_timeout, IDLE_GRACE_MS, 0);
    }
    uv_timer_start(&server->stop_deadline, on_stop_deadline, STOP_DEADLINE_MS, 0);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    server_begin_stop(handle->data, signum);
}

/* ---- finding the listening socket -------------------------------------------------- */

/* The systemd protocol: reads LISTEN_FDS/LISTEN_PID and unsets them with LISTEN_FDNAMES
 * (as sd_listen_fds(1) does) so nothing we start inherits them. Returns fd 3 or -1. */
static int take_listen_fds(int pid)
{
    const char *count_text = getenv("LISTEN_FDS");
    const char *pid_text = getenv("LISTEN_PID");
    int found = -1;
    if (count_text && *count_text) {
        long count, listen_pid;
        if (pid_text && (!parse_long(pid_text, 1, INT_MAX, &listen_pid) || listen_pid != pid)) {
            /* What a `sh -c` that does not exec its command produces. */
            fprintf(stderr, "web %d: LISTEN_PID=%s is not this process; ignoring LISTEN_FDS "
                            "(start the worker with exec)\n", pid, pid_text);
        } else if (!parse_long(count_text, 0, INT_MAX - LISTEN_FDS_START, &count)) {
            fprintf(stderr, "web %d: LISTEN_FDS=%s is not a count; ignoring it\n", pid, count_text);
        } else if (count > 0) {
            for (long fd = LISTEN_FDS_START; fd < LISTEN_FDS_START + count; fd++)
                fcntl((int)fd, F_SETFD, FD_CLOEXEC); /* extra fds stay open but unused */
            found = LISTEN_FDS_START;
        }
    }
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDNAMES");
    return found;
}

/* lymph's form, a flat JSON object from port to fd: {"4080": 3}. Returns the first fd,
 * or -1 if the text is not that shape. */
static int parse_lymph_socket_fds(const char *json)
{
    const char *p = json;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (*p != '{')
        return -1;
    p = strchr(p, ':');
    if (!p)
        return -1;
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    long fd = 0;
    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9' && fd <= INT_MAX / 10)
        fd = fd * 10 + (*p++ - '0');
    if (fd > INT_MAX || (*p != ',' && *p != '}' && *p != ' ' && *p != '\n' && *p != '\t'))
        return -1;
    return (int)fd;
}

static int bind_loopback(int port, int pid)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "web %d: socket: %s\n", pid, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        fprintf(stderr, "web %d: cannot listen on 127.0.0.1:%d: %s\n", pid, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Checks the fd is a listening stream socket and describes its address. Returns its
 * family, or -1 with the reason printed. */
static int inspect_listen_fd(int fd, int pid, char *address, size_t address_size)
{
    int value = 0;
    socklen_t value_len = sizeof value;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &value_len) < 0) {
        fprintf(stderr, "web %d: fd %d is not a socket: %s\n", pid, fd, strerror(errno));
        return -1;
    }
    if (value != SOCK_STREAM) {
        fprintf(stderr, "web %d: fd %d is not a stream socket\n", pid, fd);
        return -1;
    }
    value_len = sizeof value;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &value_len) < 0 || !value) {
        fprintf(stderr, "web %d: fd %d is a socket but not listening\n", pid, fd);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t ss_len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &ss_len) < 0) {
        fprintf(stderr, "web %d: getsockname(fd %d): %s\n", pid, fd, strerror(errno));
        return -1;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(address, address_size, "%s:%u", host, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(address, address_size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
        size_t path_len = ss_len > offsetof(struct sockaddr_un, sun_path)
                              ? ss_len - offsetof(struct sockaddr_un, sun_path) : 0;
        if (path_len == 0)
            snprintf(address, address_size, "unix:(unnamed)");
        else if (un->sun_path[0] == '\0') /* abstract: no NUL at the end, may hold NULs */
            snprintf(address, address_size, "unix:@%.*s", (int)(path_len - 1), un->sun_path + 1);
        else
            snprintf(address, address_size, "unix:%.*s", (int)strnlen(un->sun_path, path_len),
                     un->sun_path);
    } else {
        fprintf(stderr, "web %d: fd %d has address family %d; want TCP or unix\n", pid, fd,
                ss.ss_family);
        return -1;
    }
    return ss.ss_family;
}

/* ---- main -------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: web [--fd N] [--port N] [--log-requests]\n"
            "Serves HTTP on, in this order: --fd N; fd 3 from LISTEN_FDS (LISTEN_PID unset or ours);\n"
            "the first fd in LYMPH_SHARED_SOCKET_FDS; 127.0.0.1 on --port N or $PORT.\n");
}

static void close_walk(uv_handle_t *handle, void *arg)
{
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

int main(int argc, char **argv)
{
    /* Several workers accept on one shared socket. By default libuv accepts until EAGAIN,
     * so whichever worker wakes first takes a whole burst of connections; single-accept
     * mode yields after each one and spreads connections evenly across the workers. */
    setenv("UV_TCP_SINGLE_ACCEPT", "1", 0);
    setvbuf(stdout, NULL, _IOLBF, 0); /* lines must arrive promptly through the node's pipe */
    signal(SIGPIPE, SIG_IGN);         /* a client gone mid-write must be EPIPE, not death */
    int pid = (int)getpid();

    static const struct option long_options[] = {
        {"fd", required_argument, NULL, 'f'},
        {"port", required_argument, NULL, 'p'},
        {"log-requests", no_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    long flag_fd = -1, flag_port = -1;
    bool log_requests = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "f:p:h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'f':
            if (!parse_long(optarg, 0, INT_MAX, &flag_fd)) {
                fprintf(stderr, "web: --fd %s: want a file descriptor number\n", optarg);
                return 2;
            }
            break;
        case 'p':
            if (!parse_long(optarg, 1, 65535, &flag_port)) {
                fprintf(stderr, "web: --port %s: want a port, 1-65535\n", optarg);
                return 2;
            }
            break;
        case 'l':
            log_requests = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }

    /* Always taken, so LISTEN_* never leak into anything this process starts. */
    int systemd_fd = take_listen_fds(pid);
    const char *lymph_fds = getenv("LYMPH_SHARED_SOCKET_FDS");
    const char *port_env = getenv("PORT");
    int listen_fd = -1;
    if (flag_fd >= 0) {
        listen_fd = (int)flag_fd;
    } else if (systemd_fd >= 0) {
        listen_fd = systemd_fd;
    } else if (lymph_fds && *lymph_fds) {
        listen_fd = parse_lymph_socket_fds(lymph_fds);
        if (listen_fd < 0) {
            fprintf(stderr, "web %d: LYMPH_SHARED_SOCKET_FDS=%s: want {\"PORT\": FD}\n", pid, lymph_fds);
            return 2;
        }
    } else if (flag_port > 0 || (port_env && *port_env)) {
        long port = flag_port;
        if (port <= 0 && !parse_long(port_env, 1, 65535, &port)) {
            fprintf(stderr, "web %d: PORT=%s: want a port, 1-65535\n", pid, port_env);
            return 2;
        }
        listen_fd = bind_loopback((int)port, pid);
        if (listen_fd < 0)
            return 2;
    } else {
        fprintf(stderr, "web %d: no socket to serve on: pass one with LISTEN_FDS, "
                        "LYMPH_SHARED_SOCKET_FDS or --fd, or give --port / PORT\n", pid);
        return 2;
    }
    if (fcntl(listen_fd, F_SETFD, FD_CLOEXEC) < 0) {
        fprintf(stderr, "web %d: fd %d: %s\n", pid, listen_fd, strerror(errno));
        return 2;
    }

    struct server *server = calloc(1, sizeof *server);
    if (!server) {
        fprintf(stderr, "web %d: out of memory\n", pid);
        return 1;
    }
    server->pid = pid;
    server->log_requests = log_requests;
    server->notify_socket = getenv("NOTIFY_SOCKET");
    int family = inspect_listen_fd(listen_fd, pid, server->address, sizeof server->address);
    if (family < 0) {
        free(server);
        return 2;
    }
    server->listener_is_tcp = family != AF_UNIX;

    uv_loop_init(&server->loop);
    int rc;
    if (server->listener_is_tcp) {
        uv_tcp_init(&server->loop, &server->listener.tcp);
        rc = uv_tcp_open(&server->listener.tcp, listen_fd);
    } else {
        uv_pipe_init(&server->loop, &server->listener.pipe, 0);
        rc = uv_pipe_open(&server->listener.pipe, listen_fd);
    }
    server->listener.handle.data = server;
    /* listen(2) again on an inherited socket only resets its backlog; it stays shared. */
    if (rc == 0)
        rc = uv_listen(&server->listener.stream, LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        fprintf(stderr, "web %d: cannot accept on fd %d (%s): %s\n", pid, listen_fd, server->address,
                uv_strerror(rc));
        uv_walk(&server->loop, close_walk, NULL);
        uv_run(&server->loop, UV_RUN_DEFAULT);
        uv_loop_close(&server->loop);
        free(server);
        return 1;
    }

    /* Signals and the stop deadline do not keep the loop alive: it ends when the listener
     * and the last connection are closed. */
    uv_signal_init(&server->loop, &server->sigterm);
    uv_signal_init(&server->loop, &server->sigint);
    server->sigterm.data = server->sigint.data = server;
    uv_signal_start(&server->sigterm, on_signal, SIGTERM);
    uv_signal_start(&server->sigint, on_signal, SIGINT);
    uv_unref((uv_handle_t *)&server->sigterm);
    uv_unref((uv_handle_t *)&server->sigint);
    uv_timer_init(&server->loop, &server->stop_deadline);
    server->stop_deadline.data = server;
    uv_unref((uv_handle_t *)&server->stop_deadline);

    printf("web %d serving on %s (fd %d)\n", pid, server->address, listen_fd);
    notify_send(server, "READY=1");
    printf("web %d ready\n", pid);

    uv_run(&server->loop, UV_RUN_DEFAULT);

    uv_walk(&server->loop, close_walk, NULL);
    uv_run(&server->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&server->loop);
    if (rc < 0)
        fprintf(stderr, "web %d: loop close: %s\n", pid, uv_strerror(rc));
    free(server);
    uv_library_shutdown();
    printf("web %d stopped\n", pid);
    return 0;
}
