/* Unit tests for logring: seq lookups, eviction by line count and by bytes (with arena wrap,
 * checked against a simple model), service interning, the trace index (walks, summaries,
 * eviction of summaries) and the eviction callback the tail server counts skips with. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/logring.h"

struct feeder {
    uint64_t seq;
    int64_t wall_ns;
};

/* Appends one line from a heap copy (freed right after) so a ring that kept a pointer into
 * the caller's buffer instead of copying fails under ASan. */
static void feed(struct logring *ring, struct feeder *f, const char *service, int instance, const char *trace,
                 enum log_level level, const char *text)
{
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, text, len + 1);
    char *svc = strdup(service);
    assert_non_null(svc);
    struct log_line line = {
        .seq = ++f->seq,
        .wall_ns = f->wall_ns += 1000000,
        .service = svc,
        .instance = instance,
        .pid = 100 + instance,
        .stream = LOG_STREAM_STDOUT,
        .level = level,
        .text = copy,
        .len = len,
    };
    if (trace)
        snprintf(line.trace_id, sizeof line.trace_id, "%s", trace);
    logring_append(ring, &line);
    memset(copy, 'X', len);
    free(copy);
    free(svc);
}

static void assert_line(const struct logring *ring, uint64_t seq, const char *service, const char *text)
{
    struct log_line out;
    assert_int_equal(logring_get(ring, seq, &out), 0);
    assert_int_equal(out.seq, seq);
    assert_string_equal(out.service, service);
    assert_int_equal(out.len, strlen(text));
    assert_memory_equal(out.text, text, out.len);
}

static void test_append_and_get(void **state)
{
    (void)state;
    struct logring ring;
    assert_int_equal(logring_init(&ring, 100, 16), 0);
    assert_true(logring_first_seq(&ring) > logring_last_seq(&ring));
    struct log_line out;
    assert_int_equal(logring_get(&ring, 1, &out), -1);

    struct feeder f = {0, 1000000000};
    feed(&ring, &f, "Web", 0, NULL, LOG_LEVEL_INFO, "GET /");
    feed(&ring, &f, "Greeting", 2, "t1", LOG_LEVEL_ERROR, "hi");
    feed(&ring, &f, "Web", 1, NULL, LOG_LEVEL_NONE, "");
    assert_int_equal(logring_first_seq(&ring), 1);
    assert_int_equal(logring_last_seq(&ring), 3);
    assert_line(&ring, 1, "Web", "GET /");
    assert_line(&ring, 2, "Greeting", "hi");
    assert_line(&ring, 3, "Web", "");
    assert_int_equal(logring_get(&ring, 2, &out), 0);
    assert_int_equal(out.instance, 2);
    assert_int_equal(out.pid, 102);
    assert_int_equal(out.level, LOG_LEVEL_ERROR);
    assert_string_equal(out.trace_id, "t1");
    assert_int_equal(out.wall_ns, 1002000000);
    assert_int_equal(logring_get(&ring, 3, &out), 0);
    assert_string_equal(out.trace_id, "");
    assert_int_equal(logring_get(&ring, 0, &out), -1);
    assert_int_equal(logring_get(&ring, 4, &out), -1);
    /* The same name is one interned id, whatever pointer the producer used. */
    assert_int_equal(logring_service_id(&ring, "Web"), logring_entry_at(&ring, 1)->service);
    assert_int_equal(logring_entry_at(&ring, 1)->service, logring_entry_at(&ring, 3)->service);
    assert_int_equal(logring_service_id(&ring, "Listen"), -1);
    logring_free(&ring);
}

struct evictions {
    uint64_t seqs[4096];
    size_t count;
    const struct logring *ring;
};

static void on_evict(void *ctx, uint64_t seq)
{
    struct evictions *ev = ctx;
    /* The line must still be readable while the callback runs. */
    struct log_line out;
    assert_int_equal(logring_get(ev->ring, seq, &out), 0);
    assert_int_equal(logring_first_seq(ev->ring), seq);
    ev->seqs[ev->count++] = seq;
}

static void test_evicts_by_line_count_in_order(void **state)
{
    (void)state;
    struct logring ring;
    assert_int_equal(logring_init(&ring, 10, 16), 0);
    struct evictions ev = {.ring = &ring};
    logring_set_evict_cb(&ring, on_evict, &ev);
    struct feeder f = {0, 0};
    char text[32];
    for (int i = 1; i <= 25; i++) {
        snprintf(text, sizeof text, "line %d", i);
        feed(&ring, &f, "S", 0, NULL, LOG_LEVEL_NONE, text);
    }
    assert_int_equal(logring_first_seq(&ring), 16);
    assert_int_equal(logring_last_seq(&ring), 25);
    assert_int_equal(ev.count, 15);
    for (size_t i = 0; i < ev.count; i++)
        assert_int_equal(ev.seqs[i], i + 1);
    for (int i = 16; i <= 25; i++) {
        snprintf(text, sizeof text, "line %d", i);
        assert_line(&ring, (uint64_t)i, "S", text);
    }
    assert_null(logring_entry_at(&ring, 15));
    assert_int_equal(ring.evicted_lines, 15);
    logring_free(&ring);
}

/* A pseudo-random mix of line sizes through a small arena: whatever the ring holds must be
 * exactly the newest lines, byte for byte, and it must hold as many as the bytes allow. */
static void test_byte_budget_and_wrap_match_a_model(void **state)
{
    (void)state;
    struct logring ring;
    /* 100 lines * 128 bytes is below the minimum: the arena is LOGRING_MIN_ARENA_BYTES. */
    assert_int_equal(logring_init(&ring, 100, 16), 0);
    assert_int_equal(ring.arena_bytes, LOGRING_MIN_ARENA_BYTES);
    struct feeder f = {0, 0};
    static char text[70000];
    uint32_t rnd = 12345;
    size_t lens[3000];
    for (int i = 0; i < 3000; i++) {
        rnd = rnd * 1103515245u + 12345u;
        size_t len = (rnd >> 8) % 5 == 0 ? 30000 + (rnd >> 4) % 35000 : (rnd >> 8) % 200;
        lens[i] = len;
        for (size_t k = 0; k < len; k++)
            text[k] = (char)('a' + (i + k) % 26);
        text[len] = '\0';
        feed(&ring, &f, "S", 0, i % 3 ? "tr" : NULL, LOG_LEVEL_NONE, text);
        assert_int_equal(logring_last_seq(&ring), (uint64_t)i + 1);
        /* everything held is intact */
        uint64_t held_bytes = 0;
        for (uint64_t seq = logring_first_seq(&ring); seq <= logring_last_seq(&ring); seq++) {
            struct log_line out;
            assert_int_equal(logring_get(&ring, seq, &out), 0);
            size_t li = (size_t)seq - 1;
            assert_int_equal(out.len, lens[li]);
            for (size_t k = 0; k < out.len; k += 97)
                assert_int_equal(out.text[k], (char)('a' + (li + k) % 26));
            assert_string_equal(out.trace_id, li % 3 ? "tr" : "");
            held_bytes += out.len;
        }
        assert_true(ring.count <= 100);
        assert_true(held_bytes <= ring.arena_bytes);
        /* Not evicting too eagerly: the next older line would not have fitted beside them. */
        uint64_t first = logring_first_seq(&ring);
        if (first > 1 && ring.count < 100)
            assert_true(held_bytes + lens[first - 2] + 2 * 65600 > ring.arena_bytes);
    }
    logring_free(&ring);
}

static void test_overlong_line_is_cut(void **state)
{
    (void)state;
    struct logring ring;
    assert_int_equal(logring_init(&ring, 10, 4), 0);
    size_t big = LOGRING_MIN_ARENA_BYTES;
    char *text = malloc(big + 1);
    assert_non_null(text);
    memset(text, 'z', big);
    text[big] = '\0';
    struct feeder f = {0, 0};
    feed(&ring, &f, "S", 0, "t", LOG_LEVEL_NONE, text);
    free(text);
    struct log_line out;
    assert_int_equal(logring_get(&ring, 1, &out), 0);
    assert_true(out.len < big && out.len > big / 4);
    assert_string_equal(out.trace_id, "t");
    logring_free(&ring);
}

static void test_gap_in_seqs_empties_the_ring(void **state)
{
    (void)state;
    struct logring ring;
    assert_int_equal(logring_init(&ring, 10, 4), 0);
    struct evictions ev = {.ring = &ring};
    logring_set_evict_cb(&ring, on_evict, &ev);
    struct feeder f = {0, 0};
    feed(&ring, &f, "S", 0, "t", LOG_LEVEL_NONE, "a");
    feed(&ring, &f, "S", 0, "t", LOG_LEVEL_NONE, "b");
    f.seq += 5; /* the ring never saw 3..7 */
    feed(&ring, &f, "S", 0, "t", LOG_LEVEL_NONE, "c");
    assert_int_equal(ev.count, 2);
    assert_int_equal(logring_first_seq(&ring), 8);
    assert_int_equal(logring_last_seq(&ring), 8);
    assert_line(&ring, 8, "S", "c");
    const struct logring_trace *t = logring_trace_find(&ring, "t");
    assert_non_null(t);
    uint64_t seqs[8];
    int complete;
    assert_int_equal(logring_trace_seqs(&ring, t, seqs, 8, &complete), 1);
    assert_int_equal(seqs[0], 8);
    assert_false(complete);
    logring_free(&ring);
}

static void test_trace_walk_and_summary(void **state)
{
    (void)state;
    struct logring ring;
    assert_int_equal(logring_init(&ring, 1000, 64), 0);
    struct feeder f = {0, 5000000000};
    feed(&ring, &f, "Web", 0, "abc", LOG_LEVEL_INFO, "GET /greet");          /* 1 */
    feed(&ring, &f, "Web", 1, NULL, LOG_LEVEL_INFO, "noise");                /* 2 */
    feed(&ring, &f, "Greeting", 2, "abc", LOG_LEVEL_INFO, "Saying hi");      /* 3 */
    feed(&ring, &f, "Greeting", 0, "other", LOG_LEVEL_INFO, "unrelated");    /* 4 */
    feed(&ring, &f, "Listen", 3, "abc", LOG_LEVEL_ERROR, "boom");            /* 5 */
    feed(&ring, &f, "Greeting", 1, "abc", LOG_LEVEL_INFO, "again");          /* 6 */
    feed(&ring, &f, "Web", 0, "abc", LOG_LEVEL_INFO, "200 OK");              /* 7 */

    const struct logring_trace *t = logring_trace_find(&ring, "abc");
    assert_non_null(t);
    assert_string_equal(t->id, "abc");
    assert_int_equal(t->lines, 5);
    assert_int_equal(t->first_ns, 5001000000);
    assert_int_equal(t->last_ns, 5007000000);
    assert_int_equal(t->newest_seq, 7);
    assert_true(t->error);
    assert_int_equal(t->service_count, 3);
    assert_string_equal(logring_service_name(&ring, t->services[0]), "Web");
    assert_string_equal(logring_service_name(&ring, t->services[1]), "Greeting");
    assert_string_equal(logring_service_name(&ring, t->services[2]), "Listen");

    uint64_t seqs[16];
    int complete = 0;
    size_t n = logring_trace_seqs(&ring, t, seqs, 16, &complete);
    assert_int_equal(n, 5);
    assert_true(complete);
    uint64_t want[] = {7, 6, 5, 3, 1};
    assert_memory_equal(seqs, want, sizeof want);
    /* a cap cuts the walk and says so */
    assert_int_equal(logring_trace_seqs(&ring, t, seqs, 2, &complete), 2);
    assert_false(complete);

    const struct logring_trace *o = logring_trace_find(&ring, "other");
    assert_non_null(o);
    assert_false(o->error);
    assert_int_equal(o->lines, 1);
    assert_null(logring_trace_find(&ring, "nope"));
    assert_null(logring_trace_find(&ring, ""));

    /* newest first by creation: "other" was first seen after "abc" */
    const struct logring_trace *list[8];
    assert_int_equal(logring_traces_newest(&ring, list, 8), 2);
    assert_ptr_equal(list[0], o);
    assert_ptr_equal(list[1], t);
    assert_int_equal(logring_traces_newest(&ring, list, 1), 1);
    logring_free(&ring);
}

static void test_trace_walk_stops_at_evicted_lines(void **state)
{
    (void)state;
    struct logring ring;
    assert_int_equal(logring_init(&ring, 10, 16), 0);
    struct feeder f = {0, 0};
    for (int i = 0; i < 30; i++)
        feed(&ring, &f, "S", 0, i % 2 ? "odd" : NULL, LOG_LEVEL_NONE, "x");
    const struct logring_trace *t = logring_trace_find(&ring, "odd");
    assert_non_null(t);
    assert_int_equal(t->lines, 15);
    uint64_t seqs[32];
    int complete = 1;
    size_t n = logring_trace_seqs(&ring, t, seqs, 32, &complete);
    assert_int_equal(n, 5); /* 22, 24, ..., 30 are held */
    assert_false(complete);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seqs[i], 30 - 2 * i);
    logring_free(&ring);
}

static void test_trace_summaries_are_bounded_lru(void **state)
{
    (void)state;
    struct logring ring;
    assert_int_equal(logring_init(&ring, 1000, 3), 0);
    struct feeder f = {0, 0};
    feed(&ring, &f, "S", 0, "a", LOG_LEVEL_NONE, "1");
    feed(&ring, &f, "S", 0, "b", LOG_LEVEL_NONE, "2");
    feed(&ring, &f, "S", 0, "c", LOG_LEVEL_NONE, "3");
    feed(&ring, &f, "S", 0, "a", LOG_LEVEL_NONE, "4"); /* a is now the most recently updated */
    feed(&ring, &f, "S", 0, "d", LOG_LEVEL_NONE, "5"); /* drops b, the least recently updated */
    assert_non_null(logring_trace_find(&ring, "a"));
    assert_null(logring_trace_find(&ring, "b"));
    assert_non_null(logring_trace_find(&ring, "c"));
    assert_non_null(logring_trace_find(&ring, "d"));
    assert_int_equal(ring.evicted_traces, 1);
    const struct logring_trace *list[8];
    assert_int_equal(logring_traces_newest(&ring, list, 8), 3);
    assert_string_equal(list[0]->id, "d");
    assert_string_equal(list[1]->id, "c");
    assert_string_equal(list[2]->id, "a");
    assert_int_equal(logring_trace_find(&ring, "a")->lines, 2);
    /* b comes back as a new trace, its walk not linked to its old lines */
    feed(&ring, &f, "S", 0, "b", LOG_LEVEL_NONE, "6");
    const struct logring_trace *b = logring_trace_find(&ring, "b");
    assert_non_null(b);
    assert_int_equal(b->lines, 1);
    uint64_t seqs[4];
    int complete;
    assert_int_equal(logring_trace_seqs(&ring, b, seqs, 4, &complete), 1);
    assert_true(complete);
    assert_null(logring_trace_find(&ring, "c"));
    /* Many traces through a small table: the hash chains stay consistent. */
    char id[16];
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "x%d", i);
        feed(&ring, &f, "S", 0, id, LOG_LEVEL_NONE, "y");
        assert_non_null(logring_trace_find(&ring, id));
    }
    assert_int_equal(ring.trace_count, 3);
    assert_non_null(logring_trace_find(&ring, "x497"));
    assert_null(logring_trace_find(&ring, "x496"));
    logring_free(&ring);
}

static void test_trace_service_list_is_capped(void **state)
{
    (void)state;
    struct logring ring;
    assert_int_equal(logring_init(&ring, 100, 4), 0);
    struct feeder f = {0, 0};
    char name[16];
    for (int i = 0; i < LOGRING_TRACE_SERVICES + 4; i++) {
        snprintf(name, sizeof name, "Svc%d", i);
        feed(&ring, &f, name, 0, "t", LOG_LEVEL_NONE, "x");
        feed(&ring, &f, "Svc0", 0, "t", LOG_LEVEL_NONE, "x"); /* repeats are not listed twice */
    }
    const struct logring_trace *t = logring_trace_find(&ring, "t");
    assert_int_equal(t->service_count, LOGRING_TRACE_SERVICES);
    assert_true(t->services_truncated);
    for (int i = 0; i < LOGRING_TRACE_SERVICES; i++) {
        snprintf(name, sizeof name, "Svc%d", i);
        assert_string_equal(logring_service_name(&ring, t->services[i]), name);
    }
    logring_free(&ring);
}

static void test_service_table_overflow(void **state)
{
    (void)state;
    struct logring ring;
    assert_int_equal(logring_init(&ring, 10, 4), 0);
    struct feeder f = {0, 0};
    char name[32];
    for (int i = 0; i < LOGRING_MAX_SERVICES + 10; i++) {
        snprintf(name, sizeof name, "s%d", i);
        feed(&ring, &f, name, 0, NULL, LOG_LEVEL_NONE, "x");
    }
    assert_int_equal(ring.service_count, LOGRING_MAX_SERVICES);
    struct log_line out;
    assert_int_equal(logring_get(&ring, logring_last_seq(&ring), &out), 0);
    assert_string_equal(out.service, "(other)");
    feed(&ring, &f, "s5", 0, NULL, LOG_LEVEL_NONE, "x");
    assert_int_equal(logring_get(&ring, logring_last_seq(&ring), &out), 0);
    assert_string_equal(out.service, "s5");
    logring_free(&ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_get),
        cmocka_unit_test(test_evicts_by_line_count_in_order),
        cmocka_unit_test(test_byte_budget_and_wrap_match_a_model),
        cmocka_unit_test(test_overlong_line_is_cut),
        cmocka_unit_test(test_gap_in_seqs_empties_the_ring),
        cmocka_unit_test(test_trace_walk_and_summary),
        cmocka_unit_test(test_trace_walk_stops_at_evicted_lines),
        cmocka_unit_test(test_trace_summaries_are_bounded_lru),
        cmocka_unit_test(test_trace_service_list_is_capped),
        cmocka_unit_test(test_service_table_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
