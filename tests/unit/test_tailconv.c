/* Unit tests for the sans-IO tail conversation: what it sends (request, acknowledgements every
 * second message, renewals once answered, untail), what it shows (lines in order, never one
 * twice), what it reports as skipped (count and skipped_seqs, clamped to what was shown), the
 * lossless hand-off after the node dropped a subscription, and its timers (answer timeout,
 * retry, node-gone grace). Messages are built the node's way, with tailwire_pack_line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"
#include "tail/tailconv.h"

/* ---------------------------------------------------------------- building node messages */

struct node_msg {
    msgpack_sbuffer sbuf;
    msgpack_unpacked up;
};

/* A `lines` (or `end` with lines == NULL) body: {id, lines?, skipped, skipped_seqs?, truncated?}.
 * seqs lists the lines' seqs (0 ends the list); first/last > 0 add skipped_seqs. */
static const msgpack_object *build(struct node_msg *m, int64_t id, const uint64_t *seqs, int64_t skipped,
                                   uint64_t first, uint64_t last, int truncated)
{
    msgpack_sbuffer_init(&m->sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &m->sbuf, msgpack_sbuffer_write);
    size_t n = 0;
    while (seqs && seqs[n])
        n++;
    msgpack_pack_map(&pk, 2 + (seqs ? 1 : 0) + (first ? 1 : 0) + (truncated >= 0 ? 1 : 0));
    wire_pack_kv_int(&pk, "id", id);
    wire_pack_kv_int(&pk, "skipped", skipped);
    if (first) {
        wire_pack_str(&pk, "skipped_seqs");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint64(&pk, first);
        msgpack_pack_uint64(&pk, last);
    }
    if (truncated >= 0)
        wire_pack_kv_bool(&pk, "truncated", truncated);
    if (seqs) {
        wire_pack_str(&pk, "lines");
        msgpack_pack_array(&pk, (uint32_t)n);
        struct strbuf line, scratch;
        strbuf_init(&line);
        strbuf_init(&scratch);
        for (size_t i = 0; i < n; i++) {
            char text[32];
            int len = snprintf(text, sizeof text, "line %llu", (unsigned long long)seqs[i]);
            struct log_line l = {.seq = seqs[i], .service = "Greeting", .instance = 0, .pid = 42,
                                 .text = text, .len = (size_t)len};
            strbuf_reset(&line);
            tailwire_pack_line(&line, &l, &scratch);
            msgpack_sbuffer_write(&m->sbuf, line.data, line.len);
        }
        strbuf_free(&line);
        strbuf_free(&scratch);
    }
    msgpack_unpacked_init(&m->up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&m->up, m->sbuf.data, m->sbuf.size, &off), MSGPACK_UNPACK_SUCCESS);
    return &m->up.data;
}

static const msgpack_object *build_error(struct node_msg *m, int64_t id, const char *message)
{
    msgpack_sbuffer_init(&m->sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &m->sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, message ? 2 : 1);
    wire_pack_kv_int(&pk, "id", id);
    if (message)
        wire_pack_kv_str(&pk, "message", message);
    msgpack_unpacked_init(&m->up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&m->up, m->sbuf.data, m->sbuf.size, &off), MSGPACK_UNPACK_SUCCESS);
    return &m->up.data;
}

static void node_msg_free(struct node_msg *m)
{
    msgpack_unpacked_destroy(&m->up);
    msgpack_sbuffer_destroy(&m->sbuf);
}

/* Feeds a `lines` message with the given seqs; the caller frees out and m. */
static int feed_lines(struct tailconv *c, struct node_msg *m, int64_t id, const uint64_t *seqs, int64_t skipped,
                      uint64_t first, uint64_t last, long long now, struct tailconv_out *out)
{
    return tailconv_feed(c, "lines", build(m, id, seqs, skipped, first, last, -1), now, out);
}

/* ---------------------------------------------------------------- reading what it sends */

struct sent {
    char type[32];
    msgpack_unpacked up;
    const msgpack_object *body;
};

static void sent_read(const struct tailconv_out *out, size_t i, struct sent *s)
{
    assert_true(i < out->send_count);
    snprintf(s->type, sizeof s->type, "%s", out->send[i].type);
    msgpack_unpacked_init(&s->up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&s->up, out->send[i].body.sbuf.data, out->send[i].body.sbuf.size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, out->send[i].body.sbuf.size);
    s->body = &s->up.data;
}

static int64_t sent_int(const struct sent *s, const char *key)
{
    int64_t v = -1;
    assert_int_equal(wire_get_int(s->body, key, &v), 0);
    return v;
}

/* The only message of out is a `tail_renew` acknowledging `received`, for subscription id. */
static void expect_renew(const struct tailconv_out *out, int64_t id, int64_t received)
{
    assert_int_equal(out->send_count, 1);
    struct sent s;
    sent_read(out, 0, &s);
    assert_string_equal(s.type, "tail_renew");
    assert_int_equal(sent_int(&s, "id"), id);
    assert_int_equal(sent_int(&s, "received"), received);
    msgpack_unpacked_destroy(&s.up);
}

/* The only message of out is a `tail` request; returns its id. */
static int64_t expect_request(const struct tailconv_out *out, int64_t backlog, int follow)
{
    assert_int_equal(out->send_count, 1);
    struct sent s;
    sent_read(out, 0, &s);
    assert_string_equal(s.type, "tail");
    int64_t id = sent_int(&s, "id");
    assert_int_equal(sent_int(&s, "backlog"), backlog);
    const msgpack_object *f = wire_map_get(s.body, "follow");
    assert_non_null(f);
    assert_int_equal(f->type, MSGPACK_OBJECT_BOOLEAN);
    assert_int_equal(f->via.boolean, follow);
    msgpack_unpacked_destroy(&s.up);
    return id;
}

static void expect_seqs(const struct tailconv_out *out, const uint64_t *seqs)
{
    size_t n = 0;
    while (seqs[n])
        n++;
    assert_int_equal(out->line_count, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(out->lines[i].line.seq, seqs[i]);
        assert_string_equal(out->lines[i].line.service, "Greeting");
        char text[32];
        int len = snprintf(text, sizeof text, "line %llu", (unsigned long long)seqs[i]);
        assert_int_equal(out->lines[i].line.len, (size_t)len);
        assert_memory_equal(out->lines[i].line.text, text, (size_t)len);
    }
}

/* ---------------------------------------------------------------- fixtures */

static const char *const services[] = {"Greeting"};
static const struct tail_request follow_req = {.backlog = 10, .follow = 1, .services = services, .service_count = 1};

/* A conversation started at t=0 whose first answer (lines 1..3) arrived at t=10. */
static void start_live(struct tailconv *c, int64_t *next_id, const struct tailconv_options *opts)
{
    tailconv_init(c, &follow_req, opts, next_id);
    struct tailconv_out out;
    tailconv_start(c, 0, &out);
    assert_int_equal(expect_request(&out, 10, 1), *next_id - 1);
    tailconv_out_free(&out);
    assert_int_equal(c->state, TAILCONV_ASKED);
    struct node_msg m;
    static const uint64_t seqs[] = {1, 2, 3, 0};
    assert_int_equal(feed_lines(c, &m, c->id, seqs, 0, 0, 0, 10, &out), 1);
    assert_int_equal(out.event, TAILCONV_EV_LINES);
    expect_seqs(&out, seqs);
    assert_int_equal(out.gap, 0);
    assert_int_equal(out.send_count, 0); /* one message: not yet acknowledged */
    tailconv_out_free(&out);
    node_msg_free(&m);
    assert_int_equal(c->state, TAILCONV_LIVE);
}

/* ---------------------------------------------------------------- tests */

static void test_request_ids_come_from_the_callers_counter(void **state)
{
    (void)state;
    int64_t next_id = 7;
    struct tailconv c;
    struct tailconv_options opts = {0};
    tailconv_init(&c, &follow_req, &opts, &next_id);
    assert_int_equal(c.state, TAILCONV_IDLE);
    assert_int_equal(tailconv_next_deadline(&c), -1);
    struct tailconv_out out;
    tailconv_start(&c, 100, &out);
    assert_int_equal(out.event, TAILCONV_EV_NONE);
    struct sent s;
    sent_read(&out, 0, &s);
    assert_string_equal(s.type, "tail");
    assert_int_equal(sent_int(&s, "id"), 7);
    const msgpack_object *sv = wire_map_get(s.body, "services");
    assert_non_null(sv);
    assert_int_equal(sv->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(sv->via.array.size, 1);
    assert_true(wire_str_eq(&sv->via.array.ptr[0], "Greeting"));
    msgpack_unpacked_destroy(&s.up);
    tailconv_out_free(&out);
    assert_int_equal(next_id, 8);
    assert_int_equal(c.id, 7);
    assert_true(tailconv_open(&c));
    /* Unanswered: nothing to renew, only the answer timeout to wait for. */
    assert_int_equal(tailconv_next_deadline(&c), 100 + TAILCONV_ANSWER_MS);
    tailconv_tick(&c, 1100, &out);
    assert_int_equal(out.send_count, 0);
    assert_int_equal(out.event, TAILCONV_EV_NONE);
    tailconv_free(&c);
}

static void test_acknowledges_every_second_message_and_renews_every_second(void **state)
{
    (void)state;
    int64_t next_id = 1;
    struct tailconv c;
    struct tailconv_options opts = {0};
    start_live(&c, &next_id, &opts);
    struct tailconv_out out;
    struct node_msg m;
    static const uint64_t s4[] = {4, 0}, s5[] = {5, 0}, s6[] = {6, 0}, none[] = {0};
    feed_lines(&c, &m, 1, s4, 0, 0, 0, 20, &out);
    expect_renew(&out, 1, 2);
    tailconv_out_free(&out);
    node_msg_free(&m);
    feed_lines(&c, &m, 1, s5, 0, 0, 0, 30, &out);
    assert_int_equal(out.send_count, 0);
    tailconv_out_free(&out);
    node_msg_free(&m);
    /* The renewal is due a second after the request and carries the count so far. */
    assert_int_equal(tailconv_next_deadline(&c), TAILCONV_RENEW_MS);
    tailconv_tick(&c, 999, &out);
    assert_int_equal(out.send_count, 0);
    tailconv_out_free(&out);
    tailconv_tick(&c, 1000, &out);
    expect_renew(&out, 1, 3);
    tailconv_out_free(&out);
    assert_int_equal(tailconv_next_deadline(&c), 2000);
    tailconv_tick(&c, 1500, &out);
    assert_int_equal(out.send_count, 0);
    tailconv_out_free(&out);
    /* An acknowledgement does not move the renewal; the count after it restarts at 0. */
    feed_lines(&c, &m, 1, s6, 0, 0, 0, 1600, &out);
    assert_int_equal(out.send_count, 0);
    tailconv_out_free(&out);
    node_msg_free(&m);
    feed_lines(&c, &m, 1, none, 0, 0, 0, 1700, &out);
    expect_renew(&out, 1, 5);
    assert_int_equal(out.line_count, 0);
    tailconv_out_free(&out);
    node_msg_free(&m);
    tailconv_tick(&c, 2000, &out);
    expect_renew(&out, 1, 5);
    tailconv_out_free(&out);
    tailconv_free(&c);
}

static void test_other_messages_are_not_its_own(void **state)
{
    (void)state;
    int64_t next_id = 1;
    struct tailconv c;
    struct tailconv_options opts = {0};
    start_live(&c, &next_id, &opts);
    struct tailconv_out out;
    struct node_msg m;
    static const uint64_t s9[] = {9, 0};
    /* Another id (a stale subscription, another request of the same client). */
    assert_int_equal(feed_lines(&c, &m, 99, s9, 0, 0, 0, 20, &out), 0);
    assert_int_equal(out.event, TAILCONV_EV_NONE);
    assert_int_equal(out.line_count, 0);
    assert_int_equal(out.send_count, 0);
    node_msg_free(&m);
    assert_int_equal(tailconv_feed(&c, "error", build_error(&m, 99, "not yours"), 20, &out), 0);
    node_msg_free(&m);
    /* Its id, but a type that is not of this conversation (untail's `ok`, `status`). */
    assert_int_equal(tailconv_feed(&c, "ok", build_error(&m, 1, NULL), 20, &out), 0);
    assert_int_equal(tailconv_feed(&c, "status", &m.up.data, 20, &out), 0);
    node_msg_free(&m);
    /* No id, or no body. */
    msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    assert_int_equal(tailconv_feed(&c, "lines", &nil, 20, &out), 0);
    assert_int_equal(tailconv_feed(&c, "lines", NULL, 20, &out), 0);
    assert_int_equal(c.state, TAILCONV_LIVE);
    assert_int_equal(c.received, 1);
    tailconv_free(&c);
}

static void test_lines_already_shown_are_left_out_and_bad_lines_dropped(void **state)
{
    (void)state;
    int64_t next_id = 1;
    struct tailconv c;
    struct tailconv_options opts = {0};
    start_live(&c, &next_id, &opts);
    struct tailconv_out out;
    struct node_msg m;
    static const uint64_t again[] = {2, 3, 4, 3, 5, 5, 0}, expect[] = {4, 5, 0};
    feed_lines(&c, &m, 1, again, 0, 0, 0, 20, &out);
    expect_seqs(&out, expect);
    tailconv_out_free(&out);
    node_msg_free(&m);
    assert_int_equal(c.last_seq, 5);

    /* A message with bad entries keeps the good ones; one whose `lines` is not a list is
     * reported malformed, and still counts for the acknowledgement. */
    msgpack_sbuffer_init(&m.sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &m.sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    wire_pack_kv_int(&pk, "id", 1);
    wire_pack_kv_str(&pk, "skipped", "many");
    wire_pack_str(&pk, "lines");
    msgpack_pack_array(&pk, 3);
    wire_pack_str(&pk, "not a map");
    msgpack_pack_map(&pk, 1);
    wire_pack_kv_str(&pk, "seq", "x");
    struct strbuf line, scratch;
    strbuf_init(&line);
    strbuf_init(&scratch);
    struct log_line good = {.seq = 6, .service = "Greeting", .text = "line 6", .len = 6};
    tailwire_pack_line(&line, &good, &scratch);
    msgpack_sbuffer_write(&m.sbuf, line.data, line.len);
    strbuf_free(&line);
    strbuf_free(&scratch);
    msgpack_unpacked_init(&m.up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&m.up, m.sbuf.data, m.sbuf.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(tailconv_feed(&c, "lines", &m.up.data, 30, &out), 1);
    static const uint64_t six[] = {6, 0};
    expect_seqs(&out, six);
    assert_int_equal(out.malformed, 0);
    assert_int_equal(out.gap, 0); /* "many" is no count */
    tailconv_out_free(&out);
    node_msg_free(&m);

    msgpack_sbuffer_init(&m.sbuf);
    msgpack_packer_init(&pk, &m.sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    wire_pack_kv_int(&pk, "id", 1);
    wire_pack_kv_str(&pk, "lines", "not a list");
    msgpack_unpacked_init(&m.up);
    off = 0;
    assert_int_equal(msgpack_unpack_next(&m.up, m.sbuf.data, m.sbuf.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(tailconv_feed(&c, "lines", &m.up.data, 40, &out), 1);
    assert_int_equal(out.event, TAILCONV_EV_LINES);
    assert_int_equal(out.malformed, 1);
    assert_int_equal(out.line_count, 0);
    expect_renew(&out, 1, 4);
    tailconv_out_free(&out);
    node_msg_free(&m);
    assert_int_equal(c.state, TAILCONV_LIVE);
    tailconv_free(&c);
}

static void test_skipped_with_and_without_seqs(void **state)
{
    (void)state;
    int64_t next_id = 1;
    struct tailconv c;
    struct tailconv_options opts = {0};
    start_live(&c, &next_id, &opts);
    struct tailconv_out out;
    struct node_msg m;
    /* 40 skipped, seqs 10..60 (the range may hold lines that did not match). */
    static const uint64_t after[] = {61, 62, 0};
    feed_lines(&c, &m, 1, after, 40, 10, 60, 20, &out);
    assert_int_equal(out.gap, 1);
    assert_int_equal(out.skipped, 40);
    assert_int_equal(out.gap_seqs_known, 1);
    assert_int_equal(out.gap_first, 10);
    assert_int_equal(out.gap_last, 60);
    expect_seqs(&out, after);
    tailconv_out_free(&out);
    node_msg_free(&m);
    /* The node's range may reach back before the last line it sent: it starts after it. */
    static const uint64_t none[] = {0};
    feed_lines(&c, &m, 1, none, 5, 50, 70, 30, &out);
    assert_int_equal(out.gap_first, 63);
    assert_int_equal(out.gap_last, 70);
    tailconv_out_free(&out);
    node_msg_free(&m);
    assert_int_equal(c.last_seq, 70); /* handed off: those seqs are the caller's now */
    /* A range entirely shown already: known, and empty. */
    feed_lines(&c, &m, 1, none, 2, 65, 68, 40, &out);
    assert_int_equal(out.gap, 1);
    assert_int_equal(out.gap_seqs_known, 1);
    assert_true(out.gap_first > out.gap_last);
    tailconv_out_free(&out);
    node_msg_free(&m);
    /* An older node without skipped_seqs: a count only. */
    static const uint64_t s80[] = {80, 0};
    feed_lines(&c, &m, 1, s80, 7, 0, 0, 50, &out);
    assert_int_equal(out.gap, 1);
    assert_int_equal(out.skipped, 7);
    assert_int_equal(out.gap_seqs_known, 0);
    expect_seqs(&out, s80);
    tailconv_out_free(&out);
    node_msg_free(&m);
    /* A reversed range is no range. */
    feed_lines(&c, &m, 1, none, 3, 90, 85, 60, &out);
    assert_int_equal(out.gap, 1);
    assert_int_equal(out.gap_seqs_known, 0);
    tailconv_out_free(&out);
    node_msg_free(&m);
    tailconv_free(&c);
}

static void test_error_before_an_answer_fails(void **state)
{
    (void)state;
    int64_t next_id = 1;
    struct tailconv c;
    struct tailconv_options opts = {.resume = 1};
    tailconv_init(&c, &follow_req, &opts, &next_id);
    struct tailconv_out out;
    tailconv_start(&c, 0, &out);
    tailconv_out_free(&out);
    struct node_msg m;
    assert_int_equal(tailconv_feed(&c, "error", build_error(&m, 1, "tail: bad regex"), 5, &out), 1);
    assert_int_equal(out.event, TAILCONV_EV_FAILED);
    assert_string_equal(out.error, "tail: bad regex");
    assert_int_equal(out.send_count, 0);
    node_msg_free(&m);
    assert_int_equal(c.state, TAILCONV_FAILED);
    assert_false(tailconv_open(&c));
    /* Over: no renewal, no untail, nothing more taken. */
    tailconv_tick(&c, 10000, &out);
    assert_int_equal(out.send_count, 0);
    tailconv_stop(&c, &out);
    assert_int_equal(out.send_count, 0);
    static const uint64_t s1[] = {1, 0};
    assert_int_equal(feed_lines(&c, &m, 1, s1, 0, 0, 0, 20, &out), 0);
    node_msg_free(&m);

    tailconv_start(&c, 0, &out);
    tailconv_out_free(&out);
    assert_int_equal(tailconv_feed(&c, "error", build_error(&m, 2, NULL), 5, &out), 1);
    assert_string_equal(out.error, "(no message)");
    node_msg_free(&m);
    tailconv_free(&c);
}

static void test_dropped_subscription_resumes_with_a_new_id(void **state)
{
    (void)state;
    int64_t next_id = 1;
    struct tailconv c;
    struct tailconv_options opts = {.resume = 1, .resume_backlog = 0};
    start_live(&c, &next_id, &opts);
    struct tailconv_out out;
    struct node_msg m;
    assert_int_equal(tailconv_feed(&c, "error", build_error(&m, 1, "tail_renew: unknown subscription"), 9000,
                                   &out),
                     1);
    node_msg_free(&m);
    assert_int_equal(out.event, TAILCONV_EV_RESUMED);
    assert_int_equal(expect_request(&out, 0, 1), 2);
    tailconv_out_free(&out);
    assert_int_equal(c.state, TAILCONV_ASKED);
    assert_int_equal(c.received, 0);
    /* The old subscription's last batch is not ours any more. */
    static const uint64_t late[] = {4, 0};
    assert_int_equal(feed_lines(&c, &m, 1, late, 0, 0, 0, 9001, &out), 0);
    node_msg_free(&m);
    /* Lossy: the new subscription's skipped count is reported as it is. */
    static const uint64_t fresh[] = {3, 50, 0}, shown[] = {50, 0};
    feed_lines(&c, &m, 2, fresh, 4, 45, 49, 9002, &out);
    expect_seqs(&out, shown);
    assert_int_equal(out.gap, 1);
    assert_int_equal(out.skipped, 4);
    tailconv_out_free(&out);
    node_msg_free(&m);
    /* Without resume, a dropped live subscription ends the conversation. */
    struct tailconv d;
    struct tailconv_options no_resume = {0};
    start_live(&d, &next_id, &no_resume);
    assert_int_equal(tailconv_feed(&d, "error", build_error(&m, d.id, "gone"), 9000, &out), 1);
    assert_int_equal(out.event, TAILCONV_EV_FAILED);
    assert_int_equal(out.send_count, 0);
    node_msg_free(&m);
    tailconv_free(&c);
    tailconv_free(&d);
}

/* devnode tail off a terminal: resubscribe for the whole ring, show only what is new, and hand
 * the seqs between the last line shown and the ring's first unseen line to the log files. */
static void test_lossless_resume_hands_the_gap_to_the_log_files(void **state)
{
    (void)state;
    int64_t next_id = 1;
    struct tailconv c;
    struct tailconv_options opts = {.resume = 1, .resume_backlog = INT64_MAX, .resume_gap = 1};
    start_live(&c, &next_id, &opts);
    struct tailconv_out out;
    struct node_msg m;
    static const uint64_t more[] = {4, 5, 0};
    feed_lines(&c, &m, 1, more, 0, 0, 0, 20, &out);
    tailconv_out_free(&out);
    node_msg_free(&m);
    tailconv_feed(&c, "error", build_error(&m, 1, "unknown subscription"), 9000, &out);
    node_msg_free(&m);
    assert_int_equal(out.event, TAILCONV_EV_RESUMED);
    assert_int_equal(expect_request(&out, INT64_MAX, 1), 2);
    tailconv_out_free(&out);
    assert_int_equal(c.resume_from, 6);
    /* The new request refused (unanswered yet): that ends it, as any refusal does. */
    tailconv_feed(&c, "error", build_error(&m, 2, "tail: no answer"), 9001, &out);
    node_msg_free(&m);
    assert_int_equal(out.event, TAILCONV_EV_FAILED); /* unanswered yet: a refusal */
    tailconv_out_free(&out);
    tailconv_free(&c);

    start_live(&c, &next_id, &opts);
    int64_t first_id = c.id;
    tailconv_feed(&c, "error", build_error(&m, first_id, "unknown subscription"), 9000, &out);
    node_msg_free(&m);
    int64_t id = c.id;
    tailconv_out_free(&out);
    /* The ring's oldest lines were shown already, and their message's skipped count is the
     * ring's business, not ours: no gap yet. */
    static const uint64_t old[] = {2, 3, 0};
    feed_lines(&c, &m, id, old, 9, 1, 9, 9010, &out);
    assert_int_equal(out.line_count, 0);
    assert_int_equal(out.gap, 0);
    tailconv_out_free(&out);
    node_msg_free(&m);
    /* The first new line: seqs 4..19 lie between. */
    static const uint64_t new_lines[] = {3, 20, 21, 0}, expect[] = {20, 21, 0};
    feed_lines(&c, &m, id, new_lines, 2, 17, 18, 9020, &out);
    assert_int_equal(out.gap, 1);
    assert_int_equal(out.skipped, 0);
    assert_int_equal(out.gap_seqs_known, 1);
    assert_int_equal(out.gap_first, 4);
    assert_int_equal(out.gap_last, 19);
    expect_seqs(&out, expect);
    tailconv_out_free(&out);
    node_msg_free(&m);
    assert_int_equal(c.resume_from, 0);
    /* After that, skipped counts are reported again. */
    static const uint64_t s30[] = {30, 0};
    feed_lines(&c, &m, id, s30, 3, 25, 29, 9030, &out);
    assert_int_equal(out.skipped, 3);
    assert_int_equal(out.gap_first, 25);
    tailconv_out_free(&out);
    node_msg_free(&m);
    /* No gap when the ring still held the next line. */
    tailconv_feed(&c, "error", build_error(&m, id, "unknown subscription"), 19000, &out);
    node_msg_free(&m);
    id = c.id;
    tailconv_out_free(&out);
    static const uint64_t next[] = {29, 30, 31, 0}, only[] = {31, 0};
    feed_lines(&c, &m, id, next, 0, 0, 0, 19010, &out);
    assert_int_equal(out.gap, 1);
    assert_true(out.gap_first > out.gap_last);
    expect_seqs(&out, only);
    tailconv_out_free(&out);
    node_msg_free(&m);
    tailconv_free(&c);
}

static void test_end_reports_truncated_and_skipped(void **state)
{
    (void)state;
    int64_t next_id = 1;
    struct tail_request trace = {.backlog = INT64_MAX, .trace = "abc"};
    struct tailconv c;
    struct tailconv_options opts = {0};
    tailconv_init(&c, &trace, &opts, &next_id);
    struct tailconv_out out;
    tailconv_start(&c, 0, &out);
    assert_int_equal(expect_request(&out, INT64_MAX, 0), 1);
    tailconv_out_free(&out);
    struct node_msg m;
    static const uint64_t some[] = {5, 8, 0};
    feed_lines(&c, &m, 1, some, 0, 0, 0, 10, &out);
    tailconv_out_free(&out);
    node_msg_free(&m);
    assert_int_equal(tailconv_feed(&c, "end", build(&m, 1, NULL, 2, 7, 12, 1), 20, &out), 1);
    assert_int_equal(out.event, TAILCONV_EV_END);
    assert_int_equal(out.truncated, 1);
    assert_int_equal(out.gap, 1);
    assert_int_equal(out.skipped, 2);
    assert_int_equal(out.gap_first, 9);
    assert_int_equal(out.gap_last, 12);
    assert_int_equal(out.send_count, 0);
    tailconv_out_free(&out);
    node_msg_free(&m);
    assert_int_equal(c.state, TAILCONV_ENDED);
    assert_int_equal(tailconv_next_deadline(&c), -1);
    tailconv_stop(&c, &out);
    assert_int_equal(out.send_count, 0); /* nothing to untail */
    /* Started again (the dashboard's next trace): a new id, and lines compared afresh. */
    tailconv_start(&c, 100, &out);
    assert_int_equal(expect_request(&out, INT64_MAX, 0), 2);
    tailconv_out_free(&out);
    static const uint64_t low[] = {1, 2, 0};
    feed_lines(&c, &m, 2, low, 0, 0, 0, 110, &out);
    expect_seqs(&out, low);
    tailconv_out_free(&out);
    node_msg_free(&m);
    assert_int_equal(tailconv_feed(&c, "end", build(&m, 2, NULL, 0, 0, 0, 0), 120, &out), 1);
    assert_int_equal(out.truncated, 0);
    assert_int_equal(out.gap, 0);
    node_msg_free(&m);
    tailconv_free(&c);
}

static void test_stop_untails_what_is_open(void **state)
{
    (void)state;
    int64_t next_id = 3;
    struct tailconv c;
    struct tailconv_options opts = {0};
    tailconv_init(&c, &follow_req, &opts, &next_id);
    struct tailconv_out out;
    tailconv_stop(&c, &out);
    assert_int_equal(out.send_count, 0);
    tailconv_start(&c, 0, &out);
    tailconv_out_free(&out);
    tailconv_stop(&c, &out); /* asked, not answered yet: the node may still start it */
    assert_int_equal(out.send_count, 1);
    struct sent s;
    sent_read(&out, 0, &s);
    assert_string_equal(s.type, "untail");
    assert_int_equal(sent_int(&s, "id"), 3);
    assert_int_equal(s.body->via.map.size, 1);
    msgpack_unpacked_destroy(&s.up);
    tailconv_out_free(&out);
    assert_int_equal(c.state, TAILCONV_IDLE);
    tailconv_stop(&c, &out);
    assert_int_equal(out.send_count, 0);
    tailconv_free(&c);
}

static void test_unanswered_request_fails_or_is_asked_again(void **state)
{
    (void)state;
    int64_t next_id = 1;
    struct tailconv c;
    struct tailconv_options opts = {0};
    tailconv_init(&c, &follow_req, &opts, &next_id);
    struct tailconv_out out;
    tailconv_start(&c, 1000, &out);
    tailconv_out_free(&out);
    tailconv_tick(&c, 1000 + TAILCONV_ANSWER_MS - 1, &out);
    assert_int_equal(out.event, TAILCONV_EV_NONE);
    tailconv_tick(&c, 1000 + TAILCONV_ANSWER_MS, &out);
    assert_int_equal(out.event, TAILCONV_EV_FAILED);
    assert_string_equal(out.error, "the node did not answer the tail request within 5000 ms");
    assert_int_equal(out.send_count, 0);
    tailconv_free(&c);

    struct tailconv_options retry = {.retry_unanswered = 1, .resume = 1};
    tailconv_init(&c, &follow_req, &retry, &next_id);
    tailconv_start(&c, 0, &out);
    tailconv_out_free(&out);
    int64_t first = c.id;
    tailconv_tick(&c, TAILCONV_ANSWER_MS, &out);
    assert_int_equal(out.event, TAILCONV_EV_RETRIED);
    assert_int_equal(expect_request(&out, 10, 1), first + 1);
    tailconv_out_free(&out);
    assert_int_equal(tailconv_next_deadline(&c), 2 * TAILCONV_ANSWER_MS);
    /* An answer to the first request comes too late to count. */
    struct node_msg m;
    static const uint64_t s1[] = {1, 0};
    assert_int_equal(feed_lines(&c, &m, first, s1, 0, 0, 0, 6000, &out), 0);
    node_msg_free(&m);
    assert_int_equal(c.state, TAILCONV_ASKED);
    tailconv_free(&c);
}

static void test_node_gone_fails_unless_end_arrives_within_the_grace(void **state)
{
    (void)state;
    int64_t next_id = 1;
    struct tailconv c;
    struct tailconv_options opts = {.resume = 1};
    start_live(&c, &next_id, &opts);
    struct tailconv_out out;
    tailconv_tick(&c, 1900, &out);
    expect_renew(&out, c.id, 1);
    tailconv_out_free(&out);
    tailconv_node_gone(&c, 2000);
    tailconv_node_gone(&c, 2100); /* the first look counts */
    assert_int_equal(tailconv_next_deadline(&c), 2000 + TAILCONV_GONE_GRACE_MS);
    tailconv_tick(&c, 2000 + TAILCONV_GONE_GRACE_MS - 1, &out);
    assert_int_equal(out.event, TAILCONV_EV_NONE);
    tailconv_out_free(&out);
    tailconv_tick(&c, 2000 + TAILCONV_GONE_GRACE_MS, &out);
    assert_int_equal(out.event, TAILCONV_EV_FAILED);
    assert_string_equal(out.error, "the node is gone");
    tailconv_free(&c);

    start_live(&c, &next_id, &opts);
    tailconv_node_gone(&c, 2000);
    struct node_msg m;
    assert_int_equal(tailconv_feed(&c, "end", build(&m, c.id, NULL, 0, 0, 0, 0), 2100, &out), 1);
    assert_int_equal(out.event, TAILCONV_EV_END);
    node_msg_free(&m);
    tailconv_tick(&c, 5000, &out);
    assert_int_equal(out.event, TAILCONV_EV_NONE);
    tailconv_free(&c);
}

static void test_forget_seqs_for_another_node(void **state)
{
    (void)state;
    int64_t next_id = 1;
    struct tailconv c;
    struct tailconv_options opts = {.resume = 1, .resume_backlog = 5000};
    start_live(&c, &next_id, &opts);
    struct tailconv_out out;
    struct node_msg m;
    tailconv_forget_seqs(&c);
    static const uint64_t restart[] = {1, 2, 0};
    feed_lines(&c, &m, c.id, restart, 0, 0, 0, 20, &out);
    expect_seqs(&out, restart);
    tailconv_out_free(&out);
    node_msg_free(&m);
    tailconv_free(&c);
}

static void test_many_lines_grow_the_decoded_array(void **state)
{
    (void)state;
    int64_t next_id = 1;
    struct tailconv c;
    struct tailconv_options opts = {0};
    start_live(&c, &next_id, &opts);
    uint64_t *seqs = calloc(1025, sizeof *seqs);
    assert_non_null(seqs);
    for (size_t i = 0; i < 1024; i++)
        seqs[i] = 100 + i;
    struct tailconv_out out;
    struct node_msg m;
    feed_lines(&c, &m, c.id, seqs, 0, 0, 0, 20, &out);
    expect_seqs(&out, seqs);
    tailconv_out_free(&out);
    node_msg_free(&m);
    free(seqs);
    tailconv_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_ids_come_from_the_callers_counter),
        cmocka_unit_test(test_acknowledges_every_second_message_and_renews_every_second),
        cmocka_unit_test(test_other_messages_are_not_its_own),
        cmocka_unit_test(test_lines_already_shown_are_left_out_and_bad_lines_dropped),
        cmocka_unit_test(test_skipped_with_and_without_seqs),
        cmocka_unit_test(test_error_before_an_answer_fails),
        cmocka_unit_test(test_dropped_subscription_resumes_with_a_new_id),
        cmocka_unit_test(test_lossless_resume_hands_the_gap_to_the_log_files),
        cmocka_unit_test(test_end_reports_truncated_and_skipped),
        cmocka_unit_test(test_stop_untails_what_is_open),
        cmocka_unit_test(test_unanswered_request_fails_or_is_asked_again),
        cmocka_unit_test(test_node_gone_fails_unless_end_arrives_within_the_grace),
        cmocka_unit_test(test_forget_seqs_for_another_node),
        cmocka_unit_test(test_many_lines_grow_the_decoded_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
