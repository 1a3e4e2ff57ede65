/* machine: the life of one instance as one state x event table, in the manner of s6's
 * s6-supervise: for each state, what each event makes the supervisor do, and, when the current
 * process exits, what comes next. Pure: no process, no timer, no clock; the supervisor
 * performs the actions (supervisor.c) and docs/supervision.md shows the table. */
#ifndef DEVNODE_MACHINE_H
#define DEVNODE_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

enum instance_state {
    INSTANCE_STARTING, /* spawned, not yet ready */
    INSTANCE_RUNNING,
    INSTANCE_BACKOFF,  /* exited; a restart is scheduled */
    INSTANCE_STOPPING, /* stop signal sent, waiting for the exit */
    INSTANCE_STOPPED,  /* stopped on request */
    INSTANCE_EXITED,   /* exited and its restart policy keeps it down */
    INSTANCE_FAILED,   /* cannot run (command not found, bad cwd); waits for `restart` */
};
#define INSTANCE_STATE_COUNT 7

/* What happens when the current process exits. */
enum instance_after_exit {
    AFTER_EXIT_POLICY,  /* an unexpected exit: the restart policy decides */
    AFTER_EXIT_RESTART, /* requested restart: start again at once */
    AFTER_EXIT_STOP,    /* requested stop: stay down */
    AFTER_EXIT_REMOVE,  /* scaled away: free the instance */
};

/* What happens to an instance. */
enum machine_event {
    EV_START,        /* it is wanted up: the node starts, or `scale` adds it */
    EV_RESTART,      /* `devnode restart` names it */
    EV_STOP,         /* the node stops (force: a second stop) */
    EV_REMOVE,       /* `scale` takes it away */
    EV_READY,        /* its current process passed its readiness check */
    EV_READY_LATE,   /* ... or did not within ready.timeout */
    EV_EXIT,         /* its current process exited */
    EV_BACKOFF_DONE, /* the delay before its next start passed */
    EV_LIVE_FAILED,  /* its current process missed `live.failures` liveness probes in a row */
};
#define MACHINE_EVENT_COUNT 9

/* What the supervisor does; each action names the state it leads to in machine_action_text. */
enum machine_action {
    ACT_IGNORE,        /* nothing: the event means nothing in this state */
    ACT_SPAWN,         /* start a process (starting; running once ready; failed if it cannot) */
    ACT_START_AFRESH,  /* cancel a pending backoff, reset its ladder, then ACT_SPAWN */
    ACT_RESTART,       /* with a shared socket: a new process beside the old one, which stops once
                          the new one is ready; else stop with AFTER_EXIT_RESTART */
    ACT_STOP,          /* stop signal to the current and any old process (stopping) */
    ACT_RESTART_AFTER, /* already stopping: start again once it has exited */
    ACT_REVIVE,        /* stopping to be removed, wanted again: start again once it has exited */
    ACT_STAY_DOWN,     /* cancel the pending restart (stopped) */
    ACT_STOP_REMOVE,   /* stop, then free the instance */
    ACT_REMOVE,        /* free the instance now: it has no process */
    ACT_MARK_READY,    /* running; the old process (if any) stops; a roll moves on */
    ACT_READY_LATE,    /* with an old process serving, kill the new one; else say so and wait */
    ACT_EXIT,          /* machine_exit_outcome decides */
    ACT_LIVE_RESTART,  /* stop it (stop_signal, SIGCONT); its exit goes through the restart policy */
};
#define MACHINE_ACTION_COUNT 14

enum machine_action machine_action(enum instance_state state, enum machine_event event);

/* What the current process's exit leads to. */
enum exit_outcome {
    EXIT_RESTORE_OLD, /* a replacement died before it was ready: the old process serves on (running) */
    EXIT_STOPPED,     /* stopped on request (stopped) */
    EXIT_REMOVED,     /* scaled away: freed, or stopping until its old process is gone too */
    EXIT_START_AGAIN, /* a requested restart: a new process at once, backoff reset */
    EXIT_CANNOT_RUN,  /* 127/126 within 2 s of its start (failed) */
    EXIT_STAY_DOWN,   /* its restart policy keeps it down (exited) */
    EXIT_GIVE_UP,     /* it was restarted max_restarts times within restart_window (failed) */
    EXIT_BACKOFF,     /* restarted after the backoff delay (backoff) */
};

/* `max_restarts` within `restart_window`, as systemd's StartLimitBurst= within
 * StartLimitIntervalSec=: the restarts the policy made since the first of a window. */
struct restart_limit {
    uint64_t window_start_ms;       /* when the first restart counted now was made */
    unsigned count;                 /* restarts counted since then */
};

#define MACHINE_CANNOT_RUN_WINDOW_MS 2000

struct exit_facts {
    int node_stopping;              /* the node is shutting down */
    enum instance_after_exit after; /* what was asked of the process before it exited */
    int old_running;                /* a process it was replacing still runs */
    int was_ready;                  /* it passed its readiness check */
    int exit_code;                  /* -1 when killed by a signal */
    int unhealthy;                  /* stopped for failing its liveness probe: a failure whatever its status */
    uint64_t uptime_ms;
    enum restart_policy restart;
    struct restart_limit *limit;    /* counts a restart it allows; NULL: no limit */
    unsigned max_restarts;          /* 0: no limit */
    uint64_t restart_window_ms;
    uint64_t now_ms;                /* for the window */
};

enum exit_outcome machine_exit_outcome(const struct exit_facts *f);

const char *instance_state_name(enum instance_state state);
const char *machine_event_name(enum machine_event event);
/* "spawn → starting", for the table in the docs. */
const char *machine_action_text(enum machine_action action);
/* The whole table as the Markdown of docs/supervision.md. Returns the length it needs. */
size_t machine_table_markdown(char *buf, size_t cap);

#endif
