/* svcconfig: the supervisor's half of a reload: a running supervisor's services are added,
 * taken out, or given a new config for their next processes. It never decides what to do
 * (config/configdiff.c and node/reload.c do) and never reads a file. */
#ifndef DEVNODE_SVCCONFIG_H
#define DEVNODE_SVCCONFIG_H

#include <stddef.h>

#include "config/config.h"
#include "node/supervisor.h"

/* Adds a service for `cfg` (a service of the node's config) wanting numprocesses instances;
 * they start once svcconfig_arrange has run (and its dependencies allow). Returns it, or
 * NULL with err set (a socket it names is not bound). */
struct service *svcconfig_add(struct supervisor *sup, const struct config_service *cfg, char *err, size_t errlen);
/* Stops every instance of the service and takes it out: nothing finds it any more; its
 * processes go the way a scale down takes them. Returns 0, or -1 when there is none. */
int svcconfig_remove(struct supervisor *sup, const char *name);
/* The service's processes started from now on use `cfg` (same name; it outlives the
 * supervisor, or until svcconfig_release): command, env, cwd, sockets, ready. Running
 * processes are not touched.
 * Returns 0, or -1 with err set and the service unchanged. */
int svcconfig_set(struct supervisor *sup, struct service *svc, const struct config_service *cfg, char *err,
                  size_t errlen);

/* Before the config a reload replaced is freed: every service still configured from it (a
 * removed one stopping, one the reload could not change) takes its part of `old` as its own
 * (service.own_cfg), so nothing points into `old` afterwards. */
void svcconfig_release(struct supervisor *sup, struct config *old);

/* After the adds and removes of a reload: the services go in `cfg`'s order (the one config
 * indexes and depends_on use), removed ones still stopping after them (those stopped are
 * freed), and the start order follows
 * (startorder_rearranged; want_new: added services start, else only `devnode start` starts
 * them, as after `up SERVICE...`). */
void svcconfig_arrange(struct supervisor *sup, const struct config *cfg, int want_new);

#endif
