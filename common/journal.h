/* journal: the append-only log behind a retained event stream (`streams:` in .lymph.yml).
 * Records are [len][crc32][offset][payload] in segment files of the run dir; offsets grow by
 * one per record and survive restarts. A torn tail (node killed mid-write) is detected on
 * open, truncated to the last whole record and reported, never trusted. Pure file I/O:
 * no libuv, no ZeroMQ. */
#ifndef DEVNODE_JOURNAL_H
#define DEVNODE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#define JOURNAL_RECORD_MAX (16u << 20)

struct journal;

struct journal_options {
    const char *dir;          /* where the segments live (created 0700) */
    const char *name;         /* file name prefix: [A-Za-z0-9_.-] */
    uint64_t retain_records;  /* keep at least the newest this many */
    uint64_t segment_records; /* records per segment file (0: a default from retain_records) */
    int readonly;             /* a reader beside the node: never truncates, creates or writes */
};

struct journal_recovery {
    uint64_t records;         /* whole records found */
    uint64_t truncated_bytes; /* cut from a torn or corrupt tail */
    unsigned segments;
    int dropped_segments;     /* later segments dropped because an earlier one was corrupt */
};

int journal_open(struct journal **out, const struct journal_options *opts, struct journal_recovery *report,
                 char *err, size_t errlen);
/* Appends one record with a single write(); returns its offset in *offset. 0 or -errno. */
int journal_append(struct journal *j, const void *payload, size_t len, uint64_t *offset);
/* fdatasync of the current segment. 0 or -errno. */
int journal_sync(struct journal *j);
uint64_t journal_first_offset(const struct journal *j); /* oldest retained */
uint64_t journal_next_offset(const struct journal *j);  /* the next append gets this */
void journal_close(struct journal *j);

/* Read-only journals: sees records the node appended since open (and new segments). */
void journal_refresh(struct journal *j);

/* Sequential reading from an offset (clamped to the oldest retained). */
struct journal_reader;
int journal_reader_open(struct journal *j, uint64_t from, struct journal_reader **out);
/* 1 with the next record (payload valid until the next call), 0 at the end, -1 on error. */
int journal_reader_next(struct journal_reader *r, uint64_t *offset, const void **payload, size_t *len);
void journal_reader_close(struct journal_reader *r);

uint32_t journal_crc32(const void *data, size_t len);

#endif
