/* cmd_emit: `devnode emit TYPE [BODY] [--delay MS] [--trace-id ID]`: publishes one event
 * through the node's bus with source "cli". Silent on success, like `lymph emit`. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/msgjson.h"
#include "common/rpcwire.h"

static int parse_delay(const char *text, long long *out)
{
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || v < 0 || v > 7LL * 24 * 3600 * 1000)
        return -1;
    *out = v;
    return 0;
}

int cmd_emit(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"delay", required_argument, NULL, 'd'},
        {"trace-id", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *config_arg = NULL, *trace_id = NULL;
    long long delay_ms = 0;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config_arg = optarg; break;
        case 't': trace_id = optarg; break;
        case 'd':
            if (parse_delay(optarg, &delay_ms) < 0) {
                cli_error("emit: --delay takes milliseconds (0 to one week), not '%s'", optarg);
                return CLI_USAGE;
            }
            break;
        case 'h':
            printf("usage: devnode emit %s\n", cli_find_command("emit")->usage);
            return CLI_OK;
        default:
            return CLI_USAGE;
        }
    }
    if (argc - optind < 1 || argc - optind > 2) {
        cli_error("emit: expected TYPE [BODY] (e.g. greeted '{\"name\": \"joe\"}')");
        return CLI_USAGE;
    }
    const char *type = argv[optind];
    if (!*type || strlen(type) > 255) {
        cli_error("emit: the event type must be 1 to 255 characters");
        return CLI_USAGE;
    }
    if (trace_id && (!*trace_id || strlen(trace_id) > RPC_TRACE_ID_MAX)) {
        cli_error("emit: --trace-id takes 1 to %d characters", RPC_TRACE_ID_MAX);
        return CLI_USAGE;
    }
    json_error_t jerr;
    json_t *body = optind + 1 < argc ? json_loads(argv[optind + 1], JSON_DECODE_ANY, &jerr) : json_object();
    if (!body) {
        cli_error("emit: BODY is not valid JSON: %s (column %d)", jerr.text, jerr.column);
        return CLI_USAGE;
    }
    struct cli_project project;
    char err[1024];
    if (cli_find_project(config_arg, &project, err, sizeof err) < 0) {
        json_decref(body);
        cli_error("%s", err);
        return CLI_USAGE;
    }
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
    msgpack_pack_map(pk, 6);
    wire_pack_kv_int(pk, "id", 1);
    wire_pack_kv_str(pk, "type", type);
    wire_pack_str(pk, "body");
    int packed = msgjson_pack(pk, body);
    json_decref(body);
    wire_pack_str(pk, "headers");
    msgpack_pack_map(pk, 1);
    wire_pack_kv_str(pk, "trace_id", trace_id);
    wire_pack_kv_str(pk, "source", "cli");
    wire_pack_kv_int(pk, "delay_ms", delay_ms);
    if (packed < 0) {
        wire_body_free(&req);
        cli_error("emit: BODY holds a value msgpack cannot carry");
        return CLI_USAGE;
    }
    struct wire_msg reply;
    int rc = cli_request(&project, "emit", &req, 5000, &reply, err, sizeof err);
    wire_body_free(&req);
    if (rc < 0) {
        cli_error("emit %s: %s", type, err);
        return CLI_FAILURE;
    }
    wire_msg_free(&reply);
    return CLI_OK;
}
