/* view_help: the bottom line (a prompt, a message, or the key hints) and the `?` overlay
 * listing every key, both drawn from tui/keymap.c's table. Both fit 80 columns. */
#include <stdio.h>
#include <string.h>

#include "tui/keymap.h"
#include "tui/view.h"


void view_statusline(WINDOW *w, struct view_rect r, const struct model *m, const struct ui *ui,
                     const struct view_style *st, uint64_t now_ms)
{
    view_fill(w, r.y, r.x, r.w, A_NORMAL);
    int x = r.x, end = r.x + r.w;
    switch (ui->prompt) {
    case UI_PROMPT_SEARCH:
    case UI_PROMPT_TRACE: {
        const char *label = ui->prompt == UI_PROMPT_SEARCH ? "/" : "trace id: ";
        x += view_puts(w, r.y, x, end - x, label, A_BOLD);
        /* the end of a long input stays visible */
        const char *shown = ui->input;
        while (*shown && view_width(shown, strlen(shown)) > end - x - 2)
            shown++;
        x += view_puts(w, r.y, x, end - x - 1, shown, A_NORMAL);
        view_puts(w, r.y, x, end - x, "_", A_BLINK | A_BOLD);
        view_puts(w, r.y, x + 2, end - x - 2, "  Enter: go  Esc: cancel", st->dim);
        return;
    }
    case UI_PROMPT_CONFIRM_STOP:
        view_puts(w, r.y, x, end - x, "Stop the node and every service? [y/N] ", st->warning | A_BOLD);
        return;
    case UI_PROMPT_NONE:
        break;
    }
    if (ui_flash_visible(ui, now_ms)) {
        view_puts(w, r.y, x, end - x, ui->flash, ui->flash_error ? st->error : A_BOLD);
        return;
    }
    if (ui->stopping || (ui->in_node && m->node.stopping)) {
        view_puts(w, r.y, x, end - x, "stopping the node: waiting for every instance to exit...", st->warning | A_BOLD);
        return;
    }
    char hints[160];
    keymap_hints(hints, sizeof hints);
    view_puts(w, r.y, x, end - x, hints, st->dim);
}

void view_help(WINDOW *w, struct view_rect r, const struct ui *ui, const struct view_style *st)
{
    size_t count = keymap_row_count;
    int bw = 72, bh = (int)count + 4;
    if (bw > r.w)
        bw = r.w;
    if (bh > r.h)
        bh = r.h;
    if (bw < 20 || bh < 3)
        return;
    int by = r.y + (r.h - bh) / 2, bx = r.x + (r.w - bw) / 2;
    for (int y = 0; y < bh; y++)
        view_fill(w, by + y, bx, bw, A_NORMAL);
    wattrset(w, A_BOLD);
    mvwhline(w, by, bx, 0, bw);
    mvwhline(w, by + bh - 1, bx, 0, bw);
    mvwvline(w, by, bx, 0, bh);
    mvwvline(w, by, bx + bw - 1, 0, bh);
    mvwaddch(w, by, bx, ACS_ULCORNER);
    mvwaddch(w, by, bx + bw - 1, ACS_URCORNER);
    mvwaddch(w, by + bh - 1, bx, ACS_LLCORNER);
    mvwaddch(w, by + bh - 1, bx + bw - 1, ACS_LRCORNER);
    wattrset(w, A_NORMAL);
    view_puts(w, by, bx + 2, bw - 4, " Keys ", st->bar_focus);
    for (size_t i = 0; i < count && (int)i + 2 < bh - 1; i++) {
        int y = by + 2 + (int)i;
        const struct keymap_row *row = &keymap_rows[i];
        view_puts(w, y, bx + 2, 19, row->keys, A_BOLD);
        const char *what = ui->in_node && row->help_in_node ? row->help_in_node : row->help;
        view_puts(w, y, bx + 22, bw - 24, what, A_NORMAL);
    }
}
