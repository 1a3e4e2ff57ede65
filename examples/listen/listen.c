/* listen: the seed demo's Listen service: logs every `greeted` event, each handled by one
 * instance of the service. Options make it the test variant (slow handler, other patterns,
 * broadcast); it must never ack an event before its handler has finished. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <devnode.h>

struct listen_opts {
    long sleep_ms;   /* the handler takes this long (tests kill it meanwhile) */
    int pid;
};

static int on_event(const struct devnode_event *ev, void *ctx)
{
    const struct listen_opts *o = ctx;
    const char *name = json_string_value(json_object_get(ev->body, "name"));
    if (o->sleep_ms > 0) {
        devnode_log(ev->dn, DEVNODE_INFO, "handling %s delivery=%llu pid=%d%s", ev->type,
                    (unsigned long long)ev->delivery, o->pid, ev->redelivered ? " redelivered" : "");
        struct timespec ts = {.tv_sec = o->sleep_ms / 1000, .tv_nsec = (o->sleep_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0) {
        }
    }
    char *body = json_dumps(ev->body, JSON_COMPACT | JSON_ENCODE_ANY);
    if (strcmp(ev->type, "greeted") == 0 && name)
        devnode_log(ev->dn, DEVNODE_INFO, "Somebody greeted %s (delivery=%llu pid=%d%s)", name,
                    (unsigned long long)ev->delivery, o->pid, ev->redelivered ? " redelivered" : "");
    else
        devnode_log(ev->dn, DEVNODE_INFO, "event %s body=%s delivery=%llu pid=%d%s", ev->type,
                    body ? body : "?", (unsigned long long)ev->delivery, o->pid,
                    ev->redelivered ? " redelivered" : "");
    free(body);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: listen [--pattern P]... [--broadcast] [--sleep-ms N]\n"
                 "Logs every event matching the patterns (default: greeted).\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"pattern", required_argument, NULL, 'p'},
        {"broadcast", no_argument, NULL, 'b'},
        {"sleep-ms", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    struct listen_opts o = {.pid = (int)getpid()};
    const char *patterns[16];
    int npatterns = 0;
    unsigned flags = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "p:bs:h", options, NULL)) != -1) {
        switch (opt) {
        case 'p':
            if (npatterns == 16) {
                fprintf(stderr, "listen: at most 16 patterns\n");
                return 2;
            }
            patterns[npatterns++] = optarg;
            break;
        case 'b':
            flags |= DEVNODE_BROADCAST;
            break;
        case 's':
            o.sleep_ms = strtol(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (npatterns == 0)
        patterns[npatterns++] = "greeted";

    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "listen: %s\n", err);
        return 2;
    }
    for (int i = 0; i < npatterns; i++)
        devnode_subscribe(dn, patterns[i], flags, on_event, &o);
    int rc = devnode_run(dn);
    devnode_close(dn);
    return rc;
}
