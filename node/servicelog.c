/* servicelog: one plain-text file per service beside the JSON-lines log, formatted and
 * written on the log writer's thread. Files rotate only between whole lines, as the main
 * log does, so a line is never split across two files. */
#include "node/servicelog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"

#define SERVICELOG_KEEP_CAPACITY (256u * 1024) /* a pending buffer larger than this is freed once written */

void servicelog_init(struct servicelog *sl, const char *logs_dir, uint64_t max_bytes, unsigned keep_files)
{
    memset(sl, 0, sizeof *sl);
    snprintf(sl->dir, sizeof sl->dir, "%s", logs_dir);
    sl->max_bytes = max_bytes;
    sl->keep_files = keep_files;
    sl->day_second = -1;
    logformat_cache_init(&sl->format);
}

static struct servicelog_file *file_of(struct servicelog *sl, const char *service)
{
    for (size_t i = 0; i < sl->count; i++)
        if (strcmp(sl->files[i].service, service) == 0)
            return &sl->files[i];
    if (sl->count == sl->cap) {
        sl->cap = sl->cap ? sl->cap * 2 : 8;
        sl->files = xrealloc(sl->files, sl->cap * sizeof *sl->files);
    }
    struct servicelog_file *f = &sl->files[sl->count++];
    memset(f, 0, sizeof *f);
    f->service = xstrdup(service);
    snprintf(f->path, sizeof f->path, "%s/%s%s", sl->dir, service, SERVICELOG_SUFFIX);
    f->fd = -1;
    strbuf_init(&f->pending);
    return f;
}

void servicelog_append(struct servicelog *sl, const struct log_line *line)
{
    struct servicelog_file *f = file_of(sl, line->service && line->service[0] ? line->service : "devnode");
    int64_t second = line->wall_ns / 1000000000;
    if (second != sl->day_second) {
        time_t t = (time_t)second;
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(sl->day, sizeof sl->day, "%Y-%m-%d ", &tm);
        sl->day_second = second;
    }
    strbuf_puts(&f->pending, sl->day);
    logformat_human(&f->pending, line, &sl->format, 0, 0);
}

static int file_open(struct servicelog_file *f)
{
    f->fd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (f->fd < 0)
        return -errno;
    struct stat st;
    f->size_bytes = fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

static void file_rotate(struct servicelog *sl, struct servicelog_file *f)
{
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    close(f->fd);
    f->fd = -1;
    if (sl->keep_files == 0) {
        unlink(f->path);
    } else {
        for (unsigned i = sl->keep_files; i > 1; i--) {
            snprintf(from, sizeof from, "%s.%u", f->path, i - 1);
            snprintf(to, sizeof to, "%s.%u", f->path, i);
            rename(from, to);
        }
        snprintf(to, sizeof to, "%s.1", f->path);
        rename(f->path, to);
    }
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -ENOSPC;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes f's pending lines: up to max_bytes per file, whole lines, then a new file; a line
 * longer than max_bytes gets a file of its own. */
static int file_write(struct servicelog *sl, struct servicelog_file *f)
{
    const char *p = f->pending.data;
    size_t left = f->pending.len;
    int rc = 0;
    while (left > 0) {
        if (f->fd < 0 && (rc = file_open(f)) < 0)
            break;
        size_t cut = left;
        if (sl->max_bytes && f->size_bytes + left > sl->max_bytes) {
            size_t room = f->size_bytes < sl->max_bytes ? (size_t)(sl->max_bytes - f->size_bytes) : 0;
            cut = 0;
            for (size_t i = 0; i < left && i < room; i++)
                if (p[i] == '\n')
                    cut = i + 1;
            if (cut == 0 && f->size_bytes == 0) {
                const char *nl = memchr(p, '\n', left);
                cut = nl ? (size_t)(nl - p) + 1 : left;
            }
        }
        if (cut > 0) {
            if ((rc = write_all(f->fd, p, cut)) < 0)
                break;
            f->size_bytes += cut;
            p += cut;
            left -= cut;
        }
        if (left > 0)
            file_rotate(sl, f);
    }
    if (rc < 0) {
        for (size_t i = 0; i < left; i++)
            sl->lines_lost += p[i] == '\n';
        if (f->fd >= 0)
            close(f->fd);
        f->fd = -1;
    }
    strbuf_reset(&f->pending);
    if (f->pending.cap > SERVICELOG_KEEP_CAPACITY)
        strbuf_free(&f->pending);
    return rc;
}

int servicelog_write(struct servicelog *sl)
{
    int first = 0;
    for (size_t i = 0; i < sl->count; i++) {
        if (sl->files[i].pending.len == 0)
            continue;
        int rc = file_write(sl, &sl->files[i]);
        if (rc < 0 && first == 0)
            first = rc;
    }
    sl->last_errno = -first;
    return first;
}

void servicelog_reopen(struct servicelog *sl)
{
    servicelog_write(sl);
    for (size_t i = 0; i < sl->count; i++) {
        if (sl->files[i].fd >= 0)
            close(sl->files[i].fd);
        sl->files[i].fd = -1;
    }
}

void servicelog_close(struct servicelog *sl)
{
    servicelog_reopen(sl);
    for (size_t i = 0; i < sl->count; i++) {
        free(sl->files[i].service);
        strbuf_free(&sl->files[i].pending);
    }
    free(sl->files);
    sl->files = NULL;
    sl->count = sl->cap = 0;
}
