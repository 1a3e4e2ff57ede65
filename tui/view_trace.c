/* view_trace: one trace's lines in time order, the way a request travelled:
 *   +  0.000 ms ●        Web.0      │ GET /greet?name=joe
 *   +  0.812 ms │ ●      Greeting.1 │ greeting joe
 *   +  1.300 ms │ │ ●    Listen.2   │ greeted joe
 * Each service is a lane (in order of first appearance); a lane's line runs from its first
 * to its last line, and its dot marks its own lines. */
#include <stdio.h>
#include <string.h>

#include "tui/view.h"

static void title_bar(WINDOW *w, struct view_rect r, const struct model *m, const struct view_style *st,
                      int focused)
{
    const struct model_trace *t = &m->trace;
    attr_t a = focused ? st->bar_focus : st->bar;
    view_fill(w, r.y, r.x, r.w, a);
    int x = r.x, end = r.x + r.w;
    x += view_putf(w, r.y, x, end - x, a | A_BOLD, " Trace %s", t->id);
    double span_ms = t->count > 1 ? (t->lines[t->count - 1]->wall_ns - t->lines[0]->wall_ns) / 1e6 : 0;
    x += view_putf(w, r.y, x, end - x, a, "  %zu line%s over %.3f ms ", t->count, t->count == 1 ? "" : "s", span_ms);
    for (size_t i = 0; i < t->lane_count && x < end; i++) {
        if (i)
            x += view_puts(w, r.y, x, end - x, st->arrow, a);
        x += view_puts(w, r.y, x, end - x, m->names[t->lanes[i]].text, a | A_BOLD);
    }
    const char *state = t->loading ? "  loading..." : t->incomplete ? "  (incomplete: some lines left the node's ring)" : "";
    x += view_puts(w, r.y, x, end - x, state, a);
    if (t->dropped)
        x += view_putf(w, r.y, x, end - x, a, "  (+%llu not shown)", (unsigned long long)t->dropped);
    const char *hint = " Esc: back ";
    int hw = (int)strlen(hint);
    if (end - x > hw + 1)
        view_puts(w, r.y, end - hw, hw, hint, a);
}

void view_trace(WINDOW *w, struct view_rect r, struct model *m, const struct view_style *st, int focused,
                const struct model_line **scratch)
{
    if (r.h <= 0)
        return;
    title_bar(w, r, m, st, focused);
    const struct model_trace *t = &m->trace;
    size_t rows = r.h > 1 ? (size_t)(r.h - 1) : 0;
    if (rows == 0)
        return;
    if (t->count == 0) {
        view_puts(w, r.y + 1, r.x + 1, r.w - 1, t->loading ? "asking the node for the trace's lines..."
                                                           : "no line of this trace is known (yet)", st->dim);
        return;
    }
    /* Each lane's first and last line, to draw its line between them. */
    size_t first[MODEL_LANES_MAX], last[MODEL_LANES_MAX];
    for (size_t i = 0; i < t->lane_count; i++)
        first[i] = (size_t)-1, last[i] = 0;
    for (size_t i = 0; i < t->count; i++) {
        int lane = model_trace_lane(m, t->lines[i]);
        if (lane < 0)
            continue;
        if (first[lane] == (size_t)-1)
            first[lane] = i;
        last[lane] = i;
    }
    size_t n = model_trace_window(m, rows, scratch);
    int64_t base = t->lines[0]->wall_ns;
    int lanes_w = (int)t->lane_count * 2 + 1;
    if (lanes_w > r.w / 3)
        lanes_w = 0; /* too narrow for lanes: the names still say it */
    int name_w = (int)m->logs.name_width;
    if (name_w > r.w / 4)
        name_w = r.w / 4;
    for (size_t i = 0; i < n; i++) {
        const struct model_line *l = scratch[i];
        size_t idx = t->top + i;
        int y = r.y + 1 + (int)i, x = r.x, end = r.x + r.w;
        x += view_putf(w, y, x, end - x, st->dim, "+%10.3f ms ", (l->wall_ns - base) / 1e6);
        if (lanes_w) {
            int lane = model_trace_lane(m, l);
            for (size_t k = 0; k < t->lane_count; k++) {
                attr_t la = view_name_attr(st, m, t->lanes[k]);
                if ((int)k == lane)
                    view_puts(w, y, x, 1, st->lane_dot, la | A_BOLD);
                else if (first[k] != (size_t)-1 && idx > first[k] && idx < last[k])
                    view_puts(w, y, x, 1, st->lane_line, la);
                x += 2;
            }
            x += 1;
        }
        char label[300];
        model_line_label(m, l, label, sizeof label);
        view_puts(w, y, x, name_w, label, view_name_attr(st, m, l->name));
        x += name_w;
        x += view_puts(w, y, x, end - x, st->sep, st->dim);
        attr_t ta = l->level >= LOG_LEVEL_ERROR ? st->error : l->level == LOG_LEVEL_WARNING ? st->warning : A_NORMAL;
        view_line_text(w, y, x, end - x, m, l, st, ta);
    }
}
