/* model: plain data and the rules of the log view. Lines arrive at up to ~100,000/s, so a
 * line costs one allocation, one filter test and, while a trace is open, one comparison;
 * the filtered view is an index kept in step with the buffer, never rebuilt per frame. */
#include "tui/model.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "common/logformat.h"
#include "common/xalloc.h"
#include "proto/proto.h"

static const char *const state_names[] = {
    [MODEL_STATE_UNKNOWN] = "?",          [MODEL_STATE_STARTING] = "starting", [MODEL_STATE_RUNNING] = "running",
    [MODEL_STATE_BACKOFF] = "backoff",    [MODEL_STATE_STOPPING] = "stopping", [MODEL_STATE_STOPPED] = "stopped",
    [MODEL_STATE_EXITED] = "exited",      [MODEL_STATE_FAILED] = "failed",   [MODEL_STATE_WAITING] = "waiting",
    [MODEL_STATE_COMPLETED] = "completed", [MODEL_STATE_DISABLED] = "disabled",
};

const char *model_state_name(enum model_state state)
{
    return (unsigned)state < sizeof state_names / sizeof state_names[0] ? state_names[state] : "?";
}

void model_init(struct model *m, size_t line_cap)
{
    memset(m, 0, sizeof *m);
    m->logs.cap = line_cap ? line_cap : MODEL_LINES_DEFAULT;
    m->logs.ring = xrealloc(NULL, m->logs.cap * sizeof *m->logs.ring);
    m->logs.match = xrealloc(NULL, m->logs.cap * sizeof *m->logs.match);
    m->logs.first = m->logs.next = 1;
    m->logs.follow = 1;
    m->logs.name_width = 7;
    m->filter.name = -1;
    m->filter.instance = -1;
    m->filter.level_min = LOG_LEVEL_NONE;
    m->table.instance = -1;
    strbuf_init(&m->scratch);
}

static void free_services(struct model_service *services, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(services[i].name);
        free(services[i].instances);
    }
    free(services);
}

static void trace_free_lines(struct model_trace *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->lines[i]);
    t->count = 0;
}

void model_free(struct model *m)
{
    free_services(m->services, m->service_count);
    for (uint64_t n = m->logs.first; n < m->logs.next; n++)
        free(m->logs.ring[n % m->logs.cap]);
    free(m->logs.ring);
    free(m->logs.match);
    for (size_t i = 0; i < m->name_count; i++)
        free(m->names[i].text);
    trace_free_lines(&m->trace);
    free(m->trace.lines);
    strbuf_free(&m->scratch);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- status */

static int clamp_int(int64_t v)
{
    return (int)(v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : v);
}

/* A display string: cut to cap-1 bytes, no control bytes. */
static void copy_str(struct proto_status_str s, char *out, size_t cap)
{
    proto_status_str_copy(s, out, cap);
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
}

static enum model_state state_from_name(struct proto_status_str v)
{
    for (int s = MODEL_STATE_STARTING; s <= MODEL_STATE_LAST; s++)
        if (v.ptr && v.len == strlen(state_names[s]) && memcmp(v.ptr, state_names[s], v.len) == 0)
            return (enum model_state)s;
    return MODEL_STATE_UNKNOWN;
}

static void parse_instance(const struct proto_status_instance_view *o, struct model_instance *inst)
{
    memset(inst, 0, sizeof *inst);
    inst->index = clamp_int(o->index);
    inst->state = state_from_name(o->state);
    inst->pid = clamp_int(o->pid);
    inst->restarts = o->restarts;
    inst->uptime_ms = o->uptime_ms;
    inst->cpu_percent = o->cpu_percent;
    inst->rss_kib = o->rss_kib;
    if (o->has_exit) {
        inst->has_exit = 1;
        inst->exit_code = o->exit_has_code ? clamp_int(o->exit_code) : -1;
        copy_str(o->exit_signal, inst->exit_signal, sizeof inst->exit_signal);
    }
    copy_str(o->failure, inst->failure, sizeof inst->failure);
    copy_str(o->waiting, inst->waiting, sizeof inst->waiting);
    if (o->port_is_int)
        snprintf(inst->port, sizeof inst->port, "%lld", (long long)o->port_int);
    else
        copy_str(o->port, inst->port, sizeof inst->port);
    if (o->has_health && o->health_failures > 0) {
        char error[128];
        copy_str(o->health_error, error, sizeof error);
        snprintf(inst->health, sizeof inst->health, "live %lld/%lld: %s", (long long)o->health_failures,
                 (long long)o->health_failures_max, error);
    }
}

static int str_eq(struct proto_status_str a, struct proto_status_str b)
{
    return a.ptr && b.ptr && a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* The warning of the first socket of service `s` (a status entry) that has one. */
static void service_socket_warning(const struct proto_status *st, const struct proto_status_service_view *s,
                                   char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < st->socket_count && !out[0]; i++)
        for (size_t k = 0; k < s->socket_count; k++)
            if (str_eq(s->sockets[k], st->sockets[i].name)) {
                copy_str(st->sockets[i].warning, out, cap);
                break;
            }
}

static const struct model_service *find_service(const struct model *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->service_count; i++)
        if (strlen(m->services[i].name) == len && memcmp(m->services[i].name, name, len) == 0)
            return &m->services[i];
    return NULL;
}

int model_apply_status(struct model *m, const msgpack_object *body)
{
    struct proto_status st;
    if (proto_unpack_status(body, &st) < 0) {
        proto_status_free(&st);
        return -1;
    }
    m->node.known = 1;
    m->node.pid = clamp_int(st.pid);
    copy_str(st.endpoint, m->node.endpoint, sizeof m->node.endpoint);
    copy_str(st.config, m->node.config, sizeof m->node.config);
    m->node.uptime_ms = st.uptime_ms;
    m->node.cpu_percent = st.cpu_percent;
    m->node.rss_kib = st.rss_kib;
    m->node.stopping = st.stopping;

    /* Remember the selected row by name and index so a refresh keeps it. */
    char *sel_name = NULL;
    int sel_index = -1;
    if (m->table.service < m->service_count) {
        sel_name = m->services[m->table.service].name;
        if (m->table.instance >= 0 && (size_t)m->table.instance < m->services[m->table.service].count)
            sel_index = m->services[m->table.service].instances[m->table.instance].index;
    }

    size_t n = st.service_count;
    struct model_service *fresh = xrealloc(NULL, (n ? n : 1) * sizeof *fresh);
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const struct proto_status_service_view *s = &st.services[i];
        if (!s->name.ptr || s->name.len == 0)
            continue;
        struct model_service *svc = &fresh[count++];
        memset(svc, 0, sizeof *svc);
        svc->name = xstrndup(s->name.ptr, s->name.len);
        for (char *c = svc->name; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
        svc->desired = clamp_int(s->desired);
        svc->running = clamp_int(s->running);
        svc->has_socket = s->socket_count > 0;
        service_socket_warning(&st, s, svc->warning, sizeof svc->warning);
        svc->cap = s->instance_count;
        svc->instances = xrealloc(NULL, (svc->cap ? svc->cap : 1) * sizeof *svc->instances);
        for (size_t k = 0; k < s->instance_count; k++)
            parse_instance(&s->instances[k], &svc->instances[svc->count++]);
        const struct model_service *old = find_service(m, s->name.ptr, s->name.len);
        svc->expanded = old ? old->expanded : svc->count <= 16;
    }
    proto_status_free(&st);

    size_t sel_service = 0;
    int sel_instance = -1;
    for (size_t i = 0; sel_name && i < count; i++) {
        if (strcmp(fresh[i].name, sel_name) != 0)
            continue;
        sel_service = i;
        for (size_t k = 0; sel_index >= 0 && k < fresh[i].count; k++)
            if (fresh[i].instances[k].index == sel_index)
                sel_instance = (int)k;
        if (sel_index >= 0 && sel_instance < 0 && fresh[i].count > 0 && fresh[i].expanded)
            sel_instance = (int)fresh[i].count - 1; /* it was scaled away: its neighbour */
        break;
    }
    if (sel_instance >= 0 && !fresh[sel_service].expanded)
        sel_instance = -1;
    free_services(m->services, m->service_count);
    m->services = fresh;
    m->service_count = m->service_cap = count;
    m->table.service = sel_service;
    m->table.instance = sel_instance;
    return 0;
}

void model_totals(const struct model *m, size_t *instances, size_t *running, size_t *starting, size_t *failing)
{
    *instances = *running = *starting = *failing = 0;
    for (size_t i = 0; i < m->service_count; i++) {
        for (size_t k = 0; k < m->services[i].count; k++) {
            enum model_state st = m->services[i].instances[k].state;
            (*instances)++;
            *running += st == MODEL_STATE_RUNNING;
            *starting += st == MODEL_STATE_STARTING;
            *failing += st == MODEL_STATE_BACKOFF || st == MODEL_STATE_FAILED;
        }
    }
}

/* ---------------------------------------------------------------- the table */

static size_t service_rows(const struct model_service *s)
{
    return 1 + (s->expanded ? s->count : 0);
}

size_t model_table_row_count(const struct model *m)
{
    size_t rows = 0;
    for (size_t i = 0; i < m->service_count; i++)
        rows += service_rows(&m->services[i]);
    return rows;
}

int model_table_row(const struct model *m, size_t row, size_t *service, int *instance)
{
    for (size_t i = 0; i < m->service_count; i++) {
        size_t n = service_rows(&m->services[i]);
        if (row < n) {
            *service = i;
            *instance = (int)row - 1;
            return 0;
        }
        row -= n;
    }
    return -1;
}

size_t model_table_selected_row(const struct model *m)
{
    size_t row = 0;
    for (size_t i = 0; i < m->service_count && i < m->table.service; i++)
        row += service_rows(&m->services[i]);
    return row + (size_t)(m->table.instance + 1);
}

void model_table_select_row(struct model *m, size_t row)
{
    size_t rows = model_table_row_count(m);
    if (rows == 0)
        return;
    if (row >= rows)
        row = rows - 1;
    size_t s;
    int inst;
    if (model_table_row(m, row, &s, &inst) == 0) {
        m->table.service = s;
        m->table.instance = inst;
    }
}

void model_table_move(struct model *m, long delta)
{
    long row = (long)model_table_selected_row(m) + delta;
    model_table_select_row(m, row < 0 ? 0 : (size_t)row);
}

void model_table_expand(struct model *m, int expand)
{
    if (m->table.service >= m->service_count)
        return;
    struct model_service *s = &m->services[m->table.service];
    s->expanded = expand < 0 ? !s->expanded : expand;
    if (!s->expanded)
        m->table.instance = -1;
}

int model_table_target(const struct model *m, char *out, size_t cap, size_t *service)
{
    if (m->table.service >= m->service_count)
        return -1;
    const struct model_service *s = &m->services[m->table.service];
    if (m->table.instance >= 0 && (size_t)m->table.instance < s->count)
        snprintf(out, cap, "%s.%d", s->name, s->instances[m->table.instance].index);
    else
        snprintf(out, cap, "%s", s->name);
    if (service)
        *service = m->table.service;
    return 0;
}

void model_table_scroll_into_view(struct model *m, size_t rows)
{
    size_t count = model_table_row_count(m), sel = model_table_selected_row(m);
    if (rows == 0)
        return;
    if (sel < m->table.top)
        m->table.top = sel;
    if (sel >= m->table.top + rows)
        m->table.top = sel - rows + 1;
    if (count <= rows)
        m->table.top = 0;
    else if (m->table.top > count - rows)
        m->table.top = count - rows;
}

/* ---------------------------------------------------------------- text */

static void sanitize_region(struct strbuf *sb, size_t start)
{
    size_t end = sb->len, i;
    for (i = start; i < end; i++) {
        unsigned char c = (unsigned char)sb->data[i];
        if (c < 0x20 || c >= 0x7f)
            break;
    }
    if (i == end)
        return; /* printable ASCII: the common case */
    /* Rewrite the region after its end, then move it back. */
    size_t col = 0;
    mbstate_t st;
    memset(&st, 0, sizeof st);
    for (i = start; i < end;) {
        unsigned char c = (unsigned char)sb->data[i];
        if (c == '\t') {
            do {
                strbuf_putc(sb, ' ');
                col++;
            } while (col % 8);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            strbuf_putc(sb, '?');
            col++;
            i++;
        } else if (c < 0x80) {
            strbuf_putc(sb, (char)c);
            col++;
            i++;
        } else {
            wchar_t wc;
            size_t n = mbrtowc(&wc, sb->data + i, end - i, &st);
            int bad = n == (size_t)-1 || n == (size_t)-2 || n == 0;
            int w = bad ? -1 : wcwidth(wc);
            if (w < 0) {
                /* one '?' per undecodable byte, or per character that is not printable */
                memset(&st, 0, sizeof st);
                strbuf_putc(sb, '?');
                col++;
                i += bad ? 1 : n;
                continue;
            }
            char bytes[8];
            memcpy(bytes, sb->data + i, n < sizeof bytes ? n : sizeof bytes);
            strbuf_append(sb, bytes, n < sizeof bytes ? n : sizeof bytes);
            col += (size_t)w;
            i += n;
        }
    }
    size_t out_len = sb->len - end;
    memmove(sb->data + start, sb->data + end, out_len);
    sb->len = start + out_len;
    sb->data[sb->len] = '\0';
}

void model_clean_text(struct strbuf *out, const char *text, size_t len)
{
    size_t start = out->len;
    logformat_clean_text(out, text, len, 0);
    sanitize_region(out, start);
}

/* ---------------------------------------------------------------- names */

static uint16_t intern_name(struct model *m, const char *name)
{
    for (size_t i = m->name_count; i-- > 0;)
        if (strcmp(m->names[i].text, name) == 0)
            return (uint16_t)i;
    if (m->name_count == MODEL_NAMES_MAX) /* the last slot stands for every further name */
        return MODEL_NAMES_MAX - 1;
    struct model_name *n = &m->names[m->name_count];
    n->text = xstrndup(name, strlen(name));
    for (char *c = n->text; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    n->color = strcmp(name, "devnode") == 0 ? 0 : logformat_service_color(name);
    return (uint16_t)m->name_count++;
}

void model_line_label(const struct model *m, const struct model_line *line, char *out, size_t cap)
{
    const char *name = line->name < m->name_count ? m->names[line->name].text : "?";
    if (line->instance >= 0 && !line->note)
        snprintf(out, cap, "%s.%d", name, line->instance);
    else
        snprintf(out, cap, "%s", name);
}

/* ---------------------------------------------------------------- lines */

static struct model_line *line_new(struct model *m, const struct log_line *src)
{
    strbuf_reset(&m->scratch);
    model_clean_text(&m->scratch, src->text ? src->text : "", src->len);
    size_t len = m->scratch.len;
    struct model_line *l = xrealloc(NULL, sizeof *l + len + 1);
    l->seq = src->seq;
    l->wall_ns = src->wall_ns;
    l->instance = src->instance;
    l->pid = src->pid;
    l->name = intern_name(m, src->service ? src->service : "?");
    l->stream = (uint8_t)src->stream;
    l->level = (uint8_t)src->level;
    l->note = 0;
    snprintf(l->trace_id, sizeof l->trace_id, "%s", src->trace_id);
    l->len = (uint32_t)len;
    if (len)
        memcpy(l->text, m->scratch.data, len);
    l->text[len] = '\0';
    return l;
}

static struct model_line *line_copy(const struct model_line *src)
{
    struct model_line *l = xrealloc(NULL, sizeof *l + src->len + 1);
    memcpy(l, src, sizeof *l + src->len + 1);
    return l;
}

static int model_filter_passes(const struct model *m, const struct model_line *line)
{
    if (line->note)
        return 1;
    const struct model_filter *f = &m->filter;
    if (f->name >= 0 && (line->name != f->name || (f->instance >= 0 && line->instance != f->instance)))
        return 0;
    if (f->level_min != LOG_LEVEL_NONE && (line->level == LOG_LEVEL_NONE || line->level < f->level_min))
        return 0;
    return 1;
}

static uint64_t match_get(const struct model_logs *L, size_t i)
{
    return L->match[(L->match_head + i) % L->cap];
}

/* Position of the first match >= n (match_count when none). */
static size_t match_lower_bound(const struct model_logs *L, uint64_t n)
{
    size_t lo = 0, hi = L->match_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (match_get(L, mid) < n)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void trace_insert(struct model *m, struct model_line *l);

static void logs_store(struct model *m, struct model_line *line)
{
    struct model_logs *L = &m->logs;
    if (L->next - L->first == L->cap) {
        uint64_t old = L->first++;
        free(L->ring[old % L->cap]);
        if (L->match_count && match_get(L, 0) == old) {
            L->match_head = (L->match_head + 1) % L->cap;
            L->match_count--;
        }
    }
    uint64_t n = L->next++;
    L->ring[n % L->cap] = line;
    if (model_filter_passes(m, line)) {
        L->match[(L->match_head + L->match_count) % L->cap] = n;
        L->match_count++;
        if (!L->follow)
            L->unseen++;
    }
    if (!line->note) {
        size_t w = strlen(m->names[line->name].text);
        if (line->instance >= 0)
            w += 1 + (line->instance < 10 ? 1 : line->instance < 100 ? 2 : line->instance < 1000 ? 3 : 5);
        if (w > L->name_width)
            L->name_width = w < MODEL_NAME_WIDTH_MAX ? w : MODEL_NAME_WIDTH_MAX;
    }
    if (m->trace.active && line->trace_id[0] && strcmp(line->trace_id, m->trace.id) == 0)
        trace_insert(m, line_copy(line));
}

void model_add_line(struct model *m, const struct log_line *line)
{
    m->logs.received++;
    logs_store(m, line_new(m, line));
}

/* Stores a line of the dashboard's own ("[12 lines skipped]", stream errors). */
static void model_add_note(struct model *m, const char *text)
{
    struct log_line src = {.service = "devnode", .instance = -1, .stream = LOG_STREAM_NODE,
                           .text = text, .len = strlen(text)};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    src.wall_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    struct model_line *l = line_new(m, &src);
    l->note = 1;
    logs_store(m, l);
}

void model_add_skipped(struct model *m, uint64_t n)
{
    if (n == 0)
        return;
    m->logs.skipped += n;
    char text[128];
    snprintf(text, sizeof text, "[%llu lines skipped: the dashboard fell behind; the log file has them]",
             (unsigned long long)n);
    model_add_note(m, text);
}

const struct model_line *model_line_at(const struct model *m, uint64_t n)
{
    if (n < m->logs.first || n >= m->logs.next)
        return NULL;
    return m->logs.ring[n % m->logs.cap];
}

/* ---------------------------------------------------------------- filters */

static void rebuild_matches(struct model *m)
{
    struct model_logs *L = &m->logs;
    L->match_head = L->match_count = 0;
    for (uint64_t n = L->first; n < L->next; n++)
        if (model_filter_passes(m, L->ring[n % L->cap]))
            L->match[L->match_count++] = n;
    L->unseen = 0;
}

void model_filter_service(struct model *m, const char *service, int instance)
{
    m->filter.name = service ? intern_name(m, service) : -1;
    m->filter.instance = service ? instance : -1;
    rebuild_matches(m);
}

void model_filter_level(struct model *m, enum log_level level_min)
{
    m->filter.level_min = level_min;
    rebuild_matches(m);
}

void model_filter_cycle_level(struct model *m)
{
    enum log_level l = m->filter.level_min;
    model_filter_level(m, l >= LOG_LEVEL_CRITICAL ? LOG_LEVEL_NONE : (enum log_level)(l + 1));
}

static void model_trace_close(struct model *m);

void model_filter_clear(struct model *m)
{
    m->filter.name = -1;
    m->filter.instance = -1;
    m->filter.level_min = LOG_LEVEL_NONE;
    m->search[0] = '\0';
    model_trace_close(m);
    rebuild_matches(m);
}

size_t model_logs_count(const struct model *m)
{
    return m->logs.match_count;
}

/* ---------------------------------------------------------------- search */

int model_text_find(const char *hay, size_t hay_len, size_t from, const char *needle, size_t needle_len,
                    size_t *at)
{
    if (needle_len == 0 || needle_len > hay_len)
        return 0;
    unsigned char first = (unsigned char)tolower((unsigned char)needle[0]);
    for (size_t i = from; i + needle_len <= hay_len; i++) {
        if ((unsigned char)tolower((unsigned char)hay[i]) != first)
            continue;
        size_t k = 1;
        while (k < needle_len && tolower((unsigned char)hay[i + k]) == tolower((unsigned char)needle[k]))
            k++;
        if (k == needle_len) {
            *at = i;
            return 1;
        }
    }
    return 0;
}

void model_search_set(struct model *m, const char *text)
{
    snprintf(m->search, sizeof m->search, "%s", text ? text : "");
}

/* ---------------------------------------------------------------- the log view */

/* Current (top, sel) positions in the match list, normalised. */
static void view_positions(struct model *m, size_t rows, size_t *top, size_t *sel)
{
    struct model_logs *L = &m->logs;
    size_t c = L->match_count;
    if (rows == 0)
        rows = 1;
    if (L->follow || c == 0) {
        *sel = c ? c - 1 : 0;
        *top = c > rows ? c - rows : 0;
        return;
    }
    size_t t = match_lower_bound(L, L->top), s = match_lower_bound(L, L->sel);
    if (s >= c)
        s = c - 1;
    if (t >= c)
        t = c - 1;
    if (s < t)
        t = s;
    if (s >= t + rows)
        t = s - rows + 1;
    if (c > rows && t > c - rows)
        t = c - rows; /* keep the pane full */
    else if (c <= rows)
        t = 0;
    *top = t;
    *sel = s;
}

static void set_positions(struct model *m, size_t top, size_t sel)
{
    struct model_logs *L = &m->logs;
    if (L->match_count == 0)
        return;
    L->top = match_get(L, top);
    L->sel = match_get(L, sel);
}

size_t model_logs_window(struct model *m, size_t rows, const struct model_line **out, size_t *sel_row)
{
    struct model_logs *L = &m->logs;
    size_t top, sel;
    *sel_row = rows;
    if (L->match_count == 0 || rows == 0)
        return 0;
    view_positions(m, rows, &top, &sel);
    if (!L->follow)
        set_positions(m, top, sel);
    size_t n = 0;
    for (size_t i = top; i < L->match_count && n < rows; i++)
        out[n++] = model_line_at(m, match_get(L, i));
    *sel_row = sel - top;
    return n;
}

static void pause_view(struct model *m, size_t rows, size_t *top, size_t *sel)
{
    view_positions(m, rows, top, sel);
    if (m->logs.follow) {
        m->logs.follow = 0;
        m->logs.unseen = 0;
    }
}

void model_logs_move(struct model *m, long delta, size_t rows, int page)
{
    struct model_logs *L = &m->logs;
    size_t c = L->match_count;
    if (c == 0 || delta == 0)
        return;
    if (L->follow && delta > 0)
        return; /* already at the newest line */
    size_t top, sel;
    int was_last = !L->follow;
    pause_view(m, rows, &top, &sel);
    was_last = was_last && sel == c - 1;
    long s = (long)sel + delta, t = (long)top + (page ? delta : 0);
    if (s < 0)
        s = 0;
    if (s >= (long)c)
        s = (long)c - 1;
    if (t < 0)
        t = 0;
    if (t > s)
        t = s;
    if (s >= t + (long)rows)
        t = s - (long)rows + 1;
    if (delta > 0 && was_last) {
        model_logs_end(m); /* down past the last line: live again */
        return;
    }
    set_positions(m, (size_t)t, (size_t)s);
}

void model_logs_home(struct model *m, size_t rows)
{
    size_t top, sel;
    if (m->logs.match_count == 0)
        return;
    pause_view(m, rows, &top, &sel);
    set_positions(m, 0, 0);
}

void model_logs_end(struct model *m)
{
    m->logs.follow = 1;
    m->logs.unseen = 0;
}

const struct model_line *model_logs_selected(const struct model *m)
{
    const struct model_logs *L = &m->logs;
    if (L->match_count == 0)
        return NULL;
    if (L->follow)
        return model_line_at(m, match_get(L, L->match_count - 1));
    size_t s = match_lower_bound(L, L->sel);
    if (s >= L->match_count)
        s = L->match_count - 1;
    return model_line_at(m, match_get(L, s));
}

int model_search_step(struct model *m, int older, int inclusive, size_t rows)
{
    struct model_logs *L = &m->logs;
    size_t c = L->match_count, nlen = strlen(m->search);
    if (c == 0 || nlen == 0)
        return 0;
    size_t top, sel;
    view_positions(m, rows, &top, &sel);
    if (L->follow)
        inclusive = 1; /* from the newest line */
    long i = (long)sel;
    if (!inclusive)
        i += older ? -1 : 1;
    for (; i >= 0 && i < (long)c; i += older ? -1 : 1) {
        const struct model_line *l = model_line_at(m, match_get(L, (size_t)i));
        size_t at;
        if (l && model_text_find(l->text, l->len, 0, m->search, nlen, &at))
            break;
    }
    if (i < 0 || i >= (long)c)
        return 0;
    pause_view(m, rows, &top, &sel);
    size_t s = (size_t)i;
    if (rows == 0)
        rows = 1;
    if (s < top || s >= top + rows) {
        /* out of sight: centre it */
        top = s > rows / 2 ? s - rows / 2 : 0;
        if (c > rows && top > c - rows)
            top = c - rows;
    }
    set_positions(m, top, s);
    return 1;
}

/* ---------------------------------------------------------------- the trace view */

static int line_before(const struct model_line *a, const struct model_line *b)
{
    return a->wall_ns < b->wall_ns || (a->wall_ns == b->wall_ns && a->seq < b->seq);
}

static void lanes_note(struct model_trace *t, const struct model_line *l)
{
    int64_t *first_ns = t->lane_first_ns;
    for (size_t i = 0; i < t->lane_count; i++) {
        if (t->lanes[i] != l->name)
            continue;
        if (l->wall_ns >= first_ns[i])
            return;
        first_ns[i] = l->wall_ns;
        goto sort;
    }
    if (t->lane_count == MODEL_LANES_MAX)
        return;
    t->lanes[t->lane_count] = l->name;
    first_ns[t->lane_count++] = l->wall_ns;
sort:
    for (size_t i = 1; i < t->lane_count; i++)
        for (size_t k = i; k > 0 && first_ns[k] < first_ns[k - 1]; k--) {
            int64_t tn = first_ns[k];
            first_ns[k] = first_ns[k - 1];
            first_ns[k - 1] = tn;
            uint16_t tl = t->lanes[k];
            t->lanes[k] = t->lanes[k - 1];
            t->lanes[k - 1] = tl;
        }
}

/* Takes ownership of l. */
static void trace_insert(struct model *m, struct model_line *l)
{
    struct model_trace *t = &m->trace;
    size_t lo = 0, hi = t->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (line_before(t->lines[mid], l))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (l->seq && lo < t->count && t->lines[lo]->seq == l->seq) {
        free(l); /* both the buffer and the node's answer had it */
        return;
    }
    if (t->count == MODEL_TRACE_LINES_MAX) {
        t->dropped++;
        free(l);
        return;
    }
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->lines = xrealloc(t->lines, t->cap * sizeof *t->lines);
    }
    memmove(t->lines + lo + 1, t->lines + lo, (t->count - lo) * sizeof *t->lines);
    t->lines[lo] = l;
    t->count++;
    lanes_note(t, l);
}

void model_trace_open(struct model *m, const char *id)
{
    model_trace_close(m);
    struct model_trace *t = &m->trace;
    t->active = 1;
    snprintf(t->id, sizeof t->id, "%s", id);
    for (uint64_t n = m->logs.first; n < m->logs.next; n++) {
        const struct model_line *l = m->logs.ring[n % m->logs.cap];
        if (!l->note && strcmp(l->trace_id, id) == 0)
            trace_insert(m, line_copy(l));
    }
}

static void model_trace_close(struct model *m)
{
    struct model_trace *t = &m->trace;
    trace_free_lines(t);
    t->active = 0;
    t->id[0] = '\0';
    t->dropped = 0;
    t->loading = 0;
    t->incomplete = 0;
    t->lane_count = 0;
    t->top = 0;
}

void model_trace_add(struct model *m, const struct log_line *line)
{
    if (!m->trace.active)
        return;
    trace_insert(m, line_new(m, line));
}

void model_trace_scroll(struct model *m, long delta, size_t rows)
{
    struct model_trace *t = &m->trace;
    long top = (long)t->top + delta;
    long max = t->count > rows ? (long)(t->count - rows) : 0;
    t->top = (size_t)(top < 0 ? 0 : top > max ? max : top);
}

size_t model_trace_window(struct model *m, size_t rows, const struct model_line **out)
{
    struct model_trace *t = &m->trace;
    if (t->count <= rows)
        t->top = 0;
    else if (t->top > t->count - rows)
        t->top = t->count - rows;
    size_t n = 0;
    for (size_t i = t->top; i < t->count && n < rows; i++)
        out[n++] = t->lines[i];
    return n;
}

int model_trace_lane(const struct model *m, const struct model_line *line)
{
    for (size_t i = 0; i < m->trace.lane_count; i++)
        if (m->trace.lanes[i] == line->name)
            return (int)i;
    return -1;
}
