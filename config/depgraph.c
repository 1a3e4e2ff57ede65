/* depgraph: walks over the dependency graph (depgraph.h). Every walk is iterative with its
 * own stack, so a long chain from a config cannot overflow the C stack; it never looks at
 * names or prints: the callers turn indices into services and messages. */
#include "config/depgraph.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

void depgraph_init(struct depgraph *g, size_t count)
{
    g->count = count;
    g->nodes = count ? xcalloc(count, sizeof *g->nodes) : NULL;
}

void depgraph_add(struct depgraph *g, size_t node, size_t dep)
{
    struct depgraph_node *n = &g->nodes[node];
    if (n->dep_count == n->dep_cap) {
        n->dep_cap = n->dep_cap ? 2 * n->dep_cap : 4;
        n->deps = xreallocarray(n->deps, n->dep_cap, sizeof *n->deps);
    }
    n->deps[n->dep_count++] = dep;
}

void depgraph_free(struct depgraph *g)
{
    for (size_t i = 0; i < g->count; i++)
        free(g->nodes[i].deps);
    free(g->nodes);
    memset(g, 0, sizeof *g);
}

enum { WHITE, GREY, BLACK };

/* A depth-first walk from every white node in index order; meeting a grey node (one on the
 * walk's stack) closes a cycle, which is the stack from that node on. */
size_t depgraph_find_cycle(const struct depgraph *g, size_t *path)
{
    if (g->count == 0)
        return 0;
    unsigned char *color = xcalloc(g->count, 1);
    size_t *stack = xcalloc(g->count, sizeof *stack); /* the walk: nodes, each grey */
    size_t *next = xcalloc(g->count, sizeof *next);   /* per node: the next edge to follow */
    size_t found = 0;
    for (size_t root = 0; root < g->count && !found; root++) {
        if (color[root] != WHITE)
            continue;
        size_t depth = 0;
        stack[depth++] = root;
        color[root] = GREY;
        next[root] = 0;
        while (depth && !found) {
            size_t top = stack[depth - 1];
            const struct depgraph_node *n = &g->nodes[top];
            if (next[top] == n->dep_count) {
                color[top] = BLACK;
                depth--;
                continue;
            }
            size_t dep = n->deps[next[top]++];
            if (color[dep] == WHITE) {
                color[dep] = GREY;
                next[dep] = 0;
                stack[depth++] = dep;
            } else if (color[dep] == GREY) {
                size_t from = depth;
                while (stack[from - 1] != dep)
                    from--;
                from--;
                found = depth - from;
                memcpy(path, stack + from, found * sizeof *path);
                path[found] = dep;
            }
        }
    }
    free(next);
    free(stack);
    free(color);
    return found;
}

/* Kahn's walk in reverse: a node's layer is known once all its dependencies' are. */
long depgraph_layers(const struct depgraph *g, size_t *layer)
{
    if (g->count == 0)
        return 0;
    size_t *waiting = xcalloc(g->count, sizeof *waiting);     /* dependencies not yet placed */
    size_t *dependents = xcalloc(g->count + 1, sizeof *dependents); /* CSR of the reverse edges */
    for (size_t i = 0; i < g->count; i++) {
        waiting[i] = g->nodes[i].dep_count;
        for (size_t k = 0; k < g->nodes[i].dep_count; k++)
            dependents[g->nodes[i].deps[k] + 1]++;
    }
    for (size_t i = 0; i < g->count; i++)
        dependents[i + 1] += dependents[i];
    size_t edge_count = dependents[g->count];
    size_t *rev = xcalloc(edge_count ? edge_count : 1, sizeof *rev);
    size_t *fill = xcalloc(g->count, sizeof *fill);
    for (size_t i = 0; i < g->count; i++)
        for (size_t k = 0; k < g->nodes[i].dep_count; k++) {
            size_t d = g->nodes[i].deps[k];
            rev[dependents[d] + fill[d]++] = i;
        }
    size_t *queue = xcalloc(g->count, sizeof *queue);
    size_t head = 0, tail = 0, layers = 0;
    for (size_t i = 0; i < g->count; i++) {
        layer[i] = 0;
        if (waiting[i] == 0)
            queue[tail++] = i;
    }
    while (head < tail) {
        size_t n = queue[head++];
        if (layer[n] + 1 > layers)
            layers = layer[n] + 1;
        for (size_t e = dependents[n]; e < dependents[n + 1]; e++) {
            size_t d = rev[e];
            if (layer[d] < layer[n] + 1)
                layer[d] = layer[n] + 1;
            if (--waiting[d] == 0)
                queue[tail++] = d;
        }
    }
    bool acyclic = tail == g->count;
    free(queue);
    free(fill);
    free(rev);
    free(dependents);
    free(waiting);
    return acyclic ? (long)layers : -1;
}

void depgraph_start_order(const struct depgraph *g, const size_t *layer, size_t *order)
{
    /* A counting sort by layer keeps the index order within a layer. */
    size_t top = 0;
    for (size_t i = 0; i < g->count; i++)
        if (layer[i] + 1 > top)
            top = layer[i] + 1;
    size_t *start = xcalloc(top + 1, sizeof *start);
    for (size_t i = 0; i < g->count; i++)
        start[layer[i] + 1]++;
    for (size_t l = 0; l < top; l++)
        start[l + 1] += start[l];
    for (size_t i = 0; i < g->count; i++)
        order[start[layer[i]]++] = i;
    free(start);
}

size_t depgraph_closure(const struct depgraph *g, bool *mark)
{
    size_t *stack = xcalloc(g->count ? g->count : 1, sizeof *stack);
    size_t depth = 0, marked = 0;
    for (size_t i = 0; i < g->count; i++)
        if (mark[i]) {
            stack[depth++] = i;
            marked++;
        }
    while (depth) {
        const struct depgraph_node *n = &g->nodes[stack[--depth]];
        for (size_t k = 0; k < n->dep_count; k++)
            if (!mark[n->deps[k]]) {
                mark[n->deps[k]] = true;
                marked++;
                stack[depth++] = n->deps[k];
            }
    }
    free(stack);
    return marked;
}
