/* fuzz_wire: the node protocol decoder (proto/wire.c) on real ZeroMQ sockets. The input is
 * cut into up to 8 frames (fuzz_util.h) and sent as one multipart message over inproc, to a
 * ROUTER (routed) or a PAIR; wire_recv must consume exactly that message, and a message it
 * accepts must survive wire_send + wire_recv unchanged. The body then goes through the
 * accessors the node uses and the msgpack <-> JSON bridge (common/msgjson.c). */
#include <jansson.h>
#include <errno.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/msgjson.h"
#include "proto/wire.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/fuzz_zmq.h"

static struct fuzz_sockets fs;

/* Reads what the node reads from a request body: every key it ever asks for, in every type. */
static const char *const node_keys[] = {
    "id", "target", "service", "count", "force", "type", "patterns", "subscription", "delivery", "pid",
    "methods", "endpoint", "instance", "group", "broadcast", "prefetch", "stream", "from", "headers", "body",
    "source", "delay_ms", "backlog", "follow", "services", "trace", "level", "grep", "limit", "received",
    "name", "params", "help", "trace_id", "message",
};

static void read_fields(const msgpack_object *body)
{
    for (size_t i = 0; i < sizeof node_keys / sizeof node_keys[0]; i++) {
        const char *k = node_keys[i];
        const msgpack_object *v = wire_map_get(body, k);
        int64_t n;
        double d;
        char small[65], big[4097];
        int ri = wire_get_int(body, k, &n);
        int rd = wire_get_double(body, k, &d);
        int rs = wire_get_str(body, k, small, sizeof small);
        int rb = wire_get_str(body, k, big, sizeof big);
        FUZZ_CHECK(v || (ri < 0 && rd < 0 && rs < 0 && rb < 0), "accessor found '%s' that map_get did not", k);
        if (ri == 0)
            FUZZ_CHECK(rd == 0 && (double)n == d, "int %lld vs double %g for '%s'", (long long)n, d, k);
        if (rs == 0)
            FUZZ_CHECK(rb == 0 && v->type == MSGPACK_OBJECT_STR && v->via.str.size < sizeof small &&
                           memcmp(small, v->via.str.ptr, v->via.str.size) == 0 && small[v->via.str.size] == '\0' &&
                           memcmp(small, big, v->via.str.size + 1) == 0,
                       "string '%s' read differently", k);
        if (rb == 0 && v->via.str.size < sizeof small)
            FUZZ_CHECK(rs == 0, "'%s' fits but was refused", k);
    }
    /* Keys present in the body, looked up by their own name. */
    for (uint32_t i = 0; i < body->via.map.size; i++) {
        const msgpack_object *key = &body->via.map.ptr[i].key;
        char name[64];
        if (key->type != MSGPACK_OBJECT_STR || key->via.str.size == 0 || key->via.str.size >= sizeof name ||
            memchr(key->via.str.ptr, '\0', key->via.str.size))
            continue;
        memcpy(name, key->via.str.ptr, key->via.str.size);
        name[key->via.str.size] = '\0';
        const msgpack_object *v = wire_map_get(body, name);
        FUZZ_CHECK(v != NULL, "key '%s' present but not found", name);
    }
}

static void json_bridge(const msgpack_object *obj)
{
    json_t *j = msgjson_to_json(obj);
    if (!j)
        return; /* nested deeper than the limit */
    char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    free(text);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (msgjson_pack(&pk, j) == 0) {
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        size_t off = 0;
        FUZZ_CHECK(msgpack_unpack_next(&up, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS && off == sb.size,
                   "msgjson_pack wrote something that does not unpack");
        msgpack_unpacked_destroy(&up);
    }
    msgpack_sbuffer_destroy(&sb);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_sockets_open(&fs, "wire");
    if (size == 0)
        return 0;
    struct fuzz_route route = fuzz_send_input(&fs, data, size);
    void *tx = route.tx, *rx = route.rx;
    int routed = route.routed;

    struct wire_msg msg;
    char err[256] = "";
    enum wire_recv_result rc = wire_recv(rx, routed, &msg, err, sizeof err);
    FUZZ_CHECK(rc == WIRE_OK || rc == WIRE_MALFORMED || rc == WIRE_OTHER_VERSION, "wire_recv returned %d (%s)",
               (int)rc, err);
    FUZZ_CHECK(!fuzz_rcvmore(rx), "wire_recv left frames of the message unread (rc %d, %s)", (int)rc, err);
    struct wire_msg next;
    FUZZ_CHECK(wire_recv(rx, routed, &next, err, sizeof err) == WIRE_AGAIN, "a second message appeared");
    if (rc == WIRE_MALFORMED) {
        FUZZ_CHECK(err[0] != '\0' && msg.body == NULL, "malformed without a reason, or with a body");
        return 0;
    }

    size_t vl = strlen(msg.version);
    FUZZ_CHECK(vl >= 1 && vl <= WIRE_VERSION_MAX && msg.version[0] != '0', "version of %zu bytes", vl);
    FUZZ_CHECK(strspn(msg.version, "0123456789") == vl, "version '%s' is not decimal", msg.version);
    FUZZ_CHECK((rc == WIRE_OK) == (strcmp(msg.version, WIRE_VERSION) == 0), "version %s with rc %d", msg.version,
               (int)rc);
    size_t tl = strlen(msg.type);
    FUZZ_CHECK(tl >= 1 && tl <= WIRE_TYPE_MAX, "type of %zu bytes", tl);
    for (size_t i = 0; i < tl; i++)
        FUZZ_CHECK(msg.type[i] >= 0x21 && msg.type[i] <= 0x7e, "type byte 0x%02x", (unsigned char)msg.type[i]);
    FUZZ_CHECK(msg.body && msg.body->type == MSGPACK_OBJECT_MAP, "body is not a map");
    read_fields(msg.body);
    json_bridge(msg.body);

    /* What was accepted goes back out and must decode the same: [identity] 1 type body. */
    const char *body = zmq_msg_data(&msg.body_frame);
    size_t body_len = zmq_msg_size(&msg.body_frame);
    FUZZ_CHECK(wire_send(rx, routed ? msg.identity : NULL, msg.identity_len, msg.type, body, body_len, 0) == 0,
               "wire_send back failed");
    struct wire_msg back;
    FUZZ_CHECK(wire_recv(tx, 0, &back, err, sizeof err) == WIRE_OK, "re-sent message is malformed: %s", err);
    FUZZ_CHECK(strcmp(back.type, msg.type) == 0, "type changed");
    FUZZ_CHECK(zmq_msg_size(&back.body_frame) == body_len &&
                   memcmp(zmq_msg_data(&back.body_frame), body, body_len) == 0,
               "body changed");
    wire_msg_free(&back);
    wire_msg_free(&msg);
    return 0;
}
