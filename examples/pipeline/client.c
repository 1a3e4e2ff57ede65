/* client: streams jobs through the pylm-style pipeline (Step1.foo -> Step2.bar -> Last.baz)
 * with deferred calls, a window of them in flight, and prints results as they come back.
 * Run under devnode, or by hand in the project dir (it reads .devnode/endpoint). It must never
 * wait on one job while another one's answer is ready. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <devnode.h>

#define WINDOW_MAX 256

/* Outside devnode, find the node of the project in `dir` the way the CLI does. */
static int use_project_node(const char *dir)
{
    if (getenv("DEVNODE_ENDPOINT"))
        return 0;
    char path[4096], endpoint[4200];
    snprintf(path, sizeof path, "%s/.devnode/endpoint", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "pipeline_client: no node running in %s (%s: %s); start it with `devnode up`\n",
                dir, path, strerror(errno));
        return -1;
    }
    if (!fgets(endpoint, sizeof endpoint, f))
        endpoint[0] = '\0';
    fclose(f);
    endpoint[strcspn(endpoint, "\r\n")] = '\0';
    setenv("DEVNODE_ENDPOINT", endpoint, 1);
    setenv("DEVNODE_SERVICE", "PipelineClient", 0);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    long jobs = 20, window = 8;
    const char *first = "Step1.foo", *dir = ".";
    int opt;
    while ((opt = getopt(argc, argv, "n:w:f:C:")) != -1) {
        switch (opt) {
        case 'n': jobs = strtol(optarg, NULL, 10); break;
        case 'w': window = strtol(optarg, NULL, 10); break;
        case 'f': first = optarg; break;
        case 'C': dir = optarg; break;
        default:
            fprintf(stderr, "usage: pipeline_client [-n JOBS] [-w WINDOW] [-f Step1.foo] [-C PROJECT_DIR]\n");
            return 2;
        }
    }
    if (jobs < 0 || window < 1 || window > WINDOW_MAX) {
        fprintf(stderr, "pipeline_client: want -n >= 0 and 1 <= -w <= %d\n", WINDOW_MAX);
        return 2;
    }
    if (use_project_node(dir) < 0)
        return 1;
    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "pipeline_client: %s\n", err);
        return 2;
    }

    /* The stages start alongside us, each finding the next by name: wait (bounded) until a
     * probe job makes it through every stage, not just until the first one answers. */
    struct devnode_error e;
    int tries = 0;
    for (;;) {
        json_t *probe = json_pack("{s:{s:i, s:i, s:[]}}", "job", "id", -1, "value", 0, "path");
        json_t *answer = NULL;
        int rc = devnode_call(dn, first, probe, 1000, &answer, &e);
        json_decref(probe);
        json_decref(answer);
        if (rc == 0)
            break;
        if (++tries == 100) {
            fprintf(stderr, "pipeline_client: the pipeline does not answer: %s: %s\n", e.type, e.message);
            devnode_close(dn);
            return 1;
        }
        sleep_ms(100);
    }

    struct devnode_call *inflight[WINDOW_MAX] = {0};
    long sent = 0, done = 0, failed = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (done < jobs) {
        for (long i = 0; i < window && sent < jobs; i++) {
            if (inflight[i])
                continue;
            devnode_set_trace_id(dn, NULL); /* one trace per job, through every stage */
            json_t *args = json_pack("{s:{s:I,s:I,s:[]}}", "job", "id", (json_int_t)sent, "value",
                                     (json_int_t)sent, "path");
            inflight[i] = devnode_call_async(dn, first, args, 10000, &e);
            json_decref(args);
            if (!inflight[i]) {
                printf("job %ld: not sent: %s: %s\n", sent, e.type, e.message);
                failed++;
                done++;
            }
            sent++;
        }
        /* Whatever is ready first is reported first: results may come back out of order. */
        int progressed = 0;
        for (int pass = 0; pass < 2 && !progressed; pass++) {
            for (long i = 0; i < window; i++) {
                if (!inflight[i] || (pass == 0 && !devnode_call_ready(dn, inflight[i])))
                    continue;
                json_t *result = NULL;
                if (devnode_call_wait(dn, inflight[i], &result, &e) == 0) {
                    char *text = json_dumps(result, JSON_COMPACT);
                    printf("job result %s\n", text ? text : "?");
                    free(text);
                } else {
                    printf("job failed: %s: %s\n", e.type, e.message);
                    failed++;
                }
                json_decref(result);
                inflight[i] = NULL;
                done++;
                progressed = 1;
                if (pass == 1)
                    break; /* waited on one: go back to sending */
            }
        }
        fflush(stdout);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("pipeline: %ld jobs, %ld failed, %.1f ms (%.0f jobs/s)\n", jobs, failed, ms,
           ms > 0 ? (double)jobs * 1000.0 / ms : 0.0);
    fflush(stdout);
    devnode_close(dn);
    return failed ? 1 : 0;
}
