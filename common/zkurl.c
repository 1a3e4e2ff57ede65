/* zkurl: the ZooKeeper registry URL (see zkurl.h). Hosts are names or IPv4 addresses; an
 * IPv6 literal is refused by name rather than handed to a client that may read it wrong.
 * It must never accept a URL whose parts it would have to guess. */
#include "common/zkurl.h"

#include <stdio.h>
#include <string.h>

#define SCHEME "zookeeper://"

static int fail(char *err, size_t errlen, const char *url, const char *at, const char *why)
{
    snprintf(err, errlen, "registry URL column %d: %s (expected zookeeper://host:port[,host:port...][/chroot])",
             (int)(at - url) + 1, why);
    return -1;
}

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_';
}

/* A znode name part of the chroot: printable ASCII but '/', not "." or "..". ZooKeeper
 * itself refuses control characters and the relative names; '?' and '#' would be a URL's
 * query or fragment, which nobody means as a znode name. */
static int chroot_char(char c)
{
    return c > 0x20 && c < 0x7f && c != '/' && c != '?' && c != '#';
}

int zkurl_parse(const char *url, struct zkurl *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!url || strncmp(url, SCHEME, strlen(SCHEME)) != 0)
        return fail(err, errlen, url ? url : "", url ? url : "", "the scheme must be zookeeper://");
    const char *p = url + strlen(SCHEME);
    size_t used = 0;
    for (;;) {
        const char *host = p;
        if (*p == '[')
            return fail(err, errlen, url, p, "IPv6 addresses are not supported; use a host name");
        while (host_char(*p))
            p++;
        size_t hlen = (size_t)(p - host);
        if (*p == '@')
            return fail(err, errlen, url, p, "user info is not supported");
        if (hlen == 0)
            return fail(err, errlen, url, p, "a host name is missing");
        if (hlen > 253)
            return fail(err, errlen, url, host, "host name longer than 253 characters");
        long port = ZKURL_DEFAULT_PORT;
        if (*p == ':') {
            const char *digits = ++p;
            port = 0;
            while (*p >= '0' && *p <= '9' && p - digits < 6)
                port = port * 10 + (*p++ - '0');
            if (p == digits || (*p >= '0' && *p <= '9') || port < 1 || port > 65535)
                return fail(err, errlen, url, digits, "the port must be a number from 1 to 65535");
        }
        int n = snprintf(out->hosts + used, sizeof out->hosts - used, "%s%.*s:%ld", used ? "," : "", (int)hlen, host,
                         port);
        if (n < 0 || (size_t)n >= sizeof out->hosts - used)
            return fail(err, errlen, url, host, "the host list is too long");
        used += (size_t)n;
        out->nhosts++;
        if (*p != ',')
            break;
        p++;
    }
    if (*p == '\0') {
        snprintf(out->chroot, sizeof out->chroot, "%s", ZKURL_DEFAULT_CHROOT);
        return 0;
    }
    if (*p != '/')
        return fail(err, errlen, url, p,
                    *p == '?' || *p == '#' ? "query and fragment are not supported"
                                           : "unexpected character after the hosts");
    if (p[1] == '\0')
        return 0; /* "/": the root itself */
    const char *chroot = p;
    while (*p == '/') {
        const char *part = ++p;
        while (chroot_char(*p))
            p++;
        size_t len = (size_t)(p - part);
        if (len == 0)
            return fail(err, errlen, url, part, *p == '\0' ? "the chroot must not end with '/'" : "empty name in the chroot");
        if ((len == 1 && part[0] == '.') || (len == 2 && part[0] == '.' && part[1] == '.'))
            return fail(err, errlen, url, part, "'.' and '..' are not allowed in the chroot");
    }
    if (*p == '?' || *p == '#')
        return fail(err, errlen, url, p, "query and fragment are not supported");
    if (*p != '\0')
        return fail(err, errlen, url, p, "the chroot may hold only printable characters");
    if ((size_t)(p - chroot) >= sizeof out->chroot)
        return fail(err, errlen, url, chroot, "the chroot is longer than 255 characters");
    memcpy(out->chroot, chroot, (size_t)(p - chroot));
    out->chroot[p - chroot] = '\0';
    return 0;
}
