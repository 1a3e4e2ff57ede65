/* Unit tests for catchup: the lines of a seq range come from the current node run only (the
 * files hold earlier runs, each counting from 1), in order, filtered; a later read goes on
 * where the last one stopped, through a rotation in between; records the node has not
 * written yet (or only half) are waited for. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tail/catchup.h"

struct seen {
    char texts[64][32];
    uint64_t seqs[64];
    size_t count;
    const char *append_on_tick;  /* lines to append to devnode.jsonl at the first tick */
    const char *dir;
    int ticks;
};

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/devnode-test-catchup-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void path_of(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Appends records seq first..last of `run` (their text: "RUN SEQ") for service svc. */
static void append(const char *name, const char *run, const char *svc, uint64_t first, uint64_t last)
{
    char path[128];
    path_of(name, path, sizeof path);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    for (uint64_t s = first; s <= last; s++)
        fprintf(f,
                "{\"time\":\"2026-11-23T11:30:00.%06dZ\",\"seq\":%llu,\"service\":\"%s\",\"instance\":0,"
                "\"pid\":7,\"stream\":\"stdout\",\"text\":\"%s %llu\"}\n",
                (int)s, (unsigned long long)s, svc, run, (unsigned long long)s);
    fclose(f);
}

static void append_raw(const char *name, const char *text)
{
    char path[128];
    path_of(name, path, sizeof path);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void rename_file(const char *from, const char *to)
{
    char a[128], b[128];
    path_of(from, a, sizeof a);
    path_of(to, b, sizeof b);
    assert_int_equal(rename(a, b), 0);
}

static int on_line(void *ctx, const struct log_line *line)
{
    struct seen *s = ctx;
    assert_true(s->count < 64);
    snprintf(s->texts[s->count], sizeof s->texts[0], "%.*s", (int)line->len, line->text);
    s->seqs[s->count++] = line->seq;
    return 0;
}

static void on_tick(void *ctx)
{
    struct seen *s = ctx;
    if (s->ticks++ == 0 && s->append_on_tick)
        append_raw("devnode.jsonl", s->append_on_tick);
}

static int64_t read_range(struct catchup *c, struct logfilter *f, uint64_t first, uint64_t last, struct seen *s)
{
    char err[256];
    memset(s, 0, sizeof *s);
    return catchup_read(c, first, last, f, 200, on_line, on_tick, s, err, sizeof err);
}

static void test_the_current_run_only_in_order_and_filtered(void **state)
{
    (void)state;
    append("devnode.jsonl.2", "old", "A", 1, 40);
    append("devnode.jsonl.1", "old", "A", 41, 50);
    append("devnode.jsonl.1", "new", "A", 1, 10);
    append("devnode.jsonl", "new", "A", 11, 20);
    append("devnode.jsonl", "new", "B", 21, 30);
    struct logfilter f;
    logfilter_init(&f);
    struct catchup c;
    catchup_init(&c, dir);
    struct seen s;
    assert_int_equal(read_range(&c, &f, 5, 12, &s), 8);
    assert_string_equal(s.texts[0], "new 5");
    assert_string_equal(s.texts[7], "new 12");
    for (size_t i = 0; i < s.count; i++)
        assert_int_equal(s.seqs[i], 5 + i);

    char err[256];
    assert_int_equal(logfilter_add_target(&f, "B", err, sizeof err), 0);
    assert_int_equal(read_range(&c, &f, 13, 25, &s), 5);
    assert_string_equal(s.texts[0], "new 21");
    assert_string_equal(s.texts[4], "new 25");
    logfilter_free(&f);
}

static void test_a_later_read_goes_on_through_a_rotation(void **state)
{
    (void)state;
    append("devnode.jsonl", "run", "A", 1, 20);
    struct logfilter f;
    logfilter_init(&f);
    struct catchup c;
    catchup_init(&c, dir);
    struct seen s;
    assert_int_equal(read_range(&c, &f, 3, 4, &s), 2);
    /* The node rotates: the file we read becomes .1 and a new one starts. */
    rename_file("devnode.jsonl", "devnode.jsonl.1");
    append("devnode.jsonl", "run", "A", 21, 30);
    assert_int_equal(read_range(&c, &f, 18, 23, &s), 6);
    assert_string_equal(s.texts[0], "run 18");
    assert_string_equal(s.texts[5], "run 23");
    /* Twice more, with a read position in between. */
    rename_file("devnode.jsonl.1", "devnode.jsonl.2");
    rename_file("devnode.jsonl", "devnode.jsonl.1");
    append("devnode.jsonl", "run", "A", 31, 40);
    assert_int_equal(read_range(&c, &f, 30, 32, &s), 3);
    assert_int_equal(s.seqs[0], 30);
    assert_int_equal(s.seqs[2], 32);
    logfilter_free(&f);
}

static void test_records_not_written_yet_are_waited_for(void **state)
{
    (void)state;
    append("devnode.jsonl", "run", "A", 1, 10);
    /* A torn last record: the node is writing it. */
    append_raw("devnode.jsonl", "{\"time\":\"2026-11-23T11:30:00.000011Z\",\"seq\":11,\"serv");
    struct logfilter f;
    logfilter_init(&f);
    struct catchup c;
    catchup_init(&c, dir);
    struct seen s;
    memset(&s, 0, sizeof s);
    s.append_on_tick = "ice\":\"A\",\"instance\":0,\"pid\":7,\"stream\":\"stdout\",\"text\":\"run 11\"}\n";
    char err[256];
    assert_int_equal(catchup_read(&c, 9, 11, &f, 2000, on_line, on_tick, &s, err, sizeof err), 3);
    assert_string_equal(s.texts[2], "run 11");
    /* Never written: given up after the wait, with what there is. */
    assert_int_equal(read_range(&c, &f, 12, 14, &s), 0);
    logfilter_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_the_current_run_only_in_order_and_filtered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_later_read_goes_on_through_a_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_not_written_yet_are_waited_for, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
