/* stage: one stage of the pylm-style pipeline example. It serves one method, does its bit of
 * work on the job, and passes the job to the next stage, which it finds through the node's
 * registry by name: no stage knows a port or an address. It must never configure a peer by hand.
 * With --until, stages may form a cycle (the job goes round until its value is large enough):
 * a stage waiting for the next one then serves the job coming back to it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <devnode.h>

struct stage {
    const char *method;  /* what we serve: foo, bar, baz */
    const char *next;    /* "Step2.bar", or NULL for the last stage */
    const char *op;      /* double | inc | square */
    long long until;     /* pass the job on only while its value is below this; 0: always */
};

static json_t *work(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    const struct stage *st = ctx;
    const json_t *job = json_object_get(args, "job");
    json_t *value = json_object_get(job, "value");
    json_t *path = json_object_get(job, "path");
    if (!json_is_object(job) || !json_is_integer(value) || !json_is_array(path))
        return devnode_error_set(err, "ValueError", "job must be {id, value: int, path: []}");
    json_int_t v = json_integer_value(value);
    if (strcmp(st->op, "double") == 0)
        v *= 2;
    else if (strcmp(st->op, "inc") == 0)
        v += 1;
    else
        v *= v;
    char here[160];
    snprintf(here, sizeof here, "%s.%d", devnode_service(dn), devnode_instance(dn));
    json_t *out = json_deep_copy(job);
    json_object_set_new(out, "value", json_integer(v));
    json_array_append_new(json_object_get(out, "path"), json_string(here));
    devnode_log(dn, DEVNODE_INFO, "%s: job %lld %s -> %lld", st->method,
                (long long)json_integer_value(json_object_get(job, "id")), st->op, (long long)v);
    if (!st->next || (st->until && v >= st->until))
        return out; /* the last stage: the result goes back to whoever streamed the job in */
    json_t *next_args = json_pack("{s:o}", "job", out);
    json_t *result = NULL;
    struct devnode_error call_err;
    int rc = devnode_call(dn, st->next, next_args, 0, &result, &call_err);
    json_decref(next_args);
    if (rc != 0)
        return devnode_error_set(err, call_err.type, "%s: %s", st->next, call_err.message);
    return result;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"method", required_argument, NULL, 'm'},
        {"next", required_argument, NULL, 'n'},
        {"op", required_argument, NULL, 'o'},
        {"until", required_argument, NULL, 'u'},
        {0, 0, 0, 0},
    };
    struct stage st = {.method = "foo", .next = NULL, .op = "double", .until = 0};
    int opt;
    char *end;
    while ((opt = getopt_long(argc, argv, "m:n:o:u:", options, NULL)) != -1) {
        switch (opt) {
        case 'm': st.method = optarg; break;
        case 'n': st.next = strcmp(optarg, "-") == 0 ? NULL : optarg; break;
        case 'o': st.op = optarg; break;
        case 'u':
            st.until = strtoll(optarg, &end, 10);
            if (*end || end == optarg || st.until < 0) {
                fprintf(stderr, "pipeline_stage: --until takes a whole number, not '%s'\n", optarg);
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: pipeline_stage --method NAME [--next Service.method] [--op double|inc|square] "
                            "[--until N]\n");
            return 2;
        }
    }
    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "pipeline_stage: %s\n", err);
        return 2;
    }
    static const char *const params[] = {"job", NULL};
    devnode_add_method(dn, st.method, params, "Works on a job and passes it on to the next stage", work, &st);
    int rc = devnode_run(dn);
    devnode_close(dn);
    return rc;
}
