/* change: the bookkeeping behind `restart` and `scale` that wait for their outcome. Success
 * is read from the instances' state when settling (a new process, ready, nothing old left);
 * failures are recorded as they happen, because the state after a failure (restored old
 * process, backoff) no longer shows it. Nothing here signals, spawns or talks to clients. */
#include "node/change.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "common/xalloc.h"
#include "node/supervisor.h"

/* Per instance step, on top of its stop and ready timeouts: spawn, SIGKILL taking effect. */
#define CHANGE_STEP_SLACK_MS 1000

enum entry_goal {
    GOAL_START, /* a process started after the change began is ready, no old one left */
    GOAL_GONE,  /* the instance is scaled away and its processes have exited */
};

enum entry_state { ENTRY_PENDING, ENTRY_DONE, ENTRY_FAILED };

struct change_entry {
    int index;
    enum entry_goal goal;
    enum entry_state state;
    unsigned base_starts; /* the instance's starts when watched: more is a new process */
    int kept_old;         /* it failed while its old process served: that one keeps serving */
};

struct change {
    struct change *next;
    struct service *svc;
    enum change_kind kind;
    struct change_waiter waiter;
    uint64_t begun_ms;          /* loop time of the request */
    int building;               /* between begin and commit: never settled */
    struct change_entry *entries;
    size_t entry_count, entry_cap;
    char failure[512];          /* the first failure, "" while none */
};

struct change *change_begin(struct supervisor *sup, struct service *svc, enum change_kind kind,
                            const struct change_waiter *waiter)
{
    struct change *ch = xcalloc(1, sizeof *ch);
    ch->svc = svc;
    ch->kind = kind;
    ch->waiter = *waiter;
    uv_update_time(sup->loop);
    ch->begun_ms = uv_now(sup->loop);
    ch->building = 1;
    ch->next = sup->changes;
    sup->changes = ch;
    return ch;
}

static void change_add(struct change *ch, int index, enum entry_goal goal, unsigned base_starts)
{
    if (ch->entry_count == ch->entry_cap) {
        ch->entry_cap = ch->entry_cap ? ch->entry_cap * 2 : 8;
        ch->entries = xrealloc(ch->entries, ch->entry_cap * sizeof *ch->entries);
    }
    ch->entries[ch->entry_count++] = (struct change_entry){
        .index = index, .goal = goal, .state = ENTRY_PENDING, .base_starts = base_starts};
}

void change_watch_start(struct change *ch, int index, const struct instance *inst)
{
    change_add(ch, index, GOAL_START, inst ? inst->starts : 0);
}

void change_watch_gone(struct change *ch, int index)
{
    change_add(ch, index, GOAL_GONE, 0);
}

/* The longest one instance's step can take: the old process stopping (before the new one
 * starts, or after it is ready), then the new one getting ready. A roll takes them in turn. */
static uint64_t change_timeout_ms(const struct change *ch)
{
    const struct config_service *cfg = ch->svc->cfg;
    uint64_t ready_ms = 0;
    if (cfg->ready.kind == READY_DELAY)
        ready_ms = cfg->ready.delay_ms;
    else if (cfg->ready.kind != READY_AT_START)
        ready_ms = cfg->ready.timeout_ms;
    uint64_t step = cfg->stop_timeout_ms + ready_ms + CHANGE_STEP_SLACK_MS;
    if (ch->kind == CHANGE_ROLL && ch->entry_count > 1)
        return step * ch->entry_count;
    return step;
}

void change_commit(struct supervisor *sup, struct change *ch)
{
    ch->building = 0;
    if (ch->waiter.started)
        ch->waiter.started(ch->waiter.ctx, ch->entry_count, change_timeout_ms(ch));
    change_settle(sup);
}

static void entry_fail(struct change *ch, struct change_entry *e, const struct instance *inst,
                       const char *why)
{
    e->state = ENTRY_FAILED;
    e->kept_old = inst->old->pid != 0 && !inst->cur->ready;
    if (!ch->failure[0])
        snprintf(ch->failure, sizeof ch->failure, "%s.%d %s", inst->service->cfg->name, inst->index, why);
}

/* Calls fn for each pending entry, of any change, that watches this instance. */
static void for_each_pending(struct supervisor *sup, const struct instance *inst,
                             void (*fn)(struct change *, struct change_entry *, const struct instance *,
                                        const void *),
                             const void *arg)
{
    for (struct change *ch = sup->changes; ch; ch = ch->next) {
        if (ch->svc != inst->service)
            continue;
        for (size_t i = 0; i < ch->entry_count; i++)
            if (ch->entries[i].index == inst->index && ch->entries[i].state == ENTRY_PENDING)
                fn(ch, &ch->entries[i], inst, arg);
    }
}

static void on_exit_entry(struct change *ch, struct change_entry *e, const struct instance *inst,
                          const void *arg)
{
    const char *how = arg;
    /* An old process going is what a restart asks for, and so is one stopped to be started
     * again (a backoff may have started it meanwhile); only a new one's exit is news. */
    if (e->goal != GOAL_START || inst->starts <= e->base_starts || inst->after_exit == AFTER_EXIT_RESTART)
        return;
    char why[256];
    if (inst->after_exit == AFTER_EXIT_STOP || inst->after_exit == AFTER_EXIT_REMOVE)
        snprintf(why, sizeof why, "was stopped (%s) before it was ready", how);
    else if (!inst->cur->ready)
        snprintf(why, sizeof why, "%s before it was ready", how);
    else
        snprintf(why, sizeof why, "%s right after it was ready", how);
    entry_fail(ch, e, inst, why);
}

void change_note_exit(struct supervisor *sup, const struct instance *inst, const char *how)
{
    for_each_pending(sup, inst, on_exit_entry, how);
}

static void on_failure_entry(struct change *ch, struct change_entry *e, const struct instance *inst,
                             const void *arg)
{
    if (e->goal == GOAL_START)
        entry_fail(ch, e, inst, arg);
}

void change_note_failure(struct supervisor *sup, const struct instance *inst, const char *why)
{
    for_each_pending(sup, inst, on_failure_entry, why);
}

static void on_gone_entry(struct change *ch, struct change_entry *e, const struct instance *inst,
                          const void *arg)
{
    if (e->goal == GOAL_GONE)
        e->state = ENTRY_DONE;
    else
        entry_fail(ch, e, inst, "was scaled away before it was ready");
}

void change_note_gone(struct supervisor *sup, const struct instance *inst)
{
    for_each_pending(sup, inst, on_gone_entry, NULL);
}

static void on_revived_entry(struct change *ch, struct change_entry *e, const struct instance *inst,
                             const void *arg)
{
    if (e->goal == GOAL_GONE)
        entry_fail(ch, e, inst, "was scaled up again before it had stopped");
}

void change_note_revived(struct supervisor *sup, const struct instance *inst)
{
    for_each_pending(sup, inst, on_revived_entry, NULL);
}

/* ---- the closing line -------------------------------------------------------------- */

struct phrase {
    const char *one, *many;
};

static const struct phrase PHRASE_RESTARTED = {"restarted", "restarted"};
static const struct phrase PHRASE_READY = {"is ready", "are ready"};
static const struct phrase PHRASE_STOPPED = {"stopped", "stopped"};
static const struct phrase PHRASE_OLD = {"still runs its old process", "still run their old processes"};
static const struct phrase PHRASE_NOT_RESTARTED = {"was not restarted", "were not restarted"};
static const struct phrase PHRASE_STILL_STOPPING = {"is still stopping", "are still stopping"};
static const struct phrase PHRASE_SCALED_AWAY = {"was scaled away", "were scaled away"};

static const struct phrase *state_phrase(enum instance_state state)
{
    static const struct phrase phrases[] = {
        [INSTANCE_STARTING] = {"is still starting", "are still starting"},
        [INSTANCE_RUNNING] = {"is running", "are running"},
        [INSTANCE_BACKOFF] = {"will be restarted after a backoff", "will be restarted after a backoff"},
        [INSTANCE_STOPPING] = {"is stopping", "are stopping"},
        [INSTANCE_STOPPED] = {"is stopped", "are stopped"},
        [INSTANCE_EXITED] = {"stays down (its restart policy)", "stay down (their restart policy)"},
        [INSTANCE_FAILED] = {"cannot run", "cannot run"},
    };
    return &phrases[state];
}

static const struct instance *change_instance(const struct change *ch, int index)
{
    return (size_t)index < ch->svc->instance_cap ? ch->svc->instances[index] : NULL;
}

/* What an instance of this change is now, in words. */
static const struct phrase *entry_phrase(const struct change *ch, const struct change_entry *e)
{
    const struct instance *inst = change_instance(ch, e->index);
    if (e->goal == GOAL_GONE) {
        if (e->state == ENTRY_DONE || !inst)
            return &PHRASE_STOPPED;
        if (e->state == ENTRY_PENDING && inst->state == INSTANCE_STOPPING)
            return &PHRASE_STILL_STOPPING;
        return state_phrase(inst->state);
    }
    if (e->state == ENTRY_DONE)
        return ch->kind == CHANGE_SCALE ? &PHRASE_READY : &PHRASE_RESTARTED;
    if (!inst)
        return &PHRASE_SCALED_AWAY;
    if (e->state == ENTRY_FAILED && e->kept_old && inst->cur->pid)
        return &PHRASE_OLD;
    if (e->state == ENTRY_PENDING && ch->kind != CHANGE_SCALE && inst->starts <= e->base_starts)
        return inst->cur->pid ? &PHRASE_OLD : &PHRASE_NOT_RESTARTED;
    return state_phrase(inst->state);
}

/* "Web.1", "Web.1 and Web.2", "Web.1 to Web.4": a run of consecutive indexes. */
static void put_names(struct strbuf *sb, const char *name, int first, int last)
{
    if (first == last)
        strbuf_printf(sb, "%s.%d", name, first);
    else
        strbuf_printf(sb, "%s.%d %s %s.%d", name, first, last == first + 1 ? "and" : "to", name, last);
}

static void change_describe(const struct change *ch, struct strbuf *sb)
{
    strbuf_puts(sb, ch->failure);
    const char *name = ch->svc->cfg->name;
    size_t i = 0;
    for (int group = 0; i < ch->entry_count; group++) {
        const struct phrase *p = entry_phrase(ch, &ch->entries[i]);
        size_t j = i + 1;
        while (j < ch->entry_count && ch->entries[j].index == ch->entries[j - 1].index + 1 &&
               entry_phrase(ch, &ch->entries[j]) == p)
            j++;
        strbuf_puts(sb, group ? ", " : "; ");
        put_names(sb, name, ch->entries[i].index, ch->entries[j - 1].index);
        strbuf_printf(sb, " %s", j - i > 1 ? p->many : p->one);
        i = j;
    }
}

static void change_finish(struct supervisor *sup, struct change *ch)
{
    for (struct change **link = &sup->changes; *link; link = &(*link)->next) {
        if (*link == ch) {
            *link = ch->next;
            break;
        }
    }
    uv_update_time(sup->loop);
    struct change_result result = {.ok = !ch->failure[0], .elapsed_ms = uv_now(sup->loop) - ch->begun_ms};
    for (size_t i = 0; i < ch->entry_count; i++) {
        if (ch->entries[i].state != ENTRY_DONE)
            continue;
        if (ch->entries[i].goal == GOAL_START)
            result.ready++;
        else
            result.stopped++;
    }
    struct strbuf sb;
    strbuf_init(&sb);
    if (!result.ok) {
        change_describe(ch, &sb);
        result.message = strbuf_cstr(&sb);
    }
    ch->waiter.done(ch->waiter.ctx, &result);
    strbuf_free(&sb);
    free(ch->entries);
    free(ch);
}

/* A new process counts once it is ready and the process it replaces is gone, so the next
 * command finds the instance (and the roll) at rest. */
static int entry_settled(const struct change *ch, struct change_entry *e)
{
    if (e->state == ENTRY_PENDING && e->goal == GOAL_START) {
        const struct instance *inst = change_instance(ch, e->index);
        if (inst && inst->cur->pid && inst->cur->ready && inst->starts > e->base_starts && !inst->old->pid)
            e->state = ENTRY_DONE;
    }
    return e->state == ENTRY_DONE;
}

void change_settle(struct supervisor *sup)
{
    struct change *ch = sup->changes;
    while (ch) {
        struct change *next = ch->next;
        if (!ch->building) {
            int all = 1;
            for (size_t i = 0; i < ch->entry_count; i++)
                all &= entry_settled(ch, &ch->entries[i]);
            /* A roll is over only when the supervisor says so (its last old process gone). */
            if (ch->kind == CHANGE_ROLL && ch->svc->rolling)
                all = 0;
            if (ch->failure[0] || all)
                change_finish(sup, ch);
        }
        ch = next;
    }
}

void change_abort_all(struct supervisor *sup, const char *why)
{
    while (sup->changes) {
        struct change *ch = sup->changes;
        if (!ch->failure[0])
            snprintf(ch->failure, sizeof ch->failure, "%s", why);
        change_finish(sup, ch);
    }
}

void change_service_moved(struct supervisor *sup, const struct service *from, struct service *to)
{
    for (struct change *ch = sup->changes; ch; ch = ch->next)
        if (ch->svc == from)
            ch->svc = to;
}

int change_waits_on(const struct supervisor *sup, const struct service *svc)
{
    for (const struct change *ch = sup->changes; ch; ch = ch->next)
        if (ch->svc == svc)
            return 1;
    return 0;
}
