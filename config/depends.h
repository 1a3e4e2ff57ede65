/* depends: the config's side of depends_on (docs/dependencies.md): the services' graph by
 * index, for `check`, `devnode graph` and the node's start and stop order. The loading and
 * the refusals (unknown names, cycles) are config_load's; this is what callers ask after. */
#ifndef DEVNODE_DEPENDS_H
#define DEVNODE_DEPENDS_H

#include <stddef.h>

#include "config/config.h"
#include "config/depgraph.h"

/* The graph of cfg's services: node i is cfg->services[i], its edges its depends_on in file
 * order. A loaded config's graph is acyclic. Free with depgraph_free. */
void config_depgraph(const struct config *cfg, struct depgraph *g);

/* Index of the service named `name`, or -1. */
long config_service_index(const struct config *cfg, const char *name);

#endif
