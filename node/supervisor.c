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
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/shellcmd.h"
#include "common/xalloc.h"
#include "node/framer.h"
#include "node/pyclient.h"
#include "node/spawn.h"
#include "node/tcpprobe.h"

#define PIPE_READ_CHUNK (64 * 1024)
#define PIPE_READS_PER_WAKEUP 8
#define CANNOT_RUN_WINDOW_MS 2000
#define SAMPLE_INTERVAL_MS 1000

extern char **environ;

struct output_pipe {
    uv_poll_t poll;
    int fd;
    struct instance *owner;     /* NULL once detached from its instance */
    enum log_stream stream;
    pid_t pid;                  /* the process whose output this is */
    struct framer framer;
};

static void instance_start(struct instance *inst);
static void instance_mark_ready(struct instance *inst, const char *how);
static void service_roll_continue(struct supervisor *sup, struct service *svc);
static void instance_hint_addrinuse(struct instance *inst, const char *text, size_t len);

const char *instance_state_name(enum instance_state state)
{
    switch (state) {
    case INSTANCE_STARTING: return "starting";
    case INSTANCE_RUNNING: return "running";
    case INSTANCE_BACKOFF: return "backoff";
    case INSTANCE_STOPPING: return "stopping";
    case INSTANCE_STOPPED: return "stopped";
    case INSTANCE_EXITED: return "exited";
    case INSTANCE_FAILED: return "failed";
    }
    return "unknown";
}

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
    struct instance *inst = lc->pipe->owner;
    if (inst && !inst->service->addrinuse_told)
        instance_hint_addrinuse(inst, text, len);
    if (inst && !inst->ready && inst->pid == lc->pipe->pid && inst->service->has_ready_re) {
        char buf[4096];
        size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
        memcpy(buf, text, n);
        buf[n] = '\0';
        if (regexec(&inst->service->ready_re, buf, 0, NULL, 0) == 0)
            instance_mark_ready(inst, "its log matched");
    }
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
    if (op->owner) {
        if (op->owner->out == op)
            op->owner->out = NULL;
        if (op->owner->err == op)
            op->owner->err = NULL;
        if (op->owner->old_out == op)
            op->owner->old_out = NULL;
        if (op->owner->old_err == op)
            op->owner->old_err = NULL;
        op->owner = NULL;
    }
    uv_close((uv_handle_t *)&op->poll, output_on_closed);
}

/* Whether a held pipe must still be read: a log-pattern readiness check waits on its lines. */
static int output_needed(const struct output_pipe *op, enum output_hold hold)
{
    const struct instance *inst = op->owner;
    return hold == OUTPUT_READ_ALL || (hold == OUTPUT_HOLD && !inst->ready && inst->pid == op->pid &&
                                       inst->service->has_ready_re);
}

static void output_on_readable(uv_poll_t *handle, int status, int events)
{
    struct output_pipe *op = handle->data;
    struct instance *inst = op->owner;
    if (!inst)
        return;
    if (status == 0 && !output_needed(op, inst->sup->output_hold)) {
        uv_poll_stop(handle); /* supervisor_hold_output starts it again */
        return;
    }
    if (status < 0 || output_read(op, inst->sup, inst->service->cfg->name, inst->index,
                                  PIPE_READS_PER_WAKEUP)) {
        output_close(op);
    }
}

static struct output_pipe *output_open(struct instance *inst, int fd, enum log_stream stream)
{
    struct output_pipe *op = xcalloc(1, sizeof *op);
    op->fd = fd;
    op->owner = inst;
    op->stream = stream;
    framer_init(&op->framer);
    if (uv_poll_init(inst->sup->loop, &op->poll, fd) < 0) {
        free(op);
        return NULL;
    }
    op->poll.data = op;
    uv_poll_start(&op->poll, UV_READABLE | UV_DISCONNECT, output_on_readable);
    return op;
}

/* Reads everything left in an exited instance's pipes so its last lines come before the
 * exit report, then closes them. */
static void instance_drain_pipes(struct instance *inst, struct output_pipe *out, struct output_pipe *err)
{
    struct output_pipe *pipes[2] = {out, err};
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

static void instance_drain_output(struct instance *inst)
{
    instance_drain_pipes(inst, inst->out, inst->err);
}

/* ---- environment ------------------------------------------------------------------- */

struct env_list {
    char **items;
    size_t count, cap;
};

static void env_set(struct env_list *env, const char *key, const char *value)
{
    size_t klen = strlen(key);
    char *entry;
    if (asprintf(&entry, "%s=%s", key, value) < 0)
        abort();
    for (size_t i = 0; i < env->count; i++) {
        if (strncmp(env->items[i], key, klen) == 0 && env->items[i][klen] == '=') {
            free(env->items[i]);
            env->items[i] = entry;
            return;
        }
    }
    if (env->count + 2 > env->cap) {
        env->cap = env->cap ? env->cap * 2 : 64;
        env->items = xrealloc(env->items, env->cap * sizeof *env->items);
    }
    env->items[env->count++] = entry;
    env->items[env->count] = NULL;
}

static void env_free(struct env_list *env)
{
    for (size_t i = 0; i < env->count; i++)
        free(env->items[i]);
    free(env->items);
}

/* The socket-activation variables in every dialect a server may read: systemd's
 * LISTEN_FDS (LISTEN_PID is filled in by spawn with the child's own pid) and lymph's
 * port->fd JSON. PORT is instance_port_env's. A command that names $(socket.X.fd) has
 * picked its socket: it gets no LISTEN_* (gunicorn would take fd 3 from both and fail with
 * EBADF); lymph's JSON stays, a lookup by port that takes nothing twice. */
static void instance_socket_env(const struct service *svc, struct env_list *env)
{
    if (svc->socket_count == 0)
        return;
    char count[16], names[1024] = "", lymph[1024] = "{", item[64];
    snprintf(count, sizeof count, "%zu", svc->socket_count);
    for (size_t i = 0; i < svc->socket_count; i++) {
        const struct bound_socket *bs = svc->sockets[i];
        if (i)
            strncat(names, ":", sizeof names - strlen(names) - 1);
        strncat(names, bs->cfg->name, sizeof names - strlen(names) - 1);
        if (bs->port >= 0) {
            snprintf(item, sizeof item, "%s\"%d\": %zu", lymph[1] ? ", " : "", bs->port, 3 + i);
            strncat(lymph, item, sizeof lymph - strlen(lymph) - 1);
        }
    }
    strncat(lymph, "}", sizeof lymph - strlen(lymph) - 1);
    if (!sockets_command_names_fd(svc->cfg->command)) {
        env_set(env, "LISTEN_FDS", count);
        env_set(env, "LISTEN_PID", SPAWN_LISTEN_PID_SLOT + strlen("LISTEN_PID="));
        env_set(env, "LISTEN_FDNAMES", names);
    }
    env_set(env, "LYMPH_SHARED_SOCKET_FDS", lymph);
}

/* PORT, remembered in inst->port for `status`: the user's env: PORT wins; a service with
 * sockets gets its first TCP socket's port (a server that binds $PORT itself would find it
 * taken: it must use the passed socket); one without gets its own from its block. */
static void instance_port_env(struct instance *inst, struct env_list *env)
{
    const struct service *svc = inst->service;
    const char *own = config_service_env(svc->cfg, "PORT");
    int port = -1;
    inst->port[0] = '\0';
    if (own) {
        snprintf(inst->port, sizeof inst->port, "%s", own);
        return; /* already in env, with the rest of env: */
    }
    if (svc->socket_count) {
        for (size_t i = 0; i < svc->socket_count && port < 0; i++)
            port = svc->sockets[i]->port;
    } else {
        port = config_block_port(svc->cfg, inst->index);
    }
    if (port < 0)
        return;
    snprintf(inst->port, sizeof inst->port, "%d", port);
    env_set(env, "PORT", inst->port);
}

static void instance_build_env(struct instance *inst, struct env_list *env)
{
    struct supervisor *sup = inst->sup;
    const struct config_service *cfg = inst->service->cfg;
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char key[256];
        size_t klen = (size_t)(eq - *e);
        if (klen >= sizeof key)
            continue;
        memcpy(key, *e, klen);
        key[klen] = '\0';
        /* The node's own socket-activation variables belong to the node, not its workers. */
        if (!strcmp(key, "LISTEN_FDS") || !strcmp(key, "LISTEN_PID") || !strcmp(key, "LISTEN_FDNAMES"))
            continue;
        env_set(env, key, eq + 1);
    }
    env_set(env, "PYTHONUNBUFFERED", "1");
    for (size_t i = 0; i < cfg->env_count; i++)
        env_set(env, cfg->env[i].name, cfg->env[i].value);
    char index[16];
    snprintf(index, sizeof index, "%d", inst->index);
    env_set(env, "DEVNODE_SERVICE", cfg->name);
    env_set(env, "DEVNODE_INSTANCE", index);
    env_set(env, "DEVNODE_ENDPOINT", sup->endpoint);
    env_set(env, "DEVNODE_RUN_DIR", sup->run_dir);
    env_set(env, "LYMPH_SERVICE_NAME", cfg->name);
    env_set(env, "LYMPH_NODE", sup->endpoint);
    env_set(env, "LYMPH_NODE_IP", "127.0.0.1");
    { char pp[PYCLIENT_PYTHONPATH_MAX]; if (pyclient_pythonpath(env->items, pp)) env_set(env, "PYTHONPATH", pp); }
    instance_socket_env(inst->service, env);
    instance_port_env(inst, env);
    if (cfg->ready.kind == READY_NOTIFY && sup->notify_fd >= 0)
        env_set(env, "NOTIFY_SOCKET", sup->notify_path);
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

static void instance_fail(struct instance *inst, const char *why)
{
    inst->state = INSTANCE_FAILED;
    snprintf(inst->failure, sizeof inst->failure, "%s", why);
    node_line(inst->sup, LOG_LEVEL_ERROR,
              "%s.%d cannot run: %s; not restarting (fix it, then `devnode restart %s`)",
              inst->service->cfg->name, inst->index, why, inst->service->cfg->name);
    char failure[300];
    snprintf(failure, sizeof failure, "cannot run: %s", why);
    change_note_failure(inst->sup, inst, failure);
    change_settle(inst->sup);
}


/* ---- readiness ------------------------------------------------------------------------ */

static const char *ready_kind_name(enum ready_kind kind)
{
    switch (kind) {
    case READY_AT_START: return "start";
    case READY_NOTIFY: return "notify";
    case READY_LOG: return "log";
    case READY_TCP: return "tcp";
    case READY_DELAY: return "delay";
    }
    return "?";
}

static void instance_on_old_stop_timeout(uv_timer_t *timer)
{
    struct instance *inst = timer->data;
    if (!inst->old_pid || inst->old_kill_sent)
        return;
    node_line(inst->sup, LOG_LEVEL_WARNING, "%s.%d old process %d did not stop within %.1fs; sending KILL",
              inst->service->cfg->name, inst->index, (int)inst->old_pid,
              inst->service->cfg->stop_timeout_ms / 1000.0);
    kill(-inst->old_pid, SIGKILL);
    inst->old_kill_sent = 1;
}

static void instance_stop_old(struct instance *inst, int force)
{
    if (!inst->old_pid)
        return;
    if (force) {
        if (!inst->old_kill_sent)
            kill(-inst->old_pid, SIGKILL);
        inst->old_kill_sent = 1;
        return;
    }
    if (inst->old_stopping)
        return;
    inst->old_stopping = 1;
    kill(-inst->old_pid, inst->service->cfg->stop_signal);
    uv_timer_start(&inst->old_timer, instance_on_old_stop_timeout, inst->service->cfg->stop_timeout_ms, 0);
}

/* Ends the current process's readiness check: its timer and any TCP probe in flight. */
static void instance_stop_readiness(struct instance *inst)
{
    uv_timer_stop(&inst->ready_timer);
    if (inst->probe) {
        tcpprobe_cancel(inst->probe);
        inst->probe = NULL;
    }
}

static void instance_mark_ready(struct instance *inst, const char *how)
{
    if (inst->ready || !inst->pid)
        return;
    inst->ready = 1;
    instance_stop_readiness(inst);
    if (inst->state == INSTANCE_STARTING)
        inst->state = INSTANCE_RUNNING;
    struct supervisor *sup = inst->sup;
    if (inst->service->cfg->ready.kind != READY_AT_START) {
        uv_update_time(sup->loop);
        node_line(sup, LOG_LEVEL_INFO, "%s.%d ready (%s) after %.2fs", inst->service->cfg->name, inst->index,
                  how, (uv_now(sup->loop) - inst->started_ms) / 1000.0);
    }
    /* The new process serves now: the one it replaces may go. */
    instance_stop_old(inst, 0);
    struct service *svc = inst->service;
    if (svc->rolling && svc->roll_next == inst->index && !inst->old_pid) {
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
    if (inst->old_pid) {
        node_line(inst->sup, LOG_LEVEL_ERROR,
                  "%s.%d new process %d not ready (%s) within %.1fs; killing it and keeping pid %d",
                  cfg->name, inst->index, (int)inst->pid, ready_kind_name(cfg->ready.kind),
                  cfg->ready.timeout_ms / 1000.0, (int)inst->old_pid);
        kill(-inst->pid, SIGKILL);
        inst->kill_sent = 1;
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

static void instance_on_probe(void *ctx, int ok)
{
    struct instance *inst = ctx;
    inst->probe = NULL;
    if (ok)
        instance_mark_ready(inst, "its port answered");
}

static void instance_on_ready_timer(uv_timer_t *timer)
{
    struct instance *inst = timer->data;
    if (inst->ready || !inst->pid)
        return;
    const struct config_ready *r = &inst->service->cfg->ready;
    uv_update_time(inst->sup->loop);
    uint64_t waited = uv_now(inst->sup->loop) - inst->started_ms;
    if (r->kind == READY_DELAY) {
        instance_mark_ready(inst, "its delay passed");
        return;
    }
    if (r->kind == READY_TCP) {
        /* One probe at a time; the timer keeps counting towards the timeout meanwhile. */
        if (!inst->probe)
            inst->probe = tcpprobe_start(inst->sup->loop, r->tcp_host, r->tcp_port, instance_on_probe, inst);
        if (waited < r->timeout_ms)
            return; /* the repeating timer probes again */
        instance_stop_readiness(inst);
    }
    instance_ready_timed_out(inst);
}

/* Called once the process runs: either ready now, or a check is armed. */
static void instance_arm_readiness(struct instance *inst)
{
    const struct config_ready *r = &inst->service->cfg->ready;
    inst->ready = 0;
    switch (r->kind) {
    case READY_AT_START:
        instance_mark_ready(inst, "started");
        return;
    case READY_DELAY:
        inst->state = INSTANCE_STARTING;
        uv_timer_start(&inst->ready_timer, instance_on_ready_timer, r->delay_ms, 0);
        return;
    case READY_TCP:
        inst->state = INSTANCE_STARTING;
        uv_timer_start(&inst->ready_timer, instance_on_ready_timer, 20, 100);
        return;
    case READY_LOG:
    case READY_NOTIFY:
        inst->state = INSTANCE_STARTING;
        uv_timer_start(&inst->ready_timer, instance_on_ready_timer, r->timeout_ms, 0);
        return;
    }
}

static struct instance *supervisor_find_pid(struct supervisor *sup, pid_t pid, int *is_old);

/* sd_notify datagrams: "READY=1" from a worker (or anything in its process group). */
static void supervisor_on_notify(uv_poll_t *handle, int status, int events)
{
    struct supervisor *sup = handle->data;
    for (int budget = 0; budget < 64; budget++) {
        char buf[4096];
        union {
            struct cmsghdr align;
            char space[CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf - 1};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof control};
        ssize_t n = recvmsg(sup->notify_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
            return;
        buf[n] = '\0';
        pid_t sender = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                struct ucred cred;
                memcpy(&cred, CMSG_DATA(c), sizeof cred);
                sender = cred.pid;
            }
        }
        if (!sender)
            continue;
        int is_old = 0;
        struct instance *inst = supervisor_find_pid(sup, sender, &is_old);
        if (!inst) {
            pid_t group = getpgid(sender);
            if (group > 0)
                inst = supervisor_find_pid(sup, group, &is_old);
        }
        if (!inst || is_old)
            continue;
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
            if (strcmp(line, "READY=1") == 0)
                instance_mark_ready(inst, "it sent READY=1");
    }
}

/* Returns 0, or -errno with err set; on failure nothing stays open. */
static int supervisor_open_notify(struct supervisor *sup, const char *dir, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sup->notify_path, sizeof sup->notify_path, "%s/notify.sock", dir);
    if (strlen(sup->notify_path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "notify socket path %s is too long", sup->notify_path);
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, sup->notify_path);
    unlink(sup->notify_path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) {
        int rc = -errno;
        snprintf(err, errlen, "cannot open notify socket %s: %s", sup->notify_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int rc = uv_poll_init(sup->loop, &sup->notify_poll, fd);
    if (rc < 0) {
        snprintf(err, errlen, "cannot watch notify socket %s: %s", sup->notify_path, uv_strerror(rc));
        close(fd);
        unlink(sup->notify_path);
        return rc;
    }
    sup->notify_fd = fd;
    sup->notify_poll.data = sup;
    uv_poll_start(&sup->notify_poll, UV_READABLE, supervisor_on_notify);
    return 0;
}

static void instance_start(struct instance *inst)
{
    struct supervisor *sup = inst->sup;
    const struct config_service *cfg = inst->service->cfg;
    int out[2], err[2];
    if (open_output_pipe(out) < 0) {
        instance_fail(inst, strerror(errno));
        return;
    }
    if (open_output_pipe(err) < 0) {
        close(out[0]);
        close(out[1]);
        instance_fail(inst, strerror(errno));
        return;
    }
    struct env_list env = {0};
    instance_build_env(inst, &env);
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
        .stdin_fd = sup->devnull_fd,
        .stdout_fd = out[1],
        .stderr_fd = err[1],
    };
    pid_t pid = 0;
    char why[256];
    int rc = spawn_process(&req, &pid, why, sizeof why);
    env_free(&env);
    free(sh_command);
    close(out[1]);
    close(err[1]);
    if (rc < 0) {
        close(out[0]);
        close(err[0]);
        instance_fail(inst, why);
        return;
    }
    guardian_watch(sup->guardian, pid);
    uv_update_time(sup->loop);
    inst->pid = pid;
    inst->started_ms = uv_now(sup->loop);
    inst->kill_sent = 0;
    inst->after_exit = AFTER_EXIT_POLICY;
    inst->failure[0] = '\0';
    memset(&inst->stat, 0, sizeof inst->stat);
    if (inst->starts++ > 0)
        inst->restarts++;
    inst->out = output_open(inst, out[0], LOG_STREAM_STDOUT);
    inst->err = output_open(inst, err[0], LOG_STREAM_STDERR);
    if (inst->out)
        inst->out->pid = pid;
    else
        close(out[0]);
    if (inst->err)
        inst->err->pid = pid;
    else
        close(err[0]);
    inst->state = INSTANCE_RUNNING;
    node_line(sup, LOG_LEVEL_INFO, "%s.%d started (pid %d)", cfg->name, inst->index, (int)pid);
    if (inst->starts == 1 && !inst->port[0] && inst->service->socket_count == 0)
        node_line(sup, LOG_LEVEL_WARNING, "%s.%d gets no PORT: the block of %s holds %d ports from %d",
                  cfg->name, inst->index, cfg->name, CONFIG_PORT_BLOCK, cfg->port_first);
    instance_arm_readiness(inst);
}

static void instance_on_backoff_done(uv_timer_t *timer)
{
    struct instance *inst = timer->data;
    if (inst->state == INSTANCE_BACKOFF && !inst->sup->stopping)
        instance_start(inst);
}

static void instance_on_stop_timeout(uv_timer_t *timer)
{
    struct instance *inst = timer->data;
    if (!inst->pid || inst->kill_sent)
        return;
    node_line(inst->sup, LOG_LEVEL_WARNING, "%s.%d did not stop within %.1fs after %s; sending KILL",
              inst->service->cfg->name, inst->index, inst->service->cfg->stop_timeout_ms / 1000.0,
              config_signal_name(inst->service->cfg->stop_signal));
    kill(-inst->pid, SIGKILL);
    inst->kill_sent = 1;
}

/* Asks the current process to go; `after` says what happens once it has exited. */
static void instance_request_stop(struct instance *inst, enum instance_after_exit after, int force)
{
    inst->after_exit = after;
    instance_stop_readiness(inst);
    instance_stop_old(inst, force);
    if (!inst->pid) {
        uv_timer_stop(&inst->timer);
        return;
    }
    if (force) {
        if (!inst->kill_sent)
            kill(-inst->pid, SIGKILL);
        inst->kill_sent = 1;
        inst->state = INSTANCE_STOPPING;
        return;
    }
    if (inst->state == INSTANCE_STOPPING)
        return;
    inst->state = INSTANCE_STOPPING;
    kill(-inst->pid, inst->service->cfg->stop_signal);
    uv_timer_start(&inst->timer, instance_on_stop_timeout, inst->service->cfg->stop_timeout_ms, 0);
}

static struct instance *instance_new(struct supervisor *sup, struct service *svc, int index)
{
    struct instance *inst = xcalloc(1, sizeof *inst);
    inst->sup = sup;
    inst->service = svc;
    inst->index = index;
    inst->state = INSTANCE_STOPPED;
    backoff_init(&inst->backoff);
    uv_timer_init(sup->loop, &inst->timer);
    uv_timer_init(sup->loop, &inst->ready_timer);
    uv_timer_init(sup->loop, &inst->old_timer);
    inst->timer.data = inst->ready_timer.data = inst->old_timer.data = inst;
    inst->open_handles = 3;
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

static void instance_on_closed(uv_handle_t *handle)
{
    struct instance *inst = handle->data;
    if (--inst->open_handles == 0)
        free(inst);
}

static void instance_close_handles(struct instance *inst)
{
    instance_stop_readiness(inst);
    uv_close((uv_handle_t *)&inst->timer, instance_on_closed);
    uv_close((uv_handle_t *)&inst->ready_timer, instance_on_closed);
    uv_close((uv_handle_t *)&inst->old_timer, instance_on_closed);
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
    inst->pid = inst->old_pid;
    inst->out = inst->old_out;
    inst->err = inst->old_err;
    inst->started_ms = inst->old_started_ms;
    inst->kill_sent = inst->old_kill_sent;
    inst->old_pid = 0;
    inst->old_out = inst->old_err = NULL;
    inst->ready = 1;
    inst->state = INSTANCE_RUNNING;
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
            if (svc->instances[i] && (svc->instances[i]->pid || svc->instances[i]->old_pid))
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

static void instance_on_exit(struct instance *inst, int status)
{
    struct supervisor *sup = inst->sup;
    const struct config_service *cfg = inst->service->cfg;
    pid_t pid = inst->pid;
    /* Whatever the worker left in its group (grandchildren) goes with it. */
    kill(-pid, SIGKILL);
    guardian_forget(sup->guardian, pid);
    instance_drain_output(inst);
    uv_timer_stop(&inst->timer);
    uv_update_time(sup->loop);
    uint64_t uptime_ms = uv_now(sup->loop) - inst->started_ms;
    inst->pid = 0;
    inst->has_exited = 1;
    inst->last_exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    inst->last_exit_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    char how[96];
    describe_status(how, sizeof how, status);
    instance_stop_readiness(inst);
    change_note_exit(sup, inst, how);

    if (inst->old_pid && !inst->ready && !sup->stopping && inst->after_exit == AFTER_EXIT_POLICY) {
        /* The replacement died before serving: the old process keeps the job. */
        node_line(sup, LOG_LEVEL_ERROR, "%s.%d new process %d %s before it was ready; keeping pid %d",
                  cfg->name, inst->index, (int)pid, how, (int)inst->old_pid);
        instance_restore_old(inst);
        if (inst->service->rolling) {
            inst->service->rolling = 0;
            node_line(sup, LOG_LEVEL_ERROR, "rolling restart of %s stopped at %s.%d", cfg->name, cfg->name,
                      inst->index);
        }
        return;
    }

    if (sup->stopping || inst->after_exit == AFTER_EXIT_STOP) {
        if (sup->stopping && inst->kill_sent)
            supervisor_tally_killed(sup, inst);
        inst->state = INSTANCE_STOPPED;
        node_line(sup, LOG_LEVEL_INFO, "%s.%d stopped (%s)", cfg->name, inst->index, how);
        supervisor_check_all_down(sup);
        return;
    }
    if (inst->after_exit == AFTER_EXIT_REMOVE) {
        node_line(sup, LOG_LEVEL_INFO, "%s.%d stopped (%s); scaled away", cfg->name, inst->index, how);
        if (inst->old_pid)
            inst->state = INSTANCE_STOPPING; /* removed once the old process is gone too */
        else
            instance_remove(inst);
        return;
    }
    if (inst->after_exit == AFTER_EXIT_RESTART) {
        node_line(sup, LOG_LEVEL_INFO, "%s.%d stopped (%s); restarting", cfg->name, inst->index, how);
        backoff_init(&inst->backoff);
        instance_start(inst);
        return;
    }

    struct service *svc = inst->service;
    if (svc->rolling && svc->roll_next == inst->index && !inst->old_pid) {
        svc->rolling = 0;
        node_line(sup, LOG_LEVEL_ERROR, "rolling restart of %s stopped at %s.%d: it %s before it was ready",
                  cfg->name, cfg->name, inst->index, how);
    }
    int code = inst->last_exit_code;
    if ((code == 127 || code == 126) && uptime_ms < CANNOT_RUN_WINDOW_MS) {
        instance_fail(inst, code == 127 ? "command not found (exit status 127)"
                                        : "command not executable (exit status 126)");
        return;
    }
    if (cfg->restart == RESTART_NEVER || (cfg->restart == RESTART_ON_FAILURE && code == 0)) {
        inst->state = INSTANCE_EXITED;
        node_line(sup, code == 0 ? LOG_LEVEL_INFO : LOG_LEVEL_WARNING,
                  "%s.%d %s after %.1fs; not restarting (restart: %s)", cfg->name, inst->index, how,
                  uptime_ms / 1000.0, cfg->restart == RESTART_NEVER ? "never" : "on-failure");
        return;
    }
    unsigned delay = backoff_on_exit(&inst->backoff, uptime_ms);
    inst->state = INSTANCE_BACKOFF;
    node_line(sup, LOG_LEVEL_WARNING, "%s.%d %s after %.1fs; restarting in %u ms", cfg->name,
              inst->index, how, uptime_ms / 1000.0, delay);
    uv_timer_start(&inst->timer, instance_on_backoff_done, delay, 0);
}

static void instance_on_old_exit(struct instance *inst, int status)
{
    struct supervisor *sup = inst->sup;
    pid_t pid = inst->old_pid;
    kill(-pid, SIGKILL);
    guardian_forget(sup->guardian, pid);
    instance_drain_pipes(inst, inst->old_out, inst->old_err);
    uv_timer_stop(&inst->old_timer);
    int killed = inst->old_kill_sent;
    inst->old_pid = 0;
    inst->old_stopping = inst->old_kill_sent = 0;
    char how[96];
    describe_status(how, sizeof how, status);
    node_line(sup, LOG_LEVEL_INFO, "%s.%d old process %d %s; replaced by pid %d", inst->service->cfg->name,
              inst->index, (int)pid, how, (int)inst->pid);
    if (sup->stopping) {
        if (killed)
            supervisor_tally_killed(sup, inst);
        supervisor_check_all_down(sup);
        return;
    }
    if (!inst->pid && inst->after_exit == AFTER_EXIT_REMOVE) {
        instance_remove(inst);
        return;
    }
    struct service *svc = inst->service;
    if (svc->rolling && svc->roll_next == inst->index) {
        svc->roll_next++;
        service_roll_continue(sup, svc);
    }
}

static struct instance *supervisor_find_pid(struct supervisor *sup, pid_t pid, int *is_old)
{
    for (size_t s = 0; s < sup->service_count; s++) {
        struct service *svc = &sup->services[s];
        for (size_t i = 0; i < svc->instance_cap; i++) {
            struct instance *inst = svc->instances[i];
            if (!inst)
                continue;
            if (inst->pid == pid || inst->old_pid == pid) {
                *is_old = inst->old_pid == pid;
                return inst;
            }
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
        int is_old = 0;
        struct instance *inst = supervisor_find_pid(sup, pid, &is_old);
        /* Others are orphans adopted as subreaper, or the guardian: reaping is all they need. */
        if (inst && is_old)
            instance_on_old_exit(inst, status);
        else if (inst)
            instance_on_exit(inst, status);
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
            running |= svc->instances[i] && svc->instances[i]->pid;
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
            if (inst && inst->pid)
                procstat_sample(&inst->stat, inst->pid, now);
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
    sup->notify_fd = -1;
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
        if (svc->cfg->ready.kind == READY_LOG && regcomp(&svc->ready_re, svc->cfg->ready.log_pattern,
                                                         REG_EXTENDED | REG_NOSUB) == 0)
            svc->has_ready_re = 1;
    }
    uv_timer_init(loop, &sup->sample_timer);
    sup->sample_timer.data = sup;
    for (size_t s = 0; s < cfg->service_count; s++) {
        if (cfg->services[s].ready.kind == READY_NOTIFY) {
            rc = supervisor_open_notify(sup, notify_dir, err, errlen);
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
            instance_start(instance_new(sup, svc, i));
    }
    uv_timer_start(&sup->sample_timer, supervisor_on_sample, 0, SAMPLE_INTERVAL_MS);
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
            struct output_pipe *pipes[4] = {inst ? inst->out : NULL, inst ? inst->err : NULL,
                                            inst ? inst->old_out : NULL, inst ? inst->old_err : NULL};
            for (int k = 0; k < 4; k++)
                if (pipes[k])
                    uv_poll_start(&pipes[k]->poll, UV_READABLE | UV_DISCONNECT, output_on_readable);
        }
    }
}

int supervisor_all_down(const struct supervisor *sup)
{
    for (size_t s = 0; s < sup->service_count; s++) {
        const struct service *svc = &sup->services[s];
        for (size_t i = 0; i < svc->instance_cap; i++)
            if (svc->instances[i] && (svc->instances[i]->pid || svc->instances[i]->old_pid))
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
    for (size_t s = 0; s < sup->service_count; s++) {
        struct service *svc = &sup->services[s];
        for (size_t i = 0; i < svc->instance_cap; i++) {
            struct instance *inst = svc->instances[i];
            if (!inst)
                continue;
            if (!inst->pid) {
                uv_timer_stop(&inst->timer);
                if (inst->state == INSTANCE_BACKOFF || inst->state == INSTANCE_STARTING)
                    inst->state = INSTANCE_STOPPED;
                continue;
            }
            instance_request_stop(inst, AFTER_EXIT_STOP, force);
        }
    }
    supervisor_check_all_down(sup);
}

struct service *supervisor_find_service(struct supervisor *sup, const char *name)
{
    for (size_t s = 0; s < sup->service_count; s++)
        if (strcmp(sup->services[s].cfg->name, name) == 0)
            return &sup->services[s];
    return NULL;
}

/* Zero-downtime restart: the new process starts beside the old one (they share the
 * listening sockets); the old one is stopped once the new one is ready. Returns 0, or -1
 * when the new process could not be started (the old one keeps running). */
static int instance_replace(struct instance *inst)
{
    inst->old_pid = inst->pid;
    inst->old_out = inst->out;
    inst->old_err = inst->err;
    inst->old_started_ms = inst->started_ms;
    inst->old_kill_sent = inst->kill_sent;
    inst->old_stopping = 0;
    inst->pid = 0;
    inst->out = inst->err = NULL;
    instance_start(inst);
    if (inst->pid)
        return 0;
    instance_restore_old(inst);
    return -1;
}

static int instance_can_replace(const struct instance *inst)
{
    return inst->pid && !inst->old_pid && inst->service->socket_count > 0 &&
           inst->state != INSTANCE_STOPPING && !inst->kill_sent;
}

static void instance_restart(struct instance *inst)
{
    if (instance_can_replace(inst)) {
        instance_replace(inst);
        return;
    }
    if (inst->pid) {
        instance_request_stop(inst, AFTER_EXIT_RESTART, 0);
        return;
    }
    uv_timer_stop(&inst->timer);
    backoff_init(&inst->backoff);
    instance_start(inst);
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
            instance_restart(inst);
            if (svc->roll_next != i || !svc->rolling)
                return; /* it was ready at once and the roll already moved on */
            if (inst->pid || inst->after_exit == AFTER_EXIT_RESTART)
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
        instance_restart(svc->instances[index]);
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
            instance_start(inst);
        } else if (inst->after_exit == AFTER_EXIT_REMOVE) {
            /* Scaled down and up again before it finished stopping: bring it back. */
            change_note_revived(sup, inst);
            if (ch)
                change_watch_start(ch, i, inst);
            inst->after_exit = AFTER_EXIT_RESTART;
        }
    }
    for (size_t i = (size_t)count; i < svc->instance_cap; i++) {
        struct instance *inst = svc->instances[i];
        if (!inst)
            continue;
        if (ch)
            change_watch_gone(ch, (int)i);
        if (inst->pid)
            instance_request_stop(inst, AFTER_EXIT_REMOVE, 0);
        else
            instance_remove(inst);
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
    if (sup->notify_fd >= 0)
        uv_close((uv_handle_t *)&sup->notify_poll, NULL);
    for (size_t s = 0; s < sup->service_count; s++) {
        struct service *svc = &sup->services[s];
        for (size_t i = 0; i < svc->instance_cap; i++) {
            struct instance *inst = svc->instances[i];
            if (!inst)
                continue;
            if (inst->out)
                output_close(inst->out);
            if (inst->err)
                output_close(inst->err);
            if (inst->old_out)
                output_close(inst->old_out);
            if (inst->old_err)
                output_close(inst->old_err);
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
    }
    if (sup->notify_fd >= 0) {
        close(sup->notify_fd);
        unlink(sup->notify_path);
    }
    free(sup->services);
    sup->services = NULL;
    if (sup->devnull_fd >= 0)
        close(sup->devnull_fd);
}
