/* Unit tests for machine: the instance state x event table and the exit decision, driven
 * without a process: each test walks an instance through events as the supervisor would, and
 * the docs' copy of the table is checked against the one the code uses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "node/machine.h"

/* A pretend supervisor: performs an action by moving to the state it leads to, the way
 * supervisor.c does when the process side goes as planned. */
struct pretend {
    enum instance_state state;
    enum instance_after_exit after;
    int has_process, old_running, ready, freed, unhealthy;
    enum restart_policy restart;
};

static enum machine_action step(struct pretend *p, enum machine_event ev, int exit_code)
{
    enum machine_action a = machine_action(p->state, ev);
    switch (a) {
    case ACT_IGNORE:
        break;
    case ACT_SPAWN:
    case ACT_START_AFRESH:
        p->state = INSTANCE_STARTING;
        p->has_process = 1;
        p->ready = 0;
        p->after = AFTER_EXIT_POLICY;
        break;
    case ACT_RESTART:
        p->state = INSTANCE_STOPPING;
        p->after = AFTER_EXIT_RESTART;
        break;
    case ACT_STOP:
        p->state = INSTANCE_STOPPING;
        p->after = AFTER_EXIT_STOP;
        break;
    case ACT_RESTART_AFTER:
    case ACT_REVIVE:
        p->after = AFTER_EXIT_RESTART;
        break;
    case ACT_STAY_DOWN:
        p->state = INSTANCE_STOPPED;
        break;
    case ACT_STOP_REMOVE:
        p->state = INSTANCE_STOPPING;
        p->after = AFTER_EXIT_REMOVE;
        break;
    case ACT_REMOVE:
        p->freed = 1;
        break;
    case ACT_MARK_READY:
        p->state = INSTANCE_RUNNING;
        p->ready = 1;
        break;
    case ACT_READY_LATE:
        break;
    case ACT_LIVE_RESTART:
        p->state = INSTANCE_STOPPING;
        p->after = AFTER_EXIT_POLICY;
        p->unhealthy = 1;
        break;
    case ACT_EXIT: {
        struct exit_facts f = {.after = p->after, .old_running = p->old_running, .was_ready = p->ready,
                               .exit_code = exit_code, .uptime_ms = 5000, .restart = p->restart,
                               .unhealthy = p->unhealthy};
        p->unhealthy = 0;
        p->has_process = 0;
        switch (machine_exit_outcome(&f)) {
        case EXIT_RESTORE_OLD: p->state = INSTANCE_RUNNING; p->has_process = 1; p->old_running = 0; break;
        case EXIT_STOPPED: p->state = INSTANCE_STOPPED; break;
        case EXIT_REMOVED: p->freed = 1; break;
        case EXIT_START_AGAIN: p->state = INSTANCE_STARTING; p->has_process = 1; p->ready = 0;
                               p->after = AFTER_EXIT_POLICY; break;
        case EXIT_CANNOT_RUN: p->state = INSTANCE_FAILED; break;
        case EXIT_STAY_DOWN: p->state = INSTANCE_EXITED; break;
        case EXIT_GIVE_UP: p->state = INSTANCE_FAILED; break;
        case EXIT_BACKOFF: p->state = INSTANCE_BACKOFF; break;
        }
        break;
    }
    }
    return a;
}

static void test_crash_loop_then_stop(void **state)
{
    struct pretend p = {.state = INSTANCE_STOPPED};
    assert_int_equal(step(&p, EV_START, 0), ACT_START_AFRESH);
    assert_int_equal(p.state, INSTANCE_STARTING);
    assert_int_equal(step(&p, EV_READY, 0), ACT_MARK_READY);
    assert_int_equal(step(&p, EV_READY, 0), ACT_IGNORE); /* a second READY=1 changes nothing */
    assert_int_equal(step(&p, EV_EXIT, 1), ACT_EXIT);
    assert_int_equal(p.state, INSTANCE_BACKOFF);
    assert_int_equal(step(&p, EV_BACKOFF_DONE, 0), ACT_SPAWN);
    assert_int_equal(p.state, INSTANCE_STARTING);
    assert_int_equal(step(&p, EV_EXIT, 1), ACT_EXIT);
    /* The node stops during the backoff: the restart is cancelled, nothing is signalled. */
    assert_int_equal(step(&p, EV_STOP, 0), ACT_STAY_DOWN);
    assert_int_equal(p.state, INSTANCE_STOPPED);
    assert_int_equal(step(&p, EV_BACKOFF_DONE, 0), ACT_IGNORE);
}

static void test_restart_policies(void **state)
{
    struct pretend p = {.state = INSTANCE_STOPPED, .restart = RESTART_ON_FAILURE};
    step(&p, EV_START, 0);
    step(&p, EV_READY, 0);
    step(&p, EV_EXIT, 0);
    assert_int_equal(p.state, INSTANCE_EXITED);
    assert_int_equal(step(&p, EV_STOP, 0), ACT_IGNORE);
    assert_int_equal(step(&p, EV_RESTART, 0), ACT_START_AFRESH);
    step(&p, EV_EXIT, 2);
    assert_int_equal(p.state, INSTANCE_BACKOFF);

    p = (struct pretend){.state = INSTANCE_STOPPED, .restart = RESTART_NEVER};
    step(&p, EV_START, 0);
    step(&p, EV_EXIT, 2);
    assert_int_equal(p.state, INSTANCE_EXITED);
}

/* A liveness failure stops the process; its exit is a failure for the policy, whatever its status. */
static void test_liveness_failure_restarts_through_the_policy(void **state)
{
    struct pretend p = {.state = INSTANCE_STOPPED, .restart = RESTART_ON_FAILURE};
    step(&p, EV_START, 0);
    assert_int_equal(step(&p, EV_LIVE_FAILED, 0), ACT_IGNORE); /* not probed before it is ready */
    step(&p, EV_READY, 0);
    assert_int_equal(step(&p, EV_LIVE_FAILED, 0), ACT_LIVE_RESTART);
    assert_int_equal(p.state, INSTANCE_STOPPING);
    assert_int_equal(step(&p, EV_LIVE_FAILED, 0), ACT_IGNORE); /* once stopping, nothing more */
    assert_int_equal(step(&p, EV_EXIT, 0), ACT_EXIT);          /* it exited 0 on TERM: still a failure */
    assert_int_equal(p.state, INSTANCE_BACKOFF);
    /* The node stopping meanwhile wins. */
    step(&p, EV_BACKOFF_DONE, 0);
    step(&p, EV_READY, 0);
    step(&p, EV_LIVE_FAILED, 0);
    assert_int_equal(step(&p, EV_STOP, 0), ACT_STOP);
    step(&p, EV_EXIT, 0);
    assert_int_equal(p.state, INSTANCE_STOPPED);
    /* restart: never keeps it down after a liveness kill, as after a crash. */
    p = (struct pretend){.state = INSTANCE_STOPPED, .restart = RESTART_NEVER};
    step(&p, EV_START, 0);
    step(&p, EV_READY, 0);
    step(&p, EV_LIVE_FAILED, 0);
    step(&p, EV_EXIT, -1);
    assert_int_equal(p.state, INSTANCE_EXITED);
}

static void test_cannot_run_is_failed_until_restart(void **state)
{
    struct exit_facts f = {.exit_code = 127, .uptime_ms = 30};
    assert_int_equal(machine_exit_outcome(&f), EXIT_CANNOT_RUN);
    f.exit_code = 126;
    assert_int_equal(machine_exit_outcome(&f), EXIT_CANNOT_RUN);
    f.uptime_ms = MACHINE_CANNOT_RUN_WINDOW_MS; /* ran a while: an ordinary crash */
    assert_int_equal(machine_exit_outcome(&f), EXIT_BACKOFF);
    f = (struct exit_facts){.exit_code = 127, .uptime_ms = 30, .after = AFTER_EXIT_STOP};
    assert_int_equal(machine_exit_outcome(&f), EXIT_STOPPED); /* asked to stop: not a failure */

    struct pretend p = {.state = INSTANCE_STOPPED};
    step(&p, EV_START, 0);
    struct exit_facts g = {.exit_code = 127, .uptime_ms = 10};
    assert_int_equal(machine_exit_outcome(&g), EXIT_CANNOT_RUN);
    p.state = INSTANCE_FAILED;
    assert_int_equal(step(&p, EV_BACKOFF_DONE, 0), ACT_IGNORE);
    assert_int_equal(step(&p, EV_STOP, 0), ACT_IGNORE);
    assert_int_equal(step(&p, EV_RESTART, 0), ACT_START_AFRESH);
}

/* Three restarts within 60 s are allowed, the exit after them gives up; a window that passed
 * counts afresh; 0 never gives up. */
static void test_max_restarts_within_window(void **state)
{
    struct restart_limit limit = {0};
    struct exit_facts f = {.exit_code = 1, .limit = &limit, .max_restarts = 3, .restart_window_ms = 60000};
    uint64_t at[] = {1000, 2000, 3000};
    for (size_t i = 0; i < 3; i++) {
        f.now_ms = at[i];
        assert_int_equal(machine_exit_outcome(&f), EXIT_BACKOFF);
    }
    f.now_ms = 60999; /* still within 60 s of the first */
    assert_int_equal(machine_exit_outcome(&f), EXIT_GIVE_UP);
    assert_int_equal(limit.count, 3);
    f.now_ms = 61000; /* that window is over */
    assert_int_equal(machine_exit_outcome(&f), EXIT_BACKOFF);
    assert_int_equal(limit.count, 1);
    /* Exits that ask for no restart do not count. */
    f.restart = RESTART_ON_FAILURE;
    f.exit_code = 0;
    assert_int_equal(machine_exit_outcome(&f), EXIT_STAY_DOWN);
    assert_int_equal(limit.count, 1);
    f.after = AFTER_EXIT_RESTART;
    assert_int_equal(machine_exit_outcome(&f), EXIT_START_AGAIN);
    assert_int_equal(limit.count, 1);

    struct exit_facts unlimited = {.exit_code = 1, .limit = &limit, .max_restarts = 0};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(machine_exit_outcome(&unlimited), EXIT_BACKOFF);

    /* Failed: only `devnode restart` starts it again. */
    struct pretend p = {.state = INSTANCE_FAILED};
    assert_int_equal(step(&p, EV_BACKOFF_DONE, 0), ACT_IGNORE);
    assert_int_equal(step(&p, EV_RESTART, 0), ACT_START_AFRESH);
}

static void test_replacement_that_dies_gives_the_job_back(void **state)
{
    struct exit_facts f = {.old_running = 1, .was_ready = 0, .exit_code = 3};
    assert_int_equal(machine_exit_outcome(&f), EXIT_RESTORE_OLD);
    f.was_ready = 1; /* it had taken over: an ordinary exit */
    assert_int_equal(machine_exit_outcome(&f), EXIT_BACKOFF);
    f = (struct exit_facts){.old_running = 1, .node_stopping = 1};
    assert_int_equal(machine_exit_outcome(&f), EXIT_STOPPED);
    f = (struct exit_facts){.old_running = 1, .after = AFTER_EXIT_REMOVE};
    assert_int_equal(machine_exit_outcome(&f), EXIT_REMOVED);

    struct pretend p = {.state = INSTANCE_STARTING, .has_process = 1, .old_running = 1};
    assert_int_equal(step(&p, EV_READY_LATE, 0), ACT_READY_LATE);
    assert_int_equal(step(&p, EV_EXIT, -1), ACT_EXIT);
    assert_int_equal(p.state, INSTANCE_RUNNING);
    assert_int_equal(p.old_running, 0);
}

static void test_requested_exits_do_what_was_asked(void **state)
{
    struct pretend p = {.state = INSTANCE_STOPPED};
    step(&p, EV_START, 0);
    step(&p, EV_READY, 0);
    assert_int_equal(step(&p, EV_RESTART, 0), ACT_RESTART);
    assert_int_equal(step(&p, EV_RESTART, 0), ACT_RESTART_AFTER); /* twice: still one restart */
    assert_int_equal(step(&p, EV_READY, 0), ACT_IGNORE); /* a process being stopped is never ready */
    step(&p, EV_EXIT, 0);
    assert_int_equal(p.state, INSTANCE_STARTING);
    step(&p, EV_READY, 0);
    /* Scaled away, then wanted again before it had stopped. */
    assert_int_equal(step(&p, EV_REMOVE, 0), ACT_STOP_REMOVE);
    assert_int_equal(step(&p, EV_START, 0), ACT_REVIVE);
    assert_int_equal(p.after, AFTER_EXIT_RESTART);
    step(&p, EV_EXIT, 0);
    assert_int_equal(p.state, INSTANCE_STARTING);
    assert_false(p.freed);
    /* Scaled away for good; a node stop meanwhile turns it into a plain stop. */
    step(&p, EV_REMOVE, 0);
    assert_int_equal(step(&p, EV_STOP, 0), ACT_STOP);
    step(&p, EV_EXIT, 0);
    assert_int_equal(p.state, INSTANCE_STOPPED);
    assert_int_equal(step(&p, EV_REMOVE, 0), ACT_REMOVE);
    assert_true(p.freed);
}

/* Every event that needs a process is ignored by the states without one, and every state
 * with a process handles its exit: no exit can be lost. */
static void test_table_is_consistent(void **state)
{
    for (int s = 0; s < INSTANCE_STATE_COUNT; s++) {
        int with_process = s == INSTANCE_STARTING || s == INSTANCE_RUNNING || s == INSTANCE_STOPPING;
        assert_int_equal(machine_action(s, EV_EXIT) == ACT_EXIT, with_process);
        if (!with_process) {
            assert_int_equal(machine_action(s, EV_READY), ACT_IGNORE);
            assert_int_equal(machine_action(s, EV_READY_LATE), ACT_IGNORE);
        }
        assert_int_equal(machine_action(s, EV_BACKOFF_DONE) != ACT_IGNORE, s == INSTANCE_BACKOFF);
        assert_int_not_equal(machine_action(s, EV_REMOVE), ACT_IGNORE);
        assert_int_not_equal(machine_action(s, EV_RESTART), ACT_IGNORE);
        assert_string_not_equal(instance_state_name(s), "unknown");
    }
    assert_int_equal(machine_action(INSTANCE_STATE_COUNT, EV_START), ACT_IGNORE);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* docs/supervision.md holds the table the code runs (make unit runs from the top of the tree). */
static void test_docs_show_this_table(void **state)
{
    const char *doc = read_file("docs/supervision.md");
    assert_non_null(doc);
    const char *begin = strstr(doc, "test_machine checks it -->\n");
    assert_non_null(begin);
    begin = strchr(begin, '\n') + 1;
    const char *end = strstr(begin, "<!-- end of machine table -->");
    assert_non_null(end);
    char table[16384];
    size_t need = machine_table_markdown(table, sizeof table);
    assert_true(need < sizeof table);
    if ((size_t)(end - begin) != need || memcmp(begin, table, need) != 0) {
        fprintf(stderr, "docs/supervision.md's machine table differs; it should read:\n%s", table);
        fail();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_loop_then_stop),
        cmocka_unit_test(test_restart_policies),
        cmocka_unit_test(test_cannot_run_is_failed_until_restart),
        cmocka_unit_test(test_max_restarts_within_window),
        cmocka_unit_test(test_replacement_that_dies_gives_the_job_back),
        cmocka_unit_test(test_requested_exits_do_what_was_asked),
        cmocka_unit_test(test_table_is_consistent),
        cmocka_unit_test(test_docs_show_this_table),
        cmocka_unit_test(test_liveness_failure_restarts_through_the_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
