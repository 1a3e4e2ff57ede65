/* change: a restart or scale that a client waits for. It watches the instances the request
 * touches and ends once each one is settled (its new process ready and the old one gone, or
 * the instance gone for a scale down), or at the first failure, and then tells its waiter, in
 * one line, what state every instance was left in. It never acts on a process: the supervisor
 * acts and reports here. */
#ifndef DEVNODE_CHANGE_H
#define DEVNODE_CHANGE_H

#include <stddef.h>
#include <stdint.h>

struct change;
struct instance;
struct service;
struct supervisor;

enum change_kind {
    CHANGE_ROLL,    /* restart of a whole service: one instance after the other */
    CHANGE_RESTART, /* restart of one instance */
    CHANGE_SCALE,   /* instances start and stop side by side */
};

struct change_result {
    int ok;              /* every instance settled */
    size_t ready;        /* instances whose new process is ready */
    size_t stopped;      /* instances scaled away and gone */
    uint64_t elapsed_ms; /* from the request to its end */
    const char *message; /* when !ok: the first failure, then the state of every instance */
};

/* Who waits, owned by the caller. started() comes once, before done(); done() comes once,
 * when the change has ended (possibly before the request returns); neither may call back
 * into the supervisor. */
struct change_waiter {
    void (*started)(void *ctx, size_t instances, uint64_t timeout_ms);
    void (*done)(void *ctx, const struct change_result *result);
    void *ctx;
};

/* For the supervisor. begin, then watch each instance before acting on it, then commit. */
struct change *change_begin(struct supervisor *sup, struct service *svc, enum change_kind kind,
                            const struct change_waiter *waiter);
/* Waits for a process of instance `index` started from now on to be ready (inst: the instance
 * as it is now, NULL when it does not exist yet). */
void change_watch_start(struct change *ch, int index, const struct instance *inst);
/* Waits for instance `index` to be gone (scaled away). */
void change_watch_gone(struct change *ch, int index);
/* The change is set up: tells the waiter it started (with the longest it can take), and
 * ends it at once if nothing is left to wait for. */
void change_commit(struct supervisor *sup, struct change *ch);

/* Reports from the supervisor. A note records; change_settle ends what is over, so it is
 * called once the instance's next state is decided. */
void change_note_exit(struct supervisor *sup, const struct instance *inst, const char *how);
void change_note_failure(struct supervisor *sup, const struct instance *inst, const char *why);
void change_note_gone(struct supervisor *sup, const struct instance *inst);
void change_note_revived(struct supervisor *sup, const struct instance *inst);
void change_settle(struct supervisor *sup);
/* The supervisor moved service `from` to `to` (a reload grew its array): changes follow it. */
void change_service_moved(struct supervisor *sup, const struct service *from, struct service *to);
/* Whether a change still waits on svc (a reload frees a removed service only when none does). */
int change_waits_on(const struct supervisor *sup, const struct service *svc);
/* Ends every change with `why` (the node stops). */
void change_abort_all(struct supervisor *sup, const char *why);

#endif
