/* cmd_discover: `devnode discover [SERVICE] [-v] [--json]`: the services in the node's
 * registry (or the ZooKeeper registry DEVNODE_REGISTRY / backends.registry names), printed the way `lymph discover` did (`Greeting [3]`, instances with -v or when
 * a SERVICE is named), or as `{name: [instance, ...]}` JSON like `lymph discover --json`. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/msgjson.h"
#include "common/xalloc.h"
#include "lib/zkregistry.h"

static int by_name(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));
    return strcmp(x ? x : "", y ? y : "");
}

/* lymph counted unique identities, not entries: a process that re-registered is one. */
static size_t unique_identities(json_t *instances)
{
    size_t n = 0, i, j;
    json_t *inst, *prev;
    json_array_foreach(instances, i, inst) {
        const char *id = json_string_value(json_object_get(inst, "identity"));
        int seen = 0;
        json_array_foreach(instances, j, prev) {
            if (j >= i)
                break;
            const char *pid = json_string_value(json_object_get(prev, "identity"));
            if (id && pid && !strcmp(id, pid))
                seen = 1;
        }
        n += !seen;
    }
    return n;
}

static void print_instances(const char *name, json_t *instances)
{
    size_t i, width = 0, pid_width = 0;
    json_t *inst;
    char label[512];
    /* Columns line up within a service: labels and pids vary in width. */
    json_array_foreach(instances, i, inst) {
        json_int_t index = json_integer_value(json_object_get(inst, "instance"));
        size_t n = (size_t)(index >= 0 ? snprintf(label, sizeof label, "%s.%lld", name, (long long)index)
                                       : snprintf(label, sizeof label, "%s.-", name));
        if (n > width)
            width = n;
        long long pid = json_integer_value(json_object_get(inst, "pid"));
        n = (size_t)snprintf(label, sizeof label, "%lld", pid);
        if (n > pid_width)
            pid_width = n;
    }
    json_array_foreach(instances, i, inst) {
        json_int_t index = json_integer_value(json_object_get(inst, "instance"));
        /* -1: a process the node did not start; it has no index. */
        if (index >= 0)
            snprintf(label, sizeof label, "%s.%lld", name, (long long)index);
        else
            snprintf(label, sizeof label, "%s.-", name);
        const char *identity = json_string_value(json_object_get(inst, "identity"));
        const char *endpoint = json_string_value(json_object_get(inst, "endpoint"));
        printf("  [%.10s]  %-*s  pid %-*lld  %s\n", identity ? identity : "?", (int)width, label, (int)pid_width,
               (long long)json_integer_value(json_object_get(inst, "pid")), endpoint ? endpoint : "?");
    }
    printf("\n");
}

/* The same services list from a ZooKeeper registry (DEVNODE_REGISTRY or backends:), each
 * instance its registration as lymph wrote it: `[{name, instances: [description...]}]`.
 * Returns NULL after printing why. */
static json_t *remote_services(const char *url)
{
    struct zkreg *z;
    char err[512];
    const char *session = getenv("DEVNODE_REGISTRY_SESSION_MS");
    if (zkreg_open(&z, url, session ? atoi(session) : 5000, err, sizeof err) < 0) {
        cli_error("discover: registry %s: %s", url, err);
        return NULL;
    }
    char **names;
    size_t count;
    if (zkreg_services(z, &names, &count, err, sizeof err) < 0) {
        cli_error("discover: %s", err);
        zkreg_close(z);
        return NULL;
    }
    json_t *services = json_array();
    for (size_t i = 0; i < count; i++) {
        struct zkreg_list list;
        if (zkreg_lookup(z, names[i], &list, err, sizeof err) < 0)
            continue; /* a name no service could have, or gone meanwhile */
        json_t *instances = json_array();
        for (size_t j = 0; j < list.count; j++) {
            json_t *inst = json_deep_copy(list.insts[j].description);
            if (!json_object_get(inst, "instance"))
                json_object_set_new(inst, "instance", json_integer(-1));
            json_array_append_new(instances, inst);
        }
        zkreg_list_free(&list);
        json_array_append_new(services, json_pack("{s:s, s:o}", "name", names[i], "instances", instances));
    }
    zkreg_names_free(names, count);
    zkreg_close(z);
    return services;
}

/* Prints the services that have instances; returns how many were printed. */
static size_t print_services(json_t *services, const char *only, int verbose)
{
    size_t count = json_array_size(services), shown = 0;
    json_t **sorted = xcalloc(count, sizeof *sorted);
    for (size_t i = 0; i < count; i++)
        sorted[i] = json_array_get(services, i);
    qsort(sorted, count, sizeof *sorted, by_name);
    for (size_t i = 0; i < count; i++) {
        const char *name = json_string_value(json_object_get(sorted[i], "name"));
        json_t *instances = json_object_get(sorted[i], "instances");
        if (!name || json_array_size(instances) == 0 || (only && strcmp(only, name)))
            continue;
        printf("%s [%zu]\n", name, unique_identities(instances));
        if (verbose)
            print_instances(name, instances);
        shown++;
    }
    free(sorted);
    return shown;
}

/* lymph's --json shape: {name: [instance, ...]}, services without instances left out. */
static void print_json(json_t *services, const char *only)
{
    json_t *out = json_object();
    size_t i;
    json_t *svc;
    json_array_foreach(services, i, svc) {
        const char *name = json_string_value(json_object_get(svc, "name"));
        json_t *instances = json_object_get(svc, "instances");
        if (name && json_array_size(instances) && !(only && strcmp(only, name)))
            json_object_set(out, name, instances);
    }
    char *text = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
    puts(text ? text : "{}");
    free(text);
    json_decref(out);
}

static const struct cli_option options[] = {
    {"verbose", 'v', 0, 'v'},
    {"instances", 0, 0, 'v'}, /* lymph's name for -v */
    {0},
};

static int cmd_discover(struct cli_args *args)
{
    int as_json = args->json, verbose = cli_arg(args, 'v') != NULL;
    if (args->argc > 1) {
        cli_error("discover: expected at most one SERVICE, got '%s' too", args->argv[1]);
        return CLI_USAGE;
    }
    const char *only = args->argc ? args->argv[0] : NULL;
    if (only)
        verbose = 1; /* as lymph did: naming a service asks about its instances */

    const struct cli_project project = args->project;
    char err[1024];
    if (cli_backends_apply(&project, err, sizeof err) < 0) {
        cli_error("discover: %s", err);
        return CLI_USAGE;
    }
    const char *registry = getenv("DEVNODE_REGISTRY");
    json_t *services;
    if (registry && *registry) {
        /* The services register there: no node needed, so a shared registry can be looked at
         * from any checkout. */
        if (!(services = remote_services(registry)))
            return CLI_FAILURE;
    } else {
        struct wire_body body;
        wire_body_init(&body);
        proto_pack_discover(&body.pk, 1, NULL); /* all of them: an unknown SERVICE names the others */
        struct wire_msg reply;
        if (cli_call(&project, PROTO_DISCOVER, &body, &reply, "discover") < 0)
            return CLI_FAILURE;
        json_t *whole = msgjson_to_json(reply.body);
        wire_msg_free(&reply);
        services = json_incref(json_object_get(whole, "services"));
        json_decref(whole);
    }
    if (!json_is_array(services)) {
        json_decref(services);
        cli_error("discover: the node's reply has no 'services' list");
        return CLI_FAILURE;
    }
    if (only) {
        /* Only the names count here: the registry's instances are not the status reply's. */
        struct cli_names known = {0};
        size_t i;
        json_t *svc;
        json_array_foreach(services, i, svc) {
            const char *name = json_string_value(json_object_get(svc, "name"));
            if (name)
                cli_names_add(&known, name, strlen(name), -1, NULL, 0);
        }
        int bad = cli_check_names("discover", &known, (char *const *)&only, 1, CLI_NAMES_REGISTRY) < 0;
        cli_names_free(&known);
        if (bad) {
            json_decref(services);
            return CLI_USAGE;
        }
    }
    if (as_json)
        print_json(services, only);
    else if (print_services(services, only, verbose) == 0)
        printf("No registered services found\n");
    json_decref(services);
    return CLI_OK;
}

const struct cli_command cmd_discover_entry = {
    .name = "discover",
    .usage = "[-c PATH] [-v|--instances] [--json] [SERVICE]",
    .summary = "the services in the registry (the node's, or ZooKeeper's with backends.registry)",
    .flags = CLI_NEEDS_PROJECT | CLI_JSON,
    .options = options,
    .run = cmd_discover,
};
