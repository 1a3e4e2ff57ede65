/* Unit tests for the line framer: line ends, CRLF, long-line splitting, binary data,
 * flush, and a seeded property test that chunking never changes the records. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/framer.h"

/* Every record the framer emitted, copied (the callback's text is only valid during
 * the call), so tests can compare them after the fact. */
struct record {
    char *text;
    size_t len;
    unsigned flags;
};

struct records {
    struct record *v;
    size_t n;
    size_t cap;
};

static void collect(void *ctx, const char *text, size_t len, unsigned flags)
{
    struct records *r = ctx;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = realloc(r->v, r->cap * sizeof r->v[0]);
        assert_non_null(r->v);
    }
    struct record *rec = &r->v[r->n++];
    rec->text = malloc(len ? len : 1);
    assert_non_null(rec->text);
    if (len)
        memcpy(rec->text, text, len);
    rec->len = len;
    rec->flags = flags;
}

static void records_free(struct records *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].text);
    free(r->v);
    memset(r, 0, sizeof *r);
}

static void assert_record(const struct records *r, size_t i, const char *text, size_t len, unsigned flags)
{
    assert_true(i < r->n);
    assert_int_equal(r->v[i].len, len);
    assert_int_equal(r->v[i].flags, flags);
    if (len)
        assert_memory_equal(r->v[i].text, text, len);
}

#define ASSERT_LINE(r, i, s) assert_record(r, i, s, sizeof(s) - 1, 0)

/* Feeds a string literal in one go and flushes. */
static void frame_all(const char *data, size_t len, struct records *r)
{
    struct framer f;
    framer_init(&f);
    assert_int_equal(framer_feed(&f, data, len, collect, r), 0);
    framer_flush(&f, collect, r);
    framer_free(&f);
}

static void test_simple_lines(void **state)
{
    (void)state;
    struct records r = {0};
    frame_all("hello\nworld\n", 12, &r);
    assert_int_equal(r.n, 2);
    ASSERT_LINE(&r, 0, "hello");
    ASSERT_LINE(&r, 1, "world");
    records_free(&r);
}

static void test_one_byte_at_a_time(void **state)
{
    (void)state;
    const char *in = "first line\nsecond\r\n\nthird";
    struct records r = {0};
    struct framer f;
    framer_init(&f);
    for (size_t i = 0; i < strlen(in); i++)
        assert_int_equal(framer_feed(&f, in + i, 1, collect, &r), 0);
    assert_int_equal(r.n, 3);
    framer_flush(&f, collect, &r);
    assert_int_equal(r.n, 4);
    ASSERT_LINE(&r, 0, "first line");
    ASSERT_LINE(&r, 1, "second");
    ASSERT_LINE(&r, 2, "");
    assert_record(&r, 3, "third", 5, FRAMER_UNTERMINATED);
    framer_free(&f);
    records_free(&r);
}

static void test_many_lines_one_feed(void **state)
{
    (void)state;
    char buf[10000];
    size_t len = 0;
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "l%d\n", i);
    struct records r = {0};
    frame_all(buf, len, &r);
    assert_int_equal(r.n, 1000);
    for (int i = 0; i < 1000; i++) {
        char want[16];
        int n = snprintf(want, sizeof want, "l%d", i);
        assert_record(&r, (size_t)i, want, (size_t)n, 0);
    }
    records_free(&r);
}

static void test_crlf_and_lone_cr(void **state)
{
    (void)state;
    struct records r = {0};
    const char in[] = "dos\r\nprogress 10%\rprogress 20%\nend\r\r\n\r\nx\ry\r";
    frame_all(in, sizeof in - 1, &r);
    assert_int_equal(r.n, 5);
    ASSERT_LINE(&r, 0, "dos");
    ASSERT_LINE(&r, 1, "progress 10%\rprogress 20%");
    ASSERT_LINE(&r, 2, "end\r"); /* only the "\r" right before "\n" goes */
    ASSERT_LINE(&r, 3, "");
    /* no "\n" came after the last "\r": it is text */
    assert_record(&r, 4, "x\ry\r", 4, FRAMER_UNTERMINATED);
    records_free(&r);

    /* CRLF cut between two feeds */
    struct framer f;
    framer_init(&f);
    assert_int_equal(framer_feed(&f, "abc\r", 4, collect, &r), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(framer_feed(&f, "\ndef\r", 5, collect, &r), 0);
    assert_int_equal(framer_feed(&f, "\n", 1, collect, &r), 0);
    assert_int_equal(r.n, 2);
    ASSERT_LINE(&r, 0, "abc");
    ASSERT_LINE(&r, 1, "def");
    framer_free(&f);
    records_free(&r);
}

static void test_empty_lines(void **state)
{
    (void)state;
    struct records r = {0};
    frame_all("\n\n\na\n\n", 6, &r);
    assert_int_equal(r.n, 5);
    ASSERT_LINE(&r, 0, "");
    ASSERT_LINE(&r, 1, "");
    ASSERT_LINE(&r, 2, "");
    ASSERT_LINE(&r, 3, "a");
    ASSERT_LINE(&r, 4, "");
    records_free(&r);
}

static char *pattern(size_t len)
{
    char *p = malloc(len + 2);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (char)('A' + i % 23);
    return p;
}

static void check_long_line_records(const struct records *r, const char *line)
{
    assert_int_equal(r->n, 4);
    assert_record(r, 0, line, FRAMER_MAX_LINE, FRAMER_SPLIT);
    assert_record(r, 1, line + FRAMER_MAX_LINE, FRAMER_MAX_LINE, FRAMER_SPLIT);
    assert_record(r, 2, line + 2 * FRAMER_MAX_LINE, FRAMER_MAX_LINE, FRAMER_SPLIT);
    assert_record(r, 3, line + 3 * FRAMER_MAX_LINE, 3392, 0);
}

static void test_long_line_split(void **state)
{
    (void)state;
    const size_t len = 200000;
    char *line = pattern(len);
    line[len] = '\n';

    struct records r = {0};
    frame_all(line, len + 1, &r);
    check_long_line_records(&r, line);
    records_free(&r);

    /* the same line through the pending buffer: a prefix first, then the rest */
    struct framer f;
    framer_init(&f);
    assert_int_equal(framer_feed(&f, line, 1000, collect, &r), 0);
    assert_int_equal(framer_feed(&f, line + 1000, len + 1 - 1000, collect, &r), 0);
    framer_flush(&f, collect, &r);
    check_long_line_records(&r, line);
    assert_true(f.cap <= FRAMER_MAX_LINE);
    records_free(&r);

    /* and in 4 KiB reads, as from a pipe */
    for (size_t off = 0; off < len + 1; off += 4096) {
        size_t n = len + 1 - off < 4096 ? len + 1 - off : 4096;
        assert_int_equal(framer_feed(&f, line + off, n, collect, &r), 0);
    }
    framer_flush(&f, collect, &r);
    check_long_line_records(&r, line);
    assert_true(f.cap <= FRAMER_MAX_LINE);
    records_free(&r);
    framer_free(&f);

    /* without a newline: the last piece is flagged unterminated at flush */
    frame_all(line, len, &r);
    assert_int_equal(r.n, 4);
    assert_record(&r, 2, line + 2 * FRAMER_MAX_LINE, FRAMER_MAX_LINE, FRAMER_SPLIT);
    assert_record(&r, 3, line + 3 * FRAMER_MAX_LINE, 3392, FRAMER_UNTERMINATED);
    records_free(&r);
    free(line);
}

static void test_line_of_exactly_max(void **state)
{
    (void)state;
    char *line = pattern(FRAMER_MAX_LINE + 1);
    line[FRAMER_MAX_LINE] = '\n';
    struct records r = {0};

    frame_all(line, FRAMER_MAX_LINE + 1, &r);
    assert_int_equal(r.n, 1);
    assert_record(&r, 0, line, FRAMER_MAX_LINE, 0);
    records_free(&r);

    /* the newline in a later feed: the full pending buffer is the whole line */
    struct framer f;
    framer_init(&f);
    assert_int_equal(framer_feed(&f, line, FRAMER_MAX_LINE, collect, &r), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(framer_feed(&f, "\nnext\n", 6, collect, &r), 0);
    assert_int_equal(r.n, 2);
    assert_record(&r, 0, line, FRAMER_MAX_LINE, 0);
    ASSERT_LINE(&r, 1, "next");
    records_free(&r);

    /* one byte more than the limit: a full split piece and a 1-byte last piece */
    line[FRAMER_MAX_LINE] = 'z';
    assert_int_equal(framer_feed(&f, line, FRAMER_MAX_LINE + 1, collect, &r), 0);
    assert_int_equal(framer_feed(&f, "\n", 1, collect, &r), 0);
    assert_int_equal(r.n, 2);
    assert_record(&r, 0, line, FRAMER_MAX_LINE, FRAMER_SPLIT);
    assert_record(&r, 1, "z", 1, 0);
    records_free(&r);

    /* exactly the limit plus CRLF: one whole line, not split, the same whether or not
     * the CRLF is cut across feeds */
    line[FRAMER_MAX_LINE] = '\r';
    line[FRAMER_MAX_LINE + 1] = '\n';
    for (size_t cut = FRAMER_MAX_LINE; cut <= FRAMER_MAX_LINE + 2; cut++) {
        assert_int_equal(framer_feed(&f, line, cut, collect, &r), 0);
        assert_int_equal(framer_feed(&f, line + cut, FRAMER_MAX_LINE + 2 - cut, collect, &r), 0);
        assert_int_equal(r.n, 1);
        assert_record(&r, 0, line, FRAMER_MAX_LINE, 0);
        records_free(&r);
    }
    /* a "\r" after a full piece that is not followed by "\n" is text of the next piece */
    line[FRAMER_MAX_LINE] = '\r';
    line[FRAMER_MAX_LINE + 1] = 'x';
    assert_int_equal(framer_feed(&f, line, FRAMER_MAX_LINE + 1, collect, &r), 0);
    assert_int_equal(framer_feed(&f, line + FRAMER_MAX_LINE + 1, 1, collect, &r), 0);
    assert_int_equal(framer_feed(&f, "\n", 1, collect, &r), 0);
    assert_int_equal(r.n, 2);
    assert_record(&r, 0, line, FRAMER_MAX_LINE, FRAMER_SPLIT);
    assert_record(&r, 1, "\rx", 2, 0);
    records_free(&r);
    framer_free(&f);
    free(line);
}

static void test_binary_passes_through(void **state)
{
    (void)state;
    const char in[] = "a\0b\xff\xfe\xc0\xaf\0\nz\0\n\0";
    struct records r = {0};
    frame_all(in, sizeof in - 1, &r);
    assert_int_equal(r.n, 3);
    assert_record(&r, 0, "a\0b\xff\xfe\xc0\xaf\0", 8, 0);
    assert_record(&r, 1, "z\0", 2, 0);
    assert_record(&r, 2, "\0", 1, FRAMER_UNTERMINATED);
    records_free(&r);
}

static void test_flush(void **state)
{
    (void)state;
    struct records r = {0};
    struct framer f;
    framer_init(&f);

    framer_flush(&f, collect, &r); /* nothing ever fed */
    assert_int_equal(r.n, 0);

    assert_int_equal(framer_feed(&f, "done\n", 5, collect, &r), 0);
    framer_flush(&f, collect, &r); /* nothing pending after a full line */
    assert_int_equal(r.n, 1);

    assert_int_equal(framer_feed(&f, "partial", 7, collect, &r), 0);
    framer_flush(&f, collect, &r);
    assert_int_equal(r.n, 2);
    assert_record(&r, 1, "partial", 7, FRAMER_UNTERMINATED);

    framer_flush(&f, collect, &r); /* flush reset the framer */
    assert_int_equal(r.n, 2);
    assert_int_equal(framer_feed(&f, "again\n", 6, collect, &r), 0);
    assert_int_equal(r.n, 3);
    ASSERT_LINE(&r, 2, "again");

    framer_free(&f);
    assert_null(f.buf);
    framer_free(&f); /* harmless twice */
    records_free(&r);
}

/* Records whether each line was passed straight from the fed buffer. */
struct origin {
    const char *lo, *hi; /* the buffer being fed */
    int in_place[8];
    size_t n;
};

static void note_origin(void *ctx, const char *text, size_t len, unsigned flags)
{
    (void)flags;
    struct origin *o = ctx;
    assert_true(o->n < 8);
    o->in_place[o->n++] = text >= o->lo && text + len <= o->hi;
}

static void test_zero_copy_fast_path(void **state)
{
    (void)state;
    struct framer f;
    framer_init(&f);

    /* Nothing pending: complete lines come straight from the input, no buffer at all. */
    static const char a[] = "one\ntwo\npart";
    struct origin o = {a, a + sizeof a - 1, {0}, 0};
    assert_int_equal(framer_feed(&f, a, sizeof a - 1, note_origin, &o), 0);
    assert_int_equal(o.n, 2);
    assert_true(o.in_place[0] && o.in_place[1]);
    assert_int_equal(f.len, 4); /* only the partial line was copied */

    /* The line finishing the pending part is copied; the ones after it are not. */
    static const char b[] = "ial\nthree\nfour\n";
    o = (struct origin){b, b + sizeof b - 1, {0}, 0};
    assert_int_equal(framer_feed(&f, b, sizeof b - 1, note_origin, &o), 0);
    assert_int_equal(o.n, 3);
    assert_false(o.in_place[0]);
    assert_true(o.in_place[1] && o.in_place[2]);
    assert_int_equal(f.len, 0);
    framer_free(&f);

    framer_init(&f);
    struct records r = {0};
    assert_int_equal(framer_feed(&f, "x\ny\n", 4, collect, &r), 0);
    assert_null(f.buf);
    framer_free(&f);
    records_free(&r);
}

static void assert_same_records(const struct records *a, const struct records *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        assert_record(b, i, a->v[i].text, a->v[i].len, a->v[i].flags);
}

static void test_random_chunks_same_records(void **state)
{
    (void)state;
    srand(4242);
    for (int round = 0; round < 20; round++) {
        /* Mostly short lines with CRs, NULs and empty lines, plus a few lines longer
         * than the limit, some landing right on it. */
        size_t cap = 600000, len = 0;
        char *in = malloc(cap);
        assert_non_null(in);
        while (len < cap - 2 * FRAMER_MAX_LINE - 16) {
            int kind = rand() % 100;
            size_t n;
            if (kind < 2)
                n = FRAMER_MAX_LINE * (1 + (size_t)(rand() % 2)) - 2 + (size_t)(rand() % 5);
            else if (kind < 10)
                n = 0;
            else
                n = (size_t)(rand() % 200);
            for (size_t i = 0; i < n; i++) {
                int c = rand() % 64;
                in[len++] = c == 0 ? '\r' : c == 1 ? '\0' : c == 2 ? (char)0xff : (char)('a' + c % 26);
            }
            in[len++] = '\n';
        }
        if (round % 2) /* end without a newline every other round */
            len -= 1;

        struct records whole = {0};
        frame_all(in, len, &whole);

        struct records chunked = {0};
        struct framer f;
        framer_init(&f);
        size_t off = 0;
        while (off < len) {
            /* small, medium and larger-than-limit chunks */
            size_t n;
            switch (rand() % 4) {
            case 0: n = 1 + (size_t)(rand() % 8); break;
            case 1: n = 1 + (size_t)(rand() % 500); break;
            case 2: n = 1 + (size_t)(rand() % 8192); break;
            default: n = 1 + (size_t)(rand() % (3 * FRAMER_MAX_LINE)); break;
            }
            if (n > len - off)
                n = len - off;
            assert_int_equal(framer_feed(&f, in + off, n, collect, &chunked), 0);
            assert_true(f.len <= FRAMER_MAX_LINE + 1 && f.cap <= FRAMER_MAX_LINE + 1);
            off += n;
        }
        framer_flush(&f, collect, &chunked);
        framer_free(&f);

        assert_same_records(&whole, &chunked);

        /* Joining the records back gives the input minus "\n" and CRLF's "\r". */
        size_t joined = 0, lines = 0;
        for (size_t i = 0; i < whole.n; i++) {
            joined += whole.v[i].len;
            if (!(whole.v[i].flags & FRAMER_SPLIT))
                lines++;
        }
        size_t newlines = 0, crlf = 0;
        for (size_t i = 0; i < len; i++) {
            if (in[i] == '\n') {
                newlines++;
                if (i > 0 && in[i - 1] == '\r')
                    crlf++;
            }
        }
        assert_int_equal(joined, len - newlines - crlf);
        assert_int_equal(lines, newlines + (len > 0 && in[len - 1] != '\n' ? 1 : 0));

        records_free(&whole);
        records_free(&chunked);
        free(in);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_lines),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_many_lines_one_feed),
        cmocka_unit_test(test_crlf_and_lone_cr),
        cmocka_unit_test(test_empty_lines),
        cmocka_unit_test(test_long_line_split),
        cmocka_unit_test(test_line_of_exactly_max),
        cmocka_unit_test(test_binary_passes_through),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_zero_copy_fast_path),
        cmocka_unit_test(test_random_chunks_same_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
