/* cmd_graph: `devnode graph [SERVICE...]`: the depends_on tree of .lymph.yml, read like
 * `cargo tree` (each service nothing depends on, then what it waits for and on what condition),
 * or with --json the graph with its start layers and stop order. It reads the file only: no
 * node needs to run, and it never starts anything. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "config/depends.h"

/* What one run shows: the config, its graph, the services shown and their layers. */
struct graph_view {
    const struct config *cfg;
    struct depgraph g;
    bool *shown;       /* per service: named (or all when none are), or needed by one that is */
    bool *expanded;    /* per service: its dependencies are already printed above */
    size_t *layer;
    size_t *order;     /* start order of every service; shown ones are printed */
};

static void print_flags(const struct config_service *s)
{
    if (s->disabled)
        fputs(" [disabled]", stdout);
    if (s->numprocesses != 1)
        printf(" [x%d]", s->numprocesses);
}

/* The dependencies of service i under `prefix` (the bars of the levels above). */
static void print_deps(struct graph_view *v, size_t i, struct strbuf *prefix)
{
    const struct config_service *s = &v->cfg->services[i];
    v->expanded[i] = true;
    for (size_t k = 0; k < s->dep_count; k++) {
        const struct config_dep *d = &s->deps[k];
        size_t at = (size_t)config_service_index(v->cfg, d->name);
        const struct config_service *dep = &v->cfg->services[at];
        bool last = k + 1 == s->dep_count;
        printf("%s%s %s (%s%s)", strbuf_cstr(prefix), last ? "\xe2\x94\x94\xe2\x94\x80\xe2\x94\x80" /* └── */
                                                             : "\xe2\x94\x9c\xe2\x94\x80\xe2\x94\x80" /* ├── */,
               dep->name, config_dep_condition_name(d->condition), d->restart ? ", restart: true" : "");
        print_flags(dep);
        if (v->expanded[at] && dep->dep_count) {
            fputs(" (*)\n", stdout); /* shown above with what it depends on */
            continue;
        }
        putchar('\n');
        size_t len = prefix->len;
        strbuf_puts(prefix, last ? "    " : "\xe2\x94\x82   " /* │ */);
        print_deps(v, at, prefix);
        prefix->len = len;
        prefix->data[len] = '\0';
    }
}

/* Roots: the shown services no shown service depends on, in file order. */
static bool is_root(const struct graph_view *v, size_t i)
{
    for (size_t j = 0; j < v->cfg->service_count; j++)
        for (size_t k = 0; v->shown[j] && k < v->g.nodes[j].dep_count; k++)
            if (v->g.nodes[j].deps[k] == i)
                return false;
    return true;
}

/* One tree: service i as a root, then what it depends on. */
static void print_tree(struct graph_view *v, size_t i)
{
    const struct config_service *s = &v->cfg->services[i];
    printf("%s", s->name);
    print_flags(s);
    if (v->expanded[i] && s->dep_count) {
        fputs(" (*)\n", stdout);
        return;
    }
    putchar('\n');
    struct strbuf prefix;
    strbuf_init(&prefix);
    strbuf_puts(&prefix, "");
    print_deps(v, i, &prefix);
    strbuf_free(&prefix);
}

static json_t *names_json(const struct graph_view *v, const size_t *items, size_t count)
{
    json_t *list = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(list, json_string(v->cfg->services[items[i]].name));
    return list;
}

static json_t *graph_json(const struct graph_view *v)
{
    const struct config *cfg = v->cfg;
    size_t n = cfg->service_count;
    json_t *services = json_array(), *layers = json_array(), *roots = json_array();
    size_t *shown_order = xcalloc(n ? n : 1, sizeof *shown_order), count = 0;
    for (size_t i = 0; i < n; i++)
        if (v->shown[v->order[i]])
            shown_order[count++] = v->order[i];
    for (size_t i = 0; i < n; i++) {
        if (!v->shown[i])
            continue;
        const struct config_service *s = &cfg->services[i];
        json_t *deps = json_array(), *dependents = json_array();
        for (size_t k = 0; k < s->dep_count; k++)
            json_array_append_new(deps, json_pack("{s:s, s:s, s:b}", "name", s->deps[k].name, "condition",
                                                  config_dep_condition_name(s->deps[k].condition), "restart",
                                                  s->deps[k].restart));
        for (size_t j = 0; j < n; j++)
            for (size_t k = 0; v->shown[j] && k < v->g.nodes[j].dep_count; k++)
                if (v->g.nodes[j].deps[k] == i)
                    json_array_append_new(dependents, json_string(cfg->services[j].name));
        json_array_append_new(services, json_pack("{s:s, s:i, s:b, s:I, s:o, s:o}", "name", s->name, "numprocesses",
                                                  s->numprocesses, "disabled", s->disabled, "layer",
                                                  (json_int_t)v->layer[i], "depends_on", deps, "dependents",
                                                  dependents));
        if (json_array_size(dependents) == 0)
            json_array_append_new(roots, json_string(s->name));
    }
    for (size_t at = 0; at < count;) {
        size_t end = at;
        while (end < count && v->layer[shown_order[end]] == v->layer[shown_order[at]])
            end++;
        json_array_append_new(layers, names_json(v, shown_order + at, end - at));
        at = end;
    }
    json_t *stop = json_array();
    for (size_t i = count; i-- > 0;)
        json_array_append_new(stop, json_string(cfg->services[shown_order[i]].name));
    free(shown_order);
    return json_pack("{s:s, s:o, s:o, s:o, s:o}", "config", cfg->path, "services", services, "roots", roots,
                     "layers", layers, "stop_order", stop);
}

static int cmd_graph(struct cli_args *args)
{
    const char *path = args->config ? args->config : args->project.config_path;
    char err[1024];
    struct config cfg;
    /* The names and their edges only: $(env.X) need not be set to draw the graph. */
    if (config_load_unresolved(path, &cfg, err, sizeof err) < 0) {
        cli_error("%s", err);
        return CLI_USAGE;
    }
    if (args->argc) {
        struct cli_names known = {0};
        for (size_t i = 0; i < cfg.service_count; i++)
            cli_names_add(&known, cfg.services[i].name, strlen(cfg.services[i].name), -1, NULL, 0);
        int bad = cli_check_names("graph", &known, args->argv, (size_t)args->argc, 0) < 0;
        cli_names_free(&known);
        if (bad) {
            config_free(&cfg);
            return CLI_USAGE;
        }
    }
    size_t n = cfg.service_count;
    struct graph_view v = {.cfg = &cfg};
    config_depgraph(&cfg, &v.g);
    v.shown = xcalloc(n ? n : 1, sizeof *v.shown);
    v.expanded = xcalloc(n ? n : 1, sizeof *v.expanded);
    v.layer = xcalloc(n ? n : 1, sizeof *v.layer);
    v.order = xcalloc(n ? n : 1, sizeof *v.order);
    for (size_t i = 0; i < n; i++)
        v.shown[i] = args->argc == 0;
    for (int a = 0; a < args->argc; a++)
        v.shown[config_service_index(&cfg, args->argv[a])] = true;
    depgraph_closure(&v.g, v.shown);
    depgraph_layers(&v.g, v.layer); /* config_load refused cycles */
    depgraph_start_order(&v.g, v.layer, v.order);
    int rc = CLI_OK;
    if (args->json) {
        json_t *out = graph_json(&v);
        if (json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 || printf("\n") < 0)
            rc = CLI_FAILURE;
        json_decref(out);
    } else if (args->argc) {
        /* The named ones are the roots, in the order given; what they need hangs below. */
        for (int i = 0; i < args->argc; i++)
            print_tree(&v, (size_t)config_service_index(&cfg, args->argv[i]));
    } else {
        for (size_t i = 0; i < n; i++)
            if (is_root(&v, i))
                print_tree(&v, i);
    }
    if (fflush(stdout) != 0) {
        cli_error("graph: cannot write to stdout");
        rc = CLI_FAILURE;
    }
    free(v.order);
    free(v.layer);
    free(v.expanded);
    free(v.shown);
    depgraph_free(&v.g);
    config_free(&cfg);
    return rc;
}

const struct cli_command cmd_graph_entry = {
    .name = "graph",
    .usage = "[-c PATH] [--json] [SERVICE...]",
    .summary = "print the depends_on tree of .lymph.yml (no node needed)",
    .flags = CLI_NEEDS_PROJECT | CLI_JSON,
    .run = cmd_graph,
};
