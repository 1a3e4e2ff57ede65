/* remote.h: the remote registry under the library's register and discover (issue 19, docs/
 * backends.md): a ZooKeeper session in lymph's layout (zkregistry.h) when DEVNODE_REGISTRY names
 * one. Above the connection, below serving and calls; it never touches a ZeroMQ socket. With
 * DEVNODE_REGISTRY unset nothing here runs: the node's registry serves as before. */
#ifndef DEVNODE_LIB_REMOTE_H
#define DEVNODE_LIB_REMOTE_H

#include "lib/conn.h"
#include "lib/zkregistry.h"

/* 1 when DEVNODE_REGISTRY named a registry: register and discover go there. */
int dn_remote(const struct devnode *dn);
/* Opens the session at the first need. 0, or DEVNODE_E_NODE with last_error naming the URL. */
int dn_remote_open(struct devnode *dn);
/* Writes our znode (dn->rpc_endpoint, dn->ip, the devnode wire) once; zkregistry's keeper writes
 * it again after a session expiry. Sets dn->identity. 0 or DEVNODE_E_NODE. */
int dn_remote_register(struct devnode *dn);
/* Deletes our znode, so callers watching stop picking us before we stop answering. */
void dn_remote_unregister(struct devnode *dn);
/* The instances of `service` from the watched cache: no round trip once it is cached. */
int dn_remote_lookup(struct devnode *dn, const char *service, struct zkreg_list *out);
/* Closes the session (its znodes go with it). */
void dn_remote_close(struct devnode *dn);

#endif
