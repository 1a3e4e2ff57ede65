/* machine: the instance state x event table and the exit decision. Every cell is written out,
 * so a state that ignores an event says so here rather than by a missing `if`. */
#include "node/machine.h"

#include <stdio.h>
#include <string.h>

#define S_ INSTANCE_STATE_COUNT
#define E_ MACHINE_EVENT_COUNT

/*                  START             RESTART            STOP           REMOVE           READY           READY_LATE      EXIT        BACKOFF_DONE LIVE_FAILED */
static const enum machine_action TABLE[S_][E_] = {
    [INSTANCE_STARTING] = {ACT_IGNORE,       ACT_RESTART,       ACT_STOP,      ACT_STOP_REMOVE, ACT_MARK_READY, ACT_READY_LATE, ACT_EXIT,   ACT_IGNORE,  ACT_IGNORE},
    [INSTANCE_RUNNING]  = {ACT_IGNORE,       ACT_RESTART,       ACT_STOP,      ACT_STOP_REMOVE, ACT_IGNORE,     ACT_IGNORE,     ACT_EXIT,   ACT_IGNORE,  ACT_LIVE_RESTART},
    [INSTANCE_BACKOFF]  = {ACT_IGNORE,       ACT_START_AFRESH,  ACT_STAY_DOWN, ACT_REMOVE,      ACT_IGNORE,     ACT_IGNORE,     ACT_IGNORE, ACT_SPAWN,   ACT_IGNORE},
    [INSTANCE_STOPPING] = {ACT_REVIVE,       ACT_RESTART_AFTER, ACT_STOP,      ACT_STOP_REMOVE, ACT_IGNORE,     ACT_IGNORE,     ACT_EXIT,   ACT_IGNORE,  ACT_IGNORE},
    [INSTANCE_STOPPED]  = {ACT_START_AFRESH, ACT_START_AFRESH,  ACT_IGNORE,    ACT_REMOVE,      ACT_IGNORE,     ACT_IGNORE,     ACT_IGNORE, ACT_IGNORE,  ACT_IGNORE},
    [INSTANCE_EXITED]   = {ACT_START_AFRESH, ACT_START_AFRESH,  ACT_IGNORE,    ACT_REMOVE,      ACT_IGNORE,     ACT_IGNORE,     ACT_IGNORE, ACT_IGNORE,  ACT_IGNORE},
    [INSTANCE_FAILED]   = {ACT_START_AFRESH, ACT_START_AFRESH,  ACT_IGNORE,    ACT_REMOVE,      ACT_IGNORE,     ACT_IGNORE,     ACT_IGNORE, ACT_IGNORE,  ACT_IGNORE},
};

enum machine_action machine_action(enum instance_state state, enum machine_event event)
{
    if ((unsigned)state >= S_ || (unsigned)event >= E_)
        return ACT_IGNORE;
    return TABLE[state][event];
}

enum exit_outcome machine_exit_outcome(const struct exit_facts *f)
{
    if (f->old_running && !f->was_ready && !f->node_stopping && f->after == AFTER_EXIT_POLICY)
        return EXIT_RESTORE_OLD;
    if (f->node_stopping || f->after == AFTER_EXIT_STOP)
        return EXIT_STOPPED;
    if (f->after == AFTER_EXIT_REMOVE)
        return EXIT_REMOVED;
    if (f->after == AFTER_EXIT_RESTART)
        return EXIT_START_AGAIN;
    /* The shell's "not found" / "not executable" right after a start: restarting cannot help. */
    if ((f->exit_code == 127 || f->exit_code == 126) && f->uptime_ms < MACHINE_CANNOT_RUN_WINDOW_MS)
        return EXIT_CANNOT_RUN;
    if (f->restart == RESTART_NEVER || (f->restart == RESTART_ON_FAILURE && f->exit_code == 0 && !f->unhealthy))
        return EXIT_STAY_DOWN;
    if (f->limit && f->max_restarts) {
        struct restart_limit *l = f->limit;
        if (l->count == 0 || f->now_ms - l->window_start_ms >= f->restart_window_ms) {
            l->window_start_ms = f->now_ms;
            l->count = 0;
        }
        if (l->count >= f->max_restarts)
            return EXIT_GIVE_UP;
        l->count++;
    }
    return EXIT_BACKOFF;
}

const char *instance_state_name(enum instance_state state)
{
    switch (state) {
    case INSTANCE_STARTING: return "starting";
    case INSTANCE_RUNNING: return "running";
    case INSTANCE_BACKOFF: return "backoff";
    case INSTANCE_STOPPING: return "stopping";
    case INSTANCE_STOPPED: return "stopped";
    case INSTANCE_EXITED: return "exited";
    case INSTANCE_FAILED: return "failed";
    }
    return "unknown";
}

const char *machine_event_name(enum machine_event event)
{
    static const char *const names[E_] = {
        [EV_START] = "start", [EV_RESTART] = "restart", [EV_STOP] = "stop", [EV_REMOVE] = "remove",
        [EV_READY] = "ready", [EV_READY_LATE] = "ready late", [EV_EXIT] = "exit",
        [EV_BACKOFF_DONE] = "backoff over", [EV_LIVE_FAILED] = "live failed",
    };
    return (unsigned)event < E_ ? names[event] : "?";
}

static const struct {
    const char *name, *text;
} ACTIONS[MACHINE_ACTION_COUNT] = {
    [ACT_IGNORE] = {"·", "nothing: the event means nothing in this state"},
    [ACT_SPAWN] = {"spawn", "start a process: `starting`, then `running` once ready (`failed` if it cannot start)"},
    [ACT_START_AFRESH] = {"start", "cancel a pending restart, reset the backoff ladder and the max_restarts count, "
                                   "spawn"},
    [ACT_RESTART] = {"replace",
                     "with a shared socket, a new process beside the old one (`starting`), the old one "
                     "stopped once the new one is ready; without, stop and start again (`stopping`)"},
    [ACT_STOP] = {"stop", "stop_signal to the process (and an old one), SIGKILL after stop_timeout or at once "
                          "when forced: `stopping`, then `stopped`"},
    [ACT_RESTART_AFTER] = {"then start", "already stopping: start again once it has exited"},
    [ACT_REVIVE] = {"revive", "was stopping to be scaled away: start again once it has exited instead"},
    [ACT_STAY_DOWN] = {"cancel", "cancel the pending restart: `stopped`"},
    [ACT_STOP_REMOVE] = {"stop, free", "stop as above, then free the instance (after its old process too)"},
    [ACT_REMOVE] = {"free", "free the instance now: it has no process"},
    [ACT_MARK_READY] = {"ready", "`running`; an old process is stopped; a rolling restart moves on"},
    [ACT_READY_LATE] = {"late", "with an old process serving, kill the new one (the old one serves on); else "
                                "say so and keep waiting (a rolling restart stops there)"},
    [ACT_EXIT] = {"exit", "the exit decides, in this order: a replacement that died before it was ready "
                          "gives the job back to the old process (`running`); a requested stop, scale-down or "
                          "restart does what was asked (`stopped`, freed, a new process); exit 127/126 within "
                          "2 s is `failed`; the restart policy keeps it down (`exited`); past `max_restarts` "
                          "within `restart_window` it is `failed`; else it restarts after the backoff "
                          "(`backoff`)"},
    [ACT_LIVE_RESTART] = {"live restart", "its liveness probe missed `failures` times in a row: stop_signal, then SIGCONT "
                                    "(a stopped process acts on it), SIGKILL after stop_timeout (`stopping`); its exit "
                                    "goes through the restart policy, the backoff and `max_restarts` as a crash does"},
};

const char *machine_action_text(enum machine_action action)
{
    return (unsigned)action < MACHINE_ACTION_COUNT ? ACTIONS[action].text : "?";
}

static size_t put(char *buf, size_t cap, size_t at, const char *s)
{
    size_t n = strlen(s);
    if (at < cap) {
        size_t room = cap - at - 1;
        memcpy(buf + at, s, n < room ? n : room);
        buf[at + (n < room ? n : room)] = '\0';
    }
    return at + n;
}

size_t machine_table_markdown(char *buf, size_t cap)
{
    size_t at = 0;
    if (cap)
        buf[0] = '\0';
    at = put(buf, cap, at, "| state \\ event |");
    for (int e = 0; e < E_; e++) {
        at = put(buf, cap, at, " ");
        at = put(buf, cap, at, machine_event_name(e));
        at = put(buf, cap, at, " |");
    }
    at = put(buf, cap, at, "\n| --- |");
    for (int e = 0; e < E_; e++)
        at = put(buf, cap, at, " --- |");
    at = put(buf, cap, at, "\n");
    for (int s = 0; s < S_; s++) {
        at = put(buf, cap, at, "| `");
        at = put(buf, cap, at, instance_state_name(s));
        at = put(buf, cap, at, "` |");
        for (int e = 0; e < E_; e++) {
            at = put(buf, cap, at, " ");
            at = put(buf, cap, at, ACTIONS[TABLE[s][e]].name);
            at = put(buf, cap, at, " |");
        }
        at = put(buf, cap, at, "\n");
    }
    at = put(buf, cap, at, "\n| action | what the supervisor does |\n| --- | --- |\n");
    for (int a = 0; a < MACHINE_ACTION_COUNT; a++) {
        at = put(buf, cap, at, "| ");
        at = put(buf, cap, at, ACTIONS[a].name);
        at = put(buf, cap, at, " | ");
        at = put(buf, cap, at, ACTIONS[a].text);
        at = put(buf, cap, at, " |\n");
    }
    return at;
}
