/* cmd_tui: `devnode tui` (alias `top`): the dashboard attached to a running node from another
 * terminal, on a loop of its own. It only talks the node protocol, so any number may attach;
 * `q` detaches and the node keeps running. Without a terminal it refuses (use `devnode tail`). */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli/cli.h"
#include "common/rundir.h"
#include "tui/tui.h"

struct tui_run {
    struct tui *tui;
    int status;
    char message[256];
};

static void on_quit(void *ctx, int status, const char *message)
{
    struct tui_run *run = ctx;
    run->status = status;
    snprintf(run->message, sizeof run->message, "%s", message ? message : "");
    tui_close(run->tui);
}

static int cmd_tui(struct cli_args *args)
{
    const char *name = args->name;
    int color = args->color;
    if (args->argc) {
        cli_error("%s: unexpected argument '%s'", name, args->argv[0]);
        return CLI_USAGE;
    }
    const struct cli_project project = args->project;
    char err[1024];
    char endpoint[PATH_MAX + 16];
    pid_t pid;
    if (rundir_find_node(project.dir, endpoint, sizeof endpoint, &pid, err, sizeof err) < 0) {
        cli_error("%s", err);
        return CLI_FAILURE;
    }
    if (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)) {
        cli_error("devnode %s needs a terminal; use devnode tail", name);
        return CLI_USAGE;
    }
    setlocale(LC_ALL, "");
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct tui_run run = {.status = CLI_OK};
    struct tui_options opts = {.endpoint = endpoint, .in_node = 0, .color = color, .project_dir = project.dir};
    if (tui_start(&run.tui, &loop, &opts, err, sizeof err) < 0) {
        uv_loop_close(&loop);
        cli_error("%s", err);
        return CLI_FAILURE;
    }
    tui_set_quit_callback(run.tui, on_quit, &run);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (run.message[0])
        fprintf(stderr, "devnode %s: %s\n", name, run.message);
    return run.status;
}

const struct cli_command cmd_tui_entry = {
    .name = "tui",
    .aliases = {"top"},
    .usage = "[-c PATH] [--color=auto|always|never]",
    .summary = "the dashboard of the running node, in this terminal",
    .flags = CLI_NEEDS_PROJECT | CLI_NEEDS_NODE | CLI_COLOR,
    .run = cmd_tui,
};
