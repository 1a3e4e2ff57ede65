/* model: what the dashboard shows, as plain data: the node and its services (from `status`
 * replies), a bounded buffer of log lines with the log view's filters, search and scroll
 * state, and the lines of one trace. It must never know about curses or ZeroMQ: the views
 * render it, input changes it, tui.c feeds it from the wire. */
#ifndef DEVNODE_TUI_MODEL_H
#define DEVNODE_TUI_MODEL_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "common/logline.h"
#include "common/strbuf.h"

#define MODEL_LINES_DEFAULT 50000      /* lines kept for the log pane */
#define MODEL_TRACE_LINES_MAX 20000    /* lines kept for the trace view */
#define MODEL_NAMES_MAX 1024           /* distinct service names of log lines */
#define MODEL_SEARCH_MAX 256           /* bytes of a search text */
#define MODEL_LANES_MAX 12             /* services drawn as lanes in the trace view */
#define MODEL_NAME_WIDTH_MAX 24        /* columns of "Service.N" in the log pane */

enum model_state {
    MODEL_STATE_UNKNOWN,
    MODEL_STATE_STARTING,
    MODEL_STATE_RUNNING,
    MODEL_STATE_BACKOFF,
    MODEL_STATE_STOPPING,
    MODEL_STATE_STOPPED,
    MODEL_STATE_EXITED,
    MODEL_STATE_FAILED,
    MODEL_STATE_WAITING,   /* held until its dependencies allow (depends_on) */
    MODEL_STATE_COMPLETED, /* a one-shot that exited 0 */
    MODEL_STATE_DISABLED,  /* disabled: true and not asked for */
};
#define MODEL_STATE_LAST MODEL_STATE_DISABLED

const char *model_state_name(enum model_state state);

struct model_instance {
    int index;                 /* DEVNODE_INSTANCE */
    enum model_state state;
    int pid;                   /* 0: no process */
    long long restarts;
    long long uptime_ms;
    double cpu_percent;        /* over the last second; 100 = one core */
    long long rss_kib;
    int has_exit;              /* last_exit below is meaningful */
    int exit_code;             /* -1 when it was a signal */
    char exit_signal[16];      /* "TERM", "" when it exited with a code */
    char failure[160];         /* why it cannot run; "" */
    char waiting[160];         /* state waiting: for what ("waiting for Db to be ready"); "" */
    char port[16];             /* its PORT, "" when none */
    char health[160];          /* its liveness probe misses: "live 2/3: timed out after 1s"; "" when fine */
};

struct model_service {
    char *name;
    int desired;               /* instances asked for (scale) */
    int running;               /* instances whose process is up */
    int has_socket;            /* restarts are rolling */
    char warning[256];         /* a socket of it has connections nobody accepts; "" */
    struct model_instance *instances;  /* by index */
    size_t count, cap;
    int expanded;              /* the table shows its instances */
};

struct model_node {
    int known;                 /* a status reply arrived */
    int pid;
    char endpoint[512];
    char config[512];
    long long uptime_ms;
    double cpu_percent;
    long long rss_kib;
    int stopping;
    int silent;                /* status requests went unanswered for a while */
    char stream_error[256];    /* why no log lines come ("log stream unavailable: ..."); "" */
};

/* One stored line: text cleaned at arrival (no control bytes, valid and printable in the
 * current locale), so drawing is a copy. `note` lines are the dashboard's own. */
struct model_line {
    uint64_t seq;              /* the node's; 0 for notes */
    int64_t wall_ns;
    int instance;              /* -1: the node's own line */
    int pid;
    uint16_t name;             /* index in model.names */
    uint8_t stream;            /* enum log_stream */
    uint8_t level;             /* enum log_level */
    uint8_t note;              /* 1: written by the dashboard (skipped lines, stream errors) */
    char trace_id[TRACE_ID_MAX + 1];  /* "" when none */
    uint32_t len;              /* bytes of text */
    char text[];               /* NUL-terminated */
};

struct model_name {
    char *text;                /* "Greeting" */
    int color;                 /* ANSI colour code of logformat_service_color, 0 for the node */
};

struct model_logs {
    struct model_line **ring;  /* line n lives at ring[n % cap] */
    size_t cap;
    uint64_t first, next;      /* lines first .. next-1 are stored; numbering starts at 1 */
    uint64_t *match;           /* numbers of stored lines passing the filter, ascending (a ring) */
    size_t match_head, match_count;
    int follow;                /* live: the view shows the newest lines */
    uint64_t top, sel;         /* paused: first shown line and the selected one (line numbers) */
    uint64_t unseen;           /* matching lines that arrived while paused */
    uint64_t received;         /* lines from the node */
    uint64_t skipped;          /* lines the node could not send us in time */
    size_t name_width;         /* widest "Service.N" seen, 7..MODEL_NAME_WIDTH_MAX */
};

struct model_filter {
    int name;                  /* index in names; -1: every service */
    int instance;              /* -1: every instance of that service */
    enum log_level level_min;  /* LOG_LEVEL_NONE: every line */
};

struct model_trace {
    int active;                /* the log pane shows this trace */
    char id[TRACE_ID_MAX + 1];
    struct model_line **lines; /* by (wall_ns, seq), at most MODEL_TRACE_LINES_MAX */
    size_t count, cap;
    uint64_t dropped;          /* lines past the bound */
    int loading;               /* the node's answer is still coming */
    int incomplete;            /* the node could not give every line (truncated or skipped) */
    uint16_t lanes[MODEL_LANES_MAX];   /* services in order of first appearance */
    int64_t lane_first_ns[MODEL_LANES_MAX]; /* when each lane's first line was written */
    size_t lane_count;
    size_t top;                /* first line shown */
};

struct model_table {
    size_t service;            /* selected service (position in services) */
    int instance;              /* selected instance (position), -1: the service row */
    size_t top;                /* first row shown */
};

struct model {
    struct model_node node;
    struct model_service *services;
    size_t service_count, service_cap;
    struct model_table table;
    struct model_name names[MODEL_NAMES_MAX];
    size_t name_count;
    struct model_logs logs;
    struct model_filter filter;
    char search[MODEL_SEARCH_MAX];  /* "" when none */
    struct model_trace trace;
    struct strbuf scratch;
};

/* line_cap: how many lines the log pane keeps (0: MODEL_LINES_DEFAULT). */
void model_init(struct model *m, size_t line_cap);
void model_free(struct model *m);

/* ---- the node and its services */

/* Applies a `status` reply body. 0, or -1 when it is not shaped like one (nothing changed). */
int model_apply_status(struct model *m, const msgpack_object *body);

/* Instances and how many are up, over every service. */
void model_totals(const struct model *m, size_t *instances, size_t *running, size_t *starting, size_t *failing);

/* Table rows: a service row, then its instances when expanded. */
size_t model_table_row_count(const struct model *m);
/* The service (position) and instance (position or -1) of row; -1 if out of range. */
int model_table_row(const struct model *m, size_t row, size_t *service, int *instance);
size_t model_table_selected_row(const struct model *m);
void model_table_move(struct model *m, long delta);
void model_table_select_row(struct model *m, size_t row);
/* expand 1, collapse 0, toggle -1; on an instance row, acts on its service. */
void model_table_expand(struct model *m, int expand);
/* "Service" or "Service.N" of the selected row into out; the service position. -1: none. */
int model_table_target(const struct model *m, char *out, size_t cap, size_t *service);
/* Keeps the selected row among `rows` shown rows (updates table.top). */
void model_table_scroll_into_view(struct model *m, size_t rows);

/* ---- log lines */

/* Stores a line from the node (text is copied and cleaned). */
void model_add_line(struct model *m, const struct log_line *line);
/* The node skipped n lines for us: counted and noted. */
void model_add_skipped(struct model *m, uint64_t n);
/* The stored line numbered n, or NULL when it left the buffer. */
const struct model_line *model_line_at(const struct model *m, uint64_t n);
/* "Service.N" (or "devnode") of a line. */
void model_line_label(const struct model *m, const struct model_line *line, char *out, size_t cap);
/* Cleans child text for the screen: escape sequences and control bytes removed, tabs
 * expanded, bytes that are not printable characters of the current locale shown as '?'. */
void model_clean_text(struct strbuf *out, const char *text, size_t len);

/* ---- filters and search (the log pane) */

/* Only lines of this service (instance -1: every instance); NULL: every service. */
void model_filter_service(struct model *m, const char *service, int instance);
void model_filter_level(struct model *m, enum log_level level_min);
/* none -> debug -> info -> warning -> error -> critical -> none */
void model_filter_cycle_level(struct model *m);
/* Clears service, level, search and closes the trace view. */
void model_filter_clear(struct model *m);
/* Number of lines passing the filter. */
size_t model_logs_count(const struct model *m);

/* Case-insensitive (ASCII) substring search; 1 and *at when found at or after `from`. */
int model_text_find(const char *hay, size_t hay_len, size_t from, const char *needle, size_t needle_len,
                    size_t *at);
void model_search_set(struct model *m, const char *text);
/* Moves the selection to the next line containing the search text: older (up) or newer
 * (down) than the selection; `inclusive` also considers the selected line. Pauses the view.
 * 1 when found, 0 when not (nothing moves). */
int model_search_step(struct model *m, int older, int inclusive, size_t rows);

/* ---- the log view: follow (live) or paused on a selected line */

/* Fills out with up to `rows` lines to show, oldest first, and *sel_row with the selected
 * one's row (rows when none). Normalises top/sel against evictions. Returns how many. */
size_t model_logs_window(struct model *m, size_t rows, const struct model_line **out, size_t *sel_row);
/* Moves the selection by delta lines (pausing the live view); page moves scroll the view
 * along. Moving down past the last line resumes following. */
void model_logs_move(struct model *m, long delta, size_t rows, int page);
void model_logs_home(struct model *m, size_t rows);
void model_logs_end(struct model *m);   /* resumes following */
/* The selected line (in follow mode the newest matching one), or NULL. */
const struct model_line *model_logs_selected(const struct model *m);

/* ---- the trace view */

/* Shows trace id: its lines from the buffer now, more with model_trace_add. */
void model_trace_open(struct model *m, const char *id);
/* Adds a line of the open trace (duplicates by seq are ignored). */
void model_trace_add(struct model *m, const struct log_line *line);
void model_trace_scroll(struct model *m, long delta, size_t rows);
/* Lines to show from trace.top; returns how many. */
size_t model_trace_window(struct model *m, size_t rows, const struct model_line **out);
/* The lane (0..lane_count-1) of a line's service, or -1 when it has none (too many lanes). */
int model_trace_lane(const struct model *m, const struct model_line *line);

#endif
