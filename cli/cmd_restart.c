/* cmd_restart: `devnode restart SERVICE[.N]...`: restarts instances and, unless --no-wait,
 * waits until every new process is ready (exit 0) or one failed (exit 1, with what state
 * each instance was left in). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

/* One target: 0 ok, or the exit status it calls for. */
static int restart_one(const struct cli_project *project, const char *target, int id, int wait, int timeout_ms)
{
    struct wire_body body;
    wire_body_init(&body);
    msgpack_pack_map(&body.pk, 2 + wait);
    wire_pack_kv_int(&body.pk, "id", id);
    wire_pack_kv_str(&body.pk, "target", target);
    if (wait)
        wire_pack_kv_bool(&body.pk, "wait", 1);
    struct wire_msg reply;
    char err[2048];
    if (!wait) {
        int rc = cli_request(project, "restart", &body, CLI_ANSWER_TIMEOUT_MS, &reply, err, sizeof err);
        wire_body_free(&body);
        if (rc < 0) {
            cli_error("restart %s: %s", target, err);
            return CLI_FAILURE;
        }
        int64_t n = 0;
        wire_get_int(reply.body, "instances", &n);
        printf("restarting %s (%lld instance%s)\n", target, (long long)n, n == 1 ? "" : "s");
        wire_msg_free(&reply);
        return CLI_OK;
    }
    enum cli_wait w = cli_request_wait(project, "restart", &body, timeout_ms, &reply, err, sizeof err);
    wire_body_free(&body);
    if (w != CLI_WAIT_DONE) {
        cli_error("restart %s: %s", target, err);
        return w == CLI_WAIT_INTERRUPTED ? CLI_INTERRUPTED : CLI_FAILURE;
    }
    int64_t ready = 0, elapsed_ms = 0;
    wire_get_int(reply.body, "ready", &ready);
    wire_get_int(reply.body, "elapsed_ms", &elapsed_ms);
    printf("restarted %s: %lld instance%s ready in %.1f s\n", target, (long long)ready, ready == 1 ? "" : "s",
           elapsed_ms / 1000.0);
    fflush(stdout);
    wire_msg_free(&reply);
    return CLI_OK;
}

int cmd_restart(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"no-wait", no_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {0},
    };
    const char *config_arg = NULL;
    int opt, wait = 1, timeout_ms = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:", options, NULL)) != -1) {
        if (opt == 'c') {
            config_arg = optarg;
        } else if (opt == 'n') {
            wait = 0;
        } else if (opt == 't') {
            char *end;
            double s = strtod(optarg, &end);
            if (*end || end == optarg || s <= 0 || s > 86400) {
                cli_error("restart: --timeout takes a number of seconds, not '%s'", optarg);
                return CLI_USAGE;
            }
            timeout_ms = (int)(s * 1000);
        } else {
            return CLI_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("restart: name a service or an instance (Greeting, Greeting.1)");
        return CLI_USAGE;
    }
    struct cli_project project;
    if (cli_open_project(config_arg, &project) < 0)
        return CLI_USAGE;
    int status = cli_check_targets(&project, "restart", argv + optind, (size_t)(argc - optind), CLI_NAMES_INSTANCES);
    if (status != CLI_OK)
        return status;
    for (int i = optind; i < argc; i++) {
        int rc = restart_one(&project, argv[i], i, wait, timeout_ms);
        if (rc == CLI_INTERRUPTED)
            return rc;
        if (rc != CLI_OK)
            status = rc;
    }
    return status;
}
