/* fuzz_handlers: the node's deepest decoders, driven the way clients drive them. A real
 * struct control (node/control.c) listens on inproc inside a libuv loop with the registry,
 * the event bus (with one retained stream, journal in a RAM scratch dir) and the tail server
 * registered, as node.c wires them; two DEALER clients send it a sequence of messages. Every
 * input starts from fresh registry/bus/tail state so a crash replays from its file alone.
 * Checks: the control socket picks every message up, every reply and event the node sends is
 * a well-formed wire message, teardown frees everything (LeakSanitizer).
 * Input: a sequence of operations, each [op] then its bytes:
 *   op & 0x80     the second client sends (else the first)
 *   op & 0x7f < N a message of types[op] with body [len][bytes] (lengths as in fuzz_util.h)
 *   N .. N+3      a raw multipart message of 1..4 frames, each [len][bytes]
 *   N+4           a log line [len][text] appended to the log hub (feeds the tail server)
 *   N+5           process [pid] exited (what the supervisor tells registry and bus)
 *   N+6           2 ms pass (short delay_ms events come due)
 *   other         the same as op % N */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#include "proto/wire.h"
#include "node/bus.h"
#include "config/config.h"
#include "node/control.h"
#include "node/loghub.h"
#include "node/registry.h"
#include "node/tailserver.h"
#include "tests/fuzz/fuzz_util.h"

static const char *const types[] = {
    "register", "unregister", "discover", "emit",  "subscribe", "unsubscribe", "ack",       "nack",
    "bus_status", "tail",     "tail_renew", "untail", "traces",  "heartbeat",   "status",    "ping",
};
#define NTYPES (sizeof types / sizeof types[0])
#define MAX_OPS 64

static uv_loop_t loop;
static struct control ctl;
static void *client[2];
static char run_dir[256], streams_dir[300];
static char stream_pattern[] = "book.#";
static struct config_stream stream_cfg = {.pattern = stream_pattern, .retain_events = 1000};
static struct config cfg = {.streams = &stream_cfg, .stream_count = 1};

static void cleanup(void)
{
    fuzz_empty_dir(streams_dir);
    rmdir(streams_dir);
    rmdir(run_dir);
}

static void setup(void)
{
    fuzz_scratch_dir(run_dir, sizeof run_dir, "handlers");
    snprintf(streams_dir, sizeof streams_dir, "%s/streams", run_dir);
    atexit(cleanup);
    uv_loop_init(&loop);
    char err[256];
    FUZZ_CHECK(control_open(&ctl, &loop, "inproc://fuzz-handlers", err, sizeof err) == 0, "control_open: %s", err);
    for (int i = 0; i < 2; i++) {
        client[i] = zmq_socket(ctl.zmq_ctx, ZMQ_DEALER);
        int zero = 0;
        zmq_setsockopt(client[i], ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(client[i], ZMQ_ROUTING_ID, i ? "B" : "A", 1);
        FUZZ_CHECK(zmq_connect(client[i], "inproc://fuzz-handlers") == 0, "connect");
    }
}

static int pending_at_node(void)
{
    int events = 0;
    size_t len = sizeof events;
    zmq_getsockopt(ctl.router, ZMQ_EVENTS, &events, &len);
    return (events & ZMQ_POLLIN) != 0;
}

/* Reads what the node sent a client; all of it must decode. Returns how many messages. */
static int drain_client(void *sock)
{
    int n = 0;
    for (;;) {
        struct wire_msg msg;
        char err[256];
        enum wire_recv_result rc = wire_recv(sock, 0, &msg, err, sizeof err);
        if (rc == WIRE_AGAIN)
            return n;
        FUZZ_CHECK(rc == WIRE_OK, "the node sent a malformed message: %s", err);
        wire_msg_free(&msg);
        n++;
    }
}

/* Runs the loop until the node has read everything and sent nothing more. */
static void pump(void)
{
    int idle_rounds = 0;
    for (int round = 0; round < 64 && idle_rounds < 2; round++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        int got = drain_client(client[0]) + drain_client(client[1]);
        idle_rounds = got || pending_at_node() ? 0 : idle_rounds + 1;
    }
    FUZZ_CHECK(!pending_at_node(), "the control socket left a message unread");
}

static void send_frames(void *sock, const uint8_t *const *data, const size_t *len, size_t count)
{
    for (size_t i = 0; i < count; i++)
        FUZZ_CHECK(zmq_send(sock, data[i], len[i], i + 1 < count ? ZMQ_SNDMORE : 0) == (int)len[i], "send: %s",
                   zmq_strerror(errno));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!client[0])
        setup();

    struct loghub hub;
    struct registry reg;
    struct bus bus;
    struct tailserver ts;
    char err[256];
    loghub_init(&hub);
    ctl.handler_count = 0; /* fresh handlers for fresh modules; the socket stays */
    fuzz_empty_dir(streams_dir);
    registry_init(&reg, &loop, &hub, &ctl);
    FUZZ_CHECK(bus_init(&bus, &loop, &hub, &ctl, &cfg, run_dir, err, sizeof err) == 0, "bus_init: %s", err);
    /* A ring of 16 lines: eviction under followers is within reach of a short input. */
    FUZZ_CHECK(tailserver_init(&ts, &loop, &hub, &ctl, 16, err, sizeof err) == 0, "tailserver_init: %s", err);

    struct fuzz_in in = {data, size};
    for (int ops = 0; in.n > 0 && ops < MAX_OPS; ops++) {
        uint8_t op = fuzz_u8(&in);
        void *sock = client[op >> 7];
        size_t k = op & 0x7f;
        if (k >= NTYPES && k < NTYPES + 4) {
            const uint8_t *frames[4];
            size_t lens[4];
            for (size_t i = 0; i <= k - NTYPES; i++)
                frames[i] = fuzz_bytes(&in, fuzz_len(&in), &lens[i]);
            send_frames(sock, frames, lens, k - NTYPES + 1);
        } else if (k == NTYPES + 5) {
            pid_t pid = fuzz_u8(&in);
            registry_heartbeat(&reg, pid);
            registry_on_process_exit(&reg, pid);
            bus_on_process_exit(&bus, pid);
        } else if (k == NTYPES + 6) {
            usleep(2000);
        } else if (k == NTYPES + 4) {
            size_t len;
            const char *text = (const char *)fuzz_bytes(&in, fuzz_len(&in), &len);
            struct log_line line = {.service = (op & 0x80) ? "Listen" : "Greeting", .instance = (int)(len % 3),
                                    .pid = 100 + (int)(len % 3), .stream = LOG_STREAM_STDOUT, .text = text,
                                    .len = len};
            loghub_append_line(&hub, &line);
        } else {
            const uint8_t *frames[3];
            size_t lens[3];
            const char *type = types[k % NTYPES];
            frames[0] = (const uint8_t *)"1";
            lens[0] = 1;
            frames[1] = (const uint8_t *)type;
            lens[1] = strlen(type);
            frames[2] = fuzz_bytes(&in, fuzz_len(&in), &lens[2]);
            send_frames(sock, frames, lens, 3);
        }
        pump();
    }

    tailserver_close(&ts);
    registry_close(&reg);
    bus_close(&bus);
    uv_run(&loop, UV_RUN_NOWAIT); /* finishes the closes */
    tailserver_free(&ts);
    drain_client(client[0]);
    drain_client(client[1]);
    return 0;
}
