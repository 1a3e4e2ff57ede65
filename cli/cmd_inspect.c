/* cmd_inspect: `devnode inspect SERVICE|ADDRESS`: the RPC interface of a service from its
 * built-in `lymph.inspect`, printed as `lymph inspect` did. Colour only on a terminal. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/rpcclient.h"
#include "common/msgjson.h"
#include "common/xalloc.h"

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

static int print_interface(const char *target, const struct rpc_msg *reply, const struct colors *c)
{
    json_t *result = msgjson_to_json(reply->body);
    json_t *methods = json_object_get(result, "methods");
    if (!json_is_array(methods)) {
        json_decref(result);
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
    json_decref(result);
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
    char err[1024];
    struct rpcclient c;
    if (rpcclient_init(&c, 1, err, sizeof err) < 0) {
        cli_error("%s", err);
        return CLI_FAILURE;
    }
    int rc = CLI_FAILURE;
    if (strstr(target, "://")) {
        if (rpcclient_add_endpoint(&c, target, err, sizeof err) < 0) {
            cli_error("inspect: %s", err);
            goto out;
        }
    } else {
        struct cli_project project;
        if (cli_find_project(config_arg, &project, err, sizeof err) < 0) {
            cli_error("%s", err);
            rc = CLI_USAGE;
            goto out;
        }
        int found = rpcclient_resolve(&c, &project, target, err, sizeof err);
        if (found == RPCCLIENT_NOT_FOUND) {
            cli_error("The specified service name could not be found: %s", target);
            goto out;
        }
        if (found < 0) {
            cli_error("cannot look up %s: %s", target, err);
            goto out;
        }
    }
    struct rpcclient_result r;
    if (rpcclient_send(&c, 0, "lymph.inspect", NULL, "\x80", 1, INSPECT_TIMEOUT_MS, err, sizeof err) < 0 ||
        rpcclient_next(&c, &r, err, sizeof err) != 0) {
        cli_error("inspect %s: %s", target, err);
        goto out;
    }
    if (r.timed_out) {
        cli_error("inspect %s: the request timed out after %.1fs. Either the service is not available or busy.",
                  target, INSPECT_TIMEOUT_MS / 1000.0);
        goto out;
    }
    if (r.reply.type == RPC_REP) {
        rc = print_interface(target, &r.reply, &colors);
    } else {
        char type[128] = "Error", message[512] = "(no message)";
        if (r.reply.body->type == MSGPACK_OBJECT_MAP) {
            wire_get_str(r.reply.body, "type", type, sizeof type);
            wire_get_str(r.reply.body, "message", message, sizeof message);
        }
        cli_error("inspect %s: lymph.inspect got %s: %s: %s", target, rpc_type_name(r.reply.type), type, message);
    }
    rpc_msg_free(&r.reply);
out:
    rpcclient_close(&c);
    return rc;
}

const struct cli_command cmd_inspect_entry = {
    .name = "inspect",
    .usage = "[-c PATH] [--color=auto|always|never] SERVICE|ADDRESS",
    .summary = "the RPC methods of a service",
    .flags = CLI_COLOR,
    .run = cmd_inspect,
};
