/* tailwire: every field of a message from the other side is type-checked and bounded before
 * use; a bad field fails the whole message with a reason, never a crash or a guess. */
#include "proto/tailwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int tail_request_filter(const struct tail_request *req, struct logfilter *f, char *err, size_t errlen)
{
    logfilter_init(f);
    for (size_t i = 0; i < req->service_count; i++)
        if (logfilter_add_target(f, req->services[i], err, errlen) < 0)
            goto fail;
    if (req->trace && logfilter_set_trace(f, req->trace, err, errlen) < 0)
        goto fail;
    if (req->level && logfilter_set_level(f, req->level, err, errlen) < 0)
        goto fail;
    if (req->grep && logfilter_set_grep(f, req->grep, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    logfilter_free(f);
    return -1;
}

static void pack_kv_opt(msgpack_packer *pk, const char *key, const char *value)
{
    wire_pack_kv_str(pk, key, value);
}

void tailwire_pack_request(msgpack_packer *pk, int64_t id, const struct tail_request *req)
{
    msgpack_pack_map(pk, 7);
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_int(pk, "backlog", req->backlog);
    wire_pack_kv_bool(pk, "follow", req->follow);
    wire_pack_str(pk, "services");
    msgpack_pack_array(pk, req->service_count);
    for (size_t i = 0; i < req->service_count; i++)
        wire_pack_str(pk, req->services[i]);
    pack_kv_opt(pk, "trace", req->trace);
    pack_kv_opt(pk, "level", req->level);
    pack_kv_opt(pk, "grep", req->grep);
}

/* A string field that may be absent or nil: 1 and copied, 0 when absent/nil, -1 when wrong. */
static int optional_str(const msgpack_object *body, const char *key, char *out, size_t cap)
{
    const msgpack_object *v = wire_map_get(body, key);
    if (!v || v->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size >= cap || memchr(v->via.str.ptr, '\0', v->via.str.size))
        return -1;
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = '\0';
    return 1;
}

int tailwire_unpack_request(const msgpack_object *body, int64_t *backlog, int *follow, struct logfilter *f,
                            char *err, size_t errlen)
{
    *backlog = 0;
    *follow = 0;
    const msgpack_object *v = wire_map_get(body, "backlog");
    if (v && v->type != MSGPACK_OBJECT_NIL) {
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            snprintf(err, errlen, "tail: 'backlog' must be a non-negative integer");
            return -1;
        }
        *backlog = v->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)v->via.u64;
    }
    v = wire_map_get(body, "follow");
    if (v && v->type != MSGPACK_OBJECT_NIL) {
        if (v->type != MSGPACK_OBJECT_BOOLEAN) {
            snprintf(err, errlen, "tail: 'follow' must be a boolean");
            return -1;
        }
        *follow = v->via.boolean;
    }
    logfilter_init(f);
    v = wire_map_get(body, "services");
    if (v && v->type != MSGPACK_OBJECT_NIL) {
        if (v->type != MSGPACK_OBJECT_ARRAY) {
            snprintf(err, errlen, "tail: 'services' must be a list of strings");
            return -1;
        }
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            const msgpack_object *s = &v->via.array.ptr[i];
            char name[LOGFILTER_NAME_MAX + 16];
            if (s->type != MSGPACK_OBJECT_STR || s->via.str.size >= sizeof name ||
                memchr(s->via.str.ptr, '\0', s->via.str.size)) {
                snprintf(err, errlen, "tail: 'services' must be a list of strings (SERVICE or SERVICE.N)");
                return -1;
            }
            memcpy(name, s->via.str.ptr, s->via.str.size);
            name[s->via.str.size] = '\0';
            char why[300];
            if (logfilter_add_target(f, name, why, sizeof why) < 0) {
                snprintf(err, errlen, "tail: %s", why);
                return -1;
            }
        }
    }
    char text[TAILWIRE_GREP_MAX + 1], why[400];
    int rc = optional_str(body, "trace", text, TRACE_ID_MAX + 1);
    if (rc < 0 || (rc == 1 && logfilter_set_trace(f, text, why, sizeof why) < 0)) {
        snprintf(err, errlen, "tail: 'trace' must be a trace id (1-%d of A-Z a-z 0-9 _ -) or nil", TRACE_ID_MAX);
        return -1;
    }
    rc = optional_str(body, "level", text, 16);
    if (rc < 0 || (rc == 1 && logfilter_set_level(f, text, why, sizeof why) < 0)) {
        snprintf(err, errlen, "tail: 'level' must be debug, info, warning, error, critical or nil");
        return -1;
    }
    rc = optional_str(body, "grep", text, sizeof text);
    if (rc < 0) {
        snprintf(err, errlen, "tail: 'grep' must be a string of at most %d bytes or nil", TAILWIRE_GREP_MAX);
        return -1;
    }
    if (rc == 1 && logfilter_set_grep(f, text, why, sizeof why) < 0) {
        snprintf(err, errlen, "tail: %s", why);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- lines */

static int is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Length of the valid UTF-8 sequence at p (Unicode Table 3-7), 0 if invalid: the same rule
 * the log file's JSON encoder applies, one U+FFFD per byte that starts no valid sequence. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return avail >= 2 && is_cont(p[1]) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || !is_cont(p[2]))
            return 0;
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || !is_cont(p[2]) || !is_cont(p[3]))
            return 0;
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

/* The packing below writes msgpack bytes directly: msgpack-c's packer makes one buffer
 * callback per token (about 25 per line), which was a tenth of the node's time in the
 * 1.6M-line burst with a follower. Decoding stays with msgpack-c on both sides. */
static void put_u8(struct strbuf *out, unsigned char c)
{
    strbuf_putc(out, (char)c);
}

static void put_be(struct strbuf *out, unsigned char tag, uint64_t v, unsigned bytes)
{
    char b[9];
    b[0] = (char)tag;
    for (unsigned i = 0; i < bytes; i++)
        b[1 + i] = (char)(v >> (8 * (bytes - 1 - i)));
    strbuf_append(out, b, 1 + bytes);
}

static void put_uint(struct strbuf *out, uint64_t v)
{
    if (v < 128)
        put_u8(out, (unsigned char)v);
    else if (v <= UINT8_MAX)
        put_be(out, 0xcc, v, 1);
    else if (v <= UINT16_MAX)
        put_be(out, 0xcd, v, 2);
    else if (v <= UINT32_MAX)
        put_be(out, 0xce, v, 4);
    else
        put_be(out, 0xcf, v, 8);
}

static void put_int(struct strbuf *out, int64_t v)
{
    if (v >= 0)
        put_uint(out, (uint64_t)v);
    else if (v >= -32)
        put_u8(out, (unsigned char)(0xe0 | (v + 32)));
    else if (v >= INT8_MIN)
        put_be(out, 0xd0, (uint64_t)v, 1);
    else if (v >= INT16_MIN)
        put_be(out, 0xd1, (uint64_t)v, 2);
    else if (v >= INT32_MIN)
        put_be(out, 0xd2, (uint64_t)v, 4);
    else
        put_be(out, 0xd3, (uint64_t)v, 8);
}

static void put_str_header(struct strbuf *out, size_t len)
{
    if (len < 32)
        put_u8(out, (unsigned char)(0xa0 | len));
    else if (len <= UINT8_MAX)
        put_be(out, 0xd9, len, 1);
    else if (len <= UINT16_MAX)
        put_be(out, 0xda, len, 2);
    else
        put_be(out, 0xdb, len, 4);
}

static void put_str(struct strbuf *out, const char *s, size_t len)
{
    put_str_header(out, len);
    strbuf_append(out, s, len);
}

/* A key: always a fixstr, written from a literal with its length known at compile time. */
#define PUT_KEY(out, k) put_str((out), (k), sizeof(k) - 1)

static void put_text(struct strbuf *out, const char *text, size_t len, struct strbuf *scratch)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    while (i < len && p[i] < 0x80)
        i++;
    if (i == len) {
        put_str(out, text, len);
        return;
    }
    strbuf_reset(scratch);
    size_t run = 0;
    while (i < len) {
        size_t n = utf8_len(p + i, len - i);
        if (n) {
            i += n;
            continue;
        }
        strbuf_append(scratch, text + run, i - run);
        strbuf_append(scratch, "\xEF\xBF\xBD", 3);
        run = ++i;
    }
    strbuf_append(scratch, text + run, len - run);
    put_str(out, scratch->data ? scratch->data : "", scratch->len);
}

void tailwire_pack_line(struct strbuf *out, const struct log_line *line, struct strbuf *scratch)
{
    put_u8(out, 0x80 | 11); /* fixmap of 11 */
    PUT_KEY(out, "seq");
    put_uint(out, line->seq);
    PUT_KEY(out, "wall_ns");
    put_int(out, line->wall_ns);
    PUT_KEY(out, "service");
    put_str(out, line->service, strlen(line->service));
    PUT_KEY(out, "instance");
    put_int(out, line->instance);
    PUT_KEY(out, "pid");
    put_int(out, line->pid);
    PUT_KEY(out, "stream");
    const char *stream = log_stream_name(line->stream);
    put_str(out, stream, strlen(stream));
    PUT_KEY(out, "level");
    if (line->level != LOG_LEVEL_NONE) {
        const char *level = logparse_level_name(line->level);
        put_str(out, level, strlen(level));
    } else {
        put_u8(out, 0xc0);
    }
    PUT_KEY(out, "trace_id");
    if (line->trace_id[0])
        put_str(out, line->trace_id, strlen(line->trace_id));
    else
        put_u8(out, 0xc0);
    PUT_KEY(out, "text");
    put_text(out, line->text, line->len, scratch);
    PUT_KEY(out, "split");
    put_u8(out, line->flags & LOG_LINE_SPLIT ? 0xc3 : 0xc2);
    PUT_KEY(out, "unterminated");
    put_u8(out, line->flags & LOG_LINE_UNTERMINATED ? 0xc3 : 0xc2);
}

static int key_is(const msgpack_object *k, const char *name, size_t len)
{
    return k->via.str.size == len && memcmp(k->via.str.ptr, name, len) == 0;
}
#define KEY_IS(k, lit) key_is((k), (lit), sizeof(lit) - 1)

static int int_in(const msgpack_object *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
        *out = (int64_t)v->via.u64;
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = v->via.i64;
    else
        return -1;
    return *out < lo || *out > hi ? -1 : 0;
}

/* Copies a string object NUL-terminated; -1 when not a string or too long. */
static int str_into(const msgpack_object *v, char *out, size_t cap)
{
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size >= cap)
        return -1;
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = '\0';
    return 0;
}

static int opt_bool(const msgpack_object *v, int *out)
{
    if (v->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return -1;
    *out = v->via.boolean;
    return 0;
}

enum { HAVE_SEQ = 1, HAVE_WALL = 2, HAVE_SERVICE = 4, HAVE_INSTANCE = 8, HAVE_PID = 16, HAVE_STREAM = 32,
       HAVE_TEXT = 64, HAVE_ALL = 127 };

/* One pass over the map (this runs per line on the client, 1.6M times in a burst). */
int tailwire_unpack_line(const msgpack_object *obj, struct tail_line *out)
{
    memset(&out->line, 0, sizeof out->line);
    if (!obj || obj->type != MSGPACK_OBJECT_MAP)
        return -1;
    struct log_line *l = &out->line;
    unsigned have = 0;
    int split = 0, unterminated = 0;
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *k = &obj->via.map.ptr[i].key, *v = &obj->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            return -1;
        int64_t n;
        if (KEY_IS(k, "seq")) {
            if (int_in(v, 1, INT64_MAX, &n) < 0)
                return -1;
            l->seq = (uint64_t)n;
            have |= HAVE_SEQ;
        } else if (KEY_IS(k, "wall_ns")) {
            if (int_in(v, INT64_MIN, INT64_MAX, &l->wall_ns) < 0)
                return -1;
            have |= HAVE_WALL;
        } else if (KEY_IS(k, "service")) {
            if (str_into(v, out->service, sizeof out->service) < 0)
                return -1;
            have |= HAVE_SERVICE;
        } else if (KEY_IS(k, "instance")) {
            if (int_in(v, -1, INT32_MAX, &n) < 0)
                return -1;
            l->instance = (int)n;
            have |= HAVE_INSTANCE;
        } else if (KEY_IS(k, "pid")) {
            if (int_in(v, 0, INT32_MAX, &n) < 0)
                return -1;
            l->pid = (int)n;
            have |= HAVE_PID;
        } else if (KEY_IS(k, "stream")) {
            if (wire_str_eq(v, "stdout"))
                l->stream = LOG_STREAM_STDOUT;
            else if (wire_str_eq(v, "stderr"))
                l->stream = LOG_STREAM_STDERR;
            else if (wire_str_eq(v, "node"))
                l->stream = LOG_STREAM_NODE;
            else
                return -1;
            have |= HAVE_STREAM;
        } else if (KEY_IS(k, "level")) {
            char level[16];
            int lv;
            if (v->type == MSGPACK_OBJECT_NIL)
                continue;
            if (str_into(v, level, sizeof level) < 0 || (lv = logparse_level_from_name(level)) < 0)
                return -1;
            l->level = (enum log_level)lv;
        } else if (KEY_IS(k, "trace_id")) {
            if (v->type == MSGPACK_OBJECT_NIL)
                continue;
            if (str_into(v, l->trace_id, sizeof l->trace_id) < 0 || !logfilter_trace_id_valid(l->trace_id))
                return -1;
        } else if (KEY_IS(k, "text")) {
            if (v->type != MSGPACK_OBJECT_STR)
                return -1;
            l->text = v->via.str.ptr;
            l->len = v->via.str.size;
            have |= HAVE_TEXT;
        } else if (KEY_IS(k, "split")) {
            if (opt_bool(v, &split) < 0)
                return -1;
        } else if (KEY_IS(k, "unterminated")) {
            if (opt_bool(v, &unterminated) < 0)
                return -1;
        }
    }
    if (have != HAVE_ALL)
        return -1;
    l->service = out->service;
    l->flags = (split ? LOG_LINE_SPLIT : 0u) | (unterminated ? LOG_LINE_UNTERMINATED : 0u);
    return 0;
}

/* ---------------------------------------------------------------- lines, end, renew, traces */

int tailwire_unpack_skipped(const msgpack_object *body, struct tail_skipped *out)
{
    *out = (struct tail_skipped){.count = 0, .first = 1, .last = 0};
    const msgpack_object *v = wire_map_get(body, "skipped");
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -1;
    out->count = v->via.u64;
    const msgpack_object *seqs = wire_map_get(body, "skipped_seqs");
    if (seqs && seqs->type == MSGPACK_OBJECT_ARRAY && seqs->via.array.size == 2 &&
        seqs->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        seqs->via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        out->first = seqs->via.array.ptr[0].via.u64;
        out->last = seqs->via.array.ptr[1].via.u64;
    }
    return 0;
}

/* "skipped" and, when lines were skipped, "skipped_seqs": [first, last]: 1 or 2 map entries. */
static unsigned skipped_entries(const struct tail_skipped *sk)
{
    return sk->count ? 2 : 1;
}

static void pack_skipped(msgpack_packer *pk, const struct tail_skipped *sk)
{
    /* unsigned, as it is read: a count past INT64_MAX must not come back negative */
    wire_pack_str(pk, "skipped");
    msgpack_pack_uint64(pk, sk->count);
    if (!sk->count)
        return;
    wire_pack_str(pk, "skipped_seqs");
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, sk->first);
    msgpack_pack_uint64(pk, sk->last);
}

static void pack_raw_id(struct wire_body *b, const char *id_packed, size_t id_len)
{
    wire_pack_str(&b->pk, "id");
    msgpack_sbuffer_write(&b->sbuf, id_packed, id_len);
}

void tailwire_lines_begin(struct wire_body *b, const char *id_packed, size_t id_len, struct tailwire_lines_mark *mark)
{
    /* Lines come before "skipped", so neither the map's size nor the array's count is known
     * yet: map32 and array32 headers, patched by finish (valid msgpack, one pass over lines). */
    static const char map32[5] = {(char)0xdf, 0, 0, 0, 0};
    static const char array32[5] = {(char)0xdd, 0, 0, 0, 0};
    mark->map_at = b->sbuf.size;
    msgpack_sbuffer_write(&b->sbuf, map32, sizeof map32);
    pack_raw_id(b, id_packed, id_len);
    wire_pack_str(&b->pk, "lines");
    mark->count_at = b->sbuf.size;
    msgpack_sbuffer_write(&b->sbuf, array32, sizeof array32);
}

void tailwire_lines_finish(struct wire_body *b, const struct tailwire_lines_mark *mark, uint32_t line_count,
                           const struct tail_skipped *skipped)
{
    unsigned char *count = (unsigned char *)b->sbuf.data + mark->count_at + 1;
    count[0] = (unsigned char)(line_count >> 24);
    count[1] = (unsigned char)(line_count >> 16);
    count[2] = (unsigned char)(line_count >> 8);
    count[3] = (unsigned char)line_count;
    unsigned entries = 2 + skipped_entries(skipped);
    unsigned char *size = (unsigned char *)b->sbuf.data + mark->map_at + 1;
    size[3] = (unsigned char)entries;
    pack_skipped(&b->pk, skipped);
}

const msgpack_object *tailwire_lines_array(const msgpack_object *body)
{
    const msgpack_object *v = wire_map_get(body, "lines");
    return v && v->type == MSGPACK_OBJECT_ARRAY ? v : NULL;
}

void tailwire_pack_end(struct wire_body *b, const char *id_packed, size_t id_len, int truncated,
                       const struct tail_skipped *skipped)
{
    msgpack_pack_map(&b->pk, 2 + skipped_entries(skipped));
    pack_raw_id(b, id_packed, id_len);
    wire_pack_kv_bool(&b->pk, "truncated", truncated);
    pack_skipped(&b->pk, skipped);
}

void tailwire_unpack_end(const msgpack_object *body, int *truncated, struct tail_skipped *skipped)
{
    const msgpack_object *t = wire_map_get(body, "truncated");
    *truncated = t && t->type == MSGPACK_OBJECT_BOOLEAN && t->via.boolean;
    tailwire_unpack_skipped(body, skipped);
}

void tailwire_pack_renew(msgpack_packer *pk, int64_t id, const uint64_t *received)
{
    msgpack_pack_map(pk, received ? 2 : 1);
    wire_pack_kv_int(pk, "id", id);
    if (received) {
        wire_pack_str(pk, "received");
        msgpack_pack_uint64(pk, *received);
    }
}

int tailwire_unpack_renew(const msgpack_object *body, int *has_received, uint64_t *received, char *err,
                          size_t errlen)
{
    *has_received = 0;
    *received = 0;
    const msgpack_object *v = wire_map_get(body, "received");
    if (!v || v->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf(err, errlen, "tail_renew: 'received' must be a non-negative integer");
        return -1;
    }
    *has_received = 1;
    *received = v->via.u64;
    return 0;
}

void tailwire_pack_untail(msgpack_packer *pk, int64_t id)
{
    msgpack_pack_map(pk, 1);
    wire_pack_kv_int(pk, "id", id);
}

void tailwire_pack_traces_request(msgpack_packer *pk, int64_t id, int64_t limit)
{
    msgpack_pack_map(pk, limit ? 2 : 1);
    wire_pack_kv_int(pk, "id", id);
    if (limit)
        wire_pack_kv_int(pk, "limit", limit);
}

int tailwire_unpack_traces_request(const msgpack_object *body, int64_t *limit, char *err, size_t errlen)
{
    *limit = TAILWIRE_TRACES_DEFAULT;
    const msgpack_object *v = wire_map_get(body, "limit");
    if (v && v->type != MSGPACK_OBJECT_NIL &&
        (wire_get_int(body, "limit", limit) < 0 || *limit < 1 || *limit > PROTO_TRACES_LIMIT_MAX)) {
        snprintf(err, errlen, "traces: 'limit' must be an integer from 1 to %d", PROTO_TRACES_LIMIT_MAX);
        return -1;
    }
    return 0;
}

void tailwire_pack_traces_head(msgpack_packer *pk, const msgpack_object *id, size_t count)
{
    msgpack_pack_map(pk, 2);
    wire_pack_str(pk, "id");
    if (id)
        msgpack_pack_object(pk, *id);
    else
        msgpack_pack_nil(pk);
    wire_pack_str(pk, "traces");
    msgpack_pack_array(pk, count);
}

void tailwire_pack_trace(msgpack_packer *pk, const struct tail_trace_summary *t)
{
    msgpack_pack_map(pk, 6);
    wire_pack_kv_str(pk, "trace_id", t->trace_id);
    wire_pack_kv_int(pk, "first_ns", t->first_ns);
    wire_pack_kv_int(pk, "last_ns", t->last_ns);
    wire_pack_kv_int(pk, "lines", t->lines);
    wire_pack_kv_bool(pk, "error", t->error);
    wire_pack_str(pk, "services");
    msgpack_pack_array(pk, t->service_count);
    for (size_t s = 0; s < t->service_count; s++)
        wire_pack_str(pk, t->services[s]);
}

/* A NUL-terminated copy of a msgpack string, or NULL when o is none or memory runs out. */
static char *str_dup(const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return NULL;
    char *s = malloc(o->via.str.size + 1);
    if (s) {
        memcpy(s, o->via.str.ptr, o->via.str.size);
        s[o->via.str.size] = '\0';
    }
    return s;
}

static char *str_dup_text(const char *text)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_STR, .via.str = {(uint32_t)strlen(text), text}};
    return str_dup(&o);
}

static int64_t trace_int(const msgpack_object *row, const char *key)
{
    int64_t v = 0;
    wire_get_int(row, key, &v);
    return v;
}

static int unpack_trace(const msgpack_object *row, struct tail_trace_summary *t)
{
    if (row->type != MSGPACK_OBJECT_MAP || !(t->trace_id = str_dup(wire_map_get(row, "trace_id"))))
        return -1;
    t->first_ns = trace_int(row, "first_ns");
    t->last_ns = trace_int(row, "last_ns");
    t->lines = trace_int(row, "lines");
    const msgpack_object *e = wire_map_get(row, "error");
    t->error = e && e->type == MSGPACK_OBJECT_BOOLEAN && e->via.boolean;
    const msgpack_object *svcs = wire_map_get(row, "services");
    if (!svcs || svcs->type != MSGPACK_OBJECT_ARRAY || !svcs->via.array.size)
        return 0;
    const char **names = calloc(svcs->via.array.size, sizeof *names);
    if (!names)
        return -1;
    t->services = names;
    for (size_t i = 0; i < svcs->via.array.size; i++) {
        /* A name of another type keeps its place, as "?", so the path reads the same. */
        const msgpack_object *o = &svcs->via.array.ptr[i];
        if (!(names[t->service_count++] = o->type == MSGPACK_OBJECT_STR ? str_dup(o) : str_dup_text("?")))
            return -1;
    }
    return 0;
}

int tailwire_unpack_traces(const msgpack_object *body, struct tail_traces *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const msgpack_object *rows = wire_map_get(body, "traces");
    if (!rows || rows->type != MSGPACK_OBJECT_ARRAY)
        goto bad;
    if (!rows->via.array.size)
        return 0;
    if (!(out->items = calloc(rows->via.array.size, sizeof *out->items)))
        goto bad;
    for (size_t i = 0; i < rows->via.array.size; i++)
        if (unpack_trace(&rows->via.array.ptr[i], &out->items[out->count++]) < 0)
            goto bad;
    return 0;
bad:
    snprintf(err, errlen, "the node's traces reply could not be decoded");
    return -1;
}

void tailwire_traces_free(struct tail_traces *t)
{
    for (size_t i = 0; i < t->count; i++) {
        struct tail_trace_summary *s = &t->items[i];
        for (size_t k = 0; k < s->service_count; k++)
            free((void *)s->services[k]);
        free((void *)s->services);
        free((void *)s->trace_id);
    }
    free(t->items);
    memset(t, 0, sizeof *t);
}
