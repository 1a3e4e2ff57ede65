/* bus_raw_echo.c: compiled and run by bench_bus.py.
 * The floor on this machine: plain libzmq, a DEALER and a ROUTER echo in two processes over
 * ipc, one message each way, as the devnode path sends (no msgpack, no lookup). Prints the
 * same three figures in ns. */
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
#include "bench/driver.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bus_raw_echo N ENDPOINT\n");
        return 2;
    }
    long n = atol(argv[1]);
    const char *ep = argv[2];
    pid_t echo = fork();
    if (echo == 0) {
        void *ctx = zmq_ctx_new(), *r = zmq_socket(ctx, ZMQ_ROUTER);
        zmq_bind(r, ep);
        for (;;) {
            zmq_msg_t parts[8];
            int k = 0, more = 1;
            while (more && k < 8) {
                zmq_msg_init(&parts[k]);
                if (zmq_msg_recv(&parts[k], r, 0) < 0) return 0;
                more = zmq_msg_more(&parts[k]);
                k++;
            }
            for (int i = 0; i < k; i++)
                zmq_msg_send(&parts[i], r, i + 1 < k ? ZMQ_SNDMORE : 0);
        }
    }
    usleep(100000);
    void *ctx = zmq_ctx_new(), *d = zmq_socket(ctx, ZMQ_DEALER);
    zmq_connect(d, ep);
    long long *lat = malloc(n * sizeof *lat);
    char buf[256];
    for (long i = -500; i < n; i++) {
        long long t0 = now_ns();
        zmq_send(d, "0123456789abcdef", 16, ZMQ_SNDMORE);
        zmq_send(d, "REQ", 3, ZMQ_SNDMORE);
        zmq_send(d, "Greeting.lymph.ping", 19, ZMQ_SNDMORE);
        zmq_send(d, "\x81\xa8trace_id\xa4" "abcd", 15, ZMQ_SNDMORE); /* split: \xa4abcd is one escape */
        zmq_send(d, "\x81\xa7payload\xa1x", 11, 0);
        int more = 1;
        while (more) {
            zmq_recv(d, buf, sizeof buf, 0);
            size_t len = sizeof more;
            zmq_getsockopt(d, ZMQ_RCVMORE, &more, &len);
        }
        if (i >= 0) lat[i] = now_ns() - t0;
    }
    print_latencies(lat, n);
    kill(echo, 9);
    waitpid(echo, NULL, 0);
    return 0;
}
