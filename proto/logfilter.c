/* logfilter: cheap tests first (service, level, trace), the regex last: in the node this runs
 * per line per follower during bursts. Text is never NUL-terminated, so the regex is matched
 * with REG_STARTEND over exactly the line's bytes. */
#include "proto/logfilter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void logfilter_init(struct logfilter *f)
{
    memset(f, 0, sizeof *f);
}

void logfilter_free(struct logfilter *f)
{
    if (f->has_grep)
        regfree(&f->grep);
    f->has_grep = 0;
    free(f->grep_buf);
    f->grep_buf = NULL;
    f->grep_buf_cap = 0;
}

int logfilter_trace_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TRACE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int logfilter_add_target(struct logfilter *f, const char *spec, char *err, size_t errlen)
{
    if (f->target_count == LOGFILTER_MAX_TARGETS) {
        snprintf(err, errlen, "at most %d services per tail", LOGFILTER_MAX_TARGETS);
        return -1;
    }
    struct logfilter_target *t = &f->targets[f->target_count];
    size_t len = strlen(spec);
    t->instance = -1;
    const char *dot = strrchr(spec, '.');
    if (dot && dot[1] && strspn(dot + 1, "0123456789") == strlen(dot + 1)) {
        char *end;
        long n = strtol(dot + 1, &end, 10);
        if (n > 1000000) {
            snprintf(err, errlen, "'%s': instance index %s is out of range", spec, dot + 1);
            return -1;
        }
        t->instance = (int)n;
        len = (size_t)(dot - spec);
    }
    if (len == 0 || len > LOGFILTER_NAME_MAX) {
        snprintf(err, errlen, "'%s' is not a service name (SERVICE or SERVICE.N)", spec);
        return -1;
    }
    memcpy(t->service, spec, len);
    t->service[len] = '\0';
    f->target_count++;
    return 0;
}

int logfilter_set_trace(struct logfilter *f, const char *trace_id, char *err, size_t errlen)
{
    if (!logfilter_trace_id_valid(trace_id)) {
        snprintf(err, errlen, "'%s' is not a trace id (1-%d of A-Z a-z 0-9 _ -)", trace_id, TRACE_ID_MAX);
        return -1;
    }
    snprintf(f->trace_id, sizeof f->trace_id, "%s", trace_id);
    return 0;
}

int logfilter_set_level(struct logfilter *f, const char *level, char *err, size_t errlen)
{
    int l = logparse_level_from_name(level);
    if (l <= LOG_LEVEL_NONE) {
        snprintf(err, errlen, "'%s' is not a level (debug, info, warning, error, critical)", level);
        return -1;
    }
    f->level_min = (enum log_level)l;
    return 0;
}

int logfilter_set_grep(struct logfilter *f, const char *pattern, char *err, size_t errlen)
{
    if (f->has_grep)
        regfree(&f->grep);
    f->has_grep = 0;
    int rc = regcomp(&f->grep, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[160];
        regerror(rc, &f->grep, why, sizeof why);
        regfree(&f->grep);
        snprintf(err, errlen, "bad pattern '%s': %s", pattern, why);
        return -1;
    }
    f->has_grep = 1;
    return 0;
}

static int target_match(const struct logfilter *f, const struct log_line *line)
{
    if (f->target_count == 0)
        return 1;
    for (size_t i = 0; i < f->target_count; i++) {
        const struct logfilter_target *t = &f->targets[i];
        if ((t->instance < 0 || t->instance == line->instance) && strcmp(t->service, line->service) == 0)
            return 1;
    }
    return 0;
}

/* regexec wants a NUL-terminated string (REG_STARTEND notwithstanding, sanitizers and other
 * libcs read up to the NUL), and a line's text in the ring is not: match a copy. */
static const char *grep_text(struct logfilter *f, const struct log_line *line)
{
    if (line->len + 1 > f->grep_buf_cap) {
        size_t cap = line->len + 1 < 256 ? 256 : line->len + 1;
        char *p = realloc(f->grep_buf, cap);
        if (!p)
            abort();
        f->grep_buf = p;
        f->grep_buf_cap = cap;
    }
    if (line->len)
        memcpy(f->grep_buf, line->text, line->len);
    f->grep_buf[line->len] = '\0';
    return f->grep_buf;
}

int logfilter_match(struct logfilter *f, const struct log_line *line)
{
    if (!target_match(f, line))
        return 0;
    if (f->level_min != LOG_LEVEL_NONE && line->level < f->level_min)
        return 0;
    if (f->trace_id[0] && strcmp(f->trace_id, line->trace_id) != 0)
        return 0;
    if (f->has_grep) {
        /* REG_STARTEND: the whole line, even past a NUL byte in it */
        regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)line->len};
        if (regexec(&f->grep, grep_text(f, line), 1, &m, REG_STARTEND) != 0)
            return 0;
    }
    return 1;
}
