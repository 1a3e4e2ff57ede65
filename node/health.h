/* health: an instance's probes: resolving a configured probe for that instance (its PORT,
 * its environment and cwd for exec), and the liveness check (`live:`), which probes a ready
 * process every interval and tells the supervisor when `failures` probes in a row missed.
 * It never signals a process nor changes an instance's state: the machine does. */
#ifndef DEVNODE_HEALTH_H
#define DEVNODE_HEALTH_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "node/probe.h"

struct instance;

/* Starts cfg's probe for inst (ready: and live: both use it): NULL with err set when it cannot
 * ("Web.0 has no PORT to probe"). desc (may be NULL) gets probe_describe's text. */
struct probe *health_probe_start(struct instance *inst, const struct config_probe *cfg, unsigned timeout_ms,
                                 probe_cb cb, void *ctx, char *desc, size_t desc_cap, char *err, size_t errlen);

enum live_result {
    LIVE_PENDING,   /* no answer yet since the process became ready */
    LIVE_OK,        /* the last probe passed */
    LIVE_MISSED,    /* the last probe missed (failures counts them) */
};

/* The liveness check of an instance's current process; embedded in the instance. */
struct live_check {
    uv_timer_t timer;               /* the interval */
    struct probe *run;              /* the probe in flight, or NULL */
    struct instance *inst;
    const struct config_live *cfg;
    enum live_result result;
    unsigned failures;              /* misses in a row that counted */
    unsigned held_misses;           /* misses not counted: the node held the worker's output */
    char last_error[160];           /* the last miss: "timed out after 1s"; "" */
    char probe[300];                /* "GET http://127.0.0.1:5001/healthz" */
    void (*on_dead)(struct instance *inst, const char *why); /* failures reached */
    void (*on_closed)(struct instance *inst);
};

void live_check_init(struct live_check *lc, uv_loop_t *loop, struct instance *inst, const struct config_live *cfg,
                     void (*on_dead)(struct instance *, const char *), void (*on_closed)(struct instance *));
/* The current process is ready: probe it every interval (nothing when `live:` is not set). */
void live_check_arm(struct live_check *lc);
/* No probe runs and no callback comes until the next arm; the last result stays for status. */
void live_check_stop(struct live_check *lc);
void live_check_close(struct live_check *lc);
/* "ok", "missed", "pending". */
const char *live_result_name(enum live_result r);

#endif
