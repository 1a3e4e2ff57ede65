/* msg_registry: encoders and decoders of the registry's messages, side by side. */
#include "proto/proto.h"

#include <stdio.h>
#include <string.h>

void proto_pack_methods_begin(msgpack_packer *pk, size_t count)
{
    msgpack_pack_array(pk, count);
}

void proto_pack_method(msgpack_packer *pk, const struct proto_method *m)
{
    msgpack_pack_map(pk, 3);
    wire_pack_kv_str(pk, "name", m->name);
    wire_pack_str(pk, "params");
    msgpack_pack_array(pk, m->param_count);
    for (size_t i = 0; i < m->param_count; i++) {
        size_t len = strlen(m->params[i]);
        if (m->strip_optional_mark && len && m->params[i][len - 1] == '?')
            len--;
        wire_pack_strn(pk, m->params[i], len);
    }
    wire_pack_kv_str(pk, "help", m->help);
}

void proto_pack_register_begin(msgpack_packer *pk, int64_t id, const struct proto_register *r)
{
    msgpack_pack_map(pk, 6);
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_str(pk, "service", r->service);
    wire_pack_kv_int(pk, "instance", r->instance);
    wire_pack_kv_int(pk, "pid", r->pid);
    wire_pack_kv_str(pk, "endpoint", r->endpoint);
    wire_pack_str(pk, "methods");
}

/* A string the node keeps: at most PROTO_REGISTER_STR_MAX bytes. */
static int kept_str(const msgpack_object *v)
{
    return v && v->type == MSGPACK_OBJECT_STR && v->via.str.size <= PROTO_REGISTER_STR_MAX;
}

/* ... that does not read as empty (the node keeps it as a C string). */
static int nonempty_str(const msgpack_object *v)
{
    return kept_str(v) && v->via.str.size > 0 && v->via.str.ptr[0] != '\0';
}

static int methods_valid(const msgpack_object *list)
{
    if (list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > PROTO_REGISTER_METHODS_MAX)
        return 0;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *m = &list->via.array.ptr[i];
        if (m->type != MSGPACK_OBJECT_MAP || !kept_str(wire_map_get(m, "name")))
            return 0;
        const msgpack_object *params = wire_map_get(m, "params");
        if (params && params->type != MSGPACK_OBJECT_NIL) {
            if (params->type != MSGPACK_OBJECT_ARRAY || params->via.array.size > PROTO_REGISTER_PARAMS_MAX)
                return 0;
            for (uint32_t j = 0; j < params->via.array.size; j++)
                if (!kept_str(&params->via.array.ptr[j]))
                    return 0;
        }
    }
    return 1;
}

int proto_unpack_register(const msgpack_object *body, struct proto_register_view *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->service = wire_map_get(body, "service");
    out->endpoint = wire_map_get(body, "endpoint");
    out->instance = -1;
    wire_get_int(body, "instance", &out->instance);
    if (!nonempty_str(out->service) || !nonempty_str(out->endpoint) || wire_get_int(body, "pid", &out->pid) < 0 ||
        out->pid <= 0 || out->instance < -1 || out->instance > 1000000) {
        snprintf(err, errlen, "register needs service, endpoint (strings), pid (> 0) and instance");
        return -1;
    }
    const msgpack_object *methods = wire_map_get(body, "methods");
    if (methods && methods->type != MSGPACK_OBJECT_NIL) {
        if (!methods_valid(methods)) {
            snprintf(err, errlen, "register: methods must be a list of {name, params: [str], help}");
            return -1;
        }
        out->methods = methods;
    }
    return 0;
}

void proto_pack_register_reply(msgpack_packer *pk, const msgpack_object *id, const char *identity)
{
    msgpack_pack_map(pk, 2);
    proto_pack_id(pk, id);
    wire_pack_kv_str(pk, "identity", identity);
}

void proto_unpack_register_reply(const msgpack_object *body, char *identity, size_t cap)
{
    if (wire_get_str(body, "identity", identity, cap) < 0)
        identity[0] = '\0';
}

static void pack_id_pid(msgpack_packer *pk, int64_t id, int64_t pid)
{
    msgpack_pack_map(pk, 2);
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_int(pk, "pid", pid);
}

void proto_pack_heartbeat(msgpack_packer *pk, int64_t id, int64_t pid)
{
    pack_id_pid(pk, id, pid);
}

void proto_pack_unregister(msgpack_packer *pk, int64_t id, int64_t pid)
{
    pack_id_pid(pk, id, pid);
}

int proto_unpack_pid(const msgpack_object *body, int64_t *pid)
{
    if (wire_get_int(body, "pid", pid) < 0) {
        *pid = -1;
        return -1;
    }
    return 0;
}

void proto_pack_discover(msgpack_packer *pk, int64_t id, const char *service)
{
    msgpack_pack_map(pk, 2);
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_str(pk, "service", service);
}

int proto_unpack_discover(const msgpack_object *body, char *service, size_t cap, char *err, size_t errlen)
{
    service[0] = '\0';
    const msgpack_object *svc = wire_map_get(body, "service");
    if (svc && svc->type != MSGPACK_OBJECT_NIL && wire_get_str(body, "service", service, cap) < 0) {
        snprintf(err, errlen, "discover: service must be a string or nil");
        return -1;
    }
    return 0;
}

void proto_pack_services_head(msgpack_packer *pk, const msgpack_object *id, size_t service_count)
{
    msgpack_pack_map(pk, 2);
    proto_pack_id(pk, id);
    wire_pack_str(pk, "services");
    msgpack_pack_array(pk, service_count);
}

void proto_pack_services_service(msgpack_packer *pk, const char *name, size_t instance_count)
{
    msgpack_pack_map(pk, 2);
    wire_pack_kv_str(pk, "name", name);
    wire_pack_str(pk, "instances");
    msgpack_pack_array(pk, instance_count);
}

void proto_pack_services_entry(msgpack_packer *pk, const struct proto_discover_entry *e)
{
    msgpack_pack_map(pk, 6);
    wire_pack_kv_str(pk, "identity", e->identity);
    wire_pack_kv_int(pk, "instance", e->instance);
    wire_pack_kv_int(pk, "pid", e->pid);
    wire_pack_kv_str(pk, "endpoint", e->endpoint);
    wire_pack_kv_int(pk, "registered_ms", e->registered_ms);
    wire_pack_str(pk, "methods");
}

const msgpack_object *proto_services_array(const msgpack_object *body)
{
    const msgpack_object *v = wire_map_get(body, "services");
    return v && v->type == MSGPACK_OBJECT_ARRAY ? v : NULL;
}

const msgpack_object *proto_services_instances(const msgpack_object *services, const char *name)
{
    const msgpack_object *found = NULL;
    for (uint32_t i = 0; services && i < services->via.array.size; i++) {
        const msgpack_object *s = &services->via.array.ptr[i];
        if (s->type == MSGPACK_OBJECT_MAP && wire_str_eq(wire_map_get(s, "name"), name))
            found = wire_map_get(s, "instances");
    }
    return found && found->type == MSGPACK_OBJECT_ARRAY ? found : NULL;
}
