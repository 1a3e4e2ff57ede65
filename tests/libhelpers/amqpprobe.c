/* amqpprobe: a libdevnode emitter and handler for the e2e tests of the RabbitMQ back end
 * (tests/e2e/test_amqp_events.py); nothing in it knows about RabbitMQ: DEVNODE_EVENTS does.
 *   amqpprobe emit TYPE N [--wait] [--delay-ms D] [--hold] [--ready]
 *       a client (devnode_open on DEVNODE_ENDPOINT, or none): N events {"n": i, "name": "p<i>"},
 *       each with devnode_emit (--wait) or devnode_emit_nowait; --hold prints "emitted" and
 *       waits for a line on stdin before devnode_close; --ready first emits probe.ready (waited:
 *       the connection is open), prints "ready" and waits for a line; prints "accepted A failed F
 *       close C"
 *   amqpprobe consume PATTERN [--broadcast] [--fail-first] [--relay TYPE]
 *       a service (devnode_run): one line per event, "got TYPE n=N name=… source=S
 *       redelivered=R pid=P"; --fail-first gives each n back once (the handler returns 1);
 *       --relay emits each event's body again as TYPE without waiting; exits with devnode_run's
 *       status
 *   amqpprobe bench N
 *       emit -> consume: a forked client emits N events (a 64-byte string body) with
 *       devnode_emit_nowait and closes; this one, a client with a broadcast subscription made
 *       before the emitter starts (under the embedded node: the retained stream bench.#, which
 *       must be configured), handles them in a devnode_fd poll loop; prints one JSON line
 *       {"received", "seconds", "per_s", "emitter_lost"} (bench/bench_backends.py) */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <devnode.h>

static int emit(const char *type, long n, int argc, char **argv)
{
    int wait = 0, hold = 0, ready = 0;
    unsigned delay_ms = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--wait"))
            wait = 1;
        else if (!strcmp(argv[i], "--hold"))
            hold = 1;
        else if (!strcmp(argv[i], "--ready"))
            ready = 1;
        else if (!strcmp(argv[i], "--delay-ms") && i + 1 < argc)
            delay_ms = (unsigned)strtoul(argv[++i], NULL, 10);
    }
    char err[512];
    const char *endpoint = getenv("DEVNODE_ENDPOINT");
    struct devnode *dn = devnode_open(endpoint && *endpoint ? endpoint : NULL, "publisher", err, sizeof err);
    if (!dn) {
        fprintf(stderr, "amqpprobe: %s\n", err);
        return 1;
    }
    long accepted = 0, failed = 0;
    if (ready) {
        if (devnode_emit(dn, "probe.ready", NULL, 0) != 0) {
            fprintf(stderr, "amqpprobe: %s\n", devnode_last_error(dn));
            devnode_close(dn);
            return 1;
        }
        printf("ready\n");
        fflush(stdout);
        char line[16];
        if (!fgets(line, sizeof line, stdin)) {
        }
    }
    for (long i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%ld", i);
        json_t *body = json_pack("{s:I,s:s}", "n", (json_int_t)i, "name", name);
        int rc = wait ? devnode_emit(dn, type, body, delay_ms) : devnode_emit_nowait(dn, type, body, delay_ms);
        json_decref(body);
        if (rc == 0) {
            accepted++;
        } else {
            failed++;
            fprintf(stderr, "amqpprobe: %s\n", devnode_last_error(dn));
        }
    }
    if (hold) {
        printf("emitted\n");
        fflush(stdout);
        char line[16];
        if (!fgets(line, sizeof line, stdin)) {
        }
    }
    int lost = devnode_close(dn);
    printf("accepted %ld failed %ld close %d\n", accepted, failed, lost);
    return failed || lost ? 1 : 0;
}

struct consumer {
    int fail_first;
    const char *relay;          /* emit each body again as this type (no wait), or NULL */
    unsigned char failed[4096]; /* n already given back once */
};

static int on_event(const struct devnode_event *ev, void *ctx)
{
    struct consumer *c = ctx;
    long n = (long)json_integer_value(json_object_get(ev->body, "n"));
    const char *name = json_string_value(json_object_get(ev->body, "name"));
    devnode_log(ev->dn, DEVNODE_INFO, "got %s n=%ld name=%s source=%s redelivered=%d pid=%d", ev->type, n,
                name ? name : "-", ev->source, ev->redelivered, (int)getpid());
    if (c->relay && devnode_emit_nowait(ev->dn, c->relay, ev->body, 0) != 0)
        devnode_log(ev->dn, DEVNODE_ERROR, "relay: %s", devnode_last_error(ev->dn));
    if (c->fail_first && n >= 0 && n < (long)sizeof c->failed && !c->failed[n]) {
        c->failed[n] = 1;
        devnode_log(ev->dn, DEVNODE_INFO, "giving back %s n=%ld", ev->type, n);
        return 1;
    }
    return 0;
}

static int consume(const char *pattern, int argc, char **argv)
{
    static struct consumer c;
    unsigned flags = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--broadcast"))
            flags |= DEVNODE_BROADCAST;
        else if (!strcmp(argv[i], "--fail-first"))
            c.fail_first = 1;
        else if (!strcmp(argv[i], "--relay") && i + 1 < argc)
            c.relay = argv[++i];
    }
    char err[512];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "amqpprobe: %s\n", err);
        return 1;
    }
    if (devnode_subscribe(dn, pattern, flags, on_event, &c) != 0) {
        fprintf(stderr, "amqpprobe: %s\n", devnode_last_error(dn));
        devnode_close(dn);
        return 1;
    }
    int rc = devnode_run(dn);
    devnode_close(dn);
    return rc;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int on_bench(const struct devnode_event *ev, void *ctx)
{
    (void)ev;
    (*(long *)ctx)++;
    return 0;
}

static int bench(long n)
{
    int go[2], result[2];
    if (pipe(go) < 0 || pipe(result) < 0)
        return 1;
    const char *endpoint = getenv("DEVNODE_ENDPOINT");
    endpoint = endpoint && *endpoint ? endpoint : NULL;
    pid_t pid = fork();
    if (pid == 0) {
        /* The emitter opens its own everything after the fork, once the subscription is there. */
        char c, err[512];
        if (read(go[0], &c, 1) != 1)
            _exit(1);
        struct devnode *dn = devnode_open(endpoint, "BenchEmitter", err, sizeof err);
        if (!dn)
            _exit(1);
        char pad[65];
        memset(pad, 'x', 64);
        pad[64] = '\0';
        json_t *body = json_string(pad);
        long failed = 0;
        for (long i = 0; i < n; i++)
            failed += devnode_emit_nowait(dn, "bench.event", body, 0) != 0;
        json_decref(body);
        long lost = devnode_close(dn) + failed;
        if (write(result[1], &lost, sizeof lost) != (ssize_t)sizeof lost)
            _exit(1);
        _exit(0);
    }
    char err[512];
    struct devnode *dn = devnode_open(endpoint, "Bench", err, sizeof err);
    long count = 0;
    /* Under the embedded node a group of new events drops past 10,000 queued (docs/protocol.md),
     * which a plain emit loop outruns: there the bench reads a retained stream bench.# instead. */
    const char *events = getenv("DEVNODE_EVENTS");
    int amqp = events && *events;
    if (!dn || (amqp ? devnode_subscribe(dn, "bench.event", DEVNODE_BROADCAST, on_bench, &count)
                     : devnode_subscribe_stream(dn, "bench", "bench.#", NULL, "now", DEVNODE_BROADCAST, on_bench,
                                                &count)) != 0) {
        fprintf(stderr, "amqpprobe: %s\n", dn ? devnode_last_error(dn) : err);
        kill(pid, SIGKILL);
        return 1;
    }
    double t0 = now_s(), last = t0;
    if (write(go[1], "g", 1) != 1)
        return 1;
    while (count < n && now_s() - last < 10) {
        long before = count;
        struct pollfd p = {.fd = devnode_fd(dn), .events = POLLIN};
        poll(&p, 1, 100);
        devnode_process(dn);
        if (count > before)
            last = now_s();
    }
    double dt = last - t0;
    long lost = -1;
    if (read(result[0], &lost, sizeof lost) != (ssize_t)sizeof lost)
        lost = -1;
    waitpid(pid, NULL, 0);
    devnode_close(dn);
    printf("{\"received\": %ld, \"n\": %ld, \"seconds\": %.3f, \"per_s\": %.0f, \"emitter_lost\": %ld}\n", count, n,
           dt, dt > 0 ? (double)count / dt : 0.0, lost);
    return count == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && !strcmp(argv[1], "emit"))
        return emit(argv[2], strtol(argv[3], NULL, 10), argc - 4, argv + 4);
    if (argc >= 3 && !strcmp(argv[1], "bench"))
        return bench(strtol(argv[2], NULL, 10));
    if (argc >= 3 && !strcmp(argv[1], "consume"))
        return consume(argv[2], argc - 3, argv + 3);
    fprintf(stderr, "usage: amqpprobe emit TYPE N [--wait] [--delay-ms D] [--hold] [--ready] | "
                    "consume PATTERN [--broadcast] [--fail-first] [--relay TYPE] | bench N\n");
    return 2;
}
