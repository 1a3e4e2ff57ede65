/* input: keys act on the focused pane; r, + and - act on the table's selected row whichever
 * pane has the focus, so what they touch is always the highlighted row. A prompt or the help
 * overlay takes every key until it closes. */
#include "tui/input.h"

#include <curses.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <wctype.h>

#include "proto/logfilter.h"
#include "tui/keymap.h"

#define KEY_ESC 27 /* the prompt's cancel; elsewhere keys come from tui/keymap.c */

void ui_init(struct ui *ui, int in_node)
{
    memset(ui, 0, sizeof *ui);
    ui->focus = UI_FOCUS_LOGS;
    ui->in_node = in_node;
    ui->table_rows = ui->log_rows = 10;
}

void ui_flash(struct ui *ui, uint64_t now_ms, int error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ui->flash, sizeof ui->flash, fmt, ap);
    va_end(ap);
    for (char *c = ui->flash; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
    ui->flash_error = error;
    ui->flash_until_ms = now_ms + UI_FLASH_MS;
}

int ui_flash_visible(const struct ui *ui, uint64_t now_ms)
{
    return ui->flash[0] && now_ms < ui->flash_until_ms;
}

static void prompt_open(struct ui *ui, enum ui_prompt p)
{
    ui->prompt = p;
    ui->input[0] = '\0';
    ui->input_len = 0;
}

static void input_append(struct ui *ui, wint_t key)
{
    char bytes[MB_LEN_MAX];
    mbstate_t st;
    memset(&st, 0, sizeof st);
    size_t n = wcrtomb(bytes, (wchar_t)key, &st);
    if (n == (size_t)-1 || ui->input_len + n >= sizeof ui->input)
        return;
    memcpy(ui->input + ui->input_len, bytes, n);
    ui->input_len += n;
    ui->input[ui->input_len] = '\0';
}

static void input_backspace(struct ui *ui)
{
    if (ui->input_len == 0)
        return;
    size_t n = ui->input_len - 1;
    while (n > 0 && ((unsigned char)ui->input[n] & 0xC0) == 0x80)
        n--; /* back to the start of the last UTF-8 character */
    ui->input_len = n;
    ui->input[n] = '\0';
}

static void open_trace(struct ui *ui, struct model *m, const char *id, uint64_t now, struct ui_action *act)
{
    model_trace_open(m, id);
    ui->focus = UI_FOCUS_LOGS;
    act->kind = UI_ACT_TRACE;
    snprintf(act->target, sizeof act->target, "%s", id);
}

static void prompt_accept(struct ui *ui, struct model *m, uint64_t now, struct ui_action *act)
{
    enum ui_prompt p = ui->prompt;
    ui->prompt = UI_PROMPT_NONE;
    if (p == UI_PROMPT_SEARCH) {
        model_search_set(m, ui->input);
        if (!ui->input[0])
            return;
        if (m->trace.active)
            return; /* the trace view highlights it; n/N find it in the log pane */
        if (!model_search_step(m, 1, 1, ui->log_rows))
            ui_flash(ui, now, 1, "not found: %s", ui->input);
        else
            ui->focus = UI_FOCUS_LOGS;
    } else if (p == UI_PROMPT_TRACE) {
        if (!ui->input[0])
            return;
        if (!logfilter_trace_id_valid(ui->input)) {
            ui_flash(ui, now, 1, "not a trace id (1-%d of A-Z a-z 0-9 _ -): %s", TRACE_ID_MAX, ui->input);
            return;
        }
        open_trace(ui, m, ui->input, now, act);
    }
}

static int prompt_key(struct ui *ui, struct model *m, int code, wint_t key, uint64_t now, struct ui_action *act)
{
    if (ui->prompt == UI_PROMPT_CONFIRM_STOP) {
        ui->prompt = UI_PROMPT_NONE;
        if (!code && (key == 'y' || key == 'Y')) {
            ui->stopping = 1;
            act->kind = UI_ACT_STOP_NODE;
        }
        return 1;
    }
    if (!code && key == KEY_ESC) {
        ui->prompt = UI_PROMPT_NONE;
        return 1;
    }
    if ((code && key == KEY_ENTER) || (!code && (key == '\n' || key == '\r'))) {
        prompt_accept(ui, m, now, act);
        return 1;
    }
    if ((code && key == KEY_BACKSPACE) || (!code && (key == 127 || key == 8))) {
        input_backspace(ui);
        return 1;
    }
    if (!code && key == 21) { /* Ctrl-U */
        ui->input_len = 0;
        ui->input[0] = '\0';
        return 1;
    }
    if (!code && key >= 0x20 && key != 0x7f && iswprint(key)) {
        input_append(ui, key);
        return 1;
    }
    return 0;
}

static void move_focused(struct ui *ui, struct model *m, enum keymap_cmd cmd)
{
    int table = ui->focus == UI_FOCUS_TABLE;
    size_t rows = table ? ui->table_rows : ui->log_rows;
    long page = rows > 1 ? (long)rows - 1 : 1;
    long delta = 0;
    int is_page = 0, home = 0, end = 0;
    if (cmd == KEYMAP_UP)
        delta = -1;
    else if (cmd == KEYMAP_DOWN)
        delta = 1;
    else if (cmd == KEYMAP_PAGE_UP)
        delta = -page, is_page = 1;
    else if (cmd == KEYMAP_PAGE_DOWN)
        delta = page, is_page = 1;
    else if (cmd == KEYMAP_HOME)
        home = 1;
    else if (cmd == KEYMAP_END)
        end = 1;
    if (table) {
        if (home)
            model_table_select_row(m, 0);
        else if (end)
            model_table_select_row(m, (size_t)-1);
        else
            model_table_move(m, delta);
        model_table_scroll_into_view(m, ui->table_rows);
    } else if (m->trace.active) {
        if (home)
            model_trace_scroll(m, -(long)m->trace.count, ui->log_rows);
        else if (end)
            model_trace_scroll(m, (long)m->trace.count, ui->log_rows);
        else
            model_trace_scroll(m, delta, ui->log_rows);
    } else {
        if (home)
            model_logs_home(m, ui->log_rows);
        else if (end)
            model_logs_end(m);
        else
            model_logs_move(m, delta, ui->log_rows, is_page);
    }
}

static void toggle_service_filter(struct ui *ui, struct model *m, uint64_t now)
{
    if (m->filter.name >= 0) {
        model_filter_service(m, NULL, -1);
        ui_flash(ui, now, 0, "every service");
        return;
    }
    if (ui->focus == UI_FOCUS_TABLE) {
        size_t s;
        char target[320];
        if (model_table_target(m, target, sizeof target, &s) < 0)
            return;
        const struct model_service *svc = &m->services[s];
        int inst = m->table.instance >= 0 ? svc->instances[m->table.instance].index : -1;
        model_filter_service(m, svc->name, inst);
        ui_flash(ui, now, 0, "only %s (s again: every service)", target);
        return;
    }
    const struct model_line *l = model_logs_selected(m);
    if (!l || l->note) {
        ui_flash(ui, now, 1, "no line selected");
        return;
    }
    model_filter_service(m, m->names[l->name].text, -1);
    ui_flash(ui, now, 0, "only %s (s again: every service)", m->names[l->name].text);
}

static void scale_selected(struct ui *ui, struct model *m, int step, uint64_t now, struct ui_action *act)
{
    size_t s;
    char target[320];
    if (model_table_target(m, target, sizeof target, &s) < 0) {
        ui_flash(ui, now, 1, "no service selected");
        return;
    }
    const struct model_service *svc = &m->services[s];
    int count = svc->desired + step;
    if (count < 0) {
        ui_flash(ui, now, 1, "%s already runs no instance", svc->name);
        return;
    }
    act->kind = UI_ACT_SCALE;
    act->count = count;
    snprintf(act->target, sizeof act->target, "%s", svc->name);
}

/* `kind` on the selected row ("Service" or "Service.N"); without one, says no `what` is selected. */
static void act_on_selected(struct ui *ui, const struct model *m, uint64_t now, struct ui_action *act,
                            enum ui_action_kind kind, const char *what)
{
    size_t s;
    if (model_table_target(m, act->target, sizeof act->target, &s) < 0) {
        ui_flash(ui, now, 1, "no %s selected", what);
        return;
    }
    act->kind = kind;
}

int ui_key(struct ui *ui, struct model *m, int code, wint_t key, uint64_t now, struct ui_action *act)
{
    act->kind = UI_ACT_NONE;
    act->target[0] = '\0';
    act->count = 0;
    if (ui->help) {
        ui->help = 0; /* any key closes it */
        return 1;
    }
    if (ui->prompt != UI_PROMPT_NONE)
        return prompt_key(ui, m, code, key, now, act);
    enum keymap_cmd cmd = keymap_lookup(code, key);
    switch (cmd) {
    case KEYMAP_NONE:
        return 0;
    case KEYMAP_UP:
    case KEYMAP_DOWN:
    case KEYMAP_PAGE_UP:
    case KEYMAP_PAGE_DOWN:
    case KEYMAP_HOME:
    case KEYMAP_END:
        move_focused(ui, m, cmd);
        return 1;
    case KEYMAP_HELP:
        ui->help = 1;
        return 1;
    case KEYMAP_QUIT:
        if (ui->in_node) {
            if (ui->stopping) {
                ui_flash(ui, now, 0, "the node is stopping");
                return 1;
            }
            prompt_open(ui, UI_PROMPT_CONFIRM_STOP);
        } else {
            act->kind = UI_ACT_QUIT;
        }
        return 1;
    case KEYMAP_PANE:
        ui->focus = ui->focus == UI_FOCUS_TABLE ? UI_FOCUS_LOGS : UI_FOCUS_TABLE;
        return 1;
    case KEYMAP_TOGGLE:
    case KEYMAP_EXPAND:
    case KEYMAP_COLLAPSE:
        if (ui->focus != UI_FOCUS_TABLE)
            return 0;
        model_table_expand(m, cmd == KEYMAP_EXPAND ? 1 : cmd == KEYMAP_COLLAPSE ? 0 : -1);
        model_table_scroll_into_view(m, ui->table_rows);
        return 1;
    case KEYMAP_TRACE: {
        const struct model_line *l = m->trace.active ? NULL : model_logs_selected(m);
        if (l && l->trace_id[0]) {
            char id[TRACE_ID_MAX + 1];
            snprintf(id, sizeof id, "%s", l->trace_id); /* l dies with the trace's old lines */
            open_trace(ui, m, id, now, act);
        } else {
            prompt_open(ui, UI_PROMPT_TRACE);
        }
        return 1;
    }
    case KEYMAP_SERVICE:
        toggle_service_filter(ui, m, now);
        return 1;
    case KEYMAP_SEARCH:
        prompt_open(ui, UI_PROMPT_SEARCH);
        return 1;
    case KEYMAP_OLDER_MATCH:
    case KEYMAP_NEWER_MATCH:
        if (!m->search[0]) {
            ui_flash(ui, now, 1, "no search yet: / to search");
        } else if (m->trace.active) {
            ui_flash(ui, now, 1, "n/N move in the log pane: Esc leaves the trace view");
        } else if (!model_search_step(m, cmd == KEYMAP_OLDER_MATCH, 0, ui->log_rows)) {
            ui_flash(ui, now, 1, "no %s match for: %s", cmd == KEYMAP_OLDER_MATCH ? "older" : "newer", m->search);
        } else {
            ui->focus = UI_FOCUS_LOGS;
        }
        return 1;
    case KEYMAP_LEVEL:
        model_filter_cycle_level(m);
        if (m->filter.level_min == LOG_LEVEL_NONE)
            ui_flash(ui, now, 0, "every level");
        else
            ui_flash(ui, now, 0, "level %s and above", logparse_level_name(m->filter.level_min));
        return 1;
    case KEYMAP_CLEAR:
        model_filter_clear(m);
        ui_flash(ui, now, 0, "filters cleared");
        return 1;
    case KEYMAP_RESTART:
        act_on_selected(ui, m, now, act, UI_ACT_RESTART, "service");
        return 1;
    case KEYMAP_SCALE_UP:
        scale_selected(ui, m, 1, now, act);
        return 1;
    case KEYMAP_SCALE_DOWN:
        scale_selected(ui, m, -1, now, act);
        return 1;
    case KEYMAP_REDRAW:
        act->kind = UI_ACT_REDRAW;
        return 1;
    case KEYMAP_ATTACH:
        act_on_selected(ui, m, now, act, UI_ACT_ATTACH, "instance");
        return 1;
    }
    return 0;
}
