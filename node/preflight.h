/* preflight: what `check` and `up` find wrong on this machine before anything is spawned:
 * a service's cwd that is not a directory, a program the shell would not find. config.c
 * parses; this looks at the file system. It never spawns, creates or changes anything. */
#ifndef DEVNODE_PREFLIGHT_H
#define DEVNODE_PREFLIGHT_H

#include <stddef.h>

#include "config/config.h"

struct preflight {
    char **warnings;        /* "FILE:LINE:COL: KEY: text": may work later, so not refused */
    size_t warning_count;
};

/* Checks every service of `cfg`; `shown_path` names the config in messages (as the user gave
 * it). Returns 0 (warnings may be set), or -1 with the first error in err, formatted as
 * config_load's are. Free pf either way. */
int preflight_run(const struct config *cfg, const char *shown_path, struct preflight *pf, char *err,
                  size_t errlen);
void preflight_free(struct preflight *pf);

#endif
