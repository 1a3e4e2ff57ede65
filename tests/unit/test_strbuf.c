/* Unit tests for strbuf: growth, printf, and the JSON string escaper (escapes, UTF-8
 * validation, and a seeded property check that the output always parses as JSON). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"

/* Escapes `len` bytes into a fresh buffer and compares with `expected`. */
static void check_json(const char *in, size_t len, const char *expected)
{
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_append_json_string(&sb, in, len);
    const char *got = strbuf_cstr(&sb);
    assert_int_equal(sb.len, strlen(expected));
    assert_memory_equal(got, expected, sb.len);
    strbuf_free(&sb);
}

#define CHECK_JSON(in, expected) check_json(in, sizeof(in) - 1, expected)

static void test_empty_and_cstr(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb);
    assert_string_equal(strbuf_cstr(&sb), "");
    strbuf_append(&sb, "", 0);
    assert_string_equal(strbuf_cstr(&sb), "");
    strbuf_append_json_string(&sb, "", 0);
    assert_int_equal(sb.len, 0);
    strbuf_puts(&sb, "abc");
    strbuf_putc(&sb, 'd');
    assert_string_equal(strbuf_cstr(&sb), "abcd");
    assert_string_equal(sb.data, "abcd"); /* terminated without strbuf_cstr too */
    size_t cap = sb.cap;
    strbuf_reset(&sb);
    assert_int_equal(sb.len, 0);
    assert_int_equal(sb.cap, cap);
    assert_string_equal(strbuf_cstr(&sb), "");
    strbuf_free(&sb);
    assert_null(sb.data);
    strbuf_free(&sb); /* freeing twice is harmless */
}

static void test_append_growth(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb);
    char chunk[37];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)('a' + i % 26);
    size_t total = 0;
    for (int i = 0; i < 5000; i++) { /* ~180 KiB */
        strbuf_append(&sb, chunk, (size_t)(i % 37) + 1);
        total += (size_t)(i % 37) + 1;
        strbuf_putc(&sb, '|');
        total++;
    }
    assert_int_equal(sb.len, total);
    assert_true(sb.cap > sb.len);
    assert_int_equal(strlen(strbuf_cstr(&sb)), total);
    /* spot-check content: the first records */
    assert_memory_equal(sb.data, "a|ab|abc|", 9);
    strbuf_free(&sb);
}

static void test_printf_growth(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb);
    char expected[64];
    size_t total = 0;
    for (int i = 0; i < 10000; i++) {
        strbuf_printf(&sb, "%d:%s,", i, i % 2 ? "odd" : "even");
        total += (size_t)snprintf(expected, sizeof expected, "%d:%s,", i, i % 2 ? "odd" : "even");
    }
    assert_int_equal(sb.len, total);
    assert_memory_equal(sb.data, "0:even,1:odd,2:even,", 20);
    assert_int_equal(sb.data[sb.len], '\0');

    /* one formatted piece much larger than the current free room */
    char *big = malloc(100000);
    assert_non_null(big);
    memset(big, 'x', 99999);
    big[99999] = '\0';
    strbuf_reset(&sb);
    strbuf_printf(&sb, "<%s>", big);
    assert_int_equal(sb.len, 100001);
    assert_int_equal(sb.data[0], '<');
    assert_int_equal(sb.data[100000], '>');
    assert_int_equal(sb.data[100001], '\0');
    free(big);
    strbuf_free(&sb);
}

static void test_json_plain_and_specials(void **state)
{
    (void)state;
    CHECK_JSON("hello world", "hello world");
    CHECK_JSON("say \"hi\"", "say \\\"hi\\\"");
    CHECK_JSON("C:\\path", "C:\\\\path");
    CHECK_JSON("a\nb\rc\td\be\ff", "a\\nb\\rc\\td\\be\\ff");
    CHECK_JSON("\x7f", "\\u007f");
    CHECK_JSON("/", "/");
}

static void test_json_every_control_byte(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 0x20; c++) {
        char in = (char)c;
        char expected[8];
        switch (c) {
        case '\n': strcpy(expected, "\\n"); break;
        case '\r': strcpy(expected, "\\r"); break;
        case '\t': strcpy(expected, "\\t"); break;
        case '\b': strcpy(expected, "\\b"); break;
        case '\f': strcpy(expected, "\\f"); break;
        default: snprintf(expected, sizeof expected, "\\u%04x", c); break;
        }
        check_json(&in, 1, expected);
    }
    /* every printable ASCII byte but '"' and '\\' passes through */
    for (unsigned c = 0x20; c < 0x7f; c++) {
        if (c == '"' || c == '\\')
            continue;
        char in = (char)c;
        char expected[2] = {(char)c, 0};
        check_json(&in, 1, expected);
    }
    /* NUL in the middle does not end the string */
    check_json("a\0b", 3, "a\\u0000b");
}

static void test_json_valid_utf8_unchanged(void **state)
{
    (void)state;
    CHECK_JSON("caf\xc3\xa9", "caf\xc3\xa9");                   /* 2 bytes, U+00E9 */
    CHECK_JSON("\xc2\x80\xdf\xbf", "\xc2\x80\xdf\xbf");         /* 2-byte range ends */
    CHECK_JSON("\xe2\x82\xac", "\xe2\x82\xac");                 /* 3 bytes, U+20AC */
    CHECK_JSON("\xe0\xa0\x80\xef\xbf\xbf", "\xe0\xa0\x80\xef\xbf\xbf"); /* U+0800, U+FFFF */
    CHECK_JSON("\xed\x9f\xbf\xee\x80\x80", "\xed\x9f\xbf\xee\x80\x80"); /* around surrogates */
    CHECK_JSON("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");         /* 4 bytes, U+1F600 */
    CHECK_JSON("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"); /* U+10000, U+10FFFF */
    CHECK_JSON("\xe6\x97\xa5\xe6\x9c\xac\"x\"", "\xe6\x97\xa5\xe6\x9c\xac\\\"x\\\"");
}

#define FFFD "\xef\xbf\xbd"

static void test_json_invalid_utf8_replaced(void **state)
{
    (void)state;
    CHECK_JSON("a\x80z", "a" FFFD "z");                   /* lone continuation */
    CHECK_JSON("\xbf\xbf", FFFD FFFD);
    CHECK_JSON("ab\xe2\x82", "ab" FFFD FFFD);             /* truncated at end */
    CHECK_JSON("\xf0\x9f\x98", FFFD FFFD FFFD);
    CHECK_JSON("\xc3", FFFD);
    CHECK_JSON("\xc3x", FFFD "x");                        /* lead without continuation */
    CHECK_JSON("\xe2\x82x", FFFD FFFD "x");
    CHECK_JSON("\xc0\xaf", FFFD FFFD);                    /* overlong '/' */
    CHECK_JSON("\xc1\xbf", FFFD FFFD);
    CHECK_JSON("\xe0\x80\xaf", FFFD FFFD FFFD);           /* overlong 3-byte */
    CHECK_JSON("\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD);  /* overlong 4-byte */
    CHECK_JSON("\xed\xa0\x80", FFFD FFFD FFFD);           /* surrogate D800 */
    CHECK_JSON("\xed\xbf\xbf", FFFD FFFD FFFD);           /* surrogate DFFF */
    CHECK_JSON("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);  /* U+110000 */
    CHECK_JSON("\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD);
    CHECK_JSON("\xfe\xff", FFFD FFFD);
    /* invalid bytes next to escapes and valid characters */
    CHECK_JSON("\"\xff\xc3\xa9\n", "\\\"" FFFD "\xc3\xa9\\n");
}

/* The escaper's output, wrapped in quotes, must parse as a JSON string whatever the
 * input bytes, and must keep every ASCII byte of the input, in order (invalid UTF-8 is
 * replaced byte by byte, so no ASCII byte is ever swallowed into a replacement). */
static void check_parses(const char *in, size_t len, struct strbuf *sb)
{
    strbuf_reset(sb);
    strbuf_putc(sb, '"');
    strbuf_append_json_string(sb, in, len);
    strbuf_putc(sb, '"');
    json_error_t err;
    /* json_loads on the C string also proves the output holds no raw NUL */
    json_t *j = json_loads(strbuf_cstr(sb), JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!j)
        fail_msg("not JSON (%s): %s", err.text, strbuf_cstr(sb));
    assert_true(json_is_string(j));
    const unsigned char *s = (const unsigned char *)json_string_value(j);
    size_t slen = json_string_length(j);
    size_t si = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80)
            continue;
        while (si < slen && s[si] >= 0x80)
            si++;
        assert_true(si < slen);
        assert_int_equal(s[si], c);
        si++;
    }
    while (si < slen && s[si] >= 0x80)
        si++;
    assert_int_equal(si, slen);
    json_decref(j);
}

static void test_json_random_bytes_parse(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb);
    srand(12345);
    char in[256];
    for (int iter = 0; iter < 5000; iter++) {
        size_t len = (size_t)(rand() % (int)sizeof in);
        int mode = iter % 3;
        for (size_t i = 0; i < len; i++) {
            int r = rand();
            if (mode == 0)
                in[i] = (char)(r & 0xff); /* anything */
            else if (mode == 1)
                in[i] = (char)(0x80 | (r & 0x7f)); /* mostly high bytes: UTF-8 edge cases */
            else
                in[i] = (char)((r & 1) ? (0x20 + r % 0x60) : (0xc0 + (r >> 1) % 0x40));
        }
        check_parses(in, len, &sb);
    }
    strbuf_free(&sb);
}

/* A byte that needs escaping (or replacing) is found at every offset of lines up to 48 bytes,
 * across the 8- and 16-byte blocks the scan steps by. */
static void test_json_finds_specials_at_every_offset(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } specials[] = {
        {"\"", "\\\""}, {"\\", "\\\\"}, {"\x01", "\\u0001"}, {"\x1f", "\\u001f"}, {"\x7f", "\\u007f"},
        {"\n", "\\n"}, {"\xff", "\xef\xbf\xbd"}, {"\xc3\xa9", "\xc3\xa9"}, {"\xe2\x82\xac", "\xe2\x82\xac"},
    };
    char in[64], expected[128];
    for (size_t len = 1; len <= 48; len++) {
        for (size_t at = 0; at < len; at++) {
            for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
                size_t sl = strlen(specials[k].in);
                if (at + sl > len)
                    continue;
                memset(in, 'x', len);
                memcpy(in + at, specials[k].in, sl);
                memset(expected, 'x', at);
                size_t ol = strlen(specials[k].out);
                memcpy(expected + at, specials[k].out, ol);
                memset(expected + at + ol, 'x', len - at - sl);
                expected[at + ol + len - at - sl] = '\0';
                check_json(in, len, expected);
            }
        }
    }
}

static void test_json_ascii_round_trip(void **state)
{
    (void)state;
    /* ASCII input (controls included) decodes back to itself. */
    struct strbuf sb;
    strbuf_init(&sb);
    char in[128];
    for (int i = 0; i < 128; i++)
        in[i] = (char)i;
    strbuf_putc(&sb, '"');
    strbuf_append_json_string(&sb, in, sizeof in);
    strbuf_putc(&sb, '"');
    json_error_t err;
    json_t *j = json_loadb(sb.data, sb.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    assert_non_null(j);
    assert_int_equal(json_string_length(j), sizeof in);
    assert_memory_equal(json_string_value(j), in, sizeof in);
    json_decref(j);
    strbuf_free(&sb);
}

static void test_json_appends_to_existing(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"text\":\"");
    /* long input with a rare escape at the end, so the escape crosses a growth step */
    char big[5000];
    memset(big, 'y', sizeof big);
    big[sizeof big - 1] = '\x01';
    strbuf_append_json_string(&sb, big, sizeof big);
    strbuf_puts(&sb, "\"}");
    assert_int_equal(sb.len, 9 + 4999 + 6 + 2);
    assert_memory_equal(sb.data + 9 + 4999, "\\u0001\"}", 8);
    json_error_t err;
    json_t *j = json_loads(strbuf_cstr(&sb), 0, &err);
    assert_non_null(j);
    json_decref(j);
    strbuf_free(&sb);
}

static void test_integers(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_append_u64(&sb, 0);
    strbuf_putc(&sb, ' ');
    strbuf_append_u64(&sb, 18446744073709551615ull);
    strbuf_putc(&sb, ' ');
    strbuf_append_i64(&sb, -9223372036854775807ll - 1);
    strbuf_putc(&sb, ' ');
    strbuf_append_i64(&sb, 42);
    strbuf_putc(&sb, ' ');
    strbuf_append_padded(&sb, 7, 3);
    strbuf_putc(&sb, ' ');
    strbuf_append_padded(&sb, 123456, 6);
    assert_string_equal(strbuf_cstr(&sb), "0 18446744073709551615 -9223372036854775808 42 007 123456");
    strbuf_free(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_empty_and_cstr),
        cmocka_unit_test(test_append_growth),
        cmocka_unit_test(test_printf_growth),
        cmocka_unit_test(test_json_plain_and_specials),
        cmocka_unit_test(test_json_every_control_byte),
        cmocka_unit_test(test_json_valid_utf8_unchanged),
        cmocka_unit_test(test_json_invalid_utf8_replaced),
        cmocka_unit_test(test_json_random_bytes_parse),
        cmocka_unit_test(test_json_finds_specials_at_every_offset),
        cmocka_unit_test(test_json_ascii_round_trip),
        cmocka_unit_test(test_json_appends_to_existing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
