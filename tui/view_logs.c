/* view_logs: the log pane: a title bar saying what is filtered and whether the view is
 * live or paused, then one screen row per line (cut, never wrapped):
 * `HH:MM:SS.mmm Service.N │ text` with the trace id and search matches highlighted. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tui/view.h"

/* Draws the pane's title bar; returns the cells used on the left. */
static int title_bar(WINDOW *w, struct view_rect r, struct model *m, const struct view_style *st, int focused)
{
    attr_t a = focused ? st->bar_focus : st->bar;
    view_fill(w, r.y, r.x, r.w, a);
    int x = r.x, end = r.x + r.w;
    x += view_puts(w, r.y, x, end - x, " Logs", a | A_BOLD);
    x += view_putf(w, r.y, x, end - x, a, "  %zu line%s", model_logs_count(m), model_logs_count(m) == 1 ? "" : "s");
    if (m->filter.name >= 0 && (size_t)m->filter.name < m->name_count) {
        if (m->filter.instance >= 0)
            x += view_putf(w, r.y, x, end - x, a | A_BOLD, "  only %s.%d", m->names[m->filter.name].text,
                           m->filter.instance);
        else
            x += view_putf(w, r.y, x, end - x, a | A_BOLD, "  only %s", m->names[m->filter.name].text);
    }
    if (m->filter.level_min != LOG_LEVEL_NONE)
        x += view_putf(w, r.y, x, end - x, a | A_BOLD, "  level>=%s", logparse_level_name(m->filter.level_min));
    if (m->search[0])
        x += view_putf(w, r.y, x, end - x, a | A_BOLD, "  /%s", m->search);
    if (m->logs.skipped)
        x += view_putf(w, r.y, x, end - x, a, "  skipped %llu", (unsigned long long)m->logs.skipped);
    char right[96];
    if (m->logs.follow)
        snprintf(right, sizeof right, " LIVE ");
    else if (m->logs.unseen)
        snprintf(right, sizeof right, " PAUSED +%llu new (End: live) ", (unsigned long long)m->logs.unseen);
    else
        snprintf(right, sizeof right, " PAUSED (End: live) ");
    int rw = (int)strlen(right);
    if (end - x > rw + 1)
        view_puts(w, r.y, end - rw, rw, right, a | (m->logs.follow ? A_NORMAL : A_BOLD));
    return x - r.x;
}

static void format_clock(char *buf, size_t cap, int64_t wall_ns)
{
    time_t t = (time_t)(wall_ns / 1000000000);
    struct tm tm;
    localtime_r(&t, &tm);
    snprintf(buf, cap, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)((wall_ns % 1000000000) / 1000000));
}

static attr_t text_attr(const struct view_style *st, const struct model_line *l)
{
    if (l->note)
        return st->warning;
    if (l->level >= LOG_LEVEL_ERROR)
        return st->error;
    if (l->level == LOG_LEVEL_WARNING)
        return st->warning;
    return A_NORMAL;
}

void view_logs(WINDOW *w, struct view_rect r, struct model *m, const struct view_style *st, int focused,
               const struct model_line **scratch)
{
    if (r.h <= 0)
        return;
    title_bar(w, r, m, st, focused);
    size_t rows = r.h > 1 ? (size_t)(r.h - 1) : 0;
    if (rows == 0)
        return;
    size_t sel_row;
    size_t n = model_logs_window(m, rows, scratch, &sel_row);
    if (n == 0) {
        const char *why = m->node.stream_error[0] ? m->node.stream_error
                          : model_logs_count(m) == 0 && m->logs.next > m->logs.first ? "no line passes the filters (Esc clears them)"
                                                                                      : "no log lines yet";
        view_puts(w, r.y + 1, r.x + 1, r.w - 1, why, m->node.stream_error[0] ? st->error : st->dim);
        return;
    }
    int show_clock = r.w >= 60;
    int name_w = (int)m->logs.name_width;
    if (name_w > r.w / 3)
        name_w = r.w / 3;
    for (size_t i = 0; i < n; i++) {
        const struct model_line *l = scratch[i];
        int y = r.y + 1 + (int)i, x = r.x, end = r.x + r.w;
        attr_t row = A_NORMAL;
        if (i == sel_row)
            row = focused ? st->selected : st->selected_idle;
        if (row != A_NORMAL)
            view_fill(w, y, r.x, r.w, row);
        if (show_clock) {
            char clock[32];
            format_clock(clock, sizeof clock, l->wall_ns);
            x += view_puts(w, y, x, end - x, clock, row | st->dim);
            x += view_puts(w, y, x, end - x, " ", row);
        }
        char label[300];
        model_line_label(m, l, label, sizeof label);
        view_puts(w, y, x, name_w, label, row | view_name_attr(st, m, l->name));
        x += name_w;
        x += view_puts(w, y, x, end - x, st->sep, row | st->dim);
        view_line_text(w, y, x, end - x, m, l, st, row | text_attr(st, l));
    }
    if (m->node.stream_error[0] && n < rows)
        view_puts(w, r.y + 1 + (int)n, r.x + 1, r.w - 1, m->node.stream_error, st->error);
}
