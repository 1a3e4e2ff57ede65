/* cmd_request: `devnode request Service.method '{json}'`: one RPC call printed as JSON, or
 * with -N/-C a small load test that prints throughput and latency percentiles, as
 * `lymph request` did. The service is found through the node unless --address is given. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/rpcclient.h"
#include "common/msgjson.h"

struct request_opts {
    const char *config, *address, *trace_id;
    const char *subject;
    const char *wire_subject; /* what the REQ carries: Service.method, or lymph.x for a built-in */
    double timeout_s;
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

/* Reads PARAMS (a JSON object, "-" for stdin, absent for {}) and packs it as msgpack. */
static int pack_params(const char *text, struct wire_body *out, char *err, size_t errlen)
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
        return -1;
    }
    int rc = 0;
    if (!json_is_object(params)) {
        snprintf(err, errlen, "PARAMS must be a JSON object of keyword arguments, e.g. '{\"name\": \"joe\"}'");
        rc = -1;
    } else if (msgjson_pack(&out->pk, params) < 0) {
        snprintf(err, errlen, "PARAMS holds a value msgpack cannot carry");
        rc = -1;
    }
    json_decref(params);
    return rc;
}

static const char *body_str(const struct rpc_msg *m, const char *key, char *buf, size_t cap, const char *dflt)
{
    if (m->body && m->body->type == MSGPACK_OBJECT_MAP && wire_get_str(m->body, key, buf, cap) == 0)
        return buf;
    return dflt;
}

/* Prints why a reply is not a result, once, the lymph way. Returns the exit code. */
static int report_failure(const struct request_opts *o, const struct rpcclient_result *r)
{
    char type[128], message[1024];
    if (r->timed_out) {
        cli_error("the request timed out after %.1fs. Either the service is not available or busy.", o->timeout_s);
        return CLI_FAILURE;
    }
    const struct rpc_msg *m = &r->reply;
    const char *t = body_str(m, "type", type, sizeof type, "Error");
    const char *msg = body_str(m, "message", message, sizeof message, "(no message)");
    if (m->type == RPC_ERROR)
        cli_error("%s failed: %s: %s", o->subject, t, msg);
    else if (m->type == RPC_NACK && (!strcmp(t, "UnknownMethod") || !strcmp(t, "Error")))
        cli_error("%s has no method '%s'", o->service, o->method);
    else if (m->type == RPC_NACK)
        cli_error("%s refused the request: %s: %s", o->subject, t, msg);
    else
        cli_error("%s got an unexpected %s reply", o->subject, rpc_type_name(m->type));
    return CLI_FAILURE;
}

static void print_header_value(const msgpack_object *v)
{
    if (v->type == MSGPACK_OBJECT_STR) {
        fwrite(v->via.str.ptr, 1, v->via.str.size, stdout);
        return;
    }
    json_t *j = msgjson_to_json(v);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    fputs(text ? text : "?", stdout);
    free(text);
    json_decref(j);
}

static int print_reply(const struct request_opts *o, const struct rpc_msg *m)
{
    if (o->dump_headers) {
        for (uint32_t i = 0; i < m->headers->via.map.size; i++) {
            const msgpack_object_kv *kv = &m->headers->via.map.ptr[i];
            print_header_value(&kv->key);
            fputs(": ", stdout);
            print_header_value(&kv->val);
            fputc('\n', stdout);
        }
        fputc('\n', stdout);
    }
    json_t *body = msgjson_to_json(m->body);
    if (!body) {
        cli_error("%s: the reply nests too deeply to print", o->subject);
        return CLI_FAILURE;
    }
    char *text = json_dumps(body, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    json_decref(body);
    puts(text ? text : "null");
    free(text);
    return CLI_OK;
}

static int call_once(struct rpcclient *c, const struct request_opts *o, const struct wire_body *params,
                     struct rpcclient_result *r)
{
    char err[512];
    if (rpcclient_send(c, 0, o->wire_subject, o->trace_id, params->sbuf.data, params->sbuf.size,
                       (int)(o->timeout_s * 1000), err, sizeof err) < 0 ||
        rpcclient_next(c, r, err, sizeof err) != 0) {
        cli_error("%s", err);
        return -1;
    }
    return 0;
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

/* -N/-C: keeps `concurrency` requests in flight over the instances' DEALERs in one poll
 * loop; replies of any type count as served, timeouts do not. */
static int run_benchmark(struct rpcclient *c, const struct request_opts *o, const struct wire_body *params)
{
    struct rpcclient_result r;
    /* One warm-up call, as lymph did: connections and lookups are not what is measured, and
     * a service that cannot answer at all is reported like a single request would be. */
    if (call_once(c, o, params, &r) < 0)
        return CLI_FAILURE;
    int warm_ok = !r.timed_out && r.reply.type == RPC_REP;
    int rc = warm_ok ? CLI_OK : report_failure(o, &r);
    if (!r.timed_out)
        rpc_msg_free(&r.reply);
    if (rc != CLI_OK)
        return rc;

    long long *lat = malloc((size_t)o->count * sizeof *lat);
    if (!lat) {
        cli_error("out of memory for %ld latencies", o->count);
        return CLI_FAILURE;
    }
    printf("sending %ld requests, concurrency %ld\n", o->count, o->concurrency);
    fflush(stdout);
    long sent = 0, done = 0, replies = 0, timeouts = 0, failed = 0;
    char err[512];
    int timeout_ms = (int)(o->timeout_s * 1000);
    long long start = rpcclient_now_ns();
    while (done < o->count) {
        while (sent < o->count && (long)c->in_flight < o->concurrency) {
            if (rpcclient_send(c, (int)sent, o->wire_subject, o->trace_id, params->sbuf.data, params->sbuf.size,
                               timeout_ms, err, sizeof err) < 0)
                goto fail;
            sent++;
        }
        if (rpcclient_next(c, &r, err, sizeof err) != 0)
            goto fail;
        done++;
        if (r.timed_out) {
            timeouts++;
            continue;
        }
        if (r.reply.type != RPC_REP)
            failed++;
        lat[replies++] = r.elapsed_ns;
        rpc_msg_free(&r.reply);
    }
    print_benchmark(o->count, rpcclient_now_ns() - start, lat, replies, timeouts, failed);
    free(lat);
    if (!replies) {
        cli_error("every one of the %ld requests timed out after %.1fs", o->count, o->timeout_s);
        return CLI_FAILURE;
    }
    return CLI_OK;
fail:
    free(lat);
    cli_error("%s", err);
    return CLI_FAILURE;
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

    char err[1024];
    struct wire_body params;
    wire_body_init(&params);
    if (pack_params(params_text, &params, err, sizeof err) < 0) {
        cli_error("request: %s", err);
        wire_body_free(&params);
        return CLI_USAGE;
    }
    struct rpcclient c;
    if (rpcclient_init(&c, (size_t)o.concurrency, err, sizeof err) < 0) {
        cli_error("%s", err);
        wire_body_free(&params);
        return CLI_FAILURE;
    }
    int rc = CLI_FAILURE;
    if (o.address) {
        /* Direct addressing bypasses the registry, so no project or node is needed. */
        if (rpcclient_add_endpoint(&c, o.address, err, sizeof err) < 0) {
            cli_error("%s", err);
            goto out;
        }
    } else {
        struct cli_project project;
        if (cli_find_project(o.config, &project, err, sizeof err) < 0) {
            cli_error("%s", err);
            rc = CLI_USAGE;
            goto out;
        }
        int found = rpcclient_resolve(&c, &project, o.service, err, sizeof err);
        if (found == RPCCLIENT_NOT_FOUND) {
            cli_error("The specified service name could not be found: %s", o.service);
            goto out;
        }
        if (found < 0) {
            cli_error("cannot look up %s: %s", o.service, err);
            goto out;
        }
    }
    if (o.count > 1) {
        rc = run_benchmark(&c, &o, &params);
        goto out;
    }
    struct rpcclient_result r;
    if (call_once(&c, &o, &params, &r) < 0)
        goto out;
    if (!r.timed_out && r.reply.type == RPC_REP)
        rc = print_reply(&o, &r.reply);
    else
        rc = report_failure(&o, &r);
    if (!r.timed_out)
        rpc_msg_free(&r.reply);
out:
    rpcclient_close(&c);
    wire_body_free(&params);
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
