/* amqpprobe: a libdevnode emitter and handler for the e2e tests of the RabbitMQ back end
 * (tests/e2e/test_amqp_events.py); nothing in it knows about RabbitMQ: DEVNODE_EVENTS does.
 *   amqpprobe emit TYPE N [--wait] [--delay-ms D] [--hold]
 *       a client (devnode_open on DEVNODE_ENDPOINT, or none): N events {"n": i, "name": "p<i>"},
 *       each with devnode_emit (--wait) or devnode_emit_nowait; --hold prints "emitted" and
 *       waits for a line on stdin before devnode_close; prints "accepted A failed F close C"
 *   amqpprobe consume PATTERN [--broadcast] [--fail-first]
 *       a service (devnode_run): one line per event, "got TYPE n=N name=… source=S
 *       redelivered=R pid=P"; --fail-first gives each n back once (the handler returns 1) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <devnode.h>

static int emit(const char *type, long n, int argc, char **argv)
{
    int wait = 0, hold = 0;
    unsigned delay_ms = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--wait"))
            wait = 1;
        else if (!strcmp(argv[i], "--hold"))
            hold = 1;
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
    unsigned char failed[4096]; /* n already given back once */
};

static int on_event(const struct devnode_event *ev, void *ctx)
{
    struct consumer *c = ctx;
    long n = (long)json_integer_value(json_object_get(ev->body, "n"));
    const char *name = json_string_value(json_object_get(ev->body, "name"));
    devnode_log(ev->dn, DEVNODE_INFO, "got %s n=%ld name=%s source=%s redelivered=%d pid=%d", ev->type, n,
                name ? name : "-", ev->source, ev->redelivered, (int)getpid());
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

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && !strcmp(argv[1], "emit"))
        return emit(argv[2], strtol(argv[3], NULL, 10), argc - 4, argv + 4);
    if (argc >= 3 && !strcmp(argv[1], "consume"))
        return consume(argv[2], argc - 3, argv + 3);
    fprintf(stderr, "usage: amqpprobe emit TYPE N [--wait] [--delay-ms D] [--hold] | "
                    "consume PATTERN [--broadcast] [--fail-first]\n");
    return 2;
}
