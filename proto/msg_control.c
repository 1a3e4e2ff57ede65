/* msg_control: encoders and decoders of the node's own requests and replies, side by side.
 * Encoders only write through the caller's packer (no allocation); decoders never trust a
 * field's type or size. */
#include "proto/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- shared pieces */

void proto_pack_id(msgpack_packer *pk, const msgpack_object *id)
{
    wire_pack_str(pk, "id");
    if (id)
        msgpack_pack_object(pk, *id);
    else
        msgpack_pack_nil(pk);
}

const msgpack_object *proto_request_id(const msgpack_object *body)
{
    return body ? wire_map_get(body, "id") : NULL;
}

void proto_pack_request_id(msgpack_packer *pk, int64_t id)
{
    msgpack_pack_map(pk, 1);
    wire_pack_kv_int(pk, "id", id);
}

void proto_pack_ok(msgpack_packer *pk, const msgpack_object *id)
{
    msgpack_pack_map(pk, 1);
    proto_pack_id(pk, id);
}

void proto_pack_error(msgpack_packer *pk, const msgpack_object *id, const char *message)
{
    msgpack_pack_map(pk, 2);
    proto_pack_id(pk, id);
    wire_pack_kv_str(pk, "message", message);
}

void proto_unpack_error(const msgpack_object *body, char *message, size_t cap)
{
    if (wire_get_str(body, "message", message, cap) < 0)
        snprintf(message, cap, "(no message)");
}

void proto_version_mismatch(char *out, size_t cap, const char *node_version, const char *peer_version,
                            const char *peer)
{
    snprintf(out, cap,
             "the node speaks protocol %s, this %s %s: run the node and its clients from the same devnode build "
             "(stop the node and start it again with this one)",
             node_version, peer, peer_version);
}

static int get_bool(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = wire_map_get(map, key);
    return v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

/* ---------------------------------------------------------------- status */

void proto_pack_status_head(msgpack_packer *pk, const msgpack_object *id, const struct proto_status_node *node,
                            size_t socket_count)
{
    msgpack_pack_map(pk, 3);
    proto_pack_id(pk, id);
    wire_pack_str(pk, "node");
    msgpack_pack_map(pk, 10);
    wire_pack_kv_int(pk, "pid", node->pid);
    wire_pack_kv_str(pk, "endpoint", node->endpoint);
    wire_pack_kv_str(pk, "config", node->config);
    wire_pack_kv_str(pk, "run_dir", node->run_dir);
    wire_pack_kv_int(pk, "uptime_ms", node->uptime_ms);
    wire_pack_kv_double(pk, "cpu_percent", node->cpu_percent);
    wire_pack_kv_int(pk, "rss_kib", node->rss_kib);
    wire_pack_kv_bool(pk, "stopping", node->stopping);
    wire_pack_kv_int(pk, "malformed_messages", node->malformed_messages);
    wire_pack_str(pk, "sockets");
    msgpack_pack_array(pk, socket_count);
}

void proto_pack_status_socket(msgpack_packer *pk, const struct proto_status_socket *s)
{
    msgpack_pack_map(pk, 5);
    wire_pack_kv_str(pk, "name", s->name);
    wire_pack_kv_str(pk, "address", s->address);
    wire_pack_kv_int(pk, "port", s->port);
    wire_pack_str(pk, "waiting");
    if (s->waiting >= 0)
        msgpack_pack_int64(pk, s->waiting);
    else
        msgpack_pack_nil(pk);
    wire_pack_kv_str(pk, "warning", s->warning);
}

void proto_pack_status_services_begin(msgpack_packer *pk, size_t service_count)
{
    wire_pack_str(pk, "services");
    msgpack_pack_array(pk, service_count);
}

static void pack_str_list(msgpack_packer *pk, const char *key, const char *const *items, size_t count)
{
    wire_pack_str(pk, key);
    msgpack_pack_array(pk, count);
    for (size_t i = 0; i < count; i++)
        wire_pack_str(pk, items[i]);
}

static void pack_watch(msgpack_packer *pk, const struct proto_status_watch *w)
{
    wire_pack_str(pk, "watch");
    if (!w) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, 10);
    pack_str_list(pk, "paths", w->paths, w->path_count);
    pack_str_list(pk, "ignore", w->ignore, w->ignore_count);
    wire_pack_kv_int(pk, "debounce_ms", w->debounce_ms);
    wire_pack_kv_int(pk, "folders", w->folders);
    wire_pack_kv_str(pk, "state", w->state);
    wire_pack_kv_bool(pk, "pending", w->pending);
    wire_pack_kv_int(pk, "events", w->events);
    wire_pack_kv_int(pk, "restarts", w->restarts);
    wire_pack_str(pk, "last_change");
    if (w->last_path) {
        msgpack_pack_map(pk, 2);
        wire_pack_kv_str(pk, "path", w->last_path);
        wire_pack_kv_int(pk, "ago_ms", w->last_change_ago_ms);
    } else {
        msgpack_pack_nil(pk);
    }
    wire_pack_kv_bool(pk, "limit_reached", w->limit_reached);
}

void proto_pack_status_service(msgpack_packer *pk, const struct proto_status_service *svc, size_t socket_count)
{
    msgpack_pack_map(pk, 6);
    wire_pack_kv_str(pk, "name", svc->name);
    wire_pack_kv_int(pk, "desired", svc->desired);
    wire_pack_kv_int(pk, "running", svc->running);
    pack_watch(pk, svc->watch);
    wire_pack_str(pk, "sockets");
    msgpack_pack_array(pk, socket_count);
}

void proto_pack_status_socket_name(msgpack_packer *pk, const char *name)
{
    wire_pack_str(pk, name);
}

void proto_pack_status_instances_begin(msgpack_packer *pk, size_t instance_count)
{
    wire_pack_str(pk, "instances");
    msgpack_pack_array(pk, instance_count);
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

void proto_pack_status_instance(msgpack_packer *pk, const struct proto_status_instance *inst)
{
    msgpack_pack_map(pk, 14);
    wire_pack_kv_int(pk, "index", inst->index);
    wire_pack_kv_str(pk, "state", inst->state);
    wire_pack_kv_int(pk, "pid", inst->pid);
    wire_pack_kv_int(pk, "restarts", inst->restarts);
    wire_pack_kv_int(pk, "uptime_ms", inst->uptime_ms);
    wire_pack_kv_double(pk, "cpu_percent", inst->cpu_percent);
    wire_pack_kv_int(pk, "rss_kib", inst->rss_kib);
    wire_pack_str(pk, "last_exit");
    if (inst->has_exit) {
        msgpack_pack_map(pk, 2);
        wire_pack_str(pk, "code");
        if (inst->last_exit.signal)
            msgpack_pack_nil(pk);
        else
            msgpack_pack_int64(pk, inst->last_exit.code);
        wire_pack_kv_str(pk, "signal", inst->last_exit.signal);
    } else {
        msgpack_pack_nil(pk);
    }
    wire_pack_kv_str(pk, "failure", inst->failure);
    wire_pack_kv_str(pk, "command", inst->command);
    wire_pack_kv_bool(pk, "ready", inst->ready);
    pack_port(pk, inst->port ? inst->port : "");
    wire_pack_kv_str(pk, "waiting", inst->waiting);
    wire_pack_str(pk, "health");
    const struct proto_status_health *h = inst->health;
    if (!h) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, 6);
    wire_pack_kv_str(pk, "probe", h->probe);
    wire_pack_kv_str(pk, "result", h->result);
    wire_pack_kv_int(pk, "failures", h->failures);
    wire_pack_kv_int(pk, "failures_max", h->failures_max);
    wire_pack_kv_int(pk, "not_counted", h->not_counted);
    wire_pack_kv_str(pk, "last_error", h->last_error);
}

static struct proto_status_str get_s(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = wire_map_get(map, key);
    struct proto_status_str s = {0};
    if (v && v->type == MSGPACK_OBJECT_STR) {
        s.ptr = v->via.str.size ? v->via.str.ptr : "";
        s.len = v->via.str.size;
    }
    return s;
}

static int64_t get_i(const msgpack_object *map, const char *key, int64_t dflt)
{
    int64_t v;
    return wire_get_int(map, key, &v) == 0 ? v : dflt;
}

static double get_d(const msgpack_object *map, const char *key)
{
    double v;
    return wire_get_double(map, key, &v) == 0 ? v : 0.0;
}

static void unpack_instance(const msgpack_object *o, struct proto_status_instance_view *inst)
{
    memset(inst, 0, sizeof *inst);
    inst->index = get_i(o, "index", 0);
    inst->state = get_s(o, "state");
    inst->pid = get_i(o, "pid", 0);
    inst->restarts = get_i(o, "restarts", 0);
    inst->uptime_ms = get_i(o, "uptime_ms", 0);
    inst->cpu_percent = get_d(o, "cpu_percent");
    inst->rss_kib = get_i(o, "rss_kib", 0);
    const msgpack_object *last = wire_map_get(o, "last_exit");
    if (last && last->type == MSGPACK_OBJECT_MAP) {
        inst->has_exit = 1;
        inst->exit_has_code = wire_get_int(last, "code", &inst->exit_code) == 0;
        inst->exit_signal = get_s(last, "signal");
    }
    inst->failure = get_s(o, "failure");
    inst->waiting = get_s(o, "waiting");
    inst->command = get_s(o, "command");
    inst->ready = get_bool(o, "ready");
    inst->port_is_int = wire_get_int(o, "port", &inst->port_int) == 0;
    if (!inst->port_is_int)
        inst->port = get_s(o, "port");
    const msgpack_object *h = wire_map_get(o, "health");
    if (h && h->type == MSGPACK_OBJECT_MAP) {
        inst->has_health = 1;
        inst->health_probe = get_s(h, "probe");
        inst->health_result = get_s(h, "result");
        inst->health_error = get_s(h, "last_error");
        inst->health_failures = get_i(h, "failures", 0);
        inst->health_failures_max = get_i(h, "failures_max", 0);
        inst->health_not_counted = get_i(h, "not_counted", 0);
    }
}

static void unpack_watch(const msgpack_object *o, struct proto_status_watch_view *w)
{
    if (!o || o->type != MSGPACK_OBJECT_MAP)
        return;
    w->present = 1;
    const msgpack_object *paths = wire_map_get(o, "paths");
    if (paths && paths->type == MSGPACK_OBJECT_ARRAY && paths->via.array.size) {
        w->paths = calloc(paths->via.array.size, sizeof *w->paths);
        for (size_t i = 0; w->paths && i < paths->via.array.size; i++) {
            const msgpack_object *n = &paths->via.array.ptr[i];
            if (n->type == MSGPACK_OBJECT_STR)
                w->paths[w->path_count++] = (struct proto_status_str){n->via.str.ptr, n->via.str.size};
        }
    }
    w->debounce_ms = get_i(o, "debounce_ms", 0);
    w->folders = get_i(o, "folders", 0);
    w->state = get_s(o, "state");
    w->pending = get_bool(o, "pending");
    w->events = get_i(o, "events", 0);
    w->restarts = get_i(o, "restarts", 0);
    w->limit_reached = get_bool(o, "limit_reached");
    const msgpack_object *last = wire_map_get(o, "last_change");
    w->last_change_ago_ms = -1;
    if (last && last->type == MSGPACK_OBJECT_MAP) {
        w->last_path = get_s(last, "path");
        w->last_change_ago_ms = get_i(last, "ago_ms", -1);
    }
}

static void unpack_service(const msgpack_object *s, struct proto_status_service_view *svc)
{
    memset(svc, 0, sizeof *svc);
    svc->name = get_s(s, "name");
    svc->desired = get_i(s, "desired", 0);
    svc->running = get_i(s, "running", 0);
    unpack_watch(wire_map_get(s, "watch"), &svc->watch);
    const msgpack_object *socks = wire_map_get(s, "sockets");
    if (socks && socks->type == MSGPACK_OBJECT_ARRAY && socks->via.array.size) {
        svc->sockets = calloc(socks->via.array.size, sizeof *svc->sockets);
        for (size_t i = 0; svc->sockets && i < socks->via.array.size; i++) {
            const msgpack_object *n = &socks->via.array.ptr[i];
            if (n->type == MSGPACK_OBJECT_STR)
                svc->sockets[svc->socket_count++] = (struct proto_status_str){n->via.str.ptr, n->via.str.size};
        }
    }
    const msgpack_object *insts = wire_map_get(s, "instances");
    if (insts && insts->type == MSGPACK_OBJECT_ARRAY && insts->via.array.size) {
        svc->instances = calloc(insts->via.array.size, sizeof *svc->instances);
        for (size_t k = 0; svc->instances && k < insts->via.array.size; k++)
            if (insts->via.array.ptr[k].type == MSGPACK_OBJECT_MAP)
                unpack_instance(&insts->via.array.ptr[k], &svc->instances[svc->instance_count++]);
    }
}

int proto_unpack_status(const msgpack_object *body, struct proto_status *out)
{
    memset(out, 0, sizeof *out);
    const msgpack_object *node = wire_map_get(body, "node");
    const msgpack_object *services = wire_map_get(body, "services");
    if (!node || node->type != MSGPACK_OBJECT_MAP || !services || services->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    out->pid = get_i(node, "pid", 0);
    out->endpoint = get_s(node, "endpoint");
    out->config = get_s(node, "config");
    out->run_dir = get_s(node, "run_dir");
    out->uptime_ms = get_i(node, "uptime_ms", 0);
    out->cpu_percent = get_d(node, "cpu_percent");
    out->rss_kib = get_i(node, "rss_kib", 0);
    out->stopping = get_bool(node, "stopping");
    out->malformed_messages = get_i(node, "malformed_messages", 0);
    const msgpack_object *socks = wire_map_get(node, "sockets");
    if (socks && socks->type == MSGPACK_OBJECT_ARRAY && socks->via.array.size) {
        out->sockets = calloc(socks->via.array.size, sizeof *out->sockets);
        for (size_t i = 0; out->sockets && i < socks->via.array.size; i++) {
            const msgpack_object *o = &socks->via.array.ptr[i];
            if (o->type != MSGPACK_OBJECT_MAP)
                continue;
            struct proto_status_socket_view *s = &out->sockets[out->socket_count++];
            s->name = get_s(o, "name");
            s->address = get_s(o, "address");
            s->warning = get_s(o, "warning");
            s->port = get_i(o, "port", -1);
            s->waiting = get_i(o, "waiting", -1);
        }
    }
    if (services->via.array.size) {
        out->services = calloc(services->via.array.size, sizeof *out->services);
        if (!out->services)
            return -1;
        for (size_t i = 0; i < services->via.array.size; i++)
            if (services->via.array.ptr[i].type == MSGPACK_OBJECT_MAP)
                unpack_service(&services->via.array.ptr[i], &out->services[out->service_count++]);
    }
    return 0;
}

void proto_status_free(struct proto_status *st)
{
    for (size_t i = 0; i < st->service_count; i++) {
        free(st->services[i].sockets);
        free(st->services[i].instances);
        free(st->services[i].watch.paths);
    }
    free(st->services);
    free(st->sockets);
    memset(st, 0, sizeof *st);
}

void proto_status_str_copy(struct proto_status_str s, char *out, size_t cap)
{
    size_t n = s.ptr ? (s.len < cap - 1 ? s.len : cap - 1) : 0;
    if (n)
        memcpy(out, s.ptr, n);
    out[n] = '\0';
}

/* ---------------------------------------------------------------- restart / scale */

void proto_pack_restart(msgpack_packer *pk, int64_t id, const struct proto_restart *req)
{
    msgpack_pack_map(pk, 2 + (req->wait != 0));
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_str(pk, "target", req->target);
    if (req->wait)
        wire_pack_kv_bool(pk, "wait", 1);
}

/* "Greeting" -> index -1; "Greeting.2" -> 2, in place. */
void proto_split_target(char *target, int *index)
{
    char *dot = strrchr(target, '.');
    *index = -1;
    if (dot && dot[1]) {
        char *end;
        long n = strtol(dot + 1, &end, 10);
        if (*end == '\0' && n >= 0 && n < 100000) {
            *index = (int)n;
            *dot = '\0';
        }
    }
}

int proto_unpack_restart(const msgpack_object *body, struct proto_restart *req, char *buf, size_t cap, char *err,
                         size_t errlen)
{
    memset(req, 0, sizeof *req);
    if (wire_get_str(body, "target", buf, cap) < 0) {
        snprintf(err, errlen, "restart needs a string 'target' (Service or Service.N)");
        return -1;
    }
    proto_split_target(buf, &req->index);
    req->target = buf;
    req->wait = get_bool(body, "wait");
    return 0;
}

void proto_pack_scale(msgpack_packer *pk, int64_t id, const struct proto_scale *req)
{
    msgpack_pack_map(pk, 3 + (req->wait != 0));
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_str(pk, "service", req->service);
    wire_pack_kv_int(pk, "count", req->count);
    if (req->wait)
        wire_pack_kv_bool(pk, "wait", 1);
}

int proto_unpack_scale(const msgpack_object *body, struct proto_scale *req, char *buf, size_t cap, char *err,
                       size_t errlen)
{
    memset(req, 0, sizeof *req);
    if (wire_get_str(body, "service", buf, cap) < 0 || wire_get_int(body, "count", &req->count) < 0) {
        snprintf(err, errlen, "scale needs 'service' (string) and 'count' (integer)");
        return -1;
    }
    if (req->count < 0 || req->count > PROTO_SCALE_MAX) {
        snprintf(err, errlen, "count must be between 0 and %d", PROTO_SCALE_MAX);
        return -1;
    }
    req->service = buf;
    req->wait = get_bool(body, "wait");
    return 0;
}

static const char *count_key(int is_scale)
{
    return is_scale ? "count" : "instances";
}

void proto_pack_change_accepted(msgpack_packer *pk, const msgpack_object *id, int is_scale, int64_t n)
{
    msgpack_pack_map(pk, 2);
    proto_pack_id(pk, id);
    wire_pack_kv_int(pk, count_key(is_scale), n);
}

void proto_pack_change_started(msgpack_packer *pk, const msgpack_object *id, const struct proto_change_started *s)
{
    msgpack_pack_map(pk, 3 + (s->is_scale != 0));
    proto_pack_id(pk, id);
    if (s->is_scale)
        wire_pack_kv_int(pk, "count", s->count);
    wire_pack_kv_int(pk, "instances", s->instances);
    wire_pack_kv_int(pk, "timeout_ms", s->timeout_ms);
}

void proto_pack_change_done(msgpack_packer *pk, const msgpack_object *id, const struct proto_change_done *d)
{
    msgpack_pack_map(pk, 5);
    proto_pack_id(pk, id);
    wire_pack_kv_int(pk, count_key(d->is_scale), d->count);
    wire_pack_kv_int(pk, "ready", d->ready);
    wire_pack_kv_int(pk, "stopped", d->stopped);
    wire_pack_kv_int(pk, "elapsed_ms", d->elapsed_ms);
}

void proto_unpack_change_accepted(const msgpack_object *body, int is_scale, int64_t *n)
{
    *n = get_i(body, count_key(is_scale), 0);
}

void proto_unpack_change_started(const msgpack_object *body, int is_scale, struct proto_change_started *s)
{
    s->is_scale = is_scale;
    s->count = is_scale ? get_i(body, "count", 0) : 0;
    s->instances = get_i(body, "instances", 0);
    s->timeout_ms = get_i(body, "timeout_ms", 0);
}

void proto_unpack_change_done(const msgpack_object *body, int is_scale, struct proto_change_done *d)
{
    d->is_scale = is_scale;
    d->count = get_i(body, count_key(is_scale), 0);
    d->ready = get_i(body, "ready", 0);
    d->stopped = get_i(body, "stopped", 0);
    d->elapsed_ms = get_i(body, "elapsed_ms", 0);
}

/* ---------------------------------------------------------------- stop */

void proto_pack_stop(msgpack_packer *pk, int64_t id, const struct proto_stop *req)
{
    msgpack_pack_map(pk, 2);
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_int(pk, "force", req->force); /* an integer, as the CLI always sent it */
}

void proto_unpack_stop(const msgpack_object *body, struct proto_stop *req)
{
    int64_t force = 0;
    req->force = (wire_get_int(body, "force", &force) == 0 && force) || get_bool(body, "force");
}

void proto_pack_stop_reply(msgpack_packer *pk, const msgpack_object *id, int64_t pid)
{
    msgpack_pack_map(pk, 2);
    proto_pack_id(pk, id);
    wire_pack_kv_int(pk, "pid", pid);
}

void proto_unpack_stop_reply(const msgpack_object *body, int64_t *pid)
{
    *pid = get_i(body, "pid", 0);
}

/* ---- start_service / stop_service ----------------------------------------------------- */

void proto_pack_service_request(msgpack_packer *pk, int64_t id, const struct proto_service_request *req)
{
    msgpack_pack_map(pk, 2 + (req->force != 0));
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_str(pk, "service", req->service);
    if (req->force)
        wire_pack_kv_bool(pk, "force", 1);
}

int proto_unpack_service_request(const msgpack_object *body, struct proto_service_request *req, char *buf,
                                 size_t cap, char *err, size_t errlen)
{
    memset(req, 0, sizeof *req);
    if (wire_get_str(body, "service", buf, cap) < 0 || !buf[0]) {
        snprintf(err, errlen, "needs 'service' (a service name)");
        return -1;
    }
    req->service = buf;
    req->force = get_bool(body, "force");
    return 0;
}

void proto_pack_service_reply(msgpack_packer *pk, const msgpack_object *id, const struct proto_service_reply *r)
{
    msgpack_pack_map(pk, 3);
    proto_pack_id(pk, id);
    wire_pack_kv_str(pk, "services", r->services ? r->services : "");
    wire_pack_kv_int(pk, "instances", r->instances);
}

void proto_unpack_service_reply(const msgpack_object *body, struct proto_service_reply *r, char *buf, size_t cap)
{
    if (cap)
        buf[0] = '\0';
    if (wire_get_str(body, "services", buf, cap) < 0 && cap)
        buf[0] = '\0';
    r->services = buf;
    r->instances = get_i(body, "instances", 0);
}

/* ---------------------------------------------------------------- reload */

void proto_pack_reload_reply(msgpack_packer *pk, const msgpack_object *id, const char *const *changes,
                             size_t count)
{
    msgpack_pack_map(pk, 2);
    proto_pack_id(pk, id);
    pack_str_list(pk, "changes", changes, count);
}

size_t proto_unpack_reload_reply(const msgpack_object *body, struct proto_status_str *changes, size_t cap)
{
    const msgpack_object *list = wire_map_get(body, "changes");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY)
        return 0;
    size_t n = 0;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *o = &list->via.array.ptr[i];
        if (o->type != MSGPACK_OBJECT_STR)
            continue;
        if (n < cap)
            changes[n] = (struct proto_status_str){.ptr = o->via.str.size ? o->via.str.ptr : "",
                                                   .len = o->via.str.size};
        n++;
    }
    return n;
}
