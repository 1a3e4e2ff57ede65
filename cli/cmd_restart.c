/* cmd_restart: `devnode restart SERVICE[.N]...`: asks the node to restart instances. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"

int cmd_restart(int argc, char **argv)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'}, {0}};
    const char *config_arg = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:", options, NULL)) != -1) {
        if (opt != 'c')
            return CLI_USAGE;
        config_arg = optarg;
    }
    if (optind >= argc) {
        cli_error("restart: name a service or an instance (Greeting, Greeting.1)");
        return CLI_USAGE;
    }
    struct cli_project project;
    char err[1024];
    if (cli_open_project(config_arg, &project) < 0)
        return CLI_USAGE;
    int status = CLI_OK;
    for (int i = optind; i < argc; i++) {
        struct wire_body body;
        wire_body_init(&body);
        msgpack_pack_map(&body.pk, 2);
        wire_pack_kv_int(&body.pk, "id", i);
        wire_pack_kv_str(&body.pk, "target", argv[i]);
        struct wire_msg reply;
        int rc = cli_request(&project, "restart", &body, 5000, &reply, err, sizeof err);
        wire_body_free(&body);
        if (rc < 0) {
            cli_error("restart %s: %s", argv[i], err);
            status = CLI_FAILURE;
            continue;
        }
        int64_t n = 0;
        wire_get_int(reply.body, "instances", &n);
        printf("restarting %s (%lld instance%s)\n", argv[i], (long long)n, n == 1 ? "" : "s");
        wire_msg_free(&reply);
    }
    return status;
}
