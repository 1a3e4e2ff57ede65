/* Unit tests for parked messages: real messages over an inproc ROUTER, taken and given back,
 * must read as they did when received (strings, nesting, the bytes wire_value_bytes finds),
 * whether the body lives inside the zmq_msg_t (up to 33 bytes) or outside it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "node/parkedmsg.h"

struct pair {
    void *ctx, *router, *dealer;
};

static int setup(void **state)
{
    static struct pair p;
    p.ctx = zmq_ctx_new();
    p.router = zmq_socket(p.ctx, ZMQ_ROUTER);
    p.dealer = zmq_socket(p.ctx, ZMQ_DEALER);
    if (zmq_bind(p.router, "inproc://parkedmsg") < 0 || zmq_connect(p.dealer, "inproc://parkedmsg") < 0)
        return -1;
    *state = &p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;
    int linger = 0;
    zmq_setsockopt(p->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(p->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(p->dealer);
    zmq_close(p->router);
    zmq_ctx_term(p->ctx);
    return 0;
}

/* Sends body from the dealer and receives it at the router, decoded. */
static void roundtrip(struct pair *p, const char *type, const struct wire_body *body, struct wire_msg *msg)
{
    assert_int_equal(wire_send(p->dealer, NULL, 0, type, body->sbuf.data, body->sbuf.size, 0), 0);
    zmq_pollitem_t item = {.socket = p->router, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&item, 1, 5000), 1);
    char err[160];
    assert_int_equal(wire_recv(p->router, 1, msg, err, sizeof err), WIRE_OK);
}

static void pack_kv_bin(msgpack_packer *pk, const char *key, const char *data, size_t len)
{
    wire_pack_str(pk, key);
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, data, len);
}

/* {id: 7, type: "q.evt", body: {n: [1, "two", {deep: "x"}], blob: bin, ext: ext}, pad: ...} */
static void pack_nested(struct wire_body *b, size_t pad_len)
{
    char pad[512];
    memset(pad, 'p', sizeof pad);
    msgpack_pack_map(&b->pk, 4);
    wire_pack_kv_int(&b->pk, "id", 7);
    wire_pack_kv_str(&b->pk, "type", "q.evt");
    wire_pack_str(&b->pk, "body");
    msgpack_pack_map(&b->pk, 3);
    wire_pack_str(&b->pk, "n");
    msgpack_pack_array(&b->pk, 3);
    msgpack_pack_int(&b->pk, 1);
    wire_pack_str(&b->pk, "two");
    msgpack_pack_map(&b->pk, 1);
    wire_pack_kv_str(&b->pk, "deep", "x");
    pack_kv_bin(&b->pk, "blob", "\0\1\2", 3);
    wire_pack_str(&b->pk, "ext");
    msgpack_pack_ext(&b->pk, 2, 5);
    msgpack_pack_ext_body(&b->pk, "\3\4", 2);
    wire_pack_str(&b->pk, "pad");
    wire_pack_strn(&b->pk, pad, pad_len);
}

static int within(const void *p, const struct wire_msg *msg)
{
    const char *frame = zmq_msg_data((zmq_msg_t *)&msg->body_frame);
    const char *c = p;
    return c >= frame && c <= frame + zmq_msg_size((zmq_msg_t *)&msg->body_frame);
}

static void check_nested(const struct wire_msg *msg, size_t pad_len)
{
    int64_t id;
    char type[32];
    assert_int_equal(wire_get_int(msg->body, "id", &id), 0);
    assert_int_equal(id, 7);
    assert_int_equal(wire_get_str(msg->body, "type", type, sizeof type), 0);
    assert_string_equal(type, "q.evt");
    const msgpack_object *body = wire_map_get(msg->body, "body");
    assert_non_null(body);
    const msgpack_object *n = wire_map_get(body, "n");
    assert_non_null(n);
    assert_int_equal(n->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(n->via.array.size, 3);
    assert_true(wire_str_eq(&n->via.array.ptr[1], "two"));
    assert_true(within(n->via.array.ptr[1].via.str.ptr, msg));
    char deep[8];
    assert_int_equal(wire_get_str(&n->via.array.ptr[2], "deep", deep, sizeof deep), 0);
    assert_string_equal(deep, "x");
    const msgpack_object *blob = wire_map_get(body, "blob");
    assert_int_equal(blob->type, MSGPACK_OBJECT_BIN);
    assert_memory_equal(blob->via.bin.ptr, "\0\1\2", 3);
    assert_true(within(blob->via.bin.ptr, msg));
    const msgpack_object *ext = wire_map_get(body, "ext");
    assert_int_equal(ext->type, MSGPACK_OBJECT_EXT);
    assert_int_equal(ext->via.ext.type, 5);
    assert_memory_equal(ext->via.ext.ptr, "\3\4", 2);
    const msgpack_object *pad = wire_map_get(msg->body, "pad");
    assert_int_equal(pad->via.str.size, pad_len);
    assert_true(within(pad->via.str.ptr, msg));
    /* The bus finds an event's packed body in the frame: it must still be there. */
    const char *bytes;
    size_t len;
    assert_int_equal(wire_value_bytes(msg, body, &bytes, &len), 0);
    assert_true(within(bytes, msg));
    msgpack_unpacked again;
    msgpack_unpacked_init(&again);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&again, bytes, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_true(msgpack_object_equal(again.data, *body));
    msgpack_unpacked_destroy(&again);
}

static void test_a_large_body_keeps_its_bytes_where_they_were(void **state)
{
    struct pair *p = *state;
    struct wire_body b;
    wire_body_init(&b);
    pack_nested(&b, 300);
    struct wire_msg msg;
    roundtrip(p, "emit", &b, &msg);
    const void *bytes = zmq_msg_data(&msg.body_frame);
    unsigned char routing[WIRE_IDENTITY_MAX];
    size_t routing_len = msg.identity_len;
    memcpy(routing, msg.identity, routing_len);

    struct parked_msg *pm = parked_msg_take(&msg);
    wire_msg_free(&msg); /* what take left: the first decode's zone */
    assert_ptr_equal(zmq_msg_data(&pm->body_frame), bytes); /* moved, not copied */
    assert_true(pm->bytes >= b.sbuf.size && pm->bytes < b.sbuf.size + 1024); /* not an 8 KiB zone */

    parked_msg_give(pm, routing, routing_len, &msg);
    assert_ptr_equal(zmq_msg_data(&msg.body_frame), bytes);
    assert_string_equal(msg.type, "emit");
    assert_string_equal(msg.version, WIRE_VERSION);
    assert_int_equal(msg.identity_len, routing_len);
    assert_memory_equal(msg.identity, routing, routing_len);
    assert_int_equal(zmq_msg_size(&msg.body_frame), b.sbuf.size);
    assert_memory_equal(zmq_msg_data(&msg.body_frame), b.sbuf.data, b.sbuf.size);
    check_nested(&msg, 300);
    wire_msg_free(&msg);
    wire_body_free(&b);
}

static void test_a_body_inside_the_frame_struct_is_pointed_at_again(void **state)
{
    struct pair *p = *state;
    struct wire_body b;
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 2);
    wire_pack_kv_int(&b.pk, "id", 3);
    wire_pack_kv_str(&b.pk, "name", "short");
    assert_true(b.sbuf.size <= 33); /* ZeroMQ keeps it inside zmq_msg_t */
    struct wire_msg msg;
    roundtrip(p, "ping", &b, &msg);
    struct parked_msg *pm = parked_msg_take(&msg);
    wire_msg_free(&msg);
    /* Overwrite the old place, as the stack frame of a later receive would. */
    memset(&msg, 0x5a, sizeof msg);
    const msgpack_object *name = wire_map_get(&pm->unpacked.data, "name");
    assert_true(name->via.str.ptr >= (const char *)&pm->body_frame &&
                name->via.str.ptr < (const char *)(&pm->body_frame + 1));

    parked_msg_give(pm, "\0abcd", 5, &msg);
    char value[16];
    int64_t id;
    assert_int_equal(wire_get_int(msg.body, "id", &id), 0);
    assert_int_equal(id, 3);
    assert_int_equal(wire_get_str(msg.body, "name", value, sizeof value), 0);
    assert_string_equal(value, "short");
    assert_true(within(wire_map_get(msg.body, "name")->via.str.ptr, &msg));
    wire_msg_free(&msg);
    wire_body_free(&b);
}

static void test_small_nested_and_empty_bodies(void **state)
{
    struct pair *p = *state;
    for (size_t pad = 0; pad < 3; pad++) {
        struct wire_body b;
        wire_body_init(&b);
        if (pad == 2) {
            msgpack_pack_map(&b.pk, 0);
        } else {
            pack_nested(&b, pad);
        }
        struct wire_msg msg;
        roundtrip(p, "emit", &b, &msg);
        struct parked_msg *pm = parked_msg_take(&msg);
        wire_msg_free(&msg);
        parked_msg_give(pm, "\0abcd", 5, &msg);
        if (pad == 2)
            assert_int_equal(msg.body->via.map.size, 0);
        else
            check_nested(&msg, pad);
        wire_msg_free(&msg);
        wire_body_free(&b);
    }
}

static void test_a_parked_message_dropped_unhandled_frees_everything(void **state)
{
    struct pair *p = *state;
    for (int i = 0; i < 2; i++) {
        struct wire_body b;
        wire_body_init(&b);
        pack_nested(&b, i ? 400 : 1);
        struct wire_msg msg;
        roundtrip(p, "emit", &b, &msg);
        struct parked_msg *pm = parked_msg_take(&msg);
        wire_msg_free(&msg);
        parked_msg_free(pm); /* a connection gone, or the node closing: ASan checks for leaks */
        wire_body_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_large_body_keeps_its_bytes_where_they_were),
        cmocka_unit_test(test_a_body_inside_the_frame_struct_is_pointed_at_again),
        cmocka_unit_test(test_small_nested_and_empty_bodies),
        cmocka_unit_test(test_a_parked_message_dropped_unhandled_frees_everything),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
