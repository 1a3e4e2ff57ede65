/* client: one request/reply with the node over a DEALER socket. The CLI is short-lived, so a
 * fresh context per request is simpler than pooling and costs well under a millisecond. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/rundir.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_request(const struct cli_project *project, const char *type, const struct wire_body *body,
                int timeout_ms, struct wire_msg *reply, char *err, size_t errlen)
{
    char endpoint[PATH_MAX + 16];
    pid_t pid;
    if (rundir_find_node(project->dir, endpoint, sizeof endpoint, &pid, err, errlen) < 0)
        return -1;
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    int rc = -1;
    if (zmq_connect(sock, endpoint) < 0) {
        snprintf(err, errlen, "cannot connect to the node at %s: %s", endpoint, zmq_strerror(errno));
        goto out;
    }
    if (wire_send(sock, NULL, 0, type, body->sbuf.data, body->sbuf.size, 0) < 0) {
        snprintf(err, errlen, "cannot send to the node: %s", zmq_strerror(errno));
        goto out;
    }
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            snprintf(err, errlen, "the node (pid %d) did not answer '%s' within %d ms", (int)pid, type,
                     timeout_ms);
            goto out;
        }
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, (long)left) < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll failed: %s", zmq_strerror(errno));
            goto out;
        }
        if (!(item.revents & ZMQ_POLLIN))
            continue;
        char why[160];
        enum wire_recv_result r = wire_recv(sock, 0, reply, why, sizeof why);
        if (r == WIRE_AGAIN)
            continue;
        if (r != WIRE_OK) {
            snprintf(err, errlen, "bad reply from the node: %s", why);
            goto out;
        }
        if (strcmp(reply->type, "error") == 0) {
            char message[400];
            if (wire_get_str(reply->body, "message", message, sizeof message) < 0)
                snprintf(message, sizeof message, "(no message)");
            snprintf(err, errlen, "%s", message);
            wire_msg_free(reply);
            goto out;
        }
        rc = 0;
        break;
    }
out:
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return rc;
}
