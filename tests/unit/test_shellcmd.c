/* Unit tests for the exec-prefix decision on configured commands. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <cmocka.h>

#include "node/shellcmd.h"

static void test_simple_commands_get_exec(void **state)
{
    (void)state;
    const char *simple[] = {
        "./examples/web/web",
        "python3 -m http.server 8000",
        "python -c 'import x; x.run()'",
        "node \"server.js\" --port=4080",
        "gunicorn --bind fd://3 app:app",
        "  sleep 1000",
        "cat > out.txt",
        "./run a\\; foo",
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        if (!shellcmd_is_simple(simple[i]))
            fail_msg("expected simple: %s", simple[i]);
    }
    char *wrapped = shellcmd_for_sh("sleep 5");
    assert_string_equal(wrapped, "exec sleep 5");
    free(wrapped);
}

static void test_shell_constructs_are_left_alone(void **state)
{
    (void)state;
    const char *complex[] = {
        "cd x && ./run",
        "a; b",
        "a | b",
        "a &",
        "(a)",
        "echo $(date)",
        "echo \"$(date)\"",
        "echo `date`",
        "FOO=1 ./run",
        "exec ./run",
        "export A=1",
        "trap '' TERM; sleep 100",
        "while true; do :; done",
        "a\nb",
        "echo 'unterminated",
        "",
        "   ",
        "run # comment",
        "{ a; }",
    };
    for (size_t i = 0; i < sizeof complex / sizeof complex[0]; i++) {
        if (shellcmd_is_simple(complex[i]))
            fail_msg("expected not simple: %s", complex[i]);
    }
    char *copy = shellcmd_for_sh("cd x && ./run");
    assert_string_equal(copy, "cd x && ./run");
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_commands_get_exec),
        cmocka_unit_test(test_shell_constructs_are_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
