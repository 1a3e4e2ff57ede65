/* server.h: serving RPC on the service's own ROUTER (methods, built-ins, argument checks) and
 * making it known to the node (bind, register), or to the remote registry (remote.h) with a
 * tcp endpoint. Above the connection; it knows nothing of calls, events or the loop. */
#ifndef DEVNODE_LIB_SERVER_H
#define DEVNODE_LIB_SERVER_H

#include "lib/remote.h"

/* Binds dn->router (opened by the caller) on <dir>/rpc/<Service>.<instance>.<pid>.sock. */
int dn_bind(struct devnode *dn);
int dn_register(struct devnode *dn);
/* Serves one RPC request if one is waiting on our ROUTER; returns 1 if it handled a message. */
int dn_process_rpc(struct devnode *dn);
void dn_drain_rpc(struct devnode *dn);         /* answers late requests while stopping */
/* Frees the methods and closes the ROUTER. */
void dn_server_free(struct devnode *dn);

#endif
