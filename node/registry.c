/* registry: an in-memory table, small (one entry per serving process), so lookups are
 * linear scans. A register message is validated field by field before anything is kept. */
#include "node/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"

#define REGISTRY_MAX_METHODS PROTO_REGISTER_METHODS_MAX
#define REGISTRY_MAX_PARAMS PROTO_REGISTER_PARAMS_MAX

static char *obj_strdup(const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size > 4096)
        return NULL;
    return xstrndup(o->via.str.ptr, o->via.str.size);
}

static void entry_free(struct registry_entry *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->method_count; i++) {
        free(e->methods[i].name);
        for (size_t j = 0; j < e->methods[i].param_count; j++)
            free(e->methods[i].params[j]);
        free(e->methods[i].params);
        free(e->methods[i].help);
    }
    free(e->methods);
    free(e->service);
    free(e->endpoint);
    free(e);
}

static void make_identity(struct registry_entry *e)
{
    /* FNV-1a over the fields, twice with different seeds: stable and 128 bits wide. */
    char key[1024];
    snprintf(key, sizeof key, "%s|%d|%d|%s", e->service, e->instance, (int)e->pid, e->endpoint);
    uint64_t h1 = 1469598103934665603ull, h2 = 0x9e3779b97f4a7c15ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h1 = (h1 ^ *p) * 1099511628211ull;
        h2 = (h2 ^ *p) * 0x100000001b3ull + 7;
    }
    snprintf(e->identity, sizeof e->identity, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
}

/* Parses methods: [{name, params: [str], help}]. Returns -1 on a malformed list. */
static int parse_methods(struct registry_entry *e, const msgpack_object *list)
{
    if (!list || list->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > REGISTRY_MAX_METHODS)
        return -1;
    e->methods = xcalloc(list->via.array.size ? list->via.array.size : 1, sizeof *e->methods);
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *m = &list->via.array.ptr[i];
        struct registry_method *rm = &e->methods[e->method_count];
        rm->name = obj_strdup(wire_map_get(m, "name"));
        if (!rm->name)
            return -1;
        e->method_count++;
        const msgpack_object *help = wire_map_get(m, "help");
        rm->help = help && help->type == MSGPACK_OBJECT_STR ? obj_strdup(help) : xstrdup("");
        const msgpack_object *params = wire_map_get(m, "params");
        if (!params || params->type == MSGPACK_OBJECT_NIL)
            continue;
        if (params->type != MSGPACK_OBJECT_ARRAY || params->via.array.size > REGISTRY_MAX_PARAMS)
            return -1;
        rm->params = xcalloc(params->via.array.size ? params->via.array.size : 1, sizeof *rm->params);
        for (uint32_t j = 0; j < params->via.array.size; j++) {
            rm->params[j] = obj_strdup(&params->via.array.ptr[j]);
            if (!rm->params[j])
                return -1;
            rm->param_count++;
        }
    }
    return 0;
}

static ssize_t registry_find(const struct registry *reg, pid_t pid)
{
    for (size_t i = 0; i < reg->count; i++)
        if (reg->entries[i]->pid == pid)
            return (ssize_t)i;
    return -1;
}

static void registry_remove_at(struct registry *reg, size_t i, const char *why)
{
    struct registry_entry *e = reg->entries[i];
    loghub_node_line(reg->hub, getpid(), LOG_LEVEL_INFO, "%s.%d unregistered (pid %d, %s)", e->service,
                     e->instance, (int)e->pid, why);
    entry_free(e);
    memmove(&reg->entries[i], &reg->entries[i + 1], (reg->count - i - 1) * sizeof *reg->entries);
    reg->count--;
}

static void handle_register(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct registry *reg = ctx;
    struct registry_entry *e = xcalloc(1, sizeof *e);
    struct proto_register_view req;
    char err[160];
    if (proto_unpack_register(msg->body, &req, err, sizeof err) < 0) {
        entry_free(e);
        control_reply_error(ctl, msg, err);
        return;
    }
    e->service = obj_strdup(req.service);
    e->endpoint = obj_strdup(req.endpoint);
    e->pid = (pid_t)req.pid;
    e->instance = (int)req.instance;
    if (!e->service || !e->endpoint || parse_methods(e, req.methods) < 0) {
        entry_free(e); /* proto checked the shapes; this is only a guard */
        control_reply_error(ctl, msg, "register: methods must be a list of {name, params: [str], help}");
        return;
    }
    make_identity(e);
    memcpy(e->routing, msg->identity, msg->identity_len);
    e->routing_len = msg->identity_len;
    e->registered_ms = e->last_heartbeat_ms = uv_now(reg->loop);
    ssize_t old = registry_find(reg, e->pid);
    if (old >= 0) {
        entry_free(reg->entries[old]);
        reg->entries[old] = e;
    } else {
        if (reg->count == reg->cap) {
            reg->cap = reg->cap ? reg->cap * 2 : 16;
            reg->entries = xrealloc(reg->entries, reg->cap * sizeof *reg->entries);
        }
        reg->entries[reg->count++] = e;
        loghub_node_line(reg->hub, getpid(), LOG_LEVEL_INFO, "%s.%d registered (pid %d, %zu method%s, %s)",
                         e->service, e->instance, (int)e->pid, e->method_count,
                         e->method_count == 1 ? "" : "s", e->endpoint);
    }
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_register_reply(&b.pk, proto_request_id(msg->body), e->identity);
    control_reply(ctl, msg, PROTO_OK, &b);
    wire_body_free(&b);
}

static void handle_unregister(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct registry *reg = ctx;
    int64_t pid;
    if (proto_unpack_pid(msg->body, &pid) < 0) {
        control_reply_error(ctl, msg, "unregister needs pid");
        return;
    }
    ssize_t i = registry_find(reg, (pid_t)pid);
    if (i >= 0)
        registry_remove_at(reg, (size_t)i, "unregistered itself");
    control_reply_ok(ctl, msg);
}

static int entry_order(const void *a, const void *b)
{
    const struct registry_entry *x = *(const struct registry_entry *const *)a;
    const struct registry_entry *y = *(const struct registry_entry *const *)b;
    int c = strcmp(x->service, y->service);
    if (c)
        return c;
    if (x->instance != y->instance)
        return x->instance < y->instance ? -1 : 1;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static void pack_entry(msgpack_packer *pk, const struct registry_entry *e, uint64_t now)
{
    struct proto_discover_entry entry = {.identity = e->identity,
                                         .instance = e->instance,
                                         .pid = e->pid,
                                         .endpoint = e->endpoint,
                                         .registered_ms = (int64_t)(now - e->registered_ms)};
    proto_pack_services_entry(pk, &entry);
    proto_pack_methods_begin(pk, e->method_count);
    for (size_t i = 0; i < e->method_count; i++) {
        const struct registry_method *m = &e->methods[i];
        struct proto_method out = {.name = m->name,
                                   .params = (const char *const *)m->params,
                                   .param_count = m->param_count,
                                   .help = m->help};
        proto_pack_method(pk, &out);
    }
}

static void handle_discover(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct registry *reg = ctx;
    char want[256], err[160];
    if (proto_unpack_discover(msg->body, want, sizeof want, err, sizeof err) < 0) {
        control_reply_error(ctl, msg, err);
        return;
    }
    struct registry_entry **sorted = xmalloc((reg->count ? reg->count : 1) * sizeof *sorted);
    size_t n = 0;
    for (size_t i = 0; i < reg->count; i++)
        if (!want[0] || strcmp(reg->entries[i]->service, want) == 0)
            sorted[n++] = reg->entries[i];
    qsort(sorted, n, sizeof *sorted, entry_order);
    size_t groups = 0;
    for (size_t i = 0; i < n; i++)
        groups += i == 0 || strcmp(sorted[i]->service, sorted[i - 1]->service) != 0;
    uint64_t now = uv_now(reg->loop);
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_services_head(&b.pk, proto_request_id(msg->body), groups);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && strcmp(sorted[j]->service, sorted[i]->service) == 0)
            j++;
        proto_pack_services_service(&b.pk, sorted[i]->service, j - i);
        for (size_t k = i; k < j; k++)
            pack_entry(&b.pk, sorted[k], now);
        i = j;
    }
    control_reply(ctl, msg, PROTO_SERVICES, &b);
    wire_body_free(&b);
    free(sorted);
}

void registry_heartbeat(struct registry *reg, pid_t pid)
{
    ssize_t i = registry_find(reg, pid);
    if (i >= 0)
        reg->entries[i]->last_heartbeat_ms = uv_now(reg->loop);
}

void registry_on_process_exit(struct registry *reg, pid_t pid)
{
    ssize_t i = registry_find(reg, pid);
    if (i >= 0)
        registry_remove_at(reg, (size_t)i, "process exited");
}

static void registry_on_expiry(uv_timer_t *timer)
{
    struct registry *reg = timer->data;
    /* Not the clock: a heartbeat still queued behind a flood of other messages is not late,
     * and a flood of the entry's own emits shows it alive as well as its heartbeat would. */
    uint64_t heard = control_heard_until_ms(reg->ctl);
    for (size_t i = 0; i < reg->count;) {
        const struct registry_entry *e = reg->entries[i];
        uint64_t last = e->last_heartbeat_ms, on_conn = control_last_heard_ms(reg->ctl, e->routing, e->routing_len);
        if (on_conn > last)
            last = on_conn;
        if (heard > last && heard - last > PROTO_REGISTRY_EXPIRY_MS)
            registry_remove_at(reg, i, "no heartbeat for 3 s");
        else
            i++;
    }
}

void registry_init(struct registry *reg, uv_loop_t *loop, struct loghub *hub, struct control *ctl)
{
    memset(reg, 0, sizeof *reg);
    reg->loop = loop;
    reg->hub = hub;
    reg->ctl = ctl;
    uv_timer_init(loop, &reg->expiry);
    reg->expiry.data = reg;
    uv_timer_start(&reg->expiry, registry_on_expiry, 1000, 1000);
    control_register(ctl, PROTO_REGISTER, handle_register, reg);
    control_register(ctl, PROTO_UNREGISTER, handle_unregister, reg);
    control_register(ctl, PROTO_DISCOVER, handle_discover, reg);
}

void registry_close(struct registry *reg)
{
    uv_close((uv_handle_t *)&reg->expiry, NULL);
    for (size_t i = 0; i < reg->count; i++)
        entry_free(reg->entries[i]);
    free(reg->entries);
    reg->entries = NULL;
    reg->count = reg->cap = 0;
}
