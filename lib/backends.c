/* backends.c: which back ends this process uses, read once from the environment when it opens
 * (docs/backends.md): DEVNODE_REGISTRY (a ZooKeeper URL, else the node's embedded registry),
 * DEVNODE_IP (the address a served endpoint binds and registers), DEVNODE_EVENTS_HEARTBEAT_S (the
 * RabbitMQ heartbeat). DEVNODE_EVENTS (RabbitMQ) is
 * events.c's, read and opened at the first subscribe or emit (lib/amqpevents.h). It reads and
 * checks; it connects to nothing. */
#include "lib/internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zkurl.h"

static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int dn_backends_read(struct devnode *dn, char *err, size_t errlen)
{
    const char *url = env_value("DEVNODE_REGISTRY");
    if (url) {
        struct zkurl parsed;
        char why[256];
        if (zkurl_parse(url, &parsed, why, sizeof why) < 0) {
            snprintf(err, errlen, "DEVNODE_REGISTRY: %s", why);
            return -1;
        }
        if (strlen(url) >= sizeof dn->registry_url) {
            snprintf(err, errlen, "DEVNODE_REGISTRY: the URL is longer than %zu bytes", sizeof dn->registry_url - 1);
            return -1;
        }
        snprintf(dn->registry_url, sizeof dn->registry_url, "%s", url);
    }
    /* Nothing listens beyond loopback unless the user names an address: RPC has no
     * authentication. The address is also what others are told to call, so it must be one. */
    const char *ip = env_value("DEVNODE_IP");
    struct in_addr addr;
    if (ip && (inet_pton(AF_INET, ip, &addr) != 1 || addr.s_addr == htonl(INADDR_ANY))) {
        snprintf(err, errlen,
                 "DEVNODE_IP=%.64s: want the IPv4 address other machines reach this one at (not 0.0.0.0: "
                 "it is registered as where to call)",
                 ip);
        return -1;
    }
    snprintf(dn->ip, sizeof dn->ip, "%s", ip ? ip : "127.0.0.1");
    dn->zk_session_ms = DN_ZK_SESSION_MS;
    const char *session = env_value("DEVNODE_REGISTRY_SESSION_MS");
    if (session) {
        char *end;
        long v = strtol(session, &end, 10);
        if (*end || v < 200 || v > 600000) {
            snprintf(err, errlen, "DEVNODE_REGISTRY_SESSION_MS=%.32s: want milliseconds from 200 to 600000", session);
            return -1;
        }
        dn->zk_session_ms = (int)v;
    }
    /* RabbitMQ's heartbeat (events.c passes it on): how soon a broker gone silent is noticed. */
    dn->amqp_heartbeat_s = DN_AMQP_HEARTBEAT_S;
    const char *beat = env_value("DEVNODE_EVENTS_HEARTBEAT_S");
    if (beat) {
        char *end;
        long v = strtol(beat, &end, 10);
        if (*end || v < 0 || v > 600) {
            snprintf(err, errlen, "DEVNODE_EVENTS_HEARTBEAT_S=%.32s: want seconds from 1 to 600, or 0 for none", beat);
            return -1;
        }
        dn->amqp_heartbeat_s = (int)v;
    }
    return 0;
}
