/* fuzz_streamrec: the retained-event record decoder (proto/streamrec.c) on arbitrary payloads,
 * as a journal that survived a crash or an older node may hold. A record it accepts must have
 * the documented shape and come back the same through streamrec_pack; the journal file name
 * derived from the input (as a stream pattern) must be safe: [A-Za-z0-9_.-] and %XX only. */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/streamrec.h"
#include "tests/fuzz/fuzz_util.h"

static char *pack(const msgpack_object *obj, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *obj);
    *len = sb.size;
    return sb.data;
}

static char *cstr(const msgpack_object *s)
{
    char *out = malloc(s->via.str.size + 1);
    if (!out)
        abort();
    if (s->via.str.size)
        memcpy(out, s->via.str.ptr, s->via.str.size);
    out[s->via.str.size] = '\0';
    return out;
}

FUZZ_NO_COVERAGE static void check_name(const char *pattern, size_t cap)
{
    char out[600];
    memset(out, 'Z', sizeof out);
    streamrec_journal_name(pattern, out, cap);
    size_t n = strnlen(out, cap);
    FUZZ_CHECK(n < cap, "journal name overflows its %zu bytes", cap);
    for (size_t i = 0; i < n; i++) {
        char c = out[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                 c == '.' || c == '-' || c == '%';
        FUZZ_CHECK(ok, "journal name byte 0x%02x", (unsigned char)c);
    }
    FUZZ_CHECK(cap == sizeof out || out[cap] == 'Z', "journal name wrote past cap");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);

    struct streamrec rec;
    if (streamrec_unpack(&rec, copy, size) == 0) {
        FUZZ_CHECK(rec.type && rec.type->type == MSGPACK_OBJECT_STR, "type is not a string");
        FUZZ_CHECK(rec.source && rec.source->type == MSGPACK_OBJECT_STR, "source is not a string");
        FUZZ_CHECK(rec.headers && rec.headers->type == MSGPACK_OBJECT_MAP, "headers is not a map");
        FUZZ_CHECK(rec.body != NULL, "no body");
        /* Types and sources with a NUL cannot round-trip through the C strings pack takes. */
        if (!memchr(rec.type->via.str.ptr ? rec.type->via.str.ptr : "", '\0', rec.type->via.str.size) &&
            !memchr(rec.source->via.str.ptr ? rec.source->via.str.ptr : "", '\0', rec.source->via.str.size)) {
            char *type = cstr(rec.type), *source = cstr(rec.source);
            size_t hl, bl;
            char *h = pack(rec.headers, &hl), *b = pack(rec.body, &bl);
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            streamrec_pack(&sb, type, source, h, hl, b, bl, rec.wall_ns);
            struct streamrec again;
            FUZZ_CHECK(streamrec_unpack(&again, sb.data, sb.size) == 0, "a repacked record does not decode");
            FUZZ_CHECK(again.wall_ns == rec.wall_ns && again.type->via.str.size == rec.type->via.str.size &&
                           again.source->via.str.size == rec.source->via.str.size,
                       "repacked record differs");
            streamrec_free(&again);
            msgpack_sbuffer_destroy(&sb);
            free(h);
            free(b);
            free(type);
            free(source);
        }
        streamrec_free(&rec);
    }

    char pattern[512];
    size_t pl = size < sizeof pattern - 1 ? size : sizeof pattern - 1;
    memcpy(pattern, data, pl);
    pattern[pl] = '\0';
    check_name(pattern, 600);
    check_name(pattern, 1 + size % 40);
    free(copy);
    return 0;
}
