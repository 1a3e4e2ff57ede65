/* cmd_status: `devnode status`: a table of every instance of the running node, or the
 * node's status reply as JSON with --json (stable keys; see docs/protocol.md). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/humanfmt.h"
#include "common/msgjson.h"

static void format_last_exit(char *buf, size_t cap, const struct proto_status_instance_view *inst)
{
    if (!inst->has_exit)
        snprintf(buf, cap, "-");
    else if (inst->exit_signal.ptr)
        snprintf(buf, cap, "signal %.*s", (int)inst->exit_signal.len, inst->exit_signal.ptr);
    else
        snprintf(buf, cap, "status %lld", (long long)inst->exit_code);
}

static void format_port(char *buf, size_t cap, const struct proto_status_instance_view *inst)
{
    if (inst->port_is_int)
        snprintf(buf, cap, "%lld", (long long)inst->port_int);
    else if (inst->port.ptr)
        snprintf(buf, cap, "%.*s", (int)inst->port.len, inst->port.ptr);
    else
        snprintf(buf, cap, "-");
}

/* A decoded string for printf's "%.*s": (null) when absent, as the table always showed it. */
#define STR_ARG(s) (s).ptr ? (int)(s).len : 6, (s).ptr ? (s).ptr : "(null)"

/* A failed instance and its reason in red (with --color, or auto on a terminal). */
#define FAILED_ON "\033[31m"
#define FAILED_OFF "\033[0m"

/* "  watch templates/, conf/: 12 folders, 3 restarts, last conf/app.yml 4s ago" */
static void print_watch(const struct proto_status_watch_view *w)
{
    printf("  watch ");
    for (size_t k = 0; k < w->path_count; k++)
        printf("%s%.*s", k ? ", " : "", STR_ARG(w->paths[k]));
    printf(": %lld folder%s, %lld restart%s", (long long)w->folders, w->folders == 1 ? "" : "s",
           (long long)w->restarts, w->restarts == 1 ? "" : "s");
    if (w->last_path.ptr) {
        char ago[32];
        humanfmt_duration_ms(ago, sizeof ago, w->last_change_ago_ms);
        printf(", last %.*s %s ago", STR_ARG(w->last_path), ago);
    }
    if (w->state.ptr && !(w->state.len == 4 && memcmp(w->state.ptr, "idle", 4) == 0))
        printf(", %.*s%s", STR_ARG(w->state), w->pending ? " (one more restart follows)" : "");
    if (w->limit_reached)
        printf(", inotify watch limit reached");
    printf("\n");
}

/* The line under an instance with `live:`: "liveness ok: GET http://127.0.0.1:5001/healthz". */
static void print_health(const struct proto_status_instance_view *inst)
{
    char result[16];
    proto_status_str_copy(inst->health_result, result, sizeof result);
    printf("%-20s   liveness %s", "", result);
    if (inst->health_failures)
        printf(" (%lld of %lld)", (long long)inst->health_failures, (long long)inst->health_failures_max);
    if (inst->health_probe.ptr && inst->health_probe.len)
        printf(": %.*s", STR_ARG(inst->health_probe));
    if (inst->health_error.ptr && strcmp(result, "ok") != 0)
        printf(" %.*s", STR_ARG(inst->health_error));
    if (inst->health_not_counted)
        printf(" [%lld not counted: output held back]", (long long)inst->health_not_counted);
    printf("\n");
}

static void print_table(const struct proto_status *st, int color)
{
    char up[32], rss[32];
    humanfmt_duration_ms(up, sizeof up, st->uptime_ms);
    humanfmt_size_kib(rss, sizeof rss, st->rss_kib);
    printf("node %lld  up %s  cpu %.1f%%  rss %s  %.*s%s\n", (long long)st->pid, up, st->cpu_percent, rss,
           STR_ARG(st->config), st->stopping ? "  (stopping)" : "");
    for (size_t k = 0; k < st->socket_count; k++) {
        const struct proto_status_socket_view *sock = &st->sockets[k];
        printf("socket %.*s on %.*s\n", STR_ARG(sock->name), STR_ARG(sock->address));
        if (sock->warning.ptr)
            printf("  warning: %.*s\n", STR_ARG(sock->warning));
    }
    printf("%-20s %-9s %7s %6s %8s %8s %6s %8s  %s\n", "INSTANCE", "STATE", "PID", "PORT", "RESTARTS", "UPTIME",
           "CPU%", "RSS", "LAST EXIT");
    for (size_t i = 0; i < st->service_count; i++) {
        const struct proto_status_service_view *svc = &st->services[i];
        char name[256];
        proto_status_str_copy(svc->name, name, sizeof name);
        if (svc->instance_count == 0) {
            printf("%-20s %-9s (scaled to 0)\n", name, "-");
            continue;
        }
        for (size_t j = 0; j < svc->instance_count; j++) {
            const struct proto_status_instance_view *inst = &svc->instances[j];
            char label[300], uptime[32], pid[24], last[64], port[32], state[32];
            snprintf(label, sizeof label, "%s.%lld", name, (long long)inst->index);
            if (inst->pid)
                snprintf(pid, sizeof pid, "%lld", (long long)inst->pid);
            else
                snprintf(pid, sizeof pid, "-");
            if (inst->pid)
                humanfmt_duration_ms(uptime, sizeof uptime, inst->uptime_ms);
            else
                snprintf(uptime, sizeof uptime, "-");
            humanfmt_size_kib(rss, sizeof rss, inst->rss_kib);
            format_last_exit(last, sizeof last, inst);
            format_port(port, sizeof port, inst);
            proto_status_str_copy(inst->state, state, sizeof state);
            int red = color && !strcmp(state, "failed");
            printf("%-20s %s%-9s%s %7s %6s %8lld %8s %6.1f %8s  %s\n", label, red ? FAILED_ON : "", state,
                   red ? FAILED_OFF : "", pid, port, (long long)inst->restarts, uptime, inst->cpu_percent, rss, last);
            if (inst->failure.ptr)
                printf("%-20s   %s%.*s%s\n", "", red ? FAILED_ON : "", STR_ARG(inst->failure), red ? FAILED_OFF : "");
            else if (inst->waiting.ptr)
                printf("%-20s   %.*s\n", "", STR_ARG(inst->waiting));
            if (inst->has_health)
                print_health(inst);
        }
        if (svc->watch.present)
            print_watch(&svc->watch);
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
    struct wire_msg reply;
    struct proto_status st;
    int got = cli_call_status(project, NULL, &reply, &st);
    if (got < 0)
        return CLI_FAILURE;
    if (got > 0) {
        proto_status_free(&st);
        wire_msg_free(&reply);
        cli_error("the node's status reply could not be decoded");
        return CLI_FAILURE;
    }
    int rc = CLI_OK;
    if (as_json) {
        /* The reply as the node sent it, key order kept (protocol.md): a copy, not a reading. */
        json_t *status = msgjson_to_json(reply.body);
        if (status) {
            json_object_del(status, "id");
            char *text = json_dumps(status, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            puts(text);
            free(text);
            json_decref(status);
        } else {
            cli_error("the node's status reply could not be decoded");
            rc = CLI_FAILURE;
        }
    } else {
        print_table(&st, args->color);
    }
    proto_status_free(&st);
    wire_msg_free(&reply);
    return rc;
}

const struct cli_command cmd_status_entry = {
    .name = "status",
    .usage = "[-c PATH] [--json] [--color=auto|always|never]",
    .summary = "services and instances of the running node",
    .flags = CLI_NEEDS_PROJECT | CLI_NEEDS_NODE | CLI_JSON | CLI_COLOR,
    .run = cmd_status,
};
