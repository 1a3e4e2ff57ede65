/* server.c: serving RPC on the service's own ROUTER (methods, the lymph.* built-ins, argument
 * checks, REP/ERROR/NACK), binding it and registering it with the node. The loop that calls
 * in here is loop.c's; a call that waits (client.c) serves through dn_process_rpc too.
 * It must never let a handler's failure or a peer's bad frame take the process down. */
#include "lib/server.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/msgjson.h"

#define UNIX_PATH_MAX_BYTES (sizeof ((struct sockaddr_un *)0)->sun_path - 1)

static char *dn_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int valid_method_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 100)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.' || s[i] <= ' ' || s[i] > '~')
            return 0;
    return 1;
}

int devnode_add_method(struct devnode *dn, const char *name, const char *const *params,
                       const char *help, devnode_method_fn fn, void *ctx)
{
    if (!name || !valid_method_name(name) || !fn)
        return dn_fail(dn, DEVNODE_E_INVALID, "method name '%s' is not a word without dots", name ? name : "");
    if (dn->started)
        return dn_fail(dn, DEVNODE_E_INVALID, "add methods before devnode_start");
    for (size_t i = 0; i < dn->method_count; i++)
        if (strcmp(dn->methods[i].name, name) == 0)
            return dn_fail(dn, DEVNODE_E_INVALID, "method '%s' added twice", name);
    struct dn_method *grown = realloc(dn->methods, (dn->method_count + 1) * sizeof *grown);
    if (!grown)
        return dn_fail(dn, DEVNODE_E_INVALID, "out of memory");
    dn->methods = grown;
    struct dn_method *m = &dn->methods[dn->method_count];
    memset(m, 0, sizeof *m);
    m->name = dn_strdup(name);
    m->help = dn_strdup(help ? help : "");
    m->fn = fn;
    m->ctx = ctx;
    int failed = !m->name || !m->help;
    if (params) {
        size_t n = 0;
        while (params[n])
            n++;
        m->params = calloc(n + 1, sizeof *m->params);
        failed |= !m->params;
        for (size_t i = 0; m->params && i < n; i++)
            failed |= !(m->params[i] = dn_strdup(params[i]));
    }
    if (failed) { /* the library returns out of memory like any error: undo this method */
        free(m->name);
        free(m->help);
        for (char **p = m->params; p && *p; p++)
            free(*p);
        free(m->params);
        memset(m, 0, sizeof *m);
        return dn_fail(dn, DEVNODE_E_INVALID, "out of memory");
    }
    dn->method_count++;
    return 0;
}

/* ---- replies ------------------------------------------------------------------------ */

static void dn_reply(struct devnode *dn, const struct rpc_msg *req, enum rpc_type type, const char *trace_id)
{
    char id[RPC_ID_MAX + 1];
    snprintf(id, sizeof id, "%s%08llx", dn->call_prefix, (unsigned long long)++dn->call_counter);
    msgpack_sbuffer_clear(&dn->out_headers.sbuf);
    rpc_pack_headers(&dn->out_headers.pk, trace_id);
    /* DONTWAIT: a caller that went away must not stall us; ROUTER drops what it cannot route. */
    rpc_send(dn->router, req->routing, req->routing_len, id, type, req->id, dn->out_headers.sbuf.data,
             dn->out_headers.sbuf.size, dn->out.sbuf.data, dn->out.sbuf.size, ZMQ_DONTWAIT);
}

static void dn_reply_error(struct devnode *dn, const struct rpc_msg *req, enum rpc_type type,
                           const char *trace_id, const char *etype, const char *message)
{
    msgpack_sbuffer_clear(&dn->out.sbuf);
    rpc_pack_error_body(&dn->out.pk, etype, message);
    dn_reply(dn, req, type, trace_id);
}

/* ---- built-ins ---------------------------------------------------------------------- */

static void dn_pack_method(msgpack_packer *pk, const char *name, const char *const *params, const char *help)
{
    size_t n = 0;
    while (params && params[n])
        n++;
    /* the '?' is our notation for optional, not part of the name */
    struct proto_method m = {.name = name, .params = params, .param_count = n, .strip_optional_mark = 1, .help = help};
    proto_pack_method(pk, &m);
}

static void dn_pack_user_methods(struct devnode *dn, msgpack_packer *pk, int with_builtins)
{
    static const char *const ping_params[] = {"payload?", NULL};
    proto_pack_methods_begin(pk, dn->method_count + (with_builtins ? 3 : 0));
    for (size_t i = 0; i < dn->method_count; i++)
        dn_pack_method(pk, dn->methods[i].name, (const char *const *)dn->methods[i].params, dn->methods[i].help);
    if (!with_builtins)
        return;
    dn_pack_method(pk, "lymph.ping", ping_params, "Returns the payload");
    dn_pack_method(pk, "lymph.status", NULL, "Service, instance, pid, endpoint, uptime and requests served");
    dn_pack_method(pk, "lymph.inspect", NULL, "The methods of this service");
}

static void dn_serve_builtin(struct devnode *dn, const struct rpc_msg *req, const char *method,
                             const char *trace_id)
{
    msgpack_packer *pk = &dn->out.pk;
    msgpack_sbuffer_clear(&dn->out.sbuf);
    if (strcmp(method, "ping") == 0) {
        const msgpack_object *payload = wire_map_get(req->body, "payload");
        if (payload)
            msgpack_pack_object(pk, *payload);
        else
            msgpack_pack_nil(pk);
    } else if (strcmp(method, "status") == 0) {
        struct rpc_lymph_status st = {.service = dn->service,
                                      .instance = dn->instance,
                                      .pid = dn->pid,
                                      .endpoint = dn->rpc_endpoint,
                                      .identity = dn->identity[0] ? dn->identity : NULL,
                                      .uptime_ms = dn_now_ms() - dn->started_ms,
                                      .served = (int64_t)dn->served};
        rpc_pack_lymph_status(pk, &st);
    } else if (strcmp(method, "inspect") == 0) {
        rpc_pack_lymph_inspect_begin(pk);
        dn_pack_user_methods(dn, pk, 1);
    } else {
        char message[200];
        snprintf(message, sizeof message, "unknown method 'lymph.%.100s'", method);
        dn_reply_error(dn, req, RPC_NACK, trace_id, "UnknownMethod", message);
        return;
    }
    dn_reply(dn, req, RPC_REP, trace_id);
}

/* ---- methods ------------------------------------------------------------------------ */

/* Checks the keyword arguments against the declared params; 0, or -1 with why set. */
static int dn_check_args(const struct dn_method *m, const msgpack_object *args, char *why, size_t cap)
{
    if (!m->params)
        return 0;
    for (uint32_t i = 0; i < args->via.map.size; i++) {
        const msgpack_object *k = &args->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            snprintf(why, cap, "%s: argument names must be strings", m->name);
            return -1;
        }
        int known = 0;
        for (char **p = m->params; *p && !known; p++) {
            size_t len = strlen(*p);
            if (len && (*p)[len - 1] == '?')
                len--;
            known = k->via.str.size == len && memcmp(k->via.str.ptr, *p, len) == 0;
        }
        if (!known) {
            snprintf(why, cap, "%s() got an unexpected argument '%.*s'", m->name,
                     (int)(k->via.str.size > 64 ? 64 : k->via.str.size), k->via.str.ptr);
            return -1;
        }
    }
    for (char **p = m->params; *p; p++) {
        size_t len = strlen(*p);
        if (len && (*p)[len - 1] == '?')
            continue;
        if (!wire_map_get(args, *p)) {
            snprintf(why, cap, "%s() is missing the argument '%s'", m->name, *p);
            return -1;
        }
    }
    return 0;
}

static void dn_serve_one(struct devnode *dn, struct rpc_msg *req)
{
    if (req->type != RPC_REQ) {
        dn->malformed++; /* replies never come to a ROUTER we serve on */
        return;
    }
    char trace[DEVNODE_TRACE_ID_MAX + 1];
    if (req->trace_id[0])
        dn_trace_sanitize(trace, req->trace_id, strlen(req->trace_id));
    else
        trace[0] = '\0';
    if (!trace[0])
        rpc_new_trace_id(trace);
    dn->served++;

    const char *dot = strchr(req->subject, '.');
    if (!dot || dot == req->subject || !dot[1]) {
        dn_reply_error(dn, req, RPC_NACK, trace, "BadRequest", "subject must be Interface.method");
        return;
    }
    size_t iface_len = (size_t)(dot - req->subject);
    const char *method = dot + 1;
    if (req->body->type != MSGPACK_OBJECT_MAP) {
        dn_reply_error(dn, req, RPC_NACK, trace, "BadRequest", "the body must be a map of keyword arguments");
        return;
    }
    if (iface_len == 5 && memcmp(req->subject, "lymph", 5) == 0) {
        dn_serve_builtin(dn, req, method, trace);
        return;
    }
    const struct dn_method *m = NULL;
    if (iface_len == strlen(dn->service) && memcmp(req->subject, dn->service, iface_len) == 0)
        for (size_t i = 0; i < dn->method_count && !m; i++)
            if (strcmp(dn->methods[i].name, method) == 0)
                m = &dn->methods[i];
    if (!m) {
        char message[400];
        if (iface_len == strlen(dn->service) && memcmp(req->subject, dn->service, iface_len) == 0)
            snprintf(message, sizeof message, "%s has no method '%s'", dn->service, method);
        else
            snprintf(message, sizeof message, "no interface '%.*s' here (this is %s)", (int)iface_len,
                     req->subject, dn->service);
        dn_reply_error(dn, req, RPC_NACK, trace, "UnknownMethod", message);
        return;
    }
    char why[300];
    if (dn_check_args(m, req->body, why, sizeof why) < 0) {
        dn_reply_error(dn, req, RPC_ERROR, trace, "BadArguments", why);
        return;
    }
    json_t *args = msgjson_to_json(req->body);
    if (!args) {
        dn_reply_error(dn, req, RPC_ERROR, trace, "BadArguments", "arguments nest too deep");
        return;
    }

    /* The request's trace becomes the current one, so calls, emits and log lines the
     * handler makes carry it; the previous one is back afterwards. */
    char saved[DEVNODE_TRACE_ID_MAX + 1];
    memcpy(saved, dn->trace_id, sizeof saved);
    memcpy(dn->trace_id, trace, sizeof trace);
    struct devnode_error err = {0};
    dn->in_handler++;
    json_t *result = m->fn(dn, args, &err, m->ctx);
    dn->in_handler--;
    memcpy(dn->trace_id, saved, sizeof saved);
    json_decref(args);

    if (!result) {
        dn_reply_error(dn, req, RPC_ERROR, trace, err.type[0] ? err.type : "HandlerError",
                       err.message[0] ? err.message : "the handler failed");
        return;
    }
    msgpack_sbuffer_clear(&dn->out.sbuf);
    int rc = msgjson_pack(&dn->out.pk, result);
    json_decref(result);
    if (rc < 0) {
        dn_reply_error(dn, req, RPC_ERROR, trace, "HandlerError", "the result cannot be encoded");
        return;
    }
    dn_reply(dn, req, RPC_REP, trace);
}

int dn_process_rpc(struct devnode *dn)
{
    if (!dn->router)
        return 0;
    struct rpc_msg req;
    char why[160];
    enum wire_recv_result r = rpc_recv(dn->router, 1, &req, why, sizeof why);
    if (r == WIRE_MALFORMED) {
        dn->malformed++;
        dn_warn(dn, DEVNODE_WARNING, "dropped a malformed RPC message: %s", why);
        return 1;
    }
    if (r != WIRE_OK)
        return 0;
    dn_serve_one(dn, &req);
    rpc_msg_free(&req);
    return 1;
}

/* Callers that looked us up before we unregistered keep sending for as long as their cache
 * lives (DN_DISCOVER_TTL_MS): answer what comes until the endpoint has been quiet for
 * DN_DRAIN_QUIET_MS, and DN_DRAIN_MAX_MS at most, so a stop or restart loses no request that
 * was already on its way. */
void dn_drain_rpc(struct devnode *dn)
{
    if (dn->in_handler)
        return; /* a stop from inside a handler: no handler may run inside another */
    long long start = dn_now_ms(), quiet_since = start;
    while (dn->router) {
        long long now = dn_now_ms();
        if (now - quiet_since >= DN_DRAIN_QUIET_MS || now - start >= DN_DRAIN_MAX_MS)
            return;
        if (dn_process_rpc(dn)) {
            quiet_since = dn_now_ms();
            continue;
        }
        zmq_pollitem_t item = {.socket = dn->router, .events = ZMQ_POLLIN};
        long wait = (long)(DN_DRAIN_QUIET_MS - (now - quiet_since));
        if (zmq_poll(&item, 1, wait > 0 ? wait : 0) < 0 && errno != EINTR)
            return;
    }
}

/* ---- binding and registering ---------------------------------------------------------- */

/* Removes socket files of this service left by processes that died without stopping
 * (SIGKILL, crashes): `<Service>.<instance>.<pid>.sock` whose pid is gone. */
static void dn_sweep_stale(const struct devnode *dn, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t slen = strlen(dn->service);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, dn->service, slen) != 0 || n[slen] != '.')
            continue;
        int instance, pid, used = 0;
        if (sscanf(n + slen + 1, "%d.%d.sock%n", &instance, &pid, &used) != 2 || n[slen + 1 + used] != '\0')
            continue;
        if (pid > 0 && pid != dn->pid && kill(pid, 0) < 0 && errno == ESRCH) {
            char path[PATH_MAX];
            if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, n) < sizeof path)
                unlink(path);
        }
    }
    closedir(d);
}

static int dn_mkdir(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

/* With a remote registry callers may be on other machines: tcp on DEVNODE_IP (127.0.0.1 unless
 * the user named another: RPC has no authentication), a port the kernel picks, read back. */
static int dn_bind_tcp(struct devnode *dn)
{
    char want[96];
    snprintf(want, sizeof want, "tcp://%s:*", dn->ip);
    if (zmq_bind(dn->router, want) < 0)
        return dn_fail(dn, DEVNODE_E_INVALID, "cannot bind the RPC endpoint %s: %s", want, zmq_strerror(errno));
    size_t len = sizeof dn->rpc_endpoint;
    if (zmq_getsockopt(dn->router, ZMQ_LAST_ENDPOINT, dn->rpc_endpoint, &len) < 0) {
        dn->rpc_endpoint[0] = '\0';
        return dn_fail(dn, DEVNODE_E_INVALID, "cannot read back the RPC endpoint %s: %s", want, zmq_strerror(errno));
    }
    return 0;
}

/* Binds the ROUTER on <dir>/rpc/<Service>.<instance>.<pid>.sock, trying the run dir, then the
 * node's socket dir (short by construction), then /tmp/devnode-<uid>/: a unix socket path
 * must fit in 107 bytes. */
int dn_bind(struct devnode *dn)
{
    if (dn_remote(dn))
        return dn_bind_tcp(dn);
    char name[DN_NAME_MAX + 48];
    snprintf(name, sizeof name, "%s.%d.%d.sock", dn->service, dn->instance, (int)dn->pid);
    char dirs[3][PATH_MAX];
    int ndirs = 0;
    if (dn->run_dir[0])
        snprintf(dirs[ndirs++], PATH_MAX, "%s", dn->run_dir);
    if (strncmp(dn->node_endpoint, "ipc://", 6) == 0) {
        snprintf(dirs[ndirs], PATH_MAX, "%s", dn->node_endpoint + 6);
        char *slash = strrchr(dirs[ndirs], '/');
        if (slash && slash != dirs[ndirs]) {
            *slash = '\0';
            ndirs++;
        }
    }
    snprintf(dirs[ndirs++], PATH_MAX, "/tmp/devnode-%u", (unsigned)getuid());

    char tried[PATH_MAX] = "";
    for (int i = 0; i < ndirs; i++) {
        char dir[PATH_MAX + 8], path[PATH_MAX + 200];
        snprintf(dir, sizeof dir, "%s/rpc", dirs[i]);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (strlen(path) > UNIX_PATH_MAX_BYTES) {
            snprintf(tried, sizeof tried, "%s (too long for a unix socket)", path);
            continue;
        }
        if (i == ndirs - 1) {
            /* Shared /tmp: only a directory of our own, never one someone else planted. */
            struct stat st;
            if (dn_mkdir(dirs[i]) < 0 || lstat(dirs[i], &st) < 0 || !S_ISDIR(st.st_mode) ||
                st.st_uid != getuid()) {
                snprintf(tried, sizeof tried, "%s is not a directory of ours", dirs[i]);
                continue;
            }
        }
        if (dn_mkdir(dir) < 0) {
            snprintf(tried, sizeof tried, "%s: %s", dir, strerror(errno));
            continue;
        }
        dn_sweep_stale(dn, dir);
        snprintf(dn->rpc_endpoint, sizeof dn->rpc_endpoint, "ipc://%s", path);
        if (zmq_bind(dn->router, dn->rpc_endpoint) == 0)
            return 0;
        snprintf(tried, sizeof tried, "%s: %s", dn->rpc_endpoint, zmq_strerror(errno));
        dn->rpc_endpoint[0] = '\0';
    }
    return dn_fail(dn, DEVNODE_E_INVALID, "cannot bind the RPC endpoint: %s", tried);
}

int dn_register(struct devnode *dn)
{
    /* The remote registry is where callers look; the node still hears of us, for status. */
    int remote = dn_remote(dn);
    if (remote) {
        int rc = dn_remote_register(dn);
        if (rc < 0)
            return rc;
        if (!dn->node)
            return 0;
    }
    struct wire_body b;
    wire_body_init(&b);
    uint64_t id = dn_next_request_id(dn);
    struct proto_register r = {
        .service = dn->service, .instance = dn->instance, .pid = dn->pid, .endpoint = dn->rpc_endpoint};
    proto_pack_register_begin(&b.pk, (int64_t)id, &r);
    dn_pack_user_methods(dn, &b.pk, 0);
    struct dn_queued *reply = NULL;
    int rc = dn_node_request(dn, PROTO_REGISTER, &b, id, DN_NODE_TIMEOUT_MS, &reply);
    wire_body_free(&b);
    if (rc < 0)
        return rc;
    char identity[sizeof dn->identity];
    proto_unpack_register_reply(reply->msg.body, identity, sizeof identity);
    if (!remote) /* with a remote registry, the identity is the one it holds */
        memcpy(dn->identity, identity, sizeof identity);
    dn_queued_free(reply);
    dn->registered = 1;
    return 0;
}

void dn_server_free(struct devnode *dn)
{
    dn_remote_close(dn);
    for (size_t i = 0; i < dn->method_count; i++) {
        free(dn->methods[i].name);
        free(dn->methods[i].help);
        if (dn->methods[i].params) {
            for (char **p = dn->methods[i].params; *p; p++)
                free(*p);
            free(dn->methods[i].params);
        }
    }
    free(dn->methods);
    dn->methods = NULL;
    dn->method_count = 0;
    if (dn->router)
        zmq_close(dn->router);
    dn->router = NULL;
}
