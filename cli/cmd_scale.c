/* cmd_scale: `devnode scale SERVICE COUNT`: changes a service's instance count live and,
 * unless --no-wait, waits until the new instances are ready and the removed ones gone. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

static void print_scaled(const char *service, long count, const struct wire_msg *reply)
{
    struct proto_change_done done;
    proto_unpack_change_done(reply->body, 1, &done);
    int64_t ready = done.ready, stopped = done.stopped, elapsed_ms = done.elapsed_ms;
    printf("scaled %s to %ld: ", service, count);
    if (ready)
        printf("%lld instance%s ready%s", (long long)ready, ready == 1 ? "" : "s", stopped ? ", " : "");
    if (stopped)
        printf("%lld instance%s stopped", (long long)stopped, stopped == 1 ? "" : "s");
    if (ready || stopped)
        printf(" in %.1f s\n", elapsed_ms / 1000.0);
    else
        printf("no instance to start or stop\n");
}

static const struct cli_option options[] = {
    {"no-wait", 0, 0, 'n'},
    {"timeout", 0, 1, 't'},
    {0},
};

static int cmd_scale(struct cli_args *args)
{
    int wait = !cli_arg(args, 'n'), timeout_ms = 0;
    if (cli_timeout_ms("scale", cli_arg(args, 't'), &timeout_ms) < 0)
        return CLI_USAGE;
    /* A negative count comes as an operand (the parser takes "-1" for one): say what is wrong. */
    for (int i = 0; i < args->argc; i++) {
        if (args->argv[i][0] == '-' && isdigit((unsigned char)args->argv[i][1])) {
            cli_error("scale: COUNT must be a whole number from 0 to 10000, not '%s'", args->argv[i]);
            return CLI_USAGE;
        }
    }
    if (args->argc != 2) {
        cli_error("scale: usage: devnode scale SERVICE COUNT");
        return CLI_USAGE;
    }
    const char *service = args->argv[0];
    char *end;
    long count = strtol(args->argv[1], &end, 10);
    if (*end || end == args->argv[1] || count < 0 || count > 10000) {
        cli_error("scale: COUNT must be a whole number from 0 to 10000, not '%s'", args->argv[1]);
        return CLI_USAGE;
    }
    const struct cli_project project = args->project;
    int checked = cli_check_targets(&project, "scale", args->argv, 1, 0);
    if (checked != CLI_OK)
        return checked;
    struct wire_body body;
    wire_body_init(&body);
    proto_pack_scale(&body.pk, 1, &(struct proto_scale){.service = service, .count = count, .wait = wait});
    struct wire_msg reply;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "scale %s", service);
    if (!wait) {
        if (cli_call(&project, PROTO_SCALE, &body, &reply, prefix) < 0)
            return CLI_FAILURE;
        wire_msg_free(&reply);
        printf("scaling %s to %ld\n", service, count);
        return CLI_OK;
    }
    char err[2048];
    enum cli_wait w = cli_request_wait(&project, PROTO_SCALE, &body, timeout_ms, &reply, err, sizeof err);
    wire_body_free(&body);
    if (w != CLI_WAIT_DONE) {
        cli_error("%s: %s", prefix, err);
        return w == CLI_WAIT_INTERRUPTED ? CLI_INTERRUPTED : CLI_FAILURE;
    }
    print_scaled(service, count, &reply);
    wire_msg_free(&reply);
    return CLI_OK;
}

const struct cli_command cmd_scale_entry = {
    .name = "scale",
    .usage = "[-c PATH] [--no-wait] [--timeout SECONDS] SERVICE COUNT",
    .summary = "change the number of instances of a service",
    .flags = CLI_NEEDS_PROJECT | CLI_NEEDS_NODE,
    .options = options,
    .run = cmd_scale,
};
