/* targets: the SERVICE and SERVICE.N names a command was given, checked against the services
 * that exist, so a typo is a usage error that names the known ones instead of an empty answer.
 * The node stays the judge of what it is asked to do; this only turns "nothing matched" into
 * a clear word before asking. It never reads a reply itself: the status reply is decoded by
 * proto_unpack_status, and every source of names fills the same cli_names list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/xalloc.h"

void cli_names_add(struct cli_names *list, const char *name, size_t len, int64_t desired, const int64_t *indexes,
                   size_t index_count)
{
    list->items = xreallocarray(list->items, list->count + 1, sizeof *list->items);
    struct cli_name *n = &list->items[list->count++];
    n->name = xstrndup(name, len);
    n->desired = desired;
    n->indexes = index_count ? xcalloc(index_count, sizeof *n->indexes) : NULL;
    if (index_count)
        memcpy(n->indexes, indexes, index_count * sizeof *indexes);
    n->index_count = index_count;
}

void cli_names_free(struct cli_names *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].name);
        free(list->items[i].indexes);
    }
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "A, B, C" (sorted), or "none". */
static void known_list(const struct cli_names *services, char *out, size_t cap)
{
    size_t used = services->count;
    const char **names = xcalloc(used ? used : 1, sizeof *names);
    for (size_t i = 0; i < used; i++)
        names[i] = services->items[i].name;
    qsort(names, used, sizeof *names, by_string);
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < used && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? ", " : "", names[i]);
    if (!used)
        snprintf(out, cap, "none");
    free(names);
}

static const struct cli_name *find_service(const struct cli_names *services, const char *name, size_t len)
{
    for (size_t i = 0; i < services->count; i++) {
        const char *s = services->items[i].name;
        if (strlen(s) == len && memcmp(s, name, len) == 0)
            return &services->items[i];
    }
    return NULL;
}

/* 1 when instance `index` of svc exists: it is present, or below the desired count. */
static int has_instance(const struct cli_name *svc, long index)
{
    if (svc->desired < 0)
        return 1; /* instances unknown (read from the config without a node): any may have run */
    if (index < svc->desired)
        return 1;
    for (size_t i = 0; i < svc->index_count; i++)
        if (svc->indexes[i] == index)
            return 1;
    return 0;
}

/* "Web.0, Web.1", or "none: scaled to 0". */
static void instance_list(const struct cli_name *svc, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < svc->index_count; i++)
        if (len < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s%s.%lld", i ? ", " : "", svc->name,
                                    (long long)svc->indexes[i]);
    if (!len)
        snprintf(out, cap, "none: scaled to 0");
}

int cli_check_names(const char *command, const struct cli_names *services, char *const *names, size_t count,
                    unsigned flags)
{
    for (size_t i = 0; i < count; i++) {
        const char *name = names[i];
        if ((flags & CLI_NAMES_NODE) && strcmp(name, "devnode") == 0)
            continue;
        if (find_service(services, name, strlen(name)))
            continue;
        const char *dot = strrchr(name, '.');
        const struct cli_name *svc = NULL;
        if ((flags & CLI_NAMES_INSTANCES) && dot && dot[1] && strspn(dot + 1, "0123456789") == strlen(dot + 1) &&
            strlen(dot + 1) < 6)
            svc = find_service(services, name, (size_t)(dot - name));
        char known[1024];
        if (svc) {
            long index = strtol(dot + 1, NULL, 10);
            if (has_instance(svc, index))
                continue;
            instance_list(svc, known, sizeof known);
            cli_error("%s: %.*s has no instance %ld (known: %s)", command, (int)(dot - name), name, index, known);
            return -1;
        }
        known_list(services, known, sizeof known);
        cli_error("%s: no service '%s'%s (known: %s)", command, name,
                  (flags & CLI_NAMES_REGISTRY) ? " in the registry" : "", known);
        return -1;
    }
    return 0;
}

/* The services of a decoded status reply, with the instances present. */
static void names_from_status(const struct proto_status *st, struct cli_names *out)
{
    for (size_t i = 0; i < st->service_count; i++) {
        const struct proto_status_service_view *svc = &st->services[i];
        if (!svc->name.ptr)
            continue;
        size_t n = svc->instance_count;
        int64_t *indexes = xcalloc(n ? n : 1, sizeof *indexes);
        for (size_t j = 0; j < n; j++)
            indexes[j] = svc->instances[j].index;
        cli_names_add(out, svc->name.ptr, svc->name.len, svc->desired < 0 ? 0 : svc->desired, indexes, n);
        free(indexes);
    }
}

int cli_check_targets(const struct cli_project *project, const char *command, char *const *names, size_t count,
                      unsigned flags)
{
    if (count == 0)
        return CLI_OK;
    struct wire_msg reply;
    struct proto_status st;
    int got = cli_call_status(project, command, &reply, &st);
    if (got < 0)
        return CLI_FAILURE;
    struct cli_names services = {0};
    if (got == 0)
        names_from_status(&st, &services);
    proto_status_free(&st);
    wire_msg_free(&reply);
    int rc = cli_check_names(command, &services, names, count, flags) < 0 ? CLI_USAGE : CLI_OK;
    cli_names_free(&services);
    return rc;
}
