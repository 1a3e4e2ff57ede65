/* reload: load, check, diff, apply. Everything that can refuse runs before the first change,
 * so a refused reload leaves the node exactly as it was. The node owns one config: the one a
 * reload replaced is freed before it returns, once the services, sockets and checks point
 * into the new one and the few services still on the old one took their part of it. */
#include "node/reload.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "config/configdiff.h"
#include "config/depends.h"
#include "config/depgraph.h"
#include "config/procfile.h"
#include "node/node.h"
#include "node/preflight.h"
#include "node/svcconfig.h"

static void report_add(struct reload_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report_add(struct reload_report *r, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->lines = xrealloc(r->lines, (r->count + 1) * sizeof *r->lines);
    r->lines[r->count++] = xstrdup(line);
}

void reload_report_free(struct reload_report *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->lines[i]);
    free(r->lines);
    memset(r, 0, sizeof *r);
}

/* `up -m web=2`: the counts it gave stay what the file's numprocesses mean on reload. */
static int apply_formation(struct config *cfg, const char *spec, char *err, size_t errlen)
{
    struct procfile_formation f;
    if (procfile_formation_parse(spec, &f, err, errlen) < 0)
        return -1;
    for (size_t s = 0; s < cfg->service_count; s++)
        cfg->services[s].numprocesses = procfile_formation_count(&f, cfg->services[s].name);
    procfile_formation_free(&f);
    return 0;
}

/* Loads and checks the config as `up` and `check` do. 0, or -1 with err; warnings go to r. */
static int load_checked(const struct node *node, struct config *fresh, struct reload_report *r, char *err,
                        size_t errlen)
{
    const struct node_options *o = node->opts;
    const char *path = o->config_shown ? o->config_shown : node->cfg.path;
    if (config_load_flags(path, o->vars_path, o->config_flags, fresh, err, errlen) < 0)
        return -1;
    if ((o->formation && apply_formation(fresh, o->formation, err, errlen) < 0) ||
        config_check_ports(fresh, path, o->port_base, err, errlen) < 0) {
        config_free(fresh);
        return -1;
    }
    struct preflight pf;
    int rc = preflight_run(fresh, path, &pf, err, errlen);
    for (size_t i = 0; rc == 0 && i < pf.warning_count; i++)
        report_add(r, "warning: %s", pf.warnings[i]);
    preflight_free(&pf);
    if (rc < 0)
        config_free(fresh);
    return rc;
}

/* A new `ready: notify` needs the NOTIFY_SOCKET before anything changes. */
static int prepare(struct node *node, const struct configdiff *d, char *err, size_t errlen)
{
    for (size_t i = 0; i < d->count; i++) {
        const struct config_service *n = d->actions[i].new_svc;
        if (n && n->ready.kind == READY_NOTIFY && supervisor_open_notify(&node->sup, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* Whether the listening fds a service passes differ from before (a socket moved). */
static int sockets_moved(const struct service *svc, const int *old_fds, size_t old_count)
{
    if (svc->socket_count != old_count)
        return 1;
    for (size_t i = 0; i < old_count; i++)
        if (svc->sockets[i]->fd != old_fds[i])
            return 1;
    return 0;
}

/* What the actions of one reload share. */
struct reload_apply {
    struct node *node;
    struct reload_report *report;
    bool *runs;              /* by the new config's index: what `up` would start now (reload_runs) */
    const char **to_start;   /* services the reload enabled: started once arranged */
    size_t to_start_count;
    size_t unchanged;
};

/* What the node runs by the new config, as `up` chose: every service not disabled (or those
 * `up` named) and what they depend on. A disabled service outside it goes down. */
static bool *reload_runs(const struct node *node)
{
    const struct config *cfg = &node->cfg;
    const struct node_options *o = node->opts;
    bool *mark = xcalloc(cfg->service_count ? cfg->service_count : 1, sizeof *mark);
    for (size_t s = 0; s < cfg->service_count; s++)
        mark[s] = o->service_count == 0 && !cfg->services[s].disabled;
    for (size_t i = 0; i < o->service_count; i++) {
        long s = config_service_index(cfg, o->services[i]);
        if (s >= 0)
            mark[s] = 1;
    }
    if (!o->no_deps || o->service_count == 0) {
        struct depgraph g;
        config_depgraph(cfg, &g);
        depgraph_closure(&g, mark);
        depgraph_free(&g);
    }
    return mark;
}

static int named_by_up(const struct node *node, const char *name)
{
    for (size_t i = 0; i < node->opts->service_count; i++)
        if (strcmp(node->opts->services[i], name) == 0)
            return 1;
    return 0;
}

/* Down on purpose (`devnode stop`, disabled, not named by `up`): a reload changes its config
 * but starts nothing of it. */
static int service_down(const struct supervisor *sup, const struct service *svc)
{
    size_t s = (size_t)(svc - sup->services);
    return s < sup->order.count && !sup->order.services[s].wanted && !sup->order.services[s].pending;
}

static int service_has_process(const struct service *svc)
{
    for (size_t i = 0; i < svc->instance_cap; i++)
        if (svc->instances[i] && (svc->instances[i]->cur->pid || svc->instances[i]->old->pid))
            return 1;
    return 0;
}

/* A down service's count: fewer instances go at once, more are made when it starts. */
static void scale_down_service(struct supervisor *sup, struct service *svc, int count)
{
    char err[256];
    if (count < svc->desired)
        supervisor_scale(sup, svc->cfg->name, count, NULL, err, sizeof err);
    svc->desired = count;
}

/* `disabled:` changed. Returns 1 when it said what it did, 0 when the usual roll or scale
 * applies (the service runs on: it is needed, or it was already running). */
static int apply_disabled(struct reload_apply *ra, struct service *svc, const struct configdiff_action *a)
{
    struct supervisor *sup = &ra->node->sup;
    const char *name = a->name;
    long index = config_service_index(&ra->node->cfg, name);
    int runs = index >= 0 && ra->runs[index];
    char err[256];
    if (a->new_svc->disabled && !runs) {
        size_t s = (size_t)(svc - sup->services);
        int had = service_has_process(svc) || !service_down(sup, svc);
        startorder_stop_service(sup, name, 0, err, sizeof err);
        if (s < sup->order.count)
            sup->order.services[s].reload_disabled = 1;
        scale_down_service(sup, svc, a->new_svc->numprocesses);
        report_add(ra->report, "%s: %s", name, had ? "stopped (disabled)" : "disabled (it was down)");
        return 1;
    }
    if (!a->new_svc->disabled && service_down(sup, svc)) {
        scale_down_service(sup, svc, a->new_svc->numprocesses);
        if (!runs) {
            report_add(ra->report, "%s: no longer disabled; not started: the node runs what `up` named "
                       "(`devnode start %s` starts it)", name, name);
            return 1;
        }
        ra->to_start = xrealloc(ra->to_start, (ra->to_start_count + 1) * sizeof *ra->to_start);
        ra->to_start[ra->to_start_count++] = name; /* reported once started */
        return 1;
    }
    return 0;
}

/* Returns 1 when the service was left as it was (it counts as unchanged). */
static int apply_action(struct reload_apply *ra, const struct configdiff_action *action)
{
    struct supervisor *sup = &ra->node->sup;
    struct reload_report *r = ra->report;
    struct configdiff_action changed = *action, *a = &changed;
    char what[256], err[512];
    configdiff_describe(a, what, sizeof what);
    if (a->kind == CONFIGDIFF_START) {
        if (!svcconfig_add(sup, a->new_svc, err, sizeof err))
            snprintf(what, sizeof what, "not started: %s", err);
        report_add(r, "%s: %s", a->name, what);
        return 0;
    }
    if (a->kind == CONFIGDIFF_STOP) {
        svcconfig_remove(sup, a->name);
        report_add(r, "%s: %s", a->name, what);
        return 0;
    }
    struct service *svc = supervisor_find_service(sup, a->name);
    int old_fds[SERVICE_MAX_SOCKETS];
    size_t old_count = svc ? svc->socket_count : 0;
    for (size_t i = 0; i < old_count; i++)
        old_fds[i] = svc->sockets[i]->fd; /* the old array is still there (node_reload) */
    if (!svc || svcconfig_set(sup, svc, a->new_svc, err, sizeof err) < 0) {
        report_add(r, "%s: not changed: %s", a->name, svc ? err : "no such service");
        return 0;
    }
    if (sockets_moved(svc, old_fds, old_count)) {
        a->kind = CONFIGDIFF_CHANGE;
        a->reasons |= CONFIGDIFF_SOCKETS;
        configdiff_describe(a, what, sizeof what);
    }
    if (a->kind == CONFIGDIFF_UNCHANGED)
        return 1;
    if (a->old_svc->disabled != a->new_svc->disabled && apply_disabled(ra, svc, a))
        return 0;
    if (service_down(sup, svc) && !service_has_process(svc)) {
        /* Nothing runs to roll: its next start uses the new config. */
        if (a->reasons & CONFIGDIFF_NUMPROCESSES)
            scale_down_service(sup, svc, a->new_svc->numprocesses);
        report_add(r, "%s: updated (it is down: its next start uses the new config)", a->name);
        return 0;
    }
    /* Scaled first: the roll then replaces the instances that stay, the new ones start new. */
    if ((a->reasons & CONFIGDIFF_NUMPROCESSES) &&
        supervisor_scale(sup, a->name, a->new_svc->numprocesses, NULL, err, sizeof err) < 0)
        snprintf(what, sizeof what, "not scaled: %s", err);
    else if ((a->reasons & CONFIGDIFF_ROLLS) && supervisor_restart(sup, a->name, -1, NULL, err, sizeof err) < 0)
        snprintf(what, sizeof what, "not rolled: %s (its next processes use the new config)", err);
    const char *kept = "";
    if (a->new_svc->disabled && !a->old_svc->disabled)
        kept = named_by_up(ra->node, a->name) ? "; disabled, but kept running: `up` named it"
                                              : "; disabled, but kept running: a service that runs depends on it";
    report_add(r, "%s: %s%s", a->name, what, kept);
    return 0;
}

/* The services the reload enabled start now that the order knows them, each with what it
 * needs that is down, once their dependencies allow (as `devnode start`). */
static void start_enabled(struct reload_apply *ra)
{
    for (size_t i = 0; i < ra->to_start_count; i++) {
        char started[512], err[256];
        const char *name = ra->to_start[i];
        if (startorder_start_service(&ra->node->sup, name, started, sizeof started, err, sizeof err) < 0)
            report_add(ra->report, "%s: no longer disabled; not started: %s", name, err);
        else if (strcmp(started, name) != 0 && started[0])
            report_add(ra->report, "%s: started (no longer disabled): starting %s", name, started);
        else
            report_add(ra->report, "%s: started (no longer disabled)", name);
    }
}

/* A watch with a restart under way would be told of its end after being freed: it is kept,
 * and the reload says so. */
static int watch_busy(struct node *node)
{
    for (size_t s = 0; s < node->sup.service_count; s++) {
        struct watch_report wr;
        const struct service *svc = &node->sup.services[s];
        if (!svc->removed && watch_report(node->watch, svc->cfg->name, &wr) == 0 &&
            (strcmp(wr.state, "restarting") == 0 || strcmp(wr.state, "waiting") == 0))
            return 1;
    }
    return 0;
}

int node_reload(struct node *node, const char *asked_by, struct reload_report *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct config fresh;
    struct configdiff d = {0};
    int rc = -1;
    if (node->sup.stopping) {
        snprintf(err, errlen, "the node is stopping");
        return -1;
    }
    if (load_checked(node, &fresh, out, err, errlen) < 0)
        goto refused;
    /* The sockets are bound last: it is the last step that may refuse. */
    struct socket_set retired_sockets;
    struct bound_socket *old_socket_items;
    if (configdiff_compute(&node->cfg, &fresh, &d, err, errlen) < 0 || prepare(node, &d, err, errlen) < 0 ||
        sockets_rebind(&node->sockets, &fresh, &retired_sockets, &old_socket_items, err, errlen) < 0) {
        config_free(&fresh);
        goto refused;
    }
    /* Services move to the new config (the actions do, and node->cfg moves, not its arrays);
     * what still points into the old one once they are done is moved out of it
     * (svcconfig_release), and it is freed before the reload returns. */
    int keep_watch = d.watch_changed && watch_busy(node);
    struct config old = node->cfg;
    node->cfg = fresh;
    struct reload_apply ra = {.node = node, .report = out, .runs = reload_runs(node)};
    for (size_t i = 0; i < d.count; i++)
        ra.unchanged += (size_t)apply_action(&ra, &d.actions[i]);
    svcconfig_arrange(&node->sup, &node->cfg, node->opts->service_count == 0);
    start_enabled(&ra);
    free(ra.to_start);
    free(ra.runs);
    /* Every service now points into the new socket array. A moved socket's old address stays
     * open in the old workers (they hold their own copy) until the roll has replaced them. */
    free(old_socket_items);
    for (size_t i = 0; i < retired_sockets.count; i++)
        loghub_node_line(&node->hub, getpid(), LOG_LEVEL_INFO, "reload: the node no longer listens on %s (%s)",
                         retired_sockets.items[i].address, retired_sockets.items[i].cfg->name);
    sockets_close_all(&retired_sockets);
    if (d.watch_changed && !keep_watch) {
        watch_close(node->watch);
        node->watch = watch_start(&node->loop, &node->cfg, &node->sup, &node->hub);
    } else if (d.watch_changed) {
        report_add(out, "watch: unchanged while a restart it started runs; reload again once it is done");
    }
    if (ra.unchanged || !out->count)
        report_add(out, "%zu service%s unchanged", ra.unchanged, ra.unchanged == 1 ? "" : "s");
    for (size_t i = 0; i < out->count; i++)
        loghub_node_line(&node->hub, getpid(), LOG_LEVEL_INFO, "reload (%s): %s", asked_by, out->lines[i]);
    rc = 0;
    configdiff_free(&d); /* its names point into both configs */
    svcconfig_release(&node->sup, &old);
    config_free(&old);
    return rc;

refused:
    configdiff_free(&d);
    loghub_node_line(&node->hub, getpid(), LOG_LEVEL_ERROR, "reload (%s) refused, nothing changed: %s", asked_by,
                     err);
    return rc;
}
