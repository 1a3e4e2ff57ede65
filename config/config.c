/* config: the public face of config/ (config.h): load a .lymph.yml through the key table
 * (keys.c) over the positioned YAML tree (yamltree.c) with interpolation (interp.c), free it,
 * and answer questions about the result (PORT, signals). It never prints, spawns or binds,
 * and keeps no state between calls: all it owns hangs off struct config. */
#include "config/config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/cfgalloc.h"
#include "config/envlayers.h"
#include "config/keys.h"
#include "config/procfile.h"
#include "config/yamltree.h"

/* ---- PORT ---- */

const char *config_service_env(const struct config_service *svc, const char *name)
{
    const char *value = NULL;
    for (size_t i = 0; i < svc->env_count; i++) {
        if (strcmp(svc->env[i].name, name) == 0) {
            value = svc->env[i].value; /* the last one, as the child's environment has it */
        }
    }
    return value;
}

/* Offset of the first $(socket.NAME.fd) or $(socket.NAME.port) in `command`, or -1. */
static long command_socket_ref(const char *command, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = command; (p = strstr(p, "$(socket.")); p++) {
        const char *n = p + strlen("$(socket.");
        if (strncmp(n, name, len) == 0 &&
            (strncmp(n + len, ".fd)", 4) == 0 || strncmp(n + len, ".port)", 6) == 0)) {
            return (long)(p - command);
        }
    }
    return -1;
}

/* The first TCP socket a service's workers get, in sockets_for_service's order (the one
 * named like it, those it lists, those its command names), and whether it gets any. */
static const struct config_socket *service_first_tcp_socket(const struct config *cfg,
                                                            const struct config_service *svc,
                                                            bool *any)
{
    *any = false;
    const struct config_socket *own = keys_find_socket(cfg, svc->name);
    if (own) {
        *any = true;
        if (!own->path) {
            return own;
        }
    }
    for (size_t i = 0; i < svc->socket_count; i++) {
        const struct config_socket *sock = keys_find_socket(cfg, svc->sockets[i]);
        if (sock) {
            *any = true;
            if (!sock->path) {
                return sock;
            }
        }
    }
    const struct config_socket *first = NULL;
    long earliest = LONG_MAX;
    for (size_t i = 0; i < cfg->socket_count; i++) {
        long at = command_socket_ref(svc->command, cfg->sockets[i].name);
        if (at < 0) {
            continue;
        }
        *any = true;
        if (!cfg->sockets[i].path && at < earliest) {
            earliest = at;
            first = &cfg->sockets[i];
        }
    }
    return first;
}

enum config_port_source config_service_port(const struct config *cfg, const struct config_service *svc,
                                            const struct config_socket **socket)
{
    bool any;
    const struct config_socket *first = service_first_tcp_socket(cfg, svc, &any);
    if (socket) {
        *socket = first;
    }
    if (config_service_env(svc, "PORT")) {
        return PORT_FROM_ENV;
    }
    if (!any) {
        return PORT_FROM_BLOCK;
    }
    return first ? PORT_FROM_SOCKET : PORT_FROM_NONE;
}

void config_probe_free(struct config_probe *probe)
{
    free(probe->host);
    free(probe->path);
    free(probe->command);
    memset(probe, 0, sizeof *probe);
}

int config_block_port(const struct config_service *svc, int index)
{
    if (index < 0 || index >= CONFIG_PORT_BLOCK || svc->port_first + index > 65535) {
        return -1;
    }
    return svc->port_first + index;
}

/* The socket with a fixed TCP `port`, or NULL. */
static const struct config_socket *socket_on_port(const struct config *cfg, long port)
{
    for (size_t i = 0; i < cfg->socket_count; i++) {
        if (!cfg->sockets[i].path && cfg->sockets[i].port > 0 && cfg->sockets[i].port == port) {
            return &cfg->sockets[i];
        }
    }
    return NULL;
}

/* Blocks in config order: a service keeps its block whatever the others do. */
static void assign_port_blocks(struct config *cfg)
{
    for (size_t s = 0; s < cfg->service_count; s++) {
        cfg->services[s].port_first = cfg->port_base + (int)s * CONFIG_PORT_BLOCK;
    }
}

/* Refuses a PORT a worker could not bind: one the node holds for a socket, or one past
 * 65535. `file` names the config in messages. */
static int check_ports(struct loader *ld, const char *file)
{
    struct config *cfg = ld->cfg;
    char key_path[KEY_PATH_MAX];
    for (size_t s = 0; s < cfg->service_count; s++) {
        const struct config_service *svc = &cfg->services[s];
        key_path_child(key_path, "instances", svc->name);
        enum config_port_source source = config_service_port(cfg, svc, NULL);
        bool any_socket;
        service_first_tcp_socket(cfg, svc, &any_socket);
        if (source == PORT_FROM_ENV && !any_socket) {
            const struct config_env_var *var = NULL;
            for (size_t i = 0; i < svc->env_count; i++) {
                if (strcmp(svc->env[i].name, "PORT") == 0) {
                    var = &svc->env[i];
                }
            }
            char *end;
            long port = strtol(var->value, &end, 10);
            const struct config_socket *sock = *end == '\0' ? socket_on_port(cfg, port) : NULL;
            if (sock) {
                char env_path[KEY_PATH_MAX];
                key_path_child(env_path, key_path, "env.PORT");
                char where[PATH_MAX + 16] = "";
                if (var->file) { /* set by an env_file: "FILE:LINE: PORT ..." for the whole message */
                    snprintf(where, sizeof where, "%s:%d", var->file, var->line);
                }
                return ydiag_fail(&ld->diag, var->file ? where : file, var->file ? 0 : var->line, var->col,
                                  var->file ? "" : env_path,
                                  "PORT %ld is the port of sockets.%s (line %d), which the node holds: "
                                  "a worker that binds $PORT would fail with \"Address already in use\"",
                                  port, sock->name, sock->line);
            }
            continue;
        }
        if (source != PORT_FROM_BLOCK || svc->numprocesses == 0) {
            continue;
        }
        if (config_block_port(svc, 0) < 0) {
            int line = cfg->port_base_line ? cfg->port_base_line : svc->line;
            int col = cfg->port_base_line ? cfg->port_base_col : svc->col;
            return ydiag_fail(&ld->diag, file, line, col, cfg->port_base_line ? "port_base" : key_path,
                            "%s's PORT block would start at %d, past 65535 (lower port_base, or give %s "
                            "an env: PORT)", svc->name, svc->port_first, svc->name);
        }
        for (int i = 0; i < svc->numprocesses; i++) {
            int port = config_block_port(svc, i);
            const struct config_socket *sock = port > 0 ? socket_on_port(cfg, port) : NULL;
            if (sock) {
                return ydiag_fail(&ld->diag, file, svc->line, svc->col, key_path,
                                "PORT %d of %s.%d is the port of sockets.%s (line %d), which the node holds: "
                                "a worker that binds $PORT would fail with \"Address already in use\" "
                                "(change port_base, or give %s an env: PORT)",
                                port, svc->name, i, sock->name, sock->line, svc->name);
            }
        }
    }
    return 0;
}

int config_check_ports(struct config *cfg, const char *file, int port_base, char *err, size_t errlen)
{
    struct loader ld = {.file = file, .diag = {err, errlen}, .cfg = cfg};
    if (port_base > 0) {
        cfg->port_base = port_base;
        cfg->port_base_line = 0; /* a message about the base names the service, not the file's key */
        assign_port_blocks(cfg);
    }
    return check_ports(&ld, file);
}


static int resolve_location(struct loader *ld, const char *path)
{
    char *abs = realpath(path, NULL);
    if (!abs) {
        return ydiag_fail(&ld->diag, path, 0, 0, "", "cannot read: %s", strerror(errno));
    }
    ld->cfg->path = abs;
    char *slash = strrchr(abs, '/');
    ld->cfg->dir = slash == abs ? cfg_xstrdup("/") : cfg_xstrndup(abs, (size_t)(slash - abs));
    return 0;
}

/* The tree a config file stands for: the file's own YAML, or for a Procfile the .lymph.yml it
 * is equivalent to (procfile.h), so both go through the same keys and defaults. */
static int parse_config_file(const struct ydiag *d, const char *path, struct ynode **root)
{
    return procfile_is_procfile(path) ? procfile_parse_tree(d, path, root) : ytree_parse_file(d, path, root);
}

static int load(const char *path, const char *vars_path, bool keep_unresolved, unsigned flags, struct config *out,
                char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (err && errlen) {
        err[0] = '\0';
    }
    struct loader ld = {.file = path, .diag = {err, errlen}, .cfg = out,
                        .interp = {.file = path, .vars_arg = vars_path, .keep_unresolved = keep_unresolved,
                                   .env_fallback = envlayers_dotenv_value, .env_ctx = out}};
    struct ynode *root = NULL, *vars = NULL;
    int rc = -1;
    if (parse_config_file(&ld.diag, path, &root) < 0) {
        goto done;
    }
    if (resolve_location(&ld, path) < 0) {
        goto done;
    }
    if (vars_path && interp_read_vars(&ld.interp, &ld.diag, vars_path, &vars) < 0) {
        goto done;
    }
    /* Before any value is read: .env feeds $(env.X). Commands that want only the names skip it. */
    if (!keep_unresolved && !(flags & CONFIG_NO_DOTENV) && envlayers_read_dotenv(&ld) < 0) {
        goto done;
    }
    rc = keys_load_top(&ld, root);
    if (rc == 0) {
        assign_port_blocks(out);
    }
done:
    envlist_free(&ld.top_env);
    envlist_free(&ld.service_env);
    ytree_free(root);
    ytree_free(vars);
    if (rc < 0) {
        config_free(out);
    }
    return rc;
}

int config_load(const char *path, const char *vars_path, struct config *out, char *err, size_t errlen)
{
    return load(path, vars_path, false, 0, out, err, errlen);
}

int config_load_flags(const char *path, const char *vars_path, unsigned flags, struct config *out, char *err,
                      size_t errlen)
{
    return load(path, vars_path, false, flags, out, err, errlen);
}

int config_load_unresolved(const char *path, struct config *out, char *err, size_t errlen)
{
    return load(path, NULL, true, 0, out, err, errlen);
}

static void free_env(struct config_env_var *vars, size_t count)
{
    struct envlist list = {.vars = vars, .count = count};
    envlist_free(&list);
}

static void free_strings(char **items, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(items[i]);
    }
    free(items);
}

void config_service_free(struct config_service *svc)
{
    if (!svc)
        return;
    free(svc->name);
    free(svc->command);
    free_env(svc->env, svc->env_count);
    free_strings(svc->env_files, svc->env_file_count);
    free(svc->cwd);
    free(svc->ready.log_pattern);
    free(svc->ready.tcp_host);
    config_probe_free(&svc->ready.probe);
    config_probe_free(&svc->live.probe);
    for (size_t j = 0; j < svc->socket_count; j++) {
        free(svc->sockets[j]);
    }
    free(svc->sockets);
    for (size_t j = 0; j < svc->dep_count; j++)
        free(svc->deps[j].name);
    free(svc->deps);
    for (size_t j = 0; j < svc->watch.path_count; j++)
        free(svc->watch.paths[j]);
    free(svc->watch.paths);
    for (size_t j = 0; j < svc->watch.ignore_count; j++)
        free(svc->watch.ignore[j]);
    free(svc->watch.ignore);
    memset(svc, 0, sizeof *svc);
}

void config_free(struct config *cfg)
{
    if (!cfg) {
        return;
    }
    for (size_t i = 0; i < cfg->service_count; i++)
        config_service_free(&cfg->services[i]);
    free(cfg->services);
    for (size_t i = 0; i < cfg->socket_count; i++) {
        free(cfg->sockets[i].name);
        free(cfg->sockets[i].host);
        free(cfg->sockets[i].path);
    }
    free(cfg->sockets);
    for (size_t i = 0; i < cfg->note_count; i++) {
        free(cfg->notes[i]);
    }
    for (size_t i = 0; i < cfg->stream_count; i++)
        free(cfg->streams[i].pattern);
    free(cfg->streams);
    free(cfg->backends.registry);
    free(cfg->backends.events);
    free(cfg->backends.ip);
    free(cfg->notes);
    free_env(cfg->dotenv, cfg->dotenv_count);
    free(cfg->dotenv_path);
    free_strings(cfg->env_files, cfg->env_file_count);
    free(cfg->path);
    free(cfg->dir);
    memset(cfg, 0, sizeof(*cfg));
}

const struct config_service *config_find_service(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->service_count; i++) {
        if (strcmp(cfg->services[i].name, name) == 0) {
            return &cfg->services[i];
        }
    }
    return NULL;
}

static const struct {
    int number;
    const char *name;
} signal_names[] = {
    {SIGHUP, "HUP"},   {SIGINT, "INT"},       {SIGQUIT, "QUIT"}, {SIGILL, "ILL"},
    {SIGTRAP, "TRAP"}, {SIGABRT, "ABRT"},     {SIGBUS, "BUS"},   {SIGFPE, "FPE"},
    {SIGKILL, "KILL"}, {SIGUSR1, "USR1"},     {SIGSEGV, "SEGV"}, {SIGUSR2, "USR2"},
    {SIGPIPE, "PIPE"}, {SIGALRM, "ALRM"},     {SIGTERM, "TERM"}, {SIGCHLD, "CHLD"},
    {SIGCONT, "CONT"}, {SIGSTOP, "STOP"},     {SIGTSTP, "TSTP"}, {SIGTTIN, "TTIN"},
    {SIGTTOU, "TTOU"}, {SIGURG, "URG"},       {SIGXCPU, "XCPU"}, {SIGXFSZ, "XFSZ"},
    {SIGVTALRM, "VTALRM"}, {SIGPROF, "PROF"}, {SIGWINCH, "WINCH"}, {SIGIO, "IO"},
    {SIGPWR, "PWR"},   {SIGSYS, "SYS"},
};

int config_parse_signal(const char *text)
{
    if (!text || !text[0]) {
        return -1;
    }
    if (text[0] >= '0' && text[0] <= '9') {
        int n = 0;
        for (const char *p = text; *p; p++) {
            if (*p < '0' || *p > '9' || n > 64) {
                return -1;
            }
            n = n * 10 + (*p - '0');
        }
        return n >= 1 && n <= 64 ? n : -1;
    }
    const char *name = strncasecmp(text, "SIG", 3) == 0 ? text + 3 : text;
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
        if (strcasecmp(name, signal_names[i].name) == 0) {
            return signal_names[i].number;
        }
    }
    return -1;
}

const char *config_signal_name(int sig)
{
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
        if (signal_names[i].number == sig) {
            return signal_names[i].name;
        }
    }
    return "?";
}
