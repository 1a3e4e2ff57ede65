/* Unit tests for configdiff: two real configs loaded from a temp dir, and the list of what a
 * reload does between them (start, stop, roll and why, scale, untouched), the PORT blocks a
 * reload keeps, and what it refuses. Runs under ASan: a leak is a failure. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/configdiff.h"

struct fixture {
    char dir[64];
    char path[128];
    char dotenv[128];
    struct config old, updated;
    struct configdiff diff;
    char err[512];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/devnode-configdiff-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/.lymph.yml", fx->dir);
    snprintf(fx->dotenv, sizeof fx->dotenv, "%s/.env", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    configdiff_free(&fx->diff);
    config_free(&fx->old);
    config_free(&fx->updated);
    unlink(fx->path);
    unlink(fx->dotenv);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void load(struct fixture *fx, const char *yaml, struct config *cfg)
{
    write_file(fx->path, yaml);
    int rc = config_load(fx->path, NULL, cfg, fx->err, sizeof fx->err);
    if (rc)
        print_error("%s\n", fx->err);
    assert_int_equal(rc, 0);
    assert_int_equal(config_check_ports(cfg, fx->path, 0, fx->err, sizeof fx->err), 0);
}

/* Loads both and diffs them; returns configdiff_compute's result. */
static int diff(struct fixture *fx, const char *before, const char *after)
{
    load(fx, before, &fx->old);
    load(fx, after, &fx->updated);
    return configdiff_compute(&fx->old, &fx->updated, &fx->diff, fx->err, sizeof fx->err);
}

static const struct configdiff_action *action(struct fixture *fx, const char *name)
{
    for (size_t i = 0; i < fx->diff.count; i++)
        if (strcmp(fx->diff.actions[i].name, name) == 0)
            return &fx->diff.actions[i];
    fail_msg("no action for %s", name);
    return NULL;
}

static void assert_described(const struct configdiff_action *a, const char *expected)
{
    char buf[256];
    configdiff_describe(a, buf, sizeof buf);
    assert_string_equal(buf, expected);
}

static void test_identical_configs_change_nothing(void **state)
{
    struct fixture *fx = *state;
    const char *yaml = "instances:\n  A: {command: a, numprocesses: 2}\n  B: {command: b}\n";
    assert_int_equal(diff(fx, yaml, yaml), 0);
    assert_int_equal(fx->diff.count, 2);
    assert_int_equal(fx->diff.unchanged, 2);
    assert_int_equal(fx->diff.watch_changed, 0);
    assert_described(action(fx, "A"), "unchanged");
}

static void test_added_removed_and_changed_services(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(diff(fx,
                          "instances:\n  A: {command: a}\n  B: {command: b}\n  C: {command: c, numprocesses: 2}\n"
                          "  D: {command: d, cwd: /tmp}\n",
                          "instances:\n  A: {command: a}\n  B: {command: b2}\n  C: {command: c, numprocesses: 3}\n"
                          "  D: {command: d}\n  E: {command: e}\n"),
                     0);
    assert_int_equal(fx->diff.count, 5);
    assert_int_equal(fx->diff.unchanged, 1);
    assert_int_equal(action(fx, "A")->kind, CONFIGDIFF_UNCHANGED);
    assert_int_equal(action(fx, "B")->kind, CONFIGDIFF_CHANGE);
    assert_int_equal(action(fx, "B")->reasons, CONFIGDIFF_COMMAND);
    assert_described(action(fx, "B"), "rolled (command changed)");
    assert_int_equal(action(fx, "C")->reasons, CONFIGDIFF_NUMPROCESSES);
    assert_described(action(fx, "C"), "scaled 2\u21923");
    assert_described(action(fx, "D"), "rolled (cwd changed)");
    assert_int_equal(action(fx, "E")->kind, CONFIGDIFF_START);
    assert_null(action(fx, "E")->old_svc);

    struct configdiff_action *last = &fx->diff.actions[fx->diff.count - 1];
    assert_string_equal(last->name, "E"); /* no stop here: every old name is still there */
    configdiff_free(&fx->diff);
    assert_int_equal(configdiff_compute(&fx->updated, &fx->old, &fx->diff, fx->err, sizeof fx->err), 0);
    assert_int_equal(action(fx, "E")->kind, CONFIGDIFF_STOP);
    assert_null(action(fx, "E")->new_svc);
    assert_described(action(fx, "E"), "stopped");
}

static void test_env_from_dotenv_rolls(void **state)
{
    struct fixture *fx = *state;
    const char *yaml = "instances:\n  A: {command: a}\n  B: {command: b, env: {X: '1'}}\n";
    write_file(fx->dotenv, "GREETING=hello\n");
    load(fx, yaml, &fx->old);
    write_file(fx->dotenv, "GREETING=bonjour\n");
    load(fx, yaml, &fx->updated);
    assert_int_equal(configdiff_compute(&fx->old, &fx->updated, &fx->diff, fx->err, sizeof fx->err), 0);
    /* .env reaches every service's environment */
    assert_int_equal(action(fx, "A")->reasons, CONFIGDIFF_ENV);
    assert_described(action(fx, "B"), "rolled (env changed)");
}

static void test_several_reasons_and_settings(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(diff(fx, "instances:\n  A: {command: a, numprocesses: 1}\n",
                          "instances:\n  A: {command: a2, numprocesses: 2, ready: {delay: 1s}, stop_timeout: 3s}\n"),
                     0);
    const struct configdiff_action *a = action(fx, "A");
    assert_int_equal(a->reasons, CONFIGDIFF_COMMAND | CONFIGDIFF_READY | CONFIGDIFF_NUMPROCESSES | CONFIGDIFF_SETTINGS);
    assert_described(a, "rolled (command, ready changed), scaled 1\u21922, updated (settings changed)");
}

static void test_probes_and_terminal_roll(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(diff(fx, "instances:\n  A: {command: a, live: {tcp: 5000}}\n  B: {command: b}\n",
                          "instances:\n  A: {command: a, live: {tcp: 5001}}\n  B: {command: b, tty: true}\n"),
                     0);
    assert_described(action(fx, "A"), "rolled (live changed)");
    assert_described(action(fx, "B"), "rolled (stdin/tty changed)");
}

static void test_watch_change_is_noted(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(diff(fx, "instances:\n  A: {command: a}\n", "instances:\n  A: {command: a, watch: [src/]}\n"), 0);
    assert_int_equal(fx->diff.watch_changed, 1);
    assert_described(action(fx, "A"), "updated (watch changed)");
}

static void test_port_blocks_are_kept(void **state)
{
    struct fixture *fx = *state;
    /* A new service first in the file would take block 5000 by position: A and B keep theirs. */
    assert_int_equal(diff(fx, "instances:\n  A: {command: a}\n  B: {command: b}\n",
                          "instances:\n  N: {command: n}\n  A: {command: a}\n  B: {command: b}\n"),
                     0);
    assert_int_equal(action(fx, "A")->new_svc->port_first, 5000);
    assert_int_equal(action(fx, "B")->new_svc->port_first, 5100);
    assert_int_equal(action(fx, "N")->new_svc->port_first, 5200);
    assert_int_equal(action(fx, "A")->kind, CONFIGDIFF_UNCHANGED);
}

static void test_freed_block_is_reused(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(diff(fx, "instances:\n  A: {command: a}\n  B: {command: b}\n",
                          "instances:\n  B: {command: b}\n  C: {command: c}\n"),
                     0);
    assert_int_equal(action(fx, "B")->new_svc->port_first, 5100);
    assert_int_equal(action(fx, "C")->new_svc->port_first, 5000);
    assert_int_equal(action(fx, "A")->kind, CONFIGDIFF_STOP);
}

static void test_socket_moves_are_left_to_the_node(void **state)
{
    struct fixture *fx = *state;
    /* The node rebinds and rolls by the sockets it really passes; the file's service did not change. */
    assert_int_equal(diff(fx, "sockets: {web: {port: 4080}}\ninstances:\n  A: {command: a, sockets: [web]}\n",
                          "sockets: {web: {port: 4081}}\ninstances:\n  A: {command: a, sockets: [web]}\n"),
                     0);
    assert_int_equal(action(fx, "A")->kind, CONFIGDIFF_UNCHANGED);
}

static void test_a_service_given_another_socket_rolls(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(diff(fx, "sockets: {a: {port: 4080}, b: {port: 4081}}\ninstances:\n  A: {command: x, sockets: [a]}\n",
                          "sockets: {a: {port: 4080}, b: {port: 4081}}\ninstances:\n  A: {command: x, sockets: [b]}\n"),
                     0);
    assert_described(action(fx, "A"), "rolled (sockets changed)");
}

static void test_logs_change_is_refused(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(diff(fx, "instances:\n  A: {command: a}\n",
                          "logs: {buffer_lines: 1000}\ninstances:\n  A: {command: a}\n"),
                     -1);
    assert_string_equal(fx->err, "logs changed: restart the node to apply");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identical_configs_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_added_removed_and_changed_services, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_from_dotenv_rolls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_reasons_and_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probes_and_terminal_roll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_change_is_noted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_blocks_are_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freed_block_is_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_moves_are_left_to_the_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_service_given_another_socket_rolls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_change_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
