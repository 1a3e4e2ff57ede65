/* keymap: the dashboard's keys, in one table that input.c dispatches on and view_help.c draws
 * the status-line hints and the `?` overlay from, so a key, its hint and its help cannot
 * drift apart. Data only: no curses calls beyond the key codes, no state. */
#ifndef DEVNODE_TUI_KEYMAP_H
#define DEVNODE_TUI_KEYMAP_H

#include <stddef.h>
#include <wchar.h>

/* What a key asks for; input.c says what each does in the current focus and mode. */
enum keymap_cmd {
    KEYMAP_NONE,
    KEYMAP_UP, KEYMAP_DOWN, KEYMAP_PAGE_UP, KEYMAP_PAGE_DOWN, KEYMAP_HOME, KEYMAP_END,
    KEYMAP_PANE,        /* focus the other pane */
    KEYMAP_TOGGLE,      /* expand or collapse the selected service (table) */
    KEYMAP_EXPAND, KEYMAP_COLLAPSE,
    KEYMAP_TRACE, KEYMAP_SERVICE, KEYMAP_SEARCH, KEYMAP_OLDER_MATCH, KEYMAP_NEWER_MATCH,
    KEYMAP_LEVEL, KEYMAP_CLEAR,
    KEYMAP_RESTART, KEYMAP_SCALE_UP, KEYMAP_SCALE_DOWN, KEYMAP_ATTACH,
    KEYMAP_REDRAW, KEYMAP_QUIT, KEYMAP_HELP,
};

struct keymap_binding {
    int code;           /* 1: `key` is a curses KEY_* code; 0: a character */
    wint_t key;
    enum keymap_cmd cmd; /* KEYMAP_NONE ends a row's list */
};

/* One line of the `?` overlay and the keys behind it. */
struct keymap_row {
    const char *keys;          /* the overlay's left column ("" continues the line above) */
    const char *help;          /* the overlay's right column */
    const char *help_in_node;  /* in devnode up, when it means something else; NULL: `help` */
    int hint_rank;             /* place in the status-line hints, from 1; 0: not there */
    const char *hint;          /* the status-line hint ("q quit") */
    struct keymap_binding bind[6];
};

extern const struct keymap_row keymap_rows[];
extern const size_t keymap_row_count;

/* The command bound to a key, KEYMAP_NONE when none. */
enum keymap_cmd keymap_lookup(int code, wint_t key);
/* The status-line hints in rank order, two spaces apart, into out (always terminated). */
void keymap_hints(char *out, size_t cap);

#endif
