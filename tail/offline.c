/* offline: a query streams through every log file once. Lines are filtered on raw bytes
 * first (a trace id is searched as the exact `"trace_id":"ID"` the node writes) so most are
 * never parsed; an unfiltered tail keeps only the newest raw lines and parses just those. */
#include "tail/offline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/logring.h"
#include "common/xalloc.h"
#include "tail/logfiles.h"

struct tail_scan {
    struct logfilter *filter;
    struct linebuf *out;
    /* unfiltered: a ring of the newest raw lines */
    char **raw;
    size_t raw_cap, raw_count, raw_start;
};

static int filter_is_empty(const struct logfilter *f)
{
    return f->target_count == 0 && !f->trace_id[0] && f->level_min == LOG_LEVEL_NONE && !f->has_grep;
}

static int on_raw_filtered(void *ctx, const char *raw, size_t len)
{
    struct tail_scan *scan = ctx;
    struct logfiles_record rec;
    if (logfiles_parse(raw, len, &rec) < 0)
        return 0;
    if (logfilter_match(scan->filter, &rec.tl.line))
        linebuf_add(scan->out, &rec.tl.line);
    logfiles_record_free(&rec);
    return 0;
}

static int on_raw_kept(void *ctx, const char *raw, size_t len)
{
    struct tail_scan *scan = ctx;
    char *copy = xstrndup(raw, len);
    size_t slot;
    if (scan->raw_count < scan->raw_cap) {
        slot = scan->raw_count++;
    } else {
        slot = scan->raw_start;
        free(scan->raw[slot]);
        scan->raw_start = (scan->raw_start + 1) % scan->raw_cap;
    }
    scan->raw[slot] = copy;
    return 0;
}

int offline_tail(const char *logs_dir, struct logfilter *f, int64_t backlog, struct linebuf *out,
                 char *err, size_t errlen)
{
    size_t keep = backlog <= 0 ? 0 : (uint64_t)backlog > SIZE_MAX / 16 ? 0 : (size_t)backlog;
    linebuf_init(out, keep);
    if (backlog == 0)
        return 0;
    struct tail_scan scan = {.filter = f, .out = out};
    /* Unfiltered with a bounded count: keep raw lines, parse only the survivors. Lines that turn
     * out not to be records (torn, foreign) cost a slot; a few extra slots make up for them. */
    if (filter_is_empty(f) && keep && keep <= 1000000) {
        scan.raw_cap = keep + 16;
        scan.raw = xcalloc(scan.raw_cap, sizeof *scan.raw);
        int files = logfiles_read(logs_dir, NULL, on_raw_kept, &scan, err, errlen);
        for (size_t i = 0; i < scan.raw_count; i++) {
            char *raw = scan.raw[(scan.raw_start + i) % scan.raw_cap];
            on_raw_filtered(&scan, raw, strlen(raw));
            free(raw);
        }
        free(scan.raw);
        return files;
    }
    char needle[TRACE_ID_MAX + 32];
    if (f->trace_id[0])
        snprintf(needle, sizeof needle, "\"trace_id\":\"%s\"", f->trace_id);
    return logfiles_read(logs_dir, f->trace_id[0] ? needle : NULL, on_raw_filtered, &scan, err, errlen);
}

struct trace_scan {
    struct logring ring;
    uint64_t seq;
};

static int on_traced_raw(void *ctx, const char *raw, size_t len)
{
    struct trace_scan *scan = ctx;
    struct logfiles_record rec;
    if (logfiles_parse(raw, len, &rec) < 0)
        return 0;
    if (rec.tl.line.trace_id[0]) {
        /* The ring wants consecutive seqs; the files may hold several node runs, each from 1. */
        rec.tl.line.seq = ++scan->seq;
        logring_append(&scan->ring, &rec.tl.line);
    }
    logfiles_record_free(&rec);
    return 0;
}

json_t *offline_traces(const char *logs_dir, size_t limit, char *err, size_t errlen)
{
    struct trace_scan scan = {.seq = 0};
    /* Lines are not kept (a tiny ring); summaries are, as many as the node would keep. */
    if (logring_init(&scan.ring, 1024, 1u << 18) < 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (logfiles_read(logs_dir, "\"trace_id\":\"", on_traced_raw, &scan, err, errlen) < 0) {
        logring_free(&scan.ring);
        return NULL;
    }
    const struct logring_trace **list = xcalloc(limit ? limit : 1, sizeof *list);
    size_t n = logring_traces_newest(&scan.ring, list, limit);
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct logring_trace *t = list[i];
        json_t *services = json_array();
        for (unsigned s = 0; s < t->service_count; s++)
            json_array_append_new(services, json_string(logring_service_name(&scan.ring, t->services[s])));
        json_array_append_new(rows, json_pack("{s:s, s:I, s:I, s:I, s:b, s:o}", "trace_id", t->id, "first_ns",
                                              (json_int_t)t->first_ns, "last_ns", (json_int_t)t->last_ns,
                                              "lines", (json_int_t)t->lines, "error", t->error,
                                              "services", services));
    }
    free(list);
    logring_free(&scan.ring);
    return rows;
}
