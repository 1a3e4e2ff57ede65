/* tui: the wiring: the terminal, the keys, the node's socket and the timers on one libuv
 * loop. ZMQ_FD is edge-triggered, so every wake-up drains until ZMQ_EVENTS stops saying
 * readable (within a time budget, then a zero-delay recheck), and every send re-arms that
 * recheck. Frames are drawn at most every 33 ms and only when something changed. It must
 * never leave the terminal in curses mode: endwin on close, at exit and on fatal signals. */
#include "tui/tui.h"

#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "common/nodeconn.h"
#include "tail/attachclient.h"
#include "common/rundir.h"
#include "common/xalloc.h"
#include "proto/proto.h"
#include "tail/tailconv.h"
#include "tui/input.h"
#include "tui/model.h"
#include "tui/view.h"

#define RENDER_INTERVAL_MS 33        /* at most ~30 frames a second */
#define TICK_MS PROTO_HEARTBEAT_MS   /* status poll, tail_renew, node check */
#define STATUS_SILENT_MS 3000        /* no status answer for this long: "not answering" */
#define STATUS_RESEND_MS 5000        /* an unanswered status is asked again after this */
#define DRAIN_BUDGET_NS 8000000ull   /* per wake-up, so keys and frames get their turn */
#define DRAIN_MAX_MSGS 64
#define LIVE_BACKLOG 5000            /* lines of history asked for at start */
#define PENDING_MAX 32

struct pending {
    int64_t id;                      /* 0: free */
    enum ui_action_kind kind;
    char target[320];
    int count;
};

struct tui {
    uv_loop_t *loop;
    char *endpoint;
    char *project_dir;               /* NULL in devnode up */
    int in_node;
    struct model model;
    struct ui ui;
    struct view_style style;
    SCREEN *screen;
    int term_on;                     /* curses owns the terminal */
    void *zctx, *sock;
    uv_poll_t zpoll, keys;
    uv_timer_t recheck, tick, render;
    uv_signal_t sig_winch, sig_int, sig_term, sig_hup;
    int handles;                     /* open handles; the last close callback frees */
    int closed;
    int quitting;
    int64_t next_id;
    int64_t status_id;               /* the status request in flight; 0: none */
    uint64_t status_sent_ms, status_ok_ms, started_ms;
    struct tail_request live_req;    /* every line, LIVE_BACKLOG of history */
    struct tailconv live;            /* the log pane's subscription */
    int last_seq_pid;                /* the node that numbered live's lines (a new node counts from 1 again) */
    char trace_id[320];
    struct tail_request trace_req;   /* the trace view's query (trace_id) */
    struct tailconv trace;           /* its one-shot fetch */
    struct pending pending[PENDING_MAX];
    size_t pending_next;
    uint64_t last_render_ms;
    const struct model_line **rows;  /* scratch for the views: one per screen row */
    size_t rows_cap;
    void (*on_stop)(void *ctx);
    void *stop_ctx;
    void (*on_quit)(void *ctx, int status, const char *message);
    void *quit_ctx;
    struct attach_client *attach;    /* `a`: the terminal is the instance's until it ends; NULL */
};

/* ---------------------------------------------------------------- terminal restore
 * The one piece of process-wide state: what a fatal signal or exit() must write to give the
 * terminal back. Signal handlers cannot reach a struct tui, so it lives here. */

static struct {
    volatile sig_atomic_t active;    /* curses owns the terminal */
    int have_termios;
    struct termios saved;            /* the terminal's modes before curses */
    char seq[160];                   /* leave the alternate screen, show the cursor, reset SGR */
    size_t seq_len;
    int hooks_installed;
} term_restore;

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

static void on_fatal_signal(int sig)
{
    if (term_restore.active) {
        term_restore.active = 0;
        if (term_restore.seq_len) {
            ssize_t w = write(STDOUT_FILENO, term_restore.seq, term_restore.seq_len);
            (void)w;
        }
        if (term_restore.have_termios)
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &term_restore.saved);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void restore_at_exit(void)
{
    if (term_restore.active) {
        term_restore.active = 0;
        endwin();
    }
}

static void append_cap(const char *name)
{
    char *s = tigetstr(name);
    if (!s || s == (char *)-1)
        return;
    size_t n = strlen(s);
    if (term_restore.seq_len + n < sizeof term_restore.seq) {
        memcpy(term_restore.seq + term_restore.seq_len, s, n);
        term_restore.seq_len += n;
    }
}

static void install_restore_hooks(void)
{
    term_restore.seq_len = 0;
    append_cap("sgr0");
    append_cap("cnorm");
    append_cap("rmcup");
    if (term_restore.hooks_installed)
        return;
    term_restore.hooks_installed = 1;
    atexit(restore_at_exit);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) {
        struct sigaction old;
        if (sigaction(fatal_signals[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
            !(old.sa_flags & SA_SIGINFO)) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_fatal_signal;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = SA_RESETHAND;
            sigaction(fatal_signals[i], &sa, NULL);
        }
    }
}

static void terminal_release(struct tui *t)
{
    if (!t->term_on)
        return;
    t->term_on = 0;
    curs_set(1);
    endwin();
    term_restore.active = 0;
    delscreen(t->screen);
    t->screen = NULL;
}

/* ---------------------------------------------------------------- sending */

static void drain(struct tui *t);

static void on_recheck(uv_timer_t *timer)
{
    drain(timer->data);
}

static void schedule_recheck(struct tui *t)
{
    if (!t->closed)
        uv_timer_start(&t->recheck, on_recheck, 0, 0);
}

static int send_body(struct tui *t, const char *type, struct wire_body *b)
{
    int rc = wire_send(t->sock, NULL, 0, type, b->sbuf.data, b->sbuf.size, ZMQ_DONTWAIT);
    wire_body_free(b);
    schedule_recheck(t); /* a send may have consumed ZMQ_FD's edge */
    return rc;
}

static int64_t send_simple(struct tui *t, const char *type)
{
    struct wire_body b;
    wire_body_init(&b);
    int64_t id = t->next_id++;
    proto_pack_request_id(&b.pk, id);
    return send_body(t, type, &b) < 0 ? 0 : id;
}

/* Sends what a tail conversation asked for. -1 when its request could not leave. */
static int send_conv(struct tui *t, struct tailconv_out *out)
{
    int rc = 0;
    for (size_t i = 0; i < out->send_count; i++) {
        const struct tailconv_send *s = &out->send[i];
        if (wire_send(t->sock, NULL, 0, s->type, s->body.sbuf.data, s->body.sbuf.size, ZMQ_DONTWAIT) < 0 &&
            !strcmp(s->type, PROTO_TAIL))
            rc = -1;
    }
    if (out->send_count)
        schedule_recheck(t); /* a send may have consumed ZMQ_FD's edge */
    tailconv_out_free(out);
    return rc;
}

static void send_status(struct tui *t)
{
    t->status_id = send_simple(t, PROTO_STATUS);
    t->status_sent_ms = uv_now(t->loop);
}

static void pending_add(struct tui *t, int64_t id, const struct ui_action *act)
{
    struct pending *p = &t->pending[t->pending_next++ % PENDING_MAX];
    p->id = id;
    p->kind = act->kind;
    p->count = act->count;
    snprintf(p->target, sizeof p->target, "%s", act->target);
}

static struct pending *pending_take(struct tui *t, int64_t id)
{
    for (size_t i = 0; i < PENDING_MAX; i++)
        if (t->pending[i].id == id && id) {
            t->pending[i].id = 0;
            return &t->pending[i];
        }
    return NULL;
}

/* ---------------------------------------------------------------- drawing */

static void on_render(uv_timer_t *timer);

static void render(struct tui *t)
{
    if (t->closed || !t->term_on)
        return;
    if (uv_is_active((uv_handle_t *)&t->render))
        uv_timer_stop(&t->render);
    t->last_render_ms = uv_now(t->loop);
    int H = LINES, W = COLS;
    werase(stdscr);
    if (H < 6 || W < 30) {
        view_puts(stdscr, 0, 0, W, "devnode: terminal too small", A_BOLD);
        wnoutrefresh(stdscr);
        doupdate();
        return;
    }
    if ((size_t)H > t->rows_cap) {
        t->rows = xrealloc(t->rows, (size_t)H * sizeof *t->rows);
        t->rows_cap = (size_t)H;
    }
    /* header | table (~35%, at least 5 rows when it has them) | logs | status line */
    int mid = H - 2;
    int needed = 1 + (t->model.node.known ? (int)model_table_row_count(&t->model) : 1);
    int max_t = mid * 35 / 100;
    if (max_t < 5)
        max_t = 5;
    int th = needed < max_t ? needed : max_t;
    if (th < 2)
        th = 2;
    if (mid - th < 3)
        th = mid - 3;
    struct view_rect header = {0, 0, 1, W}, table = {1, 0, th, W}, logs = {1 + th, 0, mid - th, W},
                     status = {H - 1, 0, 1, W}, all = {0, 0, H, W};
    t->ui.table_rows = (size_t)(th > 1 ? th - 1 : 1);
    t->ui.log_rows = (size_t)(logs.h > 1 ? logs.h - 1 : 1);
    view_header(stdscr, header, &t->model, &t->style);
    view_table(stdscr, table, &t->model, &t->style, t->ui.focus == UI_FOCUS_TABLE);
    if (t->model.trace.active)
        view_trace(stdscr, logs, &t->model, &t->style, t->ui.focus == UI_FOCUS_LOGS, t->rows);
    else
        view_logs(stdscr, logs, &t->model, &t->style, t->ui.focus == UI_FOCUS_LOGS, t->rows);
    view_statusline(stdscr, status, &t->model, &t->ui, &t->style, uv_now(t->loop));
    if (t->ui.help)
        view_help(stdscr, all, &t->ui, &t->style);
    wnoutrefresh(stdscr);
    doupdate();
}

static void on_render(uv_timer_t *timer)
{
    render(timer->data);
}

/* Something visible changed: draw within RENDER_INTERVAL_MS of the last frame. */
static void mark_dirty(struct tui *t)
{
    if (t->closed || uv_is_active((uv_handle_t *)&t->render))
        return;
    uint64_t now = uv_now(t->loop), due = t->last_render_ms + RENDER_INTERVAL_MS;
    uv_timer_start(&t->render, on_render, due > now ? due - now : 0, 0);
}

static void resize(struct tui *t)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
        resizeterm(ws.ws_row, ws.ws_col);
    render(t); /* at once: a stale layout at the new size looks broken */
}

/* ---------------------------------------------------------------- ending */

static void quit(struct tui *t, int status, const char *message)
{
    if (t->quitting || t->closed)
        return;
    t->quitting = 1;
    if (t->on_quit)
        t->on_quit(t->quit_ctx, status, message);
    else
        tui_close(t);
}

/* ---------------------------------------------------------------- messages from the node */

/* What the log pane's subscription brought. */
static void on_live(struct tui *t, const struct tailconv_out *out)
{
    switch (out->event) {
    case TAILCONV_EV_LINES:
        t->model.node.stream_error[0] = '\0';
        for (size_t i = 0; i < out->line_count; i++)
            model_add_line(&t->model, &out->lines[i].line);
        if (out->line_count)
            t->last_seq_pid = t->model.node.pid;
        if (out->gap && out->skipped > 0)
            model_add_skipped(&t->model, out->skipped);
        break;
    case TAILCONV_EV_END:
        snprintf(t->model.node.stream_error, sizeof t->model.node.stream_error,
                 "the node ended the log stream (it is stopping)");
        break;
    case TAILCONV_EV_FAILED:
        snprintf(t->model.node.stream_error, sizeof t->model.node.stream_error, "log stream unavailable: %s",
                 out->error);
        break;
    default: /* resubscribed (we stopped renewing, e.g. Ctrl-Z) or asked again: nothing to show */
        return;
    }
    mark_dirty(t);
}

/* What the trace view's fetch brought. */
static void on_trace(struct tui *t, const struct tailconv_out *out)
{
    switch (out->event) {
    case TAILCONV_EV_LINES:
        for (size_t i = 0; i < out->line_count; i++)
            model_trace_add(&t->model, &out->lines[i].line);
        if (out->gap && out->skipped > 0)
            t->model.trace.incomplete = 1;
        break;
    case TAILCONV_EV_END:
        if (out->truncated || (out->gap && out->skipped > 0))
            t->model.trace.incomplete = 1;
        t->model.trace.loading = 0;
        break;
    case TAILCONV_EV_FAILED:
        t->model.trace.loading = 0;
        ui_flash(&t->ui, uv_now(t->loop), 1, "trace: %s", out->error);
        break;
    default:
        return;
    }
    mark_dirty(t);
}

static void on_ok(struct tui *t, const struct wire_msg *msg, int64_t id)
{
    struct pending *p = pending_take(t, id);
    if (!p)
        return;
    uint64_t now = uv_now(t->loop);
    int64_t n = 0;
    switch (p->kind) {
    case UI_ACT_RESTART: {
        proto_unpack_change_accepted(msg->body, 0, &n);
        int rolling = 0;
        for (size_t i = 0; i < t->model.service_count; i++) {
            const char *name = t->model.services[i].name;
            size_t len = strlen(name);
            if (t->model.services[i].has_socket && !strncmp(name, p->target, len) &&
                (p->target[len] == '\0' || p->target[len] == '.'))
                rolling = 1;
        }
        ui_flash(&t->ui, now, 0, "restarting %s: %lld instance%s%s", p->target, (long long)n, n == 1 ? "" : "s",
                 rolling && n > 1 ? ", one by one (rolling)" : "");
        break;
    }
    case UI_ACT_SCALE:
        proto_unpack_change_accepted(msg->body, 1, &n);
        ui_flash(&t->ui, now, 0, "%s scaled to %lld", p->target, (long long)n);
        break;
    case UI_ACT_STOP_NODE:
        ui_flash(&t->ui, now, 0, "the node is stopping every service");
        break;
    default:
        break;
    }
    send_status(t); /* show the effect without waiting for the next tick */
    mark_dirty(t);
}

static void on_error(struct tui *t, const struct wire_msg *msg, int64_t id)
{
    char message[400];
    proto_unpack_error(msg->body, message, sizeof message);
    uint64_t now = uv_now(t->loop);
    if (id && id == t->status_id) {
        t->status_id = 0;
        ui_flash(&t->ui, now, 1, "status: %s", message);
    } else {
        struct pending *p = pending_take(t, id);
        if (p) {
            const char *what = p->kind == UI_ACT_RESTART ? PROTO_RESTART : p->kind == UI_ACT_SCALE ? PROTO_SCALE : PROTO_STOP;
            ui_flash(&t->ui, now, 1, "%s %s: %s", what, p->target, message);
        }
    }
    mark_dirty(t);
}

static void handle_msg(struct tui *t, const struct wire_msg *msg)
{
    struct tailconv_out out;
    if (tailconv_feed(&t->live, msg->type, msg->body, uv_now(t->loop), &out)) {
        send_conv(t, &out);
        on_live(t, &out);
        return;
    }
    if (tailconv_feed(&t->trace, msg->type, msg->body, uv_now(t->loop), &out)) {
        send_conv(t, &out);
        on_trace(t, &out);
        return;
    }
    /* else: a stale subscription's last batch, or a reply to another request */
    int64_t id = 0;
    wire_get_int(msg->body, "id", &id);
    if (!strcmp(msg->type, PROTO_STATUS)) {
        if (model_apply_status(&t->model, msg->body) == 0) {
            if (t->live.last_seq && t->last_seq_pid && t->model.node.pid != t->last_seq_pid)
                tailconv_forget_seqs(&t->live); /* another node: its line numbers start over */
            t->status_ok_ms = uv_now(t->loop);
            t->model.node.silent = 0;
            if (id == t->status_id)
                t->status_id = 0;
            mark_dirty(t);
        }
    } else if (!strcmp(msg->type, PROTO_OK)) {
        on_ok(t, msg, id);
    } else if (!strcmp(msg->type, PROTO_ERROR)) {
        on_error(t, msg, id);
    }
}

static void drain(struct tui *t)
{
    uint64_t start = uv_hrtime();
    for (int handled = 0; !t->closed; handled++) {
        if (handled == DRAIN_MAX_MSGS || uv_hrtime() - start > DRAIN_BUDGET_NS) {
            schedule_recheck(t); /* more may wait: yield to keys and frames, come back next */
            return;
        }
        int events = 0;
        size_t len = sizeof events;
        if (zmq_getsockopt(t->sock, ZMQ_EVENTS, &events, &len) < 0 || !(events & ZMQ_POLLIN))
            return;
        struct wire_msg msg;
        char err[160];
        enum wire_recv_result rc = wire_recv(t->sock, 0, &msg, err, sizeof err);
        if (rc == WIRE_AGAIN)
            return;
        if (rc == WIRE_OTHER_VERSION) {
            /* Nothing it sends can be trusted to mean what we read: say so where the logs go. */
            proto_version_mismatch(t->model.node.stream_error, sizeof t->model.node.stream_error, msg.version,
                                   WIRE_VERSION, "dashboard");
            wire_msg_free(&msg);
            mark_dirty(t);
            continue;
        }
        if (rc != WIRE_OK)
            continue;
        handle_msg(t, &msg);
        wire_msg_free(&msg);
    }
}

static void on_zpoll(uv_poll_t *handle, int status, int events)
{
    drain(handle->data);
}

/* ---------------------------------------------------------------- actions */

static void start_trace_fetch(struct tui *t, const char *id)
{
    struct tailconv_out out;
    tailconv_stop(&t->trace, &out);
    send_conv(t, &out);
    t->model.trace.loading = 0;
    if (t->live.state == TAILCONV_FAILED)
        return; /* no tail stream: what the buffer holds is all there is */
    snprintf(t->trace_id, sizeof t->trace_id, "%s", id);
    tailconv_start(&t->trace, uv_now(t->loop), &out);
    if (send_conv(t, &out) < 0) {
        tailconv_stop(&t->trace, &out); /* never left: nothing to untail */
        tailconv_out_free(&out);
    } else {
        t->model.trace.loading = 1;
    }
}

static void on_keys(uv_poll_t *handle, int status, int events);

/* The session is over: curses takes the terminal back (at its size now) and says how it ended. */
static void attach_end(struct tui *t, enum attach_result result, const char *message)
{
    reset_prog_mode();
    t->term_on = 1;
    term_restore.active = 1;
    uv_poll_start(&t->keys, UV_READABLE | UV_DISCONNECT, on_keys);
    clearok(curscr, TRUE);
    uv_update_time(t->loop);
    int failed = result != ATTACH_DETACHED && result != ATTACH_EXITED;
    if (message && message[0])
        ui_flash(&t->ui, uv_now(t->loop), failed, "%s", message);
    else
        ui_flash(&t->ui, uv_now(t->loop), 0, "detached; it runs on");
    resize(t);
}

static void on_attach_done(void *ctx, enum attach_result result, const char *message)
{
    struct tui *t = ctx;
    if (!t->attach)
        return; /* cancelled by tui_close, which keeps the terminal released */
    t->attach = NULL;
    attach_end(t, result, message);
}

/* `a`: curses steps aside (render draws nothing while term_on is 0) and the attach client has
 * the terminal; the node's messages keep updating the model meanwhile. */
static void attach_begin(struct tui *t, const char *target)
{
    char err[300];
    uv_poll_stop(&t->keys);
    def_prog_mode();
    endwin();
    t->term_on = 0;
    term_restore.active = 0;
    fprintf(stdout, "devnode: attaching to %s...\n", target);
    fflush(stdout);
    struct attach_client_options opts = {.endpoint = t->endpoint, .target = target};
    if (attach_client_start(&t->attach, t->loop, &opts, on_attach_done, t, err, sizeof err) < 0) {
        t->attach = NULL;
        attach_end(t, ATTACH_FAILED, err);
    }
}

static void perform(struct tui *t, const struct ui_action *act)
{
    uint64_t now = uv_now(t->loop);
    struct wire_body b;
    int64_t id;
    switch (act->kind) {
    case UI_ACT_NONE:
        return;
    case UI_ACT_QUIT:
        quit(t, 0, NULL);
        return;
    case UI_ACT_STOP_NODE:
        ui_flash(&t->ui, now, 0, "stopping the node...");
        if (t->on_stop) {
            t->on_stop(t->stop_ctx);
        } else if ((id = send_simple(t, PROTO_STOP)) != 0) {
            pending_add(t, id, act);
        }
        break;
    case UI_ACT_RESTART:
        wire_body_init(&b);
        id = t->next_id++;
        proto_pack_restart(&b.pk, id, &(struct proto_restart){.target = act->target});
        if (send_body(t, PROTO_RESTART, &b) == 0) {
            pending_add(t, id, act);
            ui_flash(&t->ui, now, 0, "restart %s...", act->target);
        }
        break;
    case UI_ACT_SCALE:
        wire_body_init(&b);
        id = t->next_id++;
        proto_pack_scale(&b.pk, id, &(struct proto_scale){.service = act->target, .count = act->count});
        if (send_body(t, PROTO_SCALE, &b) == 0) {
            pending_add(t, id, act);
            ui_flash(&t->ui, now, 0, "scale %s to %d...", act->target, act->count);
        }
        break;
    case UI_ACT_TRACE:
        start_trace_fetch(t, act->target);
        break;
    case UI_ACT_REDRAW:
        clearok(curscr, TRUE);
        render(t);
        return;
    case UI_ACT_ATTACH:
        attach_begin(t, act->target);
        return;
    }
    mark_dirty(t);
}

/* ---------------------------------------------------------------- keys, timers, signals */

static void on_keys(uv_poll_t *handle, int status, int events)
{
    struct tui *t = handle->data;
    if (status < 0 || (events & UV_DISCONNECT)) {
        quit(t, 1, "the terminal went away");
        return;
    }
    int got = 0;
    for (int n = 0; n < 4096 && !t->closed && !t->quitting; n++) {
        wint_t ch;
        int rc = wget_wch(stdscr, &ch);
        if (rc == ERR)
            break;
        got = 1;
        if (rc == KEY_CODE_YES && ch == KEY_RESIZE) {
            /* resizeterm (our SIGWINCH path) queues this one: the size is already known, and
             * resizing again would queue another */
            render(t);
            continue;
        }
        struct ui_action act;
        if (ui_key(&t->ui, &t->model, rc == KEY_CODE_YES, ch, uv_now(t->loop), &act))
            mark_dirty(t);
        perform(t, &act);
    }
    if (!got && !t->closed) {
        /* readable yet no key: end of file or a hangup on the terminal */
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)))
            quit(t, 1, "the terminal went away");
    }
}

static void on_tick(uv_timer_t *timer)
{
    struct tui *t = timer->data;
    uint64_t now = uv_now(t->loop);
    if (!t->status_id || now - t->status_sent_ms >= STATUS_RESEND_MS)
        send_status(t);
    uint64_t last = t->status_ok_ms ? t->status_ok_ms : t->started_ms;
    int silent = now - last > STATUS_SILENT_MS;
    if (silent != t->model.node.silent)
        t->model.node.silent = silent;
    /* Renewals (a subscription expires after 5 s without), and a live request that got no
     * answer at all (the node was busy or not there) is asked again. */
    struct tailconv_out out;
    tailconv_tick(&t->live, (long long)now, &out);
    send_conv(t, &out);
    on_live(t, &out);
    tailconv_tick(&t->trace, (long long)now, &out);
    send_conv(t, &out);
    on_trace(t, &out);
    if (t->project_dir && silent) {
        char endpoint[PATH_MAX + 16], err[256];
        pid_t pid;
        if (rundir_find_node(t->project_dir, endpoint, sizeof endpoint, &pid, err, sizeof err) < 0) {
            quit(t, 0, "the node stopped");
            return;
        }
    }
    mark_dirty(t); /* uptimes move; a message may have expired */
}

static void on_signal(uv_signal_t *handle, int signum)
{
    struct tui *t = handle->data;
    if (signum == SIGWINCH && t->attach)
        return; /* the instance's window now; resized on the way back */
    if (signum == SIGWINCH)
        resize(t);
    else
        quit(t, 0, NULL);
}

/* ---------------------------------------------------------------- life cycle */

static void free_tui(struct tui *t)
{
    tailconv_free(&t->live);
    tailconv_free(&t->trace);
    model_free(&t->model);
    free(t->rows);
    free(t->endpoint);
    free(t->project_dir);
    free(t);
}

static void on_closed(uv_handle_t *handle)
{
    struct tui *t = handle->data;
    if (--t->handles == 0)
        free_tui(t);
}

static void track(struct tui *t, uv_handle_t *h)
{
    h->data = t;
    t->handles++;
}

void tui_set_stop_callback(struct tui *t, void (*on_stop)(void *ctx), void *ctx)
{
    t->on_stop = on_stop;
    t->stop_ctx = ctx;
}

void tui_set_quit_callback(struct tui *t, void (*on_quit)(void *ctx, int status, const char *message), void *ctx)
{
    t->on_quit = on_quit;
    t->quit_ctx = ctx;
}

static int open_socket(struct tui *t, char *err, size_t errlen)
{
    t->zctx = zmq_ctx_new();
    if (!t->zctx) {
        snprintf(err, errlen, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
        return -1;
    }
    /* Farewell: the untails leave on close, never holding the exit up for long. */
    t->sock = nodeconn_open(t->zctx, t->endpoint, NODECONN_FAREWELL, err, errlen);
    if (!t->sock) {
        zmq_ctx_term(t->zctx);
        return -1;
    }
    return 0;
}

static int open_terminal(struct tui *t, int color, char *err, size_t errlen)
{
    setlocale(LC_CTYPE, ""); /* ncursesw draws UTF-8 only in a UTF-8 locale */
    const char *codeset = nl_langinfo(CODESET);
    int utf8 = codeset && (!strcmp(codeset, "UTF-8") || !strcmp(codeset, "utf8"));
    term_restore.have_termios = tcgetattr(STDIN_FILENO, &term_restore.saved) == 0;
    t->screen = newterm(NULL, stdout, stdin);
    if (!t->screen) {
        const char *term = getenv("TERM");
        snprintf(err, errlen, "cannot use the terminal (TERM=%s)", term ? term : "unset");
        return -1;
    }
    set_term(t->screen);
    t->term_on = 1;
    term_restore.active = 1;
    install_restore_hooks();
    cbreak(); /* not raw: Ctrl-C and Ctrl-Z keep their meaning */
    noecho();
    nonl();
    intrflush(stdscr, FALSE);
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    leaveok(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    view_style_init(&t->style, color, utf8);
    return 0;
}

int tui_start(struct tui **out, uv_loop_t *loop, const struct tui_options *opts, char *err, size_t errlen)
{
    *out = NULL;
    if (!opts->endpoint || !opts->endpoint[0]) {
        snprintf(err, errlen, "no node endpoint to connect to");
        return -1;
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        snprintf(err, errlen, "the dashboard needs a terminal on stdin and stdout");
        return -1;
    }
    if (term_restore.active) {
        snprintf(err, errlen, "a dashboard already owns this terminal");
        return -1;
    }
    struct tui *t = xcalloc(1, sizeof *t);
    t->loop = loop;
    t->in_node = opts->in_node;
    t->endpoint = xstrdup(opts->endpoint);
    t->project_dir = opts->project_dir ? xstrdup(opts->project_dir) : NULL;
    t->next_id = 1;
    t->live_req = (struct tail_request){.backlog = LIVE_BACKLOG, .follow = 1};
    struct tailconv_options live_opts = {.resume = 1, .resume_backlog = LIVE_BACKLOG, .retry_unanswered = 1};
    tailconv_init(&t->live, &t->live_req, &live_opts, &t->next_id);
    t->trace_req = (struct tail_request){.backlog = MODEL_TRACE_LINES_MAX, .follow = 0, .trace = t->trace_id};
    struct tailconv_options trace_opts = {0};
    tailconv_init(&t->trace, &t->trace_req, &trace_opts, &t->next_id);
    model_init(&t->model, 0);
    ui_init(&t->ui, opts->in_node);
    if (!t->endpoint || (opts->project_dir && !t->project_dir) || open_socket(t, err, errlen) < 0) {
        if (!t->endpoint)
            snprintf(err, errlen, "out of memory");
        free_tui(t);
        return -1;
    }
    if (open_terminal(t, opts->color, err, errlen) < 0) {
        zmq_close(t->sock);
        zmq_ctx_term(t->zctx);
        free_tui(t);
        return -1;
    }
    /* Handles after curses: libuv's handlers replace the SIGWINCH (and, in devnode tui, SIGINT
     * and SIGTERM) handlers curses installed, so those arrive here, on the loop. */
    int fd;
    size_t fdlen = sizeof fd;
    zmq_getsockopt(t->sock, ZMQ_FD, &fd, &fdlen);
    uv_poll_init(loop, &t->zpoll, fd);
    track(t, (uv_handle_t *)&t->zpoll);
    uv_poll_start(&t->zpoll, UV_READABLE, on_zpoll);
    uv_poll_init(loop, &t->keys, STDIN_FILENO);
    track(t, (uv_handle_t *)&t->keys);
    uv_poll_start(&t->keys, UV_READABLE | UV_DISCONNECT, on_keys);
    uv_timer_init(loop, &t->recheck);
    track(t, (uv_handle_t *)&t->recheck);
    uv_timer_init(loop, &t->render);
    track(t, (uv_handle_t *)&t->render);
    uv_timer_init(loop, &t->tick);
    track(t, (uv_handle_t *)&t->tick);
    uv_signal_init(loop, &t->sig_winch);
    track(t, (uv_handle_t *)&t->sig_winch);
    uv_signal_start(&t->sig_winch, on_signal, SIGWINCH);
    if (!t->in_node) {
        uv_signal_init(loop, &t->sig_int);
        track(t, (uv_handle_t *)&t->sig_int);
        uv_signal_start(&t->sig_int, on_signal, SIGINT);
        uv_signal_init(loop, &t->sig_term);
        track(t, (uv_handle_t *)&t->sig_term);
        uv_signal_start(&t->sig_term, on_signal, SIGTERM);
        uv_signal_init(loop, &t->sig_hup);
        track(t, (uv_handle_t *)&t->sig_hup);
        uv_signal_start(&t->sig_hup, on_signal, SIGHUP);
    }
    uv_update_time(loop);
    t->started_ms = uv_now(loop);
    uv_timer_start(&t->tick, on_tick, TICK_MS, TICK_MS);
    send_status(t);
    struct tailconv_out first;
    tailconv_start(&t->live, (long long)t->started_ms, &first);
    send_conv(t, &first);
    render(t);
    *out = t;
    return 0;
}

void tui_close(struct tui *t)
{
    if (!t || t->closed)
        return;
    if (t->attach) {
        struct attach_client *c = t->attach;
        t->attach = NULL;
        attach_client_cancel(c); /* gives the terminal back as the attach found it */
        reset_prog_mode();
        t->term_on = 1;
    }
    /* The user gets the shell back first; the rest is bookkeeping. */
    terminal_release(t);
    struct tailconv_out out;
    tailconv_stop(&t->live, &out);
    send_conv(t, &out);
    tailconv_stop(&t->trace, &out);
    send_conv(t, &out);
    t->closed = 1;
    uv_close((uv_handle_t *)&t->zpoll, on_closed);
    uv_close((uv_handle_t *)&t->keys, on_closed);
    uv_close((uv_handle_t *)&t->recheck, on_closed);
    uv_close((uv_handle_t *)&t->render, on_closed);
    uv_close((uv_handle_t *)&t->tick, on_closed);
    uv_close((uv_handle_t *)&t->sig_winch, on_closed);
    if (!t->in_node) {
        uv_close((uv_handle_t *)&t->sig_int, on_closed);
        uv_close((uv_handle_t *)&t->sig_term, on_closed);
        uv_close((uv_handle_t *)&t->sig_hup, on_closed);
    }
    zmq_close(t->sock);
    zmq_ctx_term(t->zctx);
}
