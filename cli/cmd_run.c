/* cmd_run: `devnode run [SERVICE...]`: compose's `up --exit-code-from` for CI and scripts.
 * Starts what `up` would, prints like `up --no-tui`, and ends once every named one-shot
 * service (none named: every one-shot service started) has completed, stopping the rest;
 * the exit code says how they ended (docs/cli.md, "run"). The node decides the end
 * (node/startorder.c); this only checks the command line and hands over. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "node/node.h"
#include "node/preflight.h"

static const struct cli_option options[] = {
    {"vars", 0, 1, 'V'},
    {"port-base", 0, 1, 'P'},
    {"lossy", 0, 0, 'L'},
    {"lossless", 0, 0, 'F'},
    {"no-dotenv", 0, 0, CLI_OPT_NO_DOTENV},
    {"no-deps", 0, 0, 'D'},
    {"abort-on-failure", 0, 0, 'A'},
    CLI_OPTION_FORMATION,
    {0},
};

static int is_one_shot(const struct config_service *svc)
{
    return svc->restart != RESTART_ALWAYS;
}

static int cmd_run(struct cli_args *args)
{
    const char *vars = cli_arg(args, 'V') ? cli_arg(args, 'V') : getenv("LYMPH_VARS");
    const char *lossy = cli_arg(args, 'L'), *lossless = cli_arg(args, 'F');
    if (lossy && lossless) {
        cli_error("run: --lossy and --lossless exclude each other");
        return CLI_USAGE;
    }
    struct config cfg;
    struct preflight pf;
    if (cli_load_config(args, vars, cli_arg(args, 'P'), &cfg, &pf) < 0)
        return CLI_USAGE;
    for (size_t i = 0; i < pf.warning_count; i++)
        cli_error("warning: %s", pf.warnings[i]);
    preflight_free(&pf);
    if (cli_check_subset("run", &cfg, args->argv, (size_t)args->argc, 1) != CLI_OK) {
        config_free(&cfg);
        return CLI_USAGE;
    }
    if (args->argc == 0) {
        size_t one_shots = 0;
        for (size_t i = 0; i < cfg.service_count; i++)
            one_shots += !cfg.services[i].disabled && is_one_shot(&cfg.services[i]);
        if (!one_shots) {
            cli_error("run: no one-shot service to wait for: give one restart: never or on-failure, or use "
                      "`devnode up`");
            config_free(&cfg);
            return CLI_USAGE;
        }
    }
    struct node_options opts = {
        .config_path = args->project.config_path,
        .vars_path = vars,
        .color = args->color,
        .output_mode = lossy ? PRINTER_LOSSY : lossless ? PRINTER_LOSSLESS : PRINTER_AUTO,
        .services = args->argv,
        .service_count = (size_t)args->argc,
        .no_deps = cli_arg(args, 'D') != NULL,
        .run = 1,
        .abort_on_failure = cli_arg(args, 'A') != NULL,
    };
    return node_run(&cfg, &opts);
}

const struct cli_command cmd_run_entry = {
    .name = "run",
    .usage = "[-c PATH] [--vars FILE] [--color=auto|always|never] [--port-base N] [--lossy|--lossless] [--no-dotenv] [-m NAME=N,...] [--no-deps] [--abort-on-failure] [SERVICE...]",
    .summary = "start like up, exit once the one-shot services completed, with their exit code",
    .flags = CLI_NEEDS_PROJECT | CLI_COLOR,
    .options = options,
    .run = cmd_run,
};
