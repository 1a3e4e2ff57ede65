/* cmd_stop: `devnode stop`: asks the node to stop gracefully and waits until it is gone,
 * so a script can start a new node right after; then prints the node's stop summary.
 * `devnode stop SERVICE...` stops those services alone and leaves the node running. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/rundir.h"

/* The node leaves its summary line in the run dir before it lets the lock go. */
static void print_stop_summary(const char *project_dir, int64_t pid)
{
    struct rundir rd;
    rundir_paths(&rd, project_dir);
    char path[PATH_MAX + 32], line[512];
    snprintf(path, sizeof path, "%s/%s", rd.dir, RUNDIR_STOP_SUMMARY);
    FILE *f = fopen(path, "re");
    long long written_by = 0;
    int have = f && fscanf(f, "%lld\n", &written_by) == 1 && written_by == pid && fgets(line, sizeof line, f);
    if (f)
        fclose(f);
    if (have) {
        line[strcspn(line, "\n")] = '\0';
        printf("node %lld %s\n", (long long)pid, line);
    } else {
        printf("node %lld stopped\n", (long long)pid);
    }
}

/* `devnode stop A B`: each service alone, waiting until its processes are gone. */
static int stop_services(struct cli_args *args, const struct cli_project *project, int force, int timeout_ms)
{
    int status = cli_check_targets(project, "stop", args->argv, (size_t)args->argc, 0);
    if (status != CLI_OK)
        return status;
    for (int i = 0; i < args->argc; i++) {
        const char *service = args->argv[i];
        struct wire_body body;
        wire_body_init(&body);
        proto_pack_service_request(&body.pk, 1, &(struct proto_service_request){.service = service, .force = force});
        struct wire_msg reply;
        char prefix[300], names[300];
        snprintf(prefix, sizeof prefix, "stop %s", service);
        if (cli_call(project, PROTO_STOP_SERVICE, &body, &reply, prefix) < 0)
            return CLI_FAILURE;
        struct proto_service_reply r;
        proto_unpack_service_reply(reply.body, &r, names, sizeof names);
        wire_msg_free(&reply);
        int rc = cli_service_wait(project, "stop", service, 0, timeout_ms);
        if (rc != CLI_OK) {
            status = rc;
            continue;
        }
        printf("stopped %s (%lld instance%s)\n", service, (long long)r.instances, r.instances == 1 ? "" : "s");
        fflush(stdout);
    }
    return status;
}

static const struct cli_option options[] = {
    {"force", 'f', 0, 'f'},
    {"timeout", 0, 1, 't'},
    {0},
};

static int cmd_stop(struct cli_args *args)
{
    int force = cli_arg(args, 'f') != NULL;
    double timeout_s = 60;
    const char *timeout = cli_arg(args, 't');
    if (timeout) {
        char *end;
        timeout_s = strtod(timeout, &end);
        if (*end || timeout_s <= 0) {
            cli_error("stop: --timeout takes a number of seconds, not '%s'", timeout);
            return CLI_USAGE;
        }
    }
    const struct cli_project project = args->project;
    if (args->argc)
        return stop_services(args, &project, force, (int)(timeout_s * 1000));
    struct wire_body body;
    wire_body_init(&body);
    proto_pack_stop(&body.pk, 1, &(struct proto_stop){.force = force});
    struct wire_msg reply;
    if (cli_call(&project, PROTO_STOP, &body, &reply, "stop") < 0)
        return CLI_FAILURE;
    int64_t pid;
    proto_unpack_stop_reply(reply.body, &pid);
    wire_msg_free(&reply);

    /* Done when the node's lock is free: that is what a following `devnode up` needs. */
    struct timespec start, now, pause = {0, 20 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        char endpoint[4200];
        pid_t running;
        char ignored[512];
        if (rundir_find_node(project.dir, endpoint, sizeof endpoint, &running, ignored, sizeof ignored) < 0 &&
            running == 0)
            break; /* lock free: the node is gone */
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited = (double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
        if (waited > timeout_s) {
            cli_error("stop: node %lld is still stopping after %.0fs (try `devnode stop --force`)",
                      (long long)pid, timeout_s);
            return CLI_FAILURE;
        }
        nanosleep(&pause, NULL);
    }
    print_stop_summary(project.dir, pid);
    return CLI_OK;
}

const struct cli_command cmd_stop_entry = {
    .name = "stop",
    .usage = "[-c PATH] [--force] [--timeout SECONDS] [SERVICE...]",
    .summary = "stop the running node gracefully (or only the named services)",
    .flags = CLI_NEEDS_PROJECT | CLI_NEEDS_NODE,
    .options = options,
    .run = cmd_stop,
};
