/* logfile: stages each line as a compact record on the loop thread and hands records to a
 * writer thread, which encodes them as JSON objects and appends them with few, large writes.
 * Rotation happens only between whole lines, so no line is ever split across files. */
#include "node/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOGFILE_STAGE_THRESHOLD (256u * 1024) /* staged bytes that trigger a hand-over */
#define LOGFILE_WRITE_THRESHOLD (256u * 1024) /* encoded bytes that trigger a write */
#define LOGFILE_PENDING_CAP (32u << 20)       /* encoded bytes kept while writes fail */
#define LOGFILE_BACKLOG_CAP (32u << 20)       /* records handed over and not yet taken */
#define LOGFILE_KEEP_CAPACITY (1u << 20)      /* buffers larger than this are freed when empty */

/* One staged line: this header, then the service name with its NUL, the trace id, the text. */
struct logfile_record {
    int64_t wall_ns;
    uint64_t seq;
    int32_t instance;
    int32_t pid;
    uint32_t text_len;
    uint16_t service_len;
    uint8_t stream, level, flags, trace_len;
};

/* What one round of the writer did, published under the lock. */
struct writer_result {
    uint64_t written, lost;
    int attempted;
    int err;
};

static void strbuf_swap(struct strbuf *a, struct strbuf *b)
{
    struct strbuf t = *a;
    *a = *b;
    *b = t;
}

static int logfile_open_current(struct logfile *lf)
{
    lf->fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (lf->fd < 0)
        return -errno;
    struct stat st;
    lf->size_bytes = fstat(lf->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
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

/* ---- the writer thread ------------------------------------------------------------------ */

/* Writes what is encoded. Returns 0, or -errno (the unwritten tail stays pending). */
static int writer_write_pending(struct logfile *lf)
{
    if (lf->pending.len == 0)
        return 0;
    if (lf->fd < 0 && logfile_open_current(lf) < 0)
        return -errno;
    /* Fill the file up to max_bytes with whole lines, rotate, go on: a large batch may span
     * several files, and a single line longer than max_bytes gets a file of its own. */
    while (lf->max_bytes && lf->size_bytes + lf->pending.len > lf->max_bytes) {
        size_t room = lf->max_bytes - (lf->size_bytes < lf->max_bytes ? lf->size_bytes : lf->max_bytes);
        size_t cut = 0;
        for (size_t i = 0; i < lf->pending.len && i < room; i++)
            if (lf->pending.data[i] == '\n')
                cut = i + 1;
        if (cut == 0 && lf->size_bytes == 0) {
            const char *nl = memchr(lf->pending.data, '\n', lf->pending.len);
            cut = nl ? (size_t)(nl - lf->pending.data) + 1 : lf->pending.len;
        }
        if (cut > 0) {
            ssize_t n = write(lf->fd, lf->pending.data, cut);
            if (n != (ssize_t)cut)
                return n < 0 ? -errno : -ENOSPC;
            lf->size_bytes += cut;
            memmove(lf->pending.data, lf->pending.data + cut, lf->pending.len - cut);
            lf->pending.len -= cut;
        }
        if (lf->pending.len == 0)
            break;
        logfile_rotate(lf);
        if (lf->fd < 0)
            return -errno;
    }
    size_t done = 0;
    while (done < lf->pending.len) {
        ssize_t n = write(lf->fd, lf->pending.data + done, lf->pending.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : ENOSPC;
            /* Keep the unwritten tail; if a partial line went out, finish it on the next try. */
            memmove(lf->pending.data, lf->pending.data + done, lf->pending.len - done);
            lf->pending.len -= done;
            lf->size_bytes += done;
            return -err;
        }
        done += (size_t)n;
    }
    lf->size_bytes += done;
    strbuf_reset(&lf->pending);
    return 0;
}

static void writer_flush(struct logfile *lf, struct writer_result *r)
{
    if (lf->pending.len == 0)
        return;
    r->attempted = 1;
    r->err = -writer_write_pending(lf);
    if (r->err == 0) {
        r->written += lf->pending_lines;
        lf->pending_lines = 0;
    }
}

/* Encodes the records taken from the loop, writing every LOGFILE_WRITE_THRESHOLD bytes. */
static void writer_encode(struct logfile *lf, struct writer_result *r)
{
    size_t off = 0;
    while (off + sizeof(struct logfile_record) <= lf->work.len) {
        struct logfile_record h;
        memcpy(&h, lf->work.data + off, sizeof h);
        off += sizeof h;
        struct log_line line = {
            .seq = h.seq,
            .wall_ns = h.wall_ns,
            .service = lf->work.data + off,
            .instance = h.instance,
            .pid = h.pid,
            .stream = (enum log_stream)h.stream,
            .level = (enum log_level)h.level,
            .flags = h.flags,
        };
        off += h.service_len;
        memcpy(line.trace_id, lf->work.data + off, h.trace_len);
        line.trace_id[h.trace_len] = '\0';
        off += h.trace_len;
        line.text = lf->work.data + off;
        line.len = h.text_len;
        off += h.text_len;
        if (lf->pending.len > LOGFILE_PENDING_CAP) {
            /* Writing has been failing for a while: keep memory bounded, count the loss. */
            r->lost++;
            continue;
        }
        logformat_json(&lf->pending, &line, &lf->clock);
        lf->pending_lines++;
        if (lf->pending.len >= LOGFILE_WRITE_THRESHOLD && r->err == 0)
            writer_flush(lf, r);
    }
    /* A burst grows the buffers; the quiet time after it should not keep them. */
    if (lf->work.cap > LOGFILE_KEEP_CAPACITY)
        strbuf_free(&lf->work);
    else
        strbuf_reset(&lf->work);
    if (r->err == 0)
        writer_flush(lf, r);
    if (lf->pending.len == 0 && lf->pending.cap > LOGFILE_KEEP_CAPACITY)
        strbuf_free(&lf->pending);
}

static void writer_publish(struct logfile *lf, const struct writer_result *r)
{
    lf->lines_written += r->written;
    lf->lines_lost += r->lost;
    if (r->attempted)
        lf->last_errno = r->err;
}

static void *logfile_writer(void *arg)
{
    struct logfile *lf = arg;
    pthread_setname_np(pthread_self(), "devnode-log");
    pthread_mutex_lock(&lf->lock);
    for (;;) {
        if (lf->handoff.len == 0) {
            lf->writer_busy = 0;
            pthread_cond_broadcast(&lf->idle);
            if (lf->stop)
                break;
            if (lf->pending.len == 0) {
                pthread_cond_wait(&lf->wake, &lf->lock);
                continue;
            }
            /* A write failed: try again every second, even when no new line comes. */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            if (pthread_cond_timedwait(&lf->wake, &lf->lock, &until) != ETIMEDOUT || lf->handoff.len)
                continue;
        }
        strbuf_swap(&lf->handoff, &lf->work);
        lf->handoff_lines = 0;
        lf->writer_busy = 1;
        pthread_cond_broadcast(&lf->idle); /* room for a loop waiting on the backlog */
        pthread_mutex_unlock(&lf->lock);
        struct writer_result r = {0, 0, 0, 0};
        writer_encode(lf, &r);
        pthread_mutex_lock(&lf->lock);
        writer_publish(lf, &r);
    }
    pthread_mutex_unlock(&lf->lock);
    return NULL;
}

/* ---- the loop's side --------------------------------------------------------------------- */

int logfile_open(struct logfile *lf, const char *logs_dir, uint64_t max_bytes, unsigned keep_files,
                 char *err, size_t errlen)
{
    memset(lf, 0, sizeof *lf);
    strbuf_init(&lf->staged);
    strbuf_init(&lf->handoff);
    strbuf_init(&lf->work);
    strbuf_init(&lf->pending);
    lf->max_bytes = max_bytes;
    lf->keep_files = keep_files;
    logformat_clock_init(&lf->clock);
    snprintf(lf->path, sizeof lf->path, "%s/%s", logs_dir, LOGFILE_NAME);
    int rc = logfile_open_current(lf);
    if (rc < 0) {
        snprintf(err, errlen, "cannot open log file %s: %s", lf->path, strerror(-rc));
        return -1;
    }
    pthread_mutex_init(&lf->lock, NULL);
    pthread_cond_init(&lf->wake, NULL);
    pthread_cond_init(&lf->idle, NULL);
    /* Signals are the loop's business: the writer starts with all of them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&lf->thread, NULL, logfile_writer, lf);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the log writer thread: %s", strerror(rc));
        close(lf->fd);
        pthread_cond_destroy(&lf->idle);
        pthread_cond_destroy(&lf->wake);
        pthread_mutex_destroy(&lf->lock);
        return -1;
    }
    return 0;
}

void logfile_on_line(void *ctx, const struct log_line *line)
{
    struct logfile *lf = ctx;
    size_t service_len = strlen(line->service) + 1, trace_len = strnlen(line->trace_id, TRACE_ID_MAX);
    struct logfile_record h = {
        .wall_ns = line->wall_ns,
        .seq = line->seq,
        .instance = line->instance,
        .pid = line->pid,
        .text_len = (uint32_t)line->len,
        .service_len = (uint16_t)(service_len <= UINT16_MAX ? service_len : 1),
        .stream = (uint8_t)line->stream,
        .level = (uint8_t)line->level,
        .flags = (uint8_t)line->flags,
        .trace_len = (uint8_t)trace_len,
    };
    strbuf_append(&lf->staged, (const char *)&h, sizeof h);
    strbuf_append(&lf->staged, h.service_len > 1 ? line->service : "", h.service_len);
    strbuf_append(&lf->staged, line->trace_id, trace_len);
    strbuf_append(&lf->staged, line->text, line->len);
    lf->staged_lines++;
    if (lf->staged.len >= LOGFILE_STAGE_THRESHOLD)
        logfile_flush(lf);
}

int logfile_flush(struct logfile *lf)
{
    pthread_mutex_lock(&lf->lock);
    if (lf->staged.len > 0) {
        /* A writer this far behind makes the loop wait, as a blocking write did; one whose
         * writes fail cannot catch up, so then the lines are dropped and counted. */
        while (lf->handoff.len >= LOGFILE_BACKLOG_CAP && lf->last_errno == 0)
            pthread_cond_wait(&lf->idle, &lf->lock);
        if (lf->handoff.len >= LOGFILE_BACKLOG_CAP) {
            lf->lines_lost += lf->staged_lines;
        } else {
            if (lf->handoff.len == 0)
                strbuf_swap(&lf->staged, &lf->handoff);
            else
                strbuf_append(&lf->handoff, lf->staged.data, lf->staged.len);
            lf->handoff_lines += lf->staged_lines;
            pthread_cond_signal(&lf->wake);
        }
        strbuf_reset(&lf->staged);
        lf->staged_lines = 0;
    }
    int rc = -lf->last_errno;
    pthread_mutex_unlock(&lf->lock);
    return rc;
}

void logfile_sync(struct logfile *lf)
{
    logfile_flush(lf);
    pthread_mutex_lock(&lf->lock);
    while (lf->handoff.len > 0 || lf->writer_busy)
        pthread_cond_wait(&lf->idle, &lf->lock);
    pthread_mutex_unlock(&lf->lock);
}

void logfile_health(struct logfile *lf, uint64_t *lines_lost, int *last_errno)
{
    pthread_mutex_lock(&lf->lock);
    *lines_lost = lf->lines_lost;
    *last_errno = lf->last_errno;
    pthread_mutex_unlock(&lf->lock);
}

void logfile_close(struct logfile *lf)
{
    logfile_flush(lf);
    pthread_mutex_lock(&lf->lock);
    lf->stop = 1;
    pthread_cond_signal(&lf->wake);
    pthread_mutex_unlock(&lf->lock);
    pthread_join(lf->thread, NULL);
    if (lf->fd >= 0)
        close(lf->fd);
    lf->fd = -1;
    pthread_cond_destroy(&lf->idle);
    pthread_cond_destroy(&lf->wake);
    pthread_mutex_destroy(&lf->lock);
    strbuf_free(&lf->staged);
    strbuf_free(&lf->handoff);
    strbuf_free(&lf->work);
    strbuf_free(&lf->pending);
}
