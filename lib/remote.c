/* remote.c: registering and looking up through ZooKeeper for the library (remote.h). The
 * description is lymph's (zkregistry.c writes it) with the endpoint this process serves on, the
 * address DEVNODE_IP names and the wire devnode speaks, so lymph's tooling reads it and another
 * devnode client knows it may call it. It must never block a caller longer than the session
 * timeout, nor leave a znode of ours once stopped. */
#include "lib/remote.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int dn_remote(const struct devnode *dn)
{
    return dn->registry_url[0] != '\0';
}

int dn_remote_open(struct devnode *dn)
{
    if (dn->zk)
        return 0;
    char why[300];
    if (zkreg_open(&dn->zk, dn->registry_url, dn->zk_session_ms, why, sizeof why) < 0)
        return dn_fail(dn, DEVNODE_E_NODE, "registry %s: %s", dn->registry_url, why);
    return 0;
}

/* FNV-1a twice with different seeds, as the node makes identities: 32 hex digits, stable for
 * the same text. lymph used md5 here; nothing but its tooling's display reads them. */
static void hash_hex(char out[33], const char *text)
{
    uint64_t h1 = 1469598103934665603ull, h2 = 0x9e3779b97f4a7c15ull;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h1 = (h1 ^ *p) * 1099511628211ull;
        h2 = (h2 ^ *p) * 0x100000001b3ull + 7;
    }
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
}

int dn_remote_register(struct devnode *dn)
{
    if (dn->zk_id[0])
        return 0; /* written once; the keeper restores it after an expiry */
    int rc = dn_remote_open(dn);
    if (rc < 0)
        return rc;
    char host[256] = "", key[PATH_MAX + 512];
    if (gethostname(host, sizeof host - 1) < 0)
        snprintf(host, sizeof host, "localhost");
    /* lymph: identity from the endpoint, id from (identity, name, version) */
    snprintf(key, sizeof key, "%s|%s|%d", dn->rpc_endpoint, host, (int)dn->pid);
    char identity[33], id[33];
    hash_hex(identity, key);
    snprintf(key, sizeof key, "%s|%s", identity, dn->service);
    hash_hex(id, key);
    struct zkreg_desc d = {.service = dn->service,
                           .id = id,
                           .identity = identity,
                           .endpoint = dn->rpc_endpoint,
                           .hostname = host,
                           .ip = dn->ip,
                           .wire = ZKREG_WIRE_DEVNODE,
                           .pid = (long)dn->pid};
    char why[300];
    if (zkreg_register(dn->zk, &d, why, sizeof why) < 0)
        return dn_fail(dn, DEVNODE_E_NODE, "%s", why);
    snprintf(dn->zk_id, sizeof dn->zk_id, "%s", id);
    snprintf(dn->identity, sizeof dn->identity, "%s", identity);
    return 0;
}

void dn_remote_unregister(struct devnode *dn)
{
    if (!dn->zk || !dn->zk_id[0])
        return;
    char why[300];
    if (zkreg_unregister(dn->zk, dn->service, dn->zk_id, why, sizeof why) < 0)
        dn_warn(dn, DEVNODE_WARNING, "%s.%d: %s (it goes with the session)", dn->service, dn->instance, why);
    dn->zk_id[0] = '\0';
}

int dn_remote_lookup(struct devnode *dn, const char *service, struct zkreg_list *out)
{
    int rc = dn_remote_open(dn);
    if (rc < 0)
        return rc;
    char why[300];
    if (zkreg_lookup(dn->zk, service, out, why, sizeof why) < 0)
        return dn_fail(dn, DEVNODE_E_NODE, "%s", why);
    return 0;
}

void dn_remote_close(struct devnode *dn)
{
    zkreg_close(dn->zk);
    dn->zk = NULL;
    dn->zk_id[0] = '\0';
}
