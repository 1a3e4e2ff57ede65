/* cmd_start: `devnode start SERVICE...` on a running node: starts the service and what it
 * depends on that is down, in dependency order, without touching the rest; waits (unless
 * --no-wait) until it runs and is ready, or completed, or cannot start (exit 1, saying why). */
#include <stdio.h>

#include "cli/cli.h"

static const struct cli_option options[] = {
    {"no-wait", 0, 0, 'n'},
    {"timeout", 0, 1, 't'},
    {0},
};

static int start_one(const struct cli_project *project, const char *service, int wait, int timeout_ms)
{
    struct wire_body body;
    wire_body_init(&body);
    proto_pack_service_request(&body.pk, 1, &(struct proto_service_request){.service = service});
    struct wire_msg reply;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "start %s", service);
    if (cli_call(project, PROTO_START_SERVICE, &body, &reply, prefix) < 0)
        return CLI_FAILURE;
    char started[1024];
    struct proto_service_reply r;
    proto_unpack_service_reply(reply.body, &r, started, sizeof started);
    wire_msg_free(&reply);
    if (!started[0]) {
        printf("%s is already up\n", service);
        return CLI_OK;
    }
    printf("starting %s\n", started);
    fflush(stdout);
    if (!wait)
        return CLI_OK;
    int rc = cli_service_wait(project, "start", service, 1, timeout_ms);
    if (rc == CLI_OK)
        printf("%s is up\n", service);
    return rc;
}

static int cmd_start(struct cli_args *args)
{
    int wait = !cli_arg(args, 'n'), timeout_ms = 120000;
    if (cli_timeout_ms("start", cli_arg(args, 't'), &timeout_ms) < 0)
        return CLI_USAGE;
    if (args->argc == 0) {
        cli_error("start: name a service (devnode start Worker); `devnode up` starts the node");
        return CLI_USAGE;
    }
    const struct cli_project *project = &args->project;
    int status = cli_check_targets(project, "start", args->argv, (size_t)args->argc, 0);
    if (status != CLI_OK)
        return status;
    for (int i = 0; i < args->argc; i++) {
        int rc = start_one(project, args->argv[i], wait, timeout_ms);
        if (rc != CLI_OK)
            status = rc;
    }
    return status;
}

const struct cli_command cmd_start_entry = {
    .name = "start",
    .usage = "[-c PATH] [--no-wait] [--timeout SECONDS] SERVICE...",
    .summary = "start a service (and what it needs) on the running node",
    .flags = CLI_NEEDS_PROJECT | CLI_NEEDS_NODE,
    .options = options,
    .run = cmd_start,
};
