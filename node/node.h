/* node: the one context of `devnode up`. It owns the loop and every module, wires the log
 * path (supervisor -> hub -> printer, log file) and the control requests, and runs until
 * everything it started is stopped. The only mutable state of the node lives here. */
#ifndef DEVNODE_NODE_H
#define DEVNODE_NODE_H

#include <uv.h>

#include "common/rundir.h"
#include "config/config.h"
#include "node/attach.h"
#include "node/bus.h"
#include "node/control.h"
#include "node/guardian.h"
#include "node/logfile.h"
#include "node/loghub.h"
#include "node/printer.h"
#include "node/procstat.h"
#include "node/registry.h"
#include "node/supervisor.h"
#include "node/tailserver.h"
#include "node/watch.h"
#include "node/configwatch.h"
#include "sockets/sockets.h"

enum node_exit { NODE_EXIT_OK = 0, NODE_EXIT_FAILURE = 1, NODE_EXIT_USAGE = 2 };

/* INT, TERM, QUIT stop; HUP reloads (stops when the terminal is gone); USR1 reopens the log file; USR2 is ignored; CHLD reaps. */
#define NODE_SIGNAL_COUNT 7

struct node;

struct node_options {
    const char *config_path;
    const char *vars_path;
    /* What a reload (node/reload.h) needs to load the config as `up` did: */
    const char *config_shown;  /* the path as the user gave it, for messages (NULL: cfg.path) */
    unsigned config_flags;     /* enum config_load_flags (--no-dotenv) */
    int port_base;             /* --port-base, 0 when not given */
    const char *formation;     /* -m, or NULL */
    int watch_config;          /* --watch-config: reload when .lymph.yml or an env file changes */
    int color;             /* colour in the plain output */
    enum printer_mode output_mode; /* --lossy / --lossless, or auto (lossy on a terminal only) */
    /* A front end (the dashboard cli/cmd_up.c composes with the node) owns the terminal: the
     * plain output goes to /dev/null and the stop summary to stderr once the terminal is back.
     * The node knows nothing of the front end but these two calls, both on the node's loop: */
    int front_end;
    /* once the control endpoint listens, before the first line and the first worker: the
     * front end starts on `loop` and talks to the node at `endpoint` (stop it with
     * node_request_stop) */
    void (*on_ready)(void *ctx, struct node *node, uv_loop_t *loop, const char *endpoint);
    /* once every instance stopped, before the node closes its handles: the front end gives
     * the terminal back */
    void (*on_all_stopped)(void *ctx);
    void *hook_ctx;
    /* `up NAME...` / `run NAME...` (docs/dependencies.md): the services to start, with what
     * they depend on unless no_deps; none: every service not disabled. Names are checked. */
    char *const *services;
    size_t service_count;
    int no_deps;
    int run;               /* `devnode run`: stop once the one-shot services completed */
    int abort_on_failure;  /* ... or at the first failure of any service */
};

struct node {
    uv_loop_t loop;
    struct config cfg;
    struct rundir rundir;
    struct socket_set sockets;  /* bound before any worker starts, open for the node's life */
    struct guardian guardian;
    struct loghub hub;
    struct logfile logfile;
    struct printer printer;
    struct supervisor sup;
    struct control control;
    struct tailserver tail;     /* ring, trace index, tail/traces requests */
    struct registry registry;   /* which instances serve RPC, and where */
    struct bus bus;             /* the embedded event bus */
    struct watch *watch;        /* restarts on file changes; NULL when no service has watch: */
    struct attach_server attach; /* devnode attach: sessions on workers' terminals */
    struct configwatch *configwatch; /* --watch-config; NULL without */
    uv_signal_t signals[NODE_SIGNAL_COUNT]; /* one per entry of node.c's node_signals[] */
    uv_check_t flush_check;     /* flushes printer and log file once per loop iteration */
    int interrupts;             /* Ctrl-C / SIGTERM count: 1 graceful, 2 forced */
    char stop_summary[320];     /* "stopped 9 instances of 3 services in 0.4 s", once all are down */
    uint64_t started_ms;
    struct procstat self_stat;
    int log_error_reported;     /* a failing log file is reported once, not per line */
    int exit_code;
    const struct node_options *opts; /* the caller's, for node_run's duration (the hooks) */
    int devnull_fd;             /* the plain printer's output while a front end owns the terminal */
    int tty_fd;                 /* a terminal fd the node was started on, -1: none (SIGHUP: gone?) */
};

/* Runs the node for an already loaded config (ownership of cfg moves to the node).
 * Returns the process exit code. */
int node_run(struct config *cfg, const struct node_options *opts);

/* Registers status/restart/scale/stop with the control server. */
void node_register_requests(struct node *node);
/* Begins a graceful stop (a second call forces it). */
void node_request_stop(struct node *node, const char *why);

#endif
