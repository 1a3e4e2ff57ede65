/* zmq_floor.c: compiled and run by bench_bus.py. The physical limit of the bus on this
 * machine: plain libzmq, a DEALER and a ROUTER in two processes over ipc, N messages of the
 * given frame sizes (those of one emit of one small event, measured by the bench), pipelined.
 *   oneway: the ROUTER only receives (it answers the last one, so the sender knows);
 *   reply:  the ROUTER answers each message with one small reply, WINDOW in flight at most.
 * Prints "<seconds> <messages/s>". No msgpack, no node: only the sockets and the copies. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include "bench/driver.h"

#define MAX_FRAMES 8
#define WINDOW 4000 /* as the driver's emits in flight */

static const char REPLY_BODY[] = "\x83\xa2" "id\x00\xa6" "events\x01\xa6" "groups\x01"; /* an ok's size */

static void router(const char *ep, long n, int reply)
{
    void *ctx = zmq_ctx_new(), *r = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(r, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(r, ZMQ_RCVHWM, &zero, sizeof zero);
    if (zmq_bind(r, ep) != 0)
        _exit(1);
    static char buf[1 << 16];
    char id[256];
    for (long got = -1; got < n; got++) { /* message -1 is the hello */
        int idlen = zmq_recv(r, id, sizeof id, 0), more = 1;
        if (idlen < 0)
            _exit(1);
        while (more) {
            zmq_recv(r, buf, sizeof buf, 0);
            size_t len = sizeof more;
            zmq_getsockopt(r, ZMQ_RCVMORE, &more, &len);
        }
        if (got < 0 || reply || got == n - 1) {
            zmq_send(r, id, (size_t)idlen, ZMQ_SNDMORE);
            zmq_send(r, "1", 1, ZMQ_SNDMORE);
            zmq_send(r, "ok", 2, ZMQ_SNDMORE);
            zmq_send(r, REPLY_BODY, sizeof REPLY_BODY - 1, 0);
        }
    }
    zmq_close(r);
    zmq_ctx_term(ctx);
    _exit(0);
}

static void recv_reply(void *d)
{
    char buf[256];
    int more = 1;
    while (more) {
        zmq_recv(d, buf, sizeof buf, 0);
        size_t len = sizeof more;
        zmq_getsockopt(d, ZMQ_RCVMORE, &more, &len);
    }
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc - 4 > MAX_FRAMES || (strcmp(argv[1], "oneway") && strcmp(argv[1], "reply"))) {
        fprintf(stderr, "usage: zmq_floor oneway|reply N ENDPOINT FRAME_SIZE...\n");
        return 2;
    }
    int reply = !strcmp(argv[1], "reply");
    long n = atol(argv[2]);
    const char *ep = argv[3];
    int frames = argc - 4;
    size_t size[MAX_FRAMES];
    char *frame[MAX_FRAMES];
    for (int i = 0; i < frames; i++) {
        size[i] = (size_t)atol(argv[4 + i]);
        frame[i] = malloc(size[i] + 1);
        memset(frame[i], 'x', size[i]);
    }
    pid_t child = fork();
    if (child == 0)
        router(ep, n, reply);
    void *ctx = zmq_ctx_new(), *d = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(d, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(d, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_connect(d, ep);
    /* A hello answered: the pair is connected before the clock starts. */
    zmq_send(d, "hello", 5, 0);
    zmq_pollitem_t it = {.socket = d, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, 10000) != 1) {
        fprintf(stderr, "zmq_floor: the ROUTER did not answer\n");
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return 1;
    }
    recv_reply(d);
    double t0 = mono();
    long sent = 0, done = 0;
    while (sent < n) {
        for (int i = 0; i < frames; i++)
            zmq_send(d, frame[i], size[i], i + 1 < frames ? ZMQ_SNDMORE : 0);
        sent++;
        /* With replies: read what came, and wait when WINDOW are unanswered. */
        while (reply && done < sent) {
            it.revents = 0;
            if (zmq_poll(&it, 1, sent - done >= WINDOW ? 10000 : 0) != 1)
                break;
            recv_reply(d);
            done++;
        }
    }
    while (done < (reply ? n : 1)) {
        it.revents = 0;
        if (zmq_poll(&it, 1, 10000) != 1) {
            fprintf(stderr, "zmq_floor: stalled after %ld replies\n", done);
            kill(child, SIGKILL);
            waitpid(child, NULL, 0);
            return 1;
        }
        recv_reply(d);
        done++;
    }
    double took = mono() - t0;
    printf("%.6f %.0f\n", took, n / took);
    zmq_close(d);
    zmq_ctx_term(ctx);
    waitpid(child, NULL, 0);
    for (int i = 0; i < frames; i++)
        free(frame[i]);
    return 0;
}
