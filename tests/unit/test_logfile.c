/* Unit tests for logfile: lines staged on the caller's thread come out of the writer thread
 * as whole JSON lines, in order, with every field; rotation splits only between lines; a
 * failing write is reported through logfile_flush and logfile_health and recovers. Run
 * under ASan+UBSan like every unit test, so the hand-over between threads is checked too. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/logfile.h"

struct dir {
    char path[64];
};

static void make_dir(struct dir *d)
{
    snprintf(d->path, sizeof d->path, "/tmp/devnode-test-logfile-XXXXXX");
    assert_non_null(mkdtemp(d->path));
}

static void remove_dir(struct dir *d)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->path);
    assert_int_equal(system(cmd), 0);
}

static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        *len = 0;
        return NULL;
    }
    struct strbuf sb;
    strbuf_init(&sb);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        strbuf_append(&sb, buf, n);
    fclose(f);
    *len = sb.len;
    if (!sb.data)
        return strdup("");
    return sb.data; /* ownership moves to the caller */
}

/* A logfile in a new temporary directory, d. */
static void open_in_new_dir(struct dir *d, struct logfile *lf, uint64_t max_bytes, unsigned keep_files)
{
    make_dir(d);
    char err[256];
    if (logfile_open(lf, d->path, max_bytes, keep_files, err, sizeof err) != 0)
        fail_msg("logfile_open: %s", err);
}

static void emit(struct logfile *lf, uint64_t seq, const char *service, const char *text, const char *trace)
{
    struct log_line line = {
        .seq = seq,
        .wall_ns = 1795434600123456789LL, /* 2026-11-23T11:50:00.123456789Z */
        .service = service,
        .instance = 2,
        .pid = 4242,
        .stream = LOG_STREAM_STDERR,
        .level = LOG_LEVEL_WARNING,
        .flags = seq % 2 ? LOG_LINE_SPLIT : 0,
        .text = text,
        .len = strlen(text),
    };
    snprintf(line.trace_id, sizeof line.trace_id, "%s", trace);
    logfile_on_line(lf, &line);
}

/* Every line is one JSON object with the fields it was given; many lines keep their order. */
static void test_lines_come_out_whole_and_in_order(void **state)
{
    (void)state;
    struct dir d;
    struct logfile lf;
    open_in_new_dir(&d, &lf, 0, 3);
    emit(&lf, 1, "Greeting", "hello \"quoted\"\n\x01", "abc-1");
    enum { MANY = 50000 };
    char text[64];
    for (int i = 2; i <= MANY; i++) {
        snprintf(text, sizeof text, "line %d", i);
        emit(&lf, (uint64_t)i, i % 3 ? "Web" : "Listen", text, "");
        if (i % 1000 == 0)
            assert_int_equal(logfile_flush(&lf), 0);
    }
    logfile_sync(&lf);
    size_t len;
    char *data = read_file(d.path, LOGFILE_NAME, &len);
    assert_non_null(data);
    char *line = data, *nl;
    int count = 0;
    while ((nl = memchr(line, '\n', (size_t)(data + len - line))) != NULL) {
        *nl = '\0';
        json_error_t jerr;
        json_t *obj = json_loads(line, 0, &jerr);
        if (!obj)
            fail_msg("line %d is not JSON: %s: %s", count + 1, jerr.text, line);
        count++;
        assert_int_equal(json_integer_value(json_object_get(obj, "seq")), count);
        if (count == 1) {
            assert_string_equal(json_string_value(json_object_get(obj, "time")), "2026-11-23T11:50:00.123456Z");
            assert_string_equal(json_string_value(json_object_get(obj, "service")), "Greeting");
            assert_int_equal(json_integer_value(json_object_get(obj, "instance")), 2);
            assert_int_equal(json_integer_value(json_object_get(obj, "pid")), 4242);
            assert_string_equal(json_string_value(json_object_get(obj, "stream")), "stderr");
            assert_string_equal(json_string_value(json_object_get(obj, "level")), "warning");
            assert_string_equal(json_string_value(json_object_get(obj, "trace_id")), "abc-1");
            assert_true(json_is_true(json_object_get(obj, "split")));
            assert_string_equal(json_string_value(json_object_get(obj, "text")), "hello \"quoted\"\n\x01");
        } else {
            snprintf(text, sizeof text, "line %d", count);
            assert_string_equal(json_string_value(json_object_get(obj, "text")), text);
            assert_null(json_object_get(obj, "trace_id"));
        }
        json_decref(obj);
        line = nl + 1;
    }
    assert_int_equal(count, MANY);
    assert_ptr_equal(line, data + len); /* nothing after the last newline */
    uint64_t lost;
    int last_errno;
    logfile_health(&lf, &lost, &last_errno);
    assert_int_equal(lost, 0);
    assert_int_equal(last_errno, 0);
    free(data);
    logfile_close(&lf);
    remove_dir(&d);
}

/* Past max_bytes the file moves to .1 (and .1 to .2), always between whole lines. */
static void test_rotation_splits_only_between_lines(void **state)
{
    (void)state;
    struct dir d;
    struct logfile lf;
    open_in_new_dir(&d, &lf, 20000, 2);
    char text[200];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    for (int i = 1; i <= 300; i++) {
        emit(&lf, (uint64_t)i, "Burst", text, "");
        logfile_flush(&lf);
    }
    logfile_close(&lf);
    int total = 0;
    const char *names[] = {LOGFILE_NAME ".2", LOGFILE_NAME ".1", LOGFILE_NAME};
    int last_seq = -1;
    for (size_t k = 0; k < 3; k++) {
        size_t len;
        char *data = read_file(d.path, names[k], &len);
        assert_non_null(data);
        assert_true(len <= 20000);
        assert_true(len > 0 && data[len - 1] == '\n');
        for (char *p = data; (p = strstr(p, "\"seq\":")) != NULL; p++) {
            int seq = atoi(p + 6);
            if (last_seq >= 0)
                assert_int_equal(seq, last_seq + 1);
            last_seq = seq;
            total++;
        }
        free(data);
    }
    assert_int_equal(last_seq, 300);
    assert_true(total < 300); /* the oldest file went past keep_files */
    remove_dir(&d);
}

/* A write that fails (the file's directory replaced by nothing writable) is reported and the
 * lines are kept; once writing works again they all arrive. */
static void test_a_failing_write_is_reported_and_recovers(void **state)
{
    (void)state;
    struct dir d;
    struct logfile lf;
    open_in_new_dir(&d, &lf, 0, 1);
    /* /dev/full fails every write with ENOSPC. */
    int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (full < 0) {
        logfile_close(&lf);
        remove_dir(&d);
        skip();
    }
    int saved = dup(lf.fd);
    logfile_sync(&lf);
    dup2(full, lf.fd); /* the writer is idle: its fd now points at /dev/full */
    emit(&lf, 1, "Web", "kept while the disk is full", "");
    logfile_sync(&lf);
    assert_int_equal(logfile_flush(&lf), -ENOSPC);
    uint64_t lost;
    int last_errno;
    logfile_health(&lf, &lost, &last_errno);
    assert_int_equal(last_errno, ENOSPC);
    assert_int_equal(lost, 0);
    dup2(saved, lf.fd); /* the disk has room again */
    close(saved);
    close(full);
    emit(&lf, 2, "Web", "after", "");
    logfile_sync(&lf);
    logfile_health(&lf, &lost, &last_errno);
    assert_int_equal(last_errno, 0);
    logfile_close(&lf);
    size_t len;
    char *data = read_file(d.path, LOGFILE_NAME, &len);
    assert_non_null(strstr(data, "kept while the disk is full"));
    assert_non_null(strstr(data, "\"text\":\"after\""));
    assert_true(strstr(data, "kept while") < strstr(data, "\"text\":\"after\""));
    free(data);
    remove_dir(&d);
}

/* A line larger than a staging chunk (256 KiB) gets a chunk of its own and keeps its place
 * between the lines around it, also when chunks are reused many times over. */
static void test_a_line_larger_than_a_chunk_keeps_its_place(void **state)
{
    (void)state;
    struct dir d;
    struct logfile lf;
    open_in_new_dir(&d, &lf, 0, 1);
    enum { BIG = 300 * 1024, LINES = 4000 };
    char *big = malloc(BIG + 1);
    assert_non_null(big);
    memset(big, 'b', BIG);
    big[BIG] = '\0';
    char text[128];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    for (int i = 1; i <= LINES; i++)
        emit(&lf, (uint64_t)i, "Burst", i == LINES / 2 ? big : text, "");
    logfile_close(&lf);
    size_t len;
    char *data = read_file(d.path, LOGFILE_NAME, &len);
    assert_non_null(data);
    int count = 0;
    for (char *line = data, *nl; (nl = memchr(line, '\n', (size_t)(data + len - line))) != NULL; line = nl + 1) {
        count++;
        char *seq = strstr(line, "\"seq\":");
        assert_non_null(seq);
        assert_int_equal(atoi(seq + 6), count);
        size_t text_len = (size_t)(nl - strstr(line, "\"text\":\"")) - 10; /* minus the key and "} */
        assert_int_equal(text_len, count == LINES / 2 ? (size_t)BIG : sizeof text - 1);
    }
    assert_int_equal(count, LINES);
    free(data);
    free(big);
    remove_dir(&d);
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; p && *p; p++)
        n += *p == '\n';
    return n;
}

/* logrotate: the file is moved away, then a reopen; lines staged before the reopen (handed
 * over or not) stay in the moved file, lines after it start the new one, none is lost. */
static void test_reopen_after_a_move_splits_between_lines(void **state)
{
    (void)state;
    struct dir d;
    struct logfile lf;
    open_in_new_dir(&d, &lf, 0, 5);
    for (uint64_t seq = 1; seq <= 1000; seq++) {
        emit(&lf, seq, "Svc", "before the move", NULL);
        if (seq == 500)
            logfile_flush(&lf); /* some handed over, some still staged */
    }
    char from[256], to[256];
    snprintf(from, sizeof from, "%s/%s", d.path, LOGFILE_NAME);
    snprintf(to, sizeof to, "%s/moved.jsonl", d.path);
    assert_int_equal(rename(from, to), 0);
    logfile_reopen(&lf);
    for (uint64_t seq = 1001; seq <= 1300; seq++)
        emit(&lf, seq, "Svc", "after the reopen", NULL);
    logfile_sync(&lf);
    size_t old_len, new_len;
    char *old_text = read_file(d.path, "moved.jsonl", &old_len);
    char *new_text = read_file(d.path, LOGFILE_NAME, &new_len);
    assert_non_null(old_text);
    assert_non_null(new_text);
    assert_int_equal(count_lines(old_text), 1000);
    assert_int_equal(count_lines(new_text), 300);
    assert_null(strstr(old_text, "after the reopen"));
    assert_null(strstr(new_text, "before the move"));
    assert_non_null(strstr(new_text, "\"seq\":1001,"));
    free(old_text);
    free(new_text);
    logfile_close(&lf);
    remove_dir(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_come_out_whole_and_in_order),
        cmocka_unit_test(test_rotation_splits_only_between_lines),
        cmocka_unit_test(test_a_failing_write_is_reported_and_recovers),
        cmocka_unit_test(test_a_line_larger_than_a_chunk_keeps_its_place),
        cmocka_unit_test(test_reopen_after_a_move_splits_between_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
