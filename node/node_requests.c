/* node_requests: the control requests of the node itself (status, restart, scale, stop),
 * translated between the wire and the supervisor. No process logic lives here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "node/node.h"

static int instance_is_up(const struct instance *inst)
{
    return inst->pid && (inst->state == INSTANCE_RUNNING || inst->state == INSTANCE_STARTING);
}

/* PORT as a number; the text when an env: PORT is not one; nil when there is none. */
static void pack_port(msgpack_packer *pk, const char *port)
{
    char *end;
    long n = strtol(port, &end, 10);
    wire_pack_str(pk, "port");
    if (!port[0])
        msgpack_pack_nil(pk);
    else if (*end == '\0')
        msgpack_pack_long(pk, n);
    else
        wire_pack_str(pk, port);
}

static void pack_instance(msgpack_packer *pk, const struct instance *inst, uint64_t now_ms)
{
    msgpack_pack_map(pk, 12);
    wire_pack_kv_int(pk, "index", inst->index);
    wire_pack_kv_str(pk, "state", instance_state_name(inst->state));
    wire_pack_kv_int(pk, "pid", inst->pid);
    wire_pack_kv_int(pk, "restarts", inst->restarts);
    wire_pack_kv_int(pk, "uptime_ms", inst->pid ? (int64_t)(now_ms - inst->started_ms) : 0);
    wire_pack_kv_double(pk, "cpu_percent", inst->pid ? inst->stat.cpu_percent : 0.0);
    wire_pack_kv_int(pk, "rss_kib", inst->pid ? (int64_t)inst->stat.rss_kib : 0);
    wire_pack_str(pk, "last_exit");
    if (inst->has_exited) {
        msgpack_pack_map(pk, 2);
        wire_pack_str(pk, "code");
        if (inst->last_exit_signal)
            msgpack_pack_nil(pk);
        else
            msgpack_pack_int(pk, inst->last_exit_code);
        wire_pack_str(pk, "signal");
        if (inst->last_exit_signal)
            wire_pack_str(pk, config_signal_name(inst->last_exit_signal));
        else
            msgpack_pack_nil(pk);
    } else {
        msgpack_pack_nil(pk);
    }
    wire_pack_kv_str(pk, "failure", inst->failure[0] ? inst->failure : NULL);
    wire_pack_kv_str(pk, "command", inst->service->command);
    wire_pack_kv_bool(pk, "ready", inst->pid && inst->ready);
    pack_port(pk, inst->port);
}

static void handle_status(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct node *node = ctx;
    uv_update_time(&node->loop);
    uint64_t now = uv_now(&node->loop);
    procstat_sample(&node->self_stat, getpid(), now);
    struct wire_body b;
    wire_body_init(&b);
    msgpack_packer *pk = &b.pk;
    msgpack_pack_map(pk, 3);
    control_pack_id(pk, msg);
    wire_pack_str(pk, "node");
    msgpack_pack_map(pk, 10);
    wire_pack_kv_int(pk, "pid", getpid());
    wire_pack_kv_str(pk, "endpoint", node->rundir.endpoint);
    wire_pack_kv_str(pk, "config", node->cfg.path);
    wire_pack_kv_str(pk, "run_dir", node->rundir.dir);
    wire_pack_kv_int(pk, "uptime_ms", (int64_t)(now - node->started_ms));
    wire_pack_kv_double(pk, "cpu_percent", node->self_stat.cpu_percent);
    wire_pack_kv_int(pk, "rss_kib", (int64_t)node->self_stat.rss_kib);
    wire_pack_kv_bool(pk, "stopping", node->sup.stopping);
    wire_pack_kv_int(pk, "malformed_messages", (int64_t)ctl->malformed_messages);
    wire_pack_str(pk, "sockets");
    msgpack_pack_array(pk, node->sockets.count);
    for (size_t i = 0; i < node->sockets.count; i++) {
        const struct bound_socket *bs = &node->sockets.items[i];
        char warning[900];
        int stalled = supervisor_socket_warning(&node->sup, bs, now, warning, sizeof warning);
        msgpack_pack_map(pk, 5);
        wire_pack_kv_str(pk, "name", bs->cfg->name);
        wire_pack_kv_str(pk, "address", bs->address);
        wire_pack_kv_int(pk, "port", bs->port);
        wire_pack_str(pk, "waiting");
        if (bs->queue.waiting >= 0)
            msgpack_pack_int(pk, bs->queue.waiting);
        else
            msgpack_pack_nil(pk);
        wire_pack_kv_str(pk, "warning", stalled ? warning : NULL);
    }

    wire_pack_str(pk, "services");
    msgpack_pack_array(pk, node->sup.service_count);
    for (size_t s = 0; s < node->sup.service_count; s++) {
        const struct service *svc = &node->sup.services[s];
        size_t present = 0, up = 0;
        for (size_t i = 0; i < svc->instance_cap; i++) {
            if (svc->instances[i]) {
                present++;
                up += instance_is_up(svc->instances[i]);
            }
        }
        msgpack_pack_map(pk, 5);
        wire_pack_kv_str(pk, "name", svc->cfg->name);
        wire_pack_kv_int(pk, "desired", svc->desired);
        wire_pack_kv_int(pk, "running", (int64_t)up);
        wire_pack_str(pk, "sockets");
        msgpack_pack_array(pk, svc->socket_count);
        for (size_t i = 0; i < svc->socket_count; i++)
            wire_pack_str(pk, svc->sockets[i]->cfg->name);
        wire_pack_str(pk, "instances");
        msgpack_pack_array(pk, present);
        for (size_t i = 0; i < svc->instance_cap; i++)
            if (svc->instances[i])
                pack_instance(pk, svc->instances[i], now);
    }
    control_reply(ctl, msg, "status", &b);
    wire_body_free(&b);
}

/* "Greeting" -> index -1; "Greeting.2" -> 2. Returns -1 on a malformed target. */
static int parse_target(const char *target, char *service, size_t cap, int *index)
{
    const char *dot = strrchr(target, '.');
    *index = -1;
    if (dot && dot[1]) {
        char *end;
        long n = strtol(dot + 1, &end, 10);
        if (*end == '\0' && n >= 0 && n < 100000) {
            *index = (int)n;
            if ((size_t)(dot - target) >= cap)
                return -1;
            memcpy(service, target, (size_t)(dot - target));
            service[dot - target] = '\0';
            return 0;
        }
    }
    if (strlen(target) >= cap)
        return -1;
    strcpy(service, target);
    return 0;
}

static void reply_count(struct control *ctl, const struct wire_msg *msg, const char *key, int64_t n)
{
    struct wire_body b;
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 2);
    control_pack_id(&b.pk, msg);
    wire_pack_kv_int(&b.pk, key, n);
    control_reply(ctl, msg, "ok", &b);
    wire_body_free(&b);
}

/* A `restart` or `scale` sent with `wait: true`: answered `started` at once and `ok` or
 * `error` when the change is over. The client may be gone by then; the change went on anyway
 * and the reply is dropped. */
struct waiting_reply {
    struct control *ctl;
    unsigned char routing[WIRE_IDENTITY_MAX];
    size_t routing_len;
    msgpack_sbuffer id;    /* the request's id, packed: both replies echo it */
    const char *count_key; /* "instances" (restart) or "count" (scale), as in the reply without wait */
    int64_t count;
};

static int wants_wait(const struct wire_msg *msg)
{
    const msgpack_object *v = wire_map_get(msg->body, "wait");
    return v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

static void waiting_pack_id(struct wire_body *b, const struct waiting_reply *w)
{
    wire_pack_str(&b->pk, "id");
    msgpack_sbuffer_write(&b->sbuf, w->id.data, w->id.size);
}

static void waiting_on_started(void *ctx, size_t instances, uint64_t timeout_ms)
{
    struct waiting_reply *w = ctx;
    if (w->count < 0)
        w->count = (int64_t)instances; /* a restart counts the instances it restarts */
    struct wire_body b;
    wire_body_init(&b);
    int is_scale = strcmp(w->count_key, "instances") != 0;
    msgpack_pack_map(&b.pk, 3 + is_scale);
    waiting_pack_id(&b, w);
    if (is_scale)
        wire_pack_kv_int(&b.pk, w->count_key, w->count);
    wire_pack_kv_int(&b.pk, "instances", (int64_t)instances);
    wire_pack_kv_int(&b.pk, "timeout_ms", (int64_t)timeout_ms);
    control_send(w->ctl, w->routing, w->routing_len, "started", &b);
    wire_body_free(&b);
}

static void waiting_on_done(void *ctx, const struct change_result *result)
{
    struct waiting_reply *w = ctx;
    struct wire_body b;
    wire_body_init(&b);
    if (result->ok) {
        msgpack_pack_map(&b.pk, 5);
        waiting_pack_id(&b, w);
        wire_pack_kv_int(&b.pk, w->count_key, w->count);
        wire_pack_kv_int(&b.pk, "ready", (int64_t)result->ready);
        wire_pack_kv_int(&b.pk, "stopped", (int64_t)result->stopped);
        wire_pack_kv_int(&b.pk, "elapsed_ms", (int64_t)result->elapsed_ms);
    } else {
        msgpack_pack_map(&b.pk, 2);
        waiting_pack_id(&b, w);
        wire_pack_kv_str(&b.pk, "message", result->message);
    }
    control_send(w->ctl, w->routing, w->routing_len, result->ok ? "ok" : "error", &b);
    wire_body_free(&b);
    msgpack_sbuffer_destroy(&w->id);
    free(w);
}

/* NULL when the request does not wait. Freed by its done callback, or by waiting_drop. */
static struct waiting_reply *waiting_new(struct control *ctl, const struct wire_msg *msg, const char *count_key,
                                         int64_t count, struct change_waiter *waiter)
{
    if (!wants_wait(msg))
        return NULL;
    struct waiting_reply *w = xcalloc(1, sizeof *w);
    w->ctl = ctl;
    memcpy(w->routing, msg->identity, msg->identity_len);
    w->routing_len = msg->identity_len;
    msgpack_sbuffer_init(&w->id);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w->id, msgpack_sbuffer_write);
    const msgpack_object *id = wire_map_get(msg->body, "id");
    if (id)
        msgpack_pack_object(&pk, *id);
    else
        msgpack_pack_nil(&pk);
    w->count_key = count_key;
    w->count = count;
    *waiter = (struct change_waiter){.started = waiting_on_started, .done = waiting_on_done, .ctx = w};
    return w;
}

/* The request was refused before any change began: no callback will come. */
static void waiting_drop(struct waiting_reply *w)
{
    if (!w)
        return;
    msgpack_sbuffer_destroy(&w->id);
    free(w);
}

static void handle_restart(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct node *node = ctx;
    char target[256], service[256], err[256];
    int index;
    if (wire_get_str(msg->body, "target", target, sizeof target) < 0 ||
        parse_target(target, service, sizeof service, &index) < 0) {
        control_reply_error(ctl, msg, "restart needs a string 'target' (Service or Service.N)");
        return;
    }
    struct change_waiter waiter;
    struct waiting_reply *w = waiting_new(ctl, msg, "instances", -1, &waiter);
    int n = supervisor_restart(&node->sup, service, index, w ? &waiter : NULL, err, sizeof err);
    if (n < 0) {
        waiting_drop(w);
        control_reply_error(ctl, msg, err);
    } else if (!w) {
        reply_count(ctl, msg, "instances", n);
    }
}

static void handle_scale(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct node *node = ctx;
    char service[256], err[256];
    int64_t count;
    if (wire_get_str(msg->body, "service", service, sizeof service) < 0 ||
        wire_get_int(msg->body, "count", &count) < 0) {
        control_reply_error(ctl, msg, "scale needs 'service' (string) and 'count' (integer)");
        return;
    }
    if (count < 0 || count > 10000) {
        control_reply_error(ctl, msg, "count must be between 0 and 10000");
        return;
    }
    struct change_waiter waiter;
    struct waiting_reply *w = waiting_new(ctl, msg, "count", count, &waiter);
    int n = supervisor_scale(&node->sup, service, (int)count, w ? &waiter : NULL, err, sizeof err);
    if (n < 0) {
        waiting_drop(w);
        control_reply_error(ctl, msg, err);
    } else if (!w) {
        reply_count(ctl, msg, "count", n);
    }
}

static void handle_stop(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct node *node = ctx;
    struct wire_body b;
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 2);
    control_pack_id(&b.pk, msg);
    wire_pack_kv_int(&b.pk, "pid", getpid());
    control_reply(ctl, msg, "ok", &b);
    wire_body_free(&b);
    int64_t force = 0;
    wire_get_int(msg->body, "force", &force);
    node_request_stop(node, "devnode stop");
    if (force)
        node_request_stop(node, "devnode stop --force");
}

/* One heartbeat keeps both a registry entry (by pid) and bus subscriptions (by connection)
 * alive. No reply: heartbeats are fire-and-forget. */
static void handle_heartbeat(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct node *node = ctx;
    int64_t pid = 0;
    if (wire_get_int(msg->body, "pid", &pid) == 0 && pid > 0)
        registry_heartbeat(&node->registry, (pid_t)pid);
    bus_touch(&node->bus, msg->identity, msg->identity_len);
}

static void handle_ping(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    control_reply_ok(ctl, msg);
}

void node_register_requests(struct node *node)
{
    control_register(&node->control, "status", handle_status, node);
    control_register(&node->control, "restart", handle_restart, node);
    control_register(&node->control, "scale", handle_scale, node);
    control_register(&node->control, "stop", handle_stop, node);
    control_register(&node->control, "ping", handle_ping, node);
    control_register(&node->control, "heartbeat", handle_heartbeat, node);
}
