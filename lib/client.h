/* client.h: calling other services (resolve through the node, round robin, sync and deferred
 * calls). Above serving (server.h): a call that waits serves requests to this instance
 * meanwhile, so self-calls and call cycles are answered. */
#ifndef DEVNODE_LIB_CLIENT_H
#define DEVNODE_LIB_CLIENT_H

#include "lib/server.h"

/* Frees the calls never waited for, the discover cache and the connections to other services. */
void dn_client_free(struct devnode *dn);

#endif
