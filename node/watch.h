/* watch: restarts a service when files it watches change (docs/config.md#watch). One inotify
 * descriptor for the node and one watch per folder that a service's patterns could match
 * under (none under ignored trees), added by a walk in slices so the loop never stalls on a
 * big tree. Changes are debounced per service, then the service is restarted the way
 * `devnode restart` does it; a change during that restart queues exactly one more. It never
 * acts on a process itself: supervisor_restart does. */
#ifndef DEVNODE_WATCH_H
#define DEVNODE_WATCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "node/loghub.h"
#include "node/supervisor.h"

struct watch;

/* What `status` shows of one watched service. */
struct watch_report {
    const char *state;          /* idle, debouncing, waiting (another restart runs), restarting */
    int pending;                /* a change came during the restart: one more follows */
    size_t folders;             /* folders watched for this service */
    uint64_t events;            /* file events that matched (one write is several) */
    uint64_t restarts;          /* restarts the watch started */
    const char *last_path;      /* the last change's path, relative to the config's folder; NULL before any */
    int64_t last_change_ago_ms;
    int limit_reached;          /* the kernel's inotify watch limit left folders unwatched */
};

/* Starts watching for every service with `watch:`; NULL when none has it, or when inotify
 * cannot start (said once in the log). sup and hub outlive the watch; it keeps nothing of cfg. */
struct watch *watch_start(uv_loop_t *loop, const struct config *cfg, struct supervisor *sup, struct loghub *hub);
/* Stops everything; the memory goes once the loop ran the close callbacks. NULL is fine. */
void watch_close(struct watch *w);
/* 0 with out filled, or -1 when `service` is not watched (or w is NULL). */
int watch_report(struct watch *w, const char *service, struct watch_report *out);

#endif
