/* Unit tests for the tail messages and filters: the hand-written msgpack encoding of a line
 * decodes with msgpack-c to the same line (every integer width, nil/true/false, long texts,
 * invalid UTF-8 replaced as in the log file), the decoder rejects wrong types, the request
 * round-trips into a filter, and the filter's service/instance/level/trace/regex rules. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"
#include "proto/logfilter.h"
#include "proto/tailwire.h"

/* Packs one line the node's way and decodes it the client's way. */
static void roundtrip(const struct log_line *in, struct tail_line *out, msgpack_unpacked *up, struct strbuf *buf)
{
    struct strbuf scratch;
    strbuf_init(&scratch);
    strbuf_reset(buf);
    tailwire_pack_line(buf, in, &scratch);
    strbuf_free(&scratch);
    size_t off = 0;
    msgpack_unpacked_init(up);
    assert_int_equal(msgpack_unpack_next(up, buf->data, buf->len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, buf->len);
    assert_int_equal(tailwire_unpack_line(&up->data, out), 0);
}

static void test_line_roundtrip_across_integer_widths(void **state)
{
    (void)state;
    static const int64_t walls[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL,
                                    1795435270700995127LL, -1, -32, -33, -128, -129, -32768, -32769,
                                    -2147483648LL, -2147483649LL, INT64_MIN};
    static const uint64_t seqs[] = {1, 127, 128, 255, 256, 65535, 65536, 4294967295ULL, 4294967296ULL,
                                    (uint64_t)INT64_MAX};
    struct strbuf buf;
    strbuf_init(&buf);
    for (size_t i = 0; i < sizeof walls / sizeof walls[0]; i++) {
        struct log_line in = {
            .seq = seqs[i % (sizeof seqs / sizeof seqs[0])],
            .wall_ns = walls[i],
            .service = "Greeting",
            .instance = (int)(i % 3) - 1,
            .pid = (int)(i * 40000),
            .stream = (enum log_stream)(i % 3),
            .level = (enum log_level)(i % 6),
            .flags = (unsigned)(i % 4),
            .text = "hello",
            .len = 5,
        };
        if (i % 2)
            snprintf(in.trace_id, sizeof in.trace_id, "trace-%zu", i);
        struct tail_line out;
        msgpack_unpacked up;
        roundtrip(&in, &out, &up, &buf);
        assert_int_equal(out.line.seq, in.seq);
        assert_int_equal(out.line.wall_ns, in.wall_ns);
        assert_string_equal(out.line.service, "Greeting");
        assert_int_equal(out.line.instance, in.instance);
        assert_int_equal(out.line.pid, in.pid);
        assert_int_equal(out.line.stream, in.stream);
        assert_int_equal(out.line.level, in.level);
        assert_int_equal(out.line.flags, in.flags);
        assert_string_equal(out.line.trace_id, in.trace_id);
        assert_int_equal(out.line.len, 5);
        assert_memory_equal(out.line.text, "hello", 5);
        msgpack_unpacked_destroy(&up);
    }
    strbuf_free(&buf);
}

static void test_text_lengths_and_invalid_utf8(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 31, 32, 255, 256, 65535, 65536, 70000};
    char *text = malloc(70000);
    assert_non_null(text);
    for (size_t k = 0; k < 70000; k++)
        text[k] = (char)('a' + k % 26);
    struct strbuf buf;
    strbuf_init(&buf);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        struct log_line in = {.seq = 1, .service = "S", .text = text, .len = lens[i]};
        struct tail_line out;
        msgpack_unpacked up;
        roundtrip(&in, &out, &up, &buf);
        assert_int_equal(out.line.len, lens[i]);
        assert_memory_equal(out.line.text, text, lens[i]);
        msgpack_unpacked_destroy(&up);
    }
    /* The log file's rule: each byte that starts no valid sequence becomes U+FFFD. */
    struct { const char *in; const char *out; } cases[] = {
        {"bad \xff utf8", "bad \xEF\xBF\xBD utf8"},
        {"ok \xe2\x9c\x93 check", "ok \xe2\x9c\x93 check"},
        {"cut \xe2\x9c", "cut \xEF\xBF\xBD\xEF\xBF\xBD"},
        {"overlong \xc0\xaf", "overlong \xEF\xBF\xBD\xEF\xBF\xBD"},
        {"surrogate \xed\xa0\x80", "surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"nul \0 byte", "nul \0 byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t in_len = i == 5 ? 10 : strlen(cases[i].in);
        size_t out_len = i == 5 ? 10 : strlen(cases[i].out);
        struct log_line in = {.seq = 1, .service = "S", .text = cases[i].in, .len = in_len};
        struct tail_line out;
        msgpack_unpacked up;
        roundtrip(&in, &out, &up, &buf);
        assert_int_equal(out.line.len, out_len);
        assert_memory_equal(out.line.text, cases[i].out, out_len);
        msgpack_unpacked_destroy(&up);
    }
    strbuf_free(&buf);
    free(text);
}

/* Decoding a line map built with msgpack-c with one field wrong. */
static int decode_with(const char *bad_key, int bad_value_is_string)
{
    struct wire_body b;
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 7);
    const char *keys[] = {"seq", "wall_ns", "service", "instance", "pid", "stream", "text"};
    for (size_t i = 0; i < 7; i++) {
        wire_pack_str(&b.pk, keys[i]);
        int is_str = !strcmp(keys[i], "service") || !strcmp(keys[i], "stream") || !strcmp(keys[i], "text");
        if (bad_key && !strcmp(keys[i], bad_key))
            is_str = bad_value_is_string;
        if (is_str)
            wire_pack_str(&b.pk, !strcmp(keys[i], "stream") ? "stdout" : "x");
        else
            msgpack_pack_int(&b.pk, 1);
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, b.sbuf.data, b.sbuf.size, &off), MSGPACK_UNPACK_SUCCESS);
    struct tail_line out;
    int rc = tailwire_unpack_line(&up.data, &out);
    msgpack_unpacked_destroy(&up);
    wire_body_free(&b);
    return rc;
}

static void test_unpack_rejects_wrong_types(void **state)
{
    (void)state;
    assert_int_equal(decode_with(NULL, 0), 0);
    assert_int_equal(decode_with("seq", 1), -1);
    assert_int_equal(decode_with("service", 0), -1);
    assert_int_equal(decode_with("text", 0), -1);
    assert_int_equal(decode_with("pid", 1), -1);
    assert_int_equal(tailwire_unpack_line(NULL, &(struct tail_line){0}), -1);
}

static void test_request_roundtrip_into_a_filter(void **state)
{
    (void)state;
    const char *services[] = {"Web", "Greeting.2"};
    struct tail_request req = {.backlog = 42, .follow = 1, .services = services, .service_count = 2,
                               .trace = "abc", .level = "warn", .grep = "hi.*joe"};
    struct wire_body b;
    wire_body_init(&b);
    tailwire_pack_request(&b.pk, 7, &req);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, b.sbuf.data, b.sbuf.size, &off), MSGPACK_UNPACK_SUCCESS);
    int64_t backlog;
    int follow;
    struct logfilter f;
    char err[256];
    assert_int_equal(tailwire_unpack_request(&up.data, &backlog, &follow, &f, err, sizeof err), 0);
    assert_int_equal(backlog, 42);
    assert_true(follow);
    assert_int_equal(f.target_count, 2);
    assert_string_equal(f.targets[0].service, "Web");
    assert_int_equal(f.targets[0].instance, -1);
    assert_string_equal(f.targets[1].service, "Greeting");
    assert_int_equal(f.targets[1].instance, 2);
    assert_string_equal(f.trace_id, "abc");
    assert_int_equal(f.level_min, LOG_LEVEL_WARNING);
    assert_true(f.has_grep);
    logfilter_free(&f);
    msgpack_unpacked_destroy(&up);
    wire_body_free(&b);
}

static struct log_line line_of(const char *service, int instance, enum log_level level, const char *trace,
                               const char *text)
{
    struct log_line l = {.service = service, .instance = instance, .level = level, .text = text,
                         .len = strlen(text)};
    snprintf(l.trace_id, sizeof l.trace_id, "%s", trace);
    return l;
}

static void test_filter_rules(void **state)
{
    (void)state;
    char err[256];
    struct logfilter f;
    logfilter_init(&f);
    struct log_line web0 = line_of("Web", 0, LOG_LEVEL_INFO, "t1", "GET /greet?name=joe");
    struct log_line web1 = line_of("Web", 1, LOG_LEVEL_ERROR, "", "boom");
    struct log_line greet = line_of("Greeting", 0, LOG_LEVEL_NONE, "t1", "plain");
    assert_true(logfilter_match(&f, &web0) && logfilter_match(&f, &greet));

    assert_int_equal(logfilter_add_target(&f, "Web.1", err, sizeof err), 0);
    assert_false(logfilter_match(&f, &web0));
    assert_true(logfilter_match(&f, &web1));
    assert_int_equal(logfilter_add_target(&f, "Greeting", err, sizeof err), 0);
    assert_true(logfilter_match(&f, &greet));
    logfilter_free(&f);

    logfilter_init(&f);
    assert_int_equal(logfilter_set_level(&f, "warning", err, sizeof err), 0);
    assert_false(logfilter_match(&f, &web0));
    assert_true(logfilter_match(&f, &web1));
    assert_false(logfilter_match(&f, &greet)); /* no level: not at least a warning */
    logfilter_free(&f);

    logfilter_init(&f);
    assert_int_equal(logfilter_set_trace(&f, "t1", err, sizeof err), 0);
    assert_true(logfilter_match(&f, &web0) && logfilter_match(&f, &greet));
    assert_false(logfilter_match(&f, &web1));
    assert_int_equal(logfilter_set_grep(&f, "name=(joe|ann)$", err, sizeof err), 0);
    assert_true(logfilter_match(&f, &web0));
    assert_false(logfilter_match(&f, &greet));
    logfilter_free(&f);

    /* The regex sees exactly the line's bytes, not what follows them in memory. */
    logfilter_init(&f);
    assert_int_equal(logfilter_set_grep(&f, "joe$", err, sizeof err), 0);
    struct log_line cut = line_of("Web", 0, LOG_LEVEL_NONE, "", "hi joe and more");
    cut.len = 6;
    assert_true(logfilter_match(&f, &cut));
    cut.len = 5;
    assert_false(logfilter_match(&f, &cut));
    logfilter_free(&f);

    logfilter_init(&f);
    assert_int_equal(logfilter_add_target(&f, ".1", err, sizeof err), -1);
    assert_int_equal(logfilter_add_target(&f, "", err, sizeof err), -1);
    assert_int_equal(logfilter_set_level(&f, "loud", err, sizeof err), -1);
    assert_int_equal(logfilter_set_trace(&f, "has space", err, sizeof err), -1);
    assert_int_equal(logfilter_set_grep(&f, "(", err, sizeof err), -1);
    assert_false(f.has_grep);
    logfilter_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_roundtrip_across_integer_widths),
        cmocka_unit_test(test_text_lengths_and_invalid_utf8),
        cmocka_unit_test(test_unpack_rejects_wrong_types),
        cmocka_unit_test(test_request_roundtrip_into_a_filter),
        cmocka_unit_test(test_filter_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
