/* fuzz_journal: crash recovery of common/journal.c. The input becomes one or two segment files
 * (x.<first offset>.seg) in a scratch directory in RAM; journal_open (read-write, so it cuts
 * torn tails and drops what follows a corrupt segment) must then give a clean journal: every
 * offset from first to next readable in order, appends that read back, and a second open that
 * finds nothing more to repair and the same offsets, read-write and read-only alike.
 * Input: [flags][split][first][gap][retain] then the segment bytes. flags: bit 0 two segments,
 * bit 1 repair lengths' CRCs and offsets so the records are whole (reaches the deep paths),
 * bits 2-4 records per segment - 1, bits 5-7 records to append. */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/journal.h"
#include "tests/fuzz/fuzz_util.h"

static char dir[256];

static void cleanup(void)
{
    fuzz_empty_dir(dir);
    rmdir(dir);
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Makes the records of a segment whole: right offsets and CRCs, as far as the lengths fit. */
FUZZ_NO_COVERAGE static void repair(uint8_t *seg, size_t len, uint64_t first)
{
    size_t pos = 0;
    for (uint64_t off = first; pos + 16 <= len; off++) {
        uint32_t n = (uint32_t)seg[pos] | (uint32_t)seg[pos + 1] << 8 | (uint32_t)seg[pos + 2] << 16 |
                     (uint32_t)seg[pos + 3] << 24;
        if (n > len - pos - 16)
            return;
        put_le(seg + pos + 8, off, 8);
        uint8_t head[8];
        put_le(head, off, 8);
        /* record_crc covers the offset, then the payload (journal.c) */
        uint8_t *both = malloc(8 + (size_t)n);
        if (!both)
            abort();
        memcpy(both, head, 8);
        memcpy(both + 8, seg + pos + 16, n);
        uint32_t crc = journal_crc32(both, 8 + (size_t)n);
        free(both);
        put_le(seg + pos + 4, crc, 4);
        pos += 16 + (size_t)n;
    }
}

static void write_segment(uint64_t first, const uint8_t *data, size_t len, int fix)
{
    char path[512];
    snprintf(path, sizeof path, "%s/x.%016" PRIx64 ".seg", dir, first);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    if (len)
        memcpy(copy, data, len);
    if (fix)
        repair(copy, len, first);
    fuzz_write_file(path, copy, len);
    free(copy);
}

/* Reads everything from `from`; checks the offsets run first..next-1 without a gap. Returns the
 * count and copies the payload of offset `want` (if read) into *got. */
static uint64_t read_all(struct journal *j, uint64_t want, uint8_t **got, size_t *got_len)
{
    struct journal_reader *r;
    FUZZ_CHECK(journal_reader_open(j, 0, &r) == 0, "cannot open a reader");
    uint64_t expect = journal_first_offset(j), count = 0, off;
    const void *payload;
    size_t len;
    int rc;
    while ((rc = journal_reader_next(r, &off, &payload, &len)) == 1) {
        FUZZ_CHECK(off == expect, "read offset %" PRIu64 ", expected %" PRIu64, off, expect);
        FUZZ_CHECK(len <= JOURNAL_RECORD_MAX, "record of %zu bytes", len);
        if (got && off == want) {
            *got = malloc(len ? len : 1);
            if (!*got)
                abort();
            if (len)
                memcpy(*got, payload, len);
            *got_len = len;
        }
        expect++;
        count++;
    }
    FUZZ_CHECK(rc == 0, "reader failed after %" PRIu64 " records", count);
    FUZZ_CHECK(expect == journal_next_offset(j), "read up to %" PRIu64 ", next is %" PRIu64, expect,
               journal_next_offset(j));
    journal_reader_close(r);
    return count;
}

static struct journal *open_journal(int readonly, uint64_t retain, uint64_t per_seg, struct journal_recovery *rep)
{
    struct journal_options o = {.dir = dir, .name = "x", .retain_records = retain, .segment_records = per_seg,
                                .readonly = readonly};
    struct journal *j = NULL;
    char err[256];
    FUZZ_CHECK(journal_open(&j, &o, rep, err, sizeof err) == 0, "journal_open: %s", err);
    return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        fuzz_scratch_dir(dir, sizeof dir, "journal");
        atexit(cleanup);
    }
    if (size < 5)
        return 0;
    uint8_t flags = data[0];
    int two = flags & 1, fix = (flags >> 1) & 1;
    uint64_t per_seg = 1 + ((flags >> 2) & 7), appends = flags >> 5;
    uint64_t first = data[2] & 0x0f, retain = 1 + data[4] % 16;
    const uint8_t *seg = data + 5;
    size_t len = size - 5, split = two ? len * data[1] / 255 : len;

    fuzz_empty_dir(dir);
    write_segment(first, seg, split, fix);
    if (two)
        write_segment(first + data[3], seg + split, len - split, fix);

    struct journal_recovery rep;
    struct journal *j = open_journal(0, retain, per_seg, &rep);
    uint64_t first_off = journal_first_offset(j), next = journal_next_offset(j);
    FUZZ_CHECK(next - first_off == rep.records, "offsets %" PRIu64 "..%" PRIu64 " but %" PRIu64 " records found",
               first_off, next, rep.records);
    FUZZ_CHECK(read_all(j, 0, NULL, NULL) == rep.records, "not every recovered record reads back");

    for (uint64_t i = 0; i < appends; i++) {
        size_t plen = (size_t)(i * 7) % (len + 1);
        uint64_t off;
        FUZZ_CHECK(journal_append(j, seg, plen, &off) == 0, "append failed");
        FUZZ_CHECK(off == next, "append got offset %" PRIu64 ", expected %" PRIu64, off, next);
        next++;
        uint8_t *got = NULL;
        size_t got_len = 0;
        read_all(j, off, &got, &got_len);
        FUZZ_CHECK(got && got_len == plen && memcmp(got, seg, plen) == 0, "appended record %" PRIu64 " reads back wrong",
                   off);
        free(got);
    }
    uint64_t total = next - first_off, kept = next - journal_first_offset(j);
    FUZZ_CHECK(kept >= (retain < total ? retain : total), "retention kept %" PRIu64 " of %" PRIu64
               " records, fewer than %" PRIu64, kept, total, retain);
    first_off = journal_first_offset(j);
    journal_close(j);

    /* Recovered once, the journal must be clean: nothing more to cut, the same offsets. */
    struct journal_recovery again;
    j = open_journal(0, retain, per_seg, &again);
    FUZZ_CHECK(again.truncated_bytes == 0 && again.dropped_segments == 0,
               "second open still repaired: cut %" PRIu64 " bytes, dropped %d segments", again.truncated_bytes,
               again.dropped_segments);
    FUZZ_CHECK(journal_first_offset(j) == first_off && journal_next_offset(j) == next,
               "reopen gives %" PRIu64 "..%" PRIu64 ", was %" PRIu64 "..%" PRIu64, journal_first_offset(j),
               journal_next_offset(j), first_off, next);
    read_all(j, 0, NULL, NULL);
    journal_close(j);

    struct journal_recovery ro_rep;
    j = open_journal(1, retain, per_seg, &ro_rep);
    journal_refresh(j);
    FUZZ_CHECK(journal_next_offset(j) == next, "read-only open sees next %" PRIu64 ", not %" PRIu64,
               journal_next_offset(j), next);
    read_all(j, 0, NULL, NULL);
    journal_close(j);
    return 0;
}
