/* Unit tests for humanfmt: the duration and size spellings the CLI and the dashboard share,
 * at every unit boundary, and a small buffer that must still hold a terminated string. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/humanfmt.h"

static void check_duration(long long ms, const char *expected)
{
    char buf[32];
    humanfmt_duration_ms(buf, sizeof buf, ms);
    assert_string_equal(buf, expected);
}

static void check_size(long long kib, const char *expected)
{
    char buf[32];
    humanfmt_size_kib(buf, sizeof buf, kib);
    assert_string_equal(buf, expected);
}

static void test_duration_units(void **state)
{
    (void)state;
    check_duration(0, "0ms");
    check_duration(850, "850ms");
    check_duration(999, "999ms");
    check_duration(1000, "1s");
    check_duration(59999, "59s");
    check_duration(60000, "1m00s");
    check_duration(185000, "3m05s"); /* the spelling both status and the dashboard show */
    check_duration(3599999, "59m59s");
    check_duration(3600000, "1h00m");
    check_duration((2 * 3600 + 3 * 60 + 59) * 1000LL, "2h03m");
    check_duration(86399999, "23h59m");
    check_duration(86400000, "1d00h");
    check_duration((4 * 86400 + 2 * 3600 + 3599) * 1000LL, "4d02h");
    check_duration(999 * 86400000LL, "999d00h");
}

static void test_duration_negative_is_zero(void **state)
{
    (void)state;
    check_duration(-5, "0ms");
}

static void test_size_units(void **state)
{
    (void)state;
    check_size(0, "-");
    check_size(-1, "-");
    check_size(1, "1K");
    check_size(1023, "1023K");
    check_size(1024, "1.0M");
    check_size(12595, "12.3M");
    check_size(1024 * 1024 - 1, "1024.0M");
    check_size(1024 * 1024, "1.0G");
    check_size(1258291, "1.2G");
}

static void test_small_buffer_is_terminated(void **state)
{
    (void)state;
    char buf[4];
    humanfmt_duration_ms(buf, sizeof buf, 185000);
    assert_string_equal(buf, "3m0");
    humanfmt_size_kib(buf, sizeof buf, 12595);
    assert_string_equal(buf, "12.");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_negative_is_zero),
        cmocka_unit_test(test_size_units),
        cmocka_unit_test(test_small_buffer_is_terminated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
