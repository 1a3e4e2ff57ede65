/* view: the dashboard's drawing units, htop style. Each one draws a part of the screen from
 * the model (and the UI state) into a rectangle of a curses window, every frame from
 * scratch; none keeps state, does I/O or changes the model beyond normalising a scroll
 * position. curses' own diffing makes redrawing everything cheap and flicker-free. */
#ifndef DEVNODE_TUI_VIEW_H
#define DEVNODE_TUI_VIEW_H

#include <curses.h>
#include <stddef.h>
#include <stdint.h>

#include "tui/input.h"
#include "tui/model.h"

struct view_rect {
    int y, x;   /* top left, in cells */
    int h, w;   /* size, in cells */
};

/* Attributes and glyphs, chosen once for the terminal (colours or not, UTF-8 or not). */
struct view_style {
    int color;                     /* colour pairs are in use */
    int utf8;                      /* box and arrow glyphs may be drawn */
    attr_t state[MODEL_STATE_LAST + 1];    /* by enum model_state */
    attr_t service[16];            /* by palette slot: ANSI 30..37 -> 0..7, 90..97 -> 8..15 */
    attr_t node;                   /* the node's own lines and name */
    attr_t dim;
    attr_t bar;                    /* header and pane title bars */
    attr_t bar_focus;              /* the focused pane's title bar */
    attr_t selected;               /* the selected row of the focused pane */
    attr_t selected_idle;          /* the selected row of the other pane */
    attr_t trace;                  /* a trace id inside a line */
    attr_t match;                  /* a search match */
    attr_t warning, error;         /* levels and messages */
    const char *sep;               /* " │ " or " | " */
    const char *lane_dot, *lane_line;  /* trace lanes: "●" "│" or "*" "|" */
    const char *arrow;             /* " → " or " > " */
    const char *open, *closed;     /* expanded / collapsed service: "▾" "▸" or "-" "+" */
};

/* Call after the screen exists (it starts colours when asked and available). */
void view_style_init(struct view_style *st, int color, int utf8);
/* The attribute of a log line's service name. */
attr_t view_name_attr(const struct view_style *st, const struct model *m, uint16_t name);
attr_t view_state_attr(const struct view_style *st, enum model_state state);

/* ---- drawing helpers (draw.c) */

/* Draws at most maxcols cells of s[0..len) at (y, x); returns the cells used. Stops before a
 * character that would not fit, so wide characters are never cut in half. */
int view_put(WINDOW *w, int y, int x, int maxcols, const char *s, size_t len, attr_t attr);
int view_puts(WINDOW *w, int y, int x, int maxcols, const char *s, attr_t attr);
/* The same with printf formatting. */
int view_putf(WINDOW *w, int y, int x, int maxcols, attr_t attr, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Cells s would take (bytes that do not decode count one each). */
int view_width(const char *s, size_t len);
/* Fills cols cells from (y, x) with blanks of attr. */
void view_fill(WINDOW *w, int y, int x, int cols, attr_t attr);

/* ---- the units */

/* The top line: totals, the node's own pid/CPU/RSS/uptime, its endpoint. */
void view_header(WINDOW *w, struct view_rect r, const struct model *m, const struct view_style *st);
/* The process table: column titles, then a row per service and, expanded, per instance. */
void view_table(WINDOW *w, struct view_rect r, struct model *m, const struct view_style *st, int focused);
/* The log pane: a title bar with the filters, then the lines. */
void view_logs(WINDOW *w, struct view_rect r, struct model *m, const struct view_style *st, int focused,
               const struct model_line **scratch);
/* The trace view in the log pane's place: lines in time order, relative ms, one lane per
 * service. */
void view_trace(WINDOW *w, struct view_rect r, struct model *m, const struct view_style *st, int focused,
                const struct model_line **scratch);
/* The bottom line: a prompt, a message, or the key hints. */
void view_statusline(WINDOW *w, struct view_rect r, const struct model *m, const struct ui *ui,
                     const struct view_style *st, uint64_t now_ms);
/* The key overlay, centred in r. */
void view_help(WINDOW *w, struct view_rect r, const struct ui *ui, const struct view_style *st);

/* Draws a line's text with its trace id and the search matches highlighted; returns cells used. */
int view_line_text(WINDOW *w, int y, int x, int maxcols, const struct model *m, const struct model_line *l,
                   const struct view_style *st, attr_t base);

#endif
