/* fuzz_tailline: the check both the proto and the tailwire targets make of a tail line: it
 * survives tailwire_pack_line / tailwire_unpack_line unchanged (its text too, when that is
 * valid UTF-8). Included by exactly those two targets, each a program of its own. */
#ifndef DEVNODE_FUZZ_TAILLINE_H
#define DEVNODE_FUZZ_TAILLINE_H

#include <msgpack.h>
#include <string.h>

#include "common/strbuf.h"
#include "proto/logfilter.h"
#include "proto/tailwire.h"
#include "tests/fuzz/fuzz_util.h"

static int valid_utf8(const char *s, size_t n)
{
    /* jansson would do, but this target links without it on purpose: keep it small. */
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!k || i + k > n)
            return 0;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
        if ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] > 0x9f) || (c == 0xf0 && p[i + 1] < 0x90) ||
            (c == 0xf4 && p[i + 1] > 0x8f))
            return 0;
        i += k;
    }
    return 1;
}

static void check_line_roundtrip(const struct tail_line *in)
{
    struct strbuf out, scratch;
    strbuf_init(&out);
    strbuf_init(&scratch);
    tailwire_pack_line(&out, &in->line, &scratch);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    FUZZ_CHECK(msgpack_unpack_next(&up, out.data, out.len, &off) == MSGPACK_UNPACK_SUCCESS && off == out.len,
               "packed line does not unpack");
    struct tail_line back;
    FUZZ_CHECK(tailwire_unpack_line(&up.data, &back) == 0, "packed line does not decode");
    const struct log_line *a = &in->line, *b = &back.line;
    FUZZ_CHECK(a->seq == b->seq && a->wall_ns == b->wall_ns && a->instance == b->instance && a->pid == b->pid &&
                   a->stream == b->stream && a->level == b->level && a->flags == b->flags &&
                   strcmp(a->trace_id, b->trace_id) == 0 && strcmp(a->service, b->service) == 0,
               "line fields changed through pack/unpack");
    if (valid_utf8(a->text, a->len))
        FUZZ_CHECK(a->len == b->len && (a->len == 0 || memcmp(a->text, b->text, a->len) == 0),
                   "valid UTF-8 text changed through pack/unpack");
    msgpack_unpacked_destroy(&up);
    strbuf_free(&out);
    strbuf_free(&scratch);
}

/* A tail request either decodes into a filter whose fields are in range and that matches a
 * line without crashing (and `extra`, when given), or is refused with a reason. */
static void check_tail_request(const msgpack_object *body, const struct log_line *extra)
{
    int64_t backlog = -1;
    int follow = -1;
    struct logfilter f;
    char err[512] = "";
    if (tailwire_unpack_request(body, &backlog, &follow, &f, err, sizeof err) == 0) {
        FUZZ_CHECK(backlog >= 0 && (follow == 0 || follow == 1), "backlog %lld follow %d", (long long)backlog, follow);
        FUZZ_CHECK(f.target_count <= LOGFILTER_MAX_TARGETS, "%zu targets", f.target_count);
        FUZZ_CHECK(!f.trace_id[0] || logfilter_trace_id_valid(f.trace_id), "invalid trace id kept");
        static const char text[] = "12:00:00 [ERROR] trace_id=abc123 failed";
        struct log_line probe = {.seq = 1, .service = "Greeting", .instance = 1, .pid = 7, .level = LOG_LEVEL_ERROR,
                                 .text = text, .len = sizeof text - 1};
        memcpy(probe.trace_id, "abc123", 7);
        int m = logfilter_match(&f, &probe);
        FUZZ_CHECK(m == 0 || m == 1, "match %d", m);
        if (extra)
            logfilter_match(&f, extra);
        logfilter_free(&f);
    } else {
        FUZZ_CHECK(err[0] != '\0', "request refused without a reason");
    }
}

#endif
