/* probeaddr: the addresses a health probe takes (`ready: {http:}`, `live: {http:, tcp:}`),
 * parsed into a struct config_probe. Pure: no socket, no resolver; the loader (keys.c) turns
 * an error into file:line:col. */
#ifndef DEVNODE_PROBEADDR_H
#define DEVNODE_PROBEADDR_H

#include <stddef.h>

#include "config/config.h"

/* "/healthz" (on the instance's PORT), or "http://HOST[:PORT]/path" with PORT a number or
 * $PORT. Fills host (allocated), port (0: $PORT) and path. 0, or -1 with err set. */
int probeaddr_parse_http(const char *text, struct config_probe *out, char *err, size_t errlen);
/* "PORT", "$PORT", "HOST:PORT", "HOST:$PORT", "[::1]:PORT". 0, or -1 with err set. */
int probeaddr_parse_tcp(const char *text, struct config_probe *out, char *err, size_t errlen);

#endif
