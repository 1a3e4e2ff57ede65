/* wire: framing and msgpack helpers for every peer of the node protocol.
 * Never trusts a frame: sizes, counts and types are checked before anything is decoded. */
#include "proto/wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void wire_drain(void *sock)
{
    int more = 1;
    size_t more_size = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &more_size) == 0 && more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            return;
        }
        zmq_msg_close(&part);
    }
}

static int wire_has_more(void *sock)
{
    int more = 0;
    size_t more_size = sizeof more;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &more_size);
    return more;
}

/* Receives the next frame of a message that must continue; 0 or -1 (malformed). */
static int wire_next_frame(void *sock, zmq_msg_t *frame)
{
    if (!wire_has_more(sock))
        return -1;
    zmq_msg_init(frame);
    if (zmq_msg_recv(frame, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(frame);
        return -1;
    }
    return 0;
}

enum wire_recv_result wire_recv(void *sock, int routed, struct wire_msg *msg, char *err, size_t errlen)
{
    memset(msg, 0, sizeof *msg);
    zmq_msg_t first;
    zmq_msg_init(&first);
    if (zmq_msg_recv(&first, sock, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&first);
        if (e == EAGAIN || e == EINTR)
            return WIRE_AGAIN;
        snprintf(err, errlen, "receive failed: %s", zmq_strerror(e));
        return WIRE_ERROR;
    }

    zmq_msg_t version, type;
    const char *why = NULL;
    if (routed) {
        size_t n = zmq_msg_size(&first);
        if (n > WIRE_IDENTITY_MAX)
            n = WIRE_IDENTITY_MAX;
        memcpy(msg->identity, zmq_msg_data(&first), n);
        msg->identity_len = n;
        zmq_msg_close(&first);
        if (wire_next_frame(sock, &version) < 0) {
            snprintf(err, errlen, "message has only a routing frame");
            return WIRE_MALFORMED;
        }
    } else {
        version = first;
    }

    /* A version is 1-3 decimal digits without a leading zero; ours, or another one we can
     * name in an answer. Anything else is not this protocol at all. */
    size_t version_len = zmq_msg_size(&version);
    const char *v = zmq_msg_data(&version);
    if (version_len == 0 || version_len > WIRE_VERSION_MAX || v[0] == '0')
        why = "unsupported protocol version frame";
    for (size_t i = 0; !why && i < version_len; i++)
        if (v[i] < '0' || v[i] > '9')
            why = "unsupported protocol version frame";
    if (!why) {
        memcpy(msg->version, v, version_len);
        msg->version[version_len] = '\0';
    }
    zmq_msg_close(&version);
    if (why) {
        wire_drain(sock);
        snprintf(err, errlen, "%s", why);
        return WIRE_MALFORMED;
    }

    if (wire_next_frame(sock, &type) < 0) {
        snprintf(err, errlen, "message has no type frame");
        return WIRE_MALFORMED;
    }
    size_t type_len = zmq_msg_size(&type);
    if (type_len == 0 || type_len > WIRE_TYPE_MAX) {
        why = "type frame is empty or too long";
    } else {
        const char *t = zmq_msg_data(&type);
        for (size_t i = 0; i < type_len; i++)
            if (t[i] < 0x21 || t[i] > 0x7e)
                why = "type frame is not an ASCII word";
        memcpy(msg->type, t, type_len);
        msg->type[type_len] = '\0';
    }
    zmq_msg_close(&type);
    if (why) {
        wire_drain(sock);
        snprintf(err, errlen, "%s", why);
        return WIRE_MALFORMED;
    }

    if (wire_next_frame(sock, &msg->body_frame) < 0) {
        snprintf(err, errlen, "message '%s' has no body frame", msg->type);
        return WIRE_MALFORMED;
    }
    if (wire_has_more(sock)) {
        wire_drain(sock);
        zmq_msg_close(&msg->body_frame);
        snprintf(err, errlen, "message '%s' has extra frames", msg->type);
        return WIRE_MALFORMED;
    }
    size_t body_len = zmq_msg_size(&msg->body_frame);
    if (body_len > WIRE_BODY_MAX) {
        zmq_msg_close(&msg->body_frame);
        snprintf(err, errlen, "message '%s' body of %zu bytes is over the limit", msg->type, body_len);
        return WIRE_MALFORMED;
    }

    if (wire_msgpack_check(zmq_msg_data(&msg->body_frame), body_len) < 0) {
        zmq_msg_close(&msg->body_frame);
        snprintf(err, errlen, "message '%s' body is not one msgpack map", msg->type);
        return WIRE_MALFORMED;
    }
    msgpack_unpacked_init(&msg->unpacked);
    size_t off = 0;
    msgpack_unpack_return rc =
        msgpack_unpack_next(&msg->unpacked, zmq_msg_data(&msg->body_frame), body_len, &off);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != body_len ||
        msg->unpacked.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&msg->unpacked);
        zmq_msg_close(&msg->body_frame);
        snprintf(err, errlen, "message '%s' body is not one msgpack map", msg->type);
        return WIRE_MALFORMED;
    }
    msg->body = &msg->unpacked.data;
    if (strcmp(msg->version, WIRE_VERSION) != 0) {
        snprintf(err, errlen, "message '%s' of protocol version %s", msg->type, msg->version);
        return WIRE_OTHER_VERSION;
    }
    return WIRE_OK;
}

void wire_msg_free(struct wire_msg *msg)
{
    if (!msg->body)
        return;
    msgpack_unpacked_destroy(&msg->unpacked);
    zmq_msg_close(&msg->body_frame);
    msg->body = NULL;
}

int wire_send(void *sock, const void *identity, size_t identity_len, const char *type,
              const char *body, size_t body_len, int flags)
{
    if (identity && zmq_send(sock, identity, identity_len, ZMQ_SNDMORE | flags) < 0)
        return -errno;
    if (zmq_send(sock, WIRE_VERSION, 1, ZMQ_SNDMORE | flags) < 0)
        return -errno;
    if (zmq_send(sock, type, strlen(type), ZMQ_SNDMORE | flags) < 0)
        return -errno;
    if (zmq_send(sock, body, body_len, flags) < 0)
        return -errno;
    return 0;
}

void wire_body_init(struct wire_body *b)
{
    msgpack_sbuffer_init(&b->sbuf);
    msgpack_packer_init(&b->pk, &b->sbuf, msgpack_sbuffer_write);
}

void wire_body_free(struct wire_body *b)
{
    msgpack_sbuffer_destroy(&b->sbuf);
}

void wire_pack_strn(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

void wire_pack_str(msgpack_packer *pk, const char *s)
{
    wire_pack_strn(pk, s, strlen(s));
}

void wire_pack_kv_str(msgpack_packer *pk, const char *key, const char *value)
{
    wire_pack_str(pk, key);
    if (value)
        wire_pack_str(pk, value);
    else
        msgpack_pack_nil(pk);
}

void wire_pack_kv_int(msgpack_packer *pk, const char *key, int64_t value)
{
    wire_pack_str(pk, key);
    msgpack_pack_int64(pk, value);
}

void wire_pack_kv_double(msgpack_packer *pk, const char *key, double value)
{
    wire_pack_str(pk, key);
    msgpack_pack_double(pk, value);
}

void wire_pack_kv_bool(msgpack_packer *pk, const char *key, int value)
{
    wire_pack_str(pk, key);
    if (value)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

int wire_str_eq(const msgpack_object *obj, const char *s)
{
    size_t n = strlen(s);
    return obj && obj->type == MSGPACK_OBJECT_STR && obj->via.str.size == n &&
           memcmp(obj->via.str.ptr, s, n) == 0;
}

const msgpack_object *wire_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (wire_str_eq(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

int wire_get_int(const msgpack_object *map, const char *key, int64_t *out)
{
    const msgpack_object *v = wire_map_get(map, key);
    if (!v)
        return -1;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (v->via.u64 > INT64_MAX)
            return -1;
        *out = (int64_t)v->via.u64;
        return 0;
    }
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = v->via.i64;
        return 0;
    }
    return -1;
}

int wire_get_double(const msgpack_object *map, const char *key, double *out)
{
    const msgpack_object *v = wire_map_get(map, key);
    if (!v)
        return -1;
    if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64) {
        *out = v->via.f64;
        return 0;
    }
    int64_t i;
    if (wire_get_int(map, key, &i) == 0) {
        *out = (double)i;
        return 0;
    }
    return -1;
}

int wire_str_copy(const msgpack_object *v, char *out, size_t cap)
{
    if (!v || v->type != MSGPACK_OBJECT_STR || v->via.str.size >= cap)
        return -1;
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = '\0';
    return 0;
}

int wire_get_str(const msgpack_object *map, const char *key, char *out, size_t cap)
{
    return wire_str_copy(wire_map_get(map, key), out, cap);
}

/* Big-endian unsigned of n bytes at p. */
static uint64_t be_uint(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

int wire_msgpack_check(const void *data, size_t len)
{
    return len > 0 && wire_msgpack_span(data, len) == len ? 0 : -1;
}

int wire_value_bytes(const struct wire_msg *msg, const msgpack_object *val, const char **out, size_t *len)
{
    /* val is a map's value (wire_map_get), so its key sits just before it in the kv pair; the
     * key is a string msgpack_unpack_next left pointing into the frame, and the value's bytes
     * start right after the key's. Anything else (a copied key, a value not from a map of this
     * message) is outside the frame and answers -1. */
    const msgpack_object_kv *kv =
        (const msgpack_object_kv *)(const void *)((const char *)val - offsetof(msgpack_object_kv, val));
    const char *frame = zmq_msg_data((zmq_msg_t *)&msg->body_frame);
    size_t frame_len = zmq_msg_size((zmq_msg_t *)&msg->body_frame);
    if (kv->key.type != MSGPACK_OBJECT_STR)
        return -1;
    const char *start = kv->key.via.str.ptr + kv->key.via.str.size;
    if (kv->key.via.str.ptr < frame || start > frame + frame_len)
        return -1;
    size_t span = wire_msgpack_span(start, (size_t)(frame + frame_len - start));
    if (span == 0)
        return -1;
    *out = start;
    *len = span;
    return 0;
}

size_t wire_msgpack_span(const void *data, size_t len)
{
    const unsigned char *p = data, *end = p + len;
    uint64_t pending = 1; /* values still to read; each takes at least one byte */
    while (pending > 0) {
        if (pending > (uint64_t)(end - p))
            return 0;
        unsigned c = *p++;
        pending--;
        uint64_t skip = 0, items = 0;
        size_t field = 0; /* bytes of the length field after the type byte */
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
            continue;                           /* fixint, nil, bool */
        if (c <= 0x8f) {
            items = 2 * (uint64_t)(c & 0x0f);   /* fixmap */
        } else if (c <= 0x9f) {
            items = c & 0x0f;                   /* fixarray */
        } else if (c <= 0xbf) {
            skip = c & 0x1f;                    /* fixstr */
        } else {
            switch (c) {
            case 0xc4: case 0xd9: field = 1; break;              /* bin8, str8 */
            case 0xc5: case 0xda: field = 2; break;              /* bin16, str16 */
            case 0xc6: case 0xdb: field = 4; break;              /* bin32, str32 */
            case 0xc7: field = 1; skip = 1; break;               /* ext8 (+ type) */
            case 0xc8: field = 2; skip = 1; break;               /* ext16 */
            case 0xc9: field = 4; skip = 1; break;               /* ext32 */
            case 0xca: skip = 4; break;                          /* float32 */
            case 0xcb: skip = 8; break;                          /* float64 */
            case 0xcc: case 0xd0: skip = 1; break;               /* (u)int8 */
            case 0xcd: case 0xd1: skip = 2; break;               /* (u)int16 */
            case 0xce: case 0xd2: skip = 4; break;               /* (u)int32 */
            case 0xcf: case 0xd3: skip = 8; break;               /* (u)int64 */
            case 0xd4: skip = 2; break;                          /* fixext 1..16 (+ type) */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: case 0xdd: case 0xde: case 0xdf: {        /* array16/32, map16/32 */
                size_t n = c == 0xdc || c == 0xde ? 2 : 4;
                if ((size_t)(end - p) < n)
                    return 0;
                items = be_uint(p, n) * (c >= 0xde ? 2 : 1);
                p += n;
                break;
            }
            default:
                return 0;                                       /* 0xc1: never used */
            }
        }
        if (field) {
            if ((size_t)(end - p) < field)
                return 0;
            skip += be_uint(p, field);
            p += field;
        }
        if (skip > (uint64_t)(end - p))
            return 0;
        p += skip;
        pending += items;
    }
    return (size_t)(p - (const unsigned char *)data);
}
