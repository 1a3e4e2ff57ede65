/* envlayers: the environment a service's workers get, merged at load from the layers of
 * docs/config.md "Environment files": .env < the shell < top-level env_file < the service's
 * env_file < env:. Internal to config/ (keys.c and config.c); the result is struct
 * config_service's env list, which node/ lays over the shell's environment as before. */
#ifndef DEVNODE_ENVLAYERS_H
#define DEVNODE_ENVLAYERS_H

#include <stddef.h>

#include "config/config.h"
#include "config/yamltree.h"

/* Assignments of one layer in the order they were read; a name may come twice (last wins). */
struct envlist {
    struct config_env_var *vars;
    size_t count, cap;
};

struct loader;

/* Reads the .env beside the config into cfg->dotenv (a missing one is no error). 0, or -1
 * with "FILE:LINE: what" in the loader's diag. */
int envlayers_read_dotenv(struct loader *ld);

/* Reads env_file item `name` (as written, relative to the config's directory; `item` is
 * where it is written) into `into`, seeing `below` (NULL or the top-level list) for ${VAR}.
 * *abs gets its absolute path. 0, or -1 with the message in the loader's diag. */
int envlayers_read_file(struct loader *ld, const struct ynode *item, const char *key_path, const char *name,
                        enum config_env_layer layer, struct envlist *into, const struct envlist *below,
                        char **abs);

/* The .env's value of name (the last assignment), or NULL; ctx is the struct config. For
 * $(env.X), after the environment. */
const char *envlayers_dotenv_value(void *ctx, const char *name);

/* Replaces svc->env (its env: entries) by the merged list of every layer, one entry per name. */
void envlayers_finish_service(struct loader *ld, struct config_service *svc, const struct envlist *service_files);

void envlist_free(struct envlist *list);

#endif
