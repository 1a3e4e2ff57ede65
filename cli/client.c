/* client: one request/reply with the node over a DEALER socket. The CLI is short-lived, so a
 * fresh context per request is simpler than pooling and costs well under a millisecond. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/nodeconn.h"
#include "common/rundir.h"
#include "lib/devnode.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One connection to the node for one request. */
struct cli_conn {
    void *ctx, *sock;
    pid_t pid; /* the node's */
};

static int conn_open_send(const struct cli_project *project, const char *type, const struct wire_body *body,
                          struct cli_conn *conn, char *err, size_t errlen)
{
    char endpoint[PATH_MAX + 16];
    conn->ctx = conn->sock = NULL;
    if (rundir_find_node(project->dir, endpoint, sizeof endpoint, &conn->pid, err, errlen) < 0)
        return -1;
    conn->ctx = zmq_ctx_new();
    conn->sock = nodeconn_open(conn->ctx, endpoint, NODECONN_DROP, err, errlen);
    if (!conn->sock)
        return -1;
    if (wire_send(conn->sock, NULL, 0, type, body->sbuf.data, body->sbuf.size, 0) < 0) {
        snprintf(err, errlen, "cannot send to the node: %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

struct devnode *cli_devnode_open(const struct cli_project *project, char *err, size_t errlen)
{
    char endpoint[PATH_MAX + 16];
    pid_t pid;
    if (cli_backends_apply(project, err, errlen) < 0)
        return NULL;
    if (project && rundir_find_node(project->dir, endpoint, sizeof endpoint, &pid, err, errlen) < 0) {
        /* Events on RabbitMQ need no node: `devnode emit` / `subscribe` go straight to the broker. */
        const char *events = getenv("DEVNODE_EVENTS");
        if (!events || !*events)
            return NULL;
        return devnode_open(NULL, "cli", err, errlen);
    }
    return devnode_open(project ? endpoint : NULL, "cli", err, errlen);
}

const char *cli_devnode_error(const struct devnode *dn)
{
    const char *e = devnode_last_error(dn);
    static const char refused[] = "the node refused '";
    const char *end;
    if (strncmp(e, refused, sizeof refused - 1) == 0 && (end = strstr(e, "': ")))
        return end + 3;
    return e;
}

static void conn_close(struct cli_conn *conn)
{
    if (conn->sock)
        zmq_close(conn->sock);
    if (conn->ctx)
        zmq_ctx_term(conn->ctx);
}

enum recv_result { RECV_OK, RECV_ERROR_REPLY, RECV_FAILED, RECV_TIMEOUT, RECV_INTERRUPTED, RECV_NODE_GONE };

static volatile sig_atomic_t wait_interrupted; /* Ctrl-C while cli_request_wait waits */

static void on_wait_signal(int sig)
{
    wait_interrupted = 1;
}

/* The next message before the deadline. An `error` reply puts its message in err. With
 * `watch`, Ctrl-C and the node's exit end the wait too (checked at least twice a second). */
static enum recv_result conn_recv(struct cli_conn *conn, long long deadline, int watch, struct wire_msg *reply,
                                  char *err, size_t errlen)
{
    for (;;) {
        if (watch && wait_interrupted)
            return RECV_INTERRUPTED;
        long long left = deadline - now_ms();
        if (left <= 0)
            return RECV_TIMEOUT;
        if (watch && kill(conn->pid, 0) < 0 && errno == ESRCH)
            return RECV_NODE_GONE;
        zmq_pollitem_t item = {.socket = conn->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, watch && left > 500 ? 500 : (long)left) < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll failed: %s", zmq_strerror(errno));
            return RECV_FAILED;
        }
        if (!(item.revents & ZMQ_POLLIN))
            continue;
        char why[160];
        enum wire_recv_result r = wire_recv(conn->sock, 0, reply, why, sizeof why);
        if (r == WIRE_AGAIN)
            continue;
        if (r == WIRE_OTHER_VERSION) {
            proto_version_mismatch(err, errlen, reply->version, WIRE_VERSION, "devnode");
            wire_msg_free(reply);
            return RECV_FAILED;
        }
        if (r != WIRE_OK) {
            snprintf(err, errlen, "bad reply from the node: %s", why);
            return RECV_FAILED;
        }
        if (strcmp(reply->type, PROTO_ERROR) == 0) {
            char message[1500];
            proto_unpack_error(reply->body, message, sizeof message);
            snprintf(err, errlen, "%s", message);
            wire_msg_free(reply);
            return RECV_ERROR_REPLY;
        }
        return RECV_OK;
    }
}

int cli_request(const struct cli_project *project, const char *type, const struct wire_body *body,
                int timeout_ms, struct wire_msg *reply, char *err, size_t errlen)
{
    struct cli_conn conn;
    int rc = -1;
    if (conn_open_send(project, type, body, &conn, err, errlen) == 0) {
        enum recv_result r = conn_recv(&conn, now_ms() + timeout_ms, 0, reply, err, errlen);
        if (r == RECV_TIMEOUT)
            snprintf(err, errlen, "the node (pid %d) did not answer '%s' within %d ms", (int)conn.pid, type,
                     timeout_ms);
        rc = r == RECV_OK ? 0 : -1;
    }
    conn_close(&conn);
    return rc;
}

enum cli_wait cli_request_wait(const struct cli_project *project, const char *type, const struct wire_body *body,
                               int timeout_ms, struct wire_msg *reply, char *err, size_t errlen)
{
    struct cli_conn conn;
    if (conn_open_send(project, type, body, &conn, err, errlen) < 0) {
        conn_close(&conn);
        return CLI_WAIT_REFUSED;
    }
    struct sigaction sa = {.sa_handler = on_wait_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    wait_interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    enum cli_wait result;
    int started = 0;
    enum recv_result r = conn_recv(&conn, now_ms() + CLI_ANSWER_TIMEOUT_MS, 1, reply, err, errlen);
    if (r == RECV_OK && strcmp(reply->type, PROTO_STARTED) == 0) {
        started = 1;
        struct proto_change_started s;
        proto_unpack_change_started(reply->body, strcmp(type, PROTO_SCALE) == 0, &s);
        wire_msg_free(reply);
        if (timeout_ms <= 0)
            timeout_ms = (int)s.timeout_ms + CLI_ANSWER_TIMEOUT_MS;
        r = conn_recv(&conn, now_ms() + timeout_ms, 1, reply, err, errlen);
    } else if (r == RECV_TIMEOUT) {
        timeout_ms = CLI_ANSWER_TIMEOUT_MS;
    }
    switch (r) {
    case RECV_OK:
        result = CLI_WAIT_DONE;
        break;
    case RECV_ERROR_REPLY:
        result = started ? CLI_WAIT_FAILED : CLI_WAIT_REFUSED;
        break;
    case RECV_FAILED:
        result = CLI_WAIT_REFUSED;
        break;
    case RECV_TIMEOUT:
        snprintf(err, errlen, "no outcome within %.1f s; %s (`devnode status` shows where it is)",
                 timeout_ms / 1000.0, started ? "it goes on in the node" : "the node may still act on it");
        result = CLI_WAIT_TIMEOUT;
        break;
    case RECV_INTERRUPTED:
        snprintf(err, errlen, "stopped waiting; %s (`devnode status` shows where it is)",
                 started ? "it goes on in the node" : "the node may still act on it");
        result = CLI_WAIT_INTERRUPTED;
        break;
    case RECV_NODE_GONE:
    default:
        snprintf(err, errlen, "the node (pid %d) exited before it was over", (int)conn.pid);
        result = CLI_WAIT_TIMEOUT;
        break;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    conn_close(&conn);
    return result;
}
