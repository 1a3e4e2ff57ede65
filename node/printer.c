/* printer: the loop stages each line as a compact record; a thread of the printer's own formats
 * the records for a human and writes them to stdout, so neither a slow reader nor formatting
 * costs the loop more than a copy. The thread may block on stdout; the loop never does.
 * A child's escape sequences are filtered: colour (SGR) survives when we print colour,
 * anything that moves the cursor or retitles the terminal never reaches it. */
#include "node/printer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define PRINTER_CHUNK_BYTES (256u * 1024) /* staged records handed over at a time */
#define PRINTER_WRITE_BYTES (128u * 1024) /* formatted bytes written at a time */
/* Chunks kept for reuse while lines come (a full backlog and the one being staged), and after
 * a second without lines. */
#define PRINTER_SPARE_BUSY (PRINTER_BACKLOG_BYTES / PRINTER_CHUNK_BYTES + 2)
#define PRINTER_SPARE_IDLE 1u

/* One staged line: this header, then the service name with its NUL, then the text. */
struct printer_record {
    int64_t wall_ns;
    int32_t instance;
    int32_t pid;
    uint32_t text_len;
    uint16_t service_len;
    uint8_t stream, level, flags;
};

/* Records staged by the loop, in order: PRINTER_CHUNK_BYTES, or one larger record. */
struct printer_chunk {
    struct printer_chunk *next;
    size_t cap, len;
    uint64_t lines;
    _Alignas(8) char data[];
};

/* Records start 8-byte aligned, so the header is written in place, not through the stack. */
static size_t record_size(size_t service_len, size_t text_len)
{
    return (sizeof(struct printer_record) + service_len + text_len + 7) & ~(size_t)7;
}

static size_t backlog_load(struct printer *p)
{
    return __atomic_load_n(&p->backlog_bytes, __ATOMIC_ACQUIRE);
}

/* ---- the thread ------------------------------------------------------------------------- */

/* Writes all of data, waiting for a pipe or terminal to take it. Returns 0, or -errno
 * (-ECANCELED when printer_close gave up) with *written set to what did go out. */
static int printer_write_all(struct printer *p, const char *data, size_t len, size_t *written)
{
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        ssize_t n = write(p->fd, data + done, len - done);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd fds[2] = {{.fd = p->fd, .events = POLLOUT}, {.fd = p->cancel_fd, .events = POLLIN}};
            if (poll(fds, 2, -1) < 0 && errno != EINTR) {
                rc = -errno;
                break;
            }
            if (__atomic_load_n(&p->abandon, __ATOMIC_ACQUIRE)) {
                rc = -ECANCELED;
                break;
            }
            continue;
        }
        rc = n < 0 ? -errno : -EIO;
        break;
    }
    *written = done;
    return rc;
}

static uint64_t count_newlines(const char *s, size_t len)
{
    uint64_t n = 0;
    for (const char *end = s + len; (s = memchr(s, '\n', (size_t)(end - s))); s++)
        n++;
    return n;
}

/* Writes what is formatted. Returns 0, or -errno with *lost_lines the lines that did not go out. */
static int printer_write_out(struct printer *p, uint64_t *lost_lines)
{
    size_t written;
    int rc = printer_write_all(p, p->out.data, p->out.len, &written);
    if (rc < 0)
        *lost_lines += count_newlines(p->out.data + written, p->out.len - written);
    strbuf_reset(&p->out);
    return rc;
}

/* Formats and writes one chunk. Returns 0, or -errno with *lost_lines set. */
static int printer_write_chunk(struct printer *p, const struct printer_chunk *c, uint64_t *lost_lines)
{
    size_t off = 0;
    uint64_t done = 0;
    while (off + sizeof(struct printer_record) <= c->len) {
        const struct printer_record *h = (const struct printer_record *)(c->data + off);
        const char *service = (const char *)(h + 1);
        struct log_line line = {
            .wall_ns = h->wall_ns,
            .service = service,
            .instance = h->instance,
            .pid = h->pid,
            .stream = (enum log_stream)h->stream,
            .level = (enum log_level)h->level,
            .flags = h->flags,
            .text = service + h->service_len,
            .len = h->text_len,
        };
        off += record_size(h->service_len, h->text_len);
        logformat_human(&p->out, &line, &p->clock, p->color, p->name_width);
        done++;
        if (p->out.len >= PRINTER_WRITE_BYTES) {
            int rc = printer_write_out(p, lost_lines);
            if (rc < 0) {
                *lost_lines += c->lines - done;
                return rc;
            }
        }
    }
    return printer_write_out(p, lost_lines);
}

/* Keeps an emptied chunk for reuse, up to `keep`. Under lock. */
static void printer_recycle(struct printer *p, struct printer_chunk *c, size_t keep)
{
    if (c->cap == PRINTER_CHUNK_BYTES && p->spare_count < keep) {
        c->next = p->spare;
        p->spare = c;
        p->spare_count++;
    } else {
        free(c);
    }
}

static void printer_trim_spares(struct printer *p, size_t keep)
{
    while (p->spare_count > keep) {
        struct printer_chunk *c = p->spare;
        p->spare = c->next;
        p->spare_count--;
        free(c);
    }
}

static void *printer_thread(void *arg)
{
    struct printer *p = arg;
    pthread_setname_np(pthread_self(), "devnode-print");
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (!p->queue) {
            if (p->stop)
                break;
            if (p->spare_count <= PRINTER_SPARE_IDLE) {
                pthread_cond_wait(&p->wake, &p->lock);
                continue;
            }
            /* The chunks a burst left are kept only until a second passes without lines. */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            if (pthread_cond_timedwait(&p->wake, &p->lock, &until) == ETIMEDOUT && !p->queue)
                printer_trim_spares(p, PRINTER_SPARE_IDLE);
            continue;
        }
        struct printer_chunk *c = p->queue;
        p->queue = c->next;
        if (!p->queue)
            p->queue_tail = &p->queue;
        int give_up = p->abandon || p->failed_errno;
        pthread_mutex_unlock(&p->lock);
        uint64_t lost = 0;
        int rc = 0;
        if (give_up)
            lost = c->lines;
        else
            rc = printer_write_chunk(p, c, &lost);
        size_t len = c->len;
        pthread_mutex_lock(&p->lock);
        if (rc < 0 && !p->failed_errno)
            p->failed_errno = -rc;
        p->failed_lines += lost;
        printer_recycle(p, c, PRINTER_SPARE_BUSY);
        size_t left = __atomic_sub_fetch(&p->backlog_bytes, len, __ATOMIC_RELEASE);
        /* The loop wants to hear when held-back output may flow again, and of a failure. */
        if ((left <= PRINTER_BACKLOG_LOW_BYTES && __atomic_load_n(&p->backlog, __ATOMIC_RELAXED) != PRINTER_CAUGHT_UP)
            || (rc < 0 && rc != -ECANCELED))
            uv_async_send(&p->wakeup);
    }
    p->thread_done = 1;
    pthread_mutex_unlock(&p->lock);
    uv_async_send(&p->wakeup); /* printer_close is waiting for this */
    return NULL;
}

/* ---- the loop's side ---------------------------------------------------------------------- */

static void printer_tell(struct printer *p, enum printer_event event)
{
    if (p->on_event)
        p->on_event(p->on_event_ctx, event);
}

/* Tells the owner whether to hold output back, from the backlog now (lossless only). */
static void printer_update_backlog(struct printer *p)
{
    if (!p->lossless || p->closing)
        return;
    size_t bytes = backlog_load(p);
    enum printer_event want = p->backlog;
    if (p->output_errno)
        want = PRINTER_CAUGHT_UP; /* nothing is printed any more: nothing to wait for */
    else if (bytes >= PRINTER_BACKLOG_HARD_BYTES)
        want = PRINTER_FULL;
    else if (bytes >= PRINTER_BACKLOG_BYTES && p->backlog == PRINTER_CAUGHT_UP)
        want = PRINTER_BEHIND;
    else if (bytes <= PRINTER_BACKLOG_LOW_BYTES)
        want = PRINTER_CAUGHT_UP;
    if (want == p->backlog)
        return;
    __atomic_store_n(&p->backlog, want, __ATOMIC_RELAXED);
    printer_tell(p, want);
}

static void printer_on_closed_handle(uv_handle_t *handle)
{
    (void)handle;
}

static void printer_on_wakeup(uv_async_t *async)
{
    struct printer *p = async->data;
    pthread_mutex_lock(&p->lock);
    int failed = p->failed_errno;
    p->unprinted_lines += p->failed_lines;
    p->failed_lines = 0;
    int finished = p->thread_done;
    pthread_mutex_unlock(&p->lock);
    if (failed && failed != ECANCELED && !p->output_errno) {
        p->output_errno = failed;
        if (!p->closing)
            printer_tell(p, PRINTER_OUTPUT_FAILED);
    }
    printer_update_backlog(p);
    if (!p->closing || !finished || !p->thread_running)
        return;
    pthread_join(p->thread, NULL);
    p->thread_running = 0;
    pthread_mutex_lock(&p->lock);
    p->unprinted_lines += p->failed_lines;
    p->failed_lines = 0;
    pthread_mutex_unlock(&p->lock);
    uv_close((uv_handle_t *)&p->wakeup, printer_on_closed_handle);
    uv_close((uv_handle_t *)&p->close_deadline, printer_on_closed_handle);
    printer_trim_spares(p, 0);
    free(p->staging); /* an empty one at most: printer_close handed the rest over */
    p->staging = NULL;
    strbuf_free(&p->out);
    close(p->cancel_fd);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    printer_tell(p, PRINTER_CLOSED);
}

int printer_open(struct printer *p, uv_loop_t *loop, int fd, int color, enum printer_mode mode,
                 printer_event_cb on_event, void *ctx, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->loop = loop;
    p->fd = fd;
    p->color = color;
    p->name_width = 7;
    p->on_event = on_event;
    p->on_event_ctx = ctx;
    p->queue_tail = &p->queue;
    p->backlog = PRINTER_CAUGHT_UP;
    p->cancel_fd = -1;
    struct stat st;
    int have_stat = fstat(fd, &st) == 0;
    if (have_stat && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))
        p->kind = PRINTER_DISCARD;
    else if (uv_guess_handle(fd) == UV_TTY)
        p->kind = PRINTER_TTY;
    else if (have_stat && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
        p->kind = PRINTER_FILE;
    else
        p->kind = PRINTER_PIPE; /* a pipe, a socket: anything whose reader may stall */
    p->lossless = mode == PRINTER_LOSSLESS || (mode == PRINTER_AUTO && p->kind != PRINTER_TTY);
    if (p->kind == PRINTER_DISCARD)
        return 0;
    logformat_cache_init(&p->clock);
    strbuf_init(&p->out);
    p->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->cancel_fd < 0) {
        snprintf(err, errlen, "cannot print to fd %d: eventfd: %s", fd, strerror(errno));
        return -1;
    }
    /* The thread waits for a pipe or terminal with poll, so it can be told to give up. */
    if (p->kind != PRINTER_FILE) {
        int flags = fcntl(fd, F_GETFL);
        if (flags >= 0)
            fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    uv_async_init(loop, &p->wakeup, printer_on_wakeup);
    p->wakeup.data = p;
    uv_timer_init(loop, &p->close_deadline);
    p->close_deadline.data = p;
    /* Signals are the loop's business: the thread starts with all of them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&p->thread, NULL, printer_thread, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the printer thread: %s", strerror(rc));
        uv_close((uv_handle_t *)&p->wakeup, NULL);
        uv_close((uv_handle_t *)&p->close_deadline, NULL);
        close(p->cancel_fd);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        return -1;
    }
    p->thread_running = 1;
    return 0;
}

void printer_set_name_width(struct printer *p, size_t width)
{
    p->name_width = width;
}

/* Hands the staging chunk to the thread. */
static void printer_hand_over(struct printer *p)
{
    struct printer_chunk *c = p->staging;
    if (!c || c->len == 0)
        return;
    p->staging = NULL;
    __atomic_add_fetch(&p->backlog_bytes, c->len, __ATOMIC_RELEASE);
    pthread_mutex_lock(&p->lock);
    c->next = NULL;
    *p->queue_tail = c;
    p->queue_tail = &c->next;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    printer_update_backlog(p);
}

static struct printer_chunk *printer_take_chunk(struct printer *p, size_t need)
{
    struct printer_chunk *c = NULL;
    if (need <= PRINTER_CHUNK_BYTES) {
        pthread_mutex_lock(&p->lock);
        if (p->spare) {
            c = p->spare;
            p->spare = c->next;
            p->spare_count--;
        }
        pthread_mutex_unlock(&p->lock);
    }
    if (!c) {
        size_t cap = need <= PRINTER_CHUNK_BYTES ? PRINTER_CHUNK_BYTES : need;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
    }
    c->next = NULL;
    c->len = 0;
    c->lines = 0;
    return c;
}

static void printer_stage(struct printer *p, const struct log_line *line)
{
    size_t service_len = strlen(line->service) + 1;
    if (service_len > UINT16_MAX)
        service_len = 1;
    size_t need = record_size(service_len, line->len);
    struct printer_chunk *c = p->staging;
    if (!c || c->cap - c->len < need) {
        printer_hand_over(p);
        if (p->staging) { /* empty, but too small for this line */
            free(p->staging);
            p->staging = NULL;
        }
        c = p->staging = printer_take_chunk(p, need);
        if (!c) {
            p->unprinted_lines++;
            return;
        }
    }
    struct printer_record *h = (struct printer_record *)(c->data + c->len);
    h->wall_ns = line->wall_ns;
    h->instance = line->instance;
    h->pid = line->pid;
    h->text_len = (uint32_t)line->len;
    h->service_len = (uint16_t)service_len;
    h->stream = (uint8_t)line->stream;
    h->level = (uint8_t)line->level;
    h->flags = (uint8_t)line->flags;
    char *dst = (char *)(h + 1);
    memcpy(dst, service_len > 1 ? line->service : "", service_len);
    memcpy(dst + service_len, line->text, line->len);
    c->len += need;
    c->lines++;
}

void printer_on_line(void *ctx, const struct log_line *line)
{
    struct printer *p = ctx;
    if (p->closing || p->kind == PRINTER_DISCARD || p->output_errno)
        return;
    if (!p->lossless) {
        size_t queued = backlog_load(p) + (p->staging ? p->staging->len : 0);
        if (queued > PRINTER_BACKLOG_BYTES) {
            p->skipped_lines++;
            return;
        }
        if (p->skipped_lines) {
            char note[160];
            int n = snprintf(note, sizeof note,
                             "[devnode: %llu lines not shown, the terminal was too slow; all are in the log file]",
                             (unsigned long long)p->skipped_lines);
            struct log_line notice = {.wall_ns = line->wall_ns, .service = "devnode", .instance = -1,
                                      .pid = line->pid, .stream = LOG_STREAM_NODE, .level = LOG_LEVEL_WARNING,
                                      .text = note, .len = (size_t)n};
            p->skipped_lines = 0;
            printer_stage(p, &notice);
        }
    }
    printer_stage(p, line);
}

void printer_flush(struct printer *p)
{
    if (p->kind != PRINTER_DISCARD && !p->closing)
        printer_hand_over(p);
}

static void printer_on_close_deadline(uv_timer_t *timer)
{
    /* Nobody takes our stdout (a full pipe, a stopped terminal): give up on the last lines,
     * they are in the log file, and let the node exit. */
    struct printer *p = timer->data;
    __atomic_store_n(&p->abandon, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&p->lock);
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    uint64_t one = 1;
    if (write(p->cancel_fd, &one, sizeof one) < 0) {
        /* an eventfd write fails only past 2^64-2: the thread is awake already */
    }
}

void printer_close(struct printer *p)
{
    if (p->closing)
        return;
    if (p->kind == PRINTER_DISCARD) {
        p->closing = 1;
        return;
    }
    printer_hand_over(p);
    p->closing = 1;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    uv_timer_start(&p->close_deadline, printer_on_close_deadline,
                   p->lossless ? PRINTER_LOSSLESS_CLOSE_DEADLINE_MS : PRINTER_CLOSE_DEADLINE_MS, 0);
    uv_async_send(&p->wakeup); /* the thread may have finished already */
}
