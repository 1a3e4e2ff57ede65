/* schema: the JSON Schema (draft-07) of .lymph.yml, generated from the key table, for
 * `devnode schema` and editors (yaml-language-server). It describes; the loader decides:
 * a file the schema accepts can still fail a check only the loader makes (a socket needs
 * port or path; a name must exist). */
#ifndef DEVNODE_SCHEMA_H
#define DEVNODE_SCHEMA_H

#include <jansson.h>

/* A new JSON object the caller frees with json_decref. */
json_t *config_schema_json(void);

#endif
