/* cmd_schema: `devnode schema`: prints the JSON Schema of .lymph.yml, generated from the
 * config's key table, for editors (`devnode schema > .devnode-schema.json`, docs/config.md). */
#include <jansson.h>
#include <stdio.h>

#include "cli/cli.h"
#include "config/schema.h"

static int cmd_schema(struct cli_args *args)
{
    if (args->argc) {
        cli_error("schema: takes no arguments, got '%s' (usage: devnode schema)", args->argv[0]);
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

const struct cli_command cmd_schema_entry = {
    .name = "schema",
    .usage = "",
    .summary = "print the JSON Schema of .lymph.yml, for editors",
    .run = cmd_schema,
};
