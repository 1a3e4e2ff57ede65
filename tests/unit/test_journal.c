/* Unit tests for the retained-event journal: offsets across reopen, torn and corrupt tails,
 * retention by whole segments, and sequential reading that follows new appends. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/journal.h"

struct fx {
    char dir[64];
};

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    strcpy(fx->dir, "/tmp/devnode-test-journal-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static struct journal *open_j(struct fx *fx, uint64_t retain, uint64_t per_seg, struct journal_recovery *rep)
{
    struct journal_options o = {.dir = fx->dir, .name = "book", .retain_records = retain,
                                .segment_records = per_seg};
    struct journal *j = NULL;
    char err[256];
    struct journal_recovery local;
    if (journal_open(&j, &o, rep ? rep : &local, err, sizeof err) != 0)
        fail_msg("open: %s", err);
    return j;
}

static void append_n(struct journal *j, uint64_t from, uint64_t n)
{
    for (uint64_t i = from; i < from + n; i++) {
        char rec[64];
        int len = snprintf(rec, sizeof rec, "event-%llu", (unsigned long long)i);
        uint64_t off;
        assert_int_equal(journal_append(j, rec, (size_t)len, &off), 0);
        assert_int_equal(off, i);
    }
}

static void expect_records(struct journal *j, uint64_t from, uint64_t to)
{
    struct journal_reader *r;
    assert_int_equal(journal_reader_open(j, from, &r), 0);
    uint64_t off;
    const void *p;
    size_t len;
    for (uint64_t i = from; i < to; i++) {
        assert_int_equal(journal_reader_next(r, &off, &p, &len), 1);
        assert_int_equal(off, i);
        char want[64];
        int wl = snprintf(want, sizeof want, "event-%llu", (unsigned long long)i);
        assert_int_equal(len, (size_t)wl);
        assert_memory_equal(p, want, len);
    }
    assert_int_equal(journal_reader_next(r, &off, &p, &len), 0);
    journal_reader_close(r);
}

static void test_offsets_survive_reopen(void **state)
{
    struct fx *fx = *state;
    struct journal *j = open_j(fx, 1000, 100, NULL);
    append_n(j, 0, 250);
    journal_close(j);
    struct journal_recovery rep;
    j = open_j(fx, 1000, 100, &rep);
    assert_int_equal(rep.records, 250);
    assert_int_equal(rep.truncated_bytes, 0);
    assert_int_equal(rep.segments, 3);
    assert_int_equal(journal_next_offset(j), 250);
    append_n(j, 250, 10);
    expect_records(j, 0, 260);
    expect_records(j, 123, 260);
    journal_close(j);
}

/* Found by tests/fuzz (fuzz_journal): an empty first record was checksummed with zlib's crc32
 * on a NULL buffer when read back (which returns 0), so reopening cut it and every record after. */
static void test_empty_records_survive_reopen(void **state)
{
    struct fx *fx = *state;
    struct journal *j = open_j(fx, 1000, 100, NULL);
    uint64_t off;
    assert_int_equal(journal_append(j, "", 0, &off), 0);
    assert_int_equal(journal_append(j, "x", 1, &off), 0);
    assert_int_equal(journal_append(j, "", 0, &off), 0);
    journal_close(j);
    struct journal_recovery rep;
    j = open_j(fx, 1000, 100, &rep);
    assert_int_equal(rep.truncated_bytes, 0);
    assert_int_equal(rep.records, 3);
    assert_int_equal(journal_next_offset(j), 3);
    journal_close(j);
}

static void last_segment_path(struct fx *fx, uint64_t first, char *out, size_t cap)
{
    snprintf(out, cap, "%s/book.%016llx.seg", fx->dir, (unsigned long long)first);
}

static void test_torn_tail_is_truncated(void **state)
{
    struct fx *fx = *state;
    struct journal *j = open_j(fx, 1000, 100, NULL);
    append_n(j, 0, 150);
    journal_close(j);
    /* A node killed mid-write leaves half a record: a header claiming 40 bytes, 7 given. */
    char path[256];
    last_segment_path(fx, 100, path, sizeof path);
    int fd = open(path, O_WRONLY | O_APPEND);
    unsigned char torn[16 + 7] = {40, 0, 0, 0, 1, 2, 3, 4, 150, 0, 0, 0, 0, 0, 0, 0, 'p', 'a', 'r', 't', 'i', 'a', 'l'};
    assert_int_equal(write(fd, torn, sizeof torn), (ssize_t)sizeof torn);
    close(fd);
    struct journal_recovery rep;
    j = open_j(fx, 1000, 100, &rep);
    assert_int_equal(rep.records, 150);
    assert_int_equal(rep.truncated_bytes, sizeof torn);
    assert_int_equal(journal_next_offset(j), 150);
    append_n(j, 150, 5);
    expect_records(j, 0, 155);
    journal_close(j);
}

static void test_corrupt_record_cuts_the_rest(void **state)
{
    struct fx *fx = *state;
    struct journal *j = open_j(fx, 1000, 100, NULL);
    append_n(j, 0, 130);
    journal_close(j);
    /* flip a payload byte of record 110 (records in segment 100 are 16 + 9 bytes each) */
    char path[256];
    last_segment_path(fx, 100, path, sizeof path);
    int fd = open(path, O_RDWR);
    off_t at = (off_t)(10 * (16 + 9) + 16 + 2);
    char c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x55;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
    struct journal_recovery rep;
    j = open_j(fx, 1000, 100, &rep);
    assert_int_equal(rep.records, 110);
    assert_int_equal(rep.truncated_bytes, 20 * (16 + 9));
    assert_int_equal(journal_next_offset(j), 110);
    expect_records(j, 0, 110);
    journal_close(j);
}

static void test_retention_drops_whole_old_segments(void **state)
{
    struct fx *fx = *state;
    struct journal *j = open_j(fx, 100, 10, NULL);
    append_n(j, 0, 1000);
    uint64_t first = journal_first_offset(j);
    assert_true(1000 - first >= 100);
    assert_true(1000 - first < 100 + 10);
    expect_records(j, first, 1000);
    /* asking for an offset that is gone starts at the oldest kept */
    struct journal_reader *r;
    assert_int_equal(journal_reader_open(j, 0, &r), 0);
    uint64_t off;
    const void *p;
    size_t len;
    assert_int_equal(journal_reader_next(r, &off, &p, &len), 1);
    assert_int_equal(off, first);
    journal_reader_close(r);
    journal_close(j);
}

static void test_reader_follows_new_appends(void **state)
{
    struct fx *fx = *state;
    struct journal *j = open_j(fx, 1000, 4, NULL);
    append_n(j, 0, 3);
    struct journal_reader *r;
    assert_int_equal(journal_reader_open(j, 0, &r), 0);
    uint64_t off;
    const void *p;
    size_t len;
    for (int i = 0; i < 3; i++)
        assert_int_equal(journal_reader_next(r, &off, &p, &len), 1);
    assert_int_equal(journal_reader_next(r, &off, &p, &len), 0);
    append_n(j, 3, 6); /* crosses into new segments */
    for (uint64_t i = 3; i < 9; i++) {
        assert_int_equal(journal_reader_next(r, &off, &p, &len), 1);
        assert_int_equal(off, i);
    }
    assert_int_equal(journal_reader_next(r, &off, &p, &len), 0);
    journal_reader_close(r);
    journal_close(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_offsets_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_records_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_cuts_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_drops_whole_old_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_follows_new_appends, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
