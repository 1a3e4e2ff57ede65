/* cmd_up: `devnode up`: load and validate the config and what it names on this machine
 * (exit 2 before anything runs on error), then hand over to the node. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "node/node.h"
#include "node/preflight.h"

int cmd_up(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"vars", required_argument, NULL, 'V'},
        {"color", required_argument, NULL, 'C'},
        {"no-tui", no_argument, NULL, 'T'},
        {"port-base", required_argument, NULL, 'P'},
        {"lossy", no_argument, NULL, 'L'},
        {"lossless", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *config_arg = NULL, *vars = getenv("LYMPH_VARS"), *color_mode = NULL, *port_base = NULL;
    int opt, no_tui = 0;
    enum printer_mode output_mode = PRINTER_AUTO;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config_arg = optarg; break;
        case 'V': vars = optarg; break;
        case 'C': color_mode = optarg; break;
        case 'T': no_tui = 1; break;
        case 'P': port_base = optarg; break;
        case 'L':
        case 'F':
            if (output_mode != PRINTER_AUTO && output_mode != (opt == 'L' ? PRINTER_LOSSY : PRINTER_LOSSLESS)) {
                cli_error("up: --lossy and --lossless exclude each other");
                return CLI_USAGE;
            }
            output_mode = opt == 'L' ? PRINTER_LOSSY : PRINTER_LOSSLESS;
            break;
        case 'h':
            printf("usage: devnode up %s\n", cli_find_command("up")->usage);
            return CLI_OK;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("up: unexpected argument '%s'", argv[optind]);
        return CLI_USAGE;
    }
    struct node_options opts = {.vars_path = vars, .output_mode = output_mode};
    if (cli_color_mode(color_mode, &opts.color) < 0) {
        cli_error("up: --color takes auto, always or never, not '%s'", color_mode);
        return CLI_USAGE;
    }
    struct cli_project project;
    char err[1024];
    if (cli_open_project(config_arg, &project) < 0)
        return CLI_USAGE;
    struct config cfg;
    const char *path = config_arg ? config_arg : project.config_path;
    if (config_load(path, vars, &cfg, err, sizeof err) < 0) {
        cli_error("%s", err);
        return CLI_USAGE;
    }
    if (cli_check_ports(&cfg, path, port_base) < 0) {
        config_free(&cfg);
        return CLI_USAGE;
    }
    struct preflight pf;
    if (preflight_run(&cfg, path, &pf, err, sizeof err) < 0) {
        cli_error("%s", err);
        preflight_free(&pf);
        config_free(&cfg);
        return CLI_USAGE;
    }
    for (size_t i = 0; i < pf.warning_count; i++)
        cli_error("warning: %s", pf.warnings[i]);
    preflight_free(&pf);
    opts.config_path = project.config_path;
    opts.tui = !no_tui && isatty(0) && isatty(1);
    return node_run(&cfg, &opts);
}
