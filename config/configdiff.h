/* configdiff: what a reload changes. It compares the running config with a newly loaded one,
 * service by service, and says which services start, stop, roll (and why) or scale. It is
 * pure: it never spawns or binds; the node applies the list (node/reload.c). What cannot be
 * applied to a running node (log settings, streams) is refused here. Sockets are the node's:
 * it rebinds a moved one and rolls the services whose sockets changed (sockets_rebind). */
#ifndef DEVNODE_CONFIGDIFF_H
#define DEVNODE_CONFIGDIFF_H

#include <stddef.h>

#include "config/config.h"

enum configdiff_kind {
    CONFIGDIFF_UNCHANGED,
    CONFIGDIFF_START,   /* only in the new config */
    CONFIGDIFF_STOP,    /* only in the old config */
    CONFIGDIFF_CHANGE,  /* in both, `reasons` say what differs */
};

/* What differs in a kept service, one bit each. */
enum configdiff_reason {
    CONFIGDIFF_COMMAND = 1u << 0,
    CONFIGDIFF_ENV = 1u << 1,          /* its final environment (env:, env_file, .env) */
    CONFIGDIFF_CWD = 1u << 2,
    CONFIGDIFF_READY = 1u << 3,        /* ready: (with its http/exec probe) */
    CONFIGDIFF_SOCKETS = 1u << 4,      /* which sockets it is handed (the node adds it when one moved) */
    CONFIGDIFF_BACKENDS = 1u << 5,     /* the top-level backends: its workers are given */
    CONFIGDIFF_LIVE = 1u << 6,         /* live: (its probe, interval, timeout, failures) */
    CONFIGDIFF_TERMINAL = 1u << 7,     /* stdin: or tty: (how its processes are spawned) */
    CONFIGDIFF_NUMPROCESSES = 1u << 8, /* scales it (a count set by `scale` is kept otherwise) */
    CONFIGDIFF_SETTINGS = 1u << 9,     /* restart, stop_*, depends_on...: used from now on, no roll */
    CONFIGDIFF_WATCH = 1u << 10,       /* watch:, ignore:, watch_debounce */
};
/* The reasons that need new processes: the service is rolled. */
#define CONFIGDIFF_ROLLS \
    (CONFIGDIFF_COMMAND | CONFIGDIFF_ENV | CONFIGDIFF_CWD | CONFIGDIFF_READY | CONFIGDIFF_SOCKETS | CONFIGDIFF_BACKENDS | \
     CONFIGDIFF_LIVE | CONFIGDIFF_TERMINAL)

struct configdiff_action {
    enum configdiff_kind kind;
    const char *name;                     /* the service's, owned by one of the configs */
    const struct config_service *old_svc; /* NULL for START */
    const struct config_service *new_svc; /* NULL for STOP */
    unsigned reasons;                     /* enum configdiff_reason bits, for CHANGE */
};

struct configdiff {
    struct configdiff_action *actions;    /* the new config's services in order, then the stopped */
    size_t count;
    size_t unchanged;                     /* actions that are CONFIGDIFF_UNCHANGED */
    int watch_changed;                    /* some service's watch set differs (or one came or went) */
};

/* Compares `old` with `updated` and fills `out`. PORT blocks are kept for the node's life:
 * each kept service gets its old block in `updated`, a started one the first free block.
 * Returns 0, or -1 with err naming what cannot change on a running node ("logs changed:
 * restart the node to apply") or a block that does not fit; out then holds nothing. */
int configdiff_compute(const struct config *old, struct config *updated, struct configdiff *out, char *err,
                       size_t errlen);
void configdiff_free(struct configdiff *d);
/* "rolled (command, env changed)", "scaled 2→3", "rolled (cwd changed), scaled 1→2", "started",
 * "stopped", "updated (settings changed)", "unchanged". */
void configdiff_describe(const struct configdiff_action *a, char *buf, size_t cap);

#endif
