/* interp: lymph's $(env.NAME) and $(var.a.b) references in a config value, replaced once.
 * Other namespaces ($(socket.X.fd), filled in at spawn time) and text without the reference
 * form ($(date), $HOME) are left as written. It reads the environment (then env_fallback: the
 * project's .env), never changes it. */
#ifndef DEVNODE_INTERP_H
#define DEVNODE_INTERP_H

#include <stdbool.h>

#include "config/yamltree.h"

struct interp {
    const char *file;          /* the config as the caller named it, for messages */
    const char *vars_arg;      /* the vars path as given, or NULL */
    const struct ynode *vars;  /* root of the vars file (a map), or NULL */
    bool keep_unresolved;      /* an undefined $(env.X) or $(var.X) stays as written */
    /* $(env.X) the environment does not set: its value from here (the project's .env), or NULL. */
    const char *(*env_fallback)(void *ctx, const char *name);
    void *env_ctx;
};

/* Reads the vars file behind $(var.*) into *vars (the caller frees it with ytree_free) and
 * points in->vars at it. Returns 0, or -1 with the message in d. */
int interp_read_vars(struct interp *in, const struct ydiag *d, const char *vars_path, struct ynode **vars);

/* The scalar n's text with env and var references replaced (allocated), or NULL with the
 * message in d naming key_path. */
char *interp_expand(const struct interp *in, const struct ydiag *d, const struct ynode *n,
                    const char *key_path);

#endif
