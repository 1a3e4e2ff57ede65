/* Unit tests for logformat's cache: the JSON or human line of a line must not depend on which
 * lines came before it. Every line is formatted twice, once with the cache the lines share and
 * once with a fresh one, and the two must be byte for byte the same; JSON fields are checked
 * with jansson. Also: control bytes are dropped wherever they sit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/logformat.h"

static void assert_same_as_fresh(struct logformat_cache *shared, const struct log_line *line)
{
    struct strbuf cached, fresh;
    strbuf_init(&cached);
    strbuf_init(&fresh);
    struct logformat_cache none;
    logformat_cache_init(&none);
    logformat_json(&cached, line, shared);
    logformat_json(&fresh, line, &none);
    if (cached.len != fresh.len || memcmp(cached.data, fresh.data, cached.len) != 0)
        fail_msg("seq %llu: cached %s differs from fresh %s", (unsigned long long)line->seq,
                 strbuf_cstr(&cached), strbuf_cstr(&fresh));
    json_error_t err;
    json_t *obj = json_loadb(fresh.data, fresh.len, 0, &err);
    if (!obj)
        fail_msg("not JSON: %s: %s", err.text, strbuf_cstr(&fresh));
    assert_int_equal(json_integer_value(json_object_get(obj, "seq")), line->seq);
    assert_string_equal(json_string_value(json_object_get(obj, "service")), line->service);
    assert_int_equal(json_integer_value(json_object_get(obj, "instance")), line->instance);
    assert_int_equal(json_integer_value(json_object_get(obj, "pid")), line->pid);
    assert_string_equal(json_string_value(json_object_get(obj, "stream")), log_stream_name(line->stream));
    json_decref(obj);
    strbuf_free(&cached);
    strbuf_free(&fresh);
}

static struct log_line make_line(uint64_t seq, const char *service, int instance, int pid, enum log_stream stream)
{
    struct log_line line = {
        .seq = seq,
        .wall_ns = 1795434600123456789LL + (int64_t)(seq % 1000000) * 1000,
        .service = service,
        .instance = instance,
        .pid = pid,
        .stream = stream,
        .text = "hello",
        .len = 5,
    };
    return line;
}

/* Consecutive seqs count up in place, across every carry (9 -> 10, 999 -> 1000, ...). */
static void test_seq_counts_across_carries(void **state)
{
    (void)state;
    struct logformat_cache cache;
    logformat_cache_init(&cache);
    for (uint64_t seq = 1; seq <= 12000; seq++) {
        struct log_line line = make_line(seq, "Web", 0, 100, LOG_STREAM_STDOUT);
        assert_same_as_fresh(&cache, &line);
    }
    const uint64_t around[] = {99999, 999999, 9999999, 99999999999ull, 999999999999999999ull};
    for (size_t i = 0; i < sizeof around / sizeof around[0]; i++) {
        for (uint64_t seq = around[i] - 1; seq <= around[i] + 1; seq++) {
            struct log_line line = make_line(seq, "Web", 0, 100, LOG_STREAM_STDOUT);
            assert_same_as_fresh(&cache, &line);
        }
    }
}

/* Seqs that jump (a line the file never saw), and the source changing under the cache. */
static void test_jumps_and_changing_sources(void **state)
{
    (void)state;
    char long_name[LOGFORMAT_CACHED_SERVICE_MAX + 20];
    memset(long_name, 'L', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const char *services[] = {"Web", "Greeting", "We", "Web ", "quote\"back\\slash", "tab\there", long_name};
    const enum log_stream streams[] = {LOG_STREAM_STDOUT, LOG_STREAM_STDERR, LOG_STREAM_NODE};
    struct logformat_cache cache;
    logformat_cache_init(&cache);
    srand(42);
    uint64_t seq = 1;
    for (int i = 0; i < 20000; i++) {
        seq += rand() % 5 == 0 ? (uint64_t)(rand() % 1000) : 1;
        const char *service = services[rand() % 4 == 0 ? rand() % 7 : 0];
        int instance = rand() % 6 == 0 ? rand() % 3 - 1 : 0;
        int pid = rand() % 6 == 0 ? rand() % 100000 : 100;
        enum log_stream stream = streams[rand() % 6 == 0 ? rand() % 3 : 0];
        struct log_line line = make_line(seq, service, instance, pid, stream);
        assert_same_as_fresh(&cache, &line);
    }
}

/* The human line's name column comes from the cache while the source stays the same: every
 * line, colour or not, any width, must read as with a fresh cache. */
static void test_human_lines_match_a_fresh_cache(void **state)
{
    (void)state;
    const char *services[] = {"Web", "Greeting", "devnode", "We"};
    const enum log_stream streams[] = {LOG_STREAM_STDOUT, LOG_STREAM_STDERR, LOG_STREAM_NODE};
    struct logformat_cache cache;
    logformat_cache_init(&cache);
    srand(7);
    for (int i = 0; i < 20000; i++) {
        struct log_line line = make_line((uint64_t)i + 1, services[rand() % 4], rand() % 3 - 1, 100,
                                         streams[rand() % 3]);
        line.level = (enum log_level)(rand() % 6);
        line.text = rand() % 5 ? "plain text, long enough for a few words" : "tab\there \033[31mred\033[0m bell\a";
        line.len = strlen(line.text);
        int color = rand() % 2;
        size_t width = rand() % 3 ? 7 : 24;
        struct strbuf cached, fresh;
        strbuf_init(&cached);
        strbuf_init(&fresh);
        struct logformat_cache none;
        logformat_cache_init(&none);
        logformat_human(&cached, &line, &cache, color, width);
        logformat_human(&fresh, &line, &none, color, width);
        if (cached.len != fresh.len || memcmp(cached.data, fresh.data, cached.len) != 0)
            fail_msg("line %d: cached %s differs from fresh %s", i, strbuf_cstr(&cached), strbuf_cstr(&fresh));
        strbuf_free(&cached);
        strbuf_free(&fresh);
    }
}

/* Control bytes are found wherever they sit in a line of any length, across the 8- and 16-byte
 * blocks the scan steps by; bytes of UTF-8 text are never taken for control bytes. */
static void test_clean_text_finds_control_bytes_anywhere(void **state)
{
    (void)state;
    char text[48];
    for (size_t len = 1; len <= sizeof text; len++) {
        for (size_t at = 0; at < len; at++) {
            for (int which = 0; which < 4; which++) {
                memset(text, 'a', len);
                text[at] = which == 0 ? '\x01' : which == 1 ? '\x7f' : which == 2 ? '\x1f' : '\xc3';
                struct strbuf sb;
                strbuf_init(&sb);
                logformat_clean_text(&sb, text, len, 0);
                if (which == 3) {
                    assert_int_equal(sb.len, len);
                    assert_memory_equal(sb.data, text, len);
                } else {
                    assert_int_equal(sb.len, len - 1);
                    for (size_t i = 0; i < sb.len; i++)
                        assert_int_equal(sb.data[i], 'a');
                }
                strbuf_free(&sb);
            }
        }
    }
}

/* The time text is kept for lines with the same clock reading: a line whose time differs in
 * the second, the millisecond or only the microsecond reads as with a fresh cache. */
static void test_time_text_follows_every_change(void **state)
{
    (void)state;
    const int64_t base = 1795434600123456789LL;
    const int64_t steps[] = {0, 0, 1, 1000, 1000, 999000, 1000000, 0, 1000000000, 59000000000LL, 0, 1};
    struct logformat_cache human, json;
    logformat_cache_init(&human);
    logformat_cache_init(&json);
    int64_t wall = base;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        wall += steps[i];
        struct log_line line = make_line(i + 1, "Web", 0, 100, LOG_STREAM_STDOUT);
        line.wall_ns = wall;
        assert_same_as_fresh(&json, &line);
        for (int color = 0; color < 2; color++) {
            struct strbuf cached, fresh;
            strbuf_init(&cached);
            strbuf_init(&fresh);
            struct logformat_cache none;
            logformat_cache_init(&none);
            logformat_human(&cached, &line, &human, color, 7);
            logformat_human(&fresh, &line, &none, color, 7);
            if (cached.len != fresh.len || memcmp(cached.data, fresh.data, cached.len) != 0)
                fail_msg("step %zu: cached %s differs from fresh %s", i, strbuf_cstr(&cached), strbuf_cstr(&fresh));
            strbuf_free(&cached);
            strbuf_free(&fresh);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_counts_across_carries),
        cmocka_unit_test(test_jumps_and_changing_sources),
        cmocka_unit_test(test_human_lines_match_a_fresh_cache),
        cmocka_unit_test(test_clean_text_finds_control_bytes_anywhere),
        cmocka_unit_test(test_time_text_follows_every_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
