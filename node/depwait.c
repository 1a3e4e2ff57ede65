/* depwait: the dependency conditions as one function over counts, so unit tests can walk
 * every case without processes. A condition is met only when every instance meets it. */
#include "node/depwait.h"

#include <stdio.h>

#include "config/config.h"

static const char *wants(enum config_dep_condition c)
{
    switch (c) {
    case DEP_READY: return "to be ready";
    case DEP_STARTED: return "to start";
    case DEP_COMPLETED: return "to complete";
    }
    return "";
}

enum dep_verdict depwait_verdict(const char *name, const struct dep_facts *f, enum config_dep_condition condition,
                                 char *why, size_t cap)
{
    why[0] = '\0';
    if (f->instances == 0)
        return DEP_MET; /* scaled to 0: nothing to wait for (check warns) */
    if (f->failed) {
        snprintf(why, cap, "waiting for %s: failed (%s)", name, f->failure ? f->failure : "see its log");
        return DEP_BLOCKED;
    }
    if (f->exited_bad) {
        if (f->bad_code < 0)
            snprintf(why, cap, "waiting for %s: killed by SIG%s", name, config_signal_name(f->bad_signal));
        else
            snprintf(why, cap, "waiting for %s: exited %d", name, f->bad_code);
        return DEP_BLOCKED;
    }
    unsigned met = 0;
    switch (condition) {
    case DEP_COMPLETED:
        met = f->completed;
        break;
    case DEP_STARTED:
        met = f->up + f->completed; /* a one-shot that already finished has started */
        break;
    case DEP_READY:
        met = f->ready + f->completed;
        if (met < f->instances && f->late) {
            snprintf(why, cap, "waiting for %s: not ready within %.1fs", name, f->ready_timeout_ms / 1000.0);
            return DEP_BLOCKED;
        }
        break;
    }
    if (met >= f->instances)
        return DEP_MET;
    snprintf(why, cap, "waiting for %s %s", name, wants(condition));
    return DEP_WAIT;
}

int depwait_exit_status(int code, int signal)
{
    return signal ? 128 + signal : code;
}
