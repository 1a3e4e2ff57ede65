/* streamrec: one format for retained events on disk. Decoding checks the shape fully:
 * a journal survives restarts and may have been written by an older node. */
#include "proto/streamrec.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "proto/wire.h"

void streamrec_pack(msgpack_sbuffer *sb, const char *type, const char *source, const char *headers,
                    size_t headers_len, const char *body, size_t body_len, int64_t wall_ns)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    size_t n = strlen(type);
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, type, n);
    n = strlen(source);
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, source, n);
    msgpack_sbuffer_write(sb, headers, headers_len);
    msgpack_sbuffer_write(sb, body, body_len);
    msgpack_pack_int64(&pk, wall_ns);
}

int streamrec_unpack(struct streamrec *rec, const void *payload, size_t len)
{
    memset(rec, 0, sizeof *rec);
    msgpack_unpacked_init(&rec->unpacked);
    size_t off = 0;
    if (wire_msgpack_check(payload, len) < 0 || msgpack_unpack_next(&rec->unpacked, payload, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
        goto bad;
    const msgpack_object *a = &rec->unpacked.data;
    if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != 5)
        goto bad;
    const msgpack_object *f = a->via.array.ptr;
    if (f[0].type != MSGPACK_OBJECT_STR || f[1].type != MSGPACK_OBJECT_STR || f[2].type != MSGPACK_OBJECT_MAP ||
        (f[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER && f[4].type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
        goto bad;
    rec->type = &f[0];
    rec->source = &f[1];
    rec->headers = &f[2];
    rec->body = &f[3];
    rec->wall_ns = f[4].type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)f[4].via.u64 : f[4].via.i64;
    return 0;
bad:
    msgpack_unpacked_destroy(&rec->unpacked);
    return -1;
}

void streamrec_free(struct streamrec *rec)
{
    msgpack_unpacked_destroy(&rec->unpacked);
}

void streamrec_journal_name(const char *pattern, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = pattern; *p && n + 4 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (isalnum(c) || c == '_' || c == '.' || c == '-')
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", c);
    }
    out[n] = '\0';
}
