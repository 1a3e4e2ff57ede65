/* main: the `devnode` binary. The command table lists one entry per cmd_*.c (the entry, with
 * its options, usage and summary, lives in that file); main parses the command line against
 * it once, so a new command is one new file and one line in COMMANDS below. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/xalloc.h"

/* One line per command: cli/cmd_NAME.c defines cmd_NAME_entry. The order is `devnode help`'s. */
#define COMMANDS(X) \
    X(up)           \
    X(check)        \
    X(graph)        \
    X(status)       \
    X(restart)      \
    X(attach)       \
    X(reload)       \
    X(scale)        \
    X(stop)         \
    X(start)        \
    X(run)          \
    X(tail)         \
    X(traces)       \
    X(discover)     \
    X(request)      \
    X(inspect)      \
    X(emit)         \
    X(subscribe)    \
    X(events)       \
    X(tui)          \
    X(schema)       \
    X(export)       \
    X(import)       \
    X(completion)   \
    X(man)          \
    X(complete)

#define DECLARE(name) extern const struct cli_command cmd_##name##_entry;
#define ENTRY(name) &cmd_##name##_entry,
COMMANDS(DECLARE)
static const struct cli_command *const commands[] = {COMMANDS(ENTRY)};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

const struct cli_command *const *cli_command_table(size_t *count)
{
    *count = COMMAND_COUNT;
    return commands;
}

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (!strcmp(commands[i]->name, name))
            return commands[i];
        for (const char *const *alias = commands[i]->aliases; *alias; alias++)
            if (!strcmp(*alias, name))
                return commands[i];
    }
    return NULL;
}

/* "tui, top": a command's name with its aliases. */
static void names_of(const struct cli_command *cmd, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "%s", cmd->name);
    for (const char *const *alias = cmd->aliases; *alias && used < cap; alias++)
        used += (size_t)snprintf(buf + used, cap - used, ", %s", *alias);
}

static void print_help(FILE *out)
{
    fprintf(out, "usage: devnode [-c PATH] COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (commands[i]->flags & CLI_HIDDEN)
            continue;
        char names[64];
        names_of(commands[i], names, sizeof names);
        fprintf(out, "  %-10s %s\n", names, commands[i]->summary);
    }
    fprintf(out, "\nEvery command takes -c/--config PATH and -h/--help; global options may also come\n"
                 "before COMMAND. Run `devnode help COMMAND` for a command's options.\n"
                 "Exit codes: 0 success, 1 runtime failure, 2 usage or config error.\n");
}

/* What main does for every command before its run: colour and project, from the flags. */
static int run_command(const struct cli_command *cmd, struct cli_args *args)
{
    if ((cmd->flags & CLI_COLOR) && cli_color_mode(args->color_mode, &args->color) < 0) {
        cli_error("%s: --color takes auto, always or never, not '%s'", args->name, args->color_mode);
        cli_print_usage(stderr, cmd, args->name, 0);
        return CLI_USAGE;
    }
    if ((cmd->flags & CLI_NEEDS_PROJECT) && cli_open_project(args->config, &args->project) < 0)
        return CLI_USAGE;
    return cmd->run(args);
}

/* The global options that may come before the command's name: returns how many argv elements
 * the one at argv[i] takes (with its value), or 0 when it is not one. */
static int global_before_command(int argc, char **argv, int i)
{
    const char *a = argv[i];
    if (!strcmp(a, "-c") || !strcmp(a, "--config") || !strcmp(a, "--color"))
        return i + 1 < argc ? 2 : 0;
    if (!strncmp(a, "--config=", 9) || !strncmp(a, "--color=", 8) || !strcmp(a, "--json") ||
        (a[1] == 'c' && a[2]))
        return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int at = 1;
    while (at < argc && argv[at][0] == '-' && argv[at][1]) {
        const char *a = argv[at];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_help(stdout);
            return CLI_OK;
        }
        if (!strcmp(a, "--version")) {
            printf("devnode " CLI_VERSION "\n");
            return CLI_OK;
        }
        int n = global_before_command(argc, argv, at);
        if (!n) {
            cli_error("unknown option '%s' before the command (see `devnode help`)", a);
            return CLI_USAGE;
        }
        at += n;
    }
    if (at >= argc) {
        print_help(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[at];
    if (!strcmp(name, "help")) {
        if (at + 1 >= argc) {
            print_help(stdout);
            return CLI_OK;
        }
        const struct cli_command *cmd = find_command(argv[at + 1]);
        if (!cmd) {
            cli_error("unknown command '%s' (see `devnode help`)", argv[at + 1]);
            return CLI_USAGE;
        }
        cli_print_usage(stdout, cmd, argv[at + 1], 1);
        return CLI_OK;
    }
    if (!strcmp(name, "version")) {
        printf("devnode " CLI_VERSION "\n");
        return CLI_OK;
    }
    const struct cli_command *cmd = find_command(name);
    if (!cmd) {
        cli_error("unknown command '%s' (see `devnode help`)", name);
        return CLI_USAGE;
    }
    /* The command's argv: its name, the global options given before it, then the rest. */
    char **cargv = xcalloc((size_t)argc + 1, sizeof *cargv);
    int cargc = 0;
    cargv[cargc++] = argv[at];
    for (int i = 1; i < at; i++)
        cargv[cargc++] = argv[i];
    for (int i = at + 1; i < argc; i++)
        cargv[cargc++] = argv[i];
    struct cli_args args;
    char err[256];
    int rc, parsed = cli_args_parse(cmd, cargc, cargv, &args, err, sizeof err);
    if (parsed == CLI_ARGS_HELP) {
        cli_print_usage(stdout, cmd, name, 1);
        rc = CLI_OK;
    } else if (parsed < 0) {
        cli_error("%s: %s", name, err);
        cli_print_usage(stderr, cmd, name, 0);
        rc = CLI_USAGE;
    } else {
        rc = run_command(cmd, &args);
    }
    free(cargv);
    return rc;
}
