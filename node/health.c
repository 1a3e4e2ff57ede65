/* health: probes resolved per instance, and the liveness loop. A miss while the node holds
 * the worker's output back (lossless printing, supervisor_hold_output) is not counted: a
 * worker blocked writing to a full pipe is held by the node, not hung, and must not be
 * killed for the node's own backpressure. */
#include "node/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/supervisor.h"
#include "node/workerenv.h"

/* cfg's probe for inst: 0, or -1 with err set. env (exec) is the caller's to free. */
static int health_spec(struct instance *inst, const struct config_probe *cfg, struct probe_spec *spec,
                       struct env_list *env, char *err, size_t errlen)
{
    const struct config_service *svc = inst->service->cfg;
    *spec = (struct probe_spec){.kind = cfg->kind, .host = cfg->host, .port = cfg->port, .path = cfg->path,
                                .command = cfg->command, .cwd = svc->cwd, .devnull_fd = inst->sup->devnull_fd};
    if (cfg->kind == PROBE_EXEC) {
        if (env) {
            workerenv_build(inst, env);
            spec->envp = env->items;
        }
    } else if (cfg->port == 0) {
        char *end;
        long port = strtol(inst->port, &end, 10);
        if (!inst->port[0] || *end || port < 1 || port > 65535) {
            snprintf(err, errlen, "%s.%d has no PORT to probe (PORT \"%s\")", svc->name, inst->index, inst->port);
            return -1;
        }
        spec->port = (int)port;
    }
    return 0;
}

struct probe *health_probe_start(struct instance *inst, const struct config_probe *cfg, unsigned timeout_ms,
                                 probe_cb cb, void *ctx, char *desc, size_t desc_cap, char *err, size_t errlen)
{
    struct probe_spec spec;
    struct env_list env = {0};
    if (health_spec(inst, cfg, &spec, &env, err, errlen) < 0)
        return NULL;
    if (desc)
        probe_describe(&spec, desc, desc_cap);
    struct probe *p = probe_start(inst->sup->loop, &inst->sup->probes, &spec, timeout_ms, cb, ctx, err, errlen);
    workerenv_free(&env);
    return p;
}

const char *live_result_name(enum live_result r)
{
    switch (r) {
    case LIVE_PENDING: return "pending";
    case LIVE_OK: return "ok";
    case LIVE_MISSED: return "missed";
    }
    return "?";
}

static void live_check_on_closed(uv_handle_t *handle)
{
    struct live_check *lc = handle->data;
    if (lc->on_closed)
        lc->on_closed(lc->inst);
}

void live_check_init(struct live_check *lc, uv_loop_t *loop, struct instance *inst, const struct config_live *cfg,
                     void (*on_dead)(struct instance *, const char *), void (*on_closed)(struct instance *))
{
    memset(lc, 0, sizeof *lc);
    lc->inst = inst;
    lc->cfg = cfg;
    lc->on_dead = on_dead;
    lc->on_closed = on_closed;
    uv_timer_init(loop, &lc->timer);
    lc->timer.data = lc;
}

static void live_check_missed(struct live_check *lc, const char *detail)
{
    struct instance *inst = lc->inst;
    struct supervisor *sup = inst->sup;
    const char *name = inst->service->cfg->name;
    lc->result = LIVE_MISSED;
    snprintf(lc->last_error, sizeof lc->last_error, "%s", detail);
    if (sup->output_hold != OUTPUT_READ_ALL) {
        lc->held_misses++;
        loghub_node_line(sup->hub, sup->node_pid, LOG_LEVEL_WARNING,
                         "%s.%d liveness: %s %s; not counted: the node holds its output back (the terminal is "
                         "slow), so it may be blocked writing",
                         name, inst->index, lc->probe, detail);
        return;
    }
    lc->failures++;
    unsigned limit = (unsigned)lc->cfg->failures;
    if (lc->failures < limit) {
        loghub_node_line(sup->hub, sup->node_pid, LOG_LEVEL_WARNING, "%s.%d liveness: %s %s (%u of %u)", name,
                         inst->index, lc->probe, detail, lc->failures, limit);
        return;
    }
    char why[600];
    snprintf(why, sizeof why, "%s %s (%u of %u)", lc->probe, detail, lc->failures, limit);
    loghub_node_line(sup->hub, sup->node_pid, LOG_LEVEL_ERROR, "%s.%d liveness: %s, restarting", name, inst->index,
                     why);
    live_check_stop(lc);
    lc->on_dead(inst, why);
}

static void live_check_on_probe(void *ctx, int ok, const char *detail)
{
    struct live_check *lc = ctx;
    lc->run = NULL;
    if (!ok) {
        live_check_missed(lc, detail);
        return;
    }
    if (lc->result == LIVE_MISSED && lc->failures) {
        struct instance *inst = lc->inst;
        loghub_node_line(inst->sup->hub, inst->sup->node_pid, LOG_LEVEL_INFO, "%s.%d liveness: %s answered (%s) "
                         "after %u miss%s", inst->service->cfg->name, inst->index, lc->probe, detail, lc->failures,
                         lc->failures == 1 ? "" : "es");
    }
    lc->result = LIVE_OK;
    lc->failures = 0;
}

static void live_check_on_timer(uv_timer_t *timer)
{
    struct live_check *lc = timer->data;
    if (lc->run)
        return; /* the last one is still out: its timeout answers for it */
    char err[300];
    lc->run = health_probe_start(lc->inst, &lc->cfg->probe, lc->cfg->timeout_ms, live_check_on_probe, lc, lc->probe,
                                 sizeof lc->probe, err, sizeof err);
    if (!lc->run)
        live_check_missed(lc, err);
}

void live_check_arm(struct live_check *lc)
{
    live_check_stop(lc);
    if (lc->cfg->probe.kind == PROBE_NONE)
        return;
    lc->result = LIVE_PENDING;
    lc->failures = 0;
    lc->held_misses = 0;
    lc->last_error[0] = '\0';
    struct probe_spec spec;
    char err[8];
    if (health_spec(lc->inst, &lc->cfg->probe, &spec, NULL, err, sizeof err) == 0)
        probe_describe(&spec, lc->probe, sizeof lc->probe);
    /* The first probe at the next multiple of interval on the loop's clock, at least interval
     * from now: the probes of instances with one interval then share the node's wake-ups. */
    uint64_t every = lc->cfg->interval_ms, now = uv_now(lc->timer.loop);
    uv_timer_start(&lc->timer, live_check_on_timer, every + (every - now % every), every);
}

void live_check_stop(struct live_check *lc)
{
    uv_timer_stop(&lc->timer);
    if (lc->run) {
        probe_cancel(lc->run);
        lc->run = NULL;
    }
}

void live_check_close(struct live_check *lc)
{
    live_check_stop(lc);
    uv_close((uv_handle_t *)&lc->timer, live_check_on_closed);
}
