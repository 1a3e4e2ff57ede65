/* depwait: whether a dependency lets its dependent start (depends_on, docs/dependencies.md),
 * judged from counts of the dependency's instances, and the words status shows for it
 * ("waiting for Migrate: exited 1"). Pure: no process, no clock; startorder.c gathers the
 * counts and acts. */
#ifndef DEVNODE_DEPWAIT_H
#define DEVNODE_DEPWAIT_H

#include <stddef.h>

#include "config/config.h"

enum dep_verdict {
    DEP_WAIT,    /* not yet: it may still come */
    DEP_MET,     /* the dependent may start */
    DEP_BLOCKED, /* it failed: the dependent stays down until the dependency recovers */
};

/* The dependency's instances (0 .. desired-1), each counted once by what it is now. */
struct dep_facts {
    unsigned instances;         /* desired instances */
    unsigned up;                /* with a process, starting or running */
    unsigned ready;             /* running and ready */
    unsigned completed;         /* exited 0 and kept down by its restart policy */
    unsigned exited_bad;        /* exited non-zero or killed, kept down by its restart policy */
    unsigned failed;            /* `failed` (cannot run, max_restarts) */
    unsigned late;              /* starting, past its ready timeout */
    int bad_code;               /* an exited_bad one's exit status (-1: killed) */
    int bad_signal;             /* ... its signal when killed */
    const char *failure;        /* a failed one's reason */
    unsigned ready_timeout_ms;  /* for "not ready within 30.0s" */
};

/* The verdict for `condition`, with why set to the line status shows while it is not met:
 * "waiting for Db to be ready", "waiting for Migrate: exited 1". */
enum dep_verdict depwait_verdict(const char *name, const struct dep_facts *f, enum config_dep_condition condition,
                                 char *why, size_t cap);

/* A process's exit as a shell reports it: its status, or 128 + the signal that killed it. */
int depwait_exit_status(int code, int signal);

#endif
