/* view_table: the header line and the process table. Columns shrink and drop from the right
 * so 80 columns still show name, state, counts, pid, restarts, uptime, CPU and RSS (PORT and
 * LAST EXIT when there is room). */
#include <stdio.h>
#include <string.h>

#include "common/humanfmt.h"
#include "tui/view.h"

void view_header(WINDOW *w, struct view_rect r, const struct model *m, const struct view_style *st)
{
    view_fill(w, r.y, r.x, r.w, st->bar);
    int x = r.x, end = r.x + r.w;
    x += view_puts(w, r.y, x, end - x, " devnode ", st->bar | A_BOLD);
    if (!m->node.known) {
        view_puts(w, r.y, x, end - x, " connecting to the node...", st->bar);
        return;
    }
    size_t instances, running, starting, failing;
    model_totals(m, &instances, &running, &starting, &failing);
    x += view_putf(w, r.y, x, end - x, st->bar, " %zu service%s, %zu/%zu running", m->service_count,
                   m->service_count == 1 ? "" : "s", running, instances);
    if (starting)
        x += view_putf(w, r.y, x, end - x, st->bar, ", %zu starting", starting);
    if (failing)
        x += view_putf(w, r.y, x, end - x, st->bar | A_BOLD, ", %zu failing", failing);
    if (m->node.stopping)
        x += view_puts(w, r.y, x, end - x, "  STOPPING", st->bar | A_BOLD);
    if (m->node.silent)
        x += view_puts(w, r.y, x, end - x, "  NODE NOT ANSWERING", st->bar | A_BOLD | A_BLINK);
    char up[32], rss[32];
    humanfmt_duration_ms(up, sizeof up, m->node.uptime_ms);
    humanfmt_size_kib(rss, sizeof rss, m->node.rss_kib);
    x += view_putf(w, r.y, x, end - x, st->bar, "   node %d  cpu %.1f%%  rss %s  up %s", m->node.pid,
                   m->node.cpu_percent, rss, up);
    /* The endpoint goes last, right-aligned, cut from the left when it does not fit. */
    const char *ep = m->node.endpoint;
    size_t len = strlen(ep);
    int room = end - x - 3;
    if (room >= 12 && len) {
        const char *shown = ep;
        int cut = 0;
        while (view_width(shown, strlen(shown)) > room - (cut ? 3 : 0) && *shown) {
            shown++;
            cut = 1;
        }
        int wdt = view_width(shown, strlen(shown)) + (cut ? 3 : 0);
        int ex = end - wdt - 1;
        if (cut)
            ex += view_puts(w, r.y, ex, 3, "...", st->bar);
        view_puts(w, r.y, ex, end - ex, shown, st->bar);
    }
}

/* Column widths for a table of width w. */
struct cols {
    int name, state, run, pid, port, restarts, uptime, cpu, rss, last;
};

static void layout_cols(struct cols *c, int width, const struct model *m)
{
    int widest = 4;
    for (size_t i = 0; i < m->service_count; i++) {
        int n = view_width(m->services[i].name, strlen(m->services[i].name)) + 2;
        int digits = m->services[i].count > 100 ? 4 : m->services[i].count > 10 ? 3 : 2;
        if (m->services[i].expanded && n + digits > widest)
            widest = n + digits;
        if (n > widest)
            widest = n;
    }
    c->name = widest + 1;
    int cap = width >= 120 ? 32 : width >= 100 ? 24 : 18;
    if (c->name > cap)
        c->name = cap;
    c->state = 10; /* "completed" and a space */
    c->run = 6;
    c->pid = 8;
    c->restarts = 4;
    c->uptime = 7;
    c->cpu = 7;
    c->rss = 8;
    int fixed = 2 + c->name + c->state + c->run + c->pid + c->restarts + c->uptime + c->cpu + c->rss;
    c->port = width - fixed - 2 >= 7 + 20 ? 7 : 0; /* only when LAST EXIT keeps 20 columns */
    fixed += c->port;
    c->last = width - fixed - 2;
    if (c->last < 6) {
        c->last = 0; /* no room: drop LAST EXIT, then the widest spacing */
        if (fixed > width) {
            c->pid = 7;
            c->rss = 7;
        }
    }
}

static int put_right(WINDOW *w, int y, int x, int cols, const char *s, attr_t attr)
{
    int wd = view_width(s, strlen(s));
    int pad = cols - 1 - wd;
    if (pad < 0)
        pad = 0;
    view_puts(w, y, x + pad, cols - pad, s, attr);
    return cols;
}

static void service_summary(const struct model_service *s, enum model_state *state, long long *restarts,
                            double *cpu, long long *rss)
{
    /* The service row shows its worst instance; all completed (or disabled) shows that. */
    static const int severity[] = {
        [MODEL_STATE_COMPLETED] = 0, [MODEL_STATE_DISABLED] = 1, [MODEL_STATE_RUNNING] = 2,
        [MODEL_STATE_STOPPED] = 3,   [MODEL_STATE_STOPPING] = 4, [MODEL_STATE_STARTING] = 5,
        [MODEL_STATE_WAITING] = 5,   [MODEL_STATE_EXITED] = 6,   [MODEL_STATE_UNKNOWN] = 7,
        [MODEL_STATE_BACKOFF] = 8,   [MODEL_STATE_FAILED] = 9,
    };
    *state = s->count ? MODEL_STATE_COMPLETED : MODEL_STATE_STOPPED;
    *restarts = 0;
    *cpu = 0;
    *rss = 0;
    for (size_t i = 0; i < s->count; i++) {
        const struct model_instance *inst = &s->instances[i];
        if (severity[inst->state] > severity[*state])
            *state = inst->state;
        *restarts += inst->restarts;
        *cpu += inst->cpu_percent;
        *rss += inst->rss_kib;
    }
}

static void format_last(char *buf, size_t cap, const struct model_instance *inst)
{
    if (inst->failure[0])
        snprintf(buf, cap, "%s", inst->failure);
    else if (inst->waiting[0])
        snprintf(buf, cap, "%s", inst->waiting);
    else if (inst->health[0])
        snprintf(buf, cap, "%s", inst->health);
    else if (!inst->has_exit)
        snprintf(buf, cap, "-");
    else if (inst->exit_signal[0])
        snprintf(buf, cap, "signal %s", inst->exit_signal);
    else
        snprintf(buf, cap, "status %d", inst->exit_code);
}

static void draw_row(WINDOW *w, int y, int x0, const struct cols *c, const struct model *m, size_t si, int ii,
                     const struct view_style *st, attr_t row_attr)
{
    const struct model_service *s = &m->services[si];
    char buf[256];
    int x = x0;
    if (row_attr != A_NORMAL)
        view_fill(w, y, x0, 2 + c->name + c->state + c->run + c->pid + c->port + c->restarts + c->uptime + c->cpu +
                                c->rss + (c->last ? c->last + 1 : 0), row_attr);
    if (ii < 0) {
        enum model_state state;
        long long restarts, rss;
        double cpu;
        service_summary(s, &state, &restarts, &cpu, &rss);
        x += 2;
        view_puts(w, y, x - 2, 2, s->expanded ? st->open : st->closed, row_attr | A_BOLD);
        view_puts(w, y, x, c->name - 1, s->name, row_attr | A_BOLD);
        x += c->name;
        view_puts(w, y, x, c->state - 1, s->count ? model_state_name(state) : "-",
                  row_attr | view_state_attr(st, state));
        x += c->state;
        snprintf(buf, sizeof buf, "%d/%d", s->running, s->desired);
        attr_t run_attr = s->running == s->desired ? row_attr : row_attr | st->warning;
        x += put_right(w, y, x, c->run, buf, run_attr);
        x += put_right(w, y, x, c->pid, "", row_attr);
        snprintf(buf, sizeof buf, "%lld", restarts);
        x += put_right(w, y, x, c->restarts, restarts > 9999 ? "9k+" : buf, row_attr);
        x += put_right(w, y, x, c->uptime, "", row_attr);
        snprintf(buf, sizeof buf, "%.1f", cpu);
        x += put_right(w, y, x, c->cpu, buf, row_attr);
        humanfmt_size_kib(buf, sizeof buf, rss);
        x += put_right(w, y, x, c->rss, buf, row_attr);
        if (c->port)
            x += put_right(w, y, x, c->port, "", row_attr);
        if (c->last && s->warning[0])
            view_puts(w, y, x + 1, c->last, s->warning, row_attr | st->warning);
        else if (c->last && s->has_socket)
            view_puts(w, y, x + 1, c->last, "(socket: rolling restarts)", row_attr | st->dim);
        return;
    }
    const struct model_instance *inst = &s->instances[ii];
    x += 2;
    snprintf(buf, sizeof buf, "  %s.%d", s->name, inst->index);
    view_puts(w, y, x, c->name - 1, buf, row_attr);
    x += c->name;
    view_puts(w, y, x, c->state - 1, model_state_name(inst->state), row_attr | view_state_attr(st, inst->state));
    x += c->state;
    x += put_right(w, y, x, c->run, "", row_attr);
    snprintf(buf, sizeof buf, "%d", inst->pid);
    x += put_right(w, y, x, c->pid, inst->pid ? buf : "-", row_attr);
    snprintf(buf, sizeof buf, "%lld", inst->restarts);
    x += put_right(w, y, x, c->restarts, inst->restarts > 9999 ? "9k+" : buf, row_attr);
    if (inst->pid)
        humanfmt_duration_ms(buf, sizeof buf, inst->uptime_ms);
    else
        snprintf(buf, sizeof buf, "-");
    x += put_right(w, y, x, c->uptime, buf, row_attr);
    snprintf(buf, sizeof buf, "%.1f", inst->cpu_percent);
    x += put_right(w, y, x, c->cpu, inst->pid ? buf : "-", row_attr);
    humanfmt_size_kib(buf, sizeof buf, inst->rss_kib);
    x += put_right(w, y, x, c->rss, buf, row_attr);
    if (c->port)
        x += put_right(w, y, x, c->port, inst->port[0] ? inst->port : "-", row_attr);
    if (c->last) {
        format_last(buf, sizeof buf, inst);
        attr_t a = inst->failure[0] ? st->error : (inst->health[0] || (inst->has_exit && (inst->exit_signal[0] || inst->exit_code)))
                                                      ? st->warning : A_NORMAL;
        view_puts(w, y, x + 1, c->last, buf, row_attr | a);
    }
}

void view_table(WINDOW *w, struct view_rect r, struct model *m, const struct view_style *st, int focused)
{
    if (r.h <= 0)
        return;
    struct cols c;
    layout_cols(&c, r.w, m);
    /* column titles */
    int x = r.x + 2;
    attr_t ta = A_BOLD | A_UNDERLINE;
    view_fill(w, r.y, r.x, r.w, A_NORMAL);
    view_puts(w, r.y, x, c.name, "NAME", ta);
    x += c.name;
    view_puts(w, r.y, x, c.state, "STATE", ta);
    x += c.state;
    x += put_right(w, r.y, x, c.run, "RUN", ta);
    x += put_right(w, r.y, x, c.pid, "PID", ta);
    x += put_right(w, r.y, x, c.restarts, "RST", ta);
    x += put_right(w, r.y, x, c.uptime, "UP", ta);
    x += put_right(w, r.y, x, c.cpu, "CPU%", ta);
    x += put_right(w, r.y, x, c.rss, "RSS", ta);
    if (c.port)
        x += put_right(w, r.y, x, c.port, "PORT", ta);
    if (c.last)
        x += 1 + view_puts(w, r.y, x + 1, c.last, "LAST EXIT", ta);

    size_t rows = r.h > 1 ? (size_t)(r.h - 1) : 0;
    if (!m->node.known) {
        if (rows)
            view_puts(w, r.y + 1, r.x + 2, r.w - 2, "waiting for the node's status...", st->dim);
        return;
    }
    if (m->service_count == 0) {
        if (rows)
            view_puts(w, r.y + 1, r.x + 2, r.w - 2, "no services", st->dim);
        return;
    }
    model_table_scroll_into_view(m, rows);
    size_t total = model_table_row_count(m), sel = model_table_selected_row(m);
    for (size_t i = 0; i < rows && m->table.top + i < total; i++) {
        size_t row = m->table.top + i, si;
        int ii;
        if (model_table_row(m, row, &si, &ii) < 0)
            break;
        attr_t ra = row == sel ? (focused ? st->selected : st->selected_idle) : A_NORMAL;
        draw_row(w, r.y + 1 + (int)i, r.x, &c, m, si, ii, st, ra);
    }
    if (total > rows && rows > 0) {
        /* more rows than room: say where we are at the right edge */
        char where[32];
        snprintf(where, sizeof where, " %zu-%zu/%zu ", m->table.top + 1,
                 m->table.top + rows < total ? m->table.top + rows : total, total);
        int wd = (int)strlen(where);
        if (r.x + r.w - wd > x)
            view_puts(w, r.y, r.x + r.w - wd, wd, where, st->dim);
    }
}
