/* cmd_status: `devnode status`: a table of every instance of the running node, or the
 * node's status reply as JSON with --json (stable keys; see docs/protocol.md). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/humanfmt.h"
#include "common/msgjson.h"

static void format_last_exit(char *buf, size_t cap, json_t *last)
{
    if (!json_is_object(last)) {
        snprintf(buf, cap, "-");
        return;
    }
    json_t *sig = json_object_get(last, "signal");
    if (json_is_string(sig))
        snprintf(buf, cap, "signal %s", json_string_value(sig));
    else
        snprintf(buf, cap, "status %lld", (long long)json_integer_value(json_object_get(last, "code")));
}

static void format_port(char *buf, size_t cap, json_t *port)
{
    if (json_is_integer(port))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(port));
    else if (json_is_string(port))
        snprintf(buf, cap, "%s", json_string_value(port));
    else
        snprintf(buf, cap, "-");
}

static void print_table(json_t *status)
{
    json_t *node = json_object_get(status, "node");
    char up[32], rss[32];
    humanfmt_duration_ms(up, sizeof up, json_integer_value(json_object_get(node, "uptime_ms")));
    humanfmt_size_kib(rss, sizeof rss, json_integer_value(json_object_get(node, "rss_kib")));
    printf("node %lld  up %s  cpu %.1f%%  rss %s  %s%s\n",
           (long long)json_integer_value(json_object_get(node, "pid")), up,
           json_number_value(json_object_get(node, "cpu_percent")), rss,
           json_string_value(json_object_get(node, "config")),
           json_is_true(json_object_get(node, "stopping")) ? "  (stopping)" : "");
    size_t k;
    json_t *sock;
    json_array_foreach(json_object_get(node, "sockets"), k, sock) {
        printf("socket %s on %s\n", json_string_value(json_object_get(sock, "name")),
               json_string_value(json_object_get(sock, "address")));
        json_t *warning = json_object_get(sock, "warning");
        if (json_is_string(warning))
            printf("  warning: %s\n", json_string_value(warning));
    }
    printf("%-20s %-9s %7s %6s %8s %8s %6s %8s  %s\n", "INSTANCE", "STATE", "PID", "PORT", "RESTARTS", "UPTIME",
           "CPU%", "RSS", "LAST EXIT");
    size_t i;
    json_t *svc;
    json_array_foreach(json_object_get(status, "services"), i, svc) {
        const char *name = json_string_value(json_object_get(svc, "name"));
        json_t *instances = json_object_get(svc, "instances");
        if (json_array_size(instances) == 0) {
            printf("%-20s %-9s (scaled to 0)\n", name, "-");
            continue;
        }
        size_t j;
        json_t *inst;
        json_array_foreach(instances, j, inst) {
            char label[128], uptime[32], pid[16], last[64], port[32];
            snprintf(label, sizeof label, "%s.%lld", name,
                     (long long)json_integer_value(json_object_get(inst, "index")));
            long long p = json_integer_value(json_object_get(inst, "pid"));
            if (p)
                snprintf(pid, sizeof pid, "%lld", p);
            else
                snprintf(pid, sizeof pid, "-");
            if (p)
                humanfmt_duration_ms(uptime, sizeof uptime, json_integer_value(json_object_get(inst, "uptime_ms")));
            else
                snprintf(uptime, sizeof uptime, "-");
            humanfmt_size_kib(rss, sizeof rss, json_integer_value(json_object_get(inst, "rss_kib")));
            format_last_exit(last, sizeof last, json_object_get(inst, "last_exit"));
            format_port(port, sizeof port, json_object_get(inst, "port"));
            printf("%-20s %-9s %7s %6s %8lld %8s %6.1f %8s  %s\n", label,
                   json_string_value(json_object_get(inst, "state")), pid, port,
                   (long long)json_integer_value(json_object_get(inst, "restarts")), uptime,
                   json_number_value(json_object_get(inst, "cpu_percent")), rss, last);
            json_t *failure = json_object_get(inst, "failure");
            if (json_is_string(failure))
                printf("%-20s   %s\n", "", json_string_value(failure));
        }
    }
}

static int cmd_status(struct cli_args *args)
{
    if (args->argc) {
        cli_error("status: unexpected argument '%s'", args->argv[0]);
        return CLI_USAGE;
    }
    const struct cli_project *project = &args->project;
    int as_json = args->json;
    struct wire_body body;
    wire_body_init(&body);
    msgpack_pack_map(&body.pk, 1);
    wire_pack_kv_int(&body.pk, "id", 1);
    struct wire_msg reply;
    if (cli_call(project, "status", &body, &reply, NULL) < 0)
        return CLI_FAILURE;
    json_t *status = msgjson_to_json(reply.body);
    wire_msg_free(&reply);
    if (!status) {
        cli_error("the node's status reply could not be decoded");
        return CLI_FAILURE;
    }
    json_object_del(status, "id");
    if (as_json) {
        char *text = json_dumps(status, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(text);
        free(text);
    } else {
        print_table(status);
    }
    json_decref(status);
    return CLI_OK;
}

const struct cli_command cmd_status_entry = {
    .name = "status",
    .usage = "[-c PATH] [--json]",
    .summary = "services and instances of the running node",
    .flags = CLI_NEEDS_PROJECT | CLI_NEEDS_NODE | CLI_JSON,
    .run = cmd_status,
};
