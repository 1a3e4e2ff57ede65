/* fuzz_zkurl: common/zkurl.c, the ZooKeeper registry URL (environment and config are outside
 * input). Input: the URL (up to the first NUL). Checks: a URL it accepts gives a host list of
 * host:port items and a chroot that is "" or absolute with no empty, "." or ".." part, and
 * parsing the URL rebuilt from them gives the same result. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zkurl.h"
#include "tests/fuzz/fuzz_util.h"

static void FUZZ_NO_COVERAGE check_result(const struct zkurl *u)
{
    FUZZ_CHECK(u->nhosts >= 1, "no host");
    FUZZ_CHECK(strlen(u->hosts) < sizeof u->hosts, "hosts not terminated");
    int items = 1;
    for (const char *p = u->hosts; *p; p++)
        items += *p == ',';
    FUZZ_CHECK(items == u->nhosts, "%d items for %d hosts", items, u->nhosts);
    FUZZ_CHECK(strchr(u->hosts, ':') != NULL, "a host without its port: %s", u->hosts);
    if (u->chroot[0]) {
        FUZZ_CHECK(u->chroot[0] == '/', "relative chroot %s", u->chroot);
        FUZZ_CHECK(strstr(u->chroot, "//") == NULL, "empty part in %s", u->chroot);
        FUZZ_CHECK(u->chroot[strlen(u->chroot) - 1] != '/', "trailing slash in %s", u->chroot);
        FUZZ_CHECK(strstr(u->chroot, "/./") == NULL && strstr(u->chroot, "/../") == NULL, "dot part in %s", u->chroot);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = strndup((const char *)data, size);
    if (!url)
        return 0;
    struct zkurl u;
    char err[256];
    if (zkurl_parse(url, &u, err, sizeof err) == 0) {
        check_result(&u);
        /* The normalised form reads back to the same thing. */
        char again[ZKURL_HOSTS_MAX + ZKURL_CHROOT_MAX + 32];
        snprintf(again, sizeof again, "zookeeper://%s%s", u.hosts, u.chroot[0] ? u.chroot : "/");
        struct zkurl v;
        FUZZ_CHECK(zkurl_parse(again, &v, err, sizeof err) == 0, "normalised %s refused: %s", again, err);
        FUZZ_CHECK(strcmp(u.hosts, v.hosts) == 0 && strcmp(u.chroot, v.chroot) == 0 && u.nhosts == v.nhosts,
                   "%s reads back differently", again);
    } else {
        FUZZ_CHECK(err[0] != '\0', "refused without a reason");
    }
    free(url);
    return 0;
}
