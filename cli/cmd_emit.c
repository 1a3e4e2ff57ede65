/* cmd_emit: `devnode emit TYPE [BODY] [--delay MS] [--trace-id ID]`: publishes one event
 * through the node's bus with source "cli", as a libdevnode client. Silent on success, like
 * `lymph emit`. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/devnode.h"
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
    char err[1024];
    struct devnode *dn = cli_devnode_open(&args->project, err, sizeof err);
    if (!dn) {
        json_decref(body);
        cli_error("emit %s: %s", type, err);
        return CLI_FAILURE;
    }
    /* A trace id is minted when none is given (NULL), so the event and whatever handles it can
     * be followed in the logs, as lymph's emit did. */
    devnode_set_trace_id(dn, trace_id);
    int64_t offset;
    int rc = devnode_emit_offset(dn, type, body, (unsigned)delay_ms, &offset);
    json_decref(body);
    if (rc < 0)
        cli_error("emit %s: %s", type, cli_devnode_error(dn));
    devnode_close(dn);
    if (rc == DEVNODE_E_INVALID)
        return CLI_USAGE;
    return rc < 0 ? CLI_FAILURE : CLI_OK;
}

const struct cli_command cmd_emit_entry = {
    .name = "emit",
    .usage = "[-c PATH] [--delay MS] [--trace-id ID] TYPE [BODY]",
    .summary = "publish an event through the node",
    .flags = CLI_NEEDS_PROJECT | CLI_NEEDS_NODE,
    .options = options,
    .run = cmd_emit,
};
