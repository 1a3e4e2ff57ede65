/* cmd_restart: `devnode restart SERVICE[.N]...`: restarts instances and, unless --no-wait,
 * waits until every new process is ready (exit 0) or one failed (exit 1, with what state
 * each instance was left in). */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

/* One target: 0 ok, or the exit status it calls for. */
static int restart_one(const struct cli_project *project, const char *target, int id, int wait, int timeout_ms)
{
    struct wire_body body;
    wire_body_init(&body);
    proto_pack_restart(&body.pk, id, &(struct proto_restart){.target = target, .wait = wait});
    struct wire_msg reply;
    char err[2048];
    if (!wait) {
        int rc = cli_request(project, PROTO_RESTART, &body, CLI_ANSWER_TIMEOUT_MS, &reply, err, sizeof err);
        wire_body_free(&body);
        if (rc < 0) {
            cli_error("restart %s: %s", target, err);
            return CLI_FAILURE;
        }
        int64_t n;
        proto_unpack_change_accepted(reply.body, 0, &n);
        printf("restarting %s (%lld instance%s)\n", target, (long long)n, n == 1 ? "" : "s");
        wire_msg_free(&reply);
        return CLI_OK;
    }
    enum cli_wait w = cli_request_wait(project, PROTO_RESTART, &body, timeout_ms, &reply, err, sizeof err);
    wire_body_free(&body);
    if (w != CLI_WAIT_DONE) {
        cli_error("restart %s: %s", target, err);
        return w == CLI_WAIT_INTERRUPTED ? CLI_INTERRUPTED : CLI_FAILURE;
    }
    struct proto_change_done done;
    proto_unpack_change_done(reply.body, 0, &done);
    printf("restarted %s: %lld instance%s ready in %.1f s\n", target, (long long)done.ready,
           done.ready == 1 ? "" : "s", done.elapsed_ms / 1000.0);
    fflush(stdout);
    wire_msg_free(&reply);
    return CLI_OK;
}

static const struct cli_option options[] = {
    {"no-wait", 0, 0, 'n'},
    {"timeout", 0, 1, 't'},
    {0},
};

static int cmd_restart(struct cli_args *args)
{
    int wait = !cli_arg(args, 'n'), timeout_ms = 0;
    if (cli_timeout_ms("restart", cli_arg(args, 't'), &timeout_ms) < 0)
        return CLI_USAGE;
    if (args->argc == 0) {
        cli_error("restart: name a service or an instance (Greeting, Greeting.1)");
        return CLI_USAGE;
    }
    const struct cli_project *project = &args->project;
    int status = cli_check_targets(project, "restart", args->argv, (size_t)args->argc, CLI_NAMES_INSTANCES);
    if (status != CLI_OK)
        return status;
    for (int i = 0; i < args->argc; i++) {
        int rc = restart_one(project, args->argv[i], i + 1, wait, timeout_ms);
        if (rc == CLI_INTERRUPTED)
            return rc;
        if (rc != CLI_OK)
            status = rc;
    }
    return status;
}

const struct cli_command cmd_restart_entry = {
    .name = "restart",
    .usage = "[-c PATH] [--no-wait] [--timeout SECONDS] SERVICE[.N]...",
    .summary = "restart a service or one instance",
    .flags = CLI_NEEDS_PROJECT | CLI_NEEDS_NODE,
    .options = options,
    .run = cmd_restart,
};
