/* supervisor: process lifecycle on the node's one libuv loop. Children are forked by spawn.c,
 * reaped here on SIGCHLD (the node is a subreaper, so orphans land here too), and their pipes
 * are read with uv_poll so an exit can drain the last bytes before it is reported.
 * Nothing here blocks: waits are timers, reads are non-blocking. */
#include "node/supervisor.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/shellcmd.h"
#include "common/xalloc.h"
#include "node/framer.h"
#include "node/readiness.h"
#include "node/spawn.h"
#include "node/term.h"
#include "node/workerenv.h"

#define PIPE_READ_CHUNK (64 * 1024)
#define PIPE_READS_PER_WAKEUP 8
#define SAMPLE_INTERVAL_MS 1000

struct output_pipe {
    uv_poll_t poll;
    int fd;
    struct proc *proc;          /* the process whose output this is; NULL once detached */
    enum log_stream stream;
    pid_t pid;                  /* the process whose output this is */
    struct framer framer;
};

/* What comes with an event (machine.h); fields an event does not use stay 0. */
struct event_info {
    int force;                  /* EV_STOP: SIGKILL at once */
    const char *how;            /* EV_READY: "its log matched"; EV_EXIT: "exited with status 1" */
    pid_t pid;                  /* EV_EXIT: the process that exited */
    uint64_t uptime_ms;         /* EV_EXIT: how long it ran */
    int killed;                 /* EV_EXIT: SIGKILL had been sent to it */
};

static void instance_handle(struct instance *inst, enum machine_event event, const struct event_info *info);
static void instance_start(struct instance *inst);
static void service_roll_continue(struct supervisor *sup, struct service *svc);
static void instance_hint_addrinuse(struct instance *inst, const char *text, size_t len);

/* ---- output pipes ------------------------------------------------------------------ */

struct line_ctx {
    struct output_pipe *pipe;
    struct supervisor *sup;
    const char *service;
    int index;
    int64_t wall_ns; /* one clock read per pipe read: its lines arrived together */
};

static void output_emit_line(void *ctx, const char *text, size_t len, unsigned flags)
{
    struct line_ctx *lc = ctx;
    struct log_line line = {
        .wall_ns = lc->wall_ns,
        .service = lc->service,
        .instance = lc->index,
        .pid = lc->pipe->pid,
        .stream = lc->pipe->stream,
        .flags = flags,
        .text = text,
        .len = len,
    };
    loghub_append_line(lc->sup->hub, &line);
    struct proc *p = lc->pipe->proc;
    struct instance *inst = p ? p->inst : NULL;
    if (inst && !inst->service->addrinuse_told)
        instance_hint_addrinuse(inst, text, len);
    if (inst && p == inst->cur && !p->ready && inst->service->has_ready_re &&
        ready_pattern_match(&inst->service->ready_re, text, len))
        instance_handle(inst, EV_READY, &(struct event_info){.how = "its log matched"});
}

/* Reads what the pipe holds now. Returns 1 at end of stream, 0 otherwise. */
static int output_read(struct output_pipe *op, struct supervisor *sup, const char *service,
                       int index, int max_reads)
{
    char buf[PIPE_READ_CHUNK];
    struct line_ctx lc = {.pipe = op, .sup = sup, .service = service, .index = index};
    for (int i = 0; i < max_reads; i++) {
        ssize_t n = read(op->fd, buf, sizeof buf);
        if (n > 0) {
            if (op->proc && op->proc->term)
                term_output(op->proc->term, buf, (size_t)n); /* an attacher sees the bytes as they came */
            lc.wall_ns = loghub_wall_ns();
            framer_feed(&op->framer, buf, (size_t)n, output_emit_line, &lc);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        framer_flush(&op->framer, output_emit_line, &lc);
        return 1;
    }
    return 0;
}

static void output_on_closed(uv_handle_t *handle)
{
    struct output_pipe *op = handle->data;
    framer_free(&op->framer);
    close(op->fd);
    free(op);
}

static void output_close(struct output_pipe *op)
{
    if (op->proc) {
        if (op->proc->out == op)
            op->proc->out = NULL;
        if (op->proc->err == op)
            op->proc->err = NULL;
        op->proc = NULL;
    }
    uv_close((uv_handle_t *)&op->poll, output_on_closed);
}

/* Whether a held pipe must still be read: a log-pattern readiness check waits on its lines. */
static int output_needed(const struct output_pipe *op, enum output_hold hold)
{
    const struct proc *p = op->proc;
    return hold == OUTPUT_READ_ALL || (hold == OUTPUT_HOLD && p == p->inst->cur && !p->ready &&
                                       p->inst->service->has_ready_re);
}

static void output_on_readable(uv_poll_t *handle, int status, int events)
{
    struct output_pipe *op = handle->data;
    if (!op->proc)
        return;
    struct instance *inst = op->proc->inst;
    if (status == 0 && !output_needed(op, inst->sup->output_hold)) {
        uv_poll_stop(handle); /* supervisor_hold_output starts it again */
        return;
    }
    if (status < 0 || output_read(op, inst->sup, inst->service->cfg->name, inst->index,
                                  PIPE_READS_PER_WAKEUP)) {
        output_close(op);
    }
}

static struct output_pipe *output_open(struct proc *p, int fd, enum log_stream stream)
{
    struct output_pipe *op = xcalloc(1, sizeof *op);
    op->fd = fd;
    op->proc = p;
    op->pid = p->pid;
    op->stream = stream;
    framer_init(&op->framer);
    if (uv_poll_init(p->inst->sup->loop, &op->poll, fd) < 0) {
        free(op);
        return NULL;
    }
    op->poll.data = op;
    uv_poll_start(&op->poll, UV_READABLE | UV_DISCONNECT, output_on_readable);
    return op;
}

/* Reads everything left in an exited process's pipes so its last lines come before the
 * exit report, then closes them. */
static void proc_drain_output(struct proc *p)
{
    struct instance *inst = p->inst;
    struct output_pipe *pipes[2] = {p->out, p->err};
    for (int i = 0; i < 2; i++) {
        if (!pipes[i])
            continue;
        output_read(pipes[i], inst->sup, inst->service->cfg->name, inst->index, 1 << 20);
        struct line_ctx lc = {.pipe = pipes[i], .sup = inst->sup, .service = inst->service->cfg->name,
                              .index = inst->index, .wall_ns = loghub_wall_ns()};
        framer_flush(&pipes[i]->framer, output_emit_line, &lc);
        output_close(pipes[i]);
    }
}

/* ---- lifecycle --------------------------------------------------------------------- */

static void node_line(struct supervisor *sup, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void node_line(struct supervisor *sup, enum log_level level, const char *fmt, ...)
{
    char text[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    loghub_node_line(sup->hub, sup->node_pid, level, "%s", text);
}

/* The port a message names after `start` (":4080", "', 4080)"): 3 to 5 digits after ':' or
 * ", ", not followed by ':' or '.' and a digit (so "20:24:13.5" is a time, not ports). 0 when
 * there is none. */
static int line_next_port(const char **start)
{
    for (const char *p = *start; *p; p++) {
        const char *d = *p == ':' ? p + 1 : (*p == ',' && p[1] == ' ') ? p + 2 : NULL;
        if (!d)
            continue;
        int port = 0, digits = 0;
        while (isdigit((unsigned char)d[digits]) && digits < 6)
            port = port * 10 + (d[digits++] - '0');
        int more = (d[digits] == ':' || d[digits] == '.') && isdigit((unsigned char)d[digits + 1]);
        if (digits >= 3 && digits <= 5 && !more && port <= 65535) {
            *start = d + digits;
            return port;
        }
    }
    return 0;
}

/* A worker that binds its service's port itself dies with EADDRINUSE: the node holds the
 * port. Say why once per roll or crash loop (reset by `restart`), naming the socket whose
 * port the line names, else, when it names no port, the service's first TCP socket. */
static void instance_hint_addrinuse(struct instance *inst, const char *text, size_t len)
{
    struct service *svc = inst->service;
    const struct bound_socket *hit = NULL;
    for (size_t i = 0; i < svc->socket_count && !hit; i++)
        if (svc->sockets[i]->port >= 0)
            hit = svc->sockets[i];
    if (!hit)
        return;
    char buf[1024];
    size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    /* Python, Go and Node say "address already in use", gunicorn "Connection in use". */
    if (!strcasestr(buf, "address already in use") && !strstr(buf, "EADDRINUSE") &&
        !strstr(buf, "Connection in use: "))
        return;
    int named_other = 0;
    const char *at = buf;
    for (int port; (port = line_next_port(&at));) {
        for (size_t i = 0; i < svc->socket_count; i++) {
            if (svc->sockets[i]->port == port) {
                hit = svc->sockets[i];
                goto tell;
            }
        }
        named_other = 1;
    }
    if (named_other)
        return; /* a port of its own, not the node's: not ours to explain */
tell:
    svc->addrinuse_told = 1;
    node_line(inst->sup, LOG_LEVEL_WARNING,
              "%s.%d: \"Address already in use\" on %s: the node holds that port; take the socket from "
              "LISTEN_FDS or $(socket.%s.fd)",
              svc->cfg->name, inst->index, hit->address, hit->cfg->name);
}

static int open_output_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    /* A bigger pipe means fewer wake-ups when a service logs in bursts. */
    fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
    return 0;
}

/* `failed`, with `why` in status, until `devnode restart`; a waiting change hears `news`. */
static void instance_set_failed(struct instance *inst, const char *why, const char *news)
{
    inst->state = INSTANCE_FAILED;
    snprintf(inst->failure, sizeof inst->failure, "%s", why);
    change_note_failure(inst->sup, inst, news);
    change_settle(inst->sup);
}

static void instance_fail(struct instance *inst, const char *why)
{
    node_line(inst->sup, LOG_LEVEL_ERROR,
              "%s.%d cannot run: %s; not restarting (fix it, then `devnode restart %s`)",
              inst->service->cfg->name, inst->index, why, inst->service->cfg->name);
    char failure[300];
    snprintf(failure, sizeof failure, "cannot run: %s", why);
    instance_set_failed(inst, why, failure);
}


/* ---- readiness ------------------------------------------------------------------------ */

static void proc_on_stop_timeout(uv_timer_t *timer)
{
    struct proc *p = timer->data;
    struct instance *inst = p->inst;
    const struct config_service *cfg = inst->service->cfg;
    if (!p->pid || p->kill_sent)
        return;
    if (p == inst->old)
        node_line(inst->sup, LOG_LEVEL_WARNING, "%s.%d old process %d did not stop within %.1fs; sending KILL",
                  cfg->name, inst->index, (int)p->pid, cfg->stop_timeout_ms / 1000.0);
    else
        node_line(inst->sup, LOG_LEVEL_WARNING, "%s.%d did not stop within %.1fs after %s; sending KILL",
                  cfg->name, inst->index, cfg->stop_timeout_ms / 1000.0, config_signal_name(cfg->stop_signal));
    kill(-p->pid, SIGKILL);
    p->kill_sent = 1;
}

/* The one stop path of a process, current or old: stop_signal to its group and SIGKILL after
 * stop_timeout, or SIGKILL at once (force). Asking twice changes nothing. */
static void proc_stop(struct proc *p, int force)
{
    if (!p->pid)
        return;
    if (force) {
        if (!p->kill_sent)
            kill(-p->pid, SIGKILL);
        p->kill_sent = 1;
        return;
    }
    if (p->stopping)
        return;
    p->stopping = 1;
    const struct config_service *cfg = p->inst->service->cfg;
    kill(-p->pid, cfg->stop_signal);
    kill(-p->pid, SIGCONT); /* as systemd does: a stopped (SIGSTOP) process could not act on it */
    uv_timer_start(&p->stop_timer, proc_on_stop_timeout, cfg->stop_timeout_ms, 0);
}

/* Ends the current process's readiness check: its timer and any TCP probe in flight. */
static void instance_stop_readiness(struct instance *inst)
{
    ready_check_stop(&inst->check);
    live_check_stop(&inst->live);
}

static void instance_mark_ready(struct instance *inst, const char *how)
{
    if (inst->cur->ready || !inst->cur->pid)
        return;
    inst->cur->ready = 1;
    instance_stop_readiness(inst);
    live_check_arm(&inst->live);
    inst->state = INSTANCE_RUNNING;
    struct supervisor *sup = inst->sup;
    if (inst->service->cfg->ready.kind != READY_AT_START) {
        uv_update_time(sup->loop);
        node_line(sup, LOG_LEVEL_INFO, "%s.%d ready (%s) after %.2fs", inst->service->cfg->name, inst->index,
                  how, (uv_now(sup->loop) - inst->cur->started_ms) / 1000.0);
    }
    /* The new process serves now: the one it replaces may go. */
    proc_stop(inst->old, 0);
    struct service *svc = inst->service;
    if (svc->rolling && svc->roll_next == inst->index && !inst->old->pid) {
        svc->roll_next++;
        service_roll_continue(sup, svc);
    }
    change_settle(sup);
}

static void instance_ready_timed_out(struct instance *inst)
{
    const struct config_service *cfg = inst->service->cfg;
    char failure[128];
    snprintf(failure, sizeof failure, "was not ready (%s) within %.1fs", ready_kind_name(cfg->ready.kind),
             cfg->ready.timeout_ms / 1000.0);
    change_note_failure(inst->sup, inst, failure);
    if (inst->old->pid) {
        node_line(inst->sup, LOG_LEVEL_ERROR,
                  "%s.%d new process %d not ready (%s) within %.1fs; killing it and keeping pid %d",
                  cfg->name, inst->index, (int)inst->cur->pid, ready_kind_name(cfg->ready.kind),
                  cfg->ready.timeout_ms / 1000.0, (int)inst->old->pid);
        proc_stop(inst->cur, 1);
        return;
    }
    node_line(inst->sup, LOG_LEVEL_WARNING, "%s.%d not ready (%s) after %.1fs; still waiting", cfg->name,
              inst->index, ready_kind_name(cfg->ready.kind), cfg->ready.timeout_ms / 1000.0);
    /* A roll waiting on it would wait forever, and refuse every later restart meanwhile. */
    struct service *svc = inst->service;
    if (svc->rolling && svc->roll_next == inst->index) {
        svc->rolling = 0;
        node_line(inst->sup, LOG_LEVEL_ERROR, "rolling restart of %s stopped at %s.%d: it %s", cfg->name,
                  cfg->name, inst->index, failure);
    }
    change_settle(inst->sup);
}

static void instance_on_ready(void *ctx, const char *how)
{
    instance_handle(ctx, EV_READY, &(struct event_info){.how = how});
}

static void instance_on_ready_timeout(void *ctx)
{
    struct instance *inst = ctx;
    if (!inst->cur->ready && inst->cur->pid)
        instance_handle(inst, EV_READY_LATE, NULL);
}

/* Called once the process runs: either ready now, or a check is armed. */
static void instance_arm_readiness(struct instance *inst)
{
    inst->cur->ready = 0;
    live_check_stop(&inst->live); /* it judges the current process, once ready */
    if (ready_check_arm(&inst->check, inst->cur->started_ms))
        instance_handle(inst, EV_READY, &(struct event_info){.how = "started"});
}

static struct proc *supervisor_find_proc(struct supervisor *sup, pid_t pid);

/* READY=1 from a worker's process or anything in its process group. */
static void supervisor_on_notify(void *ctx, pid_t sender)
{
    struct supervisor *sup = ctx;
    struct proc *p = supervisor_find_proc(sup, sender);
    if (!p) {
        pid_t group = getpgid(sender);
        if (group > 0)
            p = supervisor_find_proc(sup, group);
    }
    if (p && p == p->inst->cur)
        instance_handle(p->inst, EV_READY, &(struct event_info){.how = "it sent READY=1"});
}

static void instance_start(struct instance *inst)
{
    struct supervisor *sup = inst->sup;
    const struct config_service *cfg = inst->service->cfg;
    int out[2], err[2] = {-1, -1};
    /* stdin: / tty: a pipe or a pty (term.c); a pty is stdout and stderr too, read from its master. */
    struct term_fds tf = {.child_stdin = -1, .master = -1, .writer = -1};
    if ((cfg->tty || cfg->stdin_pipe) && term_fds_open(&tf, cfg->tty) < 0) {
        instance_fail(inst, strerror(errno));
        return;
    }
    if (tf.pty) {
        out[0] = tf.master;
        out[1] = fcntl(tf.child_stdin, F_DUPFD_CLOEXEC, 0);
        tf.master = -1;
        if (out[1] < 0) {
            close(out[0]);
            term_fds_close(&tf);
            instance_fail(inst, strerror(errno));
            return;
        }
    } else if (open_output_pipe(out) < 0) {
        term_fds_close(&tf);
        instance_fail(inst, strerror(errno));
        return;
    }
    if (!tf.pty && open_output_pipe(err) < 0) {
        close(out[0]);
        close(out[1]);
        term_fds_close(&tf);
        instance_fail(inst, strerror(errno));
        return;
    }
    struct env_list env = {0};
    workerenv_build(inst, &env);
    char *sh_command = shellcmd_for_sh(inst->service->command);
    int socket_fds[SERVICE_MAX_SOCKETS];
    for (size_t i = 0; i < inst->service->socket_count; i++)
        socket_fds[i] = inst->service->sockets[i]->fd;
    struct spawn_request req = {
        .command = sh_command,
        .fds = socket_fds,
        .fd_count = inst->service->socket_count,
        .cwd = cfg->cwd,
        .envp = env.items,
        .stdin_fd = tf.child_stdin >= 0 ? tf.child_stdin : sup->devnull_fd,
        .stdout_fd = out[1],
        .stderr_fd = tf.pty ? out[1] : err[1],
        .tty = tf.pty,
    };
    pid_t pid = 0;
    char why[256];
    int rc = spawn_process(&req, &pid, why, sizeof why);
    workerenv_free(&env);
    free(sh_command);
    close(out[1]);
    if (err[1] >= 0)
        close(err[1]);
    if (rc < 0) {
        close(out[0]);
        if (err[0] >= 0)
            close(err[0]);
        term_fds_close(&tf);
        instance_fail(inst, why);
        return;
    }
    guardian_watch(sup->guardian, pid);
    uv_update_time(sup->loop);
    struct proc *p = inst->cur;
    p->pid = pid;
    p->started_ms = uv_now(sup->loop);
    p->ready = p->stopping = p->kill_sent = 0;
    inst->after_exit = AFTER_EXIT_POLICY;
    inst->unhealthy = 0;
    inst->failure[0] = '\0';
    memset(&inst->stat, 0, sizeof inst->stat);
    if (inst->starts++ > 0)
        inst->restarts++;
    p->term = tf.writer >= 0 ? term_new(sup->loop, &tf, pid) : NULL;
    term_fds_close(&tf);
    p->out = output_open(p, out[0], LOG_STREAM_STDOUT);
    p->err = err[0] >= 0 ? output_open(p, err[0], LOG_STREAM_STDERR) : NULL;
    if (!p->out)
        close(out[0]);
    if (!p->err && err[0] >= 0)
        close(err[0]);
    inst->state = INSTANCE_STARTING;
    node_line(sup, LOG_LEVEL_INFO, "%s.%d started (pid %d)", cfg->name, inst->index, (int)pid);
    if (inst->starts == 1 && !inst->port[0] && inst->service->socket_count == 0)
        node_line(sup, LOG_LEVEL_WARNING, "%s.%d gets no PORT: the block of %s holds %d ports from %d",
                  cfg->name, inst->index, cfg->name, CONFIG_PORT_BLOCK, cfg->port_first);
    instance_arm_readiness(inst);
}

static void instance_on_backoff_done(uv_timer_t *timer)
{
    instance_handle(timer->data, EV_BACKOFF_DONE, NULL);
}

/* Asks the current process to go (and an old one with it); `after` says what happens once
 * it has exited. */
static void instance_request_stop(struct instance *inst, enum instance_after_exit after, int force)
{
    inst->after_exit = after;
    instance_stop_readiness(inst);
    proc_stop(inst->old, force);
    if (!inst->cur->pid) {
        uv_timer_stop(&inst->backoff_timer);
        return;
    }
    inst->state = INSTANCE_STOPPING;
    proc_stop(inst->cur, force);
}

static void instance_closed(struct instance *inst)
{
    if (--inst->open_handles == 0)
        free(inst);
}

static void instance_on_closed(uv_handle_t *handle)
{
    instance_closed(handle->data);
}

static void proc_on_closed(uv_handle_t *handle)
{
    struct proc *p = handle->data;
    instance_closed(p->inst);
}

static void instance_on_check_closed(void *ctx)
{
    instance_closed(ctx);
}

static struct probe *instance_start_probe(void *ctx, const struct config_probe *cfg, unsigned timeout_ms,
                                          probe_cb cb, void *cbctx)
{
    char err[300];
    return health_probe_start(ctx, cfg, timeout_ms, cb, cbctx, NULL, 0, err, sizeof err);
}

static void instance_on_live_failed(struct instance *inst, const char *why)
{
    instance_handle(inst, EV_LIVE_FAILED, &(struct event_info){.how = why});
}

static struct instance *instance_new(struct supervisor *sup, struct service *svc, int index)
{
    struct instance *inst = xcalloc(1, sizeof *inst);
    inst->sup = sup;
    inst->service = svc;
    inst->index = index;
    inst->state = INSTANCE_STOPPED;
    backoff_init(&inst->backoff);
    uv_timer_init(sup->loop, &inst->backoff_timer);
    inst->backoff_timer.data = inst;
    for (int k = 0; k < 2; k++) {
        inst->procs[k].inst = inst;
        uv_timer_init(sup->loop, &inst->procs[k].stop_timer);
        inst->procs[k].stop_timer.data = &inst->procs[k];
    }
    inst->cur = &inst->procs[0];
    inst->old = &inst->procs[1];
    ready_check_init(&inst->check, sup->loop, &svc->cfg->ready, inst, instance_on_ready, instance_on_ready_timeout,
                     instance_on_check_closed);
    ready_check_use_probes(&inst->check, instance_start_probe);
    live_check_init(&inst->live, sup->loop, inst, &svc->cfg->live, instance_on_live_failed, instance_closed);
    inst->open_handles = 5;
    if ((size_t)index >= svc->instance_cap) {
        size_t cap = (size_t)index + 1;
        struct instance **grown = xrealloc(svc->instances, cap * sizeof *grown);
        for (size_t i = svc->instance_cap; i < cap; i++)
            grown[i] = NULL;
        svc->instances = grown;
        svc->instance_cap = cap;
    }
    svc->instances[index] = inst;
    return inst;
}

static void instance_close_handles(struct instance *inst)
{
    ready_check_close(&inst->check);
    live_check_close(&inst->live);
    uv_close((uv_handle_t *)&inst->backoff_timer, instance_on_closed);
    for (int k = 0; k < 2; k++)
        uv_close((uv_handle_t *)&inst->procs[k].stop_timer, proc_on_closed);
}

static void instance_remove(struct instance *inst)
{
    struct service *svc = inst->service;
    svc->instances[inst->index] = NULL;
    while (svc->instance_cap > 0 && !svc->instances[svc->instance_cap - 1])
        svc->instance_cap--;
    change_note_gone(inst->sup, inst);
    /* Scaled away while the roll waited for it: the roll goes on without it. */
    if (svc->rolling && svc->roll_next == inst->index) {
        svc->roll_next++;
        service_roll_continue(inst->sup, svc);
    }
    instance_close_handles(inst);
}

/* A replacement failed: the old process, still serving, becomes the current one again. */
static void instance_restore_old(struct instance *inst)
{
    struct proc *failed = inst->cur;
    inst->cur = inst->old;
    inst->old = failed;
    inst->cur->ready = 1;
    inst->state = INSTANCE_RUNNING;
    live_check_arm(&inst->live);
}

static void describe_status(char *buf, size_t cap, int status)
{
    if (WIFSIGNALED(status))
        snprintf(buf, cap, "killed by SIG%s (signal %d)", config_signal_name(WTERMSIG(status)), WTERMSIG(status));
    else
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
}

/* Counts what the stop starts with; the summary line reports it once all are down. */
static void supervisor_tally_stop(struct supervisor *sup)
{
    struct stop_tally *t = &sup->stop;
    memset(t, 0, sizeof *t);
    uv_update_time(sup->loop);
    t->began_ms = uv_now(sup->loop);
    for (size_t s = 0; s < sup->service_count; s++) {
        struct service *svc = &sup->services[s];
        unsigned running = 0;
        for (size_t i = 0; i < svc->instance_cap; i++)
            if (svc->instances[i] && (svc->instances[i]->cur->pid || svc->instances[i]->old->pid))
                running++;
        t->instances += running;
        t->services += running > 0;
    }
}

/* A process the stop had to SIGKILL: named in the summary. */
static void supervisor_tally_killed(struct supervisor *sup, const struct instance *inst)
{
    struct stop_tally *t = &sup->stop;
    size_t used = strlen(t->killed_names);
    if (t->killed++ > 0 && used + 2 < sizeof t->killed_names)
        used += (size_t)snprintf(t->killed_names + used, sizeof t->killed_names - used, ", ");
    if (used < sizeof t->killed_names) {
        int n = snprintf(t->killed_names + used, sizeof t->killed_names - used, "%s.%d",
                         inst->service->cfg->name, inst->index);
        if (n < 0 || (size_t)n >= sizeof t->killed_names - used)
            memcpy(t->killed_names + sizeof t->killed_names - 4, "...", 4);
    }
}

static void supervisor_check_all_down(struct supervisor *sup)
{
    if (sup->stopping && supervisor_all_down(sup) && sup->on_all_stopped) {
        void (*cb)(void *) = sup->on_all_stopped;
        sup->on_all_stopped = NULL;
        cb(sup->on_all_stopped_ctx);
    }
}

/* What the current process's exit means for the instance. */
static void instance_on_exit(struct instance *inst, pid_t pid, const char *how, uint64_t uptime_ms, int killed)
{
    struct supervisor *sup = inst->sup;
    const struct config_service *cfg = inst->service->cfg;
    struct service *svc = inst->service;
    instance_stop_readiness(inst);
    change_note_exit(sup, inst, how);
    struct exit_facts facts = {
        .node_stopping = sup->stopping,
        .after = inst->after_exit,
        .old_running = inst->old->pid != 0,
        .was_ready = inst->cur->ready,
        .exit_code = inst->last_exit_code,
        .unhealthy = inst->unhealthy,
        .uptime_ms = uptime_ms,
        .restart = cfg->restart,
        .limit = &inst->limit,
        .max_restarts = cfg->max_restarts > 0 ? (unsigned)cfg->max_restarts : 0,
        .restart_window_ms = cfg->restart_window_ms,
        .now_ms = uv_now(sup->loop),
    };
    enum exit_outcome outcome = machine_exit_outcome(&facts);
    if (outcome >= EXIT_CANNOT_RUN && svc->rolling && svc->roll_next == inst->index && !inst->old->pid) {
        svc->rolling = 0;
        node_line(sup, LOG_LEVEL_ERROR, "rolling restart of %s stopped at %s.%d: it %s before it was ready",
                  cfg->name, cfg->name, inst->index, how);
    }
    switch (outcome) {
    case EXIT_RESTORE_OLD:
        node_line(sup, LOG_LEVEL_ERROR, "%s.%d new process %d %s before it was ready; keeping pid %d",
                  cfg->name, inst->index, (int)pid, how, (int)inst->old->pid);
        instance_restore_old(inst);
        if (svc->rolling) {
            svc->rolling = 0;
            node_line(sup, LOG_LEVEL_ERROR, "rolling restart of %s stopped at %s.%d", cfg->name, cfg->name,
                      inst->index);
        }
        return;
    case EXIT_STOPPED:
        if (sup->stopping && killed)
            supervisor_tally_killed(sup, inst);
        inst->state = INSTANCE_STOPPED;
        node_line(sup, LOG_LEVEL_INFO, "%s.%d stopped (%s)", cfg->name, inst->index, how);
        supervisor_check_all_down(sup);
        return;
    case EXIT_REMOVED:
        node_line(sup, LOG_LEVEL_INFO, "%s.%d stopped (%s); scaled away", cfg->name, inst->index, how);
        if (inst->old->pid)
            inst->state = INSTANCE_STOPPING; /* removed once the old process is gone too */
        else
            instance_remove(inst);
        return;
    case EXIT_START_AGAIN:
        node_line(sup, LOG_LEVEL_INFO, "%s.%d stopped (%s); restarting", cfg->name, inst->index, how);
        backoff_init(&inst->backoff);
        inst->limit = (struct restart_limit){0};
        instance_start(inst);
        return;
    case EXIT_CANNOT_RUN:
        instance_fail(inst, inst->last_exit_code == 127 ? "command not found (exit status 127)"
                                                        : "command not executable (exit status 126)");
        return;
    case EXIT_STAY_DOWN:
        inst->state = INSTANCE_EXITED;
        node_line(sup, inst->last_exit_code == 0 ? LOG_LEVEL_INFO : LOG_LEVEL_WARNING,
                  "%s.%d %s after %.1fs; not restarting (restart: %s)", cfg->name, inst->index, how,
                  uptime_ms / 1000.0, cfg->restart == RESTART_NEVER ? "never" : "on-failure");
        return;
    case EXIT_GIVE_UP: {
        char why[200];
        snprintf(why, sizeof why, "gave up after %u restarts within %gs (max_restarts): %s", inst->limit.count,
                 cfg->restart_window_ms / 1000.0, how);
        node_line(sup, LOG_LEVEL_ERROR, "%s.%d %s after %.1fs; %s; failed until `devnode restart %s`", cfg->name,
                  inst->index, how, uptime_ms / 1000.0, why, cfg->name);
        instance_set_failed(inst, why, why);
        return;
    }
    case EXIT_BACKOFF: {
        unsigned delay = backoff_on_exit(&inst->backoff, uptime_ms);
        inst->state = INSTANCE_BACKOFF;
        node_line(sup, LOG_LEVEL_WARNING, "%s.%d %s after %.1fs; restarting in %u ms", cfg->name,
                  inst->index, how, uptime_ms / 1000.0, delay);
        uv_timer_start(&inst->backoff_timer, instance_on_backoff_done, delay, 0);
        return;
    }
    }
}

/* What the old process's exit means: the replacement is complete. */
static void instance_on_old_exit(struct instance *inst, pid_t pid, const char *how, int killed)
{
    struct supervisor *sup = inst->sup;
    node_line(sup, LOG_LEVEL_INFO, "%s.%d old process %d %s; replaced by pid %d", inst->service->cfg->name,
              inst->index, (int)pid, how, (int)inst->cur->pid);
    if (sup->stopping) {
        if (killed)
            supervisor_tally_killed(sup, inst);
        supervisor_check_all_down(sup);
        return;
    }
    if (!inst->cur->pid && inst->state == INSTANCE_STOPPING) {
        /* Its current process had gone first: the instance's stop is over only now. */
        if (inst->after_exit == AFTER_EXIT_REMOVE) {
            instance_remove(inst);
        } else if (inst->after_exit == AFTER_EXIT_RESTART) {
            backoff_init(&inst->backoff); /* revived by a scale up meanwhile */
            inst->limit = (struct restart_limit){0};
            instance_start(inst);
        }
        return;
    }
    struct service *svc = inst->service;
    if (svc->rolling && svc->roll_next == inst->index) {
        svc->roll_next++;
        service_roll_continue(sup, svc);
    }
}

static int instance_replace(struct instance *inst);
static int instance_can_replace(const struct instance *inst);

/* Every event of an instance goes through here, and the table (machine.c) says what it means
 * in the instance's state; the actions below are all the supervisor does to an instance. */
static void instance_handle(struct instance *inst, enum machine_event event, const struct event_info *info)
{
    static const struct event_info none;
    if (!info)
        info = &none;
    startorder_touch(inst->sup); /* what starts or stops next is judged after this loop turn */
    switch (machine_action(inst->state, event)) {
    case ACT_IGNORE:
        return;
    case ACT_SPAWN:
        instance_start(inst);
        return;
    case ACT_START_AFRESH:
        uv_timer_stop(&inst->backoff_timer);
        backoff_init(&inst->backoff);
        inst->limit = (struct restart_limit){0};
        instance_start(inst);
        return;
    case ACT_RESTART:
        if (instance_can_replace(inst))
            instance_replace(inst); /* if the new process cannot start, the old one serves on */
        else
            instance_request_stop(inst, AFTER_EXIT_RESTART, 0);
        return;
    case ACT_STOP:
        instance_request_stop(inst, AFTER_EXIT_STOP, info->force);
        return;
    case ACT_RESTART_AFTER:
        instance_request_stop(inst, AFTER_EXIT_RESTART, 0);
        return;
    case ACT_REVIVE:
        inst->after_exit = AFTER_EXIT_RESTART;
        return;
    case ACT_STAY_DOWN:
        uv_timer_stop(&inst->backoff_timer);
        inst->state = INSTANCE_STOPPED;
        return;
    case ACT_STOP_REMOVE:
        instance_request_stop(inst, AFTER_EXIT_REMOVE, 0);
        return;
    case ACT_REMOVE:
        instance_remove(inst);
        return;
    case ACT_MARK_READY:
        instance_mark_ready(inst, info->how);
        return;
    case ACT_READY_LATE:
        instance_ready_timed_out(inst);
        return;
    case ACT_EXIT:
        instance_on_exit(inst, info->pid, info->how, info->uptime_ms, info->killed);
        return;
    case ACT_LIVE_RESTART:
        inst->unhealthy = 1;
        instance_request_stop(inst, AFTER_EXIT_POLICY, 0); /* its exit goes through the restart policy */
        return;
    }
}

/* The one exit path of a process, current or old: what it left in its group is killed, its
 * last output read, its stop timer ended; then what its exit means for the instance. */
static void proc_on_exit(struct proc *p, int status)
{
    struct instance *inst = p->inst;
    struct supervisor *sup = inst->sup;
    pid_t pid = p->pid;
    int killed = p->kill_sent;
    /* Whatever the worker left in its group (grandchildren) goes with it. */
    kill(-pid, SIGKILL);
    guardian_forget(sup->guardian, pid);
    proc_drain_output(p);
    uv_timer_stop(&p->stop_timer);
    uv_update_time(sup->loop);
    uint64_t uptime_ms = uv_now(sup->loop) - p->started_ms;
    p->pid = 0;
    p->stopping = p->kill_sent = 0;
    char how[128], status_text[96];
    describe_status(status_text, sizeof status_text, status);
    if (p == inst->cur && inst->unhealthy)
        snprintf(how, sizeof how, "failed its liveness probe (%s)", status_text);
    else
        snprintf(how, sizeof how, "%s", status_text);
    if (p->term) {
        char name[96];
        snprintf(name, sizeof name, "%s.%d", inst->service->cfg->name, inst->index);
        term_close(p->term, name, how);
        p->term = NULL;
    }
    if (p == inst->old) {
        instance_on_old_exit(inst, pid, how, killed);
        return;
    }
    inst->has_exited = 1;
    inst->last_exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    inst->last_exit_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    instance_handle(inst, EV_EXIT,
                    &(struct event_info){.how = how, .pid = pid, .uptime_ms = uptime_ms, .killed = killed});
}

/* The process (current or old) with this pid, or NULL. */
static struct proc *supervisor_find_proc(struct supervisor *sup, pid_t pid)
{
    for (size_t s = 0; s < sup->service_count; s++) {
        struct service *svc = &sup->services[s];
        for (size_t i = 0; i < svc->instance_cap; i++) {
            struct instance *inst = svc->instances[i];
            for (int k = 0; inst && k < 2; k++)
                if (inst->procs[k].pid == pid)
                    return &inst->procs[k];
        }
    }
    return NULL;
}

void supervisor_reap(struct supervisor *sup)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (sup->on_process_exit)
            sup->on_process_exit(sup->on_process_exit_ctx, pid);
        struct proc *p = supervisor_find_proc(sup, pid);
        /* Others are orphans adopted as subreaper, or the guardian: reaping is all they need. */
        if (p)
            proc_on_exit(p, status);
        else
            probe_set_reaped(&sup->probes, pid, status);
    }
    change_settle(sup);
}

/* ---- sampling ---------------------------------------------------------------------- */

int supervisor_socket_warning(const struct supervisor *sup, const struct bound_socket *bs, uint64_t now_ms,
                              char *buf, size_t cap)
{
    char waiting[512];
    if (!sockets_describe_stall(bs, now_ms, waiting, sizeof waiting)) {
        buf[0] = '\0';
        return 0;
    }
    /* Who should have taken them: the services passed the socket, and whether any runs. */
    char takers[256] = "";
    size_t taker_count = 0;
    int running = 0, named_alike = 0;
    for (size_t s = 0; s < sup->service_count; s++) {
        const struct service *svc = &sup->services[s];
        size_t k = 0;
        while (k < svc->socket_count && svc->sockets[k] != bs)
            k++;
        if (k == svc->socket_count)
            continue;
        snprintf(takers + strlen(takers), sizeof takers - strlen(takers), "%s%s", taker_count ? ", " : "",
                 svc->cfg->name);
        taker_count++;
        named_alike = taker_count == 1 && !strcmp(svc->cfg->name, bs->cfg->name);
        for (size_t i = 0; i < svc->instance_cap; i++)
            running |= svc->instances[i] && svc->instances[i]->cur->pid;
    }
    const char *name = bs->cfg->name;
    if (taker_count == 0)
        snprintf(buf, cap, "%s: %s: no service takes the socket (name a service %s, list it in `sockets:` "
                 "or use $(socket.%s.fd))", name, waiting, name, name);
    else if (!running)
        snprintf(buf, cap, "%s: %s: no worker of %s is running", name, waiting, takers);
    else if (named_alike)
        snprintf(buf, cap, "%s: %s: do the workers use the socket?", name, waiting);
    else
        snprintf(buf, cap, "%s: %s: do the workers of %s use the socket?", name, waiting, takers);
    return 1;
}

/* Says once when connections start waiting on a socket with nobody accepting, and once
 * when they move again. */
static void supervisor_watch_sockets(struct supervisor *sup, uint64_t now)
{
    for (size_t i = 0; sup->sockets && i < sup->sockets->count && !sup->stopping; i++) {
        struct bound_socket *bs = &sup->sockets->items[i];
        char text[900];
        switch (sockets_sample_queue(bs, now)) {
        case SOCKET_QUEUE_STALLED:
            supervisor_socket_warning(sup, bs, now, text, sizeof text);
            node_line(sup, LOG_LEVEL_WARNING, "%s", text);
            break;
        case SOCKET_QUEUE_MOVING:
            node_line(sup, LOG_LEVEL_INFO, "%s: connections on %s are being accepted again", bs->cfg->name,
                      bs->address);
            break;
        case SOCKET_QUEUE_NO_CHANGE:
            break;
        }
    }
}

static void supervisor_on_sample(uv_timer_t *timer)
{
    struct supervisor *sup = timer->data;
    uint64_t now = uv_now(sup->loop);
    for (size_t s = 0; s < sup->service_count; s++) {
        struct service *svc = &sup->services[s];
        for (size_t i = 0; i < svc->instance_cap; i++) {
            struct instance *inst = svc->instances[i];
            if (inst && inst->cur->pid)
                procstat_sample(&inst->stat, inst->cur->pid, now);
        }
    }
    supervisor_watch_sockets(sup, now);
}

/* ---- public ------------------------------------------------------------------------ */

int supervisor_init(struct supervisor *sup, uv_loop_t *loop, const struct config *cfg,
                    struct socket_set *sockets, struct loghub *hub, struct guardian *guardian,
                    const char *endpoint, const char *run_dir, const char *notify_dir,
                    char *err, size_t errlen)
{
    memset(sup, 0, sizeof *sup);
    sup->loop = loop;
    sup->cfg = cfg;
    sup->hub = hub;
    sup->guardian = guardian;
    sup->endpoint = endpoint;
    sup->run_dir = run_dir;
    sup->sockets = sockets;
    sup->node_pid = getpid();
    sup->notify.fd = -1;
    sup->notify_dir = notify_dir;
    int rc;
    sup->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (sup->devnull_fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot open /dev/null: %s", strerror(errno));
        return rc;
    }
    sup->service_count = cfg->service_count;
    sup->services = xcalloc(cfg->service_count ? cfg->service_count : 1, sizeof *sup->services);
    /* What needs no loop comes first, so a config error leaves no handle to close. */
    for (size_t s = 0; s < cfg->service_count; s++) {
        struct service *svc = &sup->services[s];
        svc->cfg = &cfg->services[s];
        svc->desired = cfg->services[s].numprocesses;
        int n = sockets_for_service(sockets, svc->cfg, svc->sockets, SERVICE_MAX_SOCKETS, err, errlen);
        if (n < 0) {
            rc = -EINVAL;
            goto out_services;
        }
        svc->socket_count = (size_t)n;
        svc->command = sockets_expand_command(svc->cfg->command, svc->sockets, svc->socket_count);
        svc->has_ready_re = ready_pattern_compile(&svc->ready_re, &svc->cfg->ready) == 0;
    }
    uv_timer_init(loop, &sup->sample_timer);
    sup->sample_timer.data = sup;
    startorder_init(sup);
    for (size_t s = 0; s < cfg->service_count; s++) {
        if (cfg->services[s].ready.kind == READY_NOTIFY) {
            rc = notify_socket_open(&sup->notify, loop, notify_dir, supervisor_on_notify, sup, err, errlen);
            if (rc < 0)
                goto out_timer;
            break;
        }
    }
    return 0;

out_timer:
    uv_close((uv_handle_t *)&sup->sample_timer, NULL);
out_services:
    supervisor_free(sup);
    return rc;
}

void supervisor_start_all(struct supervisor *sup)
{
    for (size_t s = 0; s < sup->service_count; s++) {
        struct service *svc = &sup->services[s];
        char warning[1024];
        if (sockets_listen_pid_warning(sup->cfg, svc->cfg, warning, sizeof warning))
            node_line(sup, LOG_LEVEL_WARNING, "%s", warning);
        for (int i = 0; i < svc->desired; i++)
            instance_new(sup, svc, i); /* stopped until startorder starts it */
    }
    uv_timer_start(&sup->sample_timer, supervisor_on_sample, 0, SAMPLE_INTERVAL_MS);
    startorder_start_all(sup); /* last: a run that is over at once stops and closes all */
}

void supervisor_hold_output(struct supervisor *sup, enum output_hold hold)
{
    sup->output_hold = hold;
    if (hold != OUTPUT_READ_ALL)
        return;
    for (size_t s = 0; s < sup->service_count; s++) {
        struct service *svc = &sup->services[s];
        for (size_t i = 0; i < svc->instance_cap; i++) {
            struct instance *inst = svc->instances[i];
            for (int k = 0; inst && k < 4; k++) {
                struct output_pipe *op = k % 2 ? inst->procs[k / 2].err : inst->procs[k / 2].out;
                if (op)
                    uv_poll_start(&op->poll, UV_READABLE | UV_DISCONNECT, output_on_readable);
            }
        }
    }
}

int supervisor_all_down(const struct supervisor *sup)
{
    for (size_t s = 0; s < sup->service_count; s++) {
        const struct service *svc = &sup->services[s];
        for (size_t i = 0; i < svc->instance_cap; i++)
            if (svc->instances[i] && (svc->instances[i]->cur->pid || svc->instances[i]->old->pid))
                return 0;
    }
    return 1;
}

void supervisor_stop_summary(const struct supervisor *sup, char *buf, size_t len)
{
    const struct stop_tally *t = &sup->stop;
    uint64_t took_ms = uv_now(sup->loop) - t->began_ms;
    int n = snprintf(buf, len, "stopped %u instance%s of %u service%s in %.1f s", t->instances,
                     t->instances == 1 ? "" : "s", t->services, t->services == 1 ? "" : "s", took_ms / 1000.0);
    if (t->killed && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, " (%u killed %s: %s)", t->killed,
                 t->forced ? "when the stop was forced" : "after stop_timeout", t->killed_names);
}

void supervisor_stop_all(struct supervisor *sup, int force)
{
    if (!sup->stopping)
        supervisor_tally_stop(sup);
    sup->stop.forced |= force;
    sup->stopping = 1;
    change_abort_all(sup, "the node is stopping");
    startorder_stop_all(sup, force); /* dependents first */
    supervisor_check_all_down(sup);
}

void supervisor_start_service(struct supervisor *sup, struct service *svc)
{
    for (int i = 0; i < svc->desired; i++) {
        struct instance *inst = (size_t)i < svc->instance_cap ? svc->instances[i] : NULL;
        instance_handle(inst ? inst : instance_new(sup, svc, i), EV_START, NULL);
    }
}

void supervisor_stop_instance(struct instance *inst, int force)
{
    instance_handle(inst, EV_STOP, &(struct event_info){.force = force});
}

struct service *supervisor_find_service(struct supervisor *sup, const char *name)
{
    for (size_t s = 0; s < sup->service_count; s++)
        if (!sup->services[s].removed && strcmp(sup->services[s].cfg->name, name) == 0)
            return &sup->services[s];
    return NULL;
}

int supervisor_open_notify(struct supervisor *sup, char *err, size_t errlen)
{
    if (sup->notify.fd >= 0)
        return 0;
    return notify_socket_open(&sup->notify, sup->loop, sup->notify_dir, supervisor_on_notify, sup, err, errlen) < 0
               ? -1
               : 0;
}

/* Zero-downtime restart: the new process starts beside the old one (they share the
 * listening sockets); the old one is stopped once the new one is ready. Returns 0, or -1
 * when the new process could not be started (the old one keeps running). */
static int instance_replace(struct instance *inst)
{
    struct proc *serving = inst->cur;
    inst->cur = inst->old;
    inst->old = serving;
    instance_start(inst);
    if (inst->cur->pid)
        return 0;
    instance_restore_old(inst);
    return -1;
}

static int instance_can_replace(const struct instance *inst)
{
    return inst->cur->pid && !inst->old->pid && inst->service->socket_count > 0 &&
           inst->state != INSTANCE_STOPPING && !inst->cur->kill_sent;
}

/* Replaces instances one at a time from roll_next on; each step ends when the old process
 * of the replaced instance has exited (instance_on_old_exit calls back here). */
static void service_roll_continue(struct supervisor *sup, struct service *svc)
{
    while (svc->rolling) {
        int i = svc->roll_next;
        if (i >= svc->desired || (size_t)i >= svc->instance_cap) {
            svc->rolling = 0;
            node_line(sup, LOG_LEVEL_INFO, "rolling restart of %s done", svc->cfg->name);
            return;
        }
        struct instance *inst = svc->instances[i];
        if (!inst) {
            svc->roll_next++;
            continue;
        }
        if (instance_can_replace(inst)) {
            if (instance_replace(inst) == 0)
                return; /* goes on when its old process has exited */
        } else {
            /* No socket to share: stop, start, and go on once the new process is ready. */
            instance_handle(inst, EV_RESTART, NULL);
            if (svc->roll_next != i || !svc->rolling)
                return; /* it was ready at once and the roll already moved on */
            if (inst->cur->pid || inst->after_exit == AFTER_EXIT_RESTART)
                return; /* goes on from instance_mark_ready */
        }
        svc->roll_next++;
    }
}

/* The service a restart or scale asks to change, or NULL with err saying why not. */
static struct service *supervisor_service_to_change(struct supervisor *sup, const char *service, char *err,
                                                    size_t errlen)
{
    if (sup->stopping) {
        snprintf(err, errlen, "the node is stopping");
        return NULL;
    }
    struct service *svc = supervisor_find_service(sup, service);
    if (!svc)
        snprintf(err, errlen, "no service named '%s'", service);
    return svc;
}

int supervisor_restart(struct supervisor *sup, const char *service, int index,
                       const struct change_waiter *waiter, char *err, size_t errlen)
{
    struct service *svc = supervisor_service_to_change(sup, service, err, errlen);
    if (!svc)
        return -1;
    if (svc->rolling) {
        snprintf(err, errlen, "a rolling restart of %s is in progress (at %s.%d)", service, service,
                 svc->roll_next);
        return -1;
    }
    svc->addrinuse_told = 0;
    if (index >= 0) {
        if ((size_t)index >= svc->instance_cap || !svc->instances[index] || index >= svc->desired) {
            snprintf(err, errlen, "%s has no instance %d (it has %d)", service, index, svc->desired);
            return -1;
        }
        struct change *ch = waiter ? change_begin(sup, svc, CHANGE_RESTART, waiter) : NULL;
        if (ch)
            change_watch_start(ch, index, svc->instances[index]);
        instance_handle(svc->instances[index], EV_RESTART, NULL);
        if (ch)
            change_commit(sup, ch);
        return 1;
    }
    /* One instance at a time, so the service keeps answering while it restarts. */
    int count = 0;
    struct change *ch = waiter ? change_begin(sup, svc, CHANGE_ROLL, waiter) : NULL;
    for (int i = 0; i < svc->desired && (size_t)i < svc->instance_cap; i++) {
        if (svc->instances[i] && ch)
            change_watch_start(ch, i, svc->instances[i]);
        count += svc->instances[i] != NULL;
    }
    node_line(sup, LOG_LEVEL_INFO, "rolling restart of %s: %d instance%s, one at a time", service, count,
              count == 1 ? "" : "s");
    svc->rolling = 1;
    svc->roll_next = 0;
    service_roll_continue(sup, svc);
    if (ch)
        change_commit(sup, ch);
    return count;
}

int supervisor_scale(struct supervisor *sup, const char *service, int count,
                     const struct change_waiter *waiter, char *err, size_t errlen)
{
    struct service *svc = supervisor_service_to_change(sup, service, err, errlen);
    if (!svc)
        return -1;
    if (count < 0 || count > 10000) {
        snprintf(err, errlen, "instance count must be between 0 and 10000, got %d", count);
        return -1;
    }
    int before = svc->desired;
    svc->desired = count;
    struct change *ch = waiter ? change_begin(sup, svc, CHANGE_SCALE, waiter) : NULL;
    for (int i = 0; i < count; i++) {
        struct instance *inst = (size_t)i < svc->instance_cap ? svc->instances[i] : NULL;
        if (!inst) {
            inst = instance_new(sup, svc, i);
            if (ch)
                change_watch_start(ch, i, inst);
            if (!startorder_held(sup, svc)) /* else it starts with the others, once allowed */
                instance_handle(inst, EV_START, NULL);
        } else if (inst->after_exit == AFTER_EXIT_REMOVE) {
            /* Scaled down and up again before it finished stopping: bring it back. */
            change_note_revived(sup, inst);
            if (ch)
                change_watch_start(ch, i, inst);
            instance_handle(inst, EV_START, NULL);
        }
    }
    for (size_t i = (size_t)count; i < svc->instance_cap; i++) {
        struct instance *inst = svc->instances[i];
        if (!inst)
            continue;
        if (ch)
            change_watch_gone(ch, (int)i);
        instance_handle(inst, EV_REMOVE, NULL);
    }
    if (before != count)
        node_line(sup, LOG_LEVEL_INFO, "%s scaled from %d to %d", service, before, count);
    if (ch)
        change_commit(sup, ch);
    else
        change_settle(sup); /* what it undid may end another scale's wait */
    return count;
}

void supervisor_close(struct supervisor *sup)
{
    uv_close((uv_handle_t *)&sup->sample_timer, NULL);
    notify_socket_close(&sup->notify);
    startorder_close(sup);
    for (size_t s = 0; s < sup->service_count; s++) {
        struct service *svc = &sup->services[s];
        for (size_t i = 0; i < svc->instance_cap; i++) {
            struct instance *inst = svc->instances[i];
            if (!inst)
                continue;
            for (int k = 0; k < 2; k++) {
                if (inst->procs[k].out)
                    output_close(inst->procs[k].out);
                if (inst->procs[k].err)
                    output_close(inst->procs[k].err);
            }
            svc->instances[i] = NULL;
            instance_close_handles(inst);
        }
        svc->instance_cap = 0;
    }
}

void supervisor_free(struct supervisor *sup)
{
    for (size_t s = 0; s < sup->service_count; s++) {
        free(sup->services[s].instances);
        free(sup->services[s].command);
        if (sup->services[s].has_ready_re)
            regfree(&sup->services[s].ready_re);
        config_service_free(sup->services[s].own_cfg);
        free(sup->services[s].own_cfg);
    }
    notify_socket_free(&sup->notify);
    probe_set_free(&sup->probes);
    startorder_free(sup);
    free(sup->services);
    sup->services = NULL;
    if (sup->devnull_fd >= 0)
        close(sup->devnull_fd);
}
