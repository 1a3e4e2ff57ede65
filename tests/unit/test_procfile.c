/* Unit tests for the Procfile parser, its .lymph.yml rendering and foreman's formation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"
#include "config/procfile.h"
#include "config/yamltree.h"

static int parse(const char *text, struct procfile *pf, char *err, size_t errlen)
{
    return procfile_parse("Procfile", text, strlen(text), pf, err, errlen);
}

static void test_entries_comments_blank_lines_crlf(void **state)
{
    (void)state;
    struct procfile pf;
    char err[256];
    const char *text = "\xef\xbb\xbf# the app\n"
                       "web: bundle exec puma -p $PORT  \r\n"
                       "\n"
                       "   \t\n"
                       "  # indented comment\n"
                       "worker_2:python worker.py # not a comment: the shell's\n"
                       "a-b:\t\tsleep 1";
    assert_int_equal(parse(text, &pf, err, sizeof err), 0);
    assert_int_equal(pf.count, 3);
    assert_string_equal(pf.entries[0].name, "web");
    assert_string_equal(pf.entries[0].command, "bundle exec puma -p $PORT");
    assert_int_equal(pf.entries[0].line, 2);
    assert_string_equal(pf.entries[1].name, "worker_2");
    assert_string_equal(pf.entries[1].command, "python worker.py # not a comment: the shell's");
    assert_int_equal(pf.entries[1].line, 6);
    assert_string_equal(pf.entries[2].name, "a-b");
    assert_string_equal(pf.entries[2].command, "sleep 1");
    procfile_free(&pf);

    /* Found by fuzz_procfile: stray CRs before the line end are not part of the command. */
    assert_int_equal(parse("web: ./srv\r\r\n", &pf, err, sizeof err), 0);
    assert_string_equal(pf.entries[0].command, "./srv");
    procfile_free(&pf);
}

static void expect_error(const char *text, const char *message)
{
    struct procfile pf;
    char err[256] = "";
    assert_int_equal(parse(text, &pf, err, sizeof err), -1);
    if (!strstr(err, message))
        fail_msg("for %s: expected '%s' in '%s'", text, message, err);
    assert_null(pf.entries);
    assert_int_equal(pf.count, 0);
}

static void test_errors_name_line_and_column(void **state)
{
    (void)state;
    expect_error("web: a\nweb.1: b\n", "Procfile:2:4: expected NAME: COMMAND");
    expect_error("web: a\nworker b\n", "Procfile:2:7: expected ':' after 'worker'");
    expect_error("web:   \n", "Procfile:1:8: web has no command");
    expect_error("web: a\n\nweb: b\n", "Procfile:3:1: web is defined twice (first at line 1)");
    expect_error("web: a\xff\n", "Procfile:1:7: the command is not valid UTF-8");
    expect_error("web: \xed\xa0\x80\n", "not valid UTF-8"); /* a surrogate */
    expect_error("web: \xc0\xaf\n", "not valid UTF-8");     /* overlong */
    expect_error("# only comments\n\n", "Procfile: no process in it");
    expect_error("", "Procfile: no process in it");
    expect_error(": x\n", "Procfile:1:1: expected NAME: COMMAND");
    char longname[128];
    memset(longname, 'a', 64);
    strcpy(longname + 64, ": x\n");
    expect_error(longname, "Procfile:1:1: process name longer than 63");

    struct procfile pf;
    char err[256];
    assert_int_equal(procfile_parse("Procfile", "web: a\0b\n", 9, &pf, err, sizeof err), -1);
    assert_string_equal(err, "Procfile:1:7: a NUL byte is not allowed in a Procfile");
}

static void test_procfile_names(void **state)
{
    (void)state;
    assert_true(procfile_is_procfile("Procfile"));
    assert_true(procfile_is_procfile("/x/y/Procfile"));
    assert_true(procfile_is_procfile("Procfile.dev"));
    assert_false(procfile_is_procfile("/x/Procfile.yml"));
    assert_false(procfile_is_procfile("Procfile.YAML"));
    assert_false(procfile_is_procfile("Procfile."));
    assert_false(procfile_is_procfile("/Procfile/.lymph.yml"));
    assert_false(procfile_is_procfile("MyProcfile"));
}

/* The rendered YAML must read back to exactly the entries, whatever bytes the command holds. */
static void test_yaml_reads_back_byte_for_byte(void **state)
{
    (void)state;
    const char *text = "web: echo \"a\\\\b\" 'c' $PORT $(env.X) \t tab\n"
                       "null: printf '\x01\x7f \xc2\x85 \xef\xbb\xbf \xc2\xa0 \xf0\x9f\x98\x80'\n"
                       "1st: : x # y\n"
                       "-dash: - a\n";
    struct procfile pf;
    char err[256];
    assert_int_equal(parse(text, &pf, err, sizeof err), 0);
    int counts[] = {2, 0, 1, 1000};
    char *yaml = procfile_to_yaml(&pf, counts, "Procfile");
    struct ydiag d = {err, sizeof err};
    struct ynode *root = NULL;
    if (ytree_parse_text(&d, "gen", yaml, strlen(yaml), &root) < 0)
        fail_msg("%s\n%s", err, yaml);
    const struct ynode *inst = root->kids[1];
    assert_string_equal(root->kids[0]->text, "instances");
    assert_int_equal(ynode_pairs(inst), pf.count);
    for (size_t i = 0; i < pf.count; i++) {
        assert_string_equal(inst->kids[2 * i]->text, pf.entries[i].name);
        const struct ynode *svc = inst->kids[2 * i + 1];
        assert_string_equal(svc->kids[0]->text, "command");
        assert_string_equal(svc->kids[1]->text, pf.entries[i].command);
        assert_string_equal(svc->kids[2]->text, "numprocesses");
        char n[16];
        snprintf(n, sizeof n, "%d", counts[i]);
        assert_string_equal(svc->kids[3]->text, n);
    }
    ytree_free(root);
    free(yaml);
    procfile_free(&pf);
}

static void test_formation(void **state)
{
    (void)state;
    struct procfile_formation f;
    char err[256];
    assert_int_equal(procfile_formation_parse("web=2, worker = 1", &f, err, sizeof err), 0);
    assert_int_equal(procfile_formation_count(&f, "web"), 2);
    assert_int_equal(procfile_formation_count(&f, "worker"), 1);
    assert_int_equal(procfile_formation_count(&f, "clock"), 0); /* foreman: not named, not run */
    procfile_formation_free(&f);

    assert_int_equal(procfile_formation_parse("all=3,web=0", &f, err, sizeof err), 0);
    assert_int_equal(procfile_formation_count(&f, "web"), 0);
    assert_int_equal(procfile_formation_count(&f, "clock"), 3);
    procfile_formation_free(&f);

    const char *bad[] = {"", "web", "web=", "web=x", "web=2,", "=2", "web=1001", "web=1,web=2", "web=-1",
                         "web.1=2", "web=2 3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (procfile_formation_parse(bad[i], &f, err, sizeof err) == 0)
            fail_msg("accepted formation '%s'", bad[i]);
        assert_null(f.names);
    }
    assert_int_equal(procfile_formation_parse("web=1,web=2", &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "web is given twice"));
}

/* config_load reads a Procfile through the same key table; its messages name the Procfile's
 * own line and column, not those of the YAML it stands for. */
static void test_config_load_places_messages_in_the_procfile(void **state)
{
    (void)state;
    char dir[] = "/tmp/devnode-test-procfile-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/Procfile", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("# app\n\nweb: sleep 1\n  worker:   echo $(env.DEVNODE_TEST_SURELY_UNSET)\n", f);
    fclose(f);
    unsetenv("DEVNODE_TEST_SURELY_UNSET");
    struct config cfg;
    char err[512], want[600];
    assert_int_equal(config_load(path, NULL, &cfg, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:4:13: instances.worker.command: undefined variable $(env.DEVNODE_TEST_SURELY_UNSET)",
             path);
    assert_string_equal(err, want);
    assert_int_equal(config_load_unresolved(path, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.service_count, 2);
    assert_string_equal(cfg.services[0].name, "web");
    assert_string_equal(cfg.services[0].command, "sleep 1");
    assert_int_equal(cfg.services[0].numprocesses, 1);
    assert_int_equal(cfg.services[1].line, 4);
    assert_int_equal(cfg.services[1].command_line, 4);
    assert_int_equal(cfg.services[1].command_col, 13);
    assert_int_equal(cfg.port_base, 5000);
    assert_int_equal(cfg.services[1].port_first, 5100);
    config_free(&cfg);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_comments_blank_lines_crlf),
        cmocka_unit_test(test_errors_name_line_and_column),
        cmocka_unit_test(test_procfile_names),
        cmocka_unit_test(test_yaml_reads_back_byte_for_byte),
        cmocka_unit_test(test_formation),
        cmocka_unit_test(test_config_load_places_messages_in_the_procfile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
