/* catchup: the files may hold several node runs, each counting seq from 1, so the first read
 * finds where the current run starts (after the last place seq falls) and later reads go on
 * from where the previous one stopped, following that file by inode through rotation. Only
 * records in the asked range are parsed; the others cost a look at their "seq". */
#include "tail/catchup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/xalloc.h"
#include "tail/logfiles.h"

#define TICK_EVERY 4096       /* records between two ticks */
#define POLL_MS 5             /* while the node has not written the records yet */
#define SEQ_SEARCH_BYTES 96   /* "seq" is the second key of a record, after the time */

enum step { STEP_DONE, STEP_END, STEP_LOST, STEP_STOPPED };

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The record's seq, or 0 for a line that is not one of the node's records. */
static uint64_t raw_seq(const char *line, size_t len)
{
    static const char key[] = "\"seq\":";
    const char *p = memmem(line, len < SEQ_SEARCH_BYTES ? len : SEQ_SEARCH_BYTES, key, sizeof key - 1);
    if (!p)
        return 0;
    p += sizeof key - 1;
    uint64_t seq = 0;
    for (; p < line + len && *p >= '0' && *p <= '9'; p++)
        seq = seq * 10 + (uint64_t)(*p - '0');
    return seq;
}

void catchup_init(struct catchup *c, const char *logs_dir)
{
    memset(c, 0, sizeof *c);
    snprintf(c->logs_dir, sizeof c->logs_dir, "%s", logs_dir);
}

/* Which file (0: devnode.jsonl, K: devnode.jsonl.K) is (dev, ino) now; -1: none. */
static int find_file(const struct catchup *c, int rotated, dev_t dev, ino_t ino)
{
    char path[PATH_MAX + 32];
    struct stat st;
    for (int k = 0; k <= rotated; k++) {
        logfiles_path(c->logs_dir, (unsigned)k, path, sizeof path);
        if (stat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
            return k;
    }
    return -1;
}

static FILE *open_file(const struct catchup *c, int k, struct stat *st)
{
    char path[PATH_MAX + 32];
    logfiles_path(c->logs_dir, (unsigned)k, path, sizeof path);
    FILE *f = fopen(path, "re");
    if (f && fstat(fileno(f), st) < 0) {
        fclose(f);
        return NULL;
    }
    return f;
}

/* Places the reader at the start of the current run: the last record whose seq is not above
 * the one before it, or the start of the oldest file. */
static int place(struct catchup *c, catchup_tick_cb tick, void *ctx, char *err, size_t errlen)
{
    int rotated = logfiles_rotated_count(c->logs_dir, err, errlen);
    if (rotated < 0)
        return -1;
    ino_t *seen = xcalloc((size_t)rotated + 1, sizeof *seen);
    size_t seen_count = 0;
    uint64_t prev = 0;
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    for (int k = rotated; k >= 0; k--) {
        struct stat st;
        FILE *f = open_file(c, k, &st);
        if (!f)
            continue;
        /* A rotation while we read shifts names: never read one file twice. */
        int again = 0;
        for (size_t i = 0; i < seen_count; i++)
            again |= seen[i] == st.st_ino;
        if (again) {
            fclose(f);
            continue;
        }
        seen[seen_count++] = st.st_ino;
        if (!found) {
            c->dev = st.st_dev;
            c->ino = st.st_ino;
            c->offset = 0;
            found = 1;
        }
        off_t offset = 0;
        ssize_t n;
        uint64_t records = 0;
        while ((n = getline(&line, &cap, f)) > 0 && line[n - 1] == '\n') {
            if (++records % TICK_EVERY == 0 && tick)
                tick(ctx);
            uint64_t seq = raw_seq(line, (size_t)n);
            if (seq && prev && seq <= prev) {
                c->dev = st.st_dev;
                c->ino = st.st_ino;
                c->offset = offset;
            }
            if (seq)
                prev = seq;
            offset += n;
        }
        fclose(f);
    }
    free(line);
    free(seen);
    if (!found) {
        snprintf(err, errlen, "no log files in %s", c->logs_dir);
        return -1;
    }
    c->seq = 0;
    c->placed = 1;
    return 0;
}

struct range {
    uint64_t first, last;
    struct logfilter *filter;
    catchup_line_cb cb;
    catchup_tick_cb tick;
    void *ctx;
    int64_t found;
    uint64_t records;
};

/* One record at the reader's place: 1 to go on, 0 when it is past the range (left unread),
 * -1 when the callback stopped us. */
static int take(struct catchup *c, struct range *r, const char *line, size_t len)
{
    uint64_t seq = raw_seq(line, len);
    if (seq > r->last)
        return 0;
    c->offset += (off_t)len;
    if (!seq)
        return 1; /* not a record: another program's line */
    c->seq = seq;
    if (++r->records % TICK_EVERY == 0 && r->tick)
        r->tick(r->ctx);
    if (seq < r->first)
        return 1;
    struct logfiles_record rec;
    if (logfiles_parse(line, len - 1, &rec) < 0)
        return 1;
    int rc = 1;
    if (logfilter_match(r->filter, &rec.tl.line)) {
        r->found++;
        if (r->cb(r->ctx, &rec.tl.line))
            rc = -1;
    }
    logfiles_record_free(&rec);
    return rc;
}

/* Reads on from the reader's place through the newer files. */
static enum step read_on(struct catchup *c, struct range *r, char *err, size_t errlen)
{
    int rotated = logfiles_rotated_count(c->logs_dir, err, errlen);
    if (rotated < 0)
        return STEP_LOST;
    int k = find_file(c, rotated, c->dev, c->ino);
    if (k < 0)
        return STEP_LOST;
    char *line = NULL;
    size_t cap = 0;
    enum step result = STEP_END;
    for (;;) {
        struct stat st;
        FILE *f = open_file(c, k, &st);
        if (!f || st.st_ino != c->ino || st.st_dev != c->dev || fseeko(f, c->offset, SEEK_SET) < 0) {
            if (f)
                fclose(f);
            result = STEP_LOST; /* renamed between the look-up and the open: look again */
            break;
        }
        ssize_t n;
        int going = 1;
        while (going == 1 && (n = getline(&line, &cap, f)) > 0 && line[n - 1] == '\n') {
            going = take(c, r, line, (size_t)n);
            if (going == 1 && c->seq >= r->last)
                going = 0;
        }
        fclose(f);
        if (going <= 0) {
            result = going < 0 ? STEP_STOPPED : STEP_DONE;
            break;
        }
        if (k == 0)
            break; /* the end of what the node wrote so far */
        /* The next newer file; rotation may have renamed ours meanwhile, so find it again. */
        rotated = logfiles_rotated_count(c->logs_dir, err, errlen);
        k = rotated < 0 ? -1 : find_file(c, rotated, c->dev, c->ino);
        if (k <= 0) {
            result = k < 0 ? STEP_LOST : STEP_END;
            break;
        }
        k--;
        f = open_file(c, k, &st);
        if (!f) {
            result = STEP_LOST;
            break;
        }
        fclose(f);
        c->dev = st.st_dev;
        c->ino = st.st_ino;
        c->offset = 0;
    }
    free(line);
    return result;
}

int64_t catchup_read(struct catchup *c, uint64_t first_seq, uint64_t last_seq, struct logfilter *f, int wait_ms,
                     catchup_line_cb cb, catchup_tick_cb tick, void *ctx, char *err, size_t errlen)
{
    if (!c->placed && place(c, tick, ctx, err, errlen) < 0)
        return -1;
    struct range r = {.first = first_seq, .last = last_seq, .filter = f, .cb = cb, .tick = tick, .ctx = ctx};
    if (c->seq >= last_seq)
        return 0;
    long long progress_ms = now_ms();
    int lost = 0;
    for (;;) {
        uint64_t before = c->seq;
        enum step s = read_on(c, &r, err, errlen);
        if (s == STEP_DONE || s == STEP_STOPPED)
            return r.found;
        if (s == STEP_LOST && ++lost > 3) {
            /* Our file was rotated away (we are more than keep_files behind): go on from the
             * oldest file there is; what lay between is gone. */
            c->placed = 0;
            if (place(c, tick, ctx, err, errlen) < 0)
                return r.found;
            c->seq = before;
            lost = 0;
        }
        if (c->seq != before)
            progress_ms = now_ms();
        else if (now_ms() - progress_ms > wait_ms)
            return r.found; /* the node never wrote them (a full disk): the caller reports it */
        if (tick)
            tick(ctx);
        if (s == STEP_END) {
            struct timespec pause = {0, POLL_MS * 1000000L};
            nanosleep(&pause, NULL);
        }
    }
}
