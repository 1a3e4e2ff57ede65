/* Unit tests for tail/attachclient.c's pure part: the detach-key scanner decides which typed
 * bytes reach the instance. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "tail/attachclient.h"

static void test_bytes_without_the_key_all_go(void **state)
{
    (void)state;
    int found = -1;
    const char keys[] = "p x\r\x03\x1c\x10\x11"; /* Ctrl-C, Ctrl-\, Ctrl-P, Ctrl-Q pass */
    assert_int_equal(attach_scan_detach(keys, sizeof keys - 1, &found), sizeof keys - 1);
    assert_int_equal(found, 0);
    assert_int_equal(attach_scan_detach("", 0, &found), 0);
    assert_int_equal(found, 0);
}

static void test_bytes_before_the_key_go_and_the_rest_is_dropped(void **state)
{
    (void)state;
    int found = 0;
    const char keys[] = "ab\x1d" "cd";
    assert_int_equal(attach_scan_detach(keys, sizeof keys - 1, &found), 2);
    assert_int_equal(found, 1);
    assert_int_equal(attach_scan_detach("\x1d", 1, &found), 0);
    assert_int_equal(found, 1);
    /* a NUL (Ctrl-Space) is a key like any other */
    const char nul[] = {'\0', 'x', 0x1d};
    assert_int_equal(attach_scan_detach(nul, sizeof nul, &found), 2);
    assert_int_equal(found, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_without_the_key_all_go),
        cmocka_unit_test(test_bytes_before_the_key_go_and_the_rest_is_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
