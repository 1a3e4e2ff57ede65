/* depends: loads depends_on (the list of names, or NAME: condition | {condition, restart} as
 * docker compose writes it) and, once every service is loaded, refuses what no start order can
 * honour: unknown names, a service depending on itself, cycles (named whole), and waiting for
 * the completion of a service that restarts always. It never prints; messages name file:line:col. */
#include "config/depends.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfgalloc.h"
#include "config/keys.h"

static const struct {
    const char *text;
    enum config_dep_condition condition;
} conditions[] = {
    {"ready", DEP_READY},
    {"started", DEP_STARTED},
    {"completed", DEP_COMPLETED},
    /* docker compose's spellings, so a compose file's depends_on reads as written */
    {"service_healthy", DEP_READY},
    {"service_started", DEP_STARTED},
    {"service_completed_successfully", DEP_COMPLETED},
};
#define CONDITION_COUNT (sizeof conditions / sizeof conditions[0])

const char *const keys_dep_condition_choices[] = {
    "ready", "started", "completed", "service_healthy", "service_started", "service_completed_successfully", NULL,
};

const char *config_dep_condition_name(enum config_dep_condition c)
{
    return c == DEP_STARTED ? "started" : c == DEP_COMPLETED ? "completed" : "ready";
}

static int parse_condition(struct loader *ld, const struct ynode *value, const char *key_path,
                           enum config_dep_condition *out)
{
    if (value->kind != YNODE_SCALAR)
        return ydiag_fail(&ld->diag, ld->file, value->line, value->col, key_path,
                          "must be ready, started or completed, got %s", ynode_kind_name(value));
    char *text = interp_expand(&ld->interp, &ld->diag, value, key_path);
    if (!text)
        return -1;
    for (size_t i = 0; i < CONDITION_COUNT; i++)
        if (strcmp(text, conditions[i].text) == 0) {
            *out = conditions[i].condition;
            free(text);
            return 0;
        }
    ydiag_fail(&ld->diag, ld->file, value->line, value->col, key_path,
               "must be ready, started or completed (or compose's service_healthy, service_started, "
               "service_completed_successfully), got \"%.80s\"", text);
    free(text);
    return -1;
}

/* The row of `condition:` in the long form {condition: C, restart: true}. */
int keys_load_dep_condition(struct loader *ld, const struct ynode *key, const struct ynode *value,
                            const char *key_path, void *target)
{
    struct config_dep *dep = target;
    return parse_condition(ld, value, key_path, &dep->condition);
}

static struct config_dep *add_dep(struct config_service *svc, size_t cap, char *name, const struct ynode *where)
{
    if (!svc->deps)
        svc->deps = cfg_xcalloc(cap, sizeof *svc->deps);
    struct config_dep *dep = &svc->deps[svc->dep_count++];
    *dep = (struct config_dep){.name = name, .condition = DEP_READY, .line = where->line, .col = where->col};
    return dep;
}

/* depends_on: [A, B] | {A: CONDITION, B: {condition: CONDITION, restart: true}, C: } */
int keys_load_depends_on(struct loader *ld, const struct ynode *key, const struct ynode *value,
                         const char *key_path, void *target)
{
    struct config_service *svc = target;
    char child[KEY_PATH_MAX];
    if (value->kind == YNODE_SEQ) {
        for (size_t i = 0; i < value->kid_count; i++) {
            const struct ynode *item = value->kids[i];
            key_path_item(child, key_path, i);
            if (item->kind != YNODE_SCALAR)
                return ydiag_fail(&ld->diag, ld->file, item->line, item->col, child,
                                  "must be a service name, got %s (conditions go in the map form: "
                                  "depends_on: {%s: ready})", ynode_kind_name(item), "NAME");
            char *name = interp_expand(&ld->interp, &ld->diag, item, child);
            if (!name)
                return -1;
            for (size_t j = 0; j < svc->dep_count; j++)
                if (strcmp(svc->deps[j].name, name) == 0) {
                    ydiag_fail(&ld->diag, ld->file, item->line, item->col, child,
                               "%s is listed twice (first at line %d)", name, svc->deps[j].line);
                    free(name);
                    return -1;
                }
            add_dep(svc, value->kid_count, name, item);
        }
        return 0;
    }
    if (value->kind != YNODE_MAP)
        return ydiag_fail(&ld->diag, ld->file, value->line, value->col, key_path,
                          "must be a list of service names or a map of NAME: ready|started|completed, got %s",
                          ynode_kind_name(value));
    for (size_t i = 0; i < ynode_pairs(value); i++) {
        const struct ynode *name = value->kids[2 * i];
        const struct ynode *how = value->kids[2 * i + 1];
        key_path_child(child, key_path, name->text);
        struct config_dep *dep = add_dep(svc, ynode_pairs(value), cfg_xstrdup(name->text), name);
        if (ynode_is_null(how))
            continue;
        if (how->kind == YNODE_MAP) {
            if (keys_load_map(ld, &keys_dep_section, how, child, dep) < 0)
                return -1;
        } else if (parse_condition(ld, how, child, &dep->condition) < 0) {
            return -1;
        }
    }
    return 0;
}

long config_service_index(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->service_count; i++)
        if (strcmp(cfg->services[i].name, name) == 0)
            return (long)i;
    return -1;
}

void config_depgraph(const struct config *cfg, struct depgraph *g)
{
    depgraph_init(g, cfg->service_count);
    for (size_t i = 0; i < cfg->service_count; i++)
        for (size_t k = 0; k < cfg->services[i].dep_count; k++) {
            long d = config_service_index(cfg, cfg->services[i].deps[k].name);
            if (d >= 0)
                depgraph_add(g, i, (size_t)d);
        }
}

/* "Web, Api, Db": the services' names, for "no service named X (services: ...)". */
static void service_names(const struct config *cfg, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->service_count && used + 1 < len; i++) {
        size_t n = strlen(cfg->services[i].name);
        if (used + n + 6 >= len) {
            snprintf(buf + used, len - used, ", ...");
            return;
        }
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", cfg->services[i].name);
    }
}

static const struct config_dep *find_dep(const struct config_service *svc, const char *name)
{
    for (size_t k = 0; k < svc->dep_count; k++)
        if (strcmp(svc->deps[k].name, name) == 0)
            return &svc->deps[k];
    return NULL;
}

/* "instances.NAME.depends_on" into dst (KEY_PATH_MAX bytes). */
static void deps_path(char *dst, const struct config_service *svc)
{
    char service[KEY_PATH_MAX];
    key_path_child(service, "instances", svc->name);
    key_path_child(dst, service, "depends_on");
}

int keys_check_depends(struct loader *ld)
{
    const struct config *cfg = ld->cfg;
    char key_path[KEY_PATH_MAX];
    for (size_t i = 0; i < cfg->service_count; i++) {
        const struct config_service *svc = &cfg->services[i];
        for (size_t k = 0; k < svc->dep_count; k++) {
            const struct config_dep *dep = &svc->deps[k];
            deps_path(key_path, svc);
            const struct config_service *target = config_find_service(cfg, dep->name);
            if (!target) {
                char names[400];
                service_names(cfg, names, sizeof names);
                return ydiag_fail(&ld->diag, ld->file, dep->line, dep->col, key_path,
                                  "no service named \"%.80s\" (services: %s)", dep->name, names);
            }
            if (target == svc)
                return ydiag_fail(&ld->diag, ld->file, dep->line, dep->col, key_path,
                                  "%s depends on itself", svc->name);
            if (dep->condition == DEP_COMPLETED && target->restart == RESTART_ALWAYS)
                return ydiag_fail(&ld->diag, ld->file, dep->line, dep->col, key_path,
                                  "%s waits for %s to complete, but %s restarts always (the default), so it "
                                  "never stays completed: give %s restart: never or on-failure, or wait for "
                                  "ready or started",
                                  svc->name, target->name, target->name, target->name);
        }
    }
    struct depgraph g;
    config_depgraph(cfg, &g);
    size_t *path = cfg_xcalloc(cfg->service_count + 1, sizeof *path);
    size_t len = depgraph_find_cycle(&g, path);
    int rc = 0;
    if (len) {
        struct cfg_text text = {0};
        for (size_t i = 0; i <= len; i++) {
            if (i)
                cfg_text_append(&text, " \xe2\x86\x92 ", 5); /* " → " */
            const char *name = cfg->services[path[i]].name;
            cfg_text_append(&text, name, strlen(name));
        }
        const struct config_service *first = &cfg->services[path[0]];
        const struct config_dep *edge = find_dep(first, cfg->services[path[1]].name);
        deps_path(key_path, first);
        rc = ydiag_fail(&ld->diag, ld->file, edge->line, edge->col, key_path, "cycle %s", text.s);
        free(text.s);
    }
    free(path);
    depgraph_free(&g);
    return rc;
}

/* Stored as the index of the choice: false 0, true 1. */
static const char *const restart_choices[] = {"false", "true", NULL};

static const struct config_key dep_keys[] = {
    {"condition", KEY_ENUM, 0, .choices = keys_dep_condition_choices, .load = keys_load_dep_condition,
     .default_text = "ready", .doc = "what the dependent waits for: ready, started or completed (exited 0)"},
    {"restart", KEY_ENUM, 0, .choices = restart_choices, .default_text = "false",
     .offset = offsetof(struct config_dep, restart), .size = sizeof(int),
     .doc = "true: the dependent is restarted when this dependency restarts (runtime: not yet)"},
};
const struct config_section keys_dep_section = {"a dependency takes", dep_keys, sizeof dep_keys / sizeof dep_keys[0]};
