/* msg_registry: the registry's messages (docs/protocol.md, "Registry"): register, heartbeat,
 * unregister, discover and its `services` reply. Included through proto/proto.h. */
#ifndef DEVNODE_PROTO_MSG_REGISTRY_H
#define DEVNODE_PROTO_MSG_REGISTRY_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_REGISTER_METHODS_MAX 256
#define PROTO_REGISTER_PARAMS_MAX 64
#define PROTO_REGISTER_STR_MAX 4096   /* bytes of a name, endpoint, param or help */

/* One method a service serves: {name, params: [str], help}. */
struct proto_method {
    const char *name;
    const char *const *params;
    size_t param_count;
    int strip_optional_mark;  /* a param's trailing '?' (libdevnode's "optional") is not sent */
    const char *help;
};
/* Packs a methods array; as a stream (begin, then each method) for callers that build the
 * list from their own tables. */
void proto_pack_methods_begin(msgpack_packer *pk, size_t count);
void proto_pack_method(msgpack_packer *pk, const struct proto_method *m);

/* `register` {id, service, instance, pid, endpoint, methods}. The methods array follows
 * proto_pack_register_begin: proto_pack_methods_begin and proto_pack_method per method. */
struct proto_register {
    const char *service;
    int64_t instance;      /* DEVNODE_INSTANCE, -1 for a process the node did not start */
    int64_t pid;
    const char *endpoint;  /* where it serves RPC */
};
void proto_pack_register_begin(msgpack_packer *pk, int64_t id, const struct proto_register *r);
/* Node side. Strings point into the body (length-delimited, not NUL-terminated): copy them.
 * methods is the validated array (NULL when absent or nil): every item a map with a string
 * name, params absent, nil or at most PROTO_REGISTER_PARAMS_MAX strings (help: anything; the
 * node keeps it when it is a string).
 * 0, or -1 with a line for an `error` reply. */
struct proto_register_view {
    const msgpack_object *service, *endpoint; /* non-empty strings */
    int64_t instance, pid;
    const msgpack_object *methods;
};
int proto_unpack_register(const msgpack_object *body, struct proto_register_view *out, char *err, size_t errlen);
/* The reply `ok` {id, identity}. */
void proto_pack_register_reply(msgpack_packer *pk, const msgpack_object *id, const char *identity);
/* Copies the identity; "" when absent. */
void proto_unpack_register_reply(const msgpack_object *body, char *identity, size_t cap);

/* `heartbeat` {id, pid} and `unregister` {id, pid}. */
void proto_pack_heartbeat(msgpack_packer *pk, int64_t id, int64_t pid);
void proto_pack_unregister(msgpack_packer *pk, int64_t id, int64_t pid);
/* The pid of either; -1 when absent or not an integer. */
int proto_unpack_pid(const msgpack_object *body, int64_t *pid);

/* `discover` {id, service: nil | str}: service NULL asks for every service. */
void proto_pack_discover(msgpack_packer *pk, int64_t id, const char *service);
/* service "" when nil or absent. 0, or -1 with err. */
int proto_unpack_discover(const msgpack_object *body, char *service, size_t cap, char *err, size_t errlen);

/* The reply `services` {id, services: [{name, instances: [entry]}]}, packed as a stream:
 * head, then per service: service, its entries each followed by their methods. */
struct proto_discover_entry {
    const char *identity;
    int64_t instance, pid;
    const char *endpoint;
    int64_t registered_ms;  /* how long ago it registered */
};
void proto_pack_services_head(msgpack_packer *pk, const msgpack_object *id, size_t service_count);
void proto_pack_services_service(msgpack_packer *pk, const char *name, size_t instance_count);
/* Packs the entry up to its methods array, which proto_pack_methods_begin/method complete. */
void proto_pack_services_entry(msgpack_packer *pk, const struct proto_discover_entry *e);
/* The `services` array of the reply, or NULL. */
const msgpack_object *proto_services_array(const msgpack_object *body);
/* The `instances` array of the service named `name` in that array, or NULL. */
const msgpack_object *proto_services_instances(const msgpack_object *services, const char *name);

#endif
