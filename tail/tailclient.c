/* tailclient: acknowledgements are what lets the node send more (it keeps at most 8 `lines`
 * messages unacknowledged per client), so they go out every second message; a client that
 * stops reading therefore stops acknowledging, and the node skips ahead instead of queueing. */
#include "tail/tailclient.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/nodeconn.h"
#include "common/rundir.h"

#define RENEW_MS 1000
#define ANSWER_TIMEOUT_MS 5000
#define ACK_EVERY 2
#define GONE_GRACE_MS 300

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_body(struct tailclient *c, const char *type, struct wire_body *b)
{
    int rc = wire_send(c->sock, NULL, 0, type, b->sbuf.data, b->sbuf.size, ZMQ_DONTWAIT);
    wire_body_free(b);
    return rc;
}

static int send_request(struct tailclient *c, const struct tail_request *req)
{
    struct wire_body b;
    wire_body_init(&b);
    tailwire_pack_request(&b.pk, c->id, req);
    c->received = c->acked = 0;
    c->confirmed = 0;
    c->answer_deadline_ms = now_ms() + ANSWER_TIMEOUT_MS;
    c->next_renew_ms = now_ms() + RENEW_MS;
    return send_body(c, "tail", &b);
}

static void send_renew(struct tailclient *c)
{
    struct wire_body b;
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 2);
    wire_pack_kv_int(&b.pk, "id", c->id);
    wire_pack_str(&b.pk, "received");
    msgpack_pack_uint64(&b.pk, c->received);
    send_body(c, "tail_renew", &b);
    c->acked = c->received;
}

int tailclient_open(struct tailclient *c, const char *project_dir, const struct tail_request *req, char *err,
                    size_t errlen)
{
    memset(c, 0, sizeof *c);
    snprintf(c->project_dir, sizeof c->project_dir, "%s", project_dir);
    c->req = req;
    c->id = 1;
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
    if (send_request(c, req) < 0) {
        snprintf(err, errlen, "cannot talk to the node at %s: %s", endpoint, zmq_strerror(errno));
        tailclient_close(c, 0);
        return -1;
    }
    return 0;
}

static int message_id(const struct wire_msg *msg, int64_t *id)
{
    return wire_get_int(msg->body, "id", id);
}

enum tailclient_event tailclient_next(struct tailclient *c, struct wire_msg *msg, const volatile sig_atomic_t *stop,
                                      char *err, size_t errlen)
{
    for (;;) {
        if (*stop)
            return TAILCLIENT_INTERRUPTED;
        long long now = now_ms();
        if (!c->confirmed && now >= c->answer_deadline_ms) {
            snprintf(err, errlen, "the node did not answer the tail request within %d ms", ANSWER_TIMEOUT_MS);
            return TAILCLIENT_FAILED;
        }
        if (c->gone_deadline_ms && now >= c->gone_deadline_ms) {
            snprintf(err, errlen, "the node is gone");
            return TAILCLIENT_FAILED;
        }
        if (now >= c->next_renew_ms) {
            char endpoint[PATH_MAX + 16];
            pid_t pid;
            /* A node that stopped sent `end` before letting go of its lock: give that a moment
             * to arrive before calling the node gone. */
            if (!c->gone_deadline_ms &&
                rundir_find_node(c->project_dir, endpoint, sizeof endpoint, &pid, err, errlen) < 0)
                c->gone_deadline_ms = now + GONE_GRACE_MS;
            send_renew(c);
            c->next_renew_ms = now + RENEW_MS;
        }
        long long wake = c->gone_deadline_ms && c->gone_deadline_ms < c->next_renew_ms ? c->gone_deadline_ms
                                                                                      : c->next_renew_ms;
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
        enum wire_recv_result r = wire_recv(c->sock, 0, msg, why, sizeof why);
        if (r == WIRE_AGAIN)
            continue;
        if (r != WIRE_OK) {
            snprintf(err, errlen, "bad message from the node: %s", why);
            return TAILCLIENT_FAILED;
        }
        int64_t id;
        if (message_id(msg, &id) < 0 || id != c->id) {
            wire_msg_free(msg); /* a stale message of an earlier subscription, or an `ok` */
            continue;
        }
        if (strcmp(msg->type, "lines") == 0) {
            c->confirmed = 1;
            if (++c->received - c->acked >= ACK_EVERY)
                send_renew(c);
            return TAILCLIENT_LINES;
        }
        if (strcmp(msg->type, "end") == 0)
            return TAILCLIENT_END;
        if (strcmp(msg->type, "error") == 0) {
            char message[400];
            if (wire_get_str(msg->body, "message", message, sizeof message) < 0)
                snprintf(message, sizeof message, "(no message)");
            wire_msg_free(msg);
            if (!c->confirmed) {
                snprintf(err, errlen, "%s", message);
                return TAILCLIENT_FAILED;
            }
            /* The node forgot us (renewals stopped for over 5 s): follow again. */
            struct tail_request again = *c->req;
            again.backlog = c->resume_backlog;
            c->id++;
            if (send_request(c, &again) < 0) {
                snprintf(err, errlen, "cannot talk to the node: %s", zmq_strerror(errno));
                return TAILCLIENT_FAILED;
            }
            return TAILCLIENT_RESUMED;
        }
        wire_msg_free(msg);
    }
}

void tailclient_keepalive(struct tailclient *c)
{
    long long now = now_ms();
    if (now >= c->next_renew_ms) {
        send_renew(c);
        c->next_renew_ms = now + RENEW_MS;
    }
}

void tailclient_close(struct tailclient *c, int unsubscribe)
{
    if (!c->sock)
        return;
    if (unsubscribe) {
        struct wire_body b;
        wire_body_init(&b);
        msgpack_pack_map(&b.pk, 1);
        wire_pack_kv_int(&b.pk, "id", c->id);
        send_body(c, "untail", &b);
    }
    zmq_close(c->sock);
    zmq_ctx_term(c->zmq_ctx);
    c->sock = NULL;
    c->zmq_ctx = NULL;
}
