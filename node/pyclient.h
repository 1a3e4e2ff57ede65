/* pyclient: what devnode does for services written with its Python client (clients/python):
 * `up` appends the package's folder to each worker's PYTHONPATH after the user's, and `check`
 * warns when a `python3 -m devnode` service's interpreter lacks zmq/msgpack (the interpreter
 * trap, docs/python.md). It never changes the config or the caller's environment. */
#ifndef DEVNODE_PYCLIENT_H
#define DEVNODE_PYCLIENT_H

#include <stddef.h>

#include "config/config.h"

#define PYCLIENT_PYTHONPATH_MAX 8192

/* The PYTHONPATH a worker gets: the one in `envp` (a NULL-terminated KEY=VALUE list; the
 * user's, kept first) with the client's folder appended, found from the devnode binary
 * (<dir of /proc/self/exe>/clients/python, or <prefix>/share/devnode/python when installed as
 * <prefix>/bin/devnode). Returns `out`, or NULL when nothing changes (no folder found, already
 * on it, too long). */
const char *pyclient_pythonpath(char *const *envp, char out[PYCLIENT_PYTHONPATH_MAX]);

/* For `check`: 1 with a "FILE:LINE:COL: instances.S.command: ..." warning in `out` when service
 * `s` runs `python… -m devnode` with an interpreter that lacks a module the client needs
 * (asked by running it, at most 5 s); 0 when it has them or nothing can be told. */
int pyclient_check_interpreter(const struct config *cfg, const struct config_service *s, char *out, size_t cap);

#endif
