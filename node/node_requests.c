/* node_requests: the control requests of the node itself (status, restart, scale, stop),
 * translated between the wire and the supervisor. No process logic lives here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "node/node.h"
#include "node/reload.h"

static int instance_is_up(const struct instance *inst)
{
    return inst->cur->pid && (inst->state == INSTANCE_RUNNING || inst->state == INSTANCE_STARTING);
}

static void pack_instance(msgpack_packer *pk, const struct instance *inst, uint64_t now_ms)
{
    const struct live_check *lc = &inst->live;
    struct proto_status_health health = {
        .probe = lc->probe,
        .result = live_result_name(lc->result),
        .failures = lc->failures,
        .failures_max = lc->cfg->failures,
        .not_counted = lc->held_misses,
        .last_error = lc->last_error[0] ? lc->last_error : NULL,
    };
    const char *waiting;
    const char *state = startorder_state(inst->sup, inst, &waiting);
    struct proto_status_instance out = {
        .index = inst->index,
        .state = state,
        .pid = inst->cur->pid,
        .restarts = inst->restarts,
        .uptime_ms = inst->cur->pid ? (int64_t)(now_ms - inst->cur->started_ms) : 0,
        .cpu_percent = inst->cur->pid ? inst->stat.cpu_percent : 0.0,
        .rss_kib = inst->cur->pid ? (int64_t)inst->stat.rss_kib : 0,
        .has_exit = inst->has_exited,
        .last_exit = {.code = inst->last_exit_code,
                      .signal = inst->last_exit_signal ? config_signal_name(inst->last_exit_signal) : NULL},
        .failure = inst->failure[0] ? inst->failure : NULL,
        .command = inst->service->command,
        .ready = inst->cur->pid && inst->cur->ready,
        .port = inst->port,
        .health = lc->cfg->probe.kind != PROBE_NONE ? &health : NULL,
        .waiting = waiting,
    };
    proto_pack_status_instance(pk, &out);
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
    struct proto_status_node head = {
        .pid = getpid(),
        .endpoint = node->rundir.endpoint,
        .config = node->cfg.path,
        .run_dir = node->rundir.dir,
        .uptime_ms = (int64_t)(now - node->started_ms),
        .cpu_percent = node->self_stat.cpu_percent,
        .rss_kib = (int64_t)node->self_stat.rss_kib,
        .stopping = node->sup.stopping,
        .malformed_messages = (int64_t)ctl->malformed_messages,
    };
    proto_pack_status_head(pk, proto_request_id(msg->body), &head, node->sockets.count);
    for (size_t i = 0; i < node->sockets.count; i++) {
        const struct bound_socket *bs = &node->sockets.items[i];
        char warning[900];
        int stalled = supervisor_socket_warning(&node->sup, bs, now, warning, sizeof warning);
        struct proto_status_socket sock = {
            .name = bs->cfg->name,
            .address = bs->address,
            .port = bs->port,
            .waiting = bs->queue.waiting >= 0 ? bs->queue.waiting : -1,
            .warning = stalled ? warning : NULL,
        };
        proto_pack_status_socket(pk, &sock);
    }

    size_t listed = 0;
    for (size_t s = 0; s < node->sup.service_count; s++)
        listed += !node->sup.services[s].removed;
    proto_pack_status_services_begin(pk, listed);
    for (size_t s = 0; s < node->sup.service_count; s++) {
        const struct service *svc = &node->sup.services[s];
        if (svc->removed)
            continue; /* a reload took it out; its last processes are still stopping */
        size_t present = 0, up = 0;
        for (size_t i = 0; i < svc->instance_cap; i++) {
            if (svc->instances[i]) {
                present++;
                up += instance_is_up(svc->instances[i]);
            }
        }
        struct proto_status_service entry = {.name = svc->cfg->name, .desired = svc->desired, .running = (int64_t)up};
        struct watch_report wr;
        struct proto_status_watch watch;
        if (watch_report(node->watch, svc->cfg->name, &wr) == 0) {
            const struct config_watch *cw = &svc->cfg->watch;
            watch = (struct proto_status_watch){
                .paths = (const char *const *)cw->paths, .path_count = cw->path_count,
                .ignore = (const char *const *)cw->ignore, .ignore_count = cw->ignore_count,
                .debounce_ms = cw->debounce_ms, .folders = (int64_t)wr.folders, .state = wr.state,
                .pending = wr.pending, .events = (int64_t)wr.events, .restarts = (int64_t)wr.restarts,
                .last_path = wr.last_path, .last_change_ago_ms = wr.last_change_ago_ms,
                .limit_reached = wr.limit_reached};
            entry.watch = &watch;
        }
        proto_pack_status_service(pk, &entry, svc->socket_count);
        for (size_t i = 0; i < svc->socket_count; i++)
            proto_pack_status_socket_name(pk, svc->sockets[i]->cfg->name);
        proto_pack_status_instances_begin(pk, present);
        for (size_t i = 0; i < svc->instance_cap; i++)
            if (svc->instances[i])
                pack_instance(pk, svc->instances[i], now);
    }
    control_reply(ctl, msg, PROTO_STATUS, &b);
    wire_body_free(&b);
}

/* A `restart` or `scale` sent with `wait: true`: answered `started` at once and `ok` or
 * `error` when the change is over. The client may be gone by then; the change went on anyway
 * and the reply is dropped. */
struct waiting_reply {
    struct control *ctl;
    unsigned char routing[WIRE_IDENTITY_MAX];
    size_t routing_len;
    msgpack_sbuffer id;         /* the request's id, packed: both replies echo it */
    msgpack_unpacked id_object; /* ... and decoded from there, for the packers */
    int is_scale;               /* the replies name the count "count" (scale) or "instances" */
    int64_t count;
};

static void waiting_on_started(void *ctx, size_t instances, uint64_t timeout_ms)
{
    struct waiting_reply *w = ctx;
    if (w->count < 0)
        w->count = (int64_t)instances; /* a restart counts the instances it restarts */
    struct wire_body b;
    wire_body_init(&b);
    struct proto_change_started started = {
        .is_scale = w->is_scale, .count = w->count, .instances = (int64_t)instances, .timeout_ms = (int64_t)timeout_ms};
    proto_pack_change_started(&b.pk, &w->id_object.data, &started);
    control_send(w->ctl, w->routing, w->routing_len, PROTO_STARTED, &b);
    wire_body_free(&b);
}

static void waiting_free(struct waiting_reply *w)
{
    msgpack_unpacked_destroy(&w->id_object);
    msgpack_sbuffer_destroy(&w->id);
    free(w);
}

static void waiting_on_done(void *ctx, const struct change_result *result)
{
    struct waiting_reply *w = ctx;
    struct wire_body b;
    wire_body_init(&b);
    if (result->ok) {
        struct proto_change_done done = {.is_scale = w->is_scale,
                                         .count = w->count,
                                         .ready = (int64_t)result->ready,
                                         .stopped = (int64_t)result->stopped,
                                         .elapsed_ms = (int64_t)result->elapsed_ms};
        proto_pack_change_done(&b.pk, &w->id_object.data, &done);
    } else {
        proto_pack_error(&b.pk, &w->id_object.data, result->message);
    }
    control_send(w->ctl, w->routing, w->routing_len, result->ok ? PROTO_OK : PROTO_ERROR, &b);
    wire_body_free(&b);
    waiting_free(w);
}

/* NULL when the request does not wait. Freed by its done callback, or by waiting_drop. */
static struct waiting_reply *waiting_new(struct control *ctl, const struct wire_msg *msg, int wait, int is_scale,
                                         int64_t count, struct change_waiter *waiter)
{
    if (!wait)
        return NULL;
    struct waiting_reply *w = xcalloc(1, sizeof *w);
    w->ctl = ctl;
    memcpy(w->routing, msg->identity, msg->identity_len);
    w->routing_len = msg->identity_len;
    msgpack_sbuffer_init(&w->id);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w->id, msgpack_sbuffer_write);
    const msgpack_object *id = proto_request_id(msg->body);
    if (id)
        msgpack_pack_object(&pk, *id);
    else
        msgpack_pack_nil(&pk);
    msgpack_unpacked_init(&w->id_object);
    size_t off = 0;
    if (msgpack_unpack_next(&w->id_object, w->id.data, w->id.size, &off) != MSGPACK_UNPACK_SUCCESS)
        abort(); /* it was just packed from a decoded object */
    w->is_scale = is_scale;
    w->count = count;
    *waiter = (struct change_waiter){.started = waiting_on_started, .done = waiting_on_done, .ctx = w};
    return w;
}

/* The request was refused before any change began: no callback will come. */
static void waiting_drop(struct waiting_reply *w)
{
    if (w)
        waiting_free(w);
}

static void reply_accepted(struct control *ctl, const struct wire_msg *msg, int is_scale, int64_t n)
{
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_change_accepted(&b.pk, proto_request_id(msg->body), is_scale, n);
    control_reply(ctl, msg, PROTO_OK, &b);
    wire_body_free(&b);
}

static void handle_restart(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct node *node = ctx;
    char service[256], err[256];
    struct proto_restart req;
    if (proto_unpack_restart(msg->body, &req, service, sizeof service, err, sizeof err) < 0) {
        control_reply_error(ctl, msg, err);
        return;
    }
    struct change_waiter waiter;
    struct waiting_reply *w = waiting_new(ctl, msg, req.wait, 0, -1, &waiter);
    int n = supervisor_restart(&node->sup, req.target, req.index, w ? &waiter : NULL, err, sizeof err);
    if (n < 0) {
        waiting_drop(w);
        control_reply_error(ctl, msg, err);
    } else if (!w) {
        reply_accepted(ctl, msg, 0, n);
    }
}

static void handle_scale(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct node *node = ctx;
    char service[256], err[256];
    struct proto_scale req;
    if (proto_unpack_scale(msg->body, &req, service, sizeof service, err, sizeof err) < 0) {
        control_reply_error(ctl, msg, err);
        return;
    }
    struct change_waiter waiter;
    struct waiting_reply *w = waiting_new(ctl, msg, req.wait, 1, req.count, &waiter);
    int n = supervisor_scale(&node->sup, req.service, (int)req.count, w ? &waiter : NULL, err, sizeof err);
    if (n < 0) {
        waiting_drop(w);
        control_reply_error(ctl, msg, err);
    } else if (!w) {
        reply_accepted(ctl, msg, 1, n);
    }
}

static void handle_stop(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct node *node = ctx;
    struct proto_stop req;
    proto_unpack_stop(msg->body, &req);
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_stop_reply(&b.pk, proto_request_id(msg->body), getpid());
    control_reply(ctl, msg, PROTO_OK, &b);
    wire_body_free(&b);
    node_request_stop(node, "devnode stop");
    if (req.force)
        node_request_stop(node, "devnode stop --force");
}

/* `devnode start NAME` / `devnode stop NAME`: one service on a running node (startorder.c). */
static void handle_service_request(struct control *ctl, const struct wire_msg *msg, struct node *node, int start)
{
    char service[256], err[300], started[1024] = "";
    struct proto_service_request req;
    if (proto_unpack_service_request(msg->body, &req, service, sizeof service, err, sizeof err) < 0) {
        control_reply_error(ctl, msg, err);
        return;
    }
    int n = start ? startorder_start_service(&node->sup, req.service, started, sizeof started, err, sizeof err)
                  : startorder_stop_service(&node->sup, req.service, req.force, err, sizeof err);
    if (n < 0) {
        control_reply_error(ctl, msg, err);
        return;
    }
    if (!start)
        loghub_node_line(&node->hub, getpid(), LOG_LEVEL_INFO, "devnode stop %s: stopping %d instance%s",
                         req.service, n, n == 1 ? "" : "s");
    else if (n)
        loghub_node_line(&node->hub, getpid(), LOG_LEVEL_INFO, "devnode start %s: starting %s", req.service,
                         started);
    struct wire_body b;
    wire_body_init(&b);
    struct proto_service_reply reply = {.services = start ? started : req.service, .instances = n};
    proto_pack_service_reply(&b.pk, proto_request_id(msg->body), &reply);
    control_reply(ctl, msg, PROTO_OK, &b);
    wire_body_free(&b);
}

static void handle_start_service(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    handle_service_request(ctl, msg, ctx, 1);
}

static void handle_stop_service(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    handle_service_request(ctl, msg, ctx, 0);
}

/* One heartbeat keeps both a registry entry (by pid) and bus subscriptions (by connection)
 * alive. No reply: heartbeats are fire-and-forget. */
static void handle_heartbeat(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct node *node = ctx;
    int64_t pid;
    if (proto_unpack_pid(msg->body, &pid) == 0 && pid > 0)
        registry_heartbeat(&node->registry, (pid_t)pid);
    bus_touch(&node->bus, msg->identity, msg->identity_len);
}

static void handle_reload(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct node *node = ctx;
    struct reload_report report;
    char err[1024];
    if (node_reload(node, "devnode reload", &report, err, sizeof err) < 0) {
        control_reply_error(ctl, msg, err);
    } else {
        struct wire_body b;
        wire_body_init(&b);
        proto_pack_reload_reply(&b.pk, proto_request_id(msg->body), (const char *const *)report.lines, report.count);
        control_reply(ctl, msg, PROTO_OK, &b);
        wire_body_free(&b);
    }
    reload_report_free(&report);
}

static void handle_ping(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    control_reply_ok(ctl, msg);
}

void node_register_requests(struct node *node)
{
    control_register(&node->control, PROTO_STATUS, handle_status, node);
    control_register(&node->control, PROTO_RESTART, handle_restart, node);
    control_register(&node->control, PROTO_SCALE, handle_scale, node);
    control_register(&node->control, PROTO_STOP, handle_stop, node);
    control_register(&node->control, PROTO_PING, handle_ping, node);
    control_register(&node->control, PROTO_START_SERVICE, handle_start_service, node);
    control_register(&node->control, PROTO_STOP_SERVICE, handle_stop_service, node);
    control_register(&node->control, PROTO_RELOAD, handle_reload, node);
    control_register(&node->control, PROTO_HEARTBEAT, handle_heartbeat, node);
}
