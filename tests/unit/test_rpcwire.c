/* test_rpcwire: lymph's RPC message codec (proto/rpcwire) over an inproc DEALER -> ROUTER pair:
 * round trips of every message type, and malformed frames that must be consumed whole and
 * reported, never crash or desynchronise the socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/rpcwire.h"

struct pair {
    void *ctx, *router, *dealer;
};

static int setup(void **state)
{
    static int n;
    struct pair *p = calloc(1, sizeof *p);
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://rpcwire-%d", n++);
    p->ctx = zmq_ctx_new();
    p->router = zmq_socket(p->ctx, ZMQ_ROUTER);
    p->dealer = zmq_socket(p->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(p->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(p->dealer, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(p->router, ep), 0);
    assert_int_equal(zmq_connect(p->dealer, ep), 0);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;
    zmq_close(p->router);
    zmq_close(p->dealer);
    zmq_ctx_term(p->ctx);
    free(p);
    return 0;
}

/* Waits (bounded) until sock has a message, so rpc_recv's non-blocking read finds it. */
static void wait_readable(void *sock)
{
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&item, 1, 2000), 1);
}

static void pack_headers(struct wire_body *h, const char *trace_id)
{
    wire_body_init(h);
    msgpack_pack_map(&h->pk, trace_id ? 1 : 0);
    if (trace_id)
        wire_pack_kv_str(&h->pk, "trace_id", trace_id);
}

static void send_frames(void *sock, const char *const *frames, const size_t *lens, int n)
{
    for (int i = 0; i < n; i++)
        assert_true(zmq_send(sock, frames[i], lens[i], i < n - 1 ? ZMQ_SNDMORE : 0) >= 0);
}

static void test_request_and_reply_round_trip(void **state)
{
    struct pair *p = *state;
    struct wire_body h, b;
    pack_headers(&h, "trace-1");
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 1);
    wire_pack_kv_str(&b.pk, "name", "joe");
    assert_int_equal(rpc_send(p->dealer, NULL, 0, "0123456789abcdef", RPC_REQ, "Greeting.greet", h.sbuf.data,
                              h.sbuf.size, b.sbuf.data, b.sbuf.size, 0), 0);

    wait_readable(p->router);
    struct rpc_msg req;
    char err[160];
    assert_int_equal(rpc_recv(p->router, 1, &req, err, sizeof err), WIRE_OK);
    assert_true(req.routing_len > 0);
    assert_string_equal(req.id, "0123456789abcdef");
    assert_int_equal(req.type, RPC_REQ);
    assert_string_equal(req.subject, "Greeting.greet");
    assert_string_equal(req.trace_id, "trace-1");
    char name[16];
    assert_int_equal(wire_get_str(req.body, "name", name, sizeof name), 0);
    assert_string_equal(name, "joe");

    /* The reply goes back through the routing id; its subject is the request's id. */
    struct wire_body r;
    wire_body_init(&r);
    wire_pack_str(&r.pk, "Hi, joe!");
    assert_int_equal(rpc_send(p->router, req.routing, req.routing_len, "fedcba9876543210", RPC_REP, req.id,
                              h.sbuf.data, h.sbuf.size, r.sbuf.data, r.sbuf.size, 0), 0);
    rpc_msg_free(&req);

    wait_readable(p->dealer);
    struct rpc_msg rep;
    assert_int_equal(rpc_recv(p->dealer, 0, &rep, err, sizeof err), WIRE_OK);
    assert_int_equal(rep.routing_len, 0);
    assert_int_equal(rep.type, RPC_REP);
    assert_string_equal(rep.subject, "0123456789abcdef");
    assert_true(wire_str_eq(rep.body, "Hi, joe!"));
    rpc_msg_free(&rep);
    rpc_msg_free(&rep); /* a second free is harmless */
    wire_body_free(&h);
    wire_body_free(&b);
    wire_body_free(&r);
}

static void test_every_type_round_trips(void **state)
{
    struct pair *p = *state;
    struct wire_body h, b;
    pack_headers(&h, NULL);
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 2);
    wire_pack_kv_str(&b.pk, "type", "ValueError");
    wire_pack_kv_str(&b.pk, "message", "no");
    for (int t = RPC_REQ; t <= RPC_ERROR; t++) {
        assert_int_equal(rpc_send(p->dealer, NULL, 0, "id1", (enum rpc_type)t, "S.m", h.sbuf.data, h.sbuf.size,
                                  b.sbuf.data, b.sbuf.size, 0), 0);
        wait_readable(p->router);
        struct rpc_msg m;
        char err[160];
        assert_int_equal(rpc_recv(p->router, 1, &m, err, sizeof err), WIRE_OK);
        assert_int_equal(m.type, t);
        assert_string_equal(m.trace_id, ""); /* no trace_id header */
        rpc_msg_free(&m);
    }
    assert_string_equal(rpc_type_name(RPC_NACK), "NACK");
    assert_string_equal(rpc_type_name((enum rpc_type)42), "?");
    wire_body_free(&h);
    wire_body_free(&b);
}

static void test_nothing_to_read_is_again(void **state)
{
    struct pair *p = *state;
    struct rpc_msg m;
    char err[160];
    assert_int_equal(rpc_recv(p->router, 1, &m, err, sizeof err), WIRE_AGAIN);
}

/* Sends a bad message followed by a good one: the bad one is reported MALFORMED and fully
 * consumed, so the good one is read intact right after. */
static void expect_malformed_then_ok(struct pair *p, const char *const *frames, const size_t *lens, int n,
                                     const char *why_part)
{
    send_frames(p->dealer, frames, lens, n);
    struct wire_body h, b;
    pack_headers(&h, "t");
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 0);
    assert_int_equal(rpc_send(p->dealer, NULL, 0, "good", RPC_REQ, "S.ok", h.sbuf.data, h.sbuf.size, b.sbuf.data,
                              b.sbuf.size, 0), 0);
    wait_readable(p->router);
    struct rpc_msg m;
    char err[160] = "";
    assert_int_equal(rpc_recv(p->router, 1, &m, err, sizeof err), WIRE_MALFORMED);
    assert_non_null(strstr(err, why_part));
    wait_readable(p->router);
    assert_int_equal(rpc_recv(p->router, 1, &m, err, sizeof err), WIRE_OK);
    assert_string_equal(m.id, "good");
    assert_string_equal(m.subject, "S.ok");
    rpc_msg_free(&m);
    wire_body_free(&h);
    wire_body_free(&b);
}

static const char map0[] = {(char)0x80}; /* msgpack {} */

static void test_unknown_type(void **state)
{
    const char *f[] = {"id", "HELLO", "S.m", map0, map0};
    size_t l[] = {2, 5, 3, 1, 1};
    expect_malformed_then_ok(*state, f, l, 5, "unknown message type");
}

static void test_too_few_frames(void **state)
{
    const char *f[] = {"id", "REQ", "S.m", map0};
    size_t l[] = {2, 3, 3, 1};
    expect_malformed_then_ok(*state, f, l, 4, "no body frame");
    const char *f2[] = {"id"};
    size_t l2[] = {2};
    expect_malformed_then_ok(*state, f2, l2, 1, "ends after its id");
}

static void test_extra_frames(void **state)
{
    const char *f[] = {"id", "REQ", "S.m", map0, map0, "extra", "more"};
    size_t l[] = {2, 3, 3, 1, 1, 5, 4};
    expect_malformed_then_ok(*state, f, l, 7, "extra frames");
}

static void test_bad_id_and_subject(void **state)
{
    char long_id[RPC_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id);
    const char *f[] = {long_id, "REQ", "S.m", map0, map0};
    size_t l[] = {sizeof long_id, 3, 3, 1, 1};
    expect_malformed_then_ok(*state, f, l, 5, "bad id frame");
    const char *f2[] = {"", "REQ", "S.m", map0, map0};
    size_t l2[] = {0, 3, 3, 1, 1};
    expect_malformed_then_ok(*state, f2, l2, 5, "bad id frame");
    const char *f3[] = {"id", "REQ", "S.\nm", map0, map0};
    size_t l3[] = {2, 3, 4, 1, 1};
    expect_malformed_then_ok(*state, f3, l3, 5, "bad subject frame");
}

static void test_headers_must_be_a_map_and_body_one_value(void **state)
{
    const char arr[] = {(char)0x90};             /* [] */
    const char truncated[] = {(char)0xa5, 'a'};  /* a str of 5 with 1 byte */
    const char two[] = {(char)0x01, (char)0x02}; /* two values */
    const char *f[] = {"id", "REQ", "S.m", arr, map0};
    size_t l[] = {2, 3, 3, 1, 1};
    expect_malformed_then_ok(*state, f, l, 5, "headers must be one msgpack map");
    const char *f2[] = {"id", "REQ", "S.m", map0, truncated};
    size_t l2[] = {2, 3, 3, 1, 2};
    expect_malformed_then_ok(*state, f2, l2, 5, "body one msgpack value");
    const char *f3[] = {"id", "REQ", "S.m", map0, two};
    size_t l3[] = {2, 3, 3, 1, 2};
    expect_malformed_then_ok(*state, f3, l3, 5, "body one msgpack value");
}

/* Found by tests/fuzz (fuzz_wire): a 5-byte map32 or array32 header announcing 4 billion
 * entries made msgpack-c allocate for all of them (tens of GB) before reading any. */
static void test_huge_announced_counts_are_malformed(void **state)
{
    const char map32[] = {(char)0xdf, (char)0xff, (char)0xff, (char)0xff, (char)0xff};
    const char array32[] = {(char)0xdd, (char)0xdf, (char)0xdf, (char)0xdf, (char)0xdf, 0x01};
    const char *f[] = {"id", "REQ", "S.m", map32, map0};
    size_t l[] = {2, 3, 3, sizeof map32, 1};
    expect_malformed_then_ok(*state, f, l, 5, "headers must be one msgpack map");
    const char *f2[] = {"id", "REQ", "S.m", map0, array32};
    size_t l2[] = {2, 3, 3, 1, sizeof array32};
    expect_malformed_then_ok(*state, f2, l2, 5, "body one msgpack value");
}

static void test_msgpack_check(void **state)
{
    (void)state;
    struct wire_body b;
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 3);
    wire_pack_kv_str(&b.pk, "s", "text");
    wire_pack_kv_double(&b.pk, "d", 1.5);
    wire_pack_str(&b.pk, "a");
    msgpack_pack_array(&b.pk, 3);
    msgpack_pack_int64(&b.pk, -(1LL << 40));
    msgpack_pack_bin(&b.pk, 2);
    msgpack_pack_bin_body(&b.pk, "\0\1", 2);
    msgpack_pack_ext(&b.pk, 1, 7);
    msgpack_pack_ext_body(&b.pk, "x", 1);
    assert_int_equal(wire_msgpack_check(b.sbuf.data, b.sbuf.size), 0);
    for (size_t cut = 0; cut < b.sbuf.size; cut++)
        assert_int_equal(wire_msgpack_check(b.sbuf.data, cut), -1);
    wire_body_free(&b);
    assert_int_equal(wire_msgpack_check("\x01\x02", 2), -1);  /* two values */
    assert_int_equal(wire_msgpack_check("\xc1", 1), -1);      /* never used */
    assert_int_equal(wire_msgpack_check("\x92\x01", 2), -1);  /* [1, ?] */
    assert_int_equal(wire_msgpack_check("\x92\x01\xc0", 3), 0);
}

/* A map value's packed bytes are found in the received frame as they came (the bus copies
 * event bodies that way), and a value that is not in the frame is refused. */
static void test_value_bytes_come_from_the_frame(void **state)
{
    (void)state;
    struct wire_body body, b;
    wire_body_init(&body);
    msgpack_pack_array(&body.pk, 3);
    msgpack_pack_int(&body.pk, 1);
    wire_pack_str(&body.pk, "x");
    msgpack_pack_map(&body.pk, 1);
    wire_pack_kv_str(&body.pk, "k", "v");
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 3);
    wire_pack_kv_int(&b.pk, "id", 1);
    wire_pack_str(&b.pk, "body");
    msgpack_sbuffer_write(&b.sbuf, body.sbuf.data, body.sbuf.size);
    wire_pack_str(&b.pk, "tail");
    msgpack_pack_nil(&b.pk);
    assert_int_equal(wire_msgpack_span(b.sbuf.data, b.sbuf.size), b.sbuf.size);
    assert_int_equal(wire_msgpack_span(b.sbuf.data, b.sbuf.size - 1), 0);

    struct wire_msg msg;
    memset(&msg, 0, sizeof msg);
    zmq_msg_init_size(&msg.body_frame, b.sbuf.size);
    memcpy(zmq_msg_data(&msg.body_frame), b.sbuf.data, b.sbuf.size);
    msgpack_unpacked_init(&msg.unpacked);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&msg.unpacked, zmq_msg_data(&msg.body_frame), b.sbuf.size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    msg.body = &msg.unpacked.data;
    const char *raw;
    size_t len;
    assert_int_equal(wire_value_bytes(&msg, wire_map_get(msg.body, "body"), &raw, &len), 0);
    assert_int_equal(len, body.sbuf.size);
    assert_memory_equal(raw, body.sbuf.data, len);
    assert_int_equal(wire_value_bytes(&msg, wire_map_get(msg.body, "tail"), &raw, &len), 0);
    assert_int_equal(len, 1);
    /* a map decoded from another buffer: its key is not in this frame */
    msgpack_unpacked other;
    msgpack_unpacked_init(&other);
    off = 0;
    msgpack_unpack_next(&other, b.sbuf.data, b.sbuf.size, &off);
    assert_int_equal(wire_value_bytes(&msg, wire_map_get(&other.data, "body"), &raw, &len), -1);
    msgpack_unpacked_destroy(&other);
    msgpack_unpacked_destroy(&msg.unpacked);
    zmq_msg_close(&msg.body_frame);
    wire_body_free(&b);
    wire_body_free(&body);
}

static void test_trace_id_header_that_is_not_a_string(void **state)
{
    struct pair *p = *state;
    struct wire_body h, b;
    wire_body_init(&h);
    msgpack_pack_map(&h.pk, 1);
    wire_pack_str(&h.pk, "trace_id");
    msgpack_pack_int(&h.pk, 7);
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 0);
    assert_int_equal(rpc_send(p->dealer, NULL, 0, "x", RPC_REQ, "S.m", h.sbuf.data, h.sbuf.size, b.sbuf.data,
                              b.sbuf.size, 0), 0);
    wait_readable(p->router);
    struct rpc_msg m;
    char err[160];
    assert_int_equal(rpc_recv(p->router, 1, &m, err, sizeof err), WIRE_OK);
    assert_string_equal(m.trace_id, "");
    rpc_msg_free(&m);
    wire_body_free(&h);
    wire_body_free(&b);
}

static void test_a_long_trace_id_keeps_its_first_64_bytes(void **state)
{
    struct pair *p = *state;
    struct wire_body h, b;
    char long_id[100];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    long_id[0] = 'a';
    pack_headers(&h, long_id);
    wire_body_init(&b);
    msgpack_pack_map(&b.pk, 0);
    assert_int_equal(rpc_send(p->dealer, NULL, 0, "x", RPC_REQ, "S.m", h.sbuf.data, h.sbuf.size, b.sbuf.data,
                              b.sbuf.size, 0), 0);
    wait_readable(p->router);
    struct rpc_msg m;
    char err[160];
    assert_int_equal(rpc_recv(p->router, 1, &m, err, sizeof err), WIRE_OK);
    assert_int_equal(strlen(m.trace_id), RPC_TRACE_ID_MAX);
    assert_memory_equal(m.trace_id, long_id, RPC_TRACE_ID_MAX);
    rpc_msg_free(&m);
    wire_body_free(&h);
    wire_body_free(&b);
}

static void test_ids_are_hex_and_distinct(void **state)
{
    char a[17], b[17], t[33];
    rpc_new_id(a);
    rpc_new_id(b);
    rpc_new_trace_id(t);
    assert_int_equal(strlen(a), 16);
    assert_int_equal(strlen(t), 32);
    assert_string_not_equal(a, b);
    assert_int_equal(strspn(t, "0123456789abcdef"), 32);
}

/* How a call's subject splits: the service up to the first dot; built-ins go as lymph.x. */
static void test_call_subject_split(void **state)
{
    (void)state;
    size_t n = 0;
    const char *s = "Greeting.greet";
    assert_ptr_equal(rpc_call_subject(s, &n), s);
    assert_int_equal(n, 8);
    s = "Greeting.lymph.ping";
    assert_string_equal(rpc_call_subject(s, &n), "lymph.ping");
    assert_int_equal(n, 8);
    assert_null(rpc_call_subject("Greeting", &n));
    assert_null(rpc_call_subject(".greet", &n));
    assert_null(rpc_call_subject("Greeting.", &n));
    assert_null(rpc_call_subject(NULL, &n));
    char long_subject[RPC_SUBJECT_MAX + 8];
    memset(long_subject, 'a', sizeof long_subject - 1);
    long_subject[sizeof long_subject - 1] = '\0';
    long_subject[3] = '.';
    assert_null(rpc_call_subject(long_subject, &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_and_reply_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_type_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_to_read_is_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_few_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extra_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_id_and_subject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_must_be_a_map_and_body_one_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_id_header_that_is_not_a_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_long_trace_id_keeps_its_first_64_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_announced_counts_are_malformed, setup, teardown),
        cmocka_unit_test(test_msgpack_check),
        cmocka_unit_test(test_ids_are_hex_and_distinct),
        cmocka_unit_test(test_call_subject_split),
        cmocka_unit_test(test_value_bytes_come_from_the_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
