/* Unit tests for change: when a waited-for restart or scale ends, and the line that says
 * what each instance was left in. The supervisor is played by hand-set instance states. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "node/change.h"
#include "node/supervisor.h"

#define N 4

struct world {
    uv_loop_t loop;
    struct supervisor sup;
    struct config_service cfg;
    struct service svc;
    struct instance inst[N];
    struct instance *slots[N];
    /* what the waiter heard */
    int started, done;
    size_t started_instances;
    uint64_t timeout_ms;
    struct change_result result;
    char message[1024];
};

static void on_started(void *ctx, size_t instances, uint64_t timeout_ms)
{
    struct world *w = ctx;
    assert_int_equal(w->started, w->done); /* started comes before done, once per change */
    w->started++;
    w->started_instances = instances;
    w->timeout_ms = timeout_ms;
}

static void on_done(void *ctx, const struct change_result *result)
{
    struct world *w = ctx;
    w->done++;
    w->result = *result;
    snprintf(w->message, sizeof w->message, "%s", result->message ? result->message : "");
    w->result.message = w->message;
}

static int setup(void **state)
{
    static struct world w;
    memset(&w, 0, sizeof w);
    uv_loop_init(&w.loop);
    w.sup.loop = &w.loop;
    w.cfg.name = "Web";
    w.cfg.stop_timeout_ms = 10000;
    w.cfg.ready.kind = READY_LOG;
    w.cfg.ready.timeout_ms = 30000;
    w.svc.cfg = &w.cfg;
    w.svc.instances = w.slots;
    w.svc.instance_cap = N;
    w.svc.desired = N;
    for (int i = 0; i < N; i++) {
        w.inst[i] = (struct instance){.service = &w.svc, .sup = &w.sup, .index = i, .state = INSTANCE_RUNNING,
                                      .starts = 1};
        w.inst[i].cur = &w.inst[i].procs[0];
        w.inst[i].old = &w.inst[i].procs[1];
        w.inst[i].cur->pid = 100 + i;
        w.inst[i].cur->ready = 1;
        w.slots[i] = &w.inst[i];
    }
    *state = &w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    uv_loop_close(&w->loop);
    return 0;
}

static struct change *begin(struct world *w, enum change_kind kind)
{
    struct change_waiter waiter = {.started = on_started, .done = on_done, .ctx = w};
    return change_begin(&w->sup, &w->svc, kind, &waiter);
}

/* The supervisor started a new process for instance i and it became ready. */
static void replace_ready(struct world *w, int i)
{
    w->inst[i].starts++;
    w->inst[i].cur->pid = 200 + i;
    w->inst[i].cur->ready = 1;
}

static void test_roll_ends_when_all_are_ready_and_the_roll_is_over(void **state)
{
    struct world *w = *state;
    struct change *ch = begin(w, CHANGE_ROLL);
    for (int i = 0; i < 2; i++)
        change_watch_start(ch, i, &w->inst[i]);
    w->svc.rolling = 1;
    change_commit(&w->sup, ch);
    assert_int_equal(w->started, 1);
    assert_int_equal(w->started_instances, 2);
    assert_int_equal(w->timeout_ms, 2 * (10000 + 30000 + 1000)); /* one after the other */

    replace_ready(w, 0);
    replace_ready(w, 1);
    w->inst[1].old->pid = 101; /* its old process has not exited yet */
    change_settle(&w->sup);
    assert_int_equal(w->done, 0);
    w->inst[1].old->pid = 0;
    change_settle(&w->sup);
    assert_int_equal(w->done, 0); /* the roll itself still runs */
    w->svc.rolling = 0;
    change_settle(&w->sup);
    assert_int_equal(w->done, 1);
    assert_true(w->result.ok);
    assert_int_equal(w->result.ready, 2);
    assert_null(w->sup.changes);
}

static void test_failed_replacement_names_every_instance(void **state)
{
    struct world *w = *state;
    struct change *ch = begin(w, CHANGE_ROLL);
    for (int i = 0; i < N; i++)
        change_watch_start(ch, i, &w->inst[i]);
    w->svc.rolling = 1;
    change_commit(&w->sup, ch);
    replace_ready(w, 0);
    /* Web.1's new process dies before it is ready; its old one (pid 101) serves on. */
    w->inst[1].old->pid = 101;
    w->inst[1].starts++;
    w->inst[1].cur->ready = 0;
    change_note_exit(&w->sup, &w->inst[1], "exited with status 3");
    w->inst[1].old->pid = 0;
    w->inst[1].cur->ready = 1;
    w->svc.rolling = 0;
    change_settle(&w->sup);
    assert_int_equal(w->done, 1);
    assert_false(w->result.ok);
    assert_string_equal(w->message, "Web.1 exited with status 3 before it was ready; Web.0 restarted, "
                                    "Web.1 to Web.3 still run their old processes");
}

static void test_an_old_process_exiting_is_no_failure(void **state)
{
    struct world *w = *state;
    struct change *ch = begin(w, CHANGE_RESTART);
    change_watch_start(ch, 2, &w->inst[2]);
    change_commit(&w->sup, ch);
    w->inst[2].after_exit = AFTER_EXIT_RESTART;
    change_note_exit(&w->sup, &w->inst[2], "killed by SIGTERM (signal 15)");
    change_settle(&w->sup);
    assert_int_equal(w->done, 0);
    w->inst[2].after_exit = AFTER_EXIT_POLICY;
    replace_ready(w, 2);
    change_settle(&w->sup);
    assert_int_equal(w->done, 1);
    assert_true(w->result.ok);
    assert_int_equal(w->timeout_ms, 10000 + 30000 + 1000);
}

static void test_scale_down_ends_when_the_instances_are_gone(void **state)
{
    struct world *w = *state;
    struct change *ch = begin(w, CHANGE_SCALE);
    change_watch_gone(ch, 2);
    change_watch_gone(ch, 3);
    change_commit(&w->sup, ch);
    change_note_gone(&w->sup, &w->inst[3]);
    w->slots[3] = NULL;
    change_settle(&w->sup);
    assert_int_equal(w->done, 0);
    change_note_gone(&w->sup, &w->inst[2]);
    w->slots[2] = NULL;
    change_settle(&w->sup);
    assert_int_equal(w->done, 1);
    assert_true(w->result.ok);
    assert_int_equal(w->result.stopped, 2);
    assert_int_equal(w->result.ready, 0);
}

static void test_scaled_up_again_before_it_stopped(void **state)
{
    struct world *w = *state;
    struct change *ch = begin(w, CHANGE_SCALE);
    change_watch_gone(ch, 3);
    w->inst[3].state = INSTANCE_STOPPING;
    change_commit(&w->sup, ch);
    change_note_revived(&w->sup, &w->inst[3]);
    change_settle(&w->sup);
    assert_int_equal(w->done, 1);
    assert_string_equal(w->message, "Web.3 was scaled up again before it had stopped; Web.3 is stopping");
}

static void test_ready_timeout_and_abort(void **state)
{
    struct world *w = *state;
    struct change *first = begin(w, CHANGE_SCALE);
    change_watch_start(first, 2, &w->inst[2]);
    change_watch_start(first, 3, &w->inst[3]);
    change_commit(&w->sup, first);
    w->inst[2].starts++;
    w->inst[2].cur->ready = 0;
    w->inst[2].state = INSTANCE_STARTING;
    change_note_failure(&w->sup, &w->inst[2], "was not ready (log) within 1.0s");
    replace_ready(w, 3);
    change_settle(&w->sup);
    assert_int_equal(w->done, 1);
    assert_string_equal(w->message, "Web.2 was not ready (log) within 1.0s; Web.2 is still starting, Web.3 is ready");

    struct change *second = begin(w, CHANGE_RESTART);
    change_watch_start(second, 0, &w->inst[0]);
    change_commit(&w->sup, second);
    change_abort_all(&w->sup, "the node is stopping");
    assert_int_equal(w->done, 2);
    assert_string_equal(w->message, "the node is stopping; Web.0 still runs its old process");
    assert_null(w->sup.changes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roll_ends_when_all_are_ready_and_the_roll_is_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_replacement_names_every_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_old_process_exiting_is_no_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scale_down_ends_when_the_instances_are_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scaled_up_again_before_it_stopped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_timeout_and_abort, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
