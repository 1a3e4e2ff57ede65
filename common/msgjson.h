/* msgjson: converts between msgpack objects and jansson values, for the CLI's --json output
 * and JSON arguments. Binary strings become JSON strings only when valid UTF-8. */
#ifndef DEVNODE_MSGJSON_H
#define DEVNODE_MSGJSON_H

#include <jansson.h>
#include <msgpack.h>

/* New reference, or NULL if the object nests deeper than 64 levels. */
json_t *msgjson_to_json(const msgpack_object *obj);
/* Packs a JSON value; 0, or -1 for a value msgpack cannot hold. */
int msgjson_pack(msgpack_packer *pk, const json_t *value);

#endif
