/* logfile: encodes each line as one JSON object and appends it with few, large writes.
 * Rotation happens only between whole lines, so no line is ever split across files. */
#include "node/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#define LOGFILE_WRITE_THRESHOLD (256u * 1024)
#define LOGFILE_PENDING_CAP (32u << 20)

static int logfile_open_current(struct logfile *lf)
{
    lf->fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (lf->fd < 0)
        return -errno;
    struct stat st;
    lf->size_bytes = fstat(lf->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

int logfile_open(struct logfile *lf, const char *logs_dir, uint64_t max_bytes, unsigned keep_files,
                 char *err, size_t errlen)
{
    memset(lf, 0, sizeof *lf);
    strbuf_init(&lf->pending);
    lf->max_bytes = max_bytes;
    lf->keep_files = keep_files;
    logformat_clock_init(&lf->clock);
    snprintf(lf->path, sizeof lf->path, "%s/%s", logs_dir, LOGFILE_NAME);
    int rc = logfile_open_current(lf);
    if (rc < 0) {
        snprintf(err, errlen, "cannot open log file %s: %s", lf->path, strerror(-rc));
        strbuf_free(&lf->pending);
        return -1;
    }
    return 0;
}

static void logfile_rotate(struct logfile *lf)
{
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    close(lf->fd);
    lf->fd = -1;
    if (lf->keep_files == 0) {
        unlink(lf->path);
    } else {
        for (unsigned i = lf->keep_files; i > 1; i--) {
            snprintf(from, sizeof from, "%s.%u", lf->path, i - 1);
            snprintf(to, sizeof to, "%s.%u", lf->path, i);
            rename(from, to);
        }
        snprintf(to, sizeof to, "%s.1", lf->path);
        rename(lf->path, to);
    }
    logfile_open_current(lf);
}

void logfile_on_line(void *ctx, const struct log_line *line)
{
    struct logfile *lf = ctx;
    if (lf->pending.len > LOGFILE_PENDING_CAP) {
        /* Writing has been failing for a while: keep memory bounded, count the loss. */
        lf->lines_lost++;
        return;
    }
    logformat_json(&lf->pending, line, &lf->clock);
    lf->pending_lines++;
    if (lf->pending.len >= LOGFILE_WRITE_THRESHOLD)
        logfile_flush(lf);
}

int logfile_flush(struct logfile *lf)
{
    if (lf->pending.len == 0)
        return 0;
    if (lf->fd < 0 && logfile_open_current(lf) < 0) {
        lf->last_errno = errno;
        return -lf->last_errno;
    }
    if (lf->max_bytes && lf->size_bytes > 0 && lf->size_bytes + lf->pending.len > lf->max_bytes) {
        /* Rotate at a line boundary; pending may itself be split over two files below. */
        size_t room = lf->max_bytes - (lf->size_bytes < lf->max_bytes ? lf->size_bytes : lf->max_bytes);
        size_t cut = 0;
        for (size_t i = 0; i < lf->pending.len && i < room; i++)
            if (lf->pending.data[i] == '\n')
                cut = i + 1;
        if (cut > 0) {
            ssize_t n = write(lf->fd, lf->pending.data, cut);
            if (n != (ssize_t)cut) {
                lf->last_errno = n < 0 ? errno : ENOSPC;
                return -lf->last_errno;
            }
            memmove(lf->pending.data, lf->pending.data + cut, lf->pending.len - cut);
            lf->pending.len -= cut;
        }
        logfile_rotate(lf);
        if (lf->fd < 0) {
            lf->last_errno = errno;
            return -lf->last_errno;
        }
    }
    size_t done = 0;
    while (done < lf->pending.len) {
        ssize_t n = write(lf->fd, lf->pending.data + done, lf->pending.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            lf->last_errno = n < 0 ? errno : ENOSPC;
            /* Keep the unwritten tail; if a partial line went out, finish it on the next try. */
            memmove(lf->pending.data, lf->pending.data + done, lf->pending.len - done);
            lf->pending.len -= done;
            lf->size_bytes += done;
            return -lf->last_errno;
        }
        done += (size_t)n;
    }
    lf->size_bytes += done;
    lf->lines_written += lf->pending_lines;
    lf->pending_lines = 0;
    strbuf_reset(&lf->pending);
    lf->last_errno = 0;
    return 0;
}

void logfile_close(struct logfile *lf)
{
    logfile_flush(lf);
    if (lf->fd >= 0)
        close(lf->fd);
    lf->fd = -1;
    strbuf_free(&lf->pending);
}
