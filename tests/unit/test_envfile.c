/* Unit tests for config/envfile.c, the dialect of .env and env_file: files: every form of
 * docs/config.md "Environment files", the line numbers of multi-line values, and the exact
 * one-line error of each malformed input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/envfile.h"

#define MAX_VARS 32

/* What the caller of envfile_parse is in these tests: a fixed "shell" below the file's own
 * assignments, which ${VAR} sees last-assignment-first. */
struct collected {
    char *names[MAX_VARS];
    char *values[MAX_VARS];
    int lines[MAX_VARS];
    size_t count;
    const char *const *shell; /* NAME, VALUE, ..., NULL */
};

static const char *lookup(void *ctx, const char *name)
{
    struct collected *c = ctx;
    for (size_t i = c->count; i-- > 0;)
        if (strcmp(c->names[i], name) == 0)
            return c->values[i];
    for (const char *const *s = c->shell; s && *s; s += 2)
        if (strcmp(s[0], name) == 0)
            return s[1];
    return NULL;
}

static void assign(void *ctx, const char *name, const char *value, int line)
{
    struct collected *c = ctx;
    assert_true(c->count < MAX_VARS);
    c->names[c->count] = strdup(name);
    c->values[c->count] = strdup(value);
    c->lines[c->count] = line;
    c->count++;
}

static void collected_free(struct collected *c)
{
    for (size_t i = 0; i < c->count; i++) {
        free(c->names[i]);
        free(c->values[i]);
    }
    c->count = 0;
}

static int parse(struct collected *c, const char *text, char *err, size_t errlen)
{
    struct envfile_reader r = {.lookup = lookup, .assign = assign, .ctx = c};
    return envfile_parse(text, strlen(text), "t.env", &r, err, errlen);
}

/* Parses text, which must succeed, and checks the assignments: NAME, VALUE, LINE as text... */
static void expect(const char *text, const char *const *shell, const char *const *want)
{
    struct collected c = {.shell = shell};
    char err[256] = "";
    if (parse(&c, text, err, sizeof err) != 0)
        fail_msg("parse of <<%s>> failed: %s", text, err);
    size_t n = 0;
    for (; want[3 * n]; n++) {
        if (n >= c.count)
            fail_msg("<<%s>>: only %zu assignments, wanted %s", text, c.count, want[3 * n]);
        assert_string_equal(c.names[n], want[3 * n]);
        assert_string_equal(c.values[n], want[3 * n + 1]);
        assert_int_equal(c.lines[n], atoi(want[3 * n + 2]));
    }
    assert_int_equal(c.count, n);
    collected_free(&c);
}

static void expect_error(const char *text, size_t len, const char *message)
{
    struct collected c = {0};
    char err[256] = "";
    struct envfile_reader r = {.lookup = lookup, .assign = assign, .ctx = &c};
    assert_int_equal(envfile_parse(text, len, "t.env", &r, err, sizeof err), -1);
    assert_string_equal(err, message);
    collected_free(&c);
}

#define EXPECT_ERROR(text, message) expect_error(text, strlen(text), message)

static void test_plain_lines_comments_and_export(void **state)
{
    (void)state;
    expect("# a comment\n"
           "\n"
           "A=1\n"
           "  B = two words  \n"
           "export C=3\n"
           "export\tD=4\n"
           "E=\n"
           "F=x # a comment\n"
           "G=x#not a comment\n"
           "H=#not one either\n"
           "I= # only a comment\n"
           "export=5\n"
           "J=a'b\"c\\n\n",
           NULL,
           (const char *const[]){"A", "1", "3", "B", "two words", "4", "C", "3", "5", "D", "4", "6", "E", "", "7",
                                 "F", "x", "8", "G", "x#not a comment", "9", "H", "#not one either", "10", "I", "",
                                 "11", "export", "5", "12", "J", "a'b\"c\\n", "13", NULL});
}

static void test_dollar_without_brace_is_literal_and_a_lone_brace_fails(void **state)
{
    (void)state;
    expect("K=$HOME and $ and $(date)\n", NULL,
           (const char *const[]){"K", "$HOME and $ and $(date)", "1", NULL});
    EXPECT_ERROR("K=${\n", "t.env:1: expected a variable name after '${', got the end of the line");
}

static void test_single_quotes_are_literal_and_may_span_lines(void **state)
{
    (void)state;
    expect("A='${HOME} \\n # kept'\n"
           "B='line one\n"
           "line two'\n"
           "C=after\n"
           "D='' # empty\n",
           (const char *const[]){"HOME", "/home/x", NULL},
           (const char *const[]){"A", "${HOME} \\n # kept", "1", "B", "line one\nline two", "2", "C", "after", "4",
                                 "D", "", "5", NULL});
}

static void test_double_quotes_escape_expand_and_span_lines(void **state)
{
    (void)state;
    expect("A=\"tab\\there\\nnew \\\"q\\\" \\\\ \\$HOME \\${X} \\q\"\n"
           "B=\"first\n"
           "second ${USER}\"  # comment\n"
           "C=\"#not a comment\"\n"
           "D=\"${MISSING}\"\n",
           (const char *const[]){"USER", "ann", NULL},
           (const char *const[]){"A", "tab\there\nnew \"q\" \\ $HOME ${X} \\q", "1", "B", "first\nsecond ann", "2",
                                 "C", "#not a comment", "4", "D", "", "5", NULL});
}

static void test_expansion_with_defaults(void **state)
{
    (void)state;
    const char *const shell[] = {"SET", "s", "EMPTY", "", NULL};
    expect("A=${SET}/${UNSET}/${EMPTY}\n"
           "B=${UNSET:-d1} ${EMPTY:-d2} ${SET:-d3}\n"
           "C=${UNSET-d1} ${EMPTY-d2} ${SET-d3}\n"
           "D=${UNSET:-${SET}-x}\n"
           "E=${UNSET:-${ALSO:-deep}}\n"
           "F=${A}+${D}\n"
           "G=${UNSET:-}end\n"
           "H=\"${UNSET:-a b}\"\n",
           shell,
           (const char *const[]){"A", "s//", "1", "B", "d1 d2 s", "2", "C", "d1  s", "3", "D", "s-x", "4", "E", "deep",
                                 "5", "F", "s//+s-x", "6", "G", "end", "7", "H", "a b", "8", NULL});
}

static void test_crlf_and_byte_order_mark(void **state)
{
    (void)state;
    expect("\xef\xbb\xbf"
           "A=1\r\nB=\"two\"\r\n# c\r\nC=3\r\n",
           NULL, (const char *const[]){"A", "1", "1", "B", "two", "2", "C", "3", "4", NULL});
}

static void test_each_malformed_line_names_its_line(void **state)
{
    (void)state;
    EXPECT_ERROR("A=1\nthis is not an assignment\n", "t.env:2: expected '=' after this, got 'i'");
    EXPECT_ERROR("A=1\n\nLONELY\n", "t.env:3: LONELY has no value: write LONELY=value (or LONELY= for an empty one)");
    EXPECT_ERROR("1ABC=x\n", "t.env:1: expected a variable name (letters, digits and '_', not starting with a "
                             "digit), got '1'");
    EXPECT_ERROR("FOO-BAR=x\n", "t.env:1: expected '=' after FOO, got '-'");
    EXPECT_ERROR("=x\n", "t.env:1: expected a variable name (letters, digits and '_', not starting with a digit), "
                         "got '='");
    EXPECT_ERROR("export \n", "t.env:1: expected a variable name (letters, digits and '_', not starting with a "
                              "digit), got the end of the line");
    EXPECT_ERROR("A=1\nB='open\nC=3\n", "t.env:2: the single quote of B's value is not closed");
    EXPECT_ERROR("A=\"open\n\nC=3\n", "t.env:1: the double quote of A's value is not closed");
    EXPECT_ERROR("A=\"ends in a backslash\\", "t.env:1: the double quote of A's value is not closed");
    EXPECT_ERROR("A=\"x\ny\" trailing\n", "t.env:2: unexpected 't' after the closing quote of A's value (quote all of it)");
    EXPECT_ERROR("A=${B\n", "t.env:1: ${B must end with '}' (or give a default: ${B:-default}), got the end of the line");
    EXPECT_ERROR("A=${B:-x\nC=1\n", "t.env:1: ${B is not closed with '}' on its line");
    EXPECT_ERROR("A=${B:-x #c}\n", "t.env:1: ${B is not closed with '}' on its line");
    EXPECT_ERROR("A=${B?x}\n", "t.env:1: ${B must end with '}' (or give a default: ${B:-default}), got '?'");
    EXPECT_ERROR("A=${1}\n", "t.env:1: expected a variable name after '${', got '1'");
    EXPECT_ERROR("A=\xff\nB\n", "t.env:2: B has no value: write B=value (or B= for an empty one)");
    EXPECT_ERROR("\xc3\xa9=1\n", "t.env:1: expected a variable name (letters, digits and '_', not starting with a "
                                 "digit), got \\xc3");
    expect_error("A=1\nB=x\0y\n", 10, "t.env:2: holds a NUL byte: an environment file is text");
    EXPECT_ERROR("A=${a:-${b:-${c:-${d:-${e:-${f:-${g:-${h:-${i:-x}}}}}}}}}\n", "t.env:1: ${...} nested more than 8 deep");
}

/* A=${A}${A} doubling per line would need 2^40 bytes: refused past ENVFILE_VALUE_MAX. */
static void test_a_value_doubling_per_line_stops_at_the_limit(void **state)
{
    (void)state;
    char text[64 * 16] = "A=xxxxxxxxxxxxxxxx\n";
    for (int i = 0; i < 40; i++)
        strcat(text, "A=${A}${A}\n");
    struct collected c = {0};
    char err[256] = "";
    /* 16 bytes doubled 16 times is the limit itself, still taken; once more is refused. */
    char *cut = text;
    for (int lines = 0; lines < 17; lines++)
        cut = strchr(cut, '\n') + 1;
    *cut = '\0';
    assert_int_equal(parse(&c, text, err, sizeof err), 0);
    assert_int_equal(strlen(c.values[c.count - 1]), ENVFILE_VALUE_MAX);
    collected_free(&c);
    strcpy(cut, "A=${A}${A}\n");
    assert_int_equal(parse(&c, text, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "t.env:18: value longer than %u bytes", ENVFILE_VALUE_MAX);
    assert_string_equal(err, want);
    collected_free(&c);
}

static void test_empty_inputs(void **state)
{
    (void)state;
    expect("", NULL, (const char *const[]){NULL});
    expect("\n\n   \n# only comments\n", NULL, (const char *const[]){NULL});
    expect("A=1", NULL, (const char *const[]){"A", "1", "1", NULL});
}

static void test_secret_names(void **state)
{
    (void)state;
    const char *secret[] = {"API_TOKEN", "SECRET_KEY_BASE", "DB_PASSWORD", "aws_secret_access_key", "KEY",
                            "stripe_api_key", "GITHUB_TOKEN"};
    const char *plain[] = {"DATABASE_URL", "PORT", "HOME", "PASS", "LOG_LEVEL", "TOKE"};
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++)
        if (!envfile_name_is_secret(secret[i]))
            fail_msg("%s should be masked", secret[i]);
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (envfile_name_is_secret(plain[i]))
            fail_msg("%s should not be masked", plain[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_lines_comments_and_export),
        cmocka_unit_test(test_dollar_without_brace_is_literal_and_a_lone_brace_fails),
        cmocka_unit_test(test_single_quotes_are_literal_and_may_span_lines),
        cmocka_unit_test(test_double_quotes_escape_expand_and_span_lines),
        cmocka_unit_test(test_expansion_with_defaults),
        cmocka_unit_test(test_crlf_and_byte_order_mark),
        cmocka_unit_test(test_each_malformed_line_names_its_line),
        cmocka_unit_test(test_a_value_doubling_per_line_stops_at_the_limit),
        cmocka_unit_test(test_empty_inputs),
        cmocka_unit_test(test_secret_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
