/* logfiles: the log files may be large (keep_files x file_max_mb) and are being appended to
 * while we read, so lines are streamed with getline, filtered on raw bytes before any JSON
 * parsing, and a torn last line is simply not a record. */
#include "tail/logfiles.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOGFILES_BASE "devnode.jsonl"
#define LOGFILES_MAX_ROTATED 1000

static int read_one(const char *path, const char *needle, logfiles_raw_cb cb, void *ctx, int *stopped)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    size_t needle_len = needle ? strlen(needle) : 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        size_t len = (size_t)n;
        if (line[len - 1] != '\n')
            break; /* torn: the node is writing it right now */
        len--;
        if (needle_len && !memmem(line, len, needle, needle_len))
            continue;
        if (cb(ctx, line, len)) {
            *stopped = 1;
            break;
        }
    }
    free(line);
    fclose(f);
    return 0;
}

int logfiles_rotated_count(const char *logs_dir, char *err, size_t errlen)
{
    DIR *d = opendir(logs_dir);
    if (!d) {
        snprintf(err, errlen, "cannot read %s: %s", logs_dir, strerror(errno));
        return -1;
    }
    /* Which rotated files exist: their numbers, highest (oldest) first. */
    unsigned highest = 0;
    struct dirent *e;
    static const char prefix[] = LOGFILES_BASE ".";
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, sizeof prefix - 1) != 0)
            continue;
        const char *num = e->d_name + sizeof prefix - 1;
        if (!*num || strspn(num, "0123456789") != strlen(num))
            continue;
        unsigned long k = strtoul(num, NULL, 10);
        if (k > 0 && k <= LOGFILES_MAX_ROTATED && k > highest)
            highest = (unsigned)k;
    }
    closedir(d);
    return (int)highest;
}

void logfiles_path(const char *logs_dir, unsigned k, char *out, size_t cap)
{
    if (k == 0)
        snprintf(out, cap, "%s/%s", logs_dir, LOGFILES_BASE);
    else
        snprintf(out, cap, "%s/%s.%u", logs_dir, LOGFILES_BASE, k);
}

int logfiles_read(const char *logs_dir, const char *needle, logfiles_raw_cb cb, void *ctx, char *err,
                  size_t errlen)
{
    int rotated = logfiles_rotated_count(logs_dir, err, errlen);
    if (rotated < 0)
        return -1;
    unsigned highest = (unsigned)rotated;
    char path[PATH_MAX + 32];
    int files = 0, stopped = 0;
    for (unsigned k = highest; k >= 1 && !stopped; k--) {
        snprintf(path, sizeof path, "%s/%s.%u", logs_dir, LOGFILES_BASE, k);
        if (read_one(path, needle, cb, ctx, &stopped) == 0)
            files++;
    }
    snprintf(path, sizeof path, "%s/%s", logs_dir, LOGFILES_BASE);
    if (!stopped && read_one(path, needle, cb, ctx, &stopped) == 0)
        files++;
    return files;
}

/* "2026-11-23T11:30:00.123456Z" -> ns since the epoch; -1 if malformed. */
static int64_t logfiles_parse_time(const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int consumed = 0;
    if (sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec, &consumed) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t ns = 0;
    const char *p = iso + consumed;
    if (*p == '.') {
        int64_t scale = 100000000;
        for (p++; *p >= '0' && *p <= '9'; p++) {
            ns += (*p - '0') * scale;
            scale /= 10;
        }
    }
    if (*p != 'Z')
        return -1;
    time_t t = timegm(&tm);
    return (int64_t)t * 1000000000 + ns;
}

static int json_int(json_t *obj, const char *key, long long lo, long long hi, long long *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return -1;
    *out = json_integer_value(v);
    return *out < lo || *out > hi ? -1 : 0;
}

int logfiles_parse(const char *raw, size_t len, struct logfiles_record *out)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *j = json_loadb(raw, len, JSON_ALLOW_NUL, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return -1;
    }
    out->json = j;
    struct log_line *l = &out->tl.line;
    long long seq, instance, pid;
    json_t *time = json_object_get(j, "time"), *service = json_object_get(j, "service"),
           *stream = json_object_get(j, "stream"), *text = json_object_get(j, "text");
    if (!json_is_string(time) || !json_is_string(service) || !json_is_string(stream) || !json_is_string(text) ||
        json_int(j, "seq", 0, LLONG_MAX, &seq) < 0 || json_int(j, "instance", -1, INT_MAX, &instance) < 0 ||
        json_int(j, "pid", 0, INT_MAX, &pid) < 0)
        goto bad;
    l->wall_ns = logfiles_parse_time(json_string_value(time));
    if (l->wall_ns < 0)
        goto bad;
    l->seq = (uint64_t)seq;
    l->instance = (int)instance;
    l->pid = (int)pid;
    snprintf(out->tl.service, sizeof out->tl.service, "%s", json_string_value(service));
    l->service = out->tl.service;
    const char *s = json_string_value(stream);
    l->stream = !strcmp(s, "stderr") ? LOG_STREAM_STDERR : !strcmp(s, "node") ? LOG_STREAM_NODE : LOG_STREAM_STDOUT;
    json_t *level = json_object_get(j, "level");
    if (json_is_string(level)) {
        int lv = logparse_level_from_name(json_string_value(level));
        l->level = lv > 0 ? (enum log_level)lv : LOG_LEVEL_NONE;
    }
    json_t *trace = json_object_get(j, "trace_id");
    if (json_is_string(trace) && logfilter_trace_id_valid(json_string_value(trace)))
        snprintf(l->trace_id, sizeof l->trace_id, "%s", json_string_value(trace));
    l->flags = (json_is_true(json_object_get(j, "split")) ? LOG_LINE_SPLIT : 0u) |
               (json_is_true(json_object_get(j, "unterminated")) ? LOG_LINE_UNTERMINATED : 0u);
    l->text = json_string_value(text);
    l->len = json_string_length(text);
    return 0;
bad:
    logfiles_record_free(out);
    return -1;
}

void logfiles_record_free(struct logfiles_record *rec)
{
    json_decref(rec->json);
    rec->json = NULL;
}
