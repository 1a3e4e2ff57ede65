/* call: the smallest libdevnode caller: calls Service.method from the shell, once or n times
 * (blocking or deferred), and prints one JSON line per reply. Tests use it to drive the
 * library's caller side (round robin, timeouts, error replies). It never retries a call. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devnode.h>

#define MAX_CALLS 10000

/* Outside devnode, use the node of the project in `dir` (its .devnode/endpoint). */
static int use_project_node(const char *dir)
{
    if (getenv("DEVNODE_ENDPOINT"))
        return 0;
    char path[4096], endpoint[4200] = "";
    snprintf(path, sizeof path, "%s/.devnode/endpoint", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "call: no node running in %s (%s: %s)\n", dir, path, strerror(errno));
        return -1;
    }
    if (!fgets(endpoint, sizeof endpoint, f))
        endpoint[0] = '\0';
    fclose(f);
    endpoint[strcspn(endpoint, "\r\n")] = '\0';
    setenv("DEVNODE_ENDPOINT", endpoint, 1);
    setenv("DEVNODE_SERVICE", "call", 0);
    return 0;
}

static void print_outcome(int rc, json_t *result, const struct devnode_error *err)
{
    json_t *line = rc == 0 ? json_pack("{s:b,s:O}", "ok", 1, "result", result)
                           : json_pack("{s:b,s:i,s:s,s:s}", "ok", 0, "code", rc, "type", err->type, "message",
                                       err->message);
    char *text = line ? json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    printf("%s\n", text ? text : "{\"ok\": false, \"type\": \"NoMemory\"}");
    free(text);
    json_decref(line);
}

int main(int argc, char **argv)
{
    long count = 1, timeout_ms = 0;
    int deferred = 0;
    const char *dir = ".", *trace = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:t:aT:C:")) != -1) {
        switch (opt) {
        case 'n': count = strtol(optarg, NULL, 10); break;
        case 't': timeout_ms = strtol(optarg, NULL, 10); break;
        case 'a': deferred = 1; break;
        case 'T': trace = optarg; break;
        case 'C': dir = optarg; break;
        default: goto usage;
        }
    }
    if (optind >= argc || argc - optind > 2 || count < 1 || count > MAX_CALLS)
        goto usage;
    const char *subject = argv[optind];
    json_t *args = NULL;
    if (optind + 1 < argc) {
        json_error_t jerr;
        args = json_loads(argv[optind + 1], JSON_DECODE_ANY, &jerr);
        if (!args) {
            fprintf(stderr, "call: arguments are not JSON: %s\n", jerr.text);
            return 2;
        }
    }
    if (use_project_node(dir) < 0) {
        json_decref(args);
        return 1;
    }
    char cerr[256];
    struct devnode *dn = devnode_connect(cerr, sizeof cerr);
    if (!dn) {
        fprintf(stderr, "call: %s\n", cerr);
        json_decref(args);
        return 2;
    }
    if (trace)
        devnode_set_trace_id(dn, trace);

    int failures = 0;
    struct devnode_call **calls = deferred ? calloc((size_t)count, sizeof *calls) : NULL;
    struct devnode_error err;
    for (long i = 0; i < count; i++) {
        if (deferred) {
            /* Send them all first: the deferred call returns at once. */
            calls[i] = devnode_call_async(dn, subject, args, (int)timeout_ms, &err);
            if (!calls[i]) {
                print_outcome(err.code, NULL, &err);
                failures++;
            }
            continue;
        }
        json_t *result = NULL;
        int rc = devnode_call(dn, subject, args, (int)timeout_ms, &result, &err);
        print_outcome(rc, result, &err);
        failures += rc != 0;
        json_decref(result);
    }
    for (long i = 0; deferred && i < count; i++) {
        if (!calls[i])
            continue;
        json_t *result = NULL;
        int rc = devnode_call_wait(dn, calls[i], &result, &err);
        print_outcome(rc, result, &err);
        failures += rc != 0;
        json_decref(result);
    }
    free(calls);
    json_decref(args);
    devnode_close(dn);
    return failures ? 1 : 0;

usage:
    fprintf(stderr, "usage: call [-n COUNT] [-t TIMEOUT_MS] [-a] [-T TRACE_ID] [-C PROJECT_DIR] "
                    "Service.method ['{\"arg\": 1}']\n"
                    "  -a: deferred calls: send all COUNT, then wait for each reply\n");
    return 2;
}
