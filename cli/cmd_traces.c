/* cmd_traces: `devnode traces`: the most recent traces, newest first: where each request
 * went (services in order), how long it took, how many lines, whether anything failed. From
 * the running node's trace index, or from the log files when no node runs. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/msgjson.h"
#include "common/rundir.h"
#include "proto/tailwire.h"
#include "tail/offline.h"

#define DEFAULT_LIMIT 20
#define MAX_LIMIT 10000

static void format_clock(char *buf, size_t cap, long long ns)
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    localtime_r(&t, &tm);
    char hms[16];
    strftime(hms, sizeof hms, "%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03lld", hms, (ns % 1000000000) / 1000000);
}

/* In whole microseconds (the log file's precision), so node and files give the same figure. */
static long long span_us(json_t *row)
{
    return (long long)json_integer_value(json_object_get(row, "last_ns")) / 1000 -
           (long long)json_integer_value(json_object_get(row, "first_ns")) / 1000;
}

static void format_span(char *buf, size_t cap, long long us)
{
    if (us < 1000000LL)
        snprintf(buf, cap, "%lld.%03lld ms", us / 1000, us % 1000);
    else
        snprintf(buf, cap, "%.3f s", (double)us / 1e6);
}

static long long row_int(json_t *row, const char *key)
{
    return (long long)json_integer_value(json_object_get(row, key));
}

static void print_table(json_t *rows)
{
    size_t id_width = 8, i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        size_t n = strlen(json_string_value(json_object_get(row, "trace_id")) ?: "");
        if (n > id_width)
            id_width = n;
    }
    printf("%-*s  %-12s  %12s  %6s  %-5s  %s\n", (int)id_width, "TRACE_ID", "FIRST SEEN", "DURATION", "LINES",
           "ERROR", "SERVICES");
    json_array_foreach(rows, i, row) {
        char first[32], span[32];
        long long first_ns = row_int(row, "first_ns");
        format_clock(first, sizeof first, first_ns);
        format_span(span, sizeof span, span_us(row));
        printf("%-*s  %-12s  %12s  %6lld  %-5s  ", (int)id_width,
               json_string_value(json_object_get(row, "trace_id")) ?: "?", first, span, row_int(row, "lines"),
               json_is_true(json_object_get(row, "error")) ? "yes" : "-");
        size_t k;
        json_t *svc;
        json_array_foreach(json_object_get(row, "services"), k, svc)
            printf("%s%s", k ? " -> " : "", json_string_value(svc) ?: "?");
        putchar('\n');
    }
}

/* A decoded string as JSON the way msgjson shows any wire string (bytes that are not UTF-8
 * as hex), so a trace id reads the same whichever way the reply was decoded. */
static json_t *text_json(const char *s)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_STR, .via.str = {(uint32_t)strlen(s), s}};
    return msgjson_to_json(&o);
}

/* The node's trace rows, or NULL with err when there is no node to ask. *no_node tells why. */
static json_t *traces_from_node(const struct cli_project *project, int64_t limit, int *no_node, char *err,
                                size_t errlen)
{
    char endpoint[PATH_MAX + 16];
    pid_t pid;
    *no_node = rundir_find_node(project->dir, endpoint, sizeof endpoint, &pid, err, errlen) < 0;
    if (*no_node)
        return NULL;
    struct wire_body body;
    wire_body_init(&body);
    tailwire_pack_traces_request(&body.pk, 1, limit);
    struct wire_msg reply;
    int rc = cli_request(project, PROTO_TRACES, &body, CLI_ANSWER_TIMEOUT_MS, &reply, err, errlen);
    wire_body_free(&body);
    if (rc < 0)
        return NULL;
    struct tail_traces traces;
    rc = tailwire_unpack_traces(reply.body, &traces, err, errlen);
    wire_msg_free(&reply);
    if (rc < 0) {
        tailwire_traces_free(&traces);
        return NULL;
    }
    /* The rows offline_traces gives too, so both print through one path. */
    json_t *rows = json_array();
    for (size_t i = 0; i < traces.count; i++) {
        const struct tail_trace_summary *t = &traces.items[i];
        json_t *services = json_array();
        for (size_t s = 0; s < t->service_count; s++)
            json_array_append_new(services, text_json(t->services[s]));
        json_array_append_new(rows, json_pack("{s:o, s:I, s:I, s:I, s:b, s:o}", "trace_id", text_json(t->trace_id),
                                              "first_ns", (json_int_t)t->first_ns, "last_ns", (json_int_t)t->last_ns,
                                              "lines", (json_int_t)t->lines, "error", t->error,
                                              "services", services));
    }
    tailwire_traces_free(&traces);
    return rows;
}

static const struct cli_option options[] = {
    {NULL, 'n', 1, 'n'},
    {0},
};

static int cmd_traces(struct cli_args *args)
{
    int as_json = args->json;
    int64_t limit = DEFAULT_LIMIT;
    const char *count = cli_arg(args, 'n');
    if (count) {
        char *end;
        long long n = strtoll(count, &end, 10);
        if (*end || !*count || n < 1 || n > MAX_LIMIT) {
            cli_error("traces: -n takes a number from 1 to %d, not '%s'", MAX_LIMIT, count);
            return CLI_USAGE;
        }
        limit = n;
    }
    if (args->argc) {
        cli_error("traces: unexpected argument '%s'", args->argv[0]);
        return CLI_USAGE;
    }
    const struct cli_project project = args->project;
    char err[1024];
    int no_node;
    json_t *rows = traces_from_node(&project, limit, &no_node, err, sizeof err);
    if (!rows && no_node) {
        struct rundir rd;
        rundir_paths(&rd, project.dir);
        rows = offline_traces(rd.logs_dir, (size_t)limit, err, sizeof err);
        if (!rows) {
            cli_error("traces: no node running and %s", err);
            return CLI_FAILURE;
        }
    } else if (!rows) {
        cli_error("traces: %s", err);
        return CLI_FAILURE;
    }
    if (as_json) {
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
            json_object_set_new(row, "duration_ms",
                                json_real((double)span_us(row) / 1000.0));
        char *text = json_dumps(rows, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
        if (text)
            puts(text);
        free(text);
    } else {
        print_table(rows);
    }
    json_decref(rows);
    return CLI_OK;
}

const struct cli_command cmd_traces_entry = {
    .name = "traces",
    .usage = "[-c PATH] [-n N] [--json]",
    .summary = "recent traces: services touched, duration, errors",
    .flags = CLI_NEEDS_PROJECT | CLI_JSON,
    .options = options,
    .run = cmd_traces,
};
