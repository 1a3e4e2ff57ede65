/* cmd_request: `devnode request Service.method '{json}'`: one RPC call printed as JSON, or
 * with -N/-C a small load test that prints throughput and latency percentiles, as
 * `lymph request` did. The service is found through the node unless --address is given; the
 * calls are libdevnode's (a client named "cli"). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/devnode.h"
#include "proto/rpcwire.h"

struct request_opts {
    const char *config, *address, *trace_id;
    const char *subject;
    const char *wire_subject; /* what the REQ carries: Service.method, or lymph.x for a built-in */
    double timeout_s;
    int timeout_ms;
    long count, concurrency;
    int dump_headers;
    char service[RPC_SUBJECT_MAX + 1];
    const char *method;
};

static int parse_number(const char *text, double min, double max, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

/* Reads PARAMS (a JSON object, "-" for stdin, absent for {}). */
static json_t *read_params(const char *text, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *params;
    if (!text)
        params = json_object();
    else if (!strcmp(text, "-"))
        params = json_loadf(stdin, JSON_DECODE_ANY, &jerr);
    else
        params = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!params) {
        snprintf(err, errlen, "PARAMS is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                 jerr.column);
        return NULL;
    }
    if (!json_is_object(params)) {
        snprintf(err, errlen, "PARAMS must be a JSON object of keyword arguments, e.g. '{\"name\": \"joe\"}'");
        json_decref(params);
        return NULL;
    }
    return params;
}

/* Prints why a call gave no result, once, the lymph way. Returns the exit code. */
static int report_failure(const struct request_opts *o, int code, const struct devnode_error *e)
{
    switch (code) {
    case DEVNODE_E_TIMEOUT:
        cli_error("the request timed out after %.1fs. Either the service is not available or busy.", o->timeout_s);
        return CLI_FAILURE;
    case DEVNODE_E_REMOTE:
        cli_error("%s failed: %s: %s", o->subject, e->type, e->message);
        return CLI_FAILURE;
    case DEVNODE_E_NACK:
        if (!strcmp(e->type, "UnknownMethod") || !strcmp(e->type, "Nack"))
            cli_error("%s has no method '%s'", o->service, o->method);
        else
            cli_error("%s refused the request: %s: %s", o->subject, e->type, e->message);
        return CLI_FAILURE;
    case DEVNODE_E_NOT_FOUND:
        if (o->address || !strcmp(e->type, "WireMismatch")) /* the library's line says it all */
            cli_error("%s", e->message);
        else
            cli_error("The specified service name could not be found: %s", o->service);
        return CLI_FAILURE;
    case DEVNODE_E_NODE:
        cli_error("cannot look up %s: %s", o->service, e->message);
        return CLI_FAILURE;
    default:
        cli_error("request: %s", e->message);
        return CLI_USAGE;
    }
}

static void print_header_value(const json_t *v)
{
    if (json_is_string(v)) {
        fwrite(json_string_value(v), 1, json_string_length(v), stdout);
        return;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    fputs(text ? text : "?", stdout);
    free(text);
}

static int print_reply(const struct request_opts *o, const json_t *result, const json_t *headers)
{
    if (o->dump_headers) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)headers, key, v) {
            fputs(key, stdout);
            fputs(": ", stdout);
            print_header_value(v);
            fputc('\n', stdout);
        }
        fputc('\n', stdout);
    }
    char *text = json_dumps(result, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    puts(text ? text : "null");
    free(text);
    return CLI_OK;
}

/* One call, to --address or to an instance the node knows: the code, with *result (and
 * *headers with -D) on DEVNODE_OK. */
static int call_once(struct devnode *dn, const struct request_opts *o, const json_t *params, json_t **result,
                     json_t **headers, struct devnode_error *e)
{
    *result = *headers = NULL;
    struct devnode_call *call = devnode_call_async_to(dn, o->address, o->subject, params, o->timeout_ms,
                                                      o->dump_headers ? DEVNODE_CALL_HEADERS : 0, e);
    if (!call)
        return e->code;
    return devnode_call_wait_headers(dn, call, result, headers, e);
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static void print_benchmark(long n, long long total_ns, long long *lat_ns, long replies, long timeouts,
                            long failed)
{
    double total_s = total_ns / 1e9, mean = 0, var = 0;
    for (long i = 0; i < replies; i++)
        mean += lat_ns[i] / 1e6;
    mean = replies ? mean / replies : 0;
    for (long i = 0; i < replies; i++)
        var += (lat_ns[i] / 1e6 - mean) * (lat_ns[i] / 1e6 - mean);
    double stddev = replies ? sqrt(var / replies) : 0;
    qsort(lat_ns, (size_t)replies, sizeof *lat_ns, cmp_ll);
    printf("Requests per second:   %8.2f Hz  (#req=%ld)\n", total_s > 0 ? replies / total_s : 0.0, replies);
    printf("Mean time per request: %8.3f ms  (stddev=%.3f)\n", mean, stddev);
    printf("Timeout rate:          %8.2f %%   (#req=%ld)\n", 100.0 * timeouts / n, timeouts);
    printf("Error rate:            %8.2f %%   (#req=%ld)\n", 100.0 * failed / n, failed);
    printf("Total time:            %8.3f s\n\n", total_s);
    if (!replies)
        return;
    printf("Percentage of the requests served within a certain time (ms)\n");
    static const int pcts[] = {50, 66, 75, 80, 90, 95, 98, 99, 100};
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
        /* Nearest rank: the smallest latency that covers pcts[i] percent of the replies. */
        long rank = (long)ceil(pcts[i] / 100.0 * replies);
        long idx = rank < 1 ? 0 : rank - 1;
        printf(" %3d%%  %8.3f%s\n", pcts[i], lat_ns[idx] / 1e6, pcts[i] == 100 ? " (longest request)" : "");
    }
}

/* -N/-C: keeps `concurrency` deferred calls in flight; replies of any type count as served,
 * timeouts do not. */
struct in_flight {
    struct devnode_call *call; /* NULL: a free slot */
    long long sent_ns;
};

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int run_benchmark(struct devnode *dn, const struct request_opts *o, const json_t *params)
{
    /* One warm-up call, as lymph did: connections and lookups are not what is measured, and
     * a service that cannot answer at all is reported like a single request would be. */
    json_t *result, *headers;
    struct devnode_error e;
    int code = call_once(dn, o, params, &result, &headers, &e);
    json_decref(result);
    json_decref(headers);
    if (code != DEVNODE_OK)
        return report_failure(o, code, &e);

    long long *lat = malloc((size_t)o->count * sizeof *lat);
    struct in_flight *slots = calloc((size_t)o->concurrency, sizeof *slots);
    if (!lat || !slots) {
        free(lat);
        free(slots);
        cli_error("out of memory for %ld latencies", o->count);
        return CLI_FAILURE;
    }
    printf("sending %ld requests, concurrency %ld\n", o->count, o->concurrency);
    fflush(stdout);
    long sent = 0, done = 0, replies = 0, timeouts = 0, failed = 0, in_flight = 0;
    int rc = CLI_OK;
    long long start = now_ns();
    while (done < o->count) {
        for (long i = 0; i < o->concurrency && sent < o->count; i++) {
            if (slots[i].call)
                continue;
            slots[i].call = devnode_call_async_to(dn, o->address, o->subject, params, o->timeout_ms, 0, &e);
            if (!slots[i].call) {
                cli_error("%s", e.message);
                rc = CLI_FAILURE;
                goto out;
            }
            slots[i].sent_ns = now_ns();
            sent++;
            in_flight++;
        }
        if (!devnode_call_poll(dn, o->timeout_ms))
            continue;
        for (long i = 0; i < o->concurrency; i++) {
            if (!slots[i].call || !devnode_call_ready(dn, slots[i].call))
                continue;
            code = devnode_call_wait(dn, slots[i].call, NULL, &e);
            slots[i].call = NULL;
            in_flight--;
            done++;
            if (code == DEVNODE_E_TIMEOUT) {
                timeouts++;
                continue;
            }
            if (code != DEVNODE_OK)
                failed++;
            lat[replies++] = now_ns() - slots[i].sent_ns;
        }
    }
    print_benchmark(o->count, now_ns() - start, lat, replies, timeouts, failed);
    if (!replies) {
        cli_error("every one of the %ld requests timed out after %.1fs", o->count, o->timeout_s);
        rc = CLI_FAILURE;
    }
out:
    for (long i = 0; i < o->concurrency; i++)
        if (slots[i].call)
            devnode_call_cancel(dn, slots[i].call);
    free(slots);
    free(lat);
    return rc;
}

static const struct cli_option options[] = {
    {"address", 0, 1, 'a'},
    {"trace-id", 0, 1, 't'},
    {"timeout", 0, 1, 'T'},
    {"dump-headers", 'D', 0, 'D'},
    {NULL, 'N', 1, 'N'},
    {NULL, 'C', 1, 'C'},
    {0},
};

static int parse_args(const struct cli_args *args, struct request_opts *o, const char **params_text)
{
    o->config = args->config;
    o->address = cli_arg(args, 'a');
    o->trace_id = cli_arg(args, 't');
    o->dump_headers = cli_arg(args, 'D') != NULL;
    const char *timeout = cli_arg(args, 'T');
    if (timeout && parse_number(timeout, 0.001, 86400, &o->timeout_s) < 0) {
        cli_error("request: --timeout takes seconds (e.g. 0.5), not '%s'", timeout);
        return -1;
    }
    for (const char *letter = "NC"; *letter; letter++) {
        const char *text = cli_arg(args, *letter);
        double v;
        if (!text)
            continue;
        if (parse_number(text, 1, 10000000, &v) < 0 || v != floor(v)) {
            cli_error("request: -%c takes a positive integer, not '%s'", *letter, text);
            return -1;
        }
        *(*letter == 'N' ? &o->count : &o->concurrency) = (long)v;
    }
    if (args->argc < 1 || args->argc > 2) {
        cli_error("request: expected SUBJECT [PARAMS] (e.g. Greeting.greet '{\"name\": \"joe\"}')");
        return -1;
    }
    o->subject = args->argv[0];
    *params_text = args->argc == 2 ? args->argv[1] : NULL;
    /* The same split as libdevnode's: Greeting.greet and Greeting.lymph.status (a built-in,
     * sent as lymph.status) both go to Greeting. */
    size_t service_len;
    o->wire_subject = rpc_call_subject(o->subject, &service_len);
    if (!o->wire_subject) {
        cli_error("request: the subject must be Service.method, not '%s'", o->subject);
        return -1;
    }
    memcpy(o->service, o->subject, service_len);
    o->service[service_len] = '\0';
    o->method = o->subject + service_len + 1;
    if (o->trace_id && (strlen(o->trace_id) > RPC_TRACE_ID_MAX || !*o->trace_id)) {
        cli_error("request: --trace-id takes 1 to %d characters", RPC_TRACE_ID_MAX);
        return -1;
    }
    if (o->concurrency > o->count)
        o->concurrency = o->count;
    return 0;
}

/* No CLI_NEEDS_PROJECT: with --address it needs neither a project nor a node. */
static int cmd_request(struct cli_args *args)
{
    struct request_opts o = {.timeout_s = 5.0, .count = 1, .concurrency = 1};
    const char *params_text = NULL;
    if (parse_args(args, &o, &params_text) < 0)
        return CLI_USAGE;
    o.timeout_ms = (int)(o.timeout_s * 1000);
    if (o.timeout_ms < 1)
        o.timeout_ms = 1;

    char err[1024];
    json_t *params = read_params(params_text, err, sizeof err);
    if (!params) {
        cli_error("request: %s", err);
        return CLI_USAGE;
    }
    /* Direct addressing bypasses the registry, so no project or node is needed. */
    struct cli_project project;
    if (!o.address && cli_find_project(o.config, &project, err, sizeof err) < 0) {
        cli_error("%s", err);
        json_decref(params);
        return CLI_USAGE;
    }
    struct devnode *dn = cli_devnode_open(o.address ? NULL : &project, err, sizeof err);
    if (!dn) {
        if (o.address)
            cli_error("%s", err);
        else
            cli_error("cannot look up %s: %s", o.service, err);
        json_decref(params);
        return CLI_FAILURE;
    }
    if (o.trace_id)
        devnode_set_trace_id(dn, o.trace_id);
    int rc;
    if (o.count > 1) {
        rc = run_benchmark(dn, &o, params);
    } else {
        json_t *result, *headers;
        struct devnode_error e;
        int code = call_once(dn, &o, params, &result, &headers, &e);
        rc = code == DEVNODE_OK ? print_reply(&o, result, headers) : report_failure(&o, code, &e);
        json_decref(result);
        json_decref(headers);
    }
    devnode_close(dn);
    json_decref(params);
    return rc;
}

const struct cli_command cmd_request_entry = {
    .name = "request",
    .usage = "[-c PATH] [--address ENDPOINT] [--timeout SECONDS] [--trace-id ID] [-D] [-N COUNT -C CONCURRENCY] "
             "Service.method [PARAMS|-]",
    .summary = "send an RPC request and print the reply; or load-test a method",
    .options = options,
    .run = cmd_request,
};
