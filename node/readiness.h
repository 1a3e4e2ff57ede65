/* readiness: the checks that say a worker's new process is ready (`ready:` in config.md):
 * a delay, a TCP port that answers, a log line that matches, an sd_notify READY=1. It
 * watches and reports through callbacks; it never signals a process nor changes an
 * instance's state: the supervisor decides what being ready, or late, means. */
#ifndef DEVNODE_READINESS_H
#define DEVNODE_READINESS_H

#include <limits.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "config/config.h"

struct tcpprobe;
struct probe;
struct config_probe;

/* The check of one instance's current process; embedded in the instance. */
struct ready_check {
    uv_timer_t timer;               /* the delay, the TCP probe's pace, or the wait timeout */
    struct tcpprobe *probe;         /* the `tcp:` probe in flight, or NULL */
    struct probe *run;              /* the `http:` or `exec:` probe in flight, or NULL */
    /* Starts an http or exec probe of the instance (health_probe_start); NULL: not now. */
    struct probe *(*start_probe)(void *ctx, const struct config_probe *cfg, unsigned timeout_ms,
                                 void (*cb)(void *cbctx, int ok, const char *detail), void *cbctx);
    const struct config_ready *cfg;
    uint64_t started_ms;            /* loop time the process being checked started */
    void (*on_ready)(void *ctx, const char *how);  /* how: "its port answered", ... */
    void (*on_timeout)(void *ctx);  /* not ready within cfg->timeout_ms (once per arm) */
    void (*on_closed)(void *ctx);   /* after ready_check_close, once its timer is closed */
    void *ctx;
};

void ready_check_init(struct ready_check *rc, uv_loop_t *loop, const struct config_ready *cfg, void *ctx,
                      void (*on_ready)(void *ctx, const char *how), void (*on_timeout)(void *ctx),
                      void (*on_closed)(void *ctx));
/* A process started at started_ms runs: on_ready at once for `ready: start` (returns 1),
 * else the timers are armed (returns 0). Log and notify checks are fed from outside. */
int ready_check_arm(struct ready_check *rc, uint64_t started_ms);
/* Ends the check: no callback comes until the next arm. */
void ready_check_stop(struct ready_check *rc);
void ready_check_close(struct ready_check *rc);
/* `ready: {http:}` and `{exec:}` need the instance's probes (health.c). */
void ready_check_use_probes(struct ready_check *rc,
                            struct probe *(*start_probe)(void *ctx, const struct config_probe *cfg, unsigned timeout_ms,
                                                         void (*cb)(void *, int, const char *), void *cbctx));
/* "start", "notify", "log", "tcp", "delay", "http", "exec". */
const char *ready_kind_name(enum ready_kind kind);

/* `ready: {log:}`: compiles the service's pattern (0, or -1 when there is none to compile:
 * config checks the pattern) and tests one line against it. */
int ready_pattern_compile(regex_t *re, const struct config_ready *cfg);
int ready_pattern_match(const regex_t *re, const char *text, size_t len);

/* `ready: notify`: the node's sd_notify datagram socket, told who sent READY=1. */
struct notify_socket {
    int fd;                         /* -1 when not open */
    uv_poll_t poll;
    char path[PATH_MAX];            /* the NOTIFY_SOCKET workers are given */
    void (*on_ready)(void *ctx, pid_t sender);
    void *ctx;
};

/* Returns 0, or -errno with err set; on failure nothing stays open (fd -1). */
int notify_socket_open(struct notify_socket *ns, uv_loop_t *loop, const char *dir,
                       void (*on_ready)(void *ctx, pid_t sender), void *ctx, char *err, size_t errlen);
/* Closes the poll handle (the loop must run its close); notify_socket_free then. */
void notify_socket_close(struct notify_socket *ns);
void notify_socket_free(struct notify_socket *ns);

#endif
