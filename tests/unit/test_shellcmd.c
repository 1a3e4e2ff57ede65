/* Unit tests for the exec-prefix decision on configured commands. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/shellcmd.h"

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
    char *copy = shellcmd_for_sh("cd x | ./run");
    assert_string_equal(copy, "cd x | ./run");
    free(copy);
}

/* `cd app && gunicorn app:app`: the last simple command of an && / ; chain is exec'd, so
 * LISTEN_PID (the shell's pid) is the server's. */
static void test_chain_ending_in_a_simple_command_execs_its_last_step(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"cd app && gunicorn app:app", "cd app && exec gunicorn app:app"},
        {"cd app; gunicorn app:app", "cd app; exec gunicorn app:app"},
        {"cd a && . ./env && export X=1; ./srv --x", "cd a && . ./env && export X=1; exec ./srv --x"},
        {"cd app&&./srv", "cd app&&exec ./srv"},
        {"FOO=1 ./run", "FOO=1 exec ./run"},
        {"cd x && A=1 B='two words' ./srv", "cd x && A=1 B='two words' exec ./srv"},
        {"cd ${APP_DIR:-app} && ./srv", "cd ${APP_DIR:-app} && exec ./srv"},
        {"cd app && ./srv 2>&1", "cd app && exec ./srv 2>&1"},
        {"./srv >log 2>&1 <&0", "exec ./srv >log 2>&1 <&0"},
        {"cd 'my app' && ./srv \"a;b\"", "cd 'my app' && exec ./srv \"a;b\""},
        {"  sleep 1", "  exec sleep 1"},
        {"echo hi; ./srv", "echo hi; exec ./srv"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = shellcmd_for_sh(cases[i][0]);
        if (strcmp(got, cases[i][1]) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i][0], got, cases[i][1]);
        free(got);
    }
}

/* Anything the inserted exec would change, or that ends in no command the shell can exec. */
static void test_chains_that_cannot_exec_are_left_alone(void **state)
{
    (void)state;
    const char *left[] = {
        "cd app && gunicorn app:app | tee log",
        "cd app && ./srv || ./fallback",
        "./a || ./b",
        "cd app && ./srv &",
        "cd app && ./srv & ./other",
        "./srv &> log",
        "cd app && (./srv)",
        "cd app && { ./srv; }",
        "cd app && ./srv $(cat args)",
        "cd app && ./srv `cat args`",
        "cd app && ./srv \"$(cat args)\"",
        "cd app && ./srv ${X:-$(y)}",
        "cd app && ./srv;",
        "cd app;; ./srv",
        "; ./srv",
        "&& ./srv",
        "cd app &&",
        "cd app\n./srv",
        "cd app && ./srv # comment",
        "./a; cd b",
        "./a && echo done",
        "./a; wait",
        "./a && A=1",
        "if true; then ./a; fi; ./b",
        "while true; do ./a; done",
        "for i in 1; do ./a; done",
        "trap 'echo bye' TERM; ./srv",
        "exec >log; ./srv",
        "cd app && exec >log",
        "cd app && exec",
        "exec ./a; ./b",
        "cd app && \"./my srv\"",
        "cd app && $SRV",
        "cd app && >log ./srv",
        "cd 'app && ./srv",
        "cd app && ./srv \\",
    };
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        if (shellcmd_exec_offset(left[i]) != -1)
            fail_msg("expected no exec: %s", left[i]);
        if (shellcmd_replaces_shell(left[i]))
            fail_msg("expected the shell to stay: %s", left[i]);
        char *got = shellcmd_for_sh(left[i]);
        assert_string_equal(got, left[i]);
        free(got);
    }
}

/* The user's own exec already replaces the shell: nothing to insert, nothing to warn about. */
static void test_a_written_exec_replaces_the_shell(void **state)
{
    (void)state;
    const char *written[] = {"exec ./run", "cd app && exec ./srv --x", "cd app; FOO=1 exec ./srv"};
    for (size_t i = 0; i < sizeof written / sizeof written[0]; i++) {
        assert_int_equal(shellcmd_exec_offset(written[i]), -1);
        if (!shellcmd_replaces_shell(written[i]))
            fail_msg("expected to replace the shell: %s", written[i]);
        char *got = shellcmd_for_sh(written[i]);
        assert_string_equal(got, written[i]);
        free(got);
    }
    assert_true(shellcmd_replaces_shell("cd app && ./srv"));
}

static void test_program_of_a_command(void **state)
{
    (void)state;
    struct { const char *command, *program; int in_list; } cases[] = {
        {"gunicorn --bind fd://$(socket.Web.fd) app:app", "gunicorn", 0},
        {"  exec sleep 1000", "sleep", 0},
        {"PORT=8000 DEBUG=1 ./build/server -v", "./build/server", 0},
        {"cd app && exec gunicorn app:app", "gunicorn", 1},
        {"touch spawned-$DEVNODE_SERVICE; exec sleep 1000", "sleep", 1},
        {"/usr/bin/env python3 x.py 2>&1", "/usr/bin/env", 0},
        {"make build && ./out/bin --flag \"a; b\"", "./out/bin", 1},
        {"producer | consumer", "consumer", 1},
        {"echo \"$(date)\" ; run-it `pwd`", "run-it", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char program[256];
        int in_list = -1;
        if (!shellcmd_program(cases[i].command, program, sizeof program, &in_list))
            fail_msg("no program found in: %s", cases[i].command);
        assert_string_equal(program, cases[i].program);
        assert_int_equal(in_list, cases[i].in_list);
    }
}

static void test_program_left_to_the_shell(void **state)
{
    (void)state;
    const char *unknown[] = {
        "$APP serve", "\"my app\" run", "~/bin/x", "trap '' TERM; while :; do sleep 0.1; done",
        "if true; then run; fi", "(cd x; run)", "echo hi", "run &", "cd x", "exec", "A=1",
        "# nothing", "{ a; }", "*.sh", "echo 'unterminated", "exec -a name run",
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        char program[256];
        int in_list;
        if (shellcmd_program(unknown[i], program, sizeof program, &in_list))
            fail_msg("expected no program for %s, got %s", unknown[i], program);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_commands_get_exec),
        cmocka_unit_test(test_shell_constructs_are_left_alone),
        cmocka_unit_test(test_chain_ending_in_a_simple_command_execs_its_last_step),
        cmocka_unit_test(test_chains_that_cannot_exec_are_left_alone),
        cmocka_unit_test(test_a_written_exec_replaces_the_shell),
        cmocka_unit_test(test_program_of_a_command),
        cmocka_unit_test(test_program_left_to_the_shell),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
