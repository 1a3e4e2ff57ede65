/* Unit tests for the CLI's one option parser (cli/args.c): GNU-style permutation, bundles,
 * values in every spelling, prefixes, the global options, and the one-line errors main prints. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "cli/cli.h"

static const struct cli_option tail_like[] = {
    {"lines", 'n', 1, 'n'},
    {"follow", 'f', 0, 'f'},
    {"lossy", 0, 0, 'L'},
    {"lossless", 0, 0, 'L'},
    {"verbose", 'v', 0, 'v'},
    {"instances", 0, 0, 'v'},
    {0},
};

static int run_nothing(struct cli_args *args)
{
    (void)args;
    return 0;
}

static const struct cli_command cmd = {
    .name = "tail", .usage = "[-n N]", .summary = "test", .flags = CLI_JSON, .options = tail_like,
    .run = run_nothing,
};
static const struct cli_command bare = {.name = "bare", .usage = "", .summary = "test", .run = run_nothing};

/* Parses a NULL-terminated list into a fresh argv (the parser reorders it). */
static char *argv_buf[32];
static char err[256];

static int parse(const struct cli_command *c, struct cli_args *a, ...)
{
    va_list ap;
    va_start(ap, a);
    int n = 0;
    argv_buf[n++] = (char *)c->name;
    for (char *s; (s = va_arg(ap, char *));)
        argv_buf[n++] = s;
    argv_buf[n] = NULL;
    va_end(ap);
    err[0] = '\0';
    return cli_args_parse(c, n, argv_buf, a, err, sizeof err);
}

static void test_operands_keep_their_order_around_options(void **state)
{
    (void)state;
    struct cli_args a;
    assert_int_equal(parse(&cmd, &a, "Web", "-n", "5", "Greeting", "--follow", "-", NULL), 0);
    assert_int_equal(a.argc, 3);
    assert_string_equal(a.argv[0], "Web");
    assert_string_equal(a.argv[1], "Greeting");
    assert_string_equal(a.argv[2], "-");
    assert_null(a.argv[3]);
    assert_string_equal(cli_arg(&a, 'n'), "5");
    assert_non_null(cli_arg(&a, 'f'));
    assert_null(cli_arg(&a, 'v'));
}

static void test_double_dash_ends_options(void **state)
{
    (void)state;
    struct cli_args a;
    assert_int_equal(parse(&cmd, &a, "--", "-f", "--lines", NULL), 0);
    assert_int_equal(a.argc, 2);
    assert_string_equal(a.argv[0], "-f");
    assert_null(cli_arg(&a, 'f'));
}

static void test_every_spelling_of_a_value(void **state)
{
    (void)state;
    struct cli_args a;
    const char *forms[][3] = {{"-n", "7", NULL}, {"-n7", NULL, NULL}, {"--lines=7", NULL, NULL},
                              {"--lines", "7", NULL}, {"--li", "7", NULL}, {"-fn7", NULL, NULL}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        assert_int_equal(parse(&cmd, &a, forms[i][0], forms[i][1], NULL), 0);
        assert_string_equal(cli_arg(&a, 'n'), "7");
        assert_int_equal(a.argc, 0);
    }
    assert_non_null(cli_arg(&a, 'f')); /* -fn7: a bundle */
    assert_int_equal(parse(&cmd, &a, "--lines=", NULL), 0);
    assert_string_equal(cli_arg(&a, 'n'), "");
}

static void test_last_one_wins_and_shared_ids_are_one_choice(void **state)
{
    (void)state;
    struct cli_args a;
    assert_int_equal(parse(&cmd, &a, "-n", "1", "--lines=2", NULL), 0);
    assert_string_equal(cli_arg(&a, 'n'), "2");
    assert_int_equal(parse(&cmd, &a, "--lossless", "--lossy", NULL), 0);
    assert_string_equal(cli_arg(&a, 'L'), "lossy");
    assert_int_equal(parse(&cmd, &a, "--lossy", "--lossless", NULL), 0);
    assert_string_equal(cli_arg(&a, 'L'), "lossless");
    assert_int_equal(parse(&cmd, &a, "--instances", NULL), 0);
    assert_non_null(cli_arg(&a, 'v'));
}

static void test_errors_are_one_line(void **state)
{
    (void)state;
    struct cli_args a;
    assert_int_equal(parse(&cmd, &a, "--x", NULL), -1);
    assert_string_equal(err, "unknown option '--x'");
    assert_int_equal(parse(&cmd, &a, "-fZ", NULL), -1);
    assert_string_equal(err, "unknown option '-Z'");
    assert_int_equal(parse(&cmd, &a, "--loss", NULL), -1);
    assert_string_equal(err, "ambiguous option '--loss'");
    assert_int_equal(parse(&cmd, &a, "-n", NULL), -1);
    assert_string_equal(err, "option '-n' needs a value");
    assert_int_equal(parse(&cmd, &a, "--lines", NULL), -1);
    assert_string_equal(err, "option '--lines' needs a value");
    assert_int_equal(parse(&cmd, &a, "--follow=1", NULL), -1);
    assert_string_equal(err, "option '--follow' takes no value");
}

static void test_help_wins_over_what_follows(void **state)
{
    (void)state;
    struct cli_args a;
    assert_int_equal(parse(&cmd, &a, "--help", "--bogus", NULL), CLI_ARGS_HELP);
    assert_int_equal(parse(&bare, &a, "-h", NULL), CLI_ARGS_HELP);
    assert_int_equal(parse(&cmd, &a, "--bogus", "--help", NULL), -1);
}

static void test_global_options_follow_the_flags(void **state)
{
    (void)state;
    struct cli_args a;
    assert_int_equal(parse(&cmd, &a, "-c", "x.yml", "--json", NULL), 0);
    assert_string_equal(a.config, "x.yml");
    assert_int_equal(a.json, 1);
    assert_int_equal(parse(&bare, &a, "--config=y.yml", NULL), 0);
    assert_string_equal(a.config, "y.yml");
    assert_int_equal(parse(&bare, &a, "--json", NULL), -1); /* bare does not report JSON */
    assert_string_equal(err, "unknown option '--json'");
    assert_int_equal(parse(&cmd, &a, "--color=never", NULL), -1);
    assert_string_equal(err, "unknown option '--color'");
}

static void test_a_negative_number_is_an_operand(void **state)
{
    (void)state;
    struct cli_args a;
    assert_int_equal(parse(&bare, &a, "Web", "-1", NULL), 0);
    assert_int_equal(a.argc, 2);
    assert_string_equal(a.argv[1], "-1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operands_keep_their_order_around_options),
        cmocka_unit_test(test_double_dash_ends_options),
        cmocka_unit_test(test_every_spelling_of_a_value),
        cmocka_unit_test(test_last_one_wins_and_shared_ids_are_one_choice),
        cmocka_unit_test(test_errors_are_one_line),
        cmocka_unit_test(test_help_wins_over_what_follows),
        cmocka_unit_test(test_global_options_follow_the_flags),
        cmocka_unit_test(test_a_negative_number_is_an_operand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
