/* cmd_reload: `devnode reload`: the node reads .lymph.yml and the env files again and
 * applies what changed (docs/supervision.md, "Reload"). Prints one line per service it
 * changed; a config the node refused is printed as `check` prints it, and changes nothing. */
#include <stdio.h>

#include "cli/cli.h"

#define RELOAD_LINES_SHOWN 512

static int cmd_reload(struct cli_args *args)
{
    if (args->argc) {
        cli_error("reload: unexpected argument '%s'", args->argv[0]);
        return CLI_USAGE;
    }
    const struct cli_project project = args->project;
    struct wire_body body;
    wire_body_init(&body);
    proto_pack_request_id(&body.pk, 1);
    struct wire_msg reply;
    /* A ping first, so that no node (exit 1) is told apart from a refused config (exit 2). */
    if (cli_call(&project, PROTO_PING, &body, &reply, NULL) < 0)
        return CLI_FAILURE;
    wire_msg_free(&reply);
    wire_body_init(&body);
    proto_pack_request_id(&body.pk, 2);
    char err[2048];
    int rc = cli_request(&project, PROTO_RELOAD, &body, CLI_ANSWER_TIMEOUT_MS, &reply, err, sizeof err);
    wire_body_free(&body);
    if (rc < 0) {
        cli_error("%s", err); /* the line `check` gives, or what cannot change live */
        return CLI_USAGE;
    }
    static struct proto_status_str lines[RELOAD_LINES_SHOWN];
    size_t count = proto_unpack_reload_reply(reply.body, lines, RELOAD_LINES_SHOWN);
    for (size_t i = 0; i < count && i < RELOAD_LINES_SHOWN; i++)
        printf("%.*s\n", (int)lines[i].len, lines[i].ptr);
    if (count > RELOAD_LINES_SHOWN)
        printf("... and %zu more (the node's log has them all)\n", count - RELOAD_LINES_SHOWN);
    wire_msg_free(&reply);
    return CLI_OK;
}

const struct cli_command cmd_reload_entry = {
    .name = "reload",
    .usage = "[-c PATH]",
    .summary = "re-read .lymph.yml and the env files and apply what changed",
    .flags = CLI_NEEDS_PROJECT | CLI_NEEDS_NODE,
    .run = cmd_reload,
};
