/* test_devnode: libdevnode end to end inside one process, under ASan+UBSan and LeakSanitizer:
 * a fake node (registry + a minimal bus) in one thread, a serving service driven through
 * devnode_fd/devnode_process in another, and the test as the caller. It checks calls, errors,
 * timeouts, deferred calls, built-ins, trace ids and event acks, and that close frees all. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/wire.h"
#include "devnode.h"

/* ---- a fake node: enough of the protocol for the library ---------------------------- */

struct fake_sub {
    unsigned char ident[WIRE_IDENTITY_MAX];
    size_t ident_len;
    char id[16];
    char pattern[64];
    char stream[64];             /* "" for new events only */
    char from[32];               /* as sent: a word, or the offset in decimal */
    int broadcast;
};

/* A retained stream "book.#" of the fake: every emitted book.* event, in order. */
#define FAKE_STREAM_MAX 64
struct fake_record {
    char type[64];
    msgpack_sbuffer headers, body; /* packed, as emitted */
};

struct fake_node {
    void *ctx, *router;
    pthread_t thread;
    pthread_mutex_t lock;        /* guards everything below */
    int stop;
    char service[64], endpoint[512];
    int registered;
    unsigned char registered_ident[WIRE_IDENTITY_MAX]; /* the connection of that service */
    size_t registered_ident_len;
    struct fake_sub subs[8];
    int nsubs;
    int heartbeats, acks, nacks, emits, unregisters, unsubscribes, stream_unsubscribes;
    int64_t next_delivery;
    char last_emit_type[64], last_emit_trace[80];
    struct fake_record stream[FAKE_STREAM_MAX];
    int stream_next;             /* the next offset */
};

/* Sends record `offset` of the fake stream to subscription s, as the node's bus would. */
static void fake_send_record(struct fake_node *f, const struct fake_sub *s, int offset)
{
    const struct fake_record *r = &f->stream[offset];
    struct wire_body e;
    wire_body_init(&e);
    msgpack_pack_map(&e.pk, 8);
    wire_pack_kv_str(&e.pk, "subscription", s->id);
    wire_pack_kv_int(&e.pk, "delivery", ++f->next_delivery);
    wire_pack_kv_int(&e.pk, "offset", offset);
    wire_pack_kv_str(&e.pk, "type", r->type);
    wire_pack_str(&e.pk, "headers");
    msgpack_sbuffer_write(&e.sbuf, r->headers.data, r->headers.size);
    wire_pack_str(&e.pk, "body");
    msgpack_sbuffer_write(&e.sbuf, r->body.data, r->body.size);
    wire_pack_kv_str(&e.pk, "source", "Caller");
    wire_pack_kv_bool(&e.pk, "redelivered", 0);
    wire_send(f->router, s->ident, s->ident_len, "event", e.sbuf.data, e.sbuf.size, 0);
    wire_body_free(&e);
}

/* Whether map[key] is a string that starts with prefix. */
static int fake_str_prefix(const msgpack_object *map, const char *key, const char *prefix)
{
    char text[64];
    return wire_get_str(map, key, text, sizeof text) == 0 && strncmp(text, prefix, strlen(prefix)) == 0;
}

static void fake_reply(struct fake_node *f, const struct wire_msg *m, const char *type, struct wire_body *b)
{
    wire_send(f->router, m->identity, m->identity_len, type, b->sbuf.data, b->sbuf.size, 0);
}

static void fake_pack_id(msgpack_packer *pk, const struct wire_msg *m)
{
    wire_pack_str(pk, "id");
    const msgpack_object *id = wire_map_get(m->body, "id");
    if (id)
        msgpack_pack_object(pk, *id);
    else
        msgpack_pack_nil(pk);
}

static void fake_handle(struct fake_node *f, const struct wire_msg *m)
{
    struct wire_body b;
    wire_body_init(&b);
    pthread_mutex_lock(&f->lock);
    if (strcmp(m->type, "register") == 0) {
        /* The fake's registry holds one service (the first); others are answered, not listed. */
        char service[64] = "";
        wire_get_str(m->body, "service", service, sizeof service);
        if (!f->registered || strcmp(service, f->service) == 0) {
            snprintf(f->service, sizeof f->service, "%s", service);
            wire_get_str(m->body, "endpoint", f->endpoint, sizeof f->endpoint);
            memcpy(f->registered_ident, m->identity, m->identity_len);
            f->registered_ident_len = m->identity_len;
            f->registered = 1;
        }
        msgpack_pack_map(&b.pk, 2);
        fake_pack_id(&b.pk, m);
        wire_pack_kv_str(&b.pk, "identity", "0123456789abcdef0123456789abcdef");
        fake_reply(f, m, "ok", &b);
    } else if (strcmp(m->type, "discover") == 0) {
        char want[64] = "";
        wire_get_str(m->body, "service", want, sizeof want);
        int found = f->registered && strcmp(want, f->service) == 0;
        msgpack_pack_map(&b.pk, 2);
        fake_pack_id(&b.pk, m);
        wire_pack_str(&b.pk, "services");
        msgpack_pack_array(&b.pk, found ? 1 : 0);
        if (found) {
            msgpack_pack_map(&b.pk, 2);
            wire_pack_kv_str(&b.pk, "name", f->service);
            wire_pack_str(&b.pk, "instances");
            msgpack_pack_array(&b.pk, 1);
            msgpack_pack_map(&b.pk, 3);
            wire_pack_kv_int(&b.pk, "instance", 0);
            wire_pack_kv_int(&b.pk, "pid", getpid());
            wire_pack_kv_str(&b.pk, "endpoint", f->endpoint);
        }
        fake_reply(f, m, "services", &b);
    } else if (strcmp(m->type, "heartbeat") == 0) {
        f->heartbeats++;
    } else if (strcmp(m->type, "subscribe") == 0 && f->nsubs < 8) {
        struct fake_sub *s = &f->subs[f->nsubs++];
        memset(s, 0, sizeof *s);
        memcpy(s->ident, m->identity, m->identity_len);
        s->ident_len = m->identity_len;
        wire_get_str(m->body, "subscription", s->id, sizeof s->id);
        const msgpack_object *pats = wire_map_get(m->body, "patterns");
        if (pats && pats->type == MSGPACK_OBJECT_ARRAY && pats->via.array.size == 1)
            snprintf(s->pattern, sizeof s->pattern, "%.*s", (int)pats->via.array.ptr[0].via.str.size,
                     pats->via.array.ptr[0].via.str.ptr);
        const msgpack_object *bc = wire_map_get(m->body, "broadcast");
        s->broadcast = bc && bc->type == MSGPACK_OBJECT_BOOLEAN && bc->via.boolean;
        int64_t from_offset = -1;
        if (wire_get_str(m->body, "stream", s->stream, sizeof s->stream) == 0 &&
            wire_get_str(m->body, "from", s->from, sizeof s->from) < 0 &&
            wire_get_int(m->body, "from", &from_offset) == 0)
            snprintf(s->from, sizeof s->from, "%lld", (long long)from_offset);
        msgpack_pack_map(&b.pk, 1);
        fake_pack_id(&b.pk, m);
        fake_reply(f, m, "ok", &b);
        /* A stream subscription reads from its start: the beginning, an offset, or now. */
        int start = strcmp(s->from, "beginning") == 0 ? 0 : from_offset >= 0 ? (int)from_offset : f->stream_next;
        for (int i = start; s->stream[0] && i < f->stream_next; i++)
            fake_send_record(f, s, i);
    } else if (strcmp(m->type, "bus_status") == 0) {
        msgpack_pack_map(&b.pk, 3);
        fake_pack_id(&b.pk, m);
        wire_pack_str(&b.pk, "streams");
        msgpack_pack_array(&b.pk, 1);
        msgpack_pack_map(&b.pk, 3);
        wire_pack_kv_str(&b.pk, "pattern", "book.#");
        wire_pack_kv_int(&b.pk, "first_offset", 0);
        wire_pack_kv_int(&b.pk, "next_offset", f->stream_next);
        wire_pack_str(&b.pk, "groups");
        msgpack_pack_array(&b.pk, 0);
        fake_reply(f, m, "bus_status", &b);
    } else if (strcmp(m->type, "emit") == 0 && fake_str_prefix(m->body, "type", "book.") &&
               f->stream_next < FAKE_STREAM_MAX) {
        /* Kept in the stream first, then sent to its subscribers, and the reply has the offset. */
        f->emits++;
        struct fake_record *r = &f->stream[f->stream_next];
        wire_get_str(m->body, "type", r->type, sizeof r->type);
        msgpack_sbuffer_init(&r->headers);
        msgpack_sbuffer_init(&r->body);
        msgpack_packer hp, bp;
        msgpack_packer_init(&hp, &r->headers, msgpack_sbuffer_write);
        msgpack_packer_init(&bp, &r->body, msgpack_sbuffer_write);
        msgpack_pack_object(&hp, *wire_map_get(m->body, "headers"));
        msgpack_pack_object(&bp, *wire_map_get(m->body, "body"));
        int offset = f->stream_next++;
        for (int i = 0; i < f->nsubs; i++)
            if (f->subs[i].stream[0])
                fake_send_record(f, &f->subs[i], offset);
        msgpack_pack_map(&b.pk, 3);
        fake_pack_id(&b.pk, m);
        wire_pack_kv_int(&b.pk, "groups", 1);
        wire_pack_kv_int(&b.pk, "offset", offset);
        fake_reply(f, m, "ok", &b);
    } else if (strcmp(m->type, "emit") == 0 && fake_str_prefix(m->body, "type", "refused.")) {
        /* as a node whose journal cannot take the event answers */
        f->emits++;
        msgpack_pack_map(&b.pk, 2);
        fake_pack_id(&b.pk, m);
        wire_pack_kv_str(&b.pk, "message", "emit: cannot keep the event in stream refused.#: No space left");
        fake_reply(f, m, "error", &b);
    } else if (strcmp(m->type, "emit") == 0) {
        f->emits++;
        wire_get_str(m->body, "type", f->last_emit_type, sizeof f->last_emit_type);
        wire_get_str(wire_map_get(m->body, "headers"), "trace_id", f->last_emit_trace, sizeof f->last_emit_trace);
        int groups = 0;
        for (int i = 0; i < f->nsubs; i++) {
            if (strcmp(f->subs[i].pattern, f->last_emit_type) != 0)
                continue;
            groups++;
            struct wire_body e;
            wire_body_init(&e);
            msgpack_pack_map(&e.pk, 7);
            wire_pack_kv_str(&e.pk, "subscription", f->subs[i].id);
            wire_pack_kv_int(&e.pk, "delivery", ++f->next_delivery);
            wire_pack_kv_str(&e.pk, "type", f->last_emit_type);
            wire_pack_str(&e.pk, "headers");
            msgpack_pack_object(&e.pk, *wire_map_get(m->body, "headers"));
            wire_pack_str(&e.pk, "body");
            msgpack_pack_object(&e.pk, *wire_map_get(m->body, "body"));
            wire_pack_kv_str(&e.pk, "source", "Caller");
            wire_pack_kv_bool(&e.pk, "redelivered", 0);
            wire_send(f->router, f->subs[i].ident, f->subs[i].ident_len, "event", e.sbuf.data, e.sbuf.size, 0);
            wire_body_free(&e);
        }
        msgpack_pack_map(&b.pk, 2);
        fake_pack_id(&b.pk, m);
        wire_pack_kv_int(&b.pk, "groups", groups);
        fake_reply(f, m, "ok", &b);
    } else if (strcmp(m->type, "ack") == 0) {
        f->acks++;
    } else if (strcmp(m->type, "nack") == 0) {
        f->nacks++;
    } else if (strcmp(m->type, "unsubscribe") == 0 || strcmp(m->type, "unregister") == 0) {
        char id[16] = "";
        wire_get_str(m->body, "subscription", id, sizeof id);
        int stream_sub = 0;
        for (int i = 0; i < f->nsubs; i++) {
            if (f->subs[i].ident_len == m->identity_len && !memcmp(f->subs[i].ident, m->identity, m->identity_len) &&
                !strcmp(f->subs[i].id, id)) {
                stream_sub = f->subs[i].stream[0] != '\0';
                f->subs[i] = f->subs[--f->nsubs]; /* gone: nothing more is sent to it */
                break;
            }
        }
        if (m->type[2] != 's')
            f->unregisters += m->identity_len == f->registered_ident_len &&
                              !memcmp(m->identity, f->registered_ident, m->identity_len);
        else if (stream_sub)
            f->stream_unsubscribes++;
        else
            f->unsubscribes++;
        msgpack_pack_map(&b.pk, 1);
        fake_pack_id(&b.pk, m);
        fake_reply(f, m, "ok", &b);
    } else {
        msgpack_pack_map(&b.pk, 2);
        fake_pack_id(&b.pk, m);
        wire_pack_kv_str(&b.pk, "message", "unknown message type");
        fake_reply(f, m, "error", &b);
    }
    pthread_mutex_unlock(&f->lock);
    wire_body_free(&b);
}

static void *fake_main(void *arg)
{
    struct fake_node *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        int stop = f->stop;
        pthread_mutex_unlock(&f->lock);
        if (stop)
            return NULL;
        zmq_pollitem_t item = {.socket = f->router, .events = ZMQ_POLLIN};
        zmq_poll(&item, 1, 20);
        struct wire_msg m;
        char err[160];
        while (wire_recv(f->router, 1, &m, err, sizeof err) == WIRE_OK) {
            fake_handle(f, &m);
            wire_msg_free(&m);
        }
    }
}

/* ---- the serving side: a service "Echo" run from its own thread ------------------------ */

struct server {
    struct devnode *dn;
    pthread_t thread;
    pthread_mutex_t lock;
    int stop;
    int events;
    char event_trace[80], event_name[32];
    int event_redelivered;
    int64_t event_offset;
};

static json_t *m_echo(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    return json_deep_copy(json_object_get(args, "text"));
}

static json_t *m_fail(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    return devnode_error_set(err, "ValueError", "always fails (%d)", 42);
}

static json_t *m_fail_silently(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    return NULL;
}

static json_t *m_slow(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    long ms = (long)json_integer_value(json_object_get(args, "ms"));
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return json_string("slow");
}

static json_t *m_trace(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    return json_string(devnode_trace_id(dn));
}

static json_t *m_emit(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    json_t *body = json_pack("{s:s}", "name", "from-handler");
    int rc = devnode_emit(dn, "greeted", body, 0);
    json_decref(body);
    if (rc)
        return devnode_error_set(err, "EmitError", "%s", devnode_last_error(dn));
    return json_string(devnode_trace_id(dn));
}

/* Calls Echo.echo, its own service, from inside a handler and returns what it answered. */
static json_t *m_self(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    json_t *result = NULL;
    if (devnode_call(dn, "Echo.echo", args, 1500, &result, err) != DEVNODE_OK)
        return NULL;
    return result;
}

/* depth(n) = depth(n - 1) + 1 through its own service, so n handlers run nested. */
static json_t *m_depth(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    json_int_t n = json_integer_value(json_object_get(args, "n"));
    if (n <= 0)
        return json_integer(0);
    json_t *inner = json_pack("{s:I}", "n", n - 1), *result = NULL;
    int rc = devnode_call(dn, "Echo.depth", inner, 1500, &result, err);
    json_decref(inner);
    if (rc != DEVNODE_OK)
        return NULL;
    json_t *answer = json_integer(json_integer_value(result) + 1);
    json_decref(result);
    return answer;
}

static int on_greeted(const struct devnode_event *ev, void *ctx)
{
    struct server *s = ctx;
    pthread_mutex_lock(&s->lock);
    s->events++;
    snprintf(s->event_trace, sizeof s->event_trace, "%s", devnode_trace_id(ev->dn));
    snprintf(s->event_name, sizeof s->event_name, "%s", json_string_value(json_object_get(ev->body, "name")));
    s->event_redelivered = ev->redelivered;
    s->event_offset = ev->offset;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    int fd = devnode_fd(s->dn);
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            break;
        int wait_ms = devnode_process(s->dn);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, wait_ms > 20 ? 20 : wait_ms);
    }
    devnode_stop(s->dn);
    return NULL;
}

/* ---- fixtures ----------------------------------------------------------------------- */

struct world {
    char dir[128];
    struct fake_node node;
    struct server server;
    struct devnode *caller;
};

static struct devnode *connect_as(const char *service, int instance)
{
    char idx[16];
    snprintf(idx, sizeof idx, "%d", instance);
    setenv("DEVNODE_SERVICE", service, 1);
    setenv("DEVNODE_INSTANCE", idx, 1);
    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn)
        fail_msg("devnode_connect: %s", err);
    return dn;
}

static int world_up(void **state)
{
    struct world *w = calloc(1, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "/tmp/test-devnode-%d", (int)getpid());
    mkdir(w->dir, 0700);
    char endpoint[200];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/node.sock", w->dir);
    setenv("DEVNODE_ENDPOINT", endpoint, 1);
    setenv("DEVNODE_RUN_DIR", w->dir, 1);

    struct fake_node *f = &w->node;
    pthread_mutex_init(&f->lock, NULL);
    f->ctx = zmq_ctx_new();
    f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(f->router, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(f->router, endpoint), 0);
    pthread_create(&f->thread, NULL, fake_main, f);

    struct server *s = &w->server;
    pthread_mutex_init(&s->lock, NULL);
    s->dn = connect_as("Echo", 0);
    static const char *const echo_params[] = {"text", NULL};
    static const char *const slow_params[] = {"ms", NULL};
    static const char *const opt_params[] = {"maybe?", NULL};
    assert_int_equal(devnode_add_method(s->dn, "echo", echo_params, "Returns text", m_echo, NULL), 0);
    assert_int_equal(devnode_add_method(s->dn, "fail", NULL, "Fails", m_fail, NULL), 0);
    assert_int_equal(devnode_add_method(s->dn, "fail_silently", opt_params, "", m_fail_silently, NULL), 0);
    assert_int_equal(devnode_add_method(s->dn, "slow", slow_params, "Sleeps", m_slow, NULL), 0);
    assert_int_equal(devnode_add_method(s->dn, "trace", NULL, "The current trace id", m_trace, NULL), 0);
    assert_int_equal(devnode_add_method(s->dn, "emit", NULL, "Emits greeted", m_emit, NULL), 0);
    static const char *const depth_params[] = {"n", NULL};
    assert_int_equal(devnode_add_method(s->dn, "self", echo_params, "Calls Echo.echo", m_self, NULL), 0);
    assert_int_equal(devnode_add_method(s->dn, "depth", depth_params, "Calls itself n deep", m_depth, NULL), 0);
    assert_int_equal(devnode_add_method(s->dn, "echo", NULL, "twice", m_echo, NULL), DEVNODE_E_INVALID);
    assert_int_equal(devnode_add_method(s->dn, "a.b", NULL, "dotted", m_echo, NULL), DEVNODE_E_INVALID);
    assert_int_equal(devnode_subscribe(s->dn, "greeted", 0, on_greeted, s), 0);
    assert_int_equal(devnode_start(s->dn), 0);
    assert_non_null(strstr(devnode_endpoint(s->dn), "/rpc/Echo.0."));
    assert_int_equal(devnode_add_method(s->dn, "late", NULL, "", m_echo, NULL), DEVNODE_E_INVALID);
    pthread_create(&s->thread, NULL, server_main, s);

    w->caller = connect_as("Caller", -1);
    *state = w;
    return 0;
}

static int world_down(void **state)
{
    struct world *w = *state;
    devnode_close(w->caller);
    pthread_mutex_lock(&w->server.lock);
    w->server.stop = 1;
    pthread_mutex_unlock(&w->server.lock);
    pthread_join(w->server.thread, NULL);
    devnode_close(w->server.dn);
    pthread_mutex_lock(&w->node.lock);
    int unsubscribes = w->node.unsubscribes, unregisters = w->node.unregisters;
    w->node.stop = 1;
    pthread_mutex_unlock(&w->node.lock);
    pthread_join(w->node.thread, NULL);
    zmq_close(w->node.router);
    zmq_ctx_term(w->node.ctx);
    for (int i = 0; i < w->node.stream_next; i++) {
        msgpack_sbuffer_destroy(&w->node.stream[i].headers);
        msgpack_sbuffer_destroy(&w->node.stream[i].body);
    }
    pthread_mutex_destroy(&w->node.lock);
    pthread_mutex_destroy(&w->server.lock);
    char path[256];
    snprintf(path, sizeof path, "%s/rpc", w->dir);
    int rpc_dir_empty = rmdir(path) == 0;
    snprintf(path, sizeof path, "%s/node.sock", w->dir);
    unlink(path);
    rmdir(w->dir);
    free(w);
    /* The stop said goodbye, and the socket file went with it. */
    assert_int_equal(unsubscribes, 1);
    assert_int_equal(unregisters, 1);
    assert_true(rpc_dir_empty);
    return 0;
}

/* Waits up to 2 s for *counter (under lock) to reach want. */
static int wait_count(pthread_mutex_t *lock, const int *counter, int want)
{
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(lock);
        int v = *counter;
        pthread_mutex_unlock(lock);
        if (v >= want)
            return v;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(lock);
    int v = *counter;
    pthread_mutex_unlock(lock);
    return v;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_connect_needs_the_environment(void **state)
{
    char saved[256];
    snprintf(saved, sizeof saved, "%s", getenv("DEVNODE_ENDPOINT"));
    unsetenv("DEVNODE_ENDPOINT");
    char err[200];
    assert_null(devnode_connect(err, sizeof err));
    assert_string_equal(err, "not started by devnode: DEVNODE_ENDPOINT is not set");
    setenv("DEVNODE_ENDPOINT", saved, 1);
    setenv("DEVNODE_SERVICE", "bad name", 1);
    assert_null(devnode_connect(err, sizeof err));
    assert_non_null(strstr(err, "DEVNODE_SERVICE"));
}

static void test_call_returns_the_result(void **state)
{
    struct world *w = *state;
    json_t *args = json_pack("{s:s}", "text", "hello"), *result = NULL;
    struct devnode_error err;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(devnode_call(w->caller, "Echo.echo", args, 2000, &result, &err), DEVNODE_OK);
        assert_string_equal(json_string_value(result), "hello");
        json_decref(result);
    }
    json_decref(args);
}

/* A handler that calls its own service is answered by a handler nested inside its call, as
 * under gevent, not after the call's timeout (1.5 s, shorter than the caller's). */
static void test_a_handler_can_call_its_own_service(void **state)
{
    struct world *w = *state;
    json_t *args = json_pack("{s:s}", "text", "me again"), *result = NULL;
    struct devnode_error err;
    for (int i = 0; i < 20; i++) {
        if (devnode_call(w->caller, "Echo.self", args, 3000, &result, &err) != DEVNODE_OK)
            fail_msg("Echo.self: %s: %s", err.type, err.message);
        assert_string_equal(json_string_value(result), "me again");
        json_decref(result);
    }
    json_decref(args);
    args = json_pack("{s:i}", "n", 8);
    if (devnode_call(w->caller, "Echo.depth", args, 3000, &result, &err) != DEVNODE_OK)
        fail_msg("Echo.depth: %s: %s", err.type, err.message);
    assert_int_equal(json_integer_value(result), 8);
    json_decref(result);
    json_decref(args);
}

static void test_error_replies(void **state)
{
    struct world *w = *state;
    json_t *result = (json_t *)1;
    struct devnode_error err;
    assert_int_equal(devnode_call(w->caller, "Echo.nope", NULL, 2000, &result, &err), DEVNODE_E_NACK);
    assert_null(result);
    assert_string_equal(err.type, "UnknownMethod");
    assert_string_equal(err.message, "Echo has no method 'nope'");

    assert_int_equal(devnode_call(w->caller, "Echo.fail", NULL, 2000, &result, &err), DEVNODE_E_REMOTE);
    assert_string_equal(err.type, "ValueError");
    assert_string_equal(err.message, "always fails (42)");
    assert_int_equal(err.code, DEVNODE_E_REMOTE);

    assert_int_equal(devnode_call(w->caller, "Echo.fail_silently", NULL, 2000, &result, &err), DEVNODE_E_REMOTE);
    assert_string_equal(err.type, "HandlerError");

    json_t *extra = json_pack("{s:s,s:i}", "text", "x", "other", 1);
    assert_int_equal(devnode_call(w->caller, "Echo.echo", extra, 2000, &result, &err), DEVNODE_E_REMOTE);
    assert_string_equal(err.type, "BadArguments");
    assert_non_null(strstr(err.message, "unexpected argument 'other'"));
    json_decref(extra);
    assert_int_equal(devnode_call(w->caller, "Echo.echo", NULL, 2000, &result, &err), DEVNODE_E_REMOTE);
    assert_string_equal(err.type, "BadArguments");
    assert_non_null(strstr(err.message, "missing the argument 'text'"));
    json_t *maybe = json_pack("{s:i}", "maybe", 1);
    assert_int_equal(devnode_call(w->caller, "Echo.fail_silently", maybe, 2000, &result, &err), DEVNODE_E_REMOTE);
    assert_string_equal(err.type, "HandlerError"); /* the optional param was accepted */
    json_decref(maybe);

    json_t *not_object = json_pack("[i]", 1);
    assert_int_equal(devnode_call(w->caller, "Echo.echo", not_object, 2000, &result, &err), DEVNODE_E_INVALID);
    json_decref(not_object);
    assert_int_equal(devnode_call(w->caller, "nodot", NULL, 2000, &result, &err), DEVNODE_E_INVALID);
    assert_int_equal(devnode_call(w->caller, "Nobody.greet", NULL, 2000, &result, &err), DEVNODE_E_NOT_FOUND);
    assert_string_equal(err.type, "NotFound");
}

static void test_builtins(void **state)
{
    struct world *w = *state;
    json_t *args = json_pack("{s:[i,s]}", "payload", 1, "a"), *result = NULL;
    struct devnode_error err;
    assert_int_equal(devnode_call(w->caller, "Echo.lymph.ping", args, 2000, &result, &err), DEVNODE_OK);
    assert_true(json_equal(result, json_object_get(args, "payload")));
    json_decref(result);
    json_decref(args);

    assert_int_equal(devnode_call(w->caller, "Echo.lymph.status", NULL, 2000, &result, &err), DEVNODE_OK);
    assert_string_equal(json_string_value(json_object_get(result, "service")), "Echo");
    assert_int_equal(json_integer_value(json_object_get(result, "pid")), getpid());
    assert_string_equal(json_string_value(json_object_get(result, "identity")), "0123456789abcdef0123456789abcdef");
    assert_true(json_integer_value(json_object_get(result, "served")) > 0);
    json_decref(result);

    assert_int_equal(devnode_call(w->caller, "Echo.lymph.inspect", NULL, 2000, &result, &err), DEVNODE_OK);
    json_t *methods = json_object_get(result, "methods");
    assert_int_equal(json_array_size(methods), 8 + 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(methods, 0), "name")), "echo");
    assert_string_equal(json_string_value(json_array_get(json_object_get(json_array_get(methods, 2), "params"), 0)),
                        "maybe");
    json_decref(result);

    assert_int_equal(devnode_call(w->caller, "Echo.lymph.nope", NULL, 2000, &result, &err), DEVNODE_E_NACK);
}

static void test_timeout_then_late_reply_is_dropped(void **state)
{
    struct world *w = *state;
    json_t *slow = json_pack("{s:i}", "ms", 300), *result = NULL;
    struct devnode_error err;
    assert_int_equal(devnode_call(w->caller, "Echo.slow", slow, 50, &result, &err), DEVNODE_E_TIMEOUT);
    assert_string_equal(err.type, "Timeout");
    json_decref(slow);
    /* The late "slow" reply arrives on the same connection and must not be taken for this. */
    json_t *args = json_pack("{s:s}", "text", "after");
    assert_int_equal(devnode_call(w->caller, "Echo.echo", args, 3000, &result, &err), DEVNODE_OK);
    assert_string_equal(json_string_value(result), "after");
    json_decref(result);
    json_decref(args);
}

static void test_deferred_calls(void **state)
{
    struct world *w = *state;
    struct devnode_call *calls[20];
    struct devnode_error err;
    for (int i = 0; i < 20; i++) {
        json_t *args = json_pack("{s:i}", "text", i);
        calls[i] = devnode_call_async(w->caller, "Echo.echo", args, 3000, &err);
        json_decref(args);
        assert_non_null(calls[i]);
    }
    devnode_call_cancel(w->caller, calls[7]); /* its reply is dropped */
    for (int i = 19; i >= 0; i--) {
        if (i == 7)
            continue;
        json_t *result = NULL;
        assert_int_equal(devnode_call_wait(w->caller, calls[i], &result, &err), DEVNODE_OK);
        assert_int_equal(json_integer_value(result), i);
        json_decref(result);
    }
    assert_null(devnode_call_async(w->caller, "Nobody.x", NULL, 100, &err));
    assert_int_equal(err.code, DEVNODE_E_NOT_FOUND);
    /* A deferred call never waited for is freed by devnode_close (LeakSanitizer checks). */
    json_t *args = json_pack("{s:s}", "text", "forgotten");
    struct devnode_call *c = devnode_call_async(w->caller, "Echo.echo", args, 3000, &err);
    json_decref(args);
    assert_non_null(c);
    for (int i = 0; i < 200 && !devnode_call_ready(w->caller, c); i++) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_true(devnode_call_ready(w->caller, c));
}

static void test_trace_ids_travel(void **state)
{
    struct world *w = *state;
    json_t *result = NULL;
    struct devnode_error err;
    assert_string_equal(devnode_trace_id(w->caller), "");
    assert_int_equal(devnode_call(w->caller, "Echo.trace", NULL, 2000, &result, &err), DEVNODE_OK);
    assert_int_equal(strlen(json_string_value(result)), 32); /* made up for the call */
    json_decref(result);

    assert_string_equal(devnode_set_trace_id(w->caller, "req 1/x"), "req_1_x");
    assert_int_equal(devnode_call(w->caller, "Echo.trace", NULL, 2000, &result, &err), DEVNODE_OK);
    assert_string_equal(json_string_value(result), "req_1_x");
    json_decref(result);

    /* An emit inside the handler carries the request's trace, and so does the event. */
    int before = wait_count(&w->server.lock, &w->server.events, 0);
    assert_int_equal(devnode_call(w->caller, "Echo.emit", NULL, 2000, &result, &err), DEVNODE_OK);
    assert_string_equal(json_string_value(result), "req_1_x");
    json_decref(result);
    assert_int_equal(wait_count(&w->server.lock, &w->server.events, before + 1), before + 1);
    pthread_mutex_lock(&w->server.lock);
    assert_string_equal(w->server.event_trace, "req_1_x");
    assert_string_equal(w->server.event_name, "from-handler");
    pthread_mutex_unlock(&w->server.lock);
    pthread_mutex_lock(&w->node.lock);
    assert_string_equal(w->node.last_emit_trace, "req_1_x");
    pthread_mutex_unlock(&w->node.lock);

    assert_string_equal(devnode_set_trace_id(w->caller, ""), "");
    assert_int_equal(strlen(devnode_set_trace_id(w->caller, NULL)), 32);
    devnode_set_trace_id(w->caller, "");
}

static void test_events_are_acked_after_the_handler(void **state)
{
    struct world *w = *state;
    /* Every event handled so far is acked (none is nacked): settle on that first. */
    int events = wait_count(&w->server.lock, &w->server.events, 0);
    int acks = wait_count(&w->node.lock, &w->node.acks, events);
    assert_int_equal(acks, events);
    devnode_set_trace_id(w->caller, "ev-trace");
    json_t *body = json_pack("{s:s}", "name", "ann");
    assert_int_equal(devnode_emit(w->caller, "greeted", body, 0), 0);
    assert_int_equal(devnode_emit(w->caller, "unheard", body, 0), 0);
    json_decref(body);
    devnode_set_trace_id(w->caller, "");
    assert_int_equal(wait_count(&w->server.lock, &w->server.events, events + 1), events + 1);
    assert_int_equal(wait_count(&w->node.lock, &w->node.acks, acks + 1), acks + 1);
    pthread_mutex_lock(&w->server.lock);
    assert_string_equal(w->server.event_trace, "ev-trace");
    assert_string_equal(w->server.event_name, "ann");
    assert_false(w->server.event_redelivered);
    assert_int_equal(w->server.event_offset, -1); /* a new event, not one of a stream */
    pthread_mutex_unlock(&w->server.lock);
    assert_int_equal(devnode_emit(w->caller, "", NULL, 0), DEVNODE_E_INVALID);
}

/* Unwaited emits reach the node in order with waited ones; a refusal of one is only printed. */
static void test_emit_nowait_keeps_the_order_of_emits(void **state)
{
    struct world *w = *state;
    pthread_mutex_lock(&w->node.lock);
    int before = w->node.emits;
    pthread_mutex_unlock(&w->node.lock);
    json_t *body = json_pack("{s:i}", "n", 1);
    /* The refusal goes to stderr (the service's log): catch it there. */
    FILE *caught = tmpfile();
    assert_non_null(caught);
    fflush(stderr);
    int saved_stderr = dup(2);
    dup2(fileno(caught), 2);
    for (int i = 0; i < 200; i++)
        assert_int_equal(devnode_emit_nowait(w->caller, "unheard", body, 0), 0);
    assert_int_equal(devnode_emit_nowait(w->caller, "refused.please", body, 0), 0);
    /* The node answers a connection's messages in order: this one comes after all of them. */
    assert_int_equal(devnode_emit(w->caller, "unheard", body, 0), 0);
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    json_decref(body);
    char said[512] = "";
    rewind(caught);
    size_t n = fread(said, 1, sizeof said - 1, caught);
    said[n] = '\0';
    fclose(caught);
    assert_non_null(strstr(said, "WARNING devnode: the node refused an event emitted without waiting: emit: cannot "
                                 "keep the event in stream refused.#"));
    pthread_mutex_lock(&w->node.lock);
    assert_int_equal(w->node.emits, before + 202);
    pthread_mutex_unlock(&w->node.lock);
    assert_int_equal(devnode_emit_nowait(w->caller, "order.*", NULL, 0), DEVNODE_E_INVALID);
    assert_int_equal(devnode_emit_nowait(w->caller, "", NULL, 0), DEVNODE_E_INVALID);
    assert_int_equal(devnode_emit(w->caller, "a..b", NULL, 0), DEVNODE_E_INVALID);
}

struct warnings_seen {
    int count;
    enum devnode_level level;
    char last[512];
};

static void on_warning(void *ctx, enum devnode_level level, const char *message)
{
    struct warnings_seen *seen = ctx;
    seen->count++;
    seen->level = level;
    snprintf(seen->last, sizeof seen->last, "%s", message);
}

/* A service with its own logger gets the library's reports through its handler, not stderr;
 * NULL gives them back to stderr. */
static void test_warnings_go_to_the_handler(void **state)
{
    struct world *w = *state;
    struct warnings_seen seen = {0};
    devnode_set_warning_handler(w->caller, on_warning, &seen);
    FILE *caught = tmpfile();
    assert_non_null(caught);
    fflush(stderr);
    int saved_stderr = dup(2);
    dup2(fileno(caught), 2);
    assert_int_equal(devnode_emit_nowait(w->caller, "refused.please", NULL, 0), 0);
    assert_int_equal(devnode_emit(w->caller, "unheard", NULL, 0), 0); /* answered after it */
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    devnode_set_warning_handler(w->caller, NULL, NULL);
    assert_int_equal(ftell(caught), 0);
    fclose(caught);
    assert_int_equal(seen.count, 1);
    assert_int_equal(seen.level, DEVNODE_WARNING);
    assert_non_null(strstr(seen.last, "the node refused an event emitted without waiting: emit: cannot keep the "
                                      "event in stream refused.#"));
}

/* What a view built from the stream saw: offsets in order, and who it was inside. */
struct view_log {
    int64_t offsets[16];
    int count;
    char last_title[32];
};

static int on_view_event(const struct devnode_event *ev, void *ctx)
{
    struct view_log *v = ctx;
    if (v->count < 16)
        v->offsets[v->count] = ev->offset;
    v->count++;
    snprintf(v->last_title, sizeof v->last_title, "%s", json_string_value(json_object_get(ev->body, "title")));
    /* Its own catch-up from inside would recurse: refused. */
    assert_int_equal(devnode_catch_up(ev->dn, "view", 100), DEVNODE_E_INVALID);
    return 0;
}

static void emit_book(struct devnode *dn, const char *title, int64_t want_offset)
{
    json_t *body = json_pack("{s:s}", "title", title);
    int64_t offset = -2;
    assert_int_equal(devnode_emit_offset(dn, "book.added", body, 0, &offset), 0);
    assert_int_equal(offset, want_offset);
    json_decref(body);
}

static void test_stream_subscription_replays_and_catches_up(void **state)
{
    struct world *w = *state;
    /* Three events kept before the view exists; an emit outside any stream has no offset. */
    emit_book(w->caller, "Dune", 0);
    emit_book(w->caller, "Emma", 1);
    emit_book(w->caller, "Ulysses", 2);
    int64_t offset = 7;
    assert_int_equal(devnode_emit_offset(w->caller, "unheard", NULL, 0, &offset), 0);
    assert_int_equal(offset, -1);

    struct devnode *view = connect_as("Viewer", 0);
    struct view_log log = {0};
    assert_int_equal(devnode_subscribe_stream(view, "view", "book.#", NULL, "sometime", 0, on_view_event, &log),
                     DEVNODE_E_INVALID);
    assert_int_equal(devnode_subscribe_stream(view, "view", "book.#", "book.read", "beginning", DEVNODE_CATCH_UP,
                                              on_view_event, &log),
                     DEVNODE_E_INVALID);
    assert_int_equal(devnode_subscribe_stream(view, "view", "book.#", NULL, "beginning",
                                              DEVNODE_BROADCAST | DEVNODE_CATCH_UP, on_view_event, &log),
                     0);
    /* devnode_start returns with the stream handled to its end: nobody ran a loop. */
    assert_int_equal(devnode_start(view), 0);
    assert_int_equal(log.count, 3);
    assert_int_equal(log.offsets[0], 0);
    assert_int_equal(log.offsets[1], 1);
    assert_int_equal(log.offsets[2], 2);
    assert_string_equal(log.last_title, "Ulysses");
    pthread_mutex_lock(&w->node.lock);
    int found = 0;
    for (int i = 0; i < w->node.nsubs; i++)
        if (!strcmp(w->node.subs[i].stream, "book.#")) {
            found++;
            assert_string_equal(w->node.subs[i].from, "beginning");
            assert_string_equal(w->node.subs[i].pattern, "book.#");
            assert_true(w->node.subs[i].broadcast);
        }
    pthread_mutex_unlock(&w->node.lock);
    assert_int_equal(found, 1);
    assert_int_equal(devnode_subscribe_stream(view, "late", "book.#", NULL, "now", DEVNODE_CATCH_UP, on_view_event,
                                              &log),
                     DEVNODE_E_INVALID);

    /* Another process emits; catching up handles it now, from outside any loop. */
    emit_book(w->caller, "Walden", 3);
    assert_int_equal(devnode_catch_up(view, "view", 2000), 0);
    assert_int_equal(log.count, 4);
    assert_int_equal(log.offsets[3], 3);
    assert_string_equal(log.last_title, "Walden");
    assert_int_equal(devnode_catch_up(view, "view", 2000), 0); /* nothing new: at once */
    assert_int_equal(log.count, 4);
    assert_int_equal(devnode_catch_up(view, "nope", 100), DEVNODE_E_INVALID);
    assert_non_null(strstr(devnode_last_error(view), "no stream subscription named 'nope'"));
    devnode_close(view);
    pthread_mutex_lock(&w->node.lock);
    assert_int_equal(w->node.stream_unsubscribes, 1);
    pthread_mutex_unlock(&w->node.lock);
}

static void test_heartbeats_flow(void **state)
{
    struct world *w = *state;
    /* The server sends one a second while it runs. */
    assert_true(wait_count(&w->node.lock, &w->node.heartbeats, 1) >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_returns_the_result),
        cmocka_unit_test(test_a_handler_can_call_its_own_service),
        cmocka_unit_test(test_error_replies),
        cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_timeout_then_late_reply_is_dropped),
        cmocka_unit_test(test_deferred_calls),
        cmocka_unit_test(test_trace_ids_travel),
        cmocka_unit_test(test_events_are_acked_after_the_handler),
        cmocka_unit_test(test_emit_nowait_keeps_the_order_of_emits),
        cmocka_unit_test(test_warnings_go_to_the_handler),
        cmocka_unit_test(test_stream_subscription_replays_and_catches_up),
        cmocka_unit_test(test_heartbeats_flow),
        cmocka_unit_test(test_connect_needs_the_environment),
    };
    return cmocka_run_group_tests(tests, world_up, world_down);
}
