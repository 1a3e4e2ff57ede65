/* Unit tests for the per-service log files (logs: {per_service: true}): through a real
 * logfile writer thread, each service's lines land in <Service>.log as plain prefixed lines,
 * rotate between whole lines like the main file, and are reopened on SIGUSR1's call. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "node/logfile.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    snprintf(dir, sizeof dir, "/tmp/devnode-test-servicelog-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct strbuf sb;
    strbuf_init(&sb);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        strbuf_append(&sb, buf, n);
    fclose(f);
    return sb.data ? sb.data : strdup("");
}

static void emit(struct logfile *lf, uint64_t seq, const char *service, int instance, const char *text)
{
    struct log_line line = {
        .seq = seq,
        .wall_ns = 1795434600123456789LL, /* 2026-11-23T11:50:00.123Z */
        .service = service,
        .instance = instance,
        .pid = 4242,
        .stream = LOG_STREAM_STDOUT,
        .text = text,
        .len = strlen(text),
    };
    logfile_on_line(lf, &line);
}

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

static void test_each_service_gets_its_plain_file(void **state)
{
    (void)state;
    struct logfile lf;
    char err[256];
    assert_int_equal(logfile_open(&lf, dir, 0, 5, err, sizeof err), 0);
    logfile_per_service(&lf, dir);
    emit(&lf, 1, "Web", 0, "GET / 200");
    emit(&lf, 2, "Worker", 1, "job \033[31mdone\033[0m");
    emit(&lf, 3, "Web", 1, "GET /x 404");
    logfile_close(&lf);
    char *web = slurp("Web.log"), *worker = slurp("Worker.log"), *main_log = slurp("devnode.jsonl");
    assert_string_equal(web, "2026-11-23 11:50:00.123 Web.0 | GET / 200\n"
                             "2026-11-23 11:50:00.123 Web.1 | GET /x 404\n");
    assert_string_equal(worker, "2026-11-23 11:50:00.123 Worker.1 | job done\n"); /* escapes dropped */
    assert_int_equal(count_lines(main_log), 3);                                  /* the main file as ever */
    free(web);
    free(worker);
    free(main_log);
}

static void test_files_rotate_between_whole_lines_and_keep_keep_files(void **state)
{
    (void)state;
    struct logfile lf;
    char err[256];
    const uint64_t max = 300;
    assert_int_equal(logfile_open(&lf, dir, max, 2, err, sizeof err), 0);
    logfile_per_service(&lf, dir);
    char text[64];
    for (int i = 0; i < 40; i++) {
        snprintf(text, sizeof text, "line %02d of a rotating service", i);
        emit(&lf, (uint64_t)i + 1, "Rot", 0, text);
        if (i % 7 == 0)
            logfile_flush(&lf); /* several writer rounds, so rotation meets files it did not fill itself */
    }
    logfile_close(&lf);
    /* Each line is 62 bytes: four fit in 300, so 40 lines fill ten files; with keep_files 2
     * the newest three files are there, the newest 12 lines. */
    const char *names[] = {"Rot.log.2", "Rot.log.1", "Rot.log"};
    int next = 28;
    for (size_t f = 0; f < 3; f++) {
        char *text_of = slurp(names[f]);
        assert_non_null(text_of);
        struct stat st;
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        assert_int_equal(stat(path, &st), 0);
        assert_true((uint64_t)st.st_size <= max);
        for (char *line = text_of; *line;) {
            char *nl = strchr(line, '\n');
            assert_non_null(nl);
            char want[128];
            snprintf(want, sizeof want, "2026-11-23 11:50:00.123 Rot.0 | line %02d of a rotating service", next++);
            assert_int_equal((size_t)(nl - line), strlen(want));
            assert_memory_equal(line, want, strlen(want));
            line = nl + 1;
        }
        free(text_of);
        assert_int_equal(next, 28 + 4 * (int)(f + 1));
    }
    assert_int_equal(next, 40);
    assert_null(slurp("Rot.log.3"));
}

static void test_reopen_follows_a_moved_file(void **state)
{
    (void)state;
    struct logfile lf;
    char err[256], from[128], to[128];
    assert_int_equal(logfile_open(&lf, dir, 0, 5, err, sizeof err), 0);
    logfile_per_service(&lf, dir);
    emit(&lf, 1, "Mv", 0, "before");
    logfile_sync(&lf);
    snprintf(from, sizeof from, "%s/Mv.log", dir);
    snprintf(to, sizeof to, "%s/Mv.log.old", dir);
    assert_int_equal(rename(from, to), 0);
    emit(&lf, 2, "Mv", 0, "still before");
    logfile_reopen(&lf);
    emit(&lf, 3, "Mv", 0, "after");
    logfile_close(&lf);
    char *old = slurp("Mv.log.old"), *cur = slurp("Mv.log");
    assert_non_null(strstr(old, "| before\n"));
    assert_non_null(strstr(old, "| still before\n"));
    assert_string_equal(cur, "2026-11-23 11:50:00.123 Mv.0 | after\n");
    free(old);
    free(cur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_service_gets_its_plain_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_rotate_between_whole_lines_and_keep_keep_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_follows_a_moved_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
