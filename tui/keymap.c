/* keymap: the table. The overlay lists rows in this order and must fit 80 columns (keys in
 * 19, help in 48); the hints follow hint_rank, most useful first, since a narrow terminal
 * cuts the last ones. */
#include "tui/keymap.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

#define KEYMAP_ESC 27
#define KEYMAP_CTRL_L 12

const struct keymap_row keymap_rows[] = {
    {"Up Down PgUp PgDn", "move; scrolling the logs pauses the live view", NULL, 0, NULL,
     {{1, KEY_UP, KEYMAP_UP}, {0, 'k', KEYMAP_UP}, {1, KEY_DOWN, KEYMAP_DOWN}, {0, 'j', KEYMAP_DOWN},
      {1, KEY_PPAGE, KEYMAP_PAGE_UP}, {1, KEY_NPAGE, KEYMAP_PAGE_DOWN}}},
    {"Home End", "first line; End: back to the live view", NULL, 0, NULL,
     {{1, KEY_HOME, KEYMAP_HOME}, {0, 'g', KEYMAP_HOME}, {1, KEY_END, KEYMAP_END}, {1, KEY_LL, KEYMAP_END},
      {0, 'G', KEYMAP_END}}},
    {"Tab", "switch between the process table and the logs", NULL, 9, "Tab pane",
     {{0, '\t', KEYMAP_PANE}, {1, KEY_BTAB, KEYMAP_PANE}}},
    {"Enter Left Right", "expand or collapse a service (table)", NULL, 0, NULL,
     {{1, KEY_ENTER, KEYMAP_TOGGLE}, {0, '\n', KEYMAP_TOGGLE}, {0, '\r', KEYMAP_TOGGLE}, {0, ' ', KEYMAP_TOGGLE},
      {1, KEY_RIGHT, KEYMAP_EXPAND}, {1, KEY_LEFT, KEYMAP_COLLAPSE}}},
    {"t", "the selected line's trace, or type a trace id", NULL, 3, "t trace", {{0, 't', KEYMAP_TRACE}}},
    {"s", "only the selected service/instance; again: all", NULL, 5, "s service", {{0, 's', KEYMAP_SERVICE}}},
    {"/  n  N", "search and highlight; n older match, N newer", NULL, 4, "/ search",
     {{0, '/', KEYMAP_SEARCH}, {0, 'n', KEYMAP_OLDER_MATCH}, {0, 'N', KEYMAP_NEWER_MATCH}}},
    {"l", "cycle the minimum level (debug .. critical)", NULL, 6, "l level", {{0, 'l', KEYMAP_LEVEL}}},
    {"Esc", "clear the filters, leave the trace view", NULL, 0, NULL, {{0, KEYMAP_ESC, KEYMAP_CLEAR}}},
    {"r", "restart the selected service or instance", NULL, 7, "r restart", {{0, 'r', KEYMAP_RESTART}}},
    {"", "(rolling, one by one, when it has a socket)", NULL, 0, NULL, {{0}}},
    {"+  -", "scale the selected service up or down by one", NULL, 8, "+/- scale",
     {{0, '+', KEYMAP_SCALE_UP}, {0, '=', KEYMAP_SCALE_UP}, {0, '-', KEYMAP_SCALE_DOWN}, {0, '_', KEYMAP_SCALE_DOWN}}},
    {"a", "attach to the selected instance; Ctrl-] back", NULL, 0, NULL, {{0, 'a', KEYMAP_ATTACH}}},
    {"", "(its service needs tty: true or stdin: true)", NULL, 0, NULL, {{0}}},
    {"Ctrl-L", "redraw the screen", NULL, 0, NULL, {{0, KEYMAP_CTRL_L, KEYMAP_REDRAW}}},
    {"q", "quit the dashboard; the node keeps running", "stop the node and every service (asks first)", 2,
     "q quit", {{0, 'q', KEYMAP_QUIT}}},
    {"?", "this help; any key closes it", NULL, 1, "? help", {{0, '?', KEYMAP_HELP}}},
};

const size_t keymap_row_count = sizeof keymap_rows / sizeof keymap_rows[0];

enum keymap_cmd keymap_lookup(int code, wint_t key)
{
    for (size_t i = 0; i < keymap_row_count; i++)
        for (const struct keymap_binding *b = keymap_rows[i].bind;
             b < keymap_rows[i].bind + sizeof keymap_rows[i].bind / sizeof *b && b->cmd != KEYMAP_NONE; b++)
            if (b->code == (code != 0) && b->key == key)
                return b->cmd;
    return KEYMAP_NONE;
}

void keymap_hints(char *out, size_t cap)
{
    size_t len = 0;
    if (cap)
        out[0] = '\0';
    for (int rank = 1;; rank++) {
        const struct keymap_row *row = NULL;
        for (size_t i = 0; i < keymap_row_count && !row; i++)
            if (keymap_rows[i].hint_rank == rank)
                row = &keymap_rows[i];
        if (!row)
            return;
        int n = snprintf(out + len, cap > len ? cap - len : 0, "%s%s", len ? "  " : "", row->hint);
        if (n < 0 || (size_t)n >= cap - len)
            return;
        len += (size_t)n;
    }
}
