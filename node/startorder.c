/* startorder: depends_on at run time. Every instance event marks the order dirty; once per
 * loop turn (an idle handle, so a burst of exits is judged once) a settle releases the held
 * services whose dependencies are met, restarts dependents of a restarted `restart: true`
 * dependency, moves a stop on to the next layer, and sees whether `devnode run` is over.
 * It must never act inside the supervisor's own event handling: hence the deferred settle. */
#include "node/startorder.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "config/depends.h"
#include "config/depgraph.h"
#include "node/depwait.h"
#include "node/supervisor.h"

static size_t service_index(const struct supervisor *sup, const struct service *svc)
{
    return (size_t)(svc - sup->services);
}

static void order_line(struct supervisor *sup, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void order_line(struct supervisor *sup, enum log_level level, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    loghub_node_line(sup->hub, sup->node_pid, level, "%s", text);
}

/* What the instances 0 .. desired-1 of svc are now. */
static void service_facts(const struct supervisor *sup, const struct service *svc, struct dep_facts *f)
{
    memset(f, 0, sizeof *f);
    f->instances = svc->desired > 0 ? (unsigned)svc->desired : 0;
    f->ready_timeout_ms = svc->cfg->ready.timeout_ms;
    uint64_t now = uv_now(sup->loop);
    for (size_t i = 0; i < f->instances && i < svc->instance_cap; i++) {
        const struct instance *inst = svc->instances[i];
        if (!inst)
            continue;
        switch (inst->state) {
        case INSTANCE_STARTING:
            f->up++;
            if (svc->cfg->ready.kind != READY_AT_START && now - inst->cur->started_ms >= svc->cfg->ready.timeout_ms)
                f->late++;
            break;
        case INSTANCE_RUNNING:
            f->up++;
            f->ready++;
            break;
        case INSTANCE_EXITED:
            if (inst->has_exited && inst->last_exit_code == 0 && !inst->last_exit_signal) {
                f->completed++;
            } else if (!f->exited_bad++) {
                f->bad_code = inst->last_exit_code;
                f->bad_signal = inst->last_exit_signal;
            }
            break;
        case INSTANCE_FAILED:
            if (!f->failed++)
                f->failure = inst->failure;
            break;
        case INSTANCE_BACKOFF:
        case INSTANCE_STOPPING:
        case INSTANCE_STOPPED:
            break;
        }
    }
}

static int service_has_process(const struct service *svc)
{
    for (size_t i = 0; i < svc->instance_cap; i++)
        if (svc->instances[i] && (svc->instances[i]->cur->pid || svc->instances[i]->old->pid))
            return 1;
    return 0;
}

/* ---- selection ---------------------------------------------------------------------- */

static void order_alloc(struct supervisor *sup)
{
    struct startorder *o = &sup->order;
    o->count = sup->service_count;
    o->services = xcalloc(o->count ? o->count : 1, sizeof *o->services);
    for (size_t s = 0; s < o->count; s++) {
        const struct config_service *cfg = sup->services[s].cfg;
        size_t deps = cfg->dep_count;
        o->services[s].dep_generation = xcalloc(deps ? deps : 1, sizeof *o->services[s].dep_generation);
        o->services[s].dep_index = xcalloc(deps ? deps : 1, sizeof *o->services[s].dep_index);
        for (size_t k = 0; k < deps; k++) /* config_load made sure each names a service */
            o->services[s].dep_index[k] = (size_t)config_service_index(sup->cfg, cfg->deps[k].name);
    }
}

/* wanted = mark and, unless no_deps, everything the marked services depend on. */
static void order_want(struct supervisor *sup, bool *mark, int no_deps)
{
    if (!no_deps) {
        struct depgraph g;
        config_depgraph(sup->cfg, &g);
        depgraph_closure(&g, mark);
        depgraph_free(&g);
    }
    for (size_t s = 0; s < sup->order.count; s++)
        sup->order.services[s].wanted = mark[s];
}

void startorder_init(struct supervisor *sup)
{
    memset(&sup->order, 0, sizeof sup->order);
    order_alloc(sup);
    bool *mark = xcalloc(sup->service_count ? sup->service_count : 1, sizeof *mark);
    for (size_t s = 0; s < sup->service_count; s++)
        mark[s] = !sup->services[s].cfg->disabled;
    order_want(sup, mark, 0);
    free(mark);
}

int startorder_select(struct supervisor *sup, char *const *names, size_t count, int no_deps, char *err,
                      size_t errlen)
{
    if (count == 0)
        return 0;
    bool *mark = xcalloc(sup->service_count ? sup->service_count : 1, sizeof *mark);
    for (size_t i = 0; i < count; i++) {
        long s = config_service_index(sup->cfg, names[i]);
        if (s < 0) {
            snprintf(err, errlen, "no service named '%s'", names[i]);
            free(mark);
            return -1;
        }
        mark[s] = 1;
    }
    order_want(sup, mark, no_deps);
    sup->order.no_deps = no_deps;
    free(mark);
    return 0;
}

static int is_one_shot(const struct config_service *cfg)
{
    return cfg->restart == RESTART_NEVER || cfg->restart == RESTART_ON_FAILURE;
}

size_t startorder_run(struct supervisor *sup, char *const *names, size_t count, int abort_on_failure)
{
    struct startorder *o = &sup->order;
    size_t targets = 0;
    for (size_t s = 0; s < o->count; s++) {
        int named = 0;
        for (size_t i = 0; i < count; i++)
            named |= !strcmp(names[i], sup->services[s].cfg->name);
        o->services[s].run_target = count ? named : o->services[s].wanted && is_one_shot(sup->services[s].cfg);
        targets += (size_t)o->services[s].run_target;
    }
    o->run.active = targets > 0;
    o->run.abort_on_failure = abort_on_failure;
    return targets;
}

/* ---- settle ------------------------------------------------------------------------- */

static void order_on_idle(uv_idle_t *idle);

void startorder_touch(struct supervisor *sup)
{
    struct startorder *o = &sup->order;
    if (o->dirty || !o->idle_open)
        return;
    o->dirty = 1;
    uv_idle_start(&o->idle, order_on_idle);
}

/* Restarts seen since the last look raise a service's generation. A scale down lowers the
 * sum; that is no restart. */
static void order_count_restarts(struct supervisor *sup)
{
    for (size_t s = 0; s < sup->order.count; s++) {
        const struct service *svc = &sup->services[s];
        struct order_service *os = &sup->order.services[s];
        unsigned sum = 0;
        for (size_t i = 0; i < svc->instance_cap; i++)
            sum += svc->instances[i] ? svc->instances[i]->restarts : 0;
        if (sum > os->restarts_seen)
            os->generation += sum - os->restarts_seen;
        os->restarts_seen = sum;
    }
}

/* The verdict on all of s's dependencies: met, or why not (a blocked one named first). */
static enum dep_verdict order_judge(struct supervisor *sup, size_t s, char *why, size_t cap)
{
    const struct config_service *cfg = sup->services[s].cfg;
    enum dep_verdict verdict = DEP_MET;
    why[0] = '\0';
    for (size_t k = 0; k < cfg->dep_count; k++) {
        size_t d = sup->order.services[s].dep_index[k];
        if (sup->order.no_deps && !sup->order.services[d].wanted)
            continue; /* --no-deps: what was not selected is not waited for */
        struct dep_facts f;
        service_facts(sup, &sup->services[d], &f);
        char line[256];
        enum dep_verdict v = depwait_verdict(cfg->deps[k].name, &f, cfg->deps[k].condition, line, sizeof line);
        if (v == DEP_BLOCKED && verdict != DEP_BLOCKED) {
            verdict = DEP_BLOCKED;
            snprintf(why, cap, "%s", line);
        } else if (v == DEP_WAIT && verdict == DEP_MET) {
            verdict = DEP_WAIT;
            snprintf(why, cap, "%s", line);
        }
    }
    return verdict;
}

/* Starts what may start; returns 1 when it started something (which may release more). */
static int order_release(struct supervisor *sup)
{
    int started = 0;
    for (size_t s = 0; s < sup->order.count; s++) {
        struct order_service *os = &sup->order.services[s];
        if (!os->pending)
            continue;
        char why[256];
        enum dep_verdict v = order_judge(sup, s, why, sizeof why);
        const char *name = sup->services[s].cfg->name;
        if (v == DEP_MET) {
            if (os->blocked) /* it was said to be blocked: say it is not any more */
                order_line(sup, LOG_LEVEL_INFO, "%s starts: its dependencies are up", name);
            os->pending = os->blocked = 0;
            os->waiting[0] = '\0';
            const struct config_service *cfg = sup->services[s].cfg;
            for (size_t k = 0; k < cfg->dep_count; k++)
                os->dep_generation[k] = sup->order.services[os->dep_index[k]].generation;
            supervisor_start_service(sup, &sup->services[s]);
            started = 1;
            continue;
        }
        if (v == DEP_BLOCKED && (!os->blocked || strcmp(os->waiting, why)))
            order_line(sup, LOG_LEVEL_ERROR, "%s not started: %s", name, why);
        os->blocked = v == DEP_BLOCKED;
        snprintf(os->waiting, sizeof os->waiting, "%s", why);
    }
    return started;
}

/* A dependency with restart: true that was restarted and meets its condition again takes
 * its dependent with it (compose's depends_on restart). */
static void order_follow_restarts(struct supervisor *sup)
{
    for (size_t s = 0; s < sup->order.count; s++) {
        struct order_service *os = &sup->order.services[s];
        const struct config_service *cfg = sup->services[s].cfg;
        if (os->pending)
            continue;
        for (size_t k = 0; k < cfg->dep_count; k++) {
            size_t d = os->dep_index[k];
            if (sup->order.services[d].generation == os->dep_generation[k])
                continue;
            if (!cfg->deps[k].restart || !service_has_process(&sup->services[s])) {
                os->dep_generation[k] = sup->order.services[d].generation;
                continue;
            }
            struct dep_facts f;
            char why[256], err[256];
            service_facts(sup, &sup->services[d], &f);
            if (depwait_verdict(cfg->deps[k].name, &f, cfg->deps[k].condition, why, sizeof why) != DEP_MET)
                continue; /* again once it is back */
            order_line(sup, LOG_LEVEL_INFO, "%s restarts: %s was restarted (depends_on %s: restart: true)",
                       cfg->name, cfg->deps[k].name, cfg->deps[k].name);
            if (supervisor_restart(sup, cfg->name, -1, NULL, err, sizeof err) < 0)
                continue; /* a roll in progress: try on the next event */
            for (size_t j = 0; j < cfg->dep_count; j++)
                os->dep_generation[j] = sup->order.services[os->dep_index[j]].generation;
            break;
        }
    }
}

/* The exit status a run target ended with, or -1 while it has not ended. */
static int run_target_status(const struct supervisor *sup, size_t s)
{
    const struct service *svc = &sup->services[s];
    int status = 0, ended = 0;
    for (int i = 0; i < svc->desired && (size_t)i < svc->instance_cap; i++) {
        const struct instance *inst = svc->instances[i];
        if (!inst || (inst->state != INSTANCE_EXITED && inst->state != INSTANCE_FAILED))
            return -1;
        ended++;
        int st = inst->has_exited ? depwait_exit_status(inst->last_exit_code, inst->last_exit_signal) : 1;
        if (inst->state == INSTANCE_FAILED && st == 0)
            st = 1;
        if (st && !status)
            status = st;
    }
    return ended ? status : 0;
}

/* A service of s's dependencies (directly or not) that is `failed`, or NULL. */
static const char *run_failed_dependency(struct supervisor *sup, size_t s)
{
    bool *mark = xcalloc(sup->service_count, sizeof *mark);
    mark[s] = 1;
    struct depgraph g;
    config_depgraph(sup->cfg, &g);
    depgraph_closure(&g, mark);
    depgraph_free(&g);
    const char *name = NULL;
    for (size_t d = 0; d < sup->service_count && !name; d++) {
        if (!mark[d] || d == s)
            continue;
        struct dep_facts f;
        service_facts(sup, &sup->services[d], &f);
        if (f.failed)
            name = sup->services[d].cfg->name;
    }
    free(mark);
    return name;
}

/* The first failure among every wanted service, for --abort-on-failure: 1 with why set. */
static int run_any_failure(struct supervisor *sup, char *why, size_t cap)
{
    for (size_t s = 0; s < sup->order.count; s++) {
        const struct service *svc = &sup->services[s];
        if (sup->order.services[s].blocked) {
            snprintf(why, cap, "run: %s not started: %s", svc->cfg->name, sup->order.services[s].waiting);
            return 1;
        }
        for (size_t i = 0; i < svc->instance_cap; i++) {
            const struct instance *inst = svc->instances[i];
            if (inst && inst->state == INSTANCE_FAILED && !inst->has_exited) {
                snprintf(why, cap, "run: %s.%d failed: %s", svc->cfg->name, (int)i, inst->failure);
                return 1;
            }
            if (!inst || !inst->has_exited || inst->state == INSTANCE_STOPPED || inst->state == INSTANCE_STOPPING)
                continue;
            int st = depwait_exit_status(inst->last_exit_code, inst->last_exit_signal);
            if (inst->state == INSTANCE_FAILED || st != 0) {
                snprintf(why, cap, "run: %s.%d %s (%d)", svc->cfg->name, (int)i,
                         inst->state == INSTANCE_FAILED ? "failed" : "exited with a failure", st);
                return 1;
            }
        }
    }
    return 0;
}

static void order_run_check(struct supervisor *sup)
{
    struct order_run *run = &sup->order.run;
    if (!run->active || run->done)
        return;
    int all_ended = 1;
    char why[400] = "";
    for (size_t s = 0; s < sup->order.count; s++) {
        struct order_service *os = &sup->order.services[s];
        if (!os->run_target || os->run_ended)
            continue;
        const char *name = sup->services[s].cfg->name;
        int status = run_target_status(sup, s);
        const char *failed_dep = status < 0 ? run_failed_dependency(sup, s) : NULL;
        if (status < 0 && os->pending && os->blocked) {
            status = 1;
            order_line(sup, LOG_LEVEL_ERROR, "run: %s cannot start: %s", name, os->waiting);
        } else if (status < 0 && failed_dep) {
            status = 1;
            order_line(sup, LOG_LEVEL_ERROR, "run: %s depends on %s, which failed", name, failed_dep);
        } else if (status < 0) {
            all_ended = 0;
            continue;
        } else {
            order_line(sup, status ? LOG_LEVEL_ERROR : LOG_LEVEL_INFO, "run: %s %s (%d)", name,
                       status ? "failed" : "completed", status);
        }
        os->run_ended = 1;
        if (status && !run->code)
            run->code = status;
        if (status && !why[0])
            snprintf(why, sizeof why, "run: %s ended with %d", name, status);
    }
    if (!all_ended && run->abort_on_failure && !run->code && run_any_failure(sup, why, sizeof why))
        run->code = 1;
    if (!all_ended && !(run->abort_on_failure && run->code))
        return;
    run->done = 1;
    if (!why[0])
        snprintf(why, sizeof why, "run: every one-shot service completed");
    if (run->on_done)
        run->on_done(run->on_done_ctx, run->code, why);
}

/* ---- stop in reverse order ---------------------------------------------------------- */

/* Whether any service that depends on s still has a process. */
static int order_dependents_up(struct supervisor *sup, size_t s)
{
    const char *name = sup->services[s].cfg->name;
    for (size_t t = 0; t < sup->service_count; t++) {
        const struct config_service *cfg = sup->services[t].cfg;
        for (size_t k = 0; k < cfg->dep_count; k++)
            if (!strcmp(cfg->deps[k].name, name) && service_has_process(&sup->services[t]))
                return 1;
    }
    return 0;
}

static void order_stop_progress(struct supervisor *sup)
{
    for (size_t s = 0; s < sup->order.count; s++) {
        struct order_service *os = &sup->order.services[s];
        struct service *svc = &sup->services[s];
        os->pending = 0;
        if (os->stop_sent)
            continue;
        int now = !order_dependents_up(sup, s);
        os->stop_sent = now;
        for (size_t i = 0; i < svc->instance_cap; i++) {
            struct instance *inst = svc->instances[i];
            /* One waiting for its restart must not start while it waits for its dependents. */
            if (inst && (now || inst->state == INSTANCE_BACKOFF))
                supervisor_stop_instance(inst, 0);
        }
    }
}

static void order_settle(struct supervisor *sup)
{
    struct startorder *o = &sup->order;
    o->dirty = 0;
    if (o->stopping) {
        order_stop_progress(sup);
        return;
    }
    if (sup->stopping)
        return;
    uv_update_time(sup->loop);
    order_count_restarts(sup);
    while (order_release(sup))
        order_count_restarts(sup);
    order_follow_restarts(sup);
    order_run_check(sup);
}

static void order_on_idle(uv_idle_t *idle)
{
    struct supervisor *sup = idle->data;
    uv_idle_stop(idle);
    order_settle(sup);
}

/* ---- the node's requests -------------------------------------------------------------- */

void startorder_start_all(struct supervisor *sup)
{
    struct startorder *o = &sup->order;
    uv_idle_init(sup->loop, &o->idle);
    o->idle.data = sup;
    o->idle_open = 1;
    for (size_t s = 0; s < o->count; s++)
        o->services[s].pending = o->services[s].wanted;
    order_settle(sup);
}

void startorder_stop_all(struct supervisor *sup, int force)
{
    struct startorder *o = &sup->order;
    o->stopping = 1;
    if (!force) {
        order_stop_progress(sup);
        return;
    }
    for (size_t s = 0; s < o->count; s++) {
        struct service *svc = &sup->services[s];
        o->services[s].stop_sent = 1;
        for (size_t i = 0; i < svc->instance_cap; i++)
            if (svc->instances[i])
                supervisor_stop_instance(svc->instances[i], 1);
    }
}

/* Whether every desired instance of svc is starting or running. */
static int service_all_up(const struct service *svc)
{
    for (int i = 0; i < svc->desired; i++) {
        const struct instance *inst = (size_t)i < svc->instance_cap ? svc->instances[i] : NULL;
        if (!inst || (inst->state != INSTANCE_STARTING && inst->state != INSTANCE_RUNNING))
            return 0;
    }
    return 1;
}

/* Never started, or stopped on request: a dependency `start` brings up. */
static int service_all_stopped(const struct service *svc)
{
    for (size_t i = 0; i < svc->instance_cap; i++)
        if (svc->instances[i] && svc->instances[i]->state != INSTANCE_STOPPED)
            return 0;
    return 1;
}

int startorder_start_service(struct supervisor *sup, const char *name, char *started, size_t cap, char *err,
                             size_t errlen)
{
    struct startorder *o = &sup->order;
    started[0] = '\0';
    if (sup->stopping) {
        snprintf(err, errlen, "the node is stopping");
        return -1;
    }
    long target = config_service_index(sup->cfg, name);
    if (target < 0) {
        snprintf(err, errlen, "no service named '%s'", name);
        return -1;
    }
    bool *mark = xcalloc(sup->service_count, sizeof *mark);
    mark[target] = 1;
    struct depgraph g;
    config_depgraph(sup->cfg, &g);
    depgraph_closure(&g, mark);
    size_t *layer = xcalloc(sup->service_count, sizeof *layer), *order = xcalloc(sup->service_count, sizeof *order);
    depgraph_layers(&g, layer);
    depgraph_start_order(&g, layer, order);
    depgraph_free(&g);
    int count = 0;
    for (size_t k = 0; k < sup->service_count; k++) {
        size_t s = order[k];
        struct order_service *os = &o->services[s];
        const struct service *svc = &sup->services[s];
        if (!mark[s])
            continue;
        os->wanted = 1;
        os->reload_disabled = 0;
        int start = (long)s == target ? !service_all_up(svc) && !os->pending : service_all_stopped(svc);
        if (!start || os->pending)
            continue;
        os->pending = 1;
        os->waiting[0] = '\0';
        size_t used = strlen(started);
        snprintf(started + used, cap - used, "%s%s", used ? ", " : "", svc->cfg->name);
        count++;
    }
    free(layer);
    free(order);
    free(mark);
    if (count)
        startorder_touch(sup);
    return count;
}

int startorder_stop_service(struct supervisor *sup, const char *name, int force, char *err, size_t errlen)
{
    if (sup->stopping) {
        snprintf(err, errlen, "the node is stopping");
        return -1;
    }
    struct service *svc = supervisor_find_service(sup, name);
    if (!svc) {
        snprintf(err, errlen, "no service named '%s'", name);
        return -1;
    }
    struct order_service *os = &sup->order.services[service_index(sup, svc)];
    os->wanted = os->pending = os->blocked = 0;
    os->waiting[0] = '\0';
    int running = 0;
    for (size_t i = 0; i < svc->instance_cap; i++) {
        struct instance *inst = svc->instances[i];
        if (!inst)
            continue;
        running += inst->cur->pid != 0;
        supervisor_stop_instance(inst, force);
    }
    return running;
}

int startorder_held(const struct supervisor *sup, const struct service *svc)
{
    return sup->order.services && sup->order.services[service_index(sup, svc)].pending;
}

const char *startorder_state(const struct supervisor *sup, const struct instance *inst, const char **waiting)
{
    const struct order_service *os = &sup->order.services[service_index(sup, inst->service)];
    *waiting = NULL;
    if (os->pending && !inst->cur->pid) {
        *waiting = os->waiting[0] ? os->waiting : NULL;
        return "waiting";
    }
    if (inst->state == INSTANCE_EXITED && inst->has_exited && inst->last_exit_code == 0 && !inst->last_exit_signal)
        return "completed";
    if (inst->state == INSTANCE_STOPPED && !os->wanted && inst->service->cfg->disabled &&
        (!inst->starts || os->reload_disabled))
        return "disabled";
    return instance_state_name(inst->state);
}

void startorder_rearranged(struct supervisor *sup, const size_t *old_index, int want_new)
{
    struct startorder *o = &sup->order;
    size_t n = sup->service_count;
    struct order_service *fresh = xcalloc(n ? n : 1, sizeof *fresh);
    for (size_t s = 0; s < n; s++) {
        struct order_service *os = &fresh[s];
        const struct service *svc = &sup->services[s];
        if (old_index[s] < o->count) {
            *os = o->services[old_index[s]];
            free(os->dep_generation);
            free(os->dep_index);
            o->services[old_index[s]].dep_generation = NULL; /* carried: not freed again below */
            o->services[old_index[s]].dep_index = NULL;
        } else {
            os->wanted = want_new && !svc->cfg->disabled && !svc->removed;
            os->pending = os->wanted;
        }
        if (svc->removed)
            os->wanted = os->pending = os->blocked = 0;
        size_t deps = svc->cfg->dep_count;
        os->dep_generation = xcalloc(deps ? deps : 1, sizeof *os->dep_generation);
        os->dep_index = xcalloc(deps ? deps : 1, sizeof *os->dep_index);
        for (size_t k = 0; k < deps; k++) {
            /* A removed service's dependencies point to itself: never waited for, never followed. */
            struct service *d = svc->removed ? NULL : supervisor_find_service(sup, svc->cfg->deps[k].name);
            os->dep_index[k] = d ? service_index(sup, d) : s;
        }
    }
    /* Generations as they are now: a reload is no restart of a dependency. */
    for (size_t s = 0; s < n; s++)
        for (size_t k = 0; k < sup->services[s].cfg->dep_count; k++)
            fresh[s].dep_generation[k] = fresh[fresh[s].dep_index[k]].generation;
    for (size_t s = 0; s < o->count; s++) { /* the entries of services the reload dropped */
        free(o->services[s].dep_generation);
        free(o->services[s].dep_index);
    }
    free(o->services);
    o->services = fresh;
    o->count = n;
    startorder_touch(sup);
}

void startorder_close(struct supervisor *sup)
{
    if (sup->order.idle_open)
        uv_close((uv_handle_t *)&sup->order.idle, NULL);
    sup->order.idle_open = 0;
}

void startorder_free(struct supervisor *sup)
{
    for (size_t s = 0; s < sup->order.count; s++) {
        free(sup->order.services[s].dep_generation);
        free(sup->order.services[s].dep_index);
    }
    free(sup->order.services);
    sup->order.services = NULL;
    sup->order.count = 0;
}
