/* zkurl: reads a ZooKeeper registry URL, zookeeper://host[:port][,host[:port]...][/chroot],
 * into the host list the ZooKeeper client takes and the chroot every path lives under
 * (lymph's /lymph unless the URL names one; "/" names the root). The URL is outside input
 * (environment, config): it never allocates and refuses anything it does not understand. */
#ifndef DEVNODE_ZKURL_H
#define DEVNODE_ZKURL_H

#include <stddef.h>

#define ZKURL_HOSTS_MAX 1024   /* "host:port,host:port" as the client takes it, with the NUL */
#define ZKURL_CHROOT_MAX 256   /* "/lymph" or "" for the root, with the NUL */
#define ZKURL_DEFAULT_PORT 2181
#define ZKURL_DEFAULT_CHROOT "/lymph"

struct zkurl {
    char hosts[ZKURL_HOSTS_MAX];   /* every host with its port, comma-separated */
    char chroot[ZKURL_CHROOT_MAX]; /* no trailing slash; "" when the URL names the root */
    int nhosts;
};

/* Fills *out from url. Returns 0, or -1 with a one-line reason in err (naming the column). */
int zkurl_parse(const char *url, struct zkurl *out, char *err, size_t errlen);

#endif
