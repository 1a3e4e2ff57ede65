/* httpstatus: the status line of an HTTP response, fed in pieces as a probe reads it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "node/httpstatus.h"

static int parse(const char *text, int *code)
{
    return http_status_parse(text, strlen(text), code);
}

static void test_codes(void **state)
{
    int code = 0;
    assert_int_equal(parse("HTTP/1.1 200 OK\r\n", &code), 1);
    assert_int_equal(code, 200);
    assert_int_equal(parse("HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", &code), 1);
    assert_int_equal(code, 503);
    assert_int_equal(parse("HTTP/1.1 302\r\n", &code), 1); /* the reason phrase may be empty */
    assert_int_equal(code, 302);
    assert_int_equal(parse("HTTP/1.1 204\n", &code), 1);
    assert_int_equal(code, 204);
}

static void test_every_prefix_asks_for_more(void **state)
{
    const char *line = "HTTP/1.1 404 Not Found\r\n";
    int code = -1;
    for (size_t n = 0; n < strlen("HTTP/1.1 404 "); n++) {
        assert_int_equal(http_status_parse(line, n, &code), 0);
        assert_int_equal(code, -1);
    }
    assert_int_equal(http_status_parse(line, strlen("HTTP/1.1 404 "), &code), 1);
    assert_int_equal(code, 404);
}

static void test_not_http(void **state)
{
    int code = 0;
    assert_int_equal(parse("SSH-2.0-OpenSSH_9.2\r\n", &code), -1);
    assert_int_equal(parse("HTTP/1.1 20 OK\r\n", &code), -1);      /* two digits */
    assert_int_equal(parse("HTTP/1.1 2000 OK\r\n", &code), -1);    /* four */
    assert_int_equal(parse("HTTP/1.1 099 x\r\n", &code), -1);      /* below 100 */
    assert_int_equal(parse("HTTP/x.1 200 OK\r\n", &code), -1);
    assert_int_equal(parse("http/1.1 200 OK\r\n", &code), -1);
    assert_int_equal(parse("<html>", &code), -1);
    assert_int_equal(parse("H", &code), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_every_prefix_asks_for_more),
        cmocka_unit_test(test_not_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
