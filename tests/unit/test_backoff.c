/* Unit tests for the restart backoff ladder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "node/backoff.h"

static void test_ladder_doubles_to_cap(void **state)
{
    (void)state;
    struct backoff b;
    backoff_init(&b);
    unsigned expected[] = {100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        assert_int_equal(backoff_on_exit(&b, 50), expected[i]);
}

static void test_stable_run_resets(void **state)
{
    (void)state;
    struct backoff b;
    backoff_init(&b);
    for (int i = 0; i < 6; i++)
        backoff_on_exit(&b, 10);
    assert_int_equal(backoff_on_exit(&b, BACKOFF_STABLE_MS), 100);
    assert_int_equal(backoff_on_exit(&b, 10), 200);
    /* just under the stable period does not reset */
    assert_int_equal(backoff_on_exit(&b, BACKOFF_STABLE_MS - 1), 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ladder_doubles_to_cap),
        cmocka_unit_test(test_stable_run_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
