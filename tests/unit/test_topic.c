/* Unit tests for AMQP topic matching (RabbitMQ's rules). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/topic.h"

static void test_matches(void **state)
{
    (void)state;
    struct { const char *pattern, *type; int want; } cases[] = {
        {"greeted", "greeted", 1},
        {"greeted", "greeted.twice", 0},
        {"order.*", "order.created", 1},
        {"order.*", "order", 0},
        {"order.*", "order.created.late", 0},
        {"order.#", "order", 1},
        {"order.#", "order.created", 1},
        {"order.#", "order.created.late", 1},
        {"order.#", "orders.created", 0},
        {"#", "anything.at.all", 1},
        {"#", "x", 1},
        {"*.created", "order.created", 1},
        {"*.created", "created", 0},
        {"#.created", "created", 1},
        {"#.created", "a.b.created", 1},
        {"#.created", "a.b.created.no", 0},
        {"a.#.z", "a.z", 1},
        {"a.#.z", "a.b.c.z", 1},
        {"a.#.z", "a.b.c.y", 0},
        {"a.*.#", "a", 0},
        {"a.*.#", "a.b", 1},
        {"a.*.#", "a.b.c.d", 1},
        {"#.#", "a", 1},
        {"book.#", "book.added", 1},
        {"a.b", "a.bb", 0},
        {"a.bb", "a.b", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (topic_match(cases[i].pattern, cases[i].type) != cases[i].want)
            fail_msg("%s ~ %s should be %d", cases[i].pattern, cases[i].type, cases[i].want);
    }
}

static void test_pattern_validity(void **state)
{
    (void)state;
    assert_true(topic_pattern_valid("a.*.#"));
    assert_true(topic_pattern_valid("greeted"));
    assert_false(topic_pattern_valid(""));
    assert_false(topic_pattern_valid("a..b"));
    assert_false(topic_pattern_valid("a.b*"));
    assert_false(topic_pattern_valid(".a"));
    assert_false(topic_pattern_valid("a."));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches),
        cmocka_unit_test(test_pattern_validity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
