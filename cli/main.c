/* main: the `devnode` binary. One table of subcommands; each lives in its own cmd_*.c,
 * so a new subcommand is one new file and one line here. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_command commands[] = {
    {"up", "[-c PATH] [--vars FILE] [--color=auto|always|never] [--no-tui] [--port-base N] [--lossy|--lossless]",
     "start every service of .lymph.yml and supervise them until Ctrl-C", cmd_up},
    {"check", "[-c PATH] [--vars FILE] [--port-base N]", "validate .lymph.yml and show what would run", cmd_check},
    {"status", "[-c PATH] [--json]", "show the services and instances of the running node", cmd_status},
    {"restart", "[-c PATH] [--no-wait] [--timeout SECONDS] SERVICE[.N]...", "restart a service or one instance", cmd_restart},
    {"scale", "[-c PATH] [--no-wait] [--timeout SECONDS] SERVICE COUNT", "change the number of instances of a service", cmd_scale},
    {"stop", "[-c PATH] [--force] [--timeout SECONDS]", "stop the running node gracefully", cmd_stop},
    {"tail", "[-c PATH] [-n N] [-f] [--trace ID] [--grep PATTERN] [--level LEVEL] [--json] "
     "[--color=auto|always|never] [--lossy|--lossless] [SERVICE[.N]...]", "print log lines of the node, live with -f, or one trace", cmd_tail},
    {"traces", "[-c PATH] [-n N] [--json]", "list recent traces: services touched, duration, errors", cmd_traces},
    {"events", "[-c PATH] [--from N] [--follow] [--json] [PATTERN]", "print the retained events of the streams",
     cmd_events},
    {"discover", "[-c PATH] [-v] [--json] [SERVICE]", "list the services in the node's registry", cmd_discover},
    {"request", "[-c PATH] [--address ENDPOINT] [--timeout SECONDS] [--trace-id ID] [-D] [-N COUNT -C CONCURRENCY] "
                "Service.method [PARAMS|-]",
     "send an RPC request to a service and print the reply", cmd_request},
    {"inspect", "[-c PATH] [--color=auto|always|never] SERVICE|ADDRESS", "list the RPC methods of a service",
     cmd_inspect},
    {"emit", "[-c PATH] [--delay MS] [--trace-id ID] TYPE [BODY]", "publish an event through the node", cmd_emit},
    {"subscribe", "[-c PATH] [--json] [-n COUNT] PATTERN...", "print events as they are published", cmd_subscribe},
    {"tui", "[-c PATH] [--color=auto|always|never]", "the dashboard of the running node, in this terminal", cmd_tui},
    {"top", "[-c PATH] [--color=auto|always|never]", "the same as tui", cmd_tui},
    {"schema", "", "print the JSON Schema of .lymph.yml, for editors", cmd_schema},
};

const struct cli_command *cli_find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_help(FILE *out)
{
    fprintf(out, "usage: devnode COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun `devnode help COMMAND` for a command's options.\n"
                 "Exit codes: 0 success, 1 runtime failure, 2 usage or config error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help")) {
        const struct cli_command *cmd = argc > 2 ? cli_find_command(argv[2]) : NULL;
        if (cmd)
            printf("usage: devnode %s %s\n  %s\n", cmd->name, cmd->usage, cmd->summary);
        else
            print_help(stdout);
        return CLI_OK;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("devnode 0.1.0\n");
        return CLI_OK;
    }
    const struct cli_command *cmd = cli_find_command(name);
    if (!cmd) {
        cli_error("unknown command '%s' (see `devnode help`)", name);
        return CLI_USAGE;
    }
    return cmd->run(argc - 1, argv + 1);
}
