/* input: the dashboard's keys. Turns one key into a change of the model or of the UI state
 * (focus, help, prompts, the one-line message), and into an action for tui.c when the node
 * must be asked something (restart, scale, stop, a trace's lines). No curses calls here
 * beyond the key codes, no I/O. */
#ifndef DEVNODE_TUI_INPUT_H
#define DEVNODE_TUI_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

#include "tui/model.h"

enum ui_focus { UI_FOCUS_TABLE, UI_FOCUS_LOGS };

enum ui_prompt {
    UI_PROMPT_NONE,
    UI_PROMPT_SEARCH,       /* "/": text to find */
    UI_PROMPT_TRACE,        /* "t" on a line without a trace: type one */
    UI_PROMPT_CONFIRM_STOP, /* "q" in devnode up: stop the node? */
};

struct ui {
    enum ui_focus focus;
    int help;                    /* the key overlay is shown */
    enum ui_prompt prompt;
    char input[MODEL_SEARCH_MAX];/* what the prompt has so far, UTF-8 */
    size_t input_len;
    char flash[256];             /* a one-line message on the status line */
    int flash_error;             /* shown as an error */
    uint64_t flash_until_ms;     /* loop time it disappears */
    int in_node;                 /* devnode up: q asks, then stops the node */
    int stopping;                /* the user asked the node to stop */
    size_t table_rows;           /* rows of the last layout, for paging */
    size_t log_rows;
};

enum ui_action_kind {
    UI_ACT_NONE,
    UI_ACT_QUIT,      /* detach */
    UI_ACT_STOP_NODE, /* confirmed in devnode up */
    UI_ACT_RESTART,   /* target */
    UI_ACT_SCALE,     /* target (a service), count */
    UI_ACT_TRACE,     /* target (a trace id): fetch its lines */
    UI_ACT_REDRAW,    /* Ctrl-L: repaint the whole screen */
    UI_ACT_ATTACH,    /* target (Service or Service.N): hand it the terminal until detach */
};

struct ui_action {
    enum ui_action_kind kind;
    char target[320];
    int count;
};

#define UI_FLASH_MS 4000

void ui_init(struct ui *ui, int in_node);
/* One key: `code` is 1 for a curses KEY_* code, 0 for a character. Returns 1 when something
 * visible changed. *act says what tui.c must do (UI_ACT_NONE: nothing). */
int ui_key(struct ui *ui, struct model *m, int code, wint_t key, uint64_t now_ms, struct ui_action *act);
void ui_flash(struct ui *ui, uint64_t now_ms, int error, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* 1 when a flash message is still to be shown at now_ms. */
int ui_flash_visible(const struct ui *ui, uint64_t now_ms);

#endif
