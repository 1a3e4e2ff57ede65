/* msgjson: the one bridge between msgpack (the wire) and JSON (what users type and read).
 * Depth-limited so a hostile message cannot exhaust the stack. */
#include "common/msgjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSGJSON_MAX_DEPTH 64

static json_t *msgjson_string(const char *ptr, size_t len)
{
    json_t *s = json_stringn(ptr, len);
    if (s)
        return s;
    /* Not UTF-8: show the bytes as hex rather than dropping the value. */
    static const char digits[] = "0123456789abcdef";
    size_t cap = len > 4096 ? 4096 : len;
    char *hex = malloc(cap * 2 + 5);
    if (!hex)
        return json_null();
    memcpy(hex, "hex:", 4);
    for (size_t i = 0; i < cap; i++) {
        hex[4 + 2 * i] = digits[(unsigned char)ptr[i] >> 4];
        hex[5 + 2 * i] = digits[(unsigned char)ptr[i] & 15];
    }
    hex[4 + 2 * cap] = '\0';
    s = json_string(hex);
    free(hex);
    return s;
}

static json_t *msgjson_convert(const msgpack_object *obj, int depth)
{
    if (depth > MSGJSON_MAX_DEPTH)
        return NULL;
    switch (obj->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(obj->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return json_integer((json_int_t)obj->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)obj->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(obj->via.f64);
    case MSGPACK_OBJECT_STR:
        return msgjson_string(obj->via.str.ptr, obj->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return msgjson_string(obj->via.bin.ptr, obj->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        return json_null();
    case MSGPACK_OBJECT_ARRAY: {
        json_t *arr = json_array();
        for (uint32_t i = 0; i < obj->via.array.size; i++) {
            json_t *v = msgjson_convert(&obj->via.array.ptr[i], depth + 1);
            if (!v) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, v);
        }
        return arr;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *map = json_object();
        for (uint32_t i = 0; i < obj->via.map.size; i++) {
            const msgpack_object *k = &obj->via.map.ptr[i].key;
            json_t *v = msgjson_convert(&obj->via.map.ptr[i].val, depth + 1);
            if (!v) {
                json_decref(map);
                return NULL;
            }
            char keybuf[64];
            if (k->type == MSGPACK_OBJECT_STR) {
                json_object_setn_new(map, k->via.str.ptr, k->via.str.size, v);
            } else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                snprintf(keybuf, sizeof keybuf, "%llu", (unsigned long long)k->via.u64);
                json_object_set_new(map, keybuf, v);
            } else if (k->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
                snprintf(keybuf, sizeof keybuf, "%lld", (long long)k->via.i64);
                json_object_set_new(map, keybuf, v);
            } else {
                json_decref(v);
            }
        }
        return map;
    }
    }
    return json_null();
}

json_t *msgjson_to_json(const msgpack_object *obj)
{
    return msgjson_convert(obj, 0);
}

int msgjson_pack(msgpack_packer *pk, const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(value));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(value));
    case JSON_STRING: {
        size_t n = json_string_length(value);
        msgpack_pack_str(pk, n);
        return msgpack_pack_str_body(pk, json_string_value(value), n);
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(value);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            if (msgjson_pack(pk, json_array_get(value, i)) < 0)
                return -1;
        return 0;
    }
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(value));
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)value, key, v) {
            size_t n = strlen(key);
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, key, n);
            if (msgjson_pack(pk, v) < 0)
                return -1;
        }
        return 0;
    }
    }
    return -1;
}
