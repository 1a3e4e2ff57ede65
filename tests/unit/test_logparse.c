/* Unit tests for logparse: every trace id form and its edge cases (None, length limit,
 * word boundaries, first match), and level recognition across the usual log formats. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/logparse.h"

/* Runs the trace id parser on a heap copy of exactly the line's bytes, so that ASan
 * catches any read past the end (lines are not NUL-terminated in the node). */
static size_t trace_of(const char *line, char out[TRACE_ID_MAX + 1])
{
    size_t len = strlen(line);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, line, len);
    size_t n = logparse_trace_id(copy, len, out);
    free(copy);
    return n;
}

static void assert_trace(const char *line, const char *expected)
{
    char out[TRACE_ID_MAX + 1];
    memset(out, 'x', sizeof out);
    size_t n = trace_of(line, out);
    if (expected == NULL) {
        if (n != 0)
            fail_msg("expected no trace id in '%s', got '%s'", line, out);
        return;
    }
    if (n != strlen(expected) || strcmp(out, expected) != 0)
        fail_msg("expected trace id '%s' in '%s', got %zu '%s'", expected, line, n, n ? out : "");
}

static enum log_level level_of(const char *line)
{
    size_t len = strlen(line);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, line, len);
    enum log_level level = logparse_level(copy, len);
    free(copy);
    return level;
}

static void assert_level(const char *line, enum log_level expected)
{
    enum log_level got = level_of(line);
    if (got != expected)
        fail_msg("level of '%s': expected '%s', got '%s'", line, logparse_level_name(expected),
                 logparse_level_name(got));
}

static void test_trace_forms(void **state)
{
    (void)state;
    assert_trace("trace_id=abc123", "abc123");
    assert_trace("msg=hi trace_id=abc-123_X end", "abc-123_X");
    assert_trace("trace_id=\"abc123\"", "abc123");
    assert_trace("{\"trace_id\": \"abc123\"}", "abc123");
    assert_trace("{\"trace_id\":\"abc123\"}", "abc123");
    assert_trace("{\"trace_id\" :\t \"abc123\", \"x\": 1}", "abc123");
    assert_trace("trace_id: abc123", "abc123");
    assert_trace("trace_id:abc123", "abc123");
    assert_trace("trace_id: \"abc123\"", "abc123");
    /* lymph's own format */
    assert_trace("2016-01-01 12:00:00,123 [INFO] greeting: Saying hi to Joe - "
                 "trace_id=\"2f6c1f1a0b9c4e7d8a9b0c1d2e3f4a5b\"",
                 "2f6c1f1a0b9c4e7d8a9b0c1d2e3f4a5b");
    /* at the very end of the line, no terminator after the value */
    assert_trace("x trace_id=z", "z");
}

static void test_trace_none_and_absent(void **state)
{
    (void)state;
    assert_trace("2016-01-01 12:00:00,123 [INFO] greeting: hi - trace_id=\"None\"", NULL);
    assert_trace("trace_id=None", NULL);
    assert_trace("{\"trace_id\": \"None\"}", NULL);
    assert_trace("{\"trace_id\": null}", NULL);
    assert_trace("trace_id=Nonexistent", "Nonexistent"); /* only the exact word */
    assert_trace("", NULL);
    assert_trace("no trace here", NULL);
    assert_trace("trace_id", NULL);
    assert_trace("trace_id=", NULL);
    assert_trace("trace_id=\"\"", NULL);
    assert_trace("trace_id: ", NULL);
    assert_trace("trace_id = abc", NULL);
    assert_trace("trace_id=\"abc", NULL); /* quoted value never closed */
    assert_trace("trace_id==abc", NULL);
}

static void test_trace_length_limit(void **state)
{
    (void)state;
    char id[TRACE_ID_MAX + 2];
    char line[128];
    for (size_t i = 0; i < sizeof id - 1; i++)
        id[i] = "0123456789abcdef"[i % 16];

    id[TRACE_ID_MAX] = '\0';
    snprintf(line, sizeof line, "trace_id=%s", id);
    assert_trace(line, id);
    snprintf(line, sizeof line, "trace_id=\"%s\" x", id);
    assert_trace(line, id);

    id[TRACE_ID_MAX] = 'f';
    id[TRACE_ID_MAX + 1] = '\0';
    snprintf(line, sizeof line, "trace_id=%s", id);
    assert_trace(line, NULL); /* 65 characters: not cut to 64 */
    snprintf(line, sizeof line, "{\"trace_id\": \"%s\"}", id);
    assert_trace(line, NULL);
    /* a too-long value does not hide a valid one later on the line */
    snprintf(line, sizeof line, "trace_id=%s trace_id=ok", id);
    assert_trace(line, "ok");
}

static void test_trace_word_boundary(void **state)
{
    (void)state;
    assert_trace("xtrace_id=abc", NULL);
    assert_trace("my_trace_id=abc", NULL);
    assert_trace("trace_ids=abc", NULL);
    assert_trace("trace_id_x=abc", NULL);
    assert_trace("trace_idx: abc", NULL);
    assert_trace("{\"parent_trace_id\": \"abc\"}", NULL);
    assert_trace("trace_id\": \"abc\"", NULL); /* JSON form needs its opening quote */
    assert_trace("xtrace_id=abc trace_id=def", "def");
    assert_trace("(trace_id=abc)", "abc");
    assert_trace("ctx.trace_id=abc", "abc");
    assert_trace("x-trace_id: abc", "abc");
}

static void test_trace_first_wins_and_end_chars(void **state)
{
    (void)state;
    assert_trace("trace_id=first trace_id=second", "first");
    assert_trace("{\"trace_id\": \"a1\"} trace_id=b2", "a1");
    assert_trace("trace_id=None trace_id=later", "later");
    assert_trace("trace_id= trace_id=later", "later");
    /* the id ends at the first byte outside [A-Za-z0-9_-] */
    assert_trace("trace_id=abc def", "abc");
    assert_trace("trace_id=abc,next=1", "abc");
    assert_trace("trace_id=abc.def", "abc");
    assert_trace("trace_id=abc\xc3\xa9", "abc");
    assert_trace("trace_id=abc\tx", "abc");
}

static void test_trace_not_nul_terminated(void **state)
{
    (void)state;
    /* the length bounds the scan: bytes after it are not part of the line */
    const char line[] = "trace_id=abcdefXYZ";
    char out[TRACE_ID_MAX + 1];
    assert_int_equal(logparse_trace_id(line, 12, out), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(logparse_trace_id(line, 9, out), 0);
    assert_int_equal(logparse_trace_id(line, 8, out), 0);
    assert_int_equal(logparse_trace_id(line, 0, out), 0);
    /* NUL bytes inside the line are just bytes */
    const char bin[] = "a\0b trace_id=t1";
    assert_int_equal(logparse_trace_id(bin, sizeof bin - 1, out), 2);
    assert_string_equal(out, "t1");
}

static void test_level_json(void **state)
{
    (void)state;
    assert_level("{\"level\": \"info\", \"msg\": \"hi\"}", LOG_LEVEL_INFO);
    assert_level("{\"msg\":\"hi\",\"level\":\"ERROR\"}", LOG_LEVEL_ERROR);
    assert_level("{\"lvl\" : \"warn\"}", LOG_LEVEL_WARNING);
    assert_level("{\"severity\": \"Critical\"}", LOG_LEVEL_CRITICAL);
    assert_level("{\"levelname\": \"DEBUG\"}", LOG_LEVEL_DEBUG);
    assert_level("{\"Level\": \"notice\"}", LOG_LEVEL_INFO);
    /* a JSON line is decided by its key, not by words in its message */
    assert_level("{\"msg\": \"[ERROR] upstream said level=debug\", \"level\": \"info\"}", LOG_LEVEL_INFO);
    assert_level("{\"level\": \"information\"}", LOG_LEVEL_NONE);
    assert_level("{\"loglevel\": \"info\"}", LOG_LEVEL_NONE);
    assert_level("{\"msg\": \"no level\"}", LOG_LEVEL_NONE);
}

static void test_level_logfmt(void **state)
{
    (void)state;
    assert_level("ts=2024-01-01T00:00:00Z level=info msg=started", LOG_LEVEL_INFO);
    assert_level("level=\"warning\" msg=\"disk\"", LOG_LEVEL_WARNING);
    assert_level("lvl=err", LOG_LEVEL_ERROR);
    assert_level("LEVEL=Debug x=1", LOG_LEVEL_DEBUG);
    assert_level("level=trace", LOG_LEVEL_DEBUG);
    assert_level("level=fatal", LOG_LEVEL_CRITICAL);
    assert_level("loglevel=error", LOG_LEVEL_NONE);
    assert_level("level=errors", LOG_LEVEL_NONE);
    assert_level("level=", LOG_LEVEL_NONE);
}

static void test_level_plain_forms(void **state)
{
    (void)state;
    assert_level("2016-01-01 12:00:00,123 [INFO] greeting: Saying hi to Joe - trace_id=\"None\"",
                 LOG_LEVEL_INFO);
    assert_level("2016-01-01 12:00:00,123 [WARNING] slow", LOG_LEVEL_WARNING);
    assert_level("[ERROR] boom", LOG_LEVEL_ERROR);
    assert_level("[critical] on fire", LOG_LEVEL_CRITICAL);
    /* python logging's default format */
    assert_level("INFO:root:started", LOG_LEVEL_INFO);
    assert_level("WARNING:root:careful", LOG_LEVEL_WARNING);
    assert_level("ERROR:app.db:lost connection", LOG_LEVEL_ERROR);
    assert_level("CRITICAL:x", LOG_LEVEL_CRITICAL);
    /* an upper-case token near the start */
    assert_level("2024-01-01 12:00:00 ERROR something", LOG_LEVEL_ERROR);
    assert_level("12:00:00 WARN disk almost full", LOG_LEVEL_WARNING);
    assert_level("DEBUG", LOG_LEVEL_DEBUG);
    assert_level("12:00:00.123 | FATAL | x", LOG_LEVEL_CRITICAL);
    assert_level("12:00:00 NOTICE: hello", LOG_LEVEL_INFO);
    /* the earliest form on a plain line wins */
    assert_level("[INFO] setting level=debug", LOG_LEVEL_INFO);
    assert_level("INFO retry after [ERROR]", LOG_LEVEL_INFO);
}

/* The forms are found wherever they sit relative to the 8- and 16-byte blocks the scans step
 * by: a token starting inside the first 40 bytes counts, one starting after does not; the
 * bracket, logfmt and JSON forms count anywhere; and the earliest form still wins. */
static void test_level_at_every_offset(void **state)
{
    (void)state;
    char line[160];
    for (size_t at = 0; at < 64; at++) {
        for (size_t tail = 0; tail < 20; tail += 3) {
            /* "aaa ERROR bbb": a token after a space, or at the very start */
            memset(line, 'a', at);
            if (at > 0)
                line[at - 1] = ' ';
            int n = (int)at + snprintf(line + at, sizeof line - at, "ERROR%s", tail ? " " : "");
            memset(line + n, 'b', tail);
            line[n + (int)tail] = '\0';
            assert_level(line, at < 40 ? LOG_LEVEL_ERROR : LOG_LEVEL_NONE);

            static const struct {
                const char *form;
                enum log_level level;
            } anywhere[] = {
                {" [warn] ", LOG_LEVEL_WARNING},
                {" level=debug ", LOG_LEVEL_DEBUG},
                {" \"level\":\"info\" ", LOG_LEVEL_INFO},
            };
            for (size_t f = 0; f < sizeof anywhere / sizeof anywhere[0]; f++) {
                memset(line, 'a', at);
                n = (int)at + snprintf(line + at, sizeof line - at, "%s", anywhere[f].form);
                memset(line + n, 'b', tail);
                line[n + (int)tail] = '\0';
                assert_level(line, anywhere[f].level);
                /* behind an early token, the token wins; before a late one, the form does */
                char both[200];
                snprintf(both, sizeof both, "ERROR %s", line);
                assert_level(both, LOG_LEVEL_ERROR);
                snprintf(both, sizeof both, "%s ERROR", line);
                assert_level(both, anywhere[f].level);
            }
        }
    }
}

static void test_level_not_recognised(void **state)
{
    (void)state;
    assert_level("", LOG_LEVEL_NONE);
    assert_level("an error occurred", LOG_LEVEL_NONE);
    assert_level("warning: lower case prose is not a level", LOG_LEVEL_NONE);
    assert_level("Error: capitalised prose neither", LOG_LEVEL_NONE);
    assert_level("I0101 12:00:00.000 hello", LOG_LEVEL_NONE);
    assert_level("I 12:00 hello", LOG_LEVEL_NONE);
    assert_level("ERRORS were made", LOG_LEVEL_NONE);
    assert_level("xERROR y", LOG_LEVEL_NONE);
    assert_level("[INFORMATION] x", LOG_LEVEL_NONE);
    /* beyond the first 40 bytes an upper-case word is message text */
    assert_level("0123456789012345678901234567890123456789 ERROR late", LOG_LEVEL_NONE);
    assert_level("01234567890123456789012345678901234567 ERROR in time", LOG_LEVEL_ERROR);
}

static void test_level_folding(void **state)
{
    (void)state;
    assert_level("level=warn", LOG_LEVEL_WARNING);
    assert_level("level=err", LOG_LEVEL_ERROR);
    assert_level("level=fatal", LOG_LEVEL_CRITICAL);
    assert_level("level=crit", LOG_LEVEL_CRITICAL);
    assert_level("level=critical", LOG_LEVEL_CRITICAL);
    assert_level("level=trace", LOG_LEVEL_DEBUG);
    assert_level("level=notice", LOG_LEVEL_INFO);
    assert_level("[WARN] x", LOG_LEVEL_WARNING);
    assert_level("[ERR] x", LOG_LEVEL_ERROR);
    assert_level("[FATAL] x", LOG_LEVEL_CRITICAL);
    assert_level("[CRIT] x", LOG_LEVEL_CRITICAL);
    assert_level("[TRACE] x", LOG_LEVEL_DEBUG);
    assert_level("[NOTICE] x", LOG_LEVEL_INFO);
}

static void test_level_names(void **state)
{
    (void)state;
    for (int l = LOG_LEVEL_NONE; l <= LOG_LEVEL_CRITICAL; l++)
        assert_int_equal(logparse_level_from_name(logparse_level_name((enum log_level)l)), l);
    assert_string_equal(logparse_level_name(LOG_LEVEL_NONE), "");
    assert_string_equal(logparse_level_name(LOG_LEVEL_DEBUG), "debug");
    assert_string_equal(logparse_level_name(LOG_LEVEL_INFO), "info");
    assert_string_equal(logparse_level_name(LOG_LEVEL_WARNING), "warning");
    assert_string_equal(logparse_level_name(LOG_LEVEL_ERROR), "error");
    assert_string_equal(logparse_level_name(LOG_LEVEL_CRITICAL), "critical");
    assert_string_equal(logparse_level_name((enum log_level)42), "");

    assert_int_equal(logparse_level_from_name("WARNING"), LOG_LEVEL_WARNING);
    assert_int_equal(logparse_level_from_name("Warn"), LOG_LEVEL_WARNING);
    assert_int_equal(logparse_level_from_name("err"), LOG_LEVEL_ERROR);
    assert_int_equal(logparse_level_from_name("FATAL"), LOG_LEVEL_CRITICAL);
    assert_int_equal(logparse_level_from_name("crit"), LOG_LEVEL_CRITICAL);
    assert_int_equal(logparse_level_from_name("trace"), LOG_LEVEL_DEBUG);
    assert_int_equal(logparse_level_from_name("notice"), LOG_LEVEL_INFO);
    assert_int_equal(logparse_level_from_name("verbose"), -1);
    assert_int_equal(logparse_level_from_name("info "), -1);
    assert_int_equal(logparse_level_from_name("criticality"), -1);
    assert_int_equal(logparse_level_from_name(NULL), -1);
}

/* Seeded random lines built from the fragments the parsers look for: nothing reads
 * outside the line (ASan checks the exact-size copies) and every id found is well formed. */
static void test_random_fragments(void **state)
{
    (void)state;
    static const char *const frags[] = {
        "trace_id", "=", ":", "\"", " ", "{", "}", "[", "]", "level", "lvl", "INFO", "error",
        "None", "abc", "-", "_", "x", "\t", "\xc3", "0123456789abcdef0123456789abcdef",
        "WARNING", ",", "severity",
    };
    const size_t nfrags = sizeof frags / sizeof frags[0];
    srand(777);
    for (int iter = 0; iter < 20000; iter++) {
        char line[512];
        size_t len = 0;
        int parts = rand() % 24;
        for (int i = 0; i < parts; i++) {
            const char *f = frags[(size_t)rand() % nfrags];
            size_t fl = strlen(f);
            if (len + fl > sizeof line)
                break;
            memcpy(line + len, f, fl);
            len += fl;
        }
        char *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, line, len);
        char out[TRACE_ID_MAX + 1];
        size_t n = logparse_trace_id(copy, len, out);
        assert_true(n <= TRACE_ID_MAX);
        if (n > 0) {
            assert_int_equal(strlen(out), n);
            assert_non_null(memmem(copy, len, out, n));
            assert_string_not_equal(out, "None");
            for (size_t i = 0; i < n; i++)
                assert_true(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", out[i]));
        }
        enum log_level level = logparse_level(copy, len);
        assert_true(level >= LOG_LEVEL_NONE && level <= LOG_LEVEL_CRITICAL);
        free(copy);
    }
}

static void test_placeholder_values_are_not_traces(void **state)
{
    (void)state;
    char out[TRACE_ID_MAX + 1];
    assert_int_equal(logparse_trace_id("GET / 200 trace_id=-", 20, out), 0);
    assert_int_equal(logparse_trace_id("trace_id=--_ x", 14, out), 0);
    assert_int_equal(logparse_trace_id("trace_id=-a", 11, out), 2);
    assert_string_equal(out, "-a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placeholder_values_are_not_traces),
        cmocka_unit_test(test_trace_forms),
        cmocka_unit_test(test_trace_none_and_absent),
        cmocka_unit_test(test_trace_length_limit),
        cmocka_unit_test(test_trace_word_boundary),
        cmocka_unit_test(test_trace_first_wins_and_end_chars),
        cmocka_unit_test(test_trace_not_nul_terminated),
        cmocka_unit_test(test_level_json),
        cmocka_unit_test(test_level_logfmt),
        cmocka_unit_test(test_level_plain_forms),
        cmocka_unit_test(test_level_at_every_offset),
        cmocka_unit_test(test_level_not_recognised),
        cmocka_unit_test(test_level_folding),
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_random_fragments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
