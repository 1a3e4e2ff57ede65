/* cmd_tui: `devnode tui` (alias `top`): the dashboard attached to a running node from another
 * terminal, on a loop of its own. It only talks the node protocol, so any number may attach;
 * `q` detaches and the node keeps running. Without a terminal it refuses (use `devnode tail`). */
#include <getopt.h>
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

int cmd_tui(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"color", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *config_arg = NULL, *color_mode = NULL;
    const char *name = argv[0];
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config_arg = optarg; break;
        case 'C': color_mode = optarg; break;
        case 'h':
            printf("usage: devnode %s %s\n", name, cli_find_command(name) ? cli_find_command(name)->usage : "");
            return CLI_OK;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("%s: unexpected argument '%s'", name, argv[optind]);
        return CLI_USAGE;
    }
    int color;
    if (cli_color_mode(color_mode, &color) < 0) {
        cli_error("%s: --color takes auto, always or never, not '%s'", name, color_mode);
        return CLI_USAGE;
    }
    struct cli_project project;
    char err[1024];
    if (cli_open_project(config_arg, &project) < 0)
        return CLI_USAGE;
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
