/* startorder: which services run, and when, by depends_on (docs/dependencies.md): the subset
 * `up`/`run` selected, services held until their dependencies meet their conditions (with the
 * reason status shows), dependents restarted after a dependency marked `restart: true`, the
 * node's stop in reverse order, `start`/`stop` of one service, and `devnode run`'s end.
 * It decides; the supervisor acts on instances (supervisor_start_service and _stop_service).
 * It never touches a process itself. */
#ifndef DEVNODE_STARTORDER_H
#define DEVNODE_STARTORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct instance;
struct service;
struct supervisor;

struct order_service {
    int wanted;                 /* selected (up's subset with what it needs, or `start`) */
    int pending;                /* wanted, not started: starts once its dependencies allow */
    int blocked;                /* pending, and a dependency failed */
    char waiting[256];          /* pending: why ("waiting for Migrate: exited 1") */
    unsigned restarts_seen;     /* its instances' restarts summed, at the last look */
    unsigned generation;        /* restarts seen in all: dependents with restart: true follow it */
    unsigned *dep_generation;   /* per depends_on entry: that dependency's generation when this
                                 * one was last started */
    size_t *dep_index;          /* per depends_on entry: the dependency's service index */
    int run_target;             /* `devnode run` waits for it to complete */
    int run_ended;              /* ... and it has (ok or not) */
    int stop_sent;              /* the node's stop reached it (its dependents are down) */
    int reload_disabled;        /* a reload disabled it and stopped it: `disabled` in status
                                 * until `devnode start` */
};

/* `devnode run` (docs/cli.md): what it waits for and how it ends. */
struct order_run {
    int active;
    int abort_on_failure;       /* the first failure of any service ends the run */
    int done;
    int code;                   /* the exit code so far: the first failed target's */
    /* Called once when the run is over: the node sets its exit code and stops. */
    void (*on_done)(void *ctx, int code, const char *why);
    void *on_done_ctx;
};

struct startorder {
    struct order_service *services; /* by config index, as supervisor.services */
    size_t count;
    uv_idle_t idle;             /* runs a settle after the events of a loop turn */
    int idle_open;              /* idle is initialized (from startorder_start_all on) */
    int dirty;                  /* an instance event happened since the last settle */
    int stopping;               /* the node stops, dependents first */
    int no_deps;                /* up --no-deps: dependencies not selected are not waited for */
    struct order_run run;
};

/* Sets every service not disabled wanted (what `up` without names starts). No handle is
 * left open on failure; there is none. */
void startorder_init(struct supervisor *sup);
/* up/run SERVICE...: those and, unless no_deps, what they depend on (disabled or not).
 * Returns 0, or -1 with err naming an unknown service. */
int startorder_select(struct supervisor *sup, char *const *names, size_t count, int no_deps, char *err,
                      size_t errlen);
/* `devnode run`: waits for the named one-shot services (none named: every wanted one-shot).
 * Returns the number of targets; 0 means nothing to wait for. */
size_t startorder_run(struct supervisor *sup, char *const *names, size_t count, int abort_on_failure);
/* The node starts: every wanted service starts, each once its dependencies allow. */
void startorder_start_all(struct supervisor *sup);
/* Something happened to an instance: settle after this loop turn. */
void startorder_touch(struct supervisor *sup);
/* The node stops: dependents first (force: everything at once). */
void startorder_stop_all(struct supervisor *sup, int force);
/* `devnode start NAME` on a running node: NAME and what it needs that is down. started gets
 * the services that will start ("Db, Api"). Returns how many, or -1 with err set. */
int startorder_start_service(struct supervisor *sup, const char *name, char *started, size_t cap, char *err,
                             size_t errlen);
/* `devnode stop NAME`: that service alone. Returns its instances with a process, or -1. */
int startorder_stop_service(struct supervisor *sup, const char *name, int force, char *err, size_t errlen);
/* A reload rearranged sup->services (node/svcconfig.c): service s was at old_index[s] before
 * (SIZE_MAX: added by the reload). Entries follow their services; an added one is wanted when
 * `want_new` (and not disabled) and starts once its dependencies allow; a removed one (its
 * `removed` set) is neither wanted nor waited for. Dependencies are found again by name. */
void startorder_rearranged(struct supervisor *sup, const size_t *old_index, int want_new);
/* Whether svc waits for its dependencies: a scale adds its instances without starting them. */
int startorder_held(const struct supervisor *sup, const struct service *svc);
/* The state status shows for an instance: the machine's name, or `waiting` (held by a
 * dependency; *waiting says why), `completed` (a one-shot that exited 0), `disabled`. */
const char *startorder_state(const struct supervisor *sup, const struct instance *inst, const char **waiting);
void startorder_close(struct supervisor *sup);
void startorder_free(struct supervisor *sup);

#endif
