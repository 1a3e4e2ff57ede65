/* cmd_scale: `devnode scale SERVICE COUNT`: changes a service's instance count live. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

int cmd_scale(int argc, char **argv)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'}, {0}};
    const char *config_arg = NULL;
    /* A negative count would reach getopt as an unknown option ("-1"); say what is wrong. */
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && isdigit((unsigned char)argv[i][1])) {
            cli_error("scale: COUNT must be a whole number from 0 to 10000, not '%s'", argv[i]);
            return CLI_USAGE;
        }
    }
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:", options, NULL)) != -1) {
        if (opt != 'c')
            return CLI_USAGE;
        config_arg = optarg;
    }
    if (argc - optind != 2) {
        cli_error("scale: usage: devnode scale SERVICE COUNT");
        return CLI_USAGE;
    }
    const char *service = argv[optind];
    char *end;
    long count = strtol(argv[optind + 1], &end, 10);
    if (*end || end == argv[optind + 1] || count < 0 || count > 10000) {
        cli_error("scale: COUNT must be a whole number from 0 to 10000, not '%s'", argv[optind + 1]);
        return CLI_USAGE;
    }
    struct cli_project project;
    if (cli_open_project(config_arg, &project) < 0)
        return CLI_USAGE;
    struct wire_body body;
    wire_body_init(&body);
    msgpack_pack_map(&body.pk, 3);
    wire_pack_kv_int(&body.pk, "id", 1);
    wire_pack_kv_str(&body.pk, "service", service);
    wire_pack_kv_int(&body.pk, "count", count);
    struct wire_msg reply;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "scale %s", service);
    if (cli_call(&project, "scale", &body, &reply, prefix) < 0)
        return CLI_FAILURE;
    wire_msg_free(&reply);
    printf("%s scaled to %ld\n", service, count);
    return CLI_OK;
}
