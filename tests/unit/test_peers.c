/* Unit tests for the table of when each connection was last heard. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "node/peers.h"

static void test_heard_and_updated(void **state)
{
    (void)state;
    struct peers p;
    peers_init(&p);
    assert_int_equal(peers_last_heard(&p, "\0A\0\0\1", 5), 0);
    peers_heard(&p, "\0A\0\0\1", 5, 100);
    peers_heard(&p, "\0A\0\0\2", 5, 150);
    peers_heard(&p, "\0A\0\0\1", 5, 200);
    assert_int_equal(peers_last_heard(&p, "\0A\0\0\1", 5), 200);
    assert_int_equal(peers_last_heard(&p, "\0A\0\0\2", 5), 150);
    assert_int_equal(peers_last_heard(&p, "\0A\0\0", 4), 0); /* a prefix is another id */
    assert_int_equal(p.count, 2);
    peers_free(&p);
}

static void test_long_and_empty_ids_are_not_tracked(void **state)
{
    (void)state;
    struct peers p;
    peers_init(&p);
    char id[PEERS_ID_MAX + 1];
    memset(id, 'x', sizeof id);
    peers_heard(&p, id, sizeof id, 10);
    peers_heard(&p, id, 0, 10);
    assert_int_equal(peers_last_heard(&p, id, sizeof id), 0);
    assert_int_equal(p.count, 0);
    peers_heard(&p, id, PEERS_ID_MAX, 10);
    assert_int_equal(peers_last_heard(&p, id, PEERS_ID_MAX), 10);
    peers_free(&p);
}

/* Many short connections (CLI commands): the table keeps those of the last PEERS_FORGET_MS
 * and every one of them stays findable across the rebuilds. */
static void test_grows_and_forgets_the_long_silent(void **state)
{
    (void)state;
    struct peers p;
    peers_init(&p);
    char id[16];
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "c%u", i);
        peers_heard(&p, id, strlen(id), 1000 + i);
    }
    for (unsigned i = 0; i < 5000; i += 7) {
        snprintf(id, sizeof id, "c%u", i);
        assert_int_equal(peers_last_heard(&p, id, strlen(id)), 1000 + i);
    }
    size_t grown = p.cap;
    /* a minute later, new connections push the silent ones out instead of growing the table */
    uint64_t later = 1000 + 5000 + PEERS_FORGET_MS + 1;
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "d%u", i);
        peers_heard(&p, id, strlen(id), later + i);
    }
    assert_true(p.cap <= grown);
    assert_int_equal(peers_last_heard(&p, "d4999", 5), later + 4999);
    assert_int_equal(peers_last_heard(&p, "d0", 2), later);
    assert_true(p.count <= 5000 + 5000);
    assert_true(p.count * 2 <= p.cap);
    peers_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heard_and_updated),
        cmocka_unit_test(test_long_and_empty_ids_are_not_tracked),
        cmocka_unit_test(test_grows_and_forgets_the_long_silent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
