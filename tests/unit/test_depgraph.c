/* Unit tests for config/depgraph: cycles with their path, layers, start and stop order, and
 * the closure of a subset, on hand-built graphs up to 100 services in 10 layers and a chain
 * long enough that a recursive walk would be a risk. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config/depgraph.h"

enum { WEB, API, DB, MIGRATE, CACHE, WORKER, COUNT };

/* Web -> Api, Cache; Api -> Db, Migrate; Migrate -> Db; Worker -> Db. */
static void project(struct depgraph *g)
{
    depgraph_init(g, COUNT);
    depgraph_add(g, WEB, API);
    depgraph_add(g, WEB, CACHE);
    depgraph_add(g, API, DB);
    depgraph_add(g, API, MIGRATE);
    depgraph_add(g, MIGRATE, DB);
    depgraph_add(g, WORKER, DB);
}

static void test_layers_and_order(void **state)
{
    (void)state;
    struct depgraph g;
    project(&g);
    size_t layer[COUNT], order[COUNT], path[COUNT + 1];
    assert_int_equal(depgraph_find_cycle(&g, path), 0);
    assert_int_equal(depgraph_layers(&g, layer), 4);
    size_t want_layer[COUNT] = {[WEB] = 3, [API] = 2, [DB] = 0, [MIGRATE] = 1, [CACHE] = 0, [WORKER] = 1};
    assert_memory_equal(layer, want_layer, sizeof layer);
    depgraph_start_order(&g, layer, order);
    size_t want_order[COUNT] = {DB, CACHE, MIGRATE, WORKER, API, WEB};
    assert_memory_equal(order, want_order, sizeof order);
    /* The stop order is the start order backwards: each one before what it depends on. */
    for (size_t i = 0; i < COUNT; i++)
        for (size_t k = 0; k < g.nodes[order[i]].dep_count; k++) {
            size_t dep = g.nodes[order[i]].deps[k];
            size_t at = 0;
            while (order[at] != dep)
                at++;
            assert_true(at < i);
        }
    depgraph_free(&g);
}

static void test_closure_of_a_subset(void **state)
{
    (void)state;
    struct depgraph g;
    project(&g);
    bool mark[COUNT] = {[API] = true};
    assert_int_equal(depgraph_closure(&g, mark), 3);
    bool want[COUNT] = {[API] = true, [DB] = true, [MIGRATE] = true};
    assert_memory_equal(mark, want, sizeof mark);

    bool two[COUNT] = {[WORKER] = true, [CACHE] = true};
    assert_int_equal(depgraph_closure(&g, two), 3);
    assert_true(two[DB] && !two[API] && !two[WEB]);

    bool none[COUNT] = {0};
    assert_int_equal(depgraph_closure(&g, none), 0);
    depgraph_free(&g);
}

static void test_cycle_path_is_the_whole_cycle(void **state)
{
    (void)state;
    /* 0 -> 1 -> 2 -> 3 -> 1: the walk from 0 meets the cycle 1 -> 2 -> 3 -> 1. */
    struct depgraph g;
    depgraph_init(&g, 4);
    depgraph_add(&g, 0, 1);
    depgraph_add(&g, 1, 2);
    depgraph_add(&g, 2, 3);
    depgraph_add(&g, 3, 1);
    size_t path[5], layer[4];
    assert_int_equal(depgraph_find_cycle(&g, path), 3);
    size_t want[4] = {1, 2, 3, 1};
    assert_memory_equal(path, want, sizeof want);
    assert_int_equal(depgraph_layers(&g, layer), -1);
    bool mark[4] = {[2] = true};
    assert_int_equal(depgraph_closure(&g, mark), 3); /* terminates on a cycle too */
    depgraph_free(&g);
}

static void test_self_edge_and_two_cycle(void **state)
{
    (void)state;
    struct depgraph g;
    size_t path[4], layer[3];
    depgraph_init(&g, 3);
    depgraph_add(&g, 2, 2);
    assert_int_equal(depgraph_find_cycle(&g, path), 1);
    assert_int_equal(path[0], 2);
    assert_int_equal(path[1], 2);
    assert_int_equal(depgraph_layers(&g, layer), -1);
    depgraph_free(&g);

    depgraph_init(&g, 3);
    depgraph_add(&g, 0, 2);
    depgraph_add(&g, 2, 1);
    depgraph_add(&g, 1, 2);
    assert_int_equal(depgraph_find_cycle(&g, path), 2);
    size_t want[3] = {2, 1, 2};
    assert_memory_equal(path, want, sizeof want);
    depgraph_free(&g);
}

static void test_empty_and_independent(void **state)
{
    (void)state;
    struct depgraph g;
    size_t path[1], layer[1];
    depgraph_init(&g, 0);
    assert_int_equal(depgraph_find_cycle(&g, path), 0);
    assert_int_equal(depgraph_layers(&g, layer), 0);
    assert_int_equal(depgraph_closure(&g, NULL), 0);
    depgraph_free(&g);

    size_t order[5], layers[5];
    depgraph_init(&g, 5);
    assert_int_equal(depgraph_layers(&g, layers), 1);
    depgraph_start_order(&g, layers, order);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(order[i], i);
    depgraph_free(&g);
}

/* 100 services in 10 layers of 10: each depends on every service of the layer below (and,
 * repeated, on one of them twice), so every layer may start only once the one below is up. */
static void test_hundred_services_in_ten_layers(void **state)
{
    (void)state;
    enum { N = 100, WIDTH = 10 };
    struct depgraph g;
    depgraph_init(&g, N);
    /* Numbered so the index order is not the layer order: service i is in layer 9 - i / 10. */
    for (size_t i = 0; i < N; i++) {
        size_t layer = 9 - i / WIDTH;
        if (layer == 0)
            continue;
        for (size_t k = 0; k < WIDTH; k++)
            depgraph_add(&g, i, (9 - (layer - 1)) * WIDTH + k);
        depgraph_add(&g, i, (9 - (layer - 1)) * WIDTH);
    }
    size_t path[N + 1], layer[N], order[N];
    assert_int_equal(depgraph_find_cycle(&g, path), 0);
    assert_int_equal(depgraph_layers(&g, layer), 10);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(layer[i], 9 - i / WIDTH);
    depgraph_start_order(&g, layer, order);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(order[i], (9 - i / WIDTH) * WIDTH + i % WIDTH);
    bool mark[N] = {[0] = true}; /* a top service needs everything below it: 1 + 9 layers */
    assert_int_equal(depgraph_closure(&g, mark), 1 + 9 * WIDTH);
    bool bottom[N] = {[N - 1] = true};
    assert_int_equal(depgraph_closure(&g, bottom), 1);
    /* One edge from the bottom to the top closes a cycle through all ten layers. */
    depgraph_add(&g, N - 1, 0);
    size_t len = depgraph_find_cycle(&g, path);
    assert_int_equal(len, 10);
    assert_int_equal(path[0], path[len]);
    for (size_t i = 0; i < len; i++) {
        bool edge = false;
        for (size_t k = 0; k < g.nodes[path[i]].dep_count; k++)
            edge |= g.nodes[path[i]].deps[k] == path[i + 1];
        assert_true(edge);
    }
    assert_int_equal(depgraph_layers(&g, layer), -1);
    depgraph_free(&g);
}

/* A chain of 200,000: the walks keep their own stacks. */
static void test_long_chain(void **state)
{
    (void)state;
    enum { N = 200000 };
    struct depgraph g;
    depgraph_init(&g, N);
    for (size_t i = 0; i + 1 < N; i++)
        depgraph_add(&g, i, i + 1);
    size_t *path = calloc(N + 1, sizeof *path), *layer = calloc(N, sizeof *layer);
    assert_int_equal(depgraph_find_cycle(&g, path), 0);
    assert_int_equal(depgraph_layers(&g, layer), N);
    assert_int_equal(layer[0], N - 1);
    depgraph_add(&g, N - 1, 0);
    assert_int_equal(depgraph_find_cycle(&g, path), N);
    free(layer);
    free(path);
    depgraph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layers_and_order),
        cmocka_unit_test(test_closure_of_a_subset),
        cmocka_unit_test(test_cycle_path_is_the_whole_cycle),
        cmocka_unit_test(test_self_edge_and_two_cycle),
        cmocka_unit_test(test_empty_and_independent),
        cmocka_unit_test(test_hundred_services_in_ten_layers),
        cmocka_unit_test(test_long_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
