/* workerenv: the environment a worker process starts with: the node's own (minus its
 * socket-activation variables), the config's env:, and what devnode tells every worker
 * (DEVNODE_*, LYMPH_*, LISTEN_*, PORT, NOTIFY_SOCKET). It builds a list; it never spawns. */
#include "node/workerenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "node/pyclient.h"
#include "node/spawn.h"
#include "node/supervisor.h"

extern char **environ;

static void env_set(struct env_list *env, const char *key, const char *value)
{
    size_t klen = strlen(key);
    char *entry;
    if (asprintf(&entry, "%s=%s", key, value) < 0)
        abort();
    for (size_t i = 0; i < env->count; i++) {
        if (strncmp(env->items[i], key, klen) == 0 && env->items[i][klen] == '=') {
            free(env->items[i]);
            env->items[i] = entry;
            return;
        }
    }
    if (env->count + 2 > env->cap) {
        env->cap = env->cap ? env->cap * 2 : 64;
        env->items = xrealloc(env->items, env->cap * sizeof *env->items);
    }
    env->items[env->count++] = entry;
    env->items[env->count] = NULL;
}

void workerenv_free(struct env_list *env)
{
    for (size_t i = 0; i < env->count; i++)
        free(env->items[i]);
    free(env->items);
}

/* The socket-activation variables in every dialect a server may read: systemd's
 * LISTEN_FDS (LISTEN_PID is filled in by spawn with the child's own pid) and lymph's
 * port->fd JSON. PORT is instance_port_env's. A command that names $(socket.X.fd) has
 * picked its socket: it gets no LISTEN_* (gunicorn would take fd 3 from both and fail with
 * EBADF); lymph's JSON stays, a lookup by port that takes nothing twice. */
static void instance_socket_env(const struct service *svc, struct env_list *env)
{
    if (svc->socket_count == 0)
        return;
    char count[16], names[1024] = "", lymph[1024] = "{", item[64];
    snprintf(count, sizeof count, "%zu", svc->socket_count);
    for (size_t i = 0; i < svc->socket_count; i++) {
        const struct bound_socket *bs = svc->sockets[i];
        if (i)
            strncat(names, ":", sizeof names - strlen(names) - 1);
        strncat(names, bs->cfg->name, sizeof names - strlen(names) - 1);
        if (bs->port >= 0) {
            snprintf(item, sizeof item, "%s\"%d\": %zu", lymph[1] ? ", " : "", bs->port, 3 + i);
            strncat(lymph, item, sizeof lymph - strlen(lymph) - 1);
        }
    }
    strncat(lymph, "}", sizeof lymph - strlen(lymph) - 1);
    if (!sockets_command_names_fd(svc->cfg->command)) {
        env_set(env, "LISTEN_FDS", count);
        env_set(env, "LISTEN_PID", SPAWN_LISTEN_PID_SLOT + strlen("LISTEN_PID="));
        env_set(env, "LISTEN_FDNAMES", names);
    }
    env_set(env, "LYMPH_SHARED_SOCKET_FDS", lymph);
}

/* PORT, remembered in inst->port for `status`: the user's env: PORT wins; a service with
 * sockets gets its first TCP socket's port (a server that binds $PORT itself would find it
 * taken: it must use the passed socket); one without gets its own from its block. */
static void instance_port_env(struct instance *inst, struct env_list *env)
{
    const struct service *svc = inst->service;
    const char *own = config_service_env(svc->cfg, "PORT");
    int port = -1;
    inst->port[0] = '\0';
    if (own) {
        snprintf(inst->port, sizeof inst->port, "%s", own);
        return; /* already in env, with the rest of env: */
    }
    if (svc->socket_count) {
        for (size_t i = 0; i < svc->socket_count && port < 0; i++)
            port = svc->sockets[i]->port;
    } else {
        port = config_block_port(svc->cfg, inst->index);
    }
    if (port < 0)
        return;
    snprintf(inst->port, sizeof inst->port, "%d", port);
    env_set(env, "PORT", inst->port);
}

void workerenv_build(struct instance *inst, struct env_list *env)
{
    struct supervisor *sup = inst->sup;
    const struct config_service *cfg = inst->service->cfg;
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char key[256];
        size_t klen = (size_t)(eq - *e);
        if (klen >= sizeof key)
            continue;
        memcpy(key, *e, klen);
        key[klen] = '\0';
        /* The node's own socket-activation variables belong to the node, not its workers. */
        if (!strcmp(key, "LISTEN_FDS") || !strcmp(key, "LISTEN_PID") || !strcmp(key, "LISTEN_FDNAMES"))
            continue;
        env_set(env, key, eq + 1);
    }
    env_set(env, "PYTHONUNBUFFERED", "1");
    /* backends: over the node's own environment; a service's env: may still say otherwise. */
    const struct config_backends *backends = sup->cfg ? &sup->cfg->backends : NULL;
    if (backends && backends->registry)
        env_set(env, "DEVNODE_REGISTRY", backends->registry);
    if (backends && backends->events)
        env_set(env, "DEVNODE_EVENTS", backends->events);
    if (backends && backends->ip)
        env_set(env, "DEVNODE_IP", backends->ip);
    for (size_t i = 0; i < cfg->env_count; i++)
        env_set(env, cfg->env[i].name, cfg->env[i].value);
    char index[16];
    snprintf(index, sizeof index, "%d", inst->index);
    env_set(env, "DEVNODE_SERVICE", cfg->name);
    env_set(env, "DEVNODE_INSTANCE", index);
    env_set(env, "DEVNODE_ENDPOINT", sup->endpoint);
    env_set(env, "DEVNODE_RUN_DIR", sup->run_dir);
    env_set(env, "LYMPH_SERVICE_NAME", cfg->name);
    env_set(env, "LYMPH_NODE", sup->endpoint);
    env_set(env, "LYMPH_NODE_IP", "127.0.0.1");
    /* Python services find the devnode package beside this binary, after what the user set. */
    char pythonpath[PYCLIENT_PYTHONPATH_MAX];
    if (pyclient_pythonpath(env->items, pythonpath))
        env_set(env, "PYTHONPATH", pythonpath);
    instance_socket_env(inst->service, env);
    instance_port_env(inst, env);
    if (cfg->ready.kind == READY_NOTIFY && sup->notify.fd >= 0)
        env_set(env, "NOTIFY_SOCKET", sup->notify.path);
}
