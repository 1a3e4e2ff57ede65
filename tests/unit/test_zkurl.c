/* Unit tests for zkurl: the ZooKeeper registry URL, its defaults (port 2181, chroot /lymph)
 * and every refusal naming its column. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/zkurl.h"

static void accepts(const char *url, const char *hosts, const char *chroot, int nhosts)
{
    struct zkurl u;
    char err[256] = "";
    if (zkurl_parse(url, &u, err, sizeof err) != 0)
        fail_msg("%s refused: %s", url, err);
    assert_string_equal(u.hosts, hosts);
    assert_string_equal(u.chroot, chroot);
    assert_int_equal(u.nhosts, nhosts);
}

static void refuses(const char *url, const char *reason)
{
    struct zkurl u;
    char err[256] = "";
    if (zkurl_parse(url, &u, err, sizeof err) == 0)
        fail_msg("%s accepted: hosts %s chroot %s", url, u.hosts, u.chroot);
    if (!strstr(err, reason))
        fail_msg("%s: '%s' does not say '%s'", url, err, reason);
}

static void test_defaults(void **state)
{
    accepts("zookeeper://127.0.0.1:2181", "127.0.0.1:2181", "/lymph", 1);
    accepts("zookeeper://zk", "zk:2181", "/lymph", 1);
    accepts("zookeeper://zk:2888", "zk:2888", "/lymph", 1);
}

static void test_many_hosts_and_chroot(void **state)
{
    accepts("zookeeper://a:1,b.example.com,c-3:65535/team/staging", "a:1,b.example.com:2181,c-3:65535", "/team/staging",
            3);
    accepts("zookeeper://a/lymph", "a:2181", "/lymph", 1);
    accepts("zookeeper://a:2181/x.y_z-1", "a:2181", "/x.y_z-1", 1);
}

static void test_root(void **state)
{
    accepts("zookeeper://a:2181/", "a:2181", "", 1);
}

static void test_refusals(void **state)
{
    refuses(NULL, "scheme");
    refuses("", "scheme");
    refuses("zk://a:2181", "scheme");
    refuses("zookeeper://", "column 13: a host name is missing");
    refuses("zookeeper://a:2181,", "column 20: a host name is missing");
    refuses("zookeeper://a:0", "1 to 65535");
    refuses("zookeeper://a:65536", "1 to 65535");
    refuses("zookeeper://a:", "1 to 65535");
    refuses("zookeeper://a:12x", "unexpected character");
    refuses("zookeeper://a:0000002181", "1 to 65535");
    refuses("zookeeper://[::1]:2181", "IPv6");
    refuses("zookeeper://user:pw@a:2181", "1 to 65535");
    refuses("zookeeper://user@a:2181", "user info");
    refuses("zookeeper://a:2181?x=1", "query");
    refuses("zookeeper://a:2181/lymph?x=1", "query");
    refuses("zookeeper://a:2181/lymph#f", "query");
    refuses("zookeeper://a:2181/lymph/", "must not end with '/'");
    refuses("zookeeper://a:2181//lymph", "empty name");
    refuses("zookeeper://a:2181/a/../b", "'..'");
    refuses("zookeeper://a:2181/.", "'.'");
    refuses("zookeeper://a:2181/a b", "printable");
    refuses("zookeeper://a b:2181", "unexpected character");
}

static void test_limits(void **state)
{
    char url[2048];
    /* a chroot of 255 characters fits, 256 does not */
    strcpy(url, "zookeeper://a/");
    memset(url + strlen(url), 'c', 254);
    url[14 + 254] = '\0';
    accepts(url, "a:2181", url + 13, 1);
    strcat(url, "c");
    refuses(url, "longer than 255");
    /* a host list longer than the client's buffer */
    strcpy(url, "zookeeper://");
    for (int i = 0; i < 70; i++)
        strcat(url, "host-name-x:2181,");
    strcat(url, "last");
    refuses(url, "too long");
    /* a host name longer than DNS allows */
    strcpy(url, "zookeeper://");
    memset(url + 12, 'h', 254);
    url[12 + 254] = '\0';
    refuses(url, "253");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_many_hosts_and_chroot),
        cmocka_unit_test(test_root),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
