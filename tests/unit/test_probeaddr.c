/* probeaddr: the addresses of http and tcp probes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "config/probeaddr.h"

struct expect {
    const char *text;
    const char *host;   /* NULL: an error */
    int port;
    const char *path;   /* http */
};

static void check_http(const struct expect *e)
{
    struct config_probe p = {0};
    char err[300] = "";
    int rc = probeaddr_parse_http(e->text, &p, err, sizeof err);
    if (!e->host) {
        assert_int_equal(rc, -1);
        assert_true(err[0] != '\0');
    } else {
        if (rc != 0)
            print_error("%s: %s\n", e->text, err);
        assert_int_equal(rc, 0);
        assert_int_equal(p.kind, PROBE_HTTP);
        assert_string_equal(p.host, e->host);
        assert_int_equal(p.port, e->port);
        assert_string_equal(p.path, e->path);
    }
    config_probe_free(&p);
}

static void test_http(void **state)
{
    static const struct expect cases[] = {
        {"/healthz", "127.0.0.1", 0, "/healthz"},
        {"/a?b=c&d", "127.0.0.1", 0, "/a?b=c&d"},
        {"http://127.0.0.1:8080/healthz", "127.0.0.1", 8080, "/healthz"},
        {"http://localhost/", "localhost", 80, "/"},
        {"http://example.test", "example.test", 80, "/"},
        {"http://127.0.0.1:$PORT/up", "127.0.0.1", 0, "/up"},
        {"http://[::1]:9000/h", "::1", 9000, "/h"},
        {"http://[::1]/h", "::1", 80, "/h"},
        {"healthz", NULL, 0, NULL},
        {"https://127.0.0.1/", NULL, 0, NULL},
        {"http://::1:80/", NULL, 0, NULL},
        {"http://h:0/", NULL, 0, NULL},
        {"http://h:65536/", NULL, 0, NULL},
        {"http://h:80x/", NULL, 0, NULL},
        {"http://user@h/", NULL, 0, NULL},
        {"http:///x", NULL, 0, NULL},
        {"/with space", NULL, 0, NULL},
        {"/crlf\r\nX: y", NULL, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_http(&cases[i]);
}

static void test_tcp(void **state)
{
    static const struct expect cases[] = {
        {"5432", "127.0.0.1", 5432, NULL},
        {"$PORT", "127.0.0.1", 0, NULL},
        {"${PORT}", "127.0.0.1", 0, NULL},
        {"db:5432", "db", 5432, NULL},
        {"127.0.0.1:$PORT", "127.0.0.1", 0, NULL},
        {"[::1]:80", "::1", 80, NULL},
        {"0", NULL, 0, NULL},
        {"db", NULL, 0, NULL},
        {"[::1]", NULL, 0, NULL},
        {"db:", NULL, 0, NULL},
        {"::1:80", NULL, 0, NULL},
        {"$HOME", NULL, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct expect *e = &cases[i];
        struct config_probe p = {0};
        char err[300] = "";
        int rc = probeaddr_parse_tcp(e->text, &p, err, sizeof err);
        if (!e->host) {
            if (rc != -1)
                print_error("%s: accepted\n", e->text);
            assert_int_equal(rc, -1);
        } else {
            if (rc != 0)
                print_error("%s: %s\n", e->text, err);
            assert_int_equal(rc, 0);
            assert_string_equal(p.host, e->host);
            assert_int_equal(p.port, e->port);
        }
        config_probe_free(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
