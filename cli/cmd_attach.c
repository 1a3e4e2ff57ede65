/* cmd_attach: `devnode attach Web.1`: this terminal to an instance's stdin/tty until the
 * detach key (Ctrl-]), the process's exit, or a signal. The conversation is tail/attachclient.c,
 * shared with the dashboard; this file runs it on a loop of its own and maps the way it ended
 * to an exit code. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "cli/cli.h"
#include "common/rundir.h"
#include "tail/attachclient.h"

struct attach_outcome {
    enum attach_result result;
    char message[600];
};

static void on_done(void *ctx, enum attach_result result, const char *message)
{
    struct attach_outcome *o = ctx;
    o->result = result;
    snprintf(o->message, sizeof o->message, "%s", message ? message : "");
}

static int cmd_attach(struct cli_args *args)
{
    if (args->argc == 0) {
        cli_error("attach: name an instance, e.g. `devnode attach Web.0`");
        return CLI_USAGE;
    }
    if (args->argc > 1) {
        cli_error("attach: one instance at a time, not also '%s'", args->argv[1]);
        return CLI_USAGE;
    }
    const char *target = args->argv[0];
    char endpoint[PATH_MAX + 16], err[512];
    pid_t node_pid;
    if (rundir_find_node(args->project.dir, endpoint, sizeof endpoint, &node_pid, err, sizeof err) < 0) {
        cli_error("attach: %s", err);
        return CLI_FAILURE;
    }
    /* A closed stdout (`| head`) must end the session, not kill it with the terminal raw. */
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct attach_outcome outcome = {.result = ATTACH_FAILED};
    struct attach_client *client;
    struct attach_client_options opts = {
        .endpoint = endpoint, .node_pid = node_pid, .target = target, .handle_signals = 1};
    if (attach_client_start(&client, &loop, &opts, on_done, &outcome, err, sizeof err) < 0) {
        uv_loop_close(&loop);
        cli_error("attach: %s", err);
        return CLI_FAILURE;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    switch (outcome.result) {
    case ATTACH_DETACHED:
        fprintf(stderr, "devnode: detached from %s; it runs on%s%s%s\n", target, outcome.message[0] ? " (" : "",
                outcome.message, outcome.message[0] ? ")" : "");
        return CLI_OK;
    case ATTACH_EXITED:
        fprintf(stderr, "devnode: %s\n", outcome.message);
        return CLI_OK;
    case ATTACH_INTERRUPTED:
        fprintf(stderr, "devnode: %s from %s; it runs on\n", outcome.message, target);
        return CLI_INTERRUPTED;
    case ATTACH_REFUSED_CONFIG:
        cli_error("attach: %s", outcome.message);
        return CLI_USAGE;
    case ATTACH_REFUSED:
    case ATTACH_FAILED:
    default:
        cli_error("attach: %s", outcome.message);
        return CLI_FAILURE;
    }
}

const struct cli_command cmd_attach_entry = {
    .name = "attach",
    .usage = "[-c PATH] SERVICE.N",
    .summary = "connect this terminal to an instance's stdin/tty (stdin: or tty: true); Ctrl-] detaches",
    .flags = CLI_NEEDS_PROJECT | CLI_NEEDS_NODE,
    .run = cmd_attach,
};
