/* test_devnode: libdevnode end to end inside one process, under ASan+UBSan and LeakSanitizer,
 * against the node's real handlers: a thread runs the control server, the registry, the event
 * bus (with a retained stream) and the node's own requests on a libuv loop, bound to an ipc://
 * endpoint in a temp dir, as node.c wires them. A serving service runs in a second thread
 * (devnode_fd/devnode_process) and the test is the caller. It checks calls, errors, timeouts,
 * deferred calls, built-ins, trace ids, event acks, streams, heartbeats and that close frees
 * all; what the node holds is read from the node itself (over the wire, or on its loop). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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
#include <uv.h>
#include <cmocka.h>

#include "proto/wire.h"
#include "devnode.h"
#include "node/node.h"

/* ---- the node: its real modules on a loop of their own ------------------------------- */

struct node_side {
    struct node *node;           /* only loop, hub, control, registry and bus are used */
    struct config_stream stream; /* the retained stream "book.#" */
    char stream_pattern[8];
    pthread_t thread;
    uv_async_t wake;             /* runs `job`, or closes everything once `stop` is set */
    pthread_mutex_t lock;        /* guards job, job_done and stop */
    pthread_cond_t done;
    void (*job)(struct node *node, void *ctx);
    void *job_ctx;
    int job_done, stop;
};

static void node_on_wake(uv_async_t *h)
{
    struct node_side *ns = h->data;
    pthread_mutex_lock(&ns->lock);
    if (ns->job) {
        ns->job(ns->node, ns->job_ctx);
        ns->job = NULL;
        ns->job_done = 1;
        pthread_cond_broadcast(&ns->done);
    }
    int stop = ns->stop;
    pthread_mutex_unlock(&ns->lock);
    if (stop) {
        registry_close(&ns->node->registry);
        bus_close(&ns->node->bus);
        control_close(&ns->node->control);
        uv_close((uv_handle_t *)&ns->wake, NULL);
    }
}

static void *node_main(void *arg)
{
    struct node_side *ns = arg;
    uv_run(&ns->node->loop, UV_RUN_DEFAULT); /* until node_on_wake closed every handle */
    return NULL;
}

/* Opens the node's modules on `endpoint` and runs them in their own thread. */
static void node_start(struct node_side *ns, const char *endpoint, const char *run_dir)
{
    struct node *node = ns->node = calloc(1, sizeof *ns->node);
    assert_non_null(node);
    snprintf(ns->stream_pattern, sizeof ns->stream_pattern, "book.#");
    ns->stream = (struct config_stream){.pattern = ns->stream_pattern, .retain_events = 1000};
    node->cfg.streams = &ns->stream;
    node->cfg.stream_count = 1;
    char err[256], streams[300];
    snprintf(streams, sizeof streams, "%s/streams", run_dir);
    mkdir(streams, 0700);
    assert_int_equal(uv_loop_init(&node->loop), 0);
    loghub_init(&node->hub);
    if (control_open(&node->control, &node->loop, endpoint, err, sizeof err) < 0)
        fail_msg("control_open: %s", err);
    registry_init(&node->registry, &node->loop, &node->hub, &node->control);
    if (bus_init(&node->bus, &node->loop, &node->hub, &node->control, &node->cfg, run_dir, err, sizeof err) < 0)
        fail_msg("bus_init: %s", err);
    node_register_requests(node); /* heartbeat keeps registry entries and bus members alive */
    pthread_mutex_init(&ns->lock, NULL);
    pthread_cond_init(&ns->done, NULL);
    uv_async_init(&node->loop, &ns->wake, node_on_wake);
    ns->wake.data = ns;
    pthread_create(&ns->thread, NULL, node_main, ns);
}

/* Runs fn on the node's loop, between two of its callbacks, and waits for it. */
static void on_node(struct node_side *ns, void (*fn)(struct node *node, void *ctx), void *ctx)
{
    pthread_mutex_lock(&ns->lock);
    ns->job = fn;
    ns->job_ctx = ctx;
    ns->job_done = 0;
    uv_async_send(&ns->wake);
    while (!ns->job_done)
        pthread_cond_wait(&ns->done, &ns->lock);
    pthread_mutex_unlock(&ns->lock);
}

static void node_stop(struct node_side *ns)
{
    pthread_mutex_lock(&ns->lock);
    ns->stop = 1;
    pthread_mutex_unlock(&ns->lock);
    uv_async_send(&ns->wake);
    pthread_join(ns->thread, NULL);
    assert_int_equal(uv_loop_close(&ns->node->loop), 0);
    pthread_mutex_destroy(&ns->lock);
    pthread_cond_destroy(&ns->done);
    free(ns->node);
}

/* Asks the node a request of `type` with no arguments but its id over a connection of the
 * test's own, as the CLI does, and returns the reply (wire_msg_free it). */
static void node_ask(const char *endpoint, const char *type, struct wire_msg *reply)
{
    void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(sock, endpoint), 0);
    struct wire_body b;
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 1);
    wire_pack_kv_int(&b.pk, "id", 1);
    assert_int_equal(wire_send(sock, NULL, 0, type, b.sbuf.data, b.sbuf.size, 0), 0);
    wire_body_free(&b);
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&item, 1, 3000), 1);
    char err[160];
    assert_int_equal(wire_recv(sock, 0, reply, err, sizeof err), WIRE_OK);
    assert_string_equal(reply->type, type);
    zmq_close(sock);
    zmq_ctx_term(ctx);
}

/* What bus_status says of one group, found by name or by stream (the other NULL). */
struct group_seen {
    int found, broadcast;
    int64_t members, queued, in_flight, delivered;
    char patterns[64];
};

static struct group_seen bus_group(const char *endpoint, const char *name, const char *stream)
{
    struct wire_msg m;
    node_ask(endpoint, "bus_status", &m);
    struct group_seen seen = {0};
    const msgpack_object *groups = wire_map_get(m.body, "groups");
    assert_non_null(groups);
    for (uint32_t i = 0; i < groups->via.array.size; i++) {
        const msgpack_object *g = &groups->via.array.ptr[i];
        if ((name && !wire_str_eq(wire_map_get(g, "name"), name)) ||
            (stream && !wire_str_eq(wire_map_get(g, "stream"), stream)))
            continue;
        seen.found++;
        const msgpack_object *bc = wire_map_get(g, "broadcast"), *pats = wire_map_get(g, "patterns");
        seen.broadcast = bc && bc->type == MSGPACK_OBJECT_BOOLEAN && bc->via.boolean;
        wire_get_int(g, "members", &seen.members);
        wire_get_int(g, "queued", &seen.queued);
        wire_get_int(g, "in_flight", &seen.in_flight);
        wire_get_int(g, "delivered", &seen.delivered);
        for (uint32_t k = 0; pats && k < pats->via.array.size; k++)
            snprintf(seen.patterns + strlen(seen.patterns), sizeof seen.patterns - strlen(seen.patterns), "%s%.*s",
                     k ? " " : "", (int)pats->via.array.ptr[k].via.str.size, pats->via.array.ptr[k].via.str.ptr);
    }
    wire_msg_free(&m);
    return seen;
}

static int64_t bus_counter(const char *endpoint, const char *key)
{
    struct wire_msg m;
    node_ask(endpoint, "bus_status", &m);
    int64_t v = -1;
    wire_get_int(m.body, key, &v);
    wire_msg_free(&m);
    return v;
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
    char dir[128], endpoint[200];
    struct node_side node;
    struct server server;
    struct devnode *caller;
};

/* What the registry holds, read on the node's loop. It keeps one entry per process. */
struct registry_seen {
    size_t count;
    char service[64], identity[40];
    uint64_t registered_ms, last_heartbeat_ms;
};

static void read_registry(struct node *node, void *ctx)
{
    struct registry_seen *seen = ctx;
    seen->count = node->registry.count;
    if (seen->count) {
        const struct registry_entry *e = node->registry.entries[0];
        snprintf(seen->service, sizeof seen->service, "%s", e->service);
        snprintf(seen->identity, sizeof seen->identity, "%s", e->identity);
        seen->registered_ms = e->registered_ms;
        seen->last_heartbeat_ms = e->last_heartbeat_ms;
    }
}

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
    snprintf(w->endpoint, sizeof w->endpoint, "ipc://%s/node.sock", w->dir);
    setenv("DEVNODE_ENDPOINT", w->endpoint, 1);
    setenv("DEVNODE_RUN_DIR", w->dir, 1);
    node_start(&w->node, w->endpoint, w->dir);

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

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
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
    /* The stop said goodbye: the node has no member left in Echo's group, and no entry. */
    struct group_seen greeted = bus_group(w->endpoint, "Echo.greeted", NULL);
    struct registry_seen reg;
    on_node(&w->node, read_registry, &reg);
    node_stop(&w->node);
    pthread_mutex_destroy(&w->server.lock);
    char path[256];
    snprintf(path, sizeof path, "%s/rpc", w->dir);
    int rpc_dir_empty = rmdir(path) == 0;
    nftw(w->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(w);
    assert_int_equal(greeted.found, 1);
    assert_int_equal(greeted.members, 0);
    assert_int_equal(reg.count, 0);
    assert_true(rpc_dir_empty); /* and the socket file went with it */
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
    struct registry_seen reg;
    on_node(&w->node, read_registry, &reg);
    assert_string_equal(reg.service, "Echo");
    assert_int_equal(strlen(reg.identity), 32);
    assert_string_equal(json_string_value(json_object_get(result, "identity")), reg.identity); /* the node's */
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

    assert_string_equal(devnode_set_trace_id(w->caller, ""), "");
    assert_int_equal(strlen(devnode_set_trace_id(w->caller, NULL)), 32);
    devnode_set_trace_id(w->caller, "");
}

/* Waits up to 2 s for Echo's group at the node to have nothing in flight and `delivered` acked. */
static struct group_seen wait_settled(struct world *w, int64_t delivered)
{
    struct group_seen g = {0};
    for (int i = 0; i < 200; i++) {
        g = bus_group(w->endpoint, "Echo.greeted", NULL);
        if (g.in_flight == 0 && g.queued == 0 && g.delivered >= delivered)
            break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return g;
}

static void test_events_are_acked_after_the_handler(void **state)
{
    struct world *w = *state;
    /* Every event handled so far is acked (none is nacked, which would deliver it again). */
    int events = wait_count(&w->server.lock, &w->server.events, 0);
    struct group_seen g = wait_settled(w, events);
    assert_int_equal(g.members, 1);
    assert_string_equal(g.patterns, "greeted");
    assert_int_equal(g.delivered, events);
    devnode_set_trace_id(w->caller, "ev-trace");
    json_t *body = json_pack("{s:s}", "name", "ann");
    assert_int_equal(devnode_emit(w->caller, "greeted", body, 0), 0);
    assert_int_equal(devnode_emit(w->caller, "unheard", body, 0), 0);
    json_decref(body);
    devnode_set_trace_id(w->caller, "");
    assert_int_equal(wait_count(&w->server.lock, &w->server.events, events + 1), events + 1);
    g = wait_settled(w, events + 1);
    assert_int_equal(g.delivered, events + 1);
    assert_int_equal(g.in_flight, 0);
    pthread_mutex_lock(&w->server.lock);
    assert_string_equal(w->server.event_trace, "ev-trace");
    assert_string_equal(w->server.event_name, "ann");
    assert_false(w->server.event_redelivered);
    assert_int_equal(w->server.event_offset, -1); /* a new event, not one of a stream */
    pthread_mutex_unlock(&w->server.lock);
    assert_int_equal(devnode_emit(w->caller, "", NULL, 0), DEVNODE_E_INVALID);
}

/* The node refuses an event delayed by more than a week: so does the library, at the call. */
#define REFUSED_DELAY_MS (8u * 24 * 3600 * 1000)

/* No-wait emits are queued and coalesced; a waited emit sends them first, so the node gets a
 * connection's events in order, waited or not: the last event handled is the waited one. */
static void test_emit_nowait_keeps_the_order_of_emits(void **state)
{
    struct world *w = *state;
    int64_t before = bus_counter(w->endpoint, "emitted");
    int events = wait_count(&w->server.lock, &w->server.events, 0);
    /* A linger of 1 s: nothing leaves the queue on its own before the waited emit. */
    assert_int_equal(devnode_set_emit_linger(w->caller, 1000000), 0);
    for (int i = 0; i < 200; i++) {
        json_t *body = json_pack("{s:s,s:i}", "name", "queued", "n", i);
        assert_int_equal(devnode_emit_nowait(w->caller, "greeted", body, 0), 0);
        json_decref(body);
    }
    assert_int_equal(bus_counter(w->endpoint, "emitted"), before); /* still queued */
    json_t *last = json_pack("{s:s}", "name", "waited");
    assert_int_equal(devnode_emit(w->caller, "greeted", last, 0), 0);
    json_decref(last);
    assert_int_equal(bus_counter(w->endpoint, "emitted"), before + 201);
    assert_int_equal(wait_count(&w->server.lock, &w->server.events, events + 201), events + 201);
    pthread_mutex_lock(&w->server.lock);
    assert_string_equal(w->server.event_name, "waited");
    pthread_mutex_unlock(&w->server.lock);
    assert_int_equal(devnode_set_emit_linger(w->caller, DEVNODE_EMIT_LINGER_US), 0);
    assert_int_equal(devnode_set_emit_linger(w->caller, DEVNODE_EMIT_LINGER_MAX_US + 1), DEVNODE_E_INVALID);

    /* What the node would refuse is refused at the call, waited or not. */
    assert_int_equal(devnode_emit_nowait(w->caller, "unheard", NULL, REFUSED_DELAY_MS), DEVNODE_E_INVALID);
    assert_non_null(strstr(devnode_last_error(w->caller), "over a week"));
    assert_int_equal(devnode_emit(w->caller, "unheard", NULL, REFUSED_DELAY_MS), DEVNODE_E_INVALID);
    char long_type[PROTO_NAME_MAX + 2];
    memset(long_type, 'a', sizeof long_type - 1);
    long_type[sizeof long_type - 1] = '\0';
    assert_int_equal(devnode_emit_nowait(w->caller, long_type, NULL, 0), DEVNODE_E_INVALID);
    long_type[PROTO_NAME_MAX] = '\0';
    assert_int_equal(devnode_emit_nowait(w->caller, long_type, NULL, 0), 0); /* 200 bytes: fine */
    assert_int_equal(devnode_emit_nowait(w->caller, "order.*", NULL, 0), DEVNODE_E_INVALID);
    assert_int_equal(devnode_emit_nowait(w->caller, "", NULL, 0), DEVNODE_E_INVALID);
    assert_int_equal(devnode_emit(w->caller, "a..b", NULL, 0), DEVNODE_E_INVALID);
    assert_int_equal(devnode_emit(w->caller, "unheard", NULL, 0), 0);
    assert_int_equal(bus_counter(w->endpoint, "emitted"), before + 203);
}

/* A caller with a loop of its own learns from devnode_timeout_ms when the queue must go:
 * within the linger; devnode_process sends it at the end of its turn. */
static void test_timeout_says_when_queued_events_must_go(void **state)
{
    struct world *w = *state;
    int64_t before = bus_counter(w->endpoint, "emitted");
    assert_int_equal(devnode_timeout_ms(w->caller), -1); /* nothing queued, no heartbeat */
    assert_int_equal(devnode_set_emit_linger(w->caller, 50000), 0);
    assert_int_equal(devnode_emit_nowait(w->caller, "unheard", NULL, 0), 0);
    int t = devnode_timeout_ms(w->caller);
    assert_true(t >= 0 && t <= 50);
    assert_int_equal(bus_counter(w->endpoint, "emitted"), before);
    devnode_process(w->caller);
    assert_int_equal(devnode_timeout_ms(w->caller), -1);
    for (int i = 0; i < 200 && bus_counter(w->endpoint, "emitted") != before + 1; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(bus_counter(w->endpoint, "emitted"), before + 1);
    assert_int_equal(devnode_set_emit_linger(w->caller, DEVNODE_EMIT_LINGER_US), 0);
}

/* A publisher that emits faster than the node takes and closes at once loses nothing: a full
 * queue slows the caller instead of refusing, and close waits until the node has every event
 * it accepted (the DEALER's 100,000-message queue and a 200 ms linger used to drop them). */
#define FLOOD_EVENTS 400000
static void test_emit_nowait_flood_then_close_delivers_all(void **state)
{
    struct world *w = *state;
    int64_t before = bus_counter(w->endpoint, "emitted");
    char err[256];
    struct devnode *pub = devnode_open(w->endpoint, "flood", err, sizeof err);
    assert_non_null(pub);
    int refused = 0;
    for (int i = 0; i < FLOOD_EVENTS; i++)
        if (devnode_emit_nowait(pub, "unheard", NULL, 0) != 0)
            refused++;
    assert_int_equal(refused, 0);
    assert_int_equal(devnode_close(pub), 0);
    assert_int_equal(bus_counter(w->endpoint, "emitted"), before + FLOOD_EVENTS);
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

/* The node's stream journal stops taking writes (its segment's fd turned read-only, on the
 * node's loop): a real refusal, the one a full disk causes. Undone by journal_mend. */
struct journal_break {
    const char *dir;
    int fd, saved;
};

static void journal_break_on_node(struct node *node, void *ctx)
{
    struct journal_break *jb = ctx;
    char streams[256], link[512], path[64];
    snprintf(streams, sizeof streams, "%s/streams/", jb->dir);
    jb->fd = -1;
    for (int fd = 3; fd < 1024 && jb->fd < 0; fd++) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (strncmp(link, streams, strlen(streams)) == 0 && strstr(link, ".seg"))
            jb->fd = fd;
    }
    if (jb->fd < 0)
        return;
    jb->saved = dup(jb->fd);
    int ro = open("/dev/null", O_RDONLY);
    dup2(ro, jb->fd);
    close(ro);
}

static void journal_mend_on_node(struct node *node, void *ctx)
{
    struct journal_break *jb = ctx;
    dup2(jb->saved, jb->fd);
    close(jb->saved);
}

/* A service with its own logger gets the library's reports through its handler, not stderr;
 * NULL gives them back to stderr. The report here is the node's refusal of one event of a
 * coalesced batch: the warning names it, the others are emitted, devnode_close counts it. */
static void test_warnings_go_to_the_handler(void **state)
{
    struct world *w = *state;
    char err[256];
    struct devnode *pub = devnode_open(w->endpoint, "journalist", err, sizeof err);
    assert_non_null(pub);
    struct warnings_seen seen = {0};
    devnode_set_warning_handler(pub, on_warning, &seen);
    assert_int_equal(devnode_set_emit_linger(pub, 1000000), 0); /* one batch of the four */
    int64_t before = bus_counter(w->endpoint, "emitted");
    FILE *caught = tmpfile();
    assert_non_null(caught);
    fflush(stderr);
    int saved_stderr = dup(2);
    dup2(fileno(caught), 2);
    struct journal_break jb = {.dir = w->dir};
    on_node(&w->node, journal_break_on_node, &jb);
    assert_true(jb.fd >= 0);
    assert_int_equal(devnode_emit_nowait(pub, "unheard", NULL, 0), 0);
    assert_int_equal(devnode_emit_nowait(pub, "unheard", NULL, 0), 0);
    assert_int_equal(devnode_emit_nowait(pub, "book.lost", NULL, 0), 0);
    assert_int_equal(devnode_emit_nowait(pub, "unheard", NULL, 0), 0);
    assert_int_equal(devnode_emit(pub, "unheard", NULL, 0), 0); /* answered after the refusal */
    on_node(&w->node, journal_mend_on_node, &jb);
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    assert_int_equal(ftell(caught), 0);
    fclose(caught);
    assert_int_equal(seen.count, 1);
    assert_int_equal(seen.level, DEVNODE_WARNING);
    assert_non_null(strstr(seen.last, "cannot keep the event in stream book.#"));
    if (strstr(seen.last, "refused event 3 of 4 emitted without waiting (book.lost)")) {
        assert_int_equal(bus_counter(w->endpoint, "emitted"), before + 4); /* the three others and the waited */
        assert_int_equal(devnode_close(pub), 1);
    } else {
        /* A node from before issue 17 refuses a batch at its first bad event: all of it counts. */
        assert_non_null(strstr(seen.last, "the node refused 4 event(s) emitted without waiting"));
        assert_int_equal(devnode_close(pub), 4);
    }
    devnode_set_warning_handler(w->caller, NULL, NULL);
}

/* With no node behind the connection, a full queue is not waited on for the whole 30 s: the
 * call fails with DEVNODE_E_NODE once the connection has been down for 2 s, and close says how
 * many accepted events the node never confirmed, in its return value and as a warning. */
static void test_emit_nowait_to_a_gone_node_says_so(void **state)
{
    struct world *w = *state;
    char endpoint[300], err[256];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/nobody.sock", w->dir);
    struct devnode *pub = devnode_open(endpoint, "orphan", err, sizeof err);
    assert_non_null(pub);
    struct warnings_seen seen = {0};
    devnode_set_warning_handler(pub, on_warning, &seen);
    int accepted = 0, rc = 0;
    while (accepted < 300000 && (rc = devnode_emit_nowait(pub, "unheard", NULL, 0)) == 0)
        accepted++;
    assert_int_equal(rc, DEVNODE_E_NODE);
    assert_true(accepted >= 8000); /* the window of unconfirmed events, then the wait that found no node */
    assert_non_null(strstr(devnode_last_error(pub), "the node is gone"));
    assert_int_equal(seen.count, 1);
    assert_non_null(strstr(seen.last, "the node is gone"));
    assert_int_equal(devnode_close(pub), accepted);
    assert_int_equal(seen.count, 2);
    char want[96];
    snprintf(want, sizeof want, "%d event(s) emitted without waiting were not confirmed", accepted);
    assert_non_null(strstr(seen.last, want));
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
    struct group_seen g = bus_group(w->endpoint, NULL, "book.#");
    assert_int_equal(g.found, 1);
    assert_true(g.broadcast);
    assert_string_equal(g.patterns, "book.#");
    assert_int_equal(g.members, 1);
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
    /* The registry keeps one entry per process: the view's registration took Echo's place. */
    struct registry_seen reg;
    on_node(&w->node, read_registry, &reg);
    assert_int_equal(reg.count, 1);
    assert_string_equal(reg.service, "Viewer");
    devnode_close(view);
    /* Its stop unsubscribed (a broadcast group goes with its member) and unregistered. */
    assert_int_equal(bus_group(w->endpoint, NULL, "book.#").found, 0);
    on_node(&w->node, read_registry, &reg);
    assert_int_equal(reg.count, 0);
}

/* The server sends one a second while it runs, and the node notes it on Echo's entry. */
/* A client the node did not start (the devnode CLI): devnode_open, calls to a given endpoint
 * with the reply's headers, many calls in flight, several patterns in one subscription. */
struct tool_seen {
    int count;
    char types[128];
};

static int on_tool_event(const struct devnode_event *ev, void *ctx)
{
    struct tool_seen *seen = ctx;
    seen->count++;
    snprintf(seen->types + strlen(seen->types), sizeof seen->types - strlen(seen->types), "%s%s",
             seen->count > 1 ? " " : "", ev->type);
    return 0;
}

static void test_open_a_client_without_the_environment(void **state)
{
    struct world *w = *state;
    char err[256];
    assert_null(devnode_open("", "tool", err, sizeof err));
    assert_null(devnode_open(w->endpoint, "bad name", err, sizeof err));
    struct devnode *tool = devnode_open(w->endpoint, "tool", err, sizeof err);
    assert_non_null(tool);

    /* At a given endpoint, with the reply's headers; through the node, with a poll for any. */
    struct devnode_error e;
    json_t *args = json_pack("{s:s}", "text", "hi"), *result = NULL, *headers = NULL;
    devnode_set_trace_id(tool, "tool-trace");
    struct devnode_call *c = devnode_call_async_to(tool, devnode_endpoint(w->server.dn), "Echo.echo", args, 2000,
                                                   DEVNODE_CALL_HEADERS, &e);
    assert_non_null(c);
    assert_int_equal(devnode_call_wait_headers(tool, c, &result, &headers, &e), DEVNODE_OK);
    assert_string_equal(json_string_value(result), "hi");
    assert_string_equal(json_string_value(json_object_get(headers, "trace_id")), "tool-trace");
    json_decref(result);
    json_decref(headers);
    struct devnode_call *calls[3];
    for (int i = 0; i < 3; i++)
        assert_non_null(calls[i] = devnode_call_async_to(tool, NULL, "Echo.echo", args, 2000, 0, &e));
    int ready = 0;
    for (int i = 0; i < 50 && !ready; i++)
        ready = devnode_call_poll(tool, 100);
    assert_true(ready);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(devnode_call_wait_headers(tool, calls[i], &result, &headers, &e), DEVNODE_OK);
        assert_null(headers); /* not asked for */
        json_decref(result);
    }
    assert_int_equal(devnode_call_poll(tool, 10), 0); /* nothing in flight */

    /* Overlapping patterns in one subscription: each event once. */
    struct tool_seen seen = {0};
    const char *const patterns[] = {"tool.#", "tool.x"};
    assert_int_equal(devnode_subscribe_patterns(tool, patterns, 2, DEVNODE_BROADCAST, on_tool_event, &seen), 0);
    assert_int_equal(devnode_emit(w->caller, "tool.x", NULL, 0), 0);
    assert_int_equal(devnode_emit(w->caller, "tool.y", NULL, 0), 0);
    for (int i = 0; i < 200 && seen.count < 2; i++) {
        zmq_pollitem_t item = {.fd = devnode_fd(tool), .events = ZMQ_POLLIN};
        zmq_poll(&item, 1, devnode_process(tool) ? 10 : 0);
    }
    assert_string_equal(seen.types, "tool.x tool.y");
    struct registry_seen reg;
    on_node(&w->node, read_registry, &reg);
    assert_int_equal(reg.count, 1); /* Echo only: a client does not register */
    devnode_close(tool);

    /* No node: a given endpoint still answers, a service to look up does not. */
    struct devnode *lone = devnode_open(NULL, NULL, err, sizeof err);
    assert_non_null(lone);
    assert_non_null(c = devnode_call_async_to(lone, devnode_endpoint(w->server.dn), "Echo.echo", args, 2000, 0, &e));
    assert_int_equal(devnode_call_wait(lone, c, &result, &e), DEVNODE_OK);
    json_decref(result);
    assert_int_equal(devnode_call(lone, "Echo.echo", args, 500, &result, &e), DEVNODE_E_NODE);
    assert_int_equal(devnode_emit(lone, "tool.x", NULL, 0), DEVNODE_E_NODE);
    devnode_close(lone);
    json_decref(args);
}

static void test_heartbeats_flow(void **state)
{
    struct world *w = *state;
    struct registry_seen reg = {0};
    for (int i = 0; i < 300; i++) {
        on_node(&w->node, read_registry, &reg);
        if (reg.count && reg.last_heartbeat_ms > reg.registered_ms)
            break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(reg.count, 1);
    assert_string_equal(reg.service, "Echo");
    assert_true(reg.last_heartbeat_ms > reg.registered_ms);
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
        cmocka_unit_test(test_timeout_says_when_queued_events_must_go),
        cmocka_unit_test(test_warnings_go_to_the_handler),
        cmocka_unit_test(test_heartbeats_flow),
        cmocka_unit_test(test_open_a_client_without_the_environment),
        /* last but one: its view registers from this process too, which replaces Echo's entry */
        cmocka_unit_test(test_stream_subscription_replays_and_catches_up),
        cmocka_unit_test(test_connect_needs_the_environment),
        /* last: the flood keeps the node busy for seconds, past the registry's heartbeat timeout */
        cmocka_unit_test(test_emit_nowait_flood_then_close_delivers_all),
        cmocka_unit_test(test_emit_nowait_to_a_gone_node_says_so),
    };
    return cmocka_run_group_tests(tests, world_up, world_down);
}
