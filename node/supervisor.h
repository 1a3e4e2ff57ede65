/* supervisor: owns every worker process: spawns the configured instances, restarts them with
 * backoff, stops them gracefully, scales, and turns their pipes into log lines for the hub.
 * It never prints and never talks to clients; the control server reads its state. */
#ifndef DEVNODE_SUPERVISOR_H
#define DEVNODE_SUPERVISOR_H

#include <limits.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "node/backoff.h"
#include "node/change.h"
#include "config/config.h"
#include "node/guardian.h"
#include "node/health.h"
#include "node/loghub.h"
#include "node/machine.h"
#include "node/procstat.h"
#include "node/readiness.h"
#include "node/startorder.h"
#include "sockets/sockets.h"

#define SERVICE_MAX_SOCKETS 16

struct output_pipe;
struct term;
struct service;

/* How much of the workers' output is read while the node's stdout lags (lossless printing):
 * an unread pipe fills and its writer blocks, as it would writing to that stdout itself. */
enum output_hold {
    OUTPUT_READ_ALL,
    OUTPUT_HOLD,        /* read only the pipes a `ready: {log:}` check still waits on */
    OUTPUT_HOLD_ALL,
};

/* One process of an instance. An instance has a current one and, while a zero-downtime
 * restart replaces it, the old one, serving until the current one is ready. Both go through
 * the same stop and exit paths. */
struct proc {
    struct instance *inst;
    pid_t pid;                      /* also its process group; 0 when the slot is empty */
    uint64_t started_ms;            /* loop time it started */
    struct output_pipe *out, *err;  /* owned until handed to a close callback */
    int ready;                      /* it passed its readiness check (kept after its exit) */
    int stopping;                   /* its stop signal was sent */
    int kill_sent;                  /* SIGKILL was sent to it */
    uv_timer_t stop_timer;          /* stop_timeout, then SIGKILL */
    struct term *term;              /* stdin: / tty: its input end and attacher (term.h); NULL */
};

struct instance {
    struct service *service;
    struct supervisor *sup;
    int index;                      /* 0-based within the service */
    enum instance_state state;
    enum instance_after_exit after_exit;
    struct proc *cur;               /* the current process (pid 0 when none) */
    struct proc *old;               /* the process being replaced (pid 0 when none) */
    struct proc procs[2];           /* where cur and old point; a replacement swaps them */
    unsigned starts;                /* processes started so far */
    unsigned restarts;              /* starts after the first */
    struct backoff backoff;
    struct restart_limit limit;     /* max_restarts: restarts counted in the current window */
    uv_timer_t backoff_timer;       /* the delay before the next start */
    int has_exited;                 /* last_exit_* are meaningful */
    int last_exit_code;             /* -1 when killed by a signal */
    int last_exit_signal;           /* 0 when it exited normally */
    struct procstat stat;
    char failure[256];              /* why it is FAILED */
    char port[32];                  /* the PORT its process was given, "" when none */
    struct ready_check check;       /* the current process's readiness check */
    struct live_check live;         /* its liveness check (`live:`), once it is ready */
    int unhealthy;                  /* its current process is being stopped for failing liveness */
    int open_handles;               /* handles not closed yet; freed when it reaches 0 */
};

struct service {
    const struct config_service *cfg;
    char *command;                  /* cfg->command with $(socket.*) expanded; owned */
    const struct bound_socket *sockets[SERVICE_MAX_SOCKETS]; /* passed from fd 3, in order */
    size_t socket_count;
    struct instance **instances;    /* by index; NULL holes while scaled-away ones finish */
    size_t instance_cap;            /* length of the instances array */
    int desired;                    /* instances wanted (numprocesses, then `scale`) */
    regex_t ready_re;               /* compiled ready.log_pattern */
    int has_ready_re;
    int rolling;                    /* a rolling restart is going through the instances */
    int roll_next;                  /* the next index it replaces */
    int addrinuse_told;             /* the EADDRINUSE hint was logged since the last restart */
    int removed;                    /* a reload took it out: its instances stop, nothing finds it */
    struct config_service *own_cfg; /* cfg, when a reload moved it out of the config it freed
                                     * (svcconfig.c); freed with the service. NULL: cfg is the node's */
};

/* What the node's stop did, for its one summary line. */
struct stop_tally {
    uint64_t began_ms;              /* loop time the stop began */
    unsigned instances;             /* instances that had a process when it began */
    unsigned services;              /* services those belong to */
    unsigned killed;                /* processes that had to be SIGKILLed */
    char killed_names[192];         /* "Web.0, Web.1", cut short with "..." */
    int forced;                     /* a second stop asked for SIGKILL at once */
};

struct supervisor {
    uv_loop_t *loop;
    const struct config *cfg;       /* the loaded config, for the warnings start gives */
    struct loghub *hub;
    struct guardian *guardian;
    const char *endpoint;           /* DEVNODE_ENDPOINT */
    const char *run_dir;            /* DEVNODE_RUN_DIR */
    pid_t node_pid;
    int devnull_fd;
    struct service *services;
    size_t service_count;
    int stopping;                   /* the node is shutting down */
    struct stop_tally stop;         /* meaningful once stopping */
    enum output_hold output_hold;   /* pipes are held lazily: at their next wake-up */
    uv_timer_t sample_timer;        /* /proc and accept-queue sampling */
    struct socket_set *sockets;     /* the node's; their accept queues are watched */
    struct notify_socket notify;    /* sd_notify datagrams; fd -1 when no service uses it */
    struct probe_set probes;        /* exec probes not reaped yet (health.c) */
    void (*on_all_stopped)(void *ctx);
    void *on_all_stopped_ctx;
    /* Told of every process the node reaps (workers, replaced ones, adopted orphans), so
     * the registry and the bus drop what that process held. */
    void (*on_process_exit)(void *ctx, pid_t pid);
    void *on_process_exit_ctx;
    struct change *changes;         /* restarts and scales a client waits for (change.c) */
    struct startorder order;        /* depends_on: what starts when, stop order (startorder.c) */
    const char *notify_dir;         /* where the NOTIFY_SOCKET is made, once a service needs it */
};

/* Returns 0, or with err set -EINVAL (a $(socket.X) naming no socket: a config error) or
 * -errno (a runtime failure). On failure nothing is left open, but handles it closed may
 * still await their close callbacks: the caller runs the loop before freeing `sup`. */
int supervisor_init(struct supervisor *sup, uv_loop_t *loop, const struct config *cfg,
                    struct socket_set *sockets, struct loghub *hub, struct guardian *guardian,
                    const char *endpoint, const char *run_dir, const char *notify_dir,
                    char *err, size_t errlen);
/* Starts every configured instance. */
void supervisor_start_all(struct supervisor *sup);
/* Reaps exited children (call on SIGCHLD). */
void supervisor_reap(struct supervisor *sup);
/* Graceful stop of everything (force: SIGKILL now). on_all_stopped fires once all are down. */
void supervisor_stop_all(struct supervisor *sup, int force);
int supervisor_all_down(const struct supervisor *sup);
/* "stopped 9 instances of 3 services in 0.4 s (2 killed after stop_timeout: Web.0, Web.1)" */
void supervisor_stop_summary(const struct supervisor *sup, char *buf, size_t len);
/* Holds the workers' output back, or reads it again (OUTPUT_READ_ALL). Exits still drain. */
void supervisor_hold_output(struct supervisor *sup, enum output_hold hold);

/* `restart NAME` or `restart NAME.N` (index -1 = every instance). Instances of a service
 * with sockets are replaced without downtime (new process, ready, then the old one stops),
 * one at a time for a whole service. Returns the number of instances restarted, or -1
 * with err set. With a waiter (NULL: none), it is told how the restart ends. */
int supervisor_restart(struct supervisor *sup, const char *service, int index,
                       const struct change_waiter *waiter, char *err, size_t errlen);
/* Returns count, or -1 with err set. A waiter hears when the new instances are ready and the
 * removed ones gone, or of the first that failed. */
int supervisor_scale(struct supervisor *sup, const char *service, int count,
                     const struct change_waiter *waiter, char *err, size_t errlen);

/* For startorder.c: EV_START to every desired instance of svc (created when missing), and
 * EV_STOP to one instance. */
void supervisor_start_service(struct supervisor *sup, struct service *svc);
void supervisor_stop_instance(struct instance *inst, int force);

/* The service named so, never a removed one; NULL when none. */
struct service *supervisor_find_service(struct supervisor *sup, const char *name);
/* Opens the NOTIFY_SOCKET if it is not open yet (a reload added `ready: notify`). 0, or -1
 * with err set. */
int supervisor_open_notify(struct supervisor *sup, char *err, size_t errlen);
/* While connections wait on `bs` with nobody accepting (sockets.h), the line the node says:
 * "Web: 12 connections waiting on 127.0.0.1:4080, none accepted for 5 s: do the workers use
 * the socket?". Returns 1 with buf set, or 0 with buf "". */
int supervisor_socket_warning(const struct supervisor *sup, const struct bound_socket *bs, uint64_t now_ms,
                              char *buf, size_t cap);
/* Closes every handle; the supervisor's memory is freed when the loop has run the closes. */
void supervisor_close(struct supervisor *sup);
void supervisor_free(struct supervisor *sup);

#endif
