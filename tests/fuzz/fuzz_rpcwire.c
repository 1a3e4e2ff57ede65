/* fuzz_rpcwire: lymph's RPC message decoder (proto/rpcwire.c) on real ZeroMQ sockets, as
 * fuzz_wire does for the node protocol: up to 8 frames over inproc to a ROUTER (routed) or a
 * PAIR; rpc_recv must consume exactly that message, its text fields must be printable and
 * bounded, and an accepted message must come back unchanged through rpc_send + rpc_recv. */
#include <errno.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/msgjson.h"
#include "proto/rpcwire.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/fuzz_zmq.h"

static struct fuzz_sockets fs;

FUZZ_NO_COVERAGE static void check_text(const char *what, const char *s, size_t cap, int may_be_empty)
{
    size_t n = strnlen(s, cap);
    FUZZ_CHECK(n < cap, "%s is not NUL-terminated", what);
    FUZZ_CHECK(may_be_empty || n > 0, "%s is empty", what);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x7e, "%s byte 0x%02x", what,
                   (unsigned char)s[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_sockets_open(&fs, "rpc");
    if (size == 0)
        return 0;
    struct fuzz_route route = fuzz_send_input(&fs, data, size);
    void *tx = route.tx, *rx = route.rx;
    int routed = route.routed;

    struct rpc_msg msg;
    char err[256] = "";
    enum wire_recv_result rc = rpc_recv(rx, routed, &msg, err, sizeof err);
    FUZZ_CHECK(rc == WIRE_OK || rc == WIRE_MALFORMED, "rpc_recv returned %d (%s)", (int)rc, err);
    FUZZ_CHECK(!fuzz_rcvmore(rx), "rpc_recv left frames of the message unread (rc %d, %s)", (int)rc, err);
    struct rpc_msg next;
    FUZZ_CHECK(rpc_recv(rx, routed, &next, err, sizeof err) == WIRE_AGAIN, "a second message appeared");
    if (rc == WIRE_MALFORMED) {
        FUZZ_CHECK(err[0] != '\0' && !msg.has_frames, "malformed without a reason, or holding frames");
        return 0;
    }

    check_text("id", msg.id, sizeof msg.id, 0);
    check_text("subject", msg.subject, sizeof msg.subject, 0);
    FUZZ_CHECK((unsigned)msg.type <= RPC_ERROR, "type %d", (int)msg.type);
    FUZZ_CHECK(msg.headers && msg.headers->type == MSGPACK_OBJECT_MAP && msg.body, "headers or body missing");
    FUZZ_CHECK(strnlen(msg.trace_id, sizeof msg.trace_id) <= RPC_TRACE_ID_MAX, "trace id too long");
    json_t *j = msgjson_to_json(msg.body);
    json_decref(j);

    /* Back out and in again: every field must survive. */
    const char *h = zmq_msg_data(&msg.headers_frame), *b = zmq_msg_data(&msg.body_frame);
    size_t hl = zmq_msg_size(&msg.headers_frame), bl = zmq_msg_size(&msg.body_frame);
    FUZZ_CHECK(rpc_send(rx, routed ? msg.routing : NULL, msg.routing_len, msg.id, msg.type, msg.subject, h, hl,
                        b, bl, 0) == 0,
               "rpc_send back failed");
    struct rpc_msg back;
    FUZZ_CHECK(rpc_recv(tx, 0, &back, err, sizeof err) == WIRE_OK, "re-sent message is malformed: %s", err);
    FUZZ_CHECK(strcmp(back.id, msg.id) == 0 && back.type == msg.type && strcmp(back.subject, msg.subject) == 0 &&
                   strcmp(back.trace_id, msg.trace_id) == 0,
               "fields changed on the way back");
    FUZZ_CHECK(zmq_msg_size(&back.headers_frame) == hl && memcmp(zmq_msg_data(&back.headers_frame), h, hl) == 0 &&
                   zmq_msg_size(&back.body_frame) == bl && memcmp(zmq_msg_data(&back.body_frame), b, bl) == 0,
               "headers or body changed on the way back");
    rpc_msg_free(&back);
    rpc_msg_free(&msg);
    return 0;
}
