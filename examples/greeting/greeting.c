/* greeting: the seed demo's Greeting service (lymph's intro): RPC greet(name) logs, emits
 * `greeted` and returns "Hi, NAME!". Run it under devnode (`.lymph.yml`); it must never
 * answer before the event is queued, so a listener always hears of a greeting it returned. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <devnode.h>

static json_t *greet(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    long delay_ms = *(const long *)ctx;
    if (delay_ms > 0) {
        /* The slow variant, for timeout tests: the caller gives up before we answer. */
        struct timespec ts = {.tv_sec = delay_ms / 1000, .tv_nsec = (delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0) {
        }
    }
    const char *name = json_string_value(json_object_get(args, "name"));
    if (!name)
        return devnode_error_set(err, "ValueError", "name must be a string");
    if (!*name)
        return devnode_error_set(err, "ValueError", "name must not be empty");
    devnode_log(dn, DEVNODE_INFO, "Saying hi to %s", name);
    json_t *body = json_pack("{s:s}", "name", name);
    int rc = devnode_emit(dn, "greeted", body, 0);
    json_decref(body);
    if (rc != 0)
        return devnode_error_set(err, "EmitError", "cannot emit greeted: %s", devnode_last_error(dn));
    return json_sprintf("Hi, %s!", name);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"delay-ms", required_argument, NULL, 'd'},
        {0, 0, 0, 0},
    };
    long delay_ms = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "d:", options, NULL)) != -1) {
        if (opt != 'd') {
            fprintf(stderr, "usage: greeting [--delay-ms N]\n");
            return 2;
        }
        delay_ms = strtol(optarg, NULL, 10);
    }
    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "greeting: %s\n", err);
        return 2;
    }
    static const char *const params[] = {"name", NULL};
    devnode_add_method(dn, "greet", params, "Returns a greeting for name and emits `greeted`", greet, &delay_ms);
    int rc = devnode_run(dn);
    devnode_close(dn);
    return rc;
}
