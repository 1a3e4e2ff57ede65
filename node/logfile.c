/* logfile: stages each line as a compact record on the loop thread and hands records to a
 * writer thread, which encodes them as JSON objects and appends them with few, large writes.
 * Rotation happens only between whole lines, so no line is ever split across files. */
#include "node/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"

#define LOGFILE_CHUNK_BYTES (256u * 1024)   /* staged records handed over at a time */
#define LOGFILE_WRITE_THRESHOLD (256u * 1024) /* encoded bytes that trigger a write */
#define LOGFILE_PENDING_CAP (32u << 20)       /* encoded bytes kept while writes fail */
#define LOGFILE_BACKLOG_CHUNKS 16u            /* chunks handed over and not yet taken (4 MiB) */
/* While lines come, every chunk that can be in use is kept: a backlog the writer encodes, a
 * backlog the loop fills meanwhile, and the one it stages into. */
#define LOGFILE_SPARE_BUSY (2 * LOGFILE_BACKLOG_CHUNKS + 2)
#define LOGFILE_SPARE_IDLE 1u                 /* chunks kept after a second without lines */
#define LOGFILE_KEEP_CAPACITY (1u << 20)      /* an encode buffer larger than this is freed when empty */

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

/* Records staged by the loop, in order. A chunk holds LOGFILE_CHUNK_BYTES, or exactly one
 * record that is larger (never kept for reuse). Chunks are mappings of their own: a burst
 * reuses them without faulting pages in again, and the quiet after it gives them back to the
 * system for certain, which free() of heap memory does not. */
struct logfile_chunk {
    struct logfile_chunk *next;
    size_t cap, len;
    uint64_t lines;
    int reopen;               /* no records: the writer reopens the file here (SIGUSR1) */
    char data[];
};

/* What one round of the writer did, published under the lock. */
struct writer_result {
    uint64_t written, lost;
    int attempted;
    int err;
};

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
    if (lf->services)
        servicelog_write(lf->services); /* its own failures are its own: the main file decides r */
    if (r->err == 0) {
        r->written += lf->pending_lines;
        lf->pending_lines = 0;
    }
}

/* logrotate moved the file away: what was encoded before goes to the file it was logged
 * for, what follows to a new file at the path. A failed open is retried by the next write. */
static void writer_reopen(struct logfile *lf, struct writer_result *r)
{
    writer_flush(lf, r);
    if (lf->services)
        servicelog_reopen(lf->services);
    if (lf->fd >= 0)
        close(lf->fd);
    lf->fd = -1;
    logfile_open_current(lf);
}

/* Encodes one chunk of records, writing every LOGFILE_WRITE_THRESHOLD bytes. */
static void writer_encode(struct logfile *lf, const struct logfile_chunk *chunk, struct writer_result *r)
{
    size_t off = 0;
    while (off + sizeof(struct logfile_record) <= chunk->len) {
        struct logfile_record h;
        memcpy(&h, chunk->data + off, sizeof h);
        off += sizeof h;
        struct log_line line = {
            .seq = h.seq,
            .wall_ns = h.wall_ns,
            .service = chunk->data + off,
            .instance = h.instance,
            .pid = h.pid,
            .stream = (enum log_stream)h.stream,
            .level = (enum log_level)h.level,
            .flags = h.flags,
        };
        off += h.service_len;
        memcpy(line.trace_id, chunk->data + off, h.trace_len);
        line.trace_id[h.trace_len] = '\0';
        off += h.trace_len;
        line.text = chunk->data + off;
        line.len = h.text_len;
        off += h.text_len;
        if (lf->pending.len > LOGFILE_PENDING_CAP) {
            /* Writing has been failing for a while: keep memory bounded, count the loss. */
            r->lost++;
            continue;
        }
        logformat_json(&lf->pending, &line, &lf->format);
        lf->pending_lines++;
        if (lf->services)
            servicelog_append(lf->services, &line);
        if (lf->pending.len >= LOGFILE_WRITE_THRESHOLD && r->err == 0)
            writer_flush(lf, r);
    }
}

static struct logfile_chunk *chunk_map(size_t cap)
{
    void *p = mmap(NULL, sizeof(struct logfile_chunk) + cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    struct logfile_chunk *c = p;
    c->cap = cap;
    return c;
}

static void chunk_unmap(struct logfile_chunk *c)
{
    if (c)
        munmap(c, sizeof *c + c->cap);
}

/* Gives emptied chunks back for the loop to reuse, up to `keep`; frees the rest. Under lock. */
static void logfile_recycle(struct logfile *lf, struct logfile_chunk *chunks, size_t keep)
{
    while (chunks) {
        struct logfile_chunk *next = chunks->next;
        if (chunks->cap == LOGFILE_CHUNK_BYTES && lf->spare_count < keep) {
            chunks->next = lf->spare;
            lf->spare = chunks;
            lf->spare_count++;
        } else {
            chunk_unmap(chunks);
        }
        chunks = next;
    }
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
        if (!lf->queue) {
            lf->writer_busy = 0;
            pthread_cond_broadcast(&lf->idle);
            if (lf->stop)
                break;
            if (lf->pending.len == 0 && lf->spare_count <= LOGFILE_SPARE_IDLE) {
                pthread_cond_wait(&lf->wake, &lf->lock);
                continue;
            }
            /* A write failed: try again every second, even when no new line comes. And the
             * chunks a burst left are kept only until a second passes without lines. */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            if (pthread_cond_timedwait(&lf->wake, &lf->lock, &until) != ETIMEDOUT || lf->queue)
                continue;
            struct logfile_chunk *extra = lf->spare;
            lf->spare = NULL;
            lf->spare_count = 0;
            logfile_recycle(lf, extra, LOGFILE_SPARE_IDLE);
            if (lf->pending.len == 0)
                continue;
        }
        struct logfile_chunk *taken = lf->queue;
        lf->queue = NULL;
        lf->queue_tail = &lf->queue;
        lf->queued_chunks = 0;
        lf->writer_busy = 1;
        pthread_cond_broadcast(&lf->idle); /* room for a loop waiting on the backlog */
        pthread_mutex_unlock(&lf->lock);
        struct writer_result r = {0, 0, 0, 0};
        for (struct logfile_chunk *c = taken; c; c = c->next) {
            if (c->reopen)
                writer_reopen(lf, &r);
            else
                writer_encode(lf, c, &r);
        }
        if (r.err == 0)
            writer_flush(lf, &r);
        /* A burst grows the encode buffer only while writes fail; do not keep that. */
        if (lf->pending.len == 0 && lf->pending.cap > LOGFILE_KEEP_CAPACITY)
            strbuf_free(&lf->pending);
        pthread_mutex_lock(&lf->lock);
        writer_publish(lf, &r);
        logfile_recycle(lf, taken, LOGFILE_SPARE_BUSY);
    }
    pthread_mutex_unlock(&lf->lock);
    return NULL;
}

/* ---- the loop's side --------------------------------------------------------------------- */

int logfile_open(struct logfile *lf, const char *logs_dir, uint64_t max_bytes, unsigned keep_files,
                 char *err, size_t errlen)
{
    memset(lf, 0, sizeof *lf);
    lf->queue_tail = &lf->queue;
    strbuf_init(&lf->pending);
    lf->max_bytes = max_bytes;
    lf->keep_files = keep_files;
    logformat_cache_init(&lf->format);
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

void logfile_per_service(struct logfile *lf, const char *logs_dir)
{
    lf->services = xmalloc(sizeof *lf->services);
    servicelog_init(lf->services, logs_dir, lf->max_bytes, lf->keep_files);
}

/* A chunk to stage into with room for `need` bytes: a spare one when the writer gave one back.
 * Under lock. Returns NULL when out of memory. */
static struct logfile_chunk *logfile_take_chunk(struct logfile *lf, size_t need)
{
    struct logfile_chunk *c;
    if (need <= LOGFILE_CHUNK_BYTES && lf->spare) {
        c = lf->spare;
        lf->spare = c->next;
        lf->spare_count--;
    } else {
        size_t cap = need <= LOGFILE_CHUNK_BYTES ? LOGFILE_CHUNK_BYTES : need;
        c = chunk_map(cap);
        if (!c)
            return NULL;
    }
    c->next = NULL;
    c->len = 0;
    c->lines = 0;
    c->reopen = 0;
    return c;
}

/* Hands the staging chunk over (under lock): it joins the writer's queue, or its lines count
 * as lost when writes fail and the backlog is full. */
static void logfile_hand_over(struct logfile *lf)
{
    struct logfile_chunk *c = lf->staging;
    if (!c || c->len == 0)
        return;
    /* A writer this far behind makes the loop wait, as a blocking write did; one whose
     * writes fail cannot catch up, so then the lines are dropped and counted. */
    while (lf->queued_chunks >= LOGFILE_BACKLOG_CHUNKS && lf->last_errno == 0)
        pthread_cond_wait(&lf->idle, &lf->lock);
    if (lf->queued_chunks >= LOGFILE_BACKLOG_CHUNKS) {
        lf->lines_lost += c->lines;
        c->len = 0;
        c->lines = 0;
        return;
    }
    *lf->queue_tail = c;
    lf->queue_tail = &c->next;
    lf->queued_chunks++;
    lf->staging = NULL;
    pthread_cond_signal(&lf->wake);
}

void logfile_on_line(void *ctx, const struct log_line *line)
{
    struct logfile *lf = ctx;
    size_t service_len = strlen(line->service) + 1;
    size_t trace_len = line->trace_id[0] ? strnlen(line->trace_id, TRACE_ID_MAX) : 0;
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
    size_t need = sizeof h + h.service_len + trace_len + line->len;
    struct logfile_chunk *c = lf->staging;
    if (!c || c->cap - c->len < need) {
        pthread_mutex_lock(&lf->lock);
        logfile_hand_over(lf);
        if (!lf->staging)
            lf->staging = logfile_take_chunk(lf, need);
        c = lf->staging;
        if (!c)
            lf->lines_lost++;
        pthread_mutex_unlock(&lf->lock);
        if (!c)
            return;
    }
    char *p = c->data + c->len;
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    memcpy(p, h.service_len > 1 ? line->service : "", h.service_len);
    p += h.service_len;
    memcpy(p, line->trace_id, trace_len);
    p += trace_len;
    memcpy(p, line->text, line->len);
    c->len += need;
    c->lines++;
}

int logfile_flush(struct logfile *lf)
{
    pthread_mutex_lock(&lf->lock);
    logfile_hand_over(lf);
    int rc = -lf->last_errno;
    pthread_mutex_unlock(&lf->lock);
    return rc;
}

void logfile_reopen(struct logfile *lf)
{
    pthread_mutex_lock(&lf->lock);
    logfile_hand_over(lf);
    /* A mark in the queue rather than a flag: lines staged before it stay in the old file
     * and lines after it go to the new one, however far behind the writer is. */
    struct logfile_chunk *mark = logfile_take_chunk(lf, 0);
    if (mark) {
        mark->reopen = 1;
        *lf->queue_tail = mark;
        lf->queue_tail = &mark->next;
        lf->queued_chunks++;
        pthread_cond_signal(&lf->wake);
    }
    pthread_mutex_unlock(&lf->lock);
}

void logfile_sync(struct logfile *lf)
{
    logfile_flush(lf);
    pthread_mutex_lock(&lf->lock);
    while (lf->queue || lf->writer_busy)
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
    if (lf->services) {
        servicelog_close(lf->services);
        free(lf->services);
        lf->services = NULL;
    }
    pthread_cond_destroy(&lf->idle);
    pthread_cond_destroy(&lf->wake);
    pthread_mutex_destroy(&lf->lock);
    chunk_unmap(lf->staging); /* flushed above; holds lines only if they were counted lost */
    lf->staging = NULL;
    logfile_recycle(lf, lf->spare, 0);
    lf->spare = NULL;
    lf->spare_count = 0;
    strbuf_free(&lf->pending);
}
