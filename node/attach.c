/* attach: one attacher per worker terminal, found by the ZeroMQ routing id its messages come
 * with. Input is fire-and-forget (no reply per key, so typing costs one message each way at
 * most); only `attach` and `detach` are answered. A second attacher is refused while the first
 * one's process lives; a session whose attacher died without `detach` is taken over. */
#include "node/attach.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "node/supervisor.h"
#include "node/term.h"

struct attach_session {
    struct attach_server *srv;
    struct attach_session *prev, *next;
    struct term *term;                        /* the terminal attached to; it points back */
    unsigned char routing[WIRE_IDENTITY_MAX]; /* the attacher's ZeroMQ routing id */
    size_t routing_len;
    pid_t client_pid;                         /* the attacher's process, 0 when unknown */
    char client_tty[64];                      /* its terminal, "" when none */
    char name[96];                            /* "Web.1" */
    int output_lost;                          /* its queue was full: output was dropped */
};

static void node_line(struct attach_server *srv, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void node_line(struct attach_server *srv, enum log_level level, const char *fmt, ...)
{
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    loghub_node_line(srv->sup->hub, srv->sup->node_pid, level, "%s", text);
}

/* Unlinks and frees; the term no longer has a session. */
static void session_free(struct attach_session *s)
{
    struct attach_server *srv = s->srv;
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->term && s->term->session == s)
        s->term->session = NULL;
    free(s);
}

static int session_send(struct attach_session *s, const char *type, const struct wire_body *b)
{
    return control_send(s->srv->ctl, s->routing, s->routing_len, type, b);
}

static void session_end(struct attach_session *s, const char *reason, const char *message)
{
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_attach_end(&b.pk, &(struct proto_attach_end){.reason = reason, .message = message});
    session_send(s, PROTO_ATTACH_END, &b);
    wire_body_free(&b);
    session_free(s);
}

static void describe_attacher(const struct attach_session *s, char *out, size_t cap)
{
    if (s->client_tty[0])
        snprintf(out, cap, "pid %d on %s", (int)s->client_pid, s->client_tty);
    else
        snprintf(out, cap, "pid %d", (int)s->client_pid);
}

/* Sends bytes in messages of at most PROTO_ATTACH_DATA_MAX. 0, or -1 when the attacher is
 * gone (the session is then freed). */
static int session_output(struct attach_session *s, const char *data, size_t len)
{
    while (len > 0) {
        size_t n = len < PROTO_ATTACH_DATA_MAX ? len : PROTO_ATTACH_DATA_MAX;
        struct wire_body b;
        wire_body_init(&b);
        proto_pack_attach_data(&b.pk, &(struct proto_attach_data){.data = data, .len = n});
        int rc = session_send(s, PROTO_ATTACH_OUTPUT, &b);
        wire_body_free(&b);
        if (rc == -EAGAIN && !s->output_lost) {
            /* Never wait for a slow attacher: the log file and `devnode tail` keep every line. */
            s->output_lost = 1;
            node_line(s->srv, LOG_LEVEL_WARNING, "%s: the attacher does not keep up; its output is dropped "
                                                 "(the log keeps it)", s->name);
        } else if (rc < 0 && rc != -EAGAIN) {
            char who[120];
            describe_attacher(s, who, sizeof who);
            node_line(s->srv, LOG_LEVEL_INFO, "%s detached: the attacher (%s) went away", s->name, who);
            session_free(s);
            return -1;
        }
        data += n;
        len -= n;
    }
    return 0;
}

void attach_session_output(struct attach_session *s, const char *data, size_t len)
{
    session_output(s, data, len);
}

void attach_session_end_exited(struct attach_session *s, const char *name, pid_t pid, const char *how)
{
    char message[300];
    snprintf(message, sizeof message, "%s (pid %d) %s", name, (int)pid, how);
    node_line(s->srv, LOG_LEVEL_INFO, "%s detached: its process %d %s", s->name, (int)pid, how);
    session_end(s, "exited", message);
}

static struct attach_session *session_of(struct attach_server *srv, const struct wire_msg *msg)
{
    for (struct attach_session *s = srv->sessions; s; s = s->next)
        if (s->routing_len == msg->identity_len && memcmp(s->routing, msg->identity, s->routing_len) == 0)
            return s;
    return NULL;
}

static void reply_refused(struct control *ctl, const struct wire_msg *msg, const char *reason, const char *message)
{
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_attach_error(&b.pk, proto_request_id(msg->body), reason, message);
    control_reply(ctl, msg, PROTO_ERROR, &b);
    wire_body_free(&b);
}

/* The instance `req` names, or NULL after replying why not. */
static struct instance *find_instance(struct attach_server *srv, struct control *ctl, const struct wire_msg *msg,
                                      const struct proto_attach *req)
{
    char why[400];
    struct service *svc = supervisor_find_service(srv->sup, req->target);
    if (!svc) {
        snprintf(why, sizeof why, "no service named '%s' (devnode status lists them)", req->target);
        reply_refused(ctl, msg, PROTO_ATTACH_REFUSED_CONFIG, why);
        return NULL;
    }
    const char *name = svc->cfg->name;
    if (!svc->cfg->tty && !svc->cfg->stdin_pipe) {
        snprintf(why, sizeof why,
                 "%s has no terminal to attach to: add `tty: true` (pdb, breakpoint(), a REPL) or `stdin: true` "
                 "(a pipe) to %s in %s, then start the node again",
                 name, name, srv->sup->cfg->path);
        reply_refused(ctl, msg, PROTO_ATTACH_REFUSED_CONFIG, why);
        return NULL;
    }
    int index = req->index;
    if (index < 0) {
        if (svc->instance_cap != 1) {
            snprintf(why, sizeof why, "%s has %zu instances: name one, e.g. `devnode attach %s.0`", name,
                     svc->instance_cap, name);
            reply_refused(ctl, msg, PROTO_ATTACH_REFUSED_CONFIG, why);
            return NULL;
        }
        index = 0;
    }
    struct instance *inst = (size_t)index < svc->instance_cap ? svc->instances[index] : NULL;
    if (!inst) {
        if (svc->instance_cap)
            snprintf(why, sizeof why, "%s has no instance %d (it has %s.0 to %s.%zu)", name, index, name, name,
                     svc->instance_cap - 1);
        else
            snprintf(why, sizeof why, "%s has no instance %d (it is scaled to 0)", name, index);
        reply_refused(ctl, msg, PROTO_ATTACH_REFUSED_CONFIG, why);
        return NULL;
    }
    if (!inst->cur->pid || !inst->cur->term) {
        snprintf(why, sizeof why, "%s.%d runs no process now (it is %s); attach once it runs", name, index,
                 instance_state_name(inst->state));
        reply_refused(ctl, msg, PROTO_ATTACH_REFUSED_DOWN, why);
        return NULL;
    }
    return inst;
}

static void handle_attach(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct attach_server *srv = ctx;
    char target[200], tty[64], err[200];
    struct proto_attach req;
    if (proto_unpack_attach(msg->body, &req, target, sizeof target, tty, sizeof tty, err, sizeof err) < 0) {
        control_reply_error(ctl, msg, err);
        return;
    }
    struct instance *inst = find_instance(srv, ctl, msg, &req);
    if (!inst)
        return;
    struct term *term = inst->cur->term;
    char name[96];
    snprintf(name, sizeof name, "%s.%d", inst->service->cfg->name, inst->index);
    struct attach_session *held = term->session;
    if (held && !(held->routing_len == msg->identity_len &&
                  memcmp(held->routing, msg->identity, held->routing_len) == 0)) {
        /* The holder is asked nothing: a process that is gone cannot hold a terminal. */
        if (held->client_pid > 0 && (kill(held->client_pid, 0) == 0 || errno == EPERM)) {
            char who[120], why[300];
            describe_attacher(held, who, sizeof who);
            snprintf(why, sizeof why, "%s is attached already, from %s: detach there (Ctrl-]) first", name, who);
            reply_refused(ctl, msg, PROTO_ATTACH_REFUSED_BUSY, why);
            return;
        }
    }
    if (held)
        session_free(held);
    /* One session per attacher: a client that attaches elsewhere leaves its old one. */
    struct attach_session *mine = session_of(srv, msg);
    if (mine)
        session_free(mine);

    struct attach_session *s = xcalloc(1, sizeof *s);
    s->srv = srv;
    s->term = term;
    memcpy(s->routing, msg->identity, msg->identity_len);
    s->routing_len = msg->identity_len;
    s->client_pid = (pid_t)req.pid;
    snprintf(s->client_tty, sizeof s->client_tty, "%s", req.tty);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->next = srv->sessions;
    if (s->next)
        s->next->prev = s;
    srv->sessions = s;
    term->session = s;
    term->input_dropped = 0;
    if (req.rows > 0 && req.cols > 0)
        term_resize(term, req.rows, req.cols);

    struct wire_body b;
    wire_body_init(&b);
    proto_pack_attach_reply(&b.pk, proto_request_id(msg->body),
                            &(struct proto_attach_reply){.pid = term->pid, .mode = term->pty ? "pty" : "pipe"});
    control_reply(ctl, msg, PROTO_OK, &b);
    wire_body_free(&b);
    char who[120];
    describe_attacher(s, who, sizeof who);
    node_line(srv, LOG_LEVEL_INFO, "%s attached from %s", name, who);
    /* What the attacher would have seen last: the prompt it attaches to. */
    const char *a, *z;
    size_t alen, zlen;
    term_tail(term, &a, &alen, &z, &zlen);
    if (session_output(s, a, alen) == 0)
        session_output(s, z, zlen);
}

static void reply_not_attached(struct control *ctl, const struct wire_msg *msg)
{
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_attach_end(&b.pk, &(struct proto_attach_end){.reason = "unknown",
                                                             .message = "this client is attached to nothing"});
    control_reply(ctl, msg, PROTO_ATTACH_END, &b);
    wire_body_free(&b);
}

static void handle_input(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct attach_server *srv = ctx;
    struct attach_session *s = session_of(srv, msg);
    if (!s) {
        reply_not_attached(ctl, msg);
        return;
    }
    struct proto_attach_data d;
    char err[160];
    if (proto_unpack_attach_data(msg->body, &d, err, sizeof err) < 0)
        return; /* no reply to input: a bad message is dropped, as control counts them */
    if (term_write(s->term, d.data, d.len) < 0 && !s->term->input_dropped) {
        s->term->input_dropped = 1;
        node_line(srv, LOG_LEVEL_WARNING, "%s does not read its input: typed input is dropped", s->name);
    }
}

static void handle_resize(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct attach_server *srv = ctx;
    struct attach_session *s = session_of(srv, msg);
    struct proto_attach_resize r;
    char err[160];
    if (s && proto_unpack_attach_resize(msg->body, &r, err, sizeof err) == 0)
        term_resize(s->term, r.rows, r.cols);
}

static void handle_detach(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct attach_server *srv = ctx;
    struct attach_session *s = session_of(srv, msg);
    if (s) {
        char who[120];
        describe_attacher(s, who, sizeof who);
        node_line(srv, LOG_LEVEL_INFO, "%s detached (%s)", s->name, who);
        session_free(s);
    }
    control_reply_ok(ctl, msg);
}

void attach_server_init(struct attach_server *srv, struct control *ctl, struct supervisor *sup)
{
    srv->ctl = ctl;
    srv->sup = sup;
    srv->sessions = NULL;
    control_register(ctl, PROTO_ATTACH, handle_attach, srv);
    control_register(ctl, PROTO_ATTACH_INPUT, handle_input, srv);
    control_register(ctl, PROTO_ATTACH_RESIZE, handle_resize, srv);
    control_register(ctl, PROTO_DETACH, handle_detach, srv);
}
