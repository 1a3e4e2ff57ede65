/* fuzz_tailwire: the `tail` conversation's decoders (proto/tailwire.c): the node's decoding of
 * a tail request body into a filter (services, trace, level, a POSIX regex), and the client's
 * decoding of one line of a `lines` message. The input is one msgpack value (bounded by
 * wire_msgpack_check first, as wire_recv does). A decoded filter is matched against lines; a
 * decoded line must come back the same through tailwire_pack_line. A map with an `id` is also
 * fed to a tail conversation (tail/tailconv.c) as `lines` and then as lines/end/error: it
 * never shows a line twice or out of order, and never hands off seqs already shown. */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "proto/wire.h"
#include "proto/logfilter.h"
#include "tail/tailconv.h"
#include "proto/tailwire.h"
#include "tests/fuzz/fuzz_tailline.h"
#include "tests/fuzz/fuzz_util.h"



static void check_conversation(const msgpack_object *obj)
{
    int64_t id;
    if (obj->type != MSGPACK_OBJECT_MAP || wire_get_int(obj, "id", &id) < 0 || id == INT64_MAX)
        return;
    static const struct tail_request req = {.follow = 1};
    static const char *const second[] = {"lines", "end", "error"};
    for (size_t k = 0; k < sizeof second / sizeof second[0]; k++) {
        int64_t next_id = id;
        struct tailconv c;
        struct tailconv_options opts = {.resume = 1, .resume_gap = 1};
        tailconv_init(&c, &req, &opts, &next_id);
        struct tailconv_out out;
        tailconv_start(&c, 0, &out);
        tailconv_out_free(&out);
        for (int round = 0; round < 2 && c.id == id && tailconv_open(&c); round++) {
            uint64_t before = c.last_seq;
            const char *type = round == 0 ? "lines" : second[k];
            FUZZ_CHECK(tailconv_feed(&c, type, obj, 10 + round, &out) == 1, "its own %s not taken", type);
            FUZZ_CHECK(out.send_count <= 1, "%zu messages to send", out.send_count);
            for (size_t i = 0; i < out.line_count; i++)
                FUZZ_CHECK(out.lines[i].line.seq > (i ? out.lines[i - 1].line.seq : before),
                           "line %zu: seq %llu shown twice or out of order", i,
                           (unsigned long long)out.lines[i].line.seq);
            if (out.gap && out.gap_seqs_known && out.gap_first <= out.gap_last)
                FUZZ_CHECK(out.gap_first > before, "gap from %llu hands off seqs up to %llu again",
                           (unsigned long long)out.gap_first, (unsigned long long)before);
            tailconv_out_free(&out);
        }
        tailconv_free(&c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (wire_msgpack_check(data, size) < 0)
        return 0;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    if (msgpack_unpack_next(&up, (const char *)data, size, &off) != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy(&up);
        return 0;
    }
    const msgpack_object *obj = &up.data;

    struct tail_line line;
    int have_line = tailwire_unpack_line(obj, &line) == 0;
    if (have_line)
        check_line_roundtrip(&line);
    check_conversation(obj);

    if (obj->type == MSGPACK_OBJECT_MAP)
        check_tail_request(obj, have_line ? &line.line : NULL);
    msgpack_unpacked_destroy(&up);
    return 0;
}
