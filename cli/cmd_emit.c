/* cmd_emit: `devnode emit TYPE [BODY] [--delay MS] [--trace-id ID]`: publishes one event
 * through the node's bus with source "cli". Silent on success, like `lymph emit`. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/msgjson.h"
#include "proto/rpcwire.h"

static int parse_delay(const char *text, long long *out)
{
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || v < 0 || v > 7LL * 24 * 3600 * 1000)
        return -1;
    *out = v;
    return 0;
}

static const struct cli_option options[] = {
    {"delay", 0, 1, 'd'},
    {"trace-id", 0, 1, 't'},
    {0},
};

static int cmd_emit(struct cli_args *args)
{
    const char *trace_id = cli_arg(args, 't'), *delay = cli_arg(args, 'd');
    long long delay_ms = 0;
    if (delay && parse_delay(delay, &delay_ms) < 0) {
        cli_error("emit: --delay takes milliseconds (0 to one week), not '%s'", delay);
        return CLI_USAGE;
    }
    if (args->argc < 1 || args->argc > 2) {
        cli_error("emit: expected TYPE [BODY] (e.g. greeted '{\"name\": \"joe\"}')");
        return CLI_USAGE;
    }
    const char *type = args->argv[0];
    if (!*type || strlen(type) > 255) {
        cli_error("emit: the event type must be 1 to 255 characters");
        return CLI_USAGE;
    }
    if (trace_id && (!*trace_id || strlen(trace_id) > RPC_TRACE_ID_MAX)) {
        cli_error("emit: --trace-id takes 1 to %d characters", RPC_TRACE_ID_MAX);
        return CLI_USAGE;
    }
    json_error_t jerr;
    json_t *body = args->argc == 2 ? json_loads(args->argv[1], JSON_DECODE_ANY, &jerr) : json_object();
    if (!body) {
        cli_error("emit: BODY is not valid JSON: %s (column %d)", jerr.text, jerr.column);
        return CLI_USAGE;
    }
    const struct cli_project project = args->project;
    char err[1024];
    /* A trace id is minted here when none is given, so the event and whatever handles it
     * can be followed in the logs, as lymph's emit did. */
    char minted[33];
    if (!trace_id) {
        rpc_new_trace_id(minted);
        trace_id = minted;
    }
    struct wire_body req;
    wire_body_init(&req);
    msgpack_packer *pk = &req.pk;
    struct proto_emit e = {.type = type, .trace_id = trace_id, .source = "cli", .delay_ms = delay_ms};
    proto_pack_emit_begin(pk, 1, &e);
    int packed = msgjson_pack(pk, body);
    json_decref(body);
    proto_pack_emit_end(pk, &e);
    if (packed < 0) {
        wire_body_free(&req);
        cli_error("emit: BODY holds a value msgpack cannot carry");
        return CLI_USAGE;
    }
    struct wire_msg reply;
    int rc = cli_request(&project, PROTO_EMIT, &req, CLI_ANSWER_TIMEOUT_MS, &reply, err, sizeof err);
    wire_body_free(&req);
    if (rc < 0) {
        cli_error("emit %s: %s", type, err);
        return CLI_FAILURE;
    }
    wire_msg_free(&reply);
    return CLI_OK;
}

const struct cli_command cmd_emit_entry = {
    .name = "emit",
    .usage = "[-c PATH] [--delay MS] [--trace-id ID] TYPE [BODY]",
    .summary = "publish an event through the node",
    .flags = CLI_NEEDS_PROJECT | CLI_NEEDS_NODE,
    .options = options,
    .run = cmd_emit,
};
