/* Unit tests for the dashboard's keymap: every key is bound once, the hints read as before
 * in rank order, and the overlay's columns fit its box. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curses.h>
#include <string.h>

#include "tui/keymap.h"

static void test_hints_in_rank_order(void **state)
{
    char hints[160];
    keymap_hints(hints, sizeof hints);
    assert_string_equal(hints, "? help  q quit  t trace  / search  s service  l level  r restart  +/- scale  Tab pane");
    char small[12];
    keymap_hints(small, sizeof small); /* cut, still terminated */
    assert_true(strlen(small) < sizeof small);
}

static void test_lookup(void **state)
{
    assert_int_equal(keymap_lookup(0, 'q'), KEYMAP_QUIT);
    assert_int_equal(keymap_lookup(0, 'j'), KEYMAP_DOWN);
    assert_int_equal(keymap_lookup(1, KEY_DOWN), KEYMAP_DOWN);
    assert_int_equal(keymap_lookup(1, KEY_LL), KEYMAP_END);
    assert_int_equal(keymap_lookup(0, 27), KEYMAP_CLEAR);
    assert_int_equal(keymap_lookup(0, '='), KEYMAP_SCALE_UP);
    assert_int_equal(keymap_lookup(0, '\t'), KEYMAP_PANE);
    assert_int_equal(keymap_lookup(1, KEY_BTAB), KEYMAP_PANE);
    assert_int_equal(keymap_lookup(0, 'x'), KEYMAP_NONE);
    /* a character and a curses code of the same value are different keys */
    assert_int_equal(keymap_lookup(1, 'q'), KEYMAP_NONE);
}

static void test_each_key_bound_once_and_documented(void **state)
{
    int ranks_seen[32] = {0};
    for (size_t i = 0; i < keymap_row_count; i++) {
        const struct keymap_row *row = &keymap_rows[i];
        assert_non_null(row->keys);
        assert_non_null(row->help);
        assert_true(strlen(row->keys) <= 19);
        assert_true(strlen(row->help) <= 48);
        assert_true(!row->help_in_node || strlen(row->help_in_node) <= 48);
        if (row->bind[0].cmd != KEYMAP_NONE)
            assert_true(row->keys[0] != '\0');
        if (row->hint_rank) {
            assert_non_null(row->hint);
            assert_true(row->hint_rank < 32);
            assert_int_equal(ranks_seen[row->hint_rank]++, 0);
        }
        for (size_t b = 0; b < sizeof row->bind / sizeof row->bind[0] && row->bind[b].cmd; b++)
            assert_int_equal(keymap_lookup(row->bind[b].code, row->bind[b].key), row->bind[b].cmd);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hints_in_rank_order),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_each_key_bound_once_and_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
