/* probe: one health probe run on the node's loop (http, tcp or exec) with a timeout,
 * reporting once through a callback. An HTTP GET and a TCP connect are non-blocking libuv
 * I/O; an exec probe forks through spawn.c and its exit comes back through the supervisor's
 * reaper (probe_set_reaped). It judges one answer; counting misses is the caller's. */
#ifndef DEVNODE_PROBE_H
#define DEVNODE_PROBE_H

#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#include "config/config.h"

struct probe;

/* The exec probes whose process has not been reaped yet; owned by the supervisor. */
struct probe_set {
    struct probe *execs;
};

/* What to probe, resolved for one instance. Strings are read during probe_start only. */
struct probe_spec {
    enum probe_kind kind;
    const char *host;           /* HTTP, TCP */
    int port;                   /* HTTP, TCP */
    const char *path;           /* HTTP */
    const char *command;        /* EXEC: /bin/sh -c COMMAND */
    const char *cwd;            /* EXEC */
    char *const *envp;          /* EXEC */
    int devnull_fd;             /* EXEC: its stdin, stdout and stderr */
};

/* ok: 1 healthy; detail: "HTTP 200", "HTTP 503", "connection refused", "timed out after 1s",
 * "exit status 1". */
typedef void (*probe_cb)(void *ctx, int ok, const char *detail);

/* Starts a probe: cb runs exactly once, later, unless it is cancelled first. NULL with err
 * set when it could not start (an exec probe that cannot fork); cb never runs then. */
struct probe *probe_start(uv_loop_t *loop, struct probe_set *set, const struct probe_spec *spec,
                          unsigned timeout_ms, probe_cb cb, void *ctx, char *err, size_t errlen);
/* cb will not run; an exec probe's process group is killed. p: one whose cb has not run. */
void probe_cancel(struct probe *p);
/* The reaper saw pid exit: 1 when it was an exec probe's (now handled), else 0. */
int probe_set_reaped(struct probe_set *set, pid_t pid, int status);

/* At the node's end, after the loop ran the closes: frees runs that wait only for a reap. */
void probe_set_free(struct probe_set *set);

/* "GET http://127.0.0.1:5001/healthz", "TCP 127.0.0.1:5001", "exec `./check`". */
void probe_describe(const struct probe_spec *spec, char *buf, size_t cap);

#endif
