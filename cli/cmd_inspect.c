/* cmd_inspect: `devnode inspect SERVICE|ADDRESS`: the RPC interface of a service from its
 * built-in `lymph.inspect` (called through libdevnode), printed as `lymph inspect` did. Colour
 * only on a terminal. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/xalloc.h"
#include "lib/devnode.h"

#define INSPECT_TIMEOUT_MS 5000 /* lymph inspect's */
#define HELP_WIDTH 70

struct colors {
    const char *bold, *red, *yellow, *reset;
};

static void choose_colors(int on, struct colors *c)
{
    *c = on ? (struct colors){"\033[1m", "\033[31m", "\033[33m", "\033[0m"} : (struct colors){"", "", "", ""};
}

static int by_method_name(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));
    return strcmp(x ? x : "", y ? y : "");
}

/* lymph wrapped help at 70 columns (textwrap.wrap): words are kept whole, whitespace
 * runs collapse, and each line is indented under the method. */
static void print_help_text(const char *help)
{
    const char *p = help;
    size_t col = 0;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, " \t\n\r");
        if (col && col + 1 + n > HELP_WIDTH) {
            fputc('\n', stdout);
            col = 0;
        }
        fputs(col ? " " : "\t ", stdout);
        fwrite(p, 1, n, stdout);
        col += n + (col ? 1 : 0);
        p += n;
    }
    if (col)
        fputc('\n', stdout);
}

static int print_interface(const char *target, const json_t *result, const struct colors *c)
{
    json_t *methods = json_object_get(result, "methods");
    if (!json_is_array(methods)) {
        cli_error("inspect %s: the lymph.inspect reply has no 'methods' list", target);
        return CLI_FAILURE;
    }
    size_t count = json_array_size(methods);
    json_t **sorted = xcalloc(count, sizeof *sorted);
    for (size_t i = 0; i < count; i++)
        sorted[i] = json_array_get(methods, i);
    qsort(sorted, count, sizeof *sorted, by_method_name);
    printf("RPC interface of %s%s%s\n\n", c->bold, target, c->reset);
    for (size_t i = 0; i < count; i++) {
        const char *name = json_string_value(json_object_get(sorted[i], "name"));
        printf("rpc %s%s%s(%s", c->red, name ? name : "?", c->reset, c->yellow);
        size_t k;
        json_t *param;
        json_array_foreach(json_object_get(sorted[i], "params"), k, param)
            printf("%s%s", k ? ", " : "", json_is_string(param) ? json_string_value(param) : "?");
        printf("%s)\n", c->reset);
        const char *help = json_string_value(json_object_get(sorted[i], "help"));
        if (help)
            print_help_text(help);
        printf("\n");
    }
    free(sorted);
    return CLI_OK;
}

/* No CLI_NEEDS_PROJECT: an ADDRESS needs neither a project nor a node. */
static int cmd_inspect(struct cli_args *args)
{
    const char *config_arg = args->config;
    struct colors colors;
    choose_colors(args->color, &colors);
    if (args->argc != 1) {
        cli_error("inspect: expected one SERVICE or ADDRESS (ipc://... or tcp://...)");
        return CLI_USAGE;
    }
    const char *target = args->argv[0];
    const char *address = strstr(target, "://") ? target : NULL;
    char err[1024], subject[300];
    /* lymph.inspect is every service's built-in; at an address the service part is not needed. */
    if (address)
        snprintf(subject, sizeof subject, "lymph.inspect");
    else if (snprintf(subject, sizeof subject, "%s.lymph.inspect", target) >= (int)sizeof subject) {
        cli_error("inspect: '%.60s...' is too long for a service name", target);
        return CLI_USAGE;
    }
    struct cli_project project;
    if (!address && cli_find_project(config_arg, &project, err, sizeof err) < 0) {
        cli_error("%s", err);
        return CLI_USAGE;
    }
    struct devnode *dn = cli_devnode_open(address ? NULL : &project, err, sizeof err);
    if (!dn) {
        if (address)
            cli_error("inspect: %s", err);
        else
            cli_error("cannot look up %s: %s", target, err);
        return CLI_FAILURE;
    }
    struct devnode_error e;
    json_t *result = NULL;
    struct devnode_call *call = devnode_call_async_to(dn, address, subject, NULL, INSPECT_TIMEOUT_MS, 0, &e);
    int code = call ? devnode_call_wait(dn, call, &result, &e) : e.code;
    int rc = CLI_FAILURE;
    switch (code) {
    case DEVNODE_OK:
        rc = print_interface(target, result, &colors);
        break;
    case DEVNODE_E_TIMEOUT:
        cli_error("inspect %s: the request timed out after %.1fs. Either the service is not available or busy.",
                  target, INSPECT_TIMEOUT_MS / 1000.0);
        break;
    case DEVNODE_E_REMOTE:
    case DEVNODE_E_NACK:
        cli_error("inspect %s: lymph.inspect got %s: %s: %s", target, code == DEVNODE_E_NACK ? "NACK" : "ERROR",
                  e.type, e.message);
        break;
    case DEVNODE_E_NOT_FOUND:
        if (address)
            cli_error("inspect %s: %s", target, e.message);
        else
            cli_error("The specified service name could not be found: %s", target);
        break;
    case DEVNODE_E_NODE:
        cli_error("cannot look up %s: %s", target, e.message);
        break;
    default:
        cli_error("inspect %s: %s", target, e.message);
        rc = CLI_USAGE;
    }
    json_decref(result);
    devnode_close(dn);
    return rc;
}

const struct cli_command cmd_inspect_entry = {
    .name = "inspect",
    .usage = "[-c PATH] [--color=auto|always|never] SERVICE|ADDRESS",
    .summary = "the RPC methods of a service",
    .flags = CLI_COLOR,
    .run = cmd_inspect,
};
