/* journal: segments named <name>.<first offset as 16 hex digits>.seg. Each append is one
 * writev of header and payload, so a record is either whole on disk or a torn tail that the
 * next open cuts off. Durability: the bytes reach the kernel before emit is acknowledged
 * (they survive the node being killed); fdatasync runs on a timer (see bus), so an OS crash
 * can lose the last moments. */
#include "common/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "common/xalloc.h"

#define HEADER_BYTES 16
#define PATH_CAP 4200

struct segment {
    uint64_t first;   /* offset of its first record */
    uint64_t count;   /* records in it */
    uint64_t bytes;   /* its size */
};

struct journal {
    int readonly;
    char dir[PATH_CAP];
    char name[256];
    uint64_t retain;
    uint64_t per_segment;
    struct segment *segs;
    size_t seg_count, seg_cap;
    int fd;           /* the last segment, O_APPEND */
    uint64_t next;    /* offset of the next record */
};

struct journal_reader {
    struct journal *j;
    uint64_t want;     /* the next offset it returns */
    uint64_t seg_first;/* the segment it reads */
    FILE *f;
    long pos;          /* where the next header starts in f */
    char *buf;
    size_t cap;
};

/* ---- checksums ------------------------------------------------------------------------------ */

uint32_t journal_crc32(const void *data, size_t len)
{
    /* zlib's crc32 is table-driven and well kept; no reason to carry our own. */
    return (uint32_t)crc32(0L, data, (uInt)len);
}

static uint32_t record_crc(uint64_t offset, const void *payload, size_t len)
{
    /* The offset is covered too, so a record copied to the wrong place does not validate. */
    unsigned char head[8];
    for (int i = 0; i < 8; i++)
        head[i] = (unsigned char)(offset >> (8 * i));
    uLong crc = crc32(0L, head, 8);
    /* zlib's crc32 returns 0 for a NULL buffer, whatever the crc so far: an empty payload read
     * into no buffer yet must checksum like one written from a pointer. */
    return len ? (uint32_t)crc32(crc, payload, (uInt)len) : (uint32_t)crc;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void segment_path(const struct journal *j, uint64_t first, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.%016" PRIx64 ".seg", j->dir, j->name, first);
}

/* ---- open and recovery --------------------------------------------------------------------- */

static int seg_order(const void *a, const void *b)
{
    const struct segment *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static void add_segment(struct journal *j, uint64_t first)
{
    if (j->seg_count == j->seg_cap) {
        j->seg_cap = j->seg_cap ? j->seg_cap * 2 : 16;
        j->segs = xrealloc(j->segs, j->seg_cap * sizeof *j->segs);
    }
    j->segs[j->seg_count++] = (struct segment){.first = first};
}

/* Scans one segment; truncates it after its last whole record. Returns 1 when it had to. */
static int scan_segment(struct journal *j, struct segment *s, struct journal_recovery *rep)
{
    char path[PATH_CAP];
    segment_path(j, s->first, path, sizeof path);
    FILE *f = fopen(path, "rbe");
    if (!f)
        return 1;
    setvbuf(f, NULL, _IOFBF, 1 << 16);
    unsigned char head[HEADER_BYTES];
    char *payload = NULL;
    size_t cap = 0;
    uint64_t good = 0;
    int bad = 0;
    s->count = 0;
    for (;;) {
        size_t n = fread(head, 1, HEADER_BYTES, f);
        if (n == 0)
            break;
        if (n < HEADER_BYTES) {
            bad = 1;
            break;
        }
        uint32_t len = get_u32(head), crc = get_u32(head + 4);
        uint64_t off = get_u64(head + 8);
        if (len > JOURNAL_RECORD_MAX || off != s->first + s->count) {
            bad = 1;
            break;
        }
        if (len > cap) {
            cap = len;
            payload = xrealloc(payload, cap);
        }
        if (fread(payload, 1, len, f) != len || record_crc(off, payload, len) != crc) {
            bad = 1;
            break;
        }
        s->count++;
        good += HEADER_BYTES + len;
    }
    struct stat st;
    uint64_t size = fstat(fileno(f), &st) == 0 ? (uint64_t)st.st_size : good;
    fclose(f);
    free(payload);
    if (bad || size > good) {
        rep->truncated_bytes += size - good;
        if (!j->readonly && truncate(path, (off_t)good) < 0)
            return 1;
        bad = 1;
    }
    s->bytes = good;
    rep->records += s->count;
    return bad;
}

int journal_open(struct journal **out, const struct journal_options *opts, struct journal_recovery *rep,
                 char *err, size_t errlen)
{
    memset(rep, 0, sizeof *rep);
    struct journal *j = xcalloc(1, sizeof *j);
    snprintf(j->dir, sizeof j->dir, "%s", opts->dir);
    snprintf(j->name, sizeof j->name, "%s", opts->name);
    j->readonly = opts->readonly;
    j->retain = opts->retain_records ? opts->retain_records : 1;
    j->per_segment = opts->segment_records ? opts->segment_records
                                           : (j->retain / 4 < 1024 ? 1024 : j->retain / 4 > 262144 ? 262144 : j->retain / 4);
    j->fd = -1;
    if (!j->readonly && mkdir(j->dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", j->dir, strerror(errno));
        free(j);
        return -1;
    }
    DIR *d = opendir(j->dir);
    if (!d) {
        snprintf(err, errlen, "cannot read %s: %s", j->dir, strerror(errno));
        free(j);
        return -1;
    }
    size_t nlen = strlen(j->name);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        size_t l = strlen(n);
        if (l != nlen + 1 + 16 + 4 || strncmp(n, j->name, nlen) != 0 || n[nlen] != '.' ||
            strcmp(n + l - 4, ".seg") != 0)
            continue;
        char hex[17];
        memcpy(hex, n + nlen + 1, 16);
        hex[16] = '\0';
        char *end;
        uint64_t first = strtoull(hex, &end, 16);
        if (*end == '\0')
            add_segment(j, first);
    }
    closedir(d);
    if (j->seg_count > 1)
        qsort(j->segs, j->seg_count, sizeof *j->segs, seg_order);
    for (size_t i = 0; i < j->seg_count; i++) {
        /* segments must follow each other without gaps */
        if (i > 0 && j->segs[i].first != j->segs[i - 1].first + j->segs[i - 1].count) {
            for (size_t k = i; k < j->seg_count; k++) {
                char path[PATH_CAP];
                segment_path(j, j->segs[k].first, path, sizeof path);
                if (!j->readonly)
                    unlink(path);
                rep->dropped_segments++;
            }
            j->seg_count = i;
            break;
        }
        if (scan_segment(j, &j->segs[i], rep) && i + 1 < j->seg_count) {
            if (j->readonly)
                break; /* the node may be writing that tail right now */
            for (size_t k = i + 1; k < j->seg_count; k++) {
                char path[PATH_CAP];
                segment_path(j, j->segs[k].first, path, sizeof path);
                unlink(path);
                rep->dropped_segments++;
            }
            j->seg_count = i + 1;
            break;
        }
    }
    rep->segments = (unsigned)j->seg_count;
    if (j->seg_count == 0)
        add_segment(j, 0);
    struct segment *last = &j->segs[j->seg_count - 1];
    j->next = last->first + last->count;
    if (j->readonly) {
        *out = j;
        return 0;
    }
    char path[PATH_CAP];
    segment_path(j, last->first, path, sizeof path);
    j->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        free(j->segs);
        free(j);
        return -1;
    }
    *out = j;
    return 0;
}

/* ---- appending ------------------------------------------------------------------------------- */

static int start_segment(struct journal *j)
{
    char path[PATH_CAP];
    segment_path(j, j->next, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    close(j->fd);
    j->fd = fd;
    add_segment(j, j->next);
    return 0;
}

static void apply_retention(struct journal *j)
{
    /* Drop whole oldest segments while what remains still holds `retain` records. */
    while (j->seg_count > 1 && j->next - j->segs[1].first >= j->retain) {
        char path[PATH_CAP];
        segment_path(j, j->segs[0].first, path, sizeof path);
        unlink(path);
        memmove(&j->segs[0], &j->segs[1], (j->seg_count - 1) * sizeof *j->segs);
        j->seg_count--;
    }
}

int journal_append(struct journal *j, const void *payload, size_t len, uint64_t *offset)
{
    if (j->readonly)
        return -EBADF;
    if (len > JOURNAL_RECORD_MAX)
        return -EMSGSIZE;
    struct segment *last = &j->segs[j->seg_count - 1];
    if (last->count >= j->per_segment) {
        int rc = start_segment(j);
        if (rc < 0)
            return rc;
        last = &j->segs[j->seg_count - 1];
    }
    unsigned char head[HEADER_BYTES];
    put_u32(head, (uint32_t)len);
    put_u32(head + 4, record_crc(j->next, payload, len));
    put_u64(head + 8, j->next);
    struct iovec iov[2] = {{head, HEADER_BYTES}, {(void *)payload, len}};
    ssize_t n = writev(j->fd, iov, 2);
    if (n != (ssize_t)(HEADER_BYTES + len)) {
        int e = n < 0 ? errno : ENOSPC;
        /* Cut a partial record now rather than leave it for the next open. */
        if (n > 0 && ftruncate(j->fd, (off_t)last->bytes) < 0)
            e = errno;
        return -e;
    }
    last->count++;
    last->bytes += HEADER_BYTES + len;
    *offset = j->next++;
    apply_retention(j);
    return 0;
}

void journal_refresh(struct journal *j)
{
    /* Re-scan the last segment and look for the next ones: cheap for a follower that polls. */
    for (;;) {
        struct segment *last = &j->segs[j->seg_count - 1];
        struct journal_recovery rep = {0};
        scan_segment(j, last, &rep);
        j->next = last->first + last->count;
        char path[PATH_CAP];
        segment_path(j, j->next, path, sizeof path);
        if (access(path, F_OK) != 0 || last->count == 0)
            return;
        add_segment(j, j->next);
    }
}

int journal_sync(struct journal *j)
{
    if (j->fd < 0)
        return 0;
    return fdatasync(j->fd) < 0 ? -errno : 0;
}

uint64_t journal_first_offset(const struct journal *j)
{
    return j->segs[0].first;
}

uint64_t journal_next_offset(const struct journal *j)
{
    return j->next;
}

void journal_close(struct journal *j)
{
    if (!j)
        return;
    if (j->fd >= 0) {
        fdatasync(j->fd);
        close(j->fd);
    }
    free(j->segs);
    free(j);
}

/* ---- reading -------------------------------------------------------------------------------- */

static int reader_open_segment(struct journal_reader *r)
{
    struct journal *j = r->j;
    if (r->want < j->segs[0].first)
        r->want = j->segs[0].first;
    size_t i = j->seg_count - 1;
    while (i > 0 && j->segs[i].first > r->want)
        i--;
    char path[PATH_CAP];
    segment_path(j, j->segs[i].first, path, sizeof path);
    if (r->f)
        fclose(r->f);
    r->f = fopen(path, "rbe");
    if (!r->f)
        return -1;
    setvbuf(r->f, NULL, _IOFBF, 1 << 18);
    r->seg_first = j->segs[i].first;
    r->pos = 0;
    return 0;
}

int journal_reader_open(struct journal *j, uint64_t from, struct journal_reader **out)
{
    struct journal_reader *r = xcalloc(1, sizeof *r);
    r->j = j;
    r->want = from;
    if (reader_open_segment(r) < 0) {
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

int journal_reader_next(struct journal_reader *r, uint64_t *offset, const void **payload, size_t *len)
{
    struct journal *j = r->j;
    for (;;) {
        if (r->want >= j->next)
            return 0;
        /* Retention may have removed the segment we were in: jump to the oldest kept. */
        if (r->want < j->segs[0].first || r->seg_first < j->segs[0].first) {
            if (reader_open_segment(r) < 0)
                return -1;
        }
        unsigned char head[HEADER_BYTES];
        clearerr(r->f);
        if (fseek(r->f, r->pos, SEEK_SET) < 0)
            return -1;
        size_t n = fread(head, 1, HEADER_BYTES, r->f);
        if (n < HEADER_BYTES) {
            /* End of this segment: go on in the next one, if any. */
            size_t i = 0;
            while (i < j->seg_count && j->segs[i].first != r->seg_first)
                i++;
            if (i + 1 >= j->seg_count)
                return 0;
            r->want = j->segs[i + 1].first > r->want ? j->segs[i + 1].first : r->want;
            if (reader_open_segment(r) < 0)
                return -1;
            continue;
        }
        uint32_t rec_len = get_u32(head);
        uint64_t off = get_u64(head + 8);
        if (rec_len > JOURNAL_RECORD_MAX)
            return -1;
        if (rec_len > r->cap) {
            r->cap = rec_len;
            r->buf = xrealloc(r->buf, r->cap ? r->cap : 1);
        }
        if (fread(r->buf, 1, rec_len, r->f) != rec_len)
            return 0; /* being written right now: try again later */
        r->pos += HEADER_BYTES + (long)rec_len;
        if (off < r->want)
            continue;
        r->want = off + 1;
        *offset = off;
        *payload = r->buf;
        *len = rec_len;
        return 1;
    }
}

void journal_reader_close(struct journal_reader *r)
{
    if (!r)
        return;
    if (r->f)
        fclose(r->f);
    free(r->buf);
    free(r);
}
