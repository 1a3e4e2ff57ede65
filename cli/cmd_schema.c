/* cmd_schema: `devnode schema`: prints the JSON Schema of .lymph.yml, generated from the
 * config's key table, for editors (`devnode schema > .devnode-schema.json`, docs/config.md). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config/schema.h"

int cmd_schema(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: devnode schema\n  print the JSON Schema of .lymph.yml (for yaml-language-server)\n");
        return CLI_OK;
    }
    if (argc > 1) {
        cli_error("schema: takes no arguments, got '%s' (usage: devnode schema)", argv[1]);
        return CLI_USAGE;
    }
    json_t *schema = config_schema_json();
    int rc = json_dumpf(schema, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(schema);
    if (rc < 0 || printf("\n") < 0 || fflush(stdout) != 0) {
        cli_error("schema: cannot write the schema to stdout");
        return CLI_FAILURE;
    }
    return CLI_OK;
}
