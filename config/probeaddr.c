/* probeaddr: a small, strict reading of probe addresses. Only what a local dev probe needs:
 * plain HTTP (a probe of TLS would test the certificate, not the worker), numeric ports or
 * $PORT, IPv6 in brackets. Anything else is refused with the form it expects. */
#include "config/probeaddr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfgalloc.h"

#define DEFAULT_PROBE_HOST "127.0.0.1"

/* "4080" or "$PORT" (0); -1 otherwise. */
static int parse_port(const char *s, size_t len)
{
    if (len == 5 && !memcmp(s, "$PORT", 5))
        return 0;
    if (len == 7 && !memcmp(s, "${PORT}", 7))
        return 0;
    if (len == 0 || len > 5)
        return -1;
    int port = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}

/* HOST[:PORT] of len bytes into out->host/port; default_port when there is no ":PORT". */
static int parse_hostport(const char *s, size_t len, int default_port, struct config_probe *out)
{
    const char *host = s, *colon = NULL;
    size_t host_len;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close || close == s + 1)
            return -1;
        host = s + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < s + len) {
            if (close[1] != ':')
                return -1;
            colon = close + 1;
        }
    } else {
        colon = memrchr(s, ':', len);
        if (colon && memchr(s, ':', (size_t)(colon - s)))
            return -1; /* a bare IPv6 address: it needs brackets */
        host_len = colon ? (size_t)(colon - s) : len;
    }
    int port = default_port;
    if (colon) {
        port = parse_port(colon + 1, (size_t)(s + len - colon - 1));
        if (port < 0)
            return -1;
    }
    for (size_t i = 0; i < host_len; i++)
        if (host[i] == '/' || host[i] == '@' || host[i] == ' ' || host[i] == '?' || host[i] == '#')
            return -1;
    free(out->host);
    out->host = host_len ? cfg_xstrndup(host, host_len) : cfg_xstrdup(DEFAULT_PROBE_HOST);
    out->port = port;
    return 0;
}

static int path_ok(const char *path)
{
    if (path[0] != '/')
        return 0;
    for (const char *c = path; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return 0; /* it goes into the request line as written */
    return strlen(path) < 2048;
}

int probeaddr_parse_http(const char *text, struct config_probe *out, char *err, size_t errlen)
{
    free(out->path);
    out->path = NULL;
    if (text[0] == '/') {
        if (!path_ok(text))
            goto bad;
        free(out->host);
        out->host = cfg_xstrdup(DEFAULT_PROBE_HOST);
        out->port = 0;
        out->path = cfg_xstrdup(text);
        out->kind = PROBE_HTTP;
        return 0;
    }
    if (!strncmp(text, "https://", 8)) {
        snprintf(err, errlen, "https is not probed (a probe of TLS tests the certificate, not the worker): give "
                              "the plain-HTTP address, \"http://HOST:PORT/path\" or a path on PORT like \"/healthz\"");
        return -1;
    }
    if (strncmp(text, "http://", 7) != 0)
        goto bad;
    const char *authority = text + 7;
    const char *slash = strchr(authority, '/');
    size_t alen = slash ? (size_t)(slash - authority) : strlen(authority);
    if (alen == 0 || parse_hostport(authority, alen, 80, out) < 0)
        goto bad;
    const char *path = slash ? slash : "/";
    if (!path_ok(path))
        goto bad;
    out->path = cfg_xstrdup(path);
    out->kind = PROBE_HTTP;
    return 0;
bad:
    snprintf(err, errlen, "must be a path on the instance's PORT (\"/healthz\") or \"http://HOST:PORT/path\" "
                          "(PORT a number or $PORT), got \"%.80s\"", text);
    return -1;
}

int probeaddr_parse_tcp(const char *text, struct config_probe *out, char *err, size_t errlen)
{
    size_t len = strlen(text);
    int port = parse_port(text, len);
    if (port >= 0) {
        free(out->host);
        out->host = cfg_xstrdup(DEFAULT_PROBE_HOST);
        out->port = port;
        out->kind = PROBE_TCP;
        return 0;
    }
    if (len && (text[0] == '[' || strchr(text, ':')) && parse_hostport(text, len, -1, out) == 0 && out->port >= 0) {
        out->kind = PROBE_TCP;
        return 0;
    }
    snprintf(err, errlen, "must be a port 1..65535, $PORT (the instance's own), or HOST:PORT, got \"%.80s\"", text);
    return -1;
}
