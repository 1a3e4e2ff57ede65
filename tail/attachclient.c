/* attachclient: one attach session as a handful of libuv handles. ZMQ_FD is edge-triggered, so
 * every wake-up drains until ZMQ_EVENTS stops saying readable and a send re-arms a zero-delay
 * recheck. Keys are read from a dup of stdin so the dashboard's own poll on fd 0 can stay
 * registered (epoll takes each fd once), and never with O_NONBLOCK, which the shell would
 * inherit: poll says readable, one read() follows. */
#include "tail/attachclient.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "common/nodeconn.h"
#include "common/xalloc.h"
#include "proto/proto.h"

#define ATTACH_TICK_MS 500
#define ATTACH_SIGNALS 3

size_t attach_scan_detach(const char *buf, size_t len, int *found)
{
    const char *key = memchr(buf, ATTACH_DETACH_KEY, len);
    *found = key != NULL;
    return key ? (size_t)(key - buf) : len;
}

struct attach_client {
    uv_loop_t *loop;
    void *zctx, *sock;
    uv_poll_t zpoll;           /* the DEALER's ZMQ_FD */
    uv_timer_t recheck;        /* drains again after a send consumed ZMQ_FD's edge */
    uv_timer_t tick;           /* the answer's deadline, the node's liveness */
    uv_poll_t keys;            /* keys_fd */
    int keys_fd;               /* a dup of stdin */
    int have_keys;             /* keys is a handle: stdin can be polled */
    uv_signal_t winch;
    uv_signal_t sigs[ATTACH_SIGNALS]; /* INT, TERM, HUP when handle_signals */
    int handle_signals;
    int open_handles;          /* freed when the last close callback ran */
    pid_t node_pid;
    uint64_t asked_ms;         /* loop time `attach` was sent */
    int attached, pty, ended;
    struct termios saved;      /* the terminal as it was */
    int termios_changed;
    char target[200];
    attach_client_done done;
    void *ctx;
};

static void on_closed(uv_handle_t *handle)
{
    struct attach_client *c = handle->data;
    if (--c->open_handles == 0)
        free(c);
}

static void track(struct attach_client *c, uv_handle_t *h)
{
    h->data = c;
    c->open_handles++;
}

static void on_recheck(uv_timer_t *timer);

static void schedule_recheck(struct attach_client *c)
{
    if (!c->ended)
        uv_timer_start(&c->recheck, on_recheck, 0, 0);
}

static void send_msg(struct attach_client *c, const char *type, struct wire_body *b)
{
    wire_send(c->sock, NULL, 0, type, b->sbuf.data, b->sbuf.size, ZMQ_DONTWAIT);
    wire_body_free(b);
    schedule_recheck(c);
}

static void restore_terminal(struct attach_client *c)
{
    if (c->termios_changed) {
        tcsetattr(STDIN_FILENO, TCSANOW, &c->saved);
        c->termios_changed = 0;
    }
}

/* Writes all of it to stdout, waiting on a terminal that is slow to take it. 0, or -1 when
 * stdout is gone (a closed pipe: SIGPIPE is ignored by the CLI so the terminal is restored). */
static int write_out(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = STDOUT_FILENO, .events = POLLOUT};
            poll(&pf, 1, 100);
        } else if (!(w < 0 && errno == EINTR)) {
            return -1;
        }
    }
    return 0;
}

static void finish(struct attach_client *c, enum attach_result result, const char *message)
{
    if (c->ended)
        return;
    c->ended = 1;
    if (c->attached && (result == ATTACH_DETACHED || result == ATTACH_INTERRUPTED)) {
        struct wire_body b;
        wire_body_init(&b);
        proto_pack_request_id(&b.pk, 2);
        wire_send(c->sock, NULL, 0, PROTO_DETACH, b.sbuf.data, b.sbuf.size, ZMQ_DONTWAIT);
        wire_body_free(&b);
    }
    if (c->attached && c->pty)
        write_out("\r\n", 2); /* the prompt it left the cursor on is not the shell's */
    restore_terminal(c);
    uv_close((uv_handle_t *)&c->zpoll, on_closed);
    uv_close((uv_handle_t *)&c->recheck, on_closed);
    uv_close((uv_handle_t *)&c->tick, on_closed);
    if (c->have_keys)
        uv_close((uv_handle_t *)&c->keys, on_closed);
    uv_close((uv_handle_t *)&c->winch, on_closed);
    for (int i = 0; c->handle_signals && i < ATTACH_SIGNALS; i++)
        uv_close((uv_handle_t *)&c->sigs[i], on_closed);
    zmq_close(c->sock); /* NODECONN_FAREWELL: the detach gets its moment to leave */
    zmq_ctx_term(c->zctx);
    close(c->keys_fd);
    c->done(c->ctx, result, message);
}

void attach_client_cancel(struct attach_client *c)
{
    finish(c, ATTACH_DETACHED, NULL);
}

static void window_size(int *rows, int *cols)
{
    struct winsize ws;
    *rows = *cols = 0;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 || ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    }
}

/* A pty's bytes go through untouched (raw: the instance's line discipline echoes and edits);
 * a pipe's lines are edited here, and Ctrl-] ends a line at once (VEOL) so it is seen. */
static void take_terminal(struct attach_client *c)
{
    if (tcgetattr(STDIN_FILENO, &c->saved) < 0)
        return;
    struct termios t = c->saved;
    if (c->pty) {
        cfmakeraw(&t);
    } else {
        t.c_cc[VEOL] = ATTACH_DETACH_KEY;
        if (!c->handle_signals)
            t.c_lflag &= ~(tcflag_t)ISIG; /* in the dashboard, Ctrl-C must not reach the node */
    }
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
        c->termios_changed = 1;
}

static void on_keys(uv_poll_t *handle, int status, int events)
{
    struct attach_client *c = handle->data;
    char buf[4096];
    if (c->ended)
        return;
    ssize_t n = status < 0 ? 0 : read(c->keys_fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        finish(c, ATTACH_DETACHED, "end of input");
        return;
    }
    int found;
    size_t k = attach_scan_detach(buf, (size_t)n, &found);
    if (k > 0) {
        struct wire_body b;
        wire_body_init(&b);
        proto_pack_attach_data(&b.pk, &(struct proto_attach_data){.data = buf, .len = k});
        send_msg(c, PROTO_ATTACH_INPUT, &b);
    }
    if (found)
        finish(c, ATTACH_DETACHED, NULL);
}

static void on_attached(struct attach_client *c, const struct wire_msg *msg)
{
    struct proto_attach_reply r;
    char mode[16];
    proto_unpack_attach_reply(msg->body, &r, mode, sizeof mode);
    c->attached = 1;
    c->pty = strcmp(mode, "pty") == 0;
    char banner[400];
    int len = snprintf(banner, sizeof banner, "devnode: attached to %s (pid %lld, %s); %s detaches\n", c->target,
                       (long long)r.pid, c->pty ? "a terminal" : "stdin is a pipe: lines go on Enter",
                       ATTACH_DETACH_KEY_NAME);
    if (len > 0) { /* on stderr: stdout carries the instance's bytes alone */
        ssize_t w = write(STDERR_FILENO, banner, (size_t)len < sizeof banner ? (size_t)len : sizeof banner - 1);
        (void)w;
    }
    take_terminal(c);
    if (c->have_keys)
        uv_poll_start(&c->keys, UV_READABLE, on_keys);
}

static void on_message(struct attach_client *c, const struct wire_msg *msg)
{
    if (!c->attached) {
        if (strcmp(msg->type, PROTO_OK) == 0) {
            on_attached(c, msg);
        } else if (strcmp(msg->type, PROTO_ERROR) == 0) {
            char message[600], reason[32];
            proto_unpack_error(msg->body, message, sizeof message);
            proto_unpack_attach_reason(msg->body, reason, sizeof reason);
            finish(c, strcmp(reason, PROTO_ATTACH_REFUSED_CONFIG) == 0 ? ATTACH_REFUSED_CONFIG
                      : reason[0]                                     ? ATTACH_REFUSED
                                                                      : ATTACH_FAILED,
                   message);
        }
        return;
    }
    if (strcmp(msg->type, PROTO_ATTACH_OUTPUT) == 0) {
        struct proto_attach_data d;
        char err[160];
        if (proto_unpack_attach_data(msg->body, &d, err, sizeof err) == 0 && write_out(d.data, d.len) < 0)
            finish(c, ATTACH_DETACHED, "stdout closed");
    } else if (strcmp(msg->type, PROTO_ATTACH_END) == 0) {
        char reason[32], message[400], line[480];
        proto_unpack_attach_end(msg->body, reason, sizeof reason, message, sizeof message);
        if (strcmp(reason, "exited") == 0) {
            snprintf(line, sizeof line, "%s; detached (its next process is a new session: `devnode attach %s`)",
                     message, c->target);
            finish(c, ATTACH_EXITED, line);
        } else {
            finish(c, ATTACH_FAILED, message[0] ? message : "the node ended the session");
        }
    }
}

static void drain(struct attach_client *c)
{
    while (!c->ended) {
        int events = 0;
        size_t len = sizeof events;
        if (zmq_getsockopt(c->sock, ZMQ_EVENTS, &events, &len) < 0 || !(events & ZMQ_POLLIN))
            return;
        struct wire_msg msg;
        char why[160];
        enum wire_recv_result r = wire_recv(c->sock, 0, &msg, why, sizeof why);
        if (r == WIRE_AGAIN)
            return;
        if (r == WIRE_OTHER_VERSION) {
            char line[300];
            proto_version_mismatch(line, sizeof line, msg.version, WIRE_VERSION, "devnode");
            wire_msg_free(&msg);
            finish(c, ATTACH_FAILED, line);
            return;
        }
        if (r != WIRE_OK)
            continue; /* malformed: dropped */
        on_message(c, &msg);
        wire_msg_free(&msg);
    }
}

static void on_zpoll(uv_poll_t *handle, int status, int events)
{
    drain(handle->data);
}

static void on_recheck(uv_timer_t *timer)
{
    drain(timer->data);
}

static void on_tick(uv_timer_t *timer)
{
    struct attach_client *c = timer->data;
    char line[200];
    if (!c->attached && uv_now(c->loop) - c->asked_ms >= PROTO_ANSWER_TIMEOUT_MS) {
        snprintf(line, sizeof line, "the node did not answer 'attach' within %d ms", PROTO_ANSWER_TIMEOUT_MS);
        finish(c, ATTACH_FAILED, line);
    } else if (c->node_pid > 0 && kill(c->node_pid, 0) < 0 && errno == ESRCH) {
        snprintf(line, sizeof line, "the node (pid %d) stopped; detached", (int)c->node_pid);
        finish(c, ATTACH_FAILED, line);
    }
}

static void on_winch(uv_signal_t *handle, int signum)
{
    struct attach_client *c = handle->data;
    if (!c->attached || c->ended)
        return;
    struct proto_attach_resize r;
    window_size(&r.rows, &r.cols);
    if (r.rows <= 0 || r.cols <= 0)
        return;
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_attach_resize(&b.pk, &r);
    send_msg(c, PROTO_ATTACH_RESIZE, &b);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    char line[120];
    snprintf(line, sizeof line, "detached on SIG%s", signum == SIGINT ? "INT" : signum == SIGTERM ? "TERM" : "HUP");
    finish(handle->data, ATTACH_INTERRUPTED, line);
}

int attach_client_start(struct attach_client **out, uv_loop_t *loop, const struct attach_client_options *opts,
                        attach_client_done done, void *ctx, char *err, size_t errlen)
{
    int keys_fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
    if (keys_fd < 0) {
        snprintf(err, errlen, "attach needs a stdin: %s", strerror(errno));
        return -1;
    }
    void *zctx = zmq_ctx_new();
    void *sock = zctx ? nodeconn_open(zctx, opts->endpoint, NODECONN_FAREWELL, err, errlen) : NULL;
    if (!sock) {
        if (!zctx)
            snprintf(err, errlen, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
        else
            zmq_ctx_term(zctx);
        close(keys_fd);
        return -1;
    }
    struct proto_attach req = {.target = opts->target, .pid = getpid()};
    const char *tty = isatty(STDIN_FILENO) ? ttyname(STDIN_FILENO) : NULL;
    req.tty = tty ? tty : "";
    window_size(&req.rows, &req.cols);
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_attach(&b.pk, 1, &req);
    int rc = wire_send(sock, NULL, 0, PROTO_ATTACH, b.sbuf.data, b.sbuf.size, ZMQ_DONTWAIT);
    wire_body_free(&b);
    if (rc < 0) {
        snprintf(err, errlen, "cannot send to the node: %s", zmq_strerror(-rc));
        zmq_close(sock);
        zmq_ctx_term(zctx);
        close(keys_fd);
        return -1;
    }

    struct attach_client *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->zctx = zctx;
    c->sock = sock;
    c->keys_fd = keys_fd;
    c->node_pid = opts->node_pid;
    c->handle_signals = opts->handle_signals;
    c->done = done;
    c->ctx = ctx;
    snprintf(c->target, sizeof c->target, "%s", opts->target);
    uv_update_time(loop);
    c->asked_ms = uv_now(loop);

    int fd;
    size_t fdlen = sizeof fd;
    zmq_getsockopt(sock, ZMQ_FD, &fd, &fdlen);
    uv_poll_init(loop, &c->zpoll, fd);
    track(c, (uv_handle_t *)&c->zpoll);
    uv_poll_start(&c->zpoll, UV_READABLE, on_zpoll);
    uv_timer_init(loop, &c->recheck);
    track(c, (uv_handle_t *)&c->recheck);
    uv_timer_init(loop, &c->tick);
    track(c, (uv_handle_t *)&c->tick);
    uv_timer_start(&c->tick, on_tick, ATTACH_TICK_MS, ATTACH_TICK_MS);
    /* A file or /dev/null cannot be polled: then nothing is typed, the output is shown. */
    c->have_keys = uv_poll_init(loop, &c->keys, keys_fd) == 0;
    if (c->have_keys)
        track(c, (uv_handle_t *)&c->keys);
    uv_signal_init(loop, &c->winch);
    track(c, (uv_handle_t *)&c->winch);
    uv_signal_start(&c->winch, on_winch, SIGWINCH);
    static const int sigs[ATTACH_SIGNALS] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; c->handle_signals && i < ATTACH_SIGNALS; i++) {
        uv_signal_init(loop, &c->sigs[i]);
        track(c, (uv_handle_t *)&c->sigs[i]);
        uv_signal_start(&c->sigs[i], on_signal, sigs[i]);
    }
    schedule_recheck(c);
    *out = c;
    return 0;
}
