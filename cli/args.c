/* args: the one option parser of the CLI. It reads a command's option table (cli.h) plus the
 * global options every command shares (-c/--config, -h/--help, and --json / --color where the
 * command's flags say so), GNU style: options and operands in any order, `--` ends options,
 * bundles (-fn5), --name=value, unique prefixes of long names. The parser prints nothing and
 * never exits: main reports its one-line error, with the usage cli_print_usage prints. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* The global options; ids below zero so they never meet a command's own. */
enum { ID_CONFIG = -1, ID_HELP = -2, ID_JSON = -3, ID_COLOR = -4 };

static const struct cli_option global_options[] = {
    {"config", 'c', 1, ID_CONFIG},
    {"help", 'h', 0, ID_HELP},
    {"json", 0, 0, ID_JSON},
    {"color", 0, 1, ID_COLOR},
};

static int global_allowed(const struct cli_command *cmd, const struct cli_option *o)
{
    return (o->id != ID_JSON || (cmd->flags & CLI_JSON)) && (o->id != ID_COLOR || (cmd->flags & CLI_COLOR));
}

static size_t option_count(const struct cli_command *cmd)
{
    size_t n = 0;
    while (cmd->options && (cmd->options[n].name || cmd->options[n].letter))
        n++;
    return n;
}

static const struct cli_option *find_letter(const struct cli_command *cmd, char letter)
{
    for (size_t i = 0; i < option_count(cmd); i++)
        if (cmd->options[i].letter == letter)
            return &cmd->options[i];
    for (size_t i = 0; i < sizeof global_options / sizeof global_options[0]; i++)
        if (global_options[i].letter == letter && global_allowed(cmd, &global_options[i]))
            return &global_options[i];
    return NULL;
}

/* An exact long name, else the one option a prefix names (--lines for --li). *ambiguous is set
 * when the prefix names two (--loss: --lossy or --lossless). */
static const struct cli_option *find_name(const struct cli_command *cmd, const char *name, size_t len,
                                          int *ambiguous)
{
    const struct cli_option *prefix = NULL;
    *ambiguous = 0;
    size_t own = option_count(cmd), total = own + sizeof global_options / sizeof global_options[0];
    for (size_t i = 0; i < total; i++) {
        const struct cli_option *o = i < own ? &cmd->options[i] : &global_options[i - own];
        if (!o->name || (i >= own && !global_allowed(cmd, o)) || strncmp(o->name, name, len) != 0)
            continue;
        if (strlen(o->name) == len)
            return o;
        if (prefix)
            *ambiguous = 1;
        prefix = prefix ? prefix : o;
    }
    return *ambiguous ? NULL : prefix;
}

/* The slot an option's value is kept in: its row in the command's table, after them the globals. */
static size_t slot_of(const struct cli_command *cmd, const struct cli_option *o)
{
    size_t own = option_count(cmd);
    if (o >= cmd->options && o < cmd->options + own)
        return (size_t)(o - cmd->options);
    return own + (size_t)(o - global_options);
}

static void take(struct cli_args *out, const struct cli_option *o, const char *value, unsigned *seq)
{
    size_t slot = slot_of(out->command, o);
    out->values[slot] = value ? value : o->name ? o->name : "";
    out->order[slot] = ++*seq;
    if (o->id == ID_CONFIG)
        out->config = value;
    else if (o->id == ID_JSON)
        out->json = 1;
    else if (o->id == ID_COLOR)
        out->color_mode = value;
}

/* "-5" is an operand (a count, an offset) unless the command has digit options. */
static int is_negative_number(const struct cli_command *cmd, const char *arg)
{
    if (arg[0] != '-' || arg[1] < '0' || arg[1] > '9')
        return 0;
    for (size_t i = 0; i < option_count(cmd); i++)
        if (cmd->options[i].letter >= '0' && cmd->options[i].letter <= '9')
            return 0;
    return 1;
}

int cli_args_parse(const struct cli_command *cmd, int argc, char **argv, struct cli_args *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->command = cmd;
    out->name = argv[0];
    if (option_count(cmd) + sizeof global_options / sizeof global_options[0] > CLI_MAX_OPTIONS) {
        snprintf(err, errlen, "has more options than CLI_MAX_OPTIONS");
        return -1;
    }
    unsigned seq = 0;
    int operands = 0, only_operands = 0;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        if (only_operands || arg[0] != '-' || arg[1] == '\0' || is_negative_number(cmd, arg)) {
            argv[1 + operands++] = arg; /* operands keep their order, packed behind argv[0] */
            continue;
        }
        if (!strcmp(arg, "--")) {
            only_operands = 1;
            continue;
        }
        if (arg[1] == '-') {
            const char *name = arg + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            int ambiguous;
            const struct cli_option *o = find_name(cmd, name, len, &ambiguous);
            if (!o) {
                snprintf(err, errlen, "%s option '--%.*s'", ambiguous ? "ambiguous" : "unknown", (int)len, name);
                return -1;
            }
            const char *value = NULL;
            if (o->has_value) {
                if (eq)
                    value = eq + 1;
                else if (i + 1 < argc)
                    value = argv[++i];
                else {
                    snprintf(err, errlen, "option '--%s' needs a value", o->name);
                    return -1;
                }
            } else if (eq) {
                snprintf(err, errlen, "option '--%s' takes no value", o->name);
                return -1;
            }
            if (o->id == ID_HELP)
                return CLI_ARGS_HELP; /* as getopt did: what follows is not looked at */
            take(out, o, value, &seq);
            continue;
        }
        for (const char *c = arg + 1; *c; c++) {
            const struct cli_option *o = find_letter(cmd, *c);
            if (!o) {
                snprintf(err, errlen, "unknown option '-%c'", *c);
                return -1;
            }
            if (!o->has_value) {
                if (o->id == ID_HELP)
                    return CLI_ARGS_HELP;
                take(out, o, NULL, &seq);
                continue;
            }
            const char *value = c[1] ? c + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!value) {
                snprintf(err, errlen, "option '-%c' needs a value", *c);
                return -1;
            }
            take(out, o, value, &seq);
            break;
        }
    }
    out->argc = operands;
    out->argv = argv + 1;
    argv[1 + operands] = NULL;
    return 0;
}

void cli_print_usage(FILE *out, const struct cli_command *cmd, const char *name, int full)
{
    fprintf(out, "usage: devnode %s%s%s\n", name, *cmd->usage ? " " : "", cmd->usage);
    if (!full)
        return;
    fprintf(out, "  %s\n", cmd->summary);
    if (cmd->aliases[0]) {
        fprintf(out, "  names: %s", cmd->name);
        for (const char *const *alias = cmd->aliases; *alias; alias++)
            fprintf(out, ", %s", *alias);
        fputc('\n', out);
    }
    if (cmd->flags & CLI_NEEDS_PROJECT)
        fprintf(out, "  reads the project of -c PATH, $LYMPH_CONFIG or the nearest .lymph.yml\n");
    if (cmd->flags & CLI_NEEDS_NODE)
        fprintf(out, "  needs the project's running node (`devnode up`)\n");
}

const char *cli_arg(const struct cli_args *a, int id)
{
    const char *value = NULL;
    unsigned latest = 0;
    const struct cli_command *cmd = a->command;
    for (size_t i = 0; i < option_count(cmd); i++) {
        if (cmd->options[i].id == id && a->order[i] > latest) {
            latest = a->order[i];
            value = a->values[i];
        }
    }
    return value;
}
