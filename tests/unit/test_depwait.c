/* Unit tests for depwait: each depends_on condition against the states a dependency's
 * instances can be in, the line status shows for it, and the exit status of `devnode run`. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <cmocka.h>

#include "node/depwait.h"

static enum dep_verdict judge(const struct dep_facts *f, enum config_dep_condition c, char *why)
{
    return depwait_verdict("Db", f, c, why, 256);
}

static void test_ready_needs_every_instance(void **state)
{
    char why[256];
    struct dep_facts f = {.instances = 2, .up = 2, .ready = 1, .ready_timeout_ms = 30000};
    assert_int_equal(judge(&f, DEP_READY, why), DEP_WAIT);
    assert_string_equal(why, "waiting for Db to be ready");
    assert_int_equal(judge(&f, DEP_STARTED, why), DEP_MET);
    assert_string_equal(why, "");
    f.ready = 2;
    assert_int_equal(judge(&f, DEP_READY, why), DEP_MET);
    /* A one-shot that already finished well was ready and started. */
    f = (struct dep_facts){.instances = 1, .completed = 1};
    assert_int_equal(judge(&f, DEP_READY, why), DEP_MET);
    assert_int_equal(judge(&f, DEP_STARTED, why), DEP_MET);
    assert_int_equal(judge(&f, DEP_COMPLETED, why), DEP_MET);
}

static void test_nothing_started_waits(void **state)
{
    char why[256];
    struct dep_facts f = {.instances = 1};
    assert_int_equal(judge(&f, DEP_STARTED, why), DEP_WAIT);
    assert_string_equal(why, "waiting for Db to start");
    assert_int_equal(judge(&f, DEP_COMPLETED, why), DEP_WAIT);
    assert_string_equal(why, "waiting for Db to complete");
    /* Running is not completed. */
    f.up = f.ready = 1;
    assert_int_equal(judge(&f, DEP_COMPLETED, why), DEP_WAIT);
    /* Scaled to 0: nothing to wait for. */
    f = (struct dep_facts){0};
    assert_int_equal(judge(&f, DEP_READY, why), DEP_MET);
}

static void test_failures_block_with_their_reason(void **state)
{
    char why[256];
    struct dep_facts f = {.instances = 1, .exited_bad = 1, .bad_code = 1};
    for (int c = DEP_READY; c <= DEP_COMPLETED; c++) {
        assert_int_equal(judge(&f, (enum config_dep_condition)c, why), DEP_BLOCKED);
        assert_string_equal(why, "waiting for Db: exited 1");
    }
    f = (struct dep_facts){.instances = 1, .exited_bad = 1, .bad_code = -1, .bad_signal = SIGKILL};
    assert_int_equal(judge(&f, DEP_COMPLETED, why), DEP_BLOCKED);
    assert_string_equal(why, "waiting for Db: killed by SIGKILL");
    f = (struct dep_facts){.instances = 2, .ready = 1, .up = 1, .failed = 1, .failure = "command not found"};
    assert_int_equal(judge(&f, DEP_STARTED, why), DEP_BLOCKED);
    assert_string_equal(why, "waiting for Db: failed (command not found)");
    /* Past its ready timeout it blocks `ready`, not `started`. */
    f = (struct dep_facts){.instances = 1, .up = 1, .late = 1, .ready_timeout_ms = 1500};
    assert_int_equal(judge(&f, DEP_READY, why), DEP_BLOCKED);
    assert_string_equal(why, "waiting for Db: not ready within 1.5s");
    assert_int_equal(judge(&f, DEP_STARTED, why), DEP_MET);
}

static void test_exit_status(void **state)
{
    assert_int_equal(depwait_exit_status(0, 0), 0);
    assert_int_equal(depwait_exit_status(3, 0), 3);
    assert_int_equal(depwait_exit_status(-1, SIGKILL), 137);
    assert_int_equal(depwait_exit_status(-1, SIGTERM), 143);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_needs_every_instance),
        cmocka_unit_test(test_nothing_started_waits),
        cmocka_unit_test(test_failures_block_with_their_reason),
        cmocka_unit_test(test_exit_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
