/* libemit: libdevnode emitters and a counting subscriber for the e2e tests of no-wait emits
 * (tests/e2e/test_lib_emit.py). Each event's body is {"n": i}; the counter checks that every
 * publisher's n only grows (order kept), and prints one line when it has seen what it expects.
 *   libemit count PATTERN EXPECTED [STREAM]
 *                                       a service (devnode_run): counts PATTERN's events; with
 *                                       STREAM, read from the retained stream's beginning
 *   libemit publish N [options]         a client: N devnode_emit_nowait in a plain loop, then
 *                                       devnode_close; prints "accepted A failed F close C"
 *       --linger US   devnode_set_emit_linger     --then-wait   the last event with devnode_emit
 *       --big K       event K is audit.big with a 300 kB body (a retained stream's journal
 *                     that is nearly full refuses it)
 *   libemit ownloop N INTERVAL_MS       a client with a poll loop of its own (demo_web's shape):
 *                                       one no-wait emit per tick, devnode_process when
 *                                       devnode_fd or devnode_timeout_ms says; never closes
 * The node's endpoint comes from DEVNODE_ENDPOINT. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <devnode.h>

struct counter {
    long expected, count, disorder;
    long long sum;
    long last;
};

static int on_event(const struct devnode_event *ev, void *ctx)
{
    struct counter *c = ctx;
    long n = (long)json_integer_value(json_object_get(ev->body, "n"));
    if (c->count > 0 && n <= c->last)
        c->disorder++;
    c->last = n;
    c->count++;
    c->sum += n;
    if (c->count == c->expected) {
        printf("counted %ld events, %ld out of order, sum %lld\n", c->count, c->disorder, c->sum);
        fflush(stdout);
    }
    return 0;
}

static int count(const char *pattern, long expected, const char *stream)
{
    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "libemit: %s\n", err);
        return 1;
    }
    struct counter c = {.expected = expected};
    int rc = stream ? devnode_subscribe_stream(dn, "counter", stream, pattern, "beginning", 0, on_event, &c)
                    : devnode_subscribe(dn, pattern, 0, on_event, &c);
    if (rc != 0) {
        fprintf(stderr, "libemit: %s\n", devnode_last_error(dn));
        devnode_close(dn);
        return 1;
    }
    rc = devnode_run(dn);
    devnode_close(dn);
    return rc;
}

static struct devnode *open_client(const char *name)
{
    char err[256];
    const char *endpoint = getenv("DEVNODE_ENDPOINT");
    struct devnode *dn = devnode_open(endpoint, name, err, sizeof err);
    if (!dn)
        fprintf(stderr, "libemit: %s\n", err);
    return dn;
}

static int publish(long n, int argc, char **argv)
{
    long linger = -1, big = -1;
    int then_wait = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--linger") && i + 1 < argc)
            linger = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--big") && i + 1 < argc)
            big = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--then-wait"))
            then_wait = 1;
    }
    struct devnode *dn = open_client("publisher");
    if (!dn)
        return 1;
    if (linger >= 0 && devnode_set_emit_linger(dn, (unsigned)linger) != 0) {
        fprintf(stderr, "libemit: %s\n", devnode_last_error(dn));
        devnode_close(dn);
        return 2;
    }
    char *pad = malloc(300001);
    memset(pad, 'x', 300000);
    pad[300000] = '\0';
    long accepted = 0, failed = 0;
    for (long i = 0; i < n; i++) {
        json_t *body = i == big ? json_pack("{s:I,s:s}", "n", (json_int_t)i, "pad", pad)
                                : json_pack("{s:I}", "n", (json_int_t)i);
        const char *type = i == big ? "audit.big" : "audit.n";
        int rc = then_wait && i == n - 1 ? devnode_emit(dn, type, body, 0) : devnode_emit_nowait(dn, type, body, 0);
        json_decref(body);
        if (rc == 0)
            accepted++;
        else
            failed++;
    }
    free(pad);
    int lost = devnode_close(dn);
    printf("accepted %ld failed %ld close %d\n", accepted, failed, lost);
    return failed || lost ? 1 : 0;
}

static int ownloop(long n, long interval_ms)
{
    struct devnode *dn = open_client("ownloop");
    if (!dn)
        return 1;
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec it = {.it_interval = {interval_ms / 1000, (interval_ms % 1000) * 1000000L},
                            .it_value = {interval_ms / 1000, (interval_ms % 1000) * 1000000L}};
    timerfd_settime(tfd, 0, &it, NULL);
    long emitted = 0;
    for (;;) {
        /* The only waits are the fds and what the library asks for: no periodic wake-up. */
        struct pollfd fds[2] = {{.fd = devnode_fd(dn), .events = POLLIN}, {.fd = tfd, .events = POLLIN}};
        poll(fds, emitted < n ? 2 : 1, devnode_timeout_ms(dn));
        if (emitted < n && (fds[1].revents & POLLIN)) {
            uint64_t ticks;
            if (read(tfd, &ticks, sizeof ticks) == (ssize_t)sizeof ticks) {
                json_t *body = json_pack("{s:I}", "n", (json_int_t)emitted);
                if (devnode_emit_nowait(dn, "audit.n", body, 0) != 0)
                    fprintf(stderr, "libemit: %s\n", devnode_last_error(dn));
                json_decref(body);
                if (++emitted == n) {
                    printf("emitted %ld\n", emitted);
                    fflush(stdout);
                }
            }
        }
        devnode_process(dn);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && !strcmp(argv[1], "count"))
        return count(argv[2], strtol(argv[3], NULL, 10), argc > 4 ? argv[4] : NULL);
    if (argc >= 3 && !strcmp(argv[1], "publish"))
        return publish(strtol(argv[2], NULL, 10), argc - 3, argv + 3);
    if (argc >= 4 && !strcmp(argv[1], "ownloop"))
        return ownloop(strtol(argv[2], NULL, 10), strtol(argv[3], NULL, 10));
    fprintf(stderr, "usage: libemit count PATTERN EXPECTED [STREAM] | publish N [--linger US] [--then-wait] [--big K] | "
                    "ownloop N INTERVAL_MS\n");
    return 2;
}
