/* depgraph: the dependency graph of services as plain indices, with the answers the config,
 * the CLI and (later) the supervisor need: cycles with their path, start layers (what may
 * start in parallel), start and stop order, and the closure of a subset. Pure: it knows no
 * config, prints nothing and allocates only in depgraph_init/add (freed by depgraph_free). */
#ifndef DEVNODE_DEPGRAPH_H
#define DEVNODE_DEPGRAPH_H

#include <stdbool.h>
#include <stddef.h>

struct depgraph_node {
    size_t *deps;       /* the nodes this one depends on, in the order added */
    size_t dep_count;
    size_t dep_cap;
};

struct depgraph {
    struct depgraph_node *nodes;  /* nodes 0..count-1 */
    size_t count;
};

void depgraph_init(struct depgraph *g, size_t count);
/* node depends on dep (both < count). Self and repeated edges are kept: find_cycle reports them. */
void depgraph_add(struct depgraph *g, size_t node, size_t dep);
void depgraph_free(struct depgraph *g);

/* 0 when acyclic. Otherwise the length k of the first cycle a walk in index order meets,
 * with path[0..k] (path holds count + 1) the cycle from its first node back to it:
 * path[0] depends on path[1], ..., path[k - 1] on path[k] == path[0]. */
size_t depgraph_find_cycle(const struct depgraph *g, size_t *path);

/* layer[i] (count of them) = 0 for a node without dependencies, else one more than its
 * deepest dependency: every node of a layer may start once the layers before it are up.
 * Returns the number of layers (0 for no nodes), or -1 for a cyclic graph. */
long depgraph_layers(const struct depgraph *g, size_t *layer);

/* The start order (count indices): by layer, then by index. The stop order is the same
 * array read backwards: dependents before what they depend on. */
void depgraph_start_order(const struct depgraph *g, const size_t *layer, size_t *order);

/* mark (count of them) holds the chosen nodes; adds everything they depend on, directly or
 * not. Returns how many are marked. */
size_t depgraph_closure(const struct depgraph *g, bool *mark);

#endif
