/* configdiff: the running config against the one a reload loaded. Pure comparison of two
 * config structs (and the PORT blocks carried over); it must never touch a process, a file
 * or a socket. */
#include "config/configdiff.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool strs_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i], b[i]))
            return false;
    return true;
}

/* Same names with the same values: where each came from (env:, a file, .env) does not matter
 * to the process, nor does the order. */
static bool env_eq(const struct config_service *a, const struct config_service *b)
{
    if (a->env_count != b->env_count)
        return false;
    for (size_t i = 0; i < a->env_count; i++)
        if (!str_eq(config_service_env(b, a->env[i].name), a->env[i].value))
            return false;
    return true;
}

static bool probe_eq(const struct config_probe *a, const struct config_probe *b)
{
    return a->kind == b->kind && str_eq(a->host, b->host) && a->port == b->port && str_eq(a->path, b->path) &&
           str_eq(a->command, b->command);
}

static bool ready_eq(const struct config_ready *a, const struct config_ready *b)
{
    return a->kind == b->kind && str_eq(a->log_pattern, b->log_pattern) && str_eq(a->tcp_host, b->tcp_host) &&
           a->tcp_port == b->tcp_port && a->delay_ms == b->delay_ms && a->timeout_ms == b->timeout_ms &&
           probe_eq(&a->probe, &b->probe);
}

static bool live_eq(const struct config_live *a, const struct config_live *b)
{
    return probe_eq(&a->probe, &b->probe) && a->interval_ms == b->interval_ms && a->timeout_ms == b->timeout_ms &&
           a->failures == b->failures;
}

static bool deps_eq(const struct config_service *a, const struct config_service *b)
{
    if (a->dep_count != b->dep_count)
        return false;
    for (size_t i = 0; i < a->dep_count; i++)
        if (!str_eq(a->deps[i].name, b->deps[i].name) || a->deps[i].condition != b->deps[i].condition ||
            a->deps[i].restart != b->deps[i].restart)
            return false;
    return true;
}

static bool watch_eq(const struct config_watch *a, const struct config_watch *b)
{
    return strs_eq(a->paths, a->path_count, b->paths, b->path_count) &&
           strs_eq(a->ignore, a->ignore_count, b->ignore, b->ignore_count) &&
           (a->path_count == 0 || a->debounce_ms == b->debounce_ms);
}

static unsigned service_reasons(const struct config_service *a, const struct config_service *b)
{
    unsigned r = 0;
    if (!str_eq(a->command, b->command))
        r |= CONFIGDIFF_COMMAND;
    if (!env_eq(a, b))
        r |= CONFIGDIFF_ENV;
    if (!str_eq(a->cwd, b->cwd))
        r |= CONFIGDIFF_CWD;
    if (!ready_eq(&a->ready, &b->ready))
        r |= CONFIGDIFF_READY;
    if (!live_eq(&a->live, &b->live))
        r |= CONFIGDIFF_LIVE;
    if (a->stdin_pipe != b->stdin_pipe || a->tty != b->tty)
        r |= CONFIGDIFF_TERMINAL;
    if (!strs_eq(a->sockets, a->socket_count, b->sockets, b->socket_count))
        r |= CONFIGDIFF_SOCKETS;
    if (a->numprocesses != b->numprocesses)
        r |= CONFIGDIFF_NUMPROCESSES;
    if (a->restart != b->restart || a->max_restarts != b->max_restarts ||
        a->restart_window_ms != b->restart_window_ms || a->stop_signal != b->stop_signal ||
        a->stop_timeout_ms != b->stop_timeout_ms || !deps_eq(a, b) || a->disabled != b->disabled)
        r |= CONFIGDIFF_SETTINGS;
    if (!watch_eq(&a->watch, &b->watch))
        r |= CONFIGDIFF_WATCH;
    return r;
}

static int check_node_settings(const struct config *old, const struct config *updated, char *err, size_t errlen)
{
    const struct config_logs *a = &old->logs, *b = &updated->logs;
    if (a->buffer_lines != b->buffer_lines || a->file_max_mb != b->file_max_mb || a->keep_files != b->keep_files ||
        a->per_service != b->per_service) {
        snprintf(err, errlen, "logs changed: restart the node to apply");
        return -1;
    }
    bool same = old->stream_count == updated->stream_count;
    for (size_t i = 0; same && i < old->stream_count; i++)
        same = str_eq(old->streams[i].pattern, updated->streams[i].pattern) &&
               old->streams[i].retain_events == updated->streams[i].retain_events;
    if (!same) {
        snprintf(err, errlen, "streams changed: restart the node to apply");
        return -1;
    }
    return 0;
}

static bool block_taken(const struct config *cfg, const struct config_service *self, int first)
{
    for (size_t s = 0; s < cfg->service_count; s++) {
        const struct config_service *o = &cfg->services[s];
        if (o != self && o->port_first != 0 && o->port_first < first + CONFIG_PORT_BLOCK &&
            first < o->port_first + CONFIG_PORT_BLOCK)
            return true;
    }
    for (size_t i = 0; i < cfg->socket_count; i++) {
        int port = cfg->sockets[i].port;
        if (!cfg->sockets[i].path && port > 0 && port >= first && port < first + CONFIG_PORT_BLOCK)
            return true;
    }
    return false;
}

/* A kept service keeps the PORTs its workers were given; a new one gets the first block from
 * port_base that no kept service (nor a socket) holds. */
static int keep_port_blocks(const struct config *old, struct config *updated, char *err, size_t errlen)
{
    for (size_t s = 0; s < updated->service_count; s++) {
        const struct config_service *o = config_find_service(old, updated->services[s].name);
        updated->services[s].port_first = o ? o->port_first : 0;
    }
    for (size_t s = 0; s < updated->service_count; s++) {
        struct config_service *svc = &updated->services[s];
        if (svc->port_first)
            continue;
        int first = updated->port_base;
        while (first <= 65535 && block_taken(updated, svc, first))
            first += CONFIG_PORT_BLOCK;
        if (first > 65535) {
            if (config_service_port(updated, svc, NULL) == PORT_FROM_BLOCK && svc->numprocesses > 0) {
                snprintf(err, errlen, "%s:%d:%d: instances.%s: no free PORT block from %d up to 65535 "
                         "(lower port_base, or give %s an env: PORT)", updated->path, svc->line, svc->col,
                         svc->name, updated->port_base, svc->name);
                return -1;
            }
            first = 65536; /* unused: its PORT comes from elsewhere */
        }
        svc->port_first = first;
    }
    return 0;
}

int configdiff_compute(const struct config *old, struct config *updated, struct configdiff *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (check_node_settings(old, updated, err, errlen) < 0 || keep_port_blocks(old, updated, err, errlen) < 0)
        return -1;
    bool backends_changed = !str_eq(old->backends.registry, updated->backends.registry) ||
                            !str_eq(old->backends.events, updated->backends.events) ||
                            !str_eq(old->backends.ip, updated->backends.ip);
    size_t cap = updated->service_count + old->service_count;
    out->actions = xcalloc(cap ? cap : 1, sizeof *out->actions);
    for (size_t s = 0; s < updated->service_count; s++) {
        const struct config_service *n = &updated->services[s];
        const struct config_service *o = config_find_service(old, n->name);
        struct configdiff_action *a = &out->actions[out->count++];
        *a = (struct configdiff_action){.name = n->name, .old_svc = o, .new_svc = n};
        if (!o) {
            a->kind = CONFIGDIFF_START;
            out->watch_changed |= n->watch.path_count > 0;
            continue;
        }
        a->reasons = service_reasons(o, n) | (backends_changed ? CONFIGDIFF_BACKENDS : 0);
        a->kind = a->reasons ? CONFIGDIFF_CHANGE : CONFIGDIFF_UNCHANGED;
        out->unchanged += !a->reasons;
        out->watch_changed |= (a->reasons & CONFIGDIFF_WATCH) != 0;
    }
    for (size_t s = 0; s < old->service_count; s++) {
        const struct config_service *o = &old->services[s];
        if (config_find_service(updated, o->name))
            continue;
        out->actions[out->count++] =
            (struct configdiff_action){.kind = CONFIGDIFF_STOP, .name = o->name, .old_svc = o};
        out->watch_changed |= o->watch.path_count > 0;
    }
    return 0;
}

void configdiff_free(struct configdiff *d)
{
    free(d->actions);
    memset(d, 0, sizeof *d);
}

static const struct {
    unsigned bit;
    const char *word;
} reason_words[] = {
    {CONFIGDIFF_COMMAND, "command"}, {CONFIGDIFF_ENV, "env"},           {CONFIGDIFF_CWD, "cwd"},
    {CONFIGDIFF_READY, "ready"},     {CONFIGDIFF_SOCKETS, "sockets"},   {CONFIGDIFF_BACKENDS, "backends"},
    {CONFIGDIFF_LIVE, "live"},       {CONFIGDIFF_TERMINAL, "stdin/tty"},
    {CONFIGDIFF_SETTINGS, "settings"}, {CONFIGDIFF_WATCH, "watch"},
};

/* "command, env" for the bits of `mask` that are set. */
static void reason_list(unsigned reasons, unsigned mask, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof reason_words / sizeof reason_words[0]; i++) {
        if (!(reasons & mask & reason_words[i].bit) || used >= cap)
            continue;
        int n = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", reason_words[i].word);
        if (n > 0)
            used += (size_t)n;
    }
}

void configdiff_describe(const struct configdiff_action *a, char *buf, size_t cap)
{
    switch (a->kind) {
    case CONFIGDIFF_UNCHANGED:
        snprintf(buf, cap, "unchanged");
        return;
    case CONFIGDIFF_START:
        snprintf(buf, cap, "started");
        return;
    case CONFIGDIFF_STOP:
        snprintf(buf, cap, "stopped");
        return;
    case CONFIGDIFF_CHANGE:
        break;
    }
    char rolls[128], others[64];
    reason_list(a->reasons, CONFIGDIFF_ROLLS, rolls, sizeof rolls);
    reason_list(a->reasons, CONFIGDIFF_SETTINGS | CONFIGDIFF_WATCH, others, sizeof others);
    size_t used = 0;
    buf[0] = '\0';
    if (rolls[0])
        used += (size_t)snprintf(buf, cap, "rolled (%s changed)", rolls);
    if ((a->reasons & CONFIGDIFF_NUMPROCESSES) && used < cap)
        used += (size_t)snprintf(buf + used, cap - used, "%sscaled %d\u2192%d", used ? ", " : "",
                                 a->old_svc->numprocesses, a->new_svc->numprocesses);
    if (others[0] && used < cap)
        snprintf(buf + used, cap - used, "%supdated (%s changed)", used ? ", " : "", others);
}
