/* msg_control: the bodies of the node's own requests and their replies (docs/protocol.md,
 * "Requests of the node itself"): status, restart, scale, stop, ping, and the shared `ok`,
 * `started` and `error` replies. Each body's encoder and decoder sit side by side; included
 * through proto/proto.h. */
#ifndef DEVNODE_PROTO_MSG_CONTROL_H
#define DEVNODE_PROTO_MSG_CONTROL_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/* ---- shared pieces ------------------------------------------------------------------- */
/* A request's id as it came (any msgpack value), echoed by every reply; NULL packs nil. */
void proto_pack_id(msgpack_packer *pk, const msgpack_object *id);
/* The id of a request body, or NULL. */
const msgpack_object *proto_request_id(const msgpack_object *body);

/* A request that carries only {id}: status, ping, bus_status. */
void proto_pack_request_id(msgpack_packer *pk, int64_t id);

/* `ok` {id}: the reply of requests that only need an ack (ping, unregister, untail, ...). */
void proto_pack_ok(msgpack_packer *pk, const msgpack_object *id);

/* `error` {id, message}. */
void proto_pack_error(msgpack_packer *pk, const msgpack_object *id, const char *message);
/* The message of an `error` body, copied NUL-terminated ("(no message)" when absent). */
void proto_unpack_error(const msgpack_object *body, char *message, size_t cap);

/* ---- status -------------------------------------------------------------------------- */
/* The reply is packed as a stream, so the node packs straight from its own structures with
 * no copy: head (the node), each socket, then services_begin, and per service: service,
 * proto_pack_status_socket_name per socket of it, instances_begin, each instance. */
struct proto_status_node {
    int64_t pid;
    const char *endpoint, *config, *run_dir;
    int64_t uptime_ms;
    double cpu_percent;
    int64_t rss_kib;
    int stopping;
    int64_t malformed_messages;
};
struct proto_status_socket {
    const char *name, *address;
    int64_t port;          /* -1 for a unix socket */
    int64_t waiting;       /* -1: nil (unix socket) */
    const char *warning;   /* NULL: nil */
};
/* A service's `watch:` (node/watch.h): what it watches and what the watch did. */
struct proto_status_watch {
    const char *const *paths;
    size_t path_count;
    const char *const *ignore;
    size_t ignore_count;
    int64_t debounce_ms;
    int64_t folders;       /* folders with an inotify watch for it */
    const char *state;     /* idle, debouncing, waiting, restarting */
    int pending;           /* one more restart follows the running one */
    int64_t events, restarts; /* events: file events that matched */
    const char *last_path; /* NULL: no change yet (last_change nil) */
    int64_t last_change_ago_ms;
    int limit_reached;     /* the kernel's inotify watch limit left folders unwatched */
};
struct proto_status_service {
    const char *name;
    int64_t desired, running;
    const struct proto_status_watch *watch; /* NULL: packed as nil */
};
struct proto_status_exit {
    int64_t code;          /* when signal is NULL */
    const char *signal;    /* "TERM", or NULL when it exited with a code */
};
/* An instance's liveness check (`live:`); absent (nil) when it has none. */
struct proto_status_health {
    const char *probe;     /* "GET http://127.0.0.1:5001/healthz" */
    const char *result;    /* pending (no answer since it became ready), ok, missed */
    int64_t failures;      /* misses in a row that counted */
    int64_t failures_max;  /* live.failures: a restart at this many */
    int64_t not_counted;   /* misses while the node held its output back */
    const char *last_error; /* NULL: nil */
};
struct proto_status_instance {
    int64_t index;
    const char *state;     /* starting, running, backoff, stopping, stopped, exited, failed */
    int64_t pid;           /* 0: no process */
    int64_t restarts, uptime_ms;
    double cpu_percent;
    int64_t rss_kib;
    int has_exit;          /* last_exit is set (else nil) */
    struct proto_status_exit last_exit;
    const char *failure;   /* NULL: nil */
    const char *command;
    int ready;
    const char *waiting;   /* state `waiting`: why ("waiting for Migrate: exited 1"); NULL: nil */
    const char *port;      /* PORT as given: a number is sent as one, other text as text, "" nil */
    const struct proto_status_health *health; /* NULL: nil */
};

void proto_pack_status_head(msgpack_packer *pk, const msgpack_object *id, const struct proto_status_node *node,
                            size_t socket_count);
void proto_pack_status_socket(msgpack_packer *pk, const struct proto_status_socket *s);
void proto_pack_status_services_begin(msgpack_packer *pk, size_t service_count);
void proto_pack_status_service(msgpack_packer *pk, const struct proto_status_service *svc, size_t socket_count);
void proto_pack_status_socket_name(msgpack_packer *pk, const char *name);
void proto_pack_status_instances_begin(msgpack_packer *pk, size_t instance_count);
void proto_pack_status_instance(msgpack_packer *pk, const struct proto_status_instance *inst);

/* A decoded status reply. Strings point into the message the body came from (keep it until
 * proto_status_free); the arrays are allocated. Absent fields read as 0 / NULL. */
struct proto_status_str {
    const char *ptr;       /* NULL: absent or nil */
    size_t len;
};
struct proto_status_socket_view {
    struct proto_status_str name, address, warning;
    int64_t port, waiting; /* waiting -1: nil */
};
struct proto_status_instance_view {
    int64_t index, pid, restarts, uptime_ms, rss_kib;
    double cpu_percent;
    struct proto_status_str state, failure, command, waiting;
    int ready;
    int has_exit, exit_has_code;
    int64_t exit_code;
    struct proto_status_str exit_signal;
    int port_is_int;
    int64_t port_int;
    struct proto_status_str port; /* when it is text */
    int has_health;
    struct proto_status_str health_probe, health_result, health_error;
    int64_t health_failures, health_failures_max, health_not_counted;
};
struct proto_status_watch_view {
    int present;           /* the service has watch: */
    struct proto_status_str *paths;
    size_t path_count;
    struct proto_status_str state, last_path;
    int64_t debounce_ms, folders, events, restarts, last_change_ago_ms;
    int pending, limit_reached;
};
struct proto_status_service_view {
    struct proto_status_str name;
    int64_t desired, running;
    struct proto_status_watch_view watch;
    struct proto_status_str *sockets;  /* names */
    size_t socket_count;
    struct proto_status_instance_view *instances;
    size_t instance_count;
};
struct proto_status {
    int64_t pid, uptime_ms, rss_kib, malformed_messages;
    double cpu_percent;
    int stopping;
    struct proto_status_str endpoint, config, run_dir;
    struct proto_status_socket_view *sockets;
    size_t socket_count;
    struct proto_status_service_view *services;
    size_t service_count;
};
/* 0, or -1 when body is not a status reply (no node map or no services array); entries of
 * the wrong shape are skipped. Free with proto_status_free either way. */
int proto_unpack_status(const msgpack_object *body, struct proto_status *out);
void proto_status_free(struct proto_status *st);
/* Copies a decoded string NUL-terminated, cut to cap-1 bytes; "" for NULL. */
void proto_status_str_copy(struct proto_status_str s, char *out, size_t cap);

/* "Web.2" -> "Web" and 2 in place; index -1 when target names no instance. */
void proto_split_target(char *target, int *index);

/* ---- restart / scale ------------------------------------------------------------------ */
struct proto_restart {
    const char *target;    /* "Service" or "Service.N"; decoded: the service alone */
    int index;             /* decoded: N, or -1 for the whole service (not packed) */
    int wait;              /* answer `started`, then `ok` or `error` once it is over */
};
void proto_pack_restart(msgpack_packer *pk, int64_t id, const struct proto_restart *req);
/* The target's service is copied into buf and its instance put in index. 0, or -1 with a
 * line for an `error` reply in err. */
int proto_unpack_restart(const msgpack_object *body, struct proto_restart *req, char *buf, size_t cap, char *err,
                         size_t errlen);

struct proto_scale {
    const char *service;
    int64_t count;         /* 0 .. PROTO_SCALE_MAX */
    int wait;
};
/* wait 0 packs no `wait` key (what the dashboard sends). */
void proto_pack_scale(msgpack_packer *pk, int64_t id, const struct proto_scale *req);
int proto_unpack_scale(const msgpack_object *body, struct proto_scale *req, char *buf, size_t cap, char *err,
                       size_t errlen);

/* A restart's or scale's replies. `count_key` tells them apart: restart answers with
 * `instances`, scale with `count` (and the number of instances that start or stop). */
struct proto_change_started {
    int is_scale;
    int64_t count;         /* scale: the count asked for */
    int64_t instances;     /* how many instances start, stop or restart */
    int64_t timeout_ms;    /* the longest it can take */
};
struct proto_change_done {
    int is_scale;
    int64_t count;         /* restart: instances restarted; scale: the count */
    int64_t ready, stopped, elapsed_ms;
};
/* `ok` at once without wait: {id, instances} (restart) or {id, count} (scale). */
void proto_pack_change_accepted(msgpack_packer *pk, const msgpack_object *id, int is_scale, int64_t n);
void proto_pack_change_started(msgpack_packer *pk, const msgpack_object *id, const struct proto_change_started *s);
void proto_pack_change_done(msgpack_packer *pk, const msgpack_object *id, const struct proto_change_done *d);
/* The client side; absent fields read as 0. */
void proto_unpack_change_accepted(const msgpack_object *body, int is_scale, int64_t *n);
void proto_unpack_change_started(const msgpack_object *body, int is_scale, struct proto_change_started *s);
void proto_unpack_change_done(const msgpack_object *body, int is_scale, struct proto_change_done *d);

/* ---- stop ----------------------------------------------------------------------------- */
struct proto_stop {
    int force;             /* SIGKILL at once */
};
void proto_pack_stop(msgpack_packer *pk, int64_t id, const struct proto_stop *req);
void proto_unpack_stop(const msgpack_object *body, struct proto_stop *req);
/* `ok` {id, pid}: the node's pid, so the client can wait for it to go. */
void proto_pack_stop_reply(msgpack_packer *pk, const msgpack_object *id, int64_t pid);
void proto_unpack_stop_reply(const msgpack_object *body, int64_t *pid);

/* ---- start_service / stop_service ----------------------------------------------------- */
/* `devnode start NAME` and `devnode stop NAME` on a running node (docs/dependencies.md). */
struct proto_service_request {
    const char *service;
    int force;             /* stop_service: SIGKILL at once (not packed when 0) */
};
void proto_pack_service_request(msgpack_packer *pk, int64_t id, const struct proto_service_request *req);
/* The service is copied into buf. 0, or -1 with a line for an `error` reply in err. */
int proto_unpack_service_request(const msgpack_object *body, struct proto_service_request *req, char *buf,
                                 size_t cap, char *err, size_t errlen);
/* `ok` {id, services, instances}: start_service names the services it starts ("Db, Api": in
 * start order, "" when all were up), stop_service its own name; instances: stop_service's
 * instances that had a process (start_service: how many services start). */
struct proto_service_reply {
    const char *services;
    int64_t instances;
};
void proto_pack_service_reply(msgpack_packer *pk, const msgpack_object *id, const struct proto_service_reply *r);
/* services is copied into buf ("" when absent). */
void proto_unpack_service_reply(const msgpack_object *body, struct proto_service_reply *r, char *buf, size_t cap);
/* ---- reload -------------------------------------------------------------------------- */
/* The request is {id} (proto_pack_request_id). Its `ok` reply {id, changes}: one line per
 * service the reload changed, then the count of unchanged ones ("Web: rolled (command
 * changed)", "3 services unchanged"); a config that failed comes back as `error`. */
void proto_pack_reload_reply(msgpack_packer *pk, const msgpack_object *id, const char *const *changes,
                             size_t count);
/* Fills up to cap lines (pointing into body) and returns how many the reply holds; entries
 * that are not strings are skipped. */
size_t proto_unpack_reload_reply(const msgpack_object *body, struct proto_status_str *changes, size_t cap);

#endif
