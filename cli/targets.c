/* targets: the SERVICE and SERVICE.N names a command was given, checked against the services
 * that exist, so a typo is a usage error that names the known ones instead of an empty answer.
 * The node stays the judge of what it is asked to do; this only turns "nothing matched" into
 * a clear word before asking. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/msgjson.h"
#include "common/xalloc.h"

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "A, B, C" (sorted), or "none". */
static void known_list(json_t *services, char *out, size_t cap)
{
    size_t n = json_array_size(services), used = 0;
    const char **names = xcalloc(n ? n : 1, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_object_get(json_array_get(services, i), "name"));
        if (name)
            names[used++] = name;
    }
    qsort(names, used, sizeof *names, by_string);
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < used && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? ", " : "", names[i]);
    if (!used)
        snprintf(out, cap, "none");
    free(names);
}

static json_t *find_service(json_t *services, const char *name, size_t len)
{
    size_t i;
    json_t *svc;
    json_array_foreach(services, i, svc) {
        const char *s = json_string_value(json_object_get(svc, "name"));
        if (s && strlen(s) == len && memcmp(s, name, len) == 0)
            return svc;
    }
    return NULL;
}

/* 1 when instance `index` of svc exists: it is present, or below the desired count. */
static int has_instance(json_t *svc, long index)
{
    json_t *desired = json_object_get(svc, "desired");
    if (!desired && !json_object_get(svc, "instances"))
        return 1; /* instances unknown (read from the config without a node): any may have run */
    if (json_is_integer(desired) && index < json_integer_value(desired))
        return 1;
    size_t i;
    json_t *inst;
    json_array_foreach(json_object_get(svc, "instances"), i, inst)
        if (json_integer_value(json_object_get(inst, "index")) == index)
            return 1;
    return 0;
}

/* "Web.0, Web.1", or "none: scaled to 0". */
static void instance_list(json_t *svc, char *out, size_t cap)
{
    const char *name = json_string_value(json_object_get(svc, "name"));
    size_t len = 0, i;
    json_t *inst;
    out[0] = '\0';
    json_array_foreach(json_object_get(svc, "instances"), i, inst)
        if (len < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s%s.%lld", i ? ", " : "", name,
                                    (long long)json_integer_value(json_object_get(inst, "index")));
    if (!len)
        snprintf(out, cap, "none: scaled to 0");
}

int cli_check_names(const char *command, json_t *services, char *const *names, size_t count, unsigned flags)
{
    for (size_t i = 0; i < count; i++) {
        const char *name = names[i];
        if ((flags & CLI_NAMES_NODE) && strcmp(name, "devnode") == 0)
            continue;
        if (find_service(services, name, strlen(name)))
            continue;
        const char *dot = strrchr(name, '.');
        json_t *svc = NULL;
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

int cli_check_targets(const struct cli_project *project, const char *command, char *const *names, size_t count,
                      unsigned flags)
{
    if (count == 0)
        return CLI_OK;
    struct wire_body body;
    wire_body_init(&body);
    proto_pack_request_id(&body.pk, 1);
    struct wire_msg reply;
    if (cli_call(project, PROTO_STATUS, &body, &reply, command) < 0)
        return CLI_FAILURE;
    json_t *status = msgjson_to_json(reply.body);
    wire_msg_free(&reply);
    int rc = cli_check_names(command, json_object_get(status, "services"), names, count, flags) < 0 ? CLI_USAGE
                                                                                                   : CLI_OK;
    json_decref(status);
    return rc;
}
