/* draw: what every drawing unit needs: the style (colour pairs, glyphs), cell-exact text
 * output that never wraps or splits a wide character, and the number formats of the table.
 * Text reaching here was cleaned by the model; this file only measures and clips it. */
#include "tui/view.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

enum {
    PAIR_GREEN = 1,
    PAIR_YELLOW,
    PAIR_RED,
    PAIR_MAGENTA,
    PAIR_MATCH,
    PAIR_BAR,
    PAIR_BAR_FOCUS,
    PAIR_CYAN,
    PAIR_SERVICE = 16, /* 16 pairs, one per palette slot */
};

static int slot_of_ansi(int code)
{
    if (code >= 30 && code <= 37)
        return code - 30;
    if (code >= 90 && code <= 97)
        return 8 + code - 90;
    return 7;
}

void view_style_init(struct view_style *st, int color, int utf8)
{
    memset(st, 0, sizeof *st);
    st->utf8 = utf8;
    st->sep = utf8 ? " \xe2\x94\x82 " : " | ";
    st->lane_dot = utf8 ? "\xe2\x97\x8f" : "*";
    st->lane_line = utf8 ? "\xe2\x94\x82" : "|";
    st->arrow = utf8 ? " \xe2\x86\x92 " : " > ";
    st->open = utf8 ? "\xe2\x96\xbe" : "-";
    st->closed = utf8 ? "\xe2\x96\xb8" : "+";
    st->dim = A_DIM;
    st->selected = A_REVERSE;
    st->selected_idle = A_BOLD | A_UNDERLINE;
    st->bar = A_REVERSE;
    st->bar_focus = A_REVERSE | A_BOLD;
    st->trace = A_UNDERLINE | A_BOLD;
    st->match = A_REVERSE | A_BOLD;
    st->warning = A_BOLD;
    st->error = A_BOLD;
    st->node = A_BOLD;
    for (int s = 0; s <= MODEL_STATE_LAST; s++)
        st->state[s] = A_NORMAL;
    st->state[MODEL_STATE_RUNNING] = A_BOLD;
    st->state[MODEL_STATE_BACKOFF] = A_BOLD | A_UNDERLINE;
    st->state[MODEL_STATE_FAILED] = A_BOLD | A_UNDERLINE;
    st->state[MODEL_STATE_STOPPED] = A_DIM;
    st->state[MODEL_STATE_EXITED] = A_DIM;
    st->state[MODEL_STATE_UNKNOWN] = A_DIM;
    st->state[MODEL_STATE_COMPLETED] = A_DIM;
    st->state[MODEL_STATE_DISABLED] = A_DIM;
    for (int i = 0; i < 16; i++)
        st->service[i] = A_BOLD;
    if (!color || !has_colors() || start_color() == ERR)
        return;
    st->color = 1;
    int bg = use_default_colors() == OK ? -1 : COLOR_BLACK;
    init_pair(PAIR_GREEN, COLOR_GREEN, bg);
    init_pair(PAIR_YELLOW, COLOR_YELLOW, bg);
    init_pair(PAIR_RED, COLOR_RED, bg);
    init_pair(PAIR_MAGENTA, COLOR_MAGENTA, bg);
    init_pair(PAIR_MATCH, COLOR_BLACK, COLOR_YELLOW);
    init_pair(PAIR_BAR, COLOR_BLACK, COLOR_CYAN);
    init_pair(PAIR_BAR_FOCUS, COLOR_BLACK, COLOR_GREEN);
    init_pair(PAIR_CYAN, COLOR_CYAN, bg);
    for (int i = 0; i < 16; i++) {
        int fg = i < 8 ? i : (COLORS >= 16 ? i : i - 8);
        init_pair((short)(PAIR_SERVICE + i), (short)fg, (short)bg);
        st->service[i] = COLOR_PAIR(PAIR_SERVICE + i) | (i >= 8 && COLORS < 16 ? A_BOLD : A_NORMAL);
    }
    st->state[MODEL_STATE_RUNNING] = COLOR_PAIR(PAIR_GREEN);
    st->state[MODEL_STATE_STARTING] = COLOR_PAIR(PAIR_YELLOW);
    st->state[MODEL_STATE_STOPPING] = COLOR_PAIR(PAIR_YELLOW);
    st->state[MODEL_STATE_BACKOFF] = COLOR_PAIR(PAIR_RED) | A_BOLD;
    st->state[MODEL_STATE_FAILED] = COLOR_PAIR(PAIR_RED) | A_BOLD;
    st->state[MODEL_STATE_WAITING] = COLOR_PAIR(PAIR_YELLOW);
    st->bar = COLOR_PAIR(PAIR_BAR);
    st->bar_focus = COLOR_PAIR(PAIR_BAR_FOCUS) | A_BOLD;
    st->trace = COLOR_PAIR(PAIR_MAGENTA) | A_BOLD | A_UNDERLINE;
    st->match = COLOR_PAIR(PAIR_MATCH);
    st->warning = COLOR_PAIR(PAIR_YELLOW);
    st->error = COLOR_PAIR(PAIR_RED) | A_BOLD;
    st->node = COLOR_PAIR(PAIR_CYAN) | A_BOLD;
}

attr_t view_name_attr(const struct view_style *st, const struct model *m, uint16_t name)
{
    if (name >= m->name_count || m->names[name].color == 0)
        return st->node;
    return st->service[slot_of_ansi(m->names[name].color)];
}

attr_t view_state_attr(const struct view_style *st, enum model_state state)
{
    return (unsigned)state <= MODEL_STATE_LAST ? st->state[state] : A_NORMAL;
}

/* Bytes of s that fit in maxcols cells; *cols gets the cells they take. */
static size_t fit(const char *s, size_t len, int maxcols, int *cols)
{
    size_t i = 0;
    int c = 0;
    mbstate_t mb;
    memset(&mb, 0, sizeof mb);
    while (i < len) {
        unsigned char b = (unsigned char)s[i];
        if (b < 0x80) {
            if (c + 1 > maxcols)
                break;
            c++;
            i++;
            continue;
        }
        wchar_t wc;
        size_t n = mbrtowc(&wc, s + i, len - i, &mb);
        if (n == (size_t)-1 || n == (size_t)-2 || n == 0)
            break; /* the model cleans text, so only a cut string ends here */
        int wd = wcwidth(wc);
        if (wd < 0)
            wd = 1;
        if (c + wd > maxcols)
            break;
        c += wd;
        i += n;
    }
    *cols = c;
    return i;
}

int view_width(const char *s, size_t len)
{
    int cols;
    size_t used = fit(s, len, 1 << 30, &cols);
    return cols + (int)(len - used);
}

/* Draws what fits; *bytes gets how much of s that was. */
static int put_fitting(WINDOW *w, int y, int x, int maxcols, const char *s, size_t len, attr_t attr, size_t *bytes)
{
    *bytes = 0;
    if (maxcols <= 0 || len == 0)
        return 0;
    int cols;
    size_t n = fit(s, len, maxcols, &cols);
    *bytes = n;
    if (n == 0)
        return 0;
    wattrset(w, attr);
    mvwaddnstr(w, y, x, s, (int)n);
    wattrset(w, A_NORMAL);
    return cols;
}

int view_put(WINDOW *w, int y, int x, int maxcols, const char *s, size_t len, attr_t attr)
{
    size_t bytes;
    return put_fitting(w, y, x, maxcols, s, len, attr, &bytes);
}

int view_puts(WINDOW *w, int y, int x, int maxcols, const char *s, attr_t attr)
{
    return view_put(w, y, x, maxcols, s, strlen(s), attr);
}

int view_putf(WINDOW *w, int y, int x, int maxcols, attr_t attr, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return view_puts(w, y, x, maxcols, buf, attr);
}

void view_fill(WINDOW *w, int y, int x, int cols, attr_t attr)
{
    if (cols <= 0)
        return;
    wattrset(w, attr);
    mvwhline(w, y, x, ' ', cols);
    wattrset(w, A_NORMAL);
}

/* ---------------------------------------------------------------- a line's text */

struct span {
    size_t start, end;
    attr_t attr;
};

int view_line_text(WINDOW *w, int y, int x, int maxcols, const struct model *m, const struct model_line *l,
                   const struct view_style *st, attr_t base)
{
    struct span spans[33];
    size_t n = 0;
    size_t at;
    /* the trace id where the text carries it */
    size_t tlen = strlen(l->trace_id);
    if (tlen) {
        const char *p = memmem(l->text, l->len, l->trace_id, tlen);
        if (p)
            spans[n++] = (struct span){(size_t)(p - l->text), (size_t)(p - l->text) + tlen, st->trace};
    }
    size_t slen = strlen(m->search);
    for (size_t from = 0; slen && n < sizeof spans / sizeof spans[0] &&
                          model_text_find(l->text, l->len, from, m->search, slen, &at);
         from = at + slen)
        spans[n++] = (struct span){at, at + slen, st->match};
    /* Walk the text in segments between span edges; a match drawn over a trace id wins. */
    size_t pos = 0;
    int used = 0;
    while (pos < l->len && used < maxcols) {
        size_t next = l->len;
        attr_t attr = base;
        for (size_t i = 0; i < n; i++) {
            if (spans[i].start <= pos && pos < spans[i].end) {
                attr = (base & A_REVERSE) | spans[i].attr;
                if (spans[i].end < next)
                    next = spans[i].end;
            } else if (spans[i].start > pos && spans[i].start < next) {
                next = spans[i].start;
            }
        }
        size_t drawn;
        used += put_fitting(w, y, x + used, maxcols - used, l->text + pos, next - pos, attr, &drawn);
        if (drawn < next - pos)
            break; /* the pane's edge */
        pos = next;
    }
    return used;
}
