/* cmd_up: `devnode up`: load and validate the config and what it names on this machine
 * (exit 2 before anything runs on error), then hand over to the node. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "node/node.h"
#include "node/preflight.h"
#include "tui/tui.h"

/* `devnode up` in a terminal: the dashboard runs on the node's loop, in this process. The node
 * knows nothing of it beyond the two hooks of node_options. */
struct up_dashboard {
    struct tui *tui;  /* NULL until started, and again once closed */
    int color;
};

static void up_on_dashboard_stop(void *ctx)
{
    node_request_stop(ctx, "stop asked from the dashboard");
}

static void up_on_node_ready(void *ctx, struct node *node, uv_loop_t *loop, const char *endpoint)
{
    struct up_dashboard *d = ctx;
    struct tui_options topts = {.endpoint = endpoint, .in_node = 1, .color = d->color};
    char err[512];
    if (tui_start(&d->tui, loop, &topts, err, sizeof err) == 0)
        tui_set_stop_callback(d->tui, up_on_dashboard_stop, node);
    else
        fprintf(stderr, "devnode: %s; the dashboard is off\n", err);
}

static void up_on_all_stopped(void *ctx)
{
    struct up_dashboard *d = ctx;
    if (d->tui) {
        tui_close(d->tui);
        d->tui = NULL;
    }
}

static const struct cli_option options[] = {
    {"vars", 0, 1, 'V'},
    {"no-tui", 0, 0, 'T'},
    {"port-base", 0, 1, 'P'},
    {"lossy", 0, 0, 'L'},
    {"lossless", 0, 0, 'F'},
    {"no-dotenv", 0, 0, CLI_OPT_NO_DOTENV},
    {"no-deps", 0, 0, 'D'},
    {"watch-config", 0, 0, 'W'},
    CLI_OPTION_FORMATION,
    {0},
};

static int cmd_up(struct cli_args *args)
{
    const char *vars = cli_arg(args, 'V') ? cli_arg(args, 'V') : getenv("LYMPH_VARS");
    const char *port_base = cli_arg(args, 'P');
    int no_tui = cli_arg(args, 'T') != NULL;
    const char *lossy = cli_arg(args, 'L'), *lossless = cli_arg(args, 'F');
    if (lossy && lossless) {
        cli_error("up: --lossy and --lossless exclude each other");
        return CLI_USAGE;
    }
    enum printer_mode output_mode = lossy ? PRINTER_LOSSY : lossless ? PRINTER_LOSSLESS : PRINTER_AUTO;
    struct node_options opts = {.vars_path = vars, .color = args->color, .output_mode = output_mode};
    const struct cli_project project = args->project;
    struct config cfg;
    struct preflight pf;
    if (cli_load_config(args, vars, port_base, &cfg, &pf) < 0)
        return CLI_USAGE;
    for (size_t i = 0; i < pf.warning_count; i++)
        cli_error("warning: %s", pf.warnings[i]);
    preflight_free(&pf);
    if (cli_check_subset("up", &cfg, args->argv, (size_t)args->argc, 0) != CLI_OK) {
        config_free(&cfg);
        return CLI_USAGE;
    }
    opts.services = args->argv;
    opts.service_count = (size_t)args->argc;
    opts.no_deps = cli_arg(args, 'D') != NULL;
    opts.config_path = project.config_path;
    /* A reload loads the config again the way it was loaded here. */
    opts.config_shown = args->config ? args->config : project.config_path;
    opts.config_flags = cli_arg(args, CLI_OPT_NO_DOTENV) ? CONFIG_NO_DOTENV : 0;
    opts.port_base = port_base ? atoi(port_base) : 0; /* checked by cli_load_config */
    opts.formation = cli_arg(args, 'm');
    opts.watch_config = cli_arg(args, 'W') != NULL;
    struct up_dashboard dashboard = {.color = opts.color};
    if (!no_tui && isatty(0) && isatty(1)) {
        opts.front_end = 1;
        opts.on_ready = up_on_node_ready;
        opts.on_all_stopped = up_on_all_stopped;
        opts.hook_ctx = &dashboard;
    }
    return node_run(&cfg, &opts);
}

const struct cli_command cmd_up_entry = {
    .name = "up",
    .usage = "[-c PATH] [--vars FILE] [--color=auto|always|never] [--no-tui] [--port-base N] [--lossy|--lossless] [--no-dotenv] [--watch-config] [-m NAME=N,...] [--no-deps] [SERVICE...]",
    .summary = "start the services (or the named ones and what they need) and supervise them until Ctrl-C",
    .flags = CLI_NEEDS_PROJECT | CLI_COLOR,
    .options = options,
    .run = cmd_up,
};
