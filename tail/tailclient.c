/* tailclient: everything the conversation decides is in tailconv; this file only moves its
 * messages and reads the clock. The node's lock is looked at once a second: a node that
 * stopped sent `end` before letting go of it, so tailconv gives that a moment to arrive. */
#include "tail/tailclient.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/nodeconn.h"
#include "common/rundir.h"

#define CHECK_NODE_MS 1000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends what the conversation asked for. -1 when a request could not leave: the node would
 * never answer it. Renewals and untails that fail are retried by the next tick or moot. */
static int send_out(struct tailclient *c, struct tailconv_out *out)
{
    int rc = 0;
    for (size_t i = 0; i < out->send_count; i++) {
        const struct tailconv_send *s = &out->send[i];
        if (wire_send(c->sock, NULL, 0, s->type, s->body.sbuf.data, s->body.sbuf.size, ZMQ_DONTWAIT) < 0 &&
            !strcmp(s->type, PROTO_TAIL))
            rc = -1;
    }
    tailconv_out_free(out);
    return rc;
}

static void release_msg(struct tailclient *c)
{
    if (c->have_msg) {
        wire_msg_free(&c->msg);
        c->have_msg = 0;
    }
}

int tailclient_open(struct tailclient *c, const char *project_dir, const struct tail_request *req,
                    const struct tailconv_options *opts, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    snprintf(c->project_dir, sizeof c->project_dir, "%s", project_dir);
    c->next_id = 1;
    c->output_fd = -1;
    char endpoint[PATH_MAX + 16];
    pid_t pid;
    if (rundir_find_node(project_dir, endpoint, sizeof endpoint, &pid, err, errlen) < 0)
        return -1;
    c->zmq_ctx = zmq_ctx_new();
    c->sock = nodeconn_open(c->zmq_ctx, endpoint, NODECONN_FAREWELL, err, errlen);
    if (!c->sock) {
        zmq_ctx_term(c->zmq_ctx);
        c->zmq_ctx = NULL;
        return -1;
    }
    tailconv_init(&c->conv, req, opts, &c->next_id);
    long long now = now_ms();
    c->next_check_ms = now + CHECK_NODE_MS;
    tailconv_start(&c->conv, now, &c->out);
    if (send_out(c, &c->out) < 0) {
        snprintf(err, errlen, "cannot talk to the node at %s: %s", endpoint, zmq_strerror(errno));
        tailclient_close(c);
        return -1;
    }
    return 0;
}

/* Timers: the node's lock, then the conversation's own. A failure is returned as FAILED. */
static int run_timers(struct tailclient *c, long long now, char *err, size_t errlen)
{
    if (now >= c->next_check_ms) {
        char endpoint[PATH_MAX + 16], why[256];
        pid_t pid;
        if (rundir_find_node(c->project_dir, endpoint, sizeof endpoint, &pid, why, sizeof why) < 0)
            tailconv_node_gone(&c->conv, now);
        c->next_check_ms = now + CHECK_NODE_MS;
    }
    tailconv_tick(&c->conv, now, &c->out);
    if (c->out.event == TAILCONV_EV_FAILED) {
        snprintf(err, errlen, "%s", c->out.error);
        tailconv_out_free(&c->out);
        return -1;
    }
    send_out(c, &c->out);
    return 0;
}

enum tailclient_event tailclient_next(struct tailclient *c, const struct tailconv_out **out,
                                      const volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    release_msg(c);
    *out = &c->out;
    for (;;) {
        if (*stop)
            return TAILCLIENT_INTERRUPTED;
        if (c->failed[0]) {
            snprintf(err, errlen, "%s", c->failed);
            return TAILCLIENT_FAILED;
        }
        long long now = now_ms();
        if (run_timers(c, now, err, errlen) < 0)
            return TAILCLIENT_FAILED;
        long long wake = tailconv_next_deadline(&c->conv);
        if (wake < 0 || wake > c->next_check_ms)
            wake = c->next_check_ms;
        long timeout = (long)(wake - now);
        /* A pipe whose reader closed reports an error even with no events asked for, so
         * `tail -f | head` ends when head does, not at the next line written. */
        zmq_pollitem_t items[2] = {{.socket = c->sock, .events = ZMQ_POLLIN}, {.fd = c->output_fd}};
        if (zmq_poll(items, c->output_fd >= 0 ? 2 : 1, timeout < 0 ? 0 : timeout) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "poll failed: %s", zmq_strerror(errno));
            return TAILCLIENT_FAILED;
        }
        if (c->output_fd >= 0 && (items[1].revents & ZMQ_POLLERR))
            return TAILCLIENT_INTERRUPTED;
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        char why[160];
        enum wire_recv_result r = wire_recv(c->sock, 0, &c->msg, why, sizeof why);
        if (r == WIRE_AGAIN)
            continue;
        if (r == WIRE_OTHER_VERSION) {
            proto_version_mismatch(err, errlen, c->msg.version, WIRE_VERSION, "devnode");
            wire_msg_free(&c->msg);
            return TAILCLIENT_FAILED;
        }
        if (r != WIRE_OK) {
            snprintf(err, errlen, "bad message from the node: %s", why);
            return TAILCLIENT_FAILED;
        }
        c->have_msg = 1;
        if (!tailconv_feed(&c->conv, c->msg.type, c->msg.body, now_ms(), &c->out)) {
            release_msg(c); /* a stale message of an earlier subscription, or an `ok` */
            continue;
        }
        if (send_out(c, &c->out) < 0) {
            snprintf(err, errlen, "cannot talk to the node: %s", zmq_strerror(errno));
            return TAILCLIENT_FAILED;
        }
        switch (c->out.event) {
        case TAILCONV_EV_LINES:
            if (c->out.malformed) {
                snprintf(err, errlen, "bad `lines` message from the node");
                return TAILCLIENT_FAILED;
            }
            return TAILCLIENT_LINES;
        case TAILCONV_EV_END:
            return TAILCLIENT_END;
        case TAILCONV_EV_RESUMED:
            return TAILCLIENT_RESUMED;
        case TAILCONV_EV_FAILED:
            snprintf(err, errlen, "%s", c->out.error);
            return TAILCLIENT_FAILED;
        default:
            release_msg(c);
            continue;
        }
    }
}

void tailclient_keepalive(struct tailclient *c)
{
    /* Lines being shown from c->out stay where they are: the timers send, they do not feed.
     * So the timers run on an out of their own. */
    struct tailconv_out out;
    long long now = now_ms();
    tailconv_tick(&c->conv, now, &out);
    if (out.event == TAILCONV_EV_FAILED)
        snprintf(c->failed, sizeof c->failed, "%s", out.error);
    send_out(c, &out);
}

void tailclient_close(struct tailclient *c)
{
    if (!c->sock)
        return;
    release_msg(c);
    struct tailconv_out out;
    tailconv_stop(&c->conv, &out);
    send_out(c, &out);
    tailconv_free(&c->conv);
    zmq_close(c->sock);
    zmq_ctx_term(c->zmq_ctx);
    c->sock = NULL;
    c->zmq_ctx = NULL;
}
