/* last_read: the bookshelf's view (examples/bookshelf). It rebuilds "the five books read last"
 * from the retained stream `book.#`, replayed from the beginning before it registers or accepts
 * a connection, keeps it current from the `book.read` events that follow, and answers
 * `GET /last-read` with it as JSON on the socket the node shares (fd 3). One libuv loop
 * (examples/common/svcloop) runs HTTP (examples/common/httpd) and libdevnode's fd. It must never
 * answer from a half-replayed stream, nor shutdown(2) the inherited socket: the node and the
 * other LastRead workers hold it too. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <devnode.h>

#include "../common/httpd.h"
#include "../common/svcloop.h"

#define STREAM "book.#"
#define LAST_READ_MAX 5

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

struct last_read {
    struct svcloop svc;
    struct httpd *httpd;
    struct devnode *dn;
    struct view *view;
};

static void route_last_read(struct last_read *lr, struct httpd_conn *conn, const struct httpd_request *req)
{
    struct devnode *dn = lr->dn;
    /* The trace starts here: the client's X-Trace-Id if it sent a usable one, else a new one. */
    devnode_set_trace_id(dn, req->trace_id[0] ? req->trace_id : NULL);
    if (!devnode_trace_id(dn)[0])
        devnode_set_trace_id(dn, NULL); /* the client sent "None": that is no trace */
    json_t *list = view_json(lr->view);
    char *body = list ? json_dumps(list, JSON_COMPACT) : NULL;
    json_decref(list);
    char headers[200];
    snprintf(headers, sizeof headers, "X-Trace-Id: %s\r\nX-Stream-Offset: %lld\r\n", devnode_trace_id(dn),
             (long long)lr->view->last_offset);
    if (!body) {
        devnode_log(dn, DEVNODE_ERROR, "GET /last-read 500: out of memory");
        httpd_respond(conn, 500, NULL, headers, "out of memory\n");
    } else {
        devnode_log(dn, DEVNODE_INFO, "GET /last-read 200: %zu books as of offset %lld", lr->view->count,
                    (long long)lr->view->last_offset);
        size_t n = strlen(body);
        char *line = realloc(body, n + 2);
        if (line) {
            body = line;
            memcpy(body + n, "\n", 2);
        }
        httpd_respond(conn, 200, "application/json", headers, body);
        free(body);
    }
    devnode_set_trace_id(dn, ""); /* the trace ends with its answer */
}

static void on_request(struct httpd_conn *conn, const struct httpd_request *req, void *ctx)
{
    struct last_read *lr = ctx;
    if (req->method != HTTP_GET && req->method != HTTP_HEAD)
        httpd_respond(conn, 405, NULL, "Allow: GET, HEAD\r\n", "only GET\n");
    else if (strcmp(req->path, "/last-read") == 0)
        route_last_read(lr, conn, req);
    else if (strcmp(req->path, "/health") == 0)
        httpd_respond(conn, 200, NULL, NULL, "ok\n");
    else
        httpd_respond(conn, 404, NULL, NULL, "not found: try /last-read\n");
}

/* ---- the service ------------------------------------------------------------------------ */

static void on_stop(const char *signal_name, void *ctx)
{
    struct last_read *lr = ctx;
    devnode_log(lr->dn, DEVNODE_INFO, "LastRead.%d stopping on %s", devnode_instance(lr->dn), signal_name);
    /* A request on its way (the client sent it to the shared port, trusting it to be
     * answered) is answered, with `Connection: close`, before the stop deadline. */
    httpd_stop(lr->httpd);
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
    char err[256];
    int fd = httpd_listen_fd(err, sizeof err);
    if (fd < 0) {
        if (err[0])
            fprintf(stderr, "last_read: %s\n", err);
        fprintf(stderr, "last_read: no socket: run it under devnode with `sockets: {LastRead: {port: 4090}}`, "
                        "or set PORT\n");
        return 2;
    }
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "last_read: %s\n", err);
        return 2;
    }
    struct view view = {.last_offset = -1};
    struct last_read lr = {.dn = dn, .view = &view};
    const struct httpd_callbacks callbacks = {.on_request = on_request, .ctx = &lr};
    int status = 1;
    int rc = svcloop_init(&lr.svc);
    if (rc < 0) {
        fprintf(stderr, "last_read: %s\n", uv_strerror(rc));
        devnode_close(dn);
        return 1;
    }

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
    if (httpd_open(&lr.httpd, &lr.svc.loop, fd, &callbacks, err, sizeof err) < 0) {
        fprintf(stderr, "last_read: %s\n", err);
        goto out;
    }
    rc = svcloop_start(&lr.svc, dn, on_stop, &lr);
    if (rc < 0) {
        fprintf(stderr, "last_read: cannot watch the node's fd: %s\n", uv_strerror(rc));
        goto out;
    }
    devnode_log(dn, DEVNODE_INFO, "LastRead.%d serving GET /last-read on fd %d", devnode_instance(dn), fd);

    uv_run(&lr.svc.loop, UV_RUN_DEFAULT);
    status = 0;

out:
    devnode_stop(dn);
    httpd_close(lr.httpd);
    svcloop_close(&lr.svc);
    devnode_close(dn);
    for (size_t i = 0; i < view.count; i++)
        reading_free(&view.recent[i]);
    return status;
}
