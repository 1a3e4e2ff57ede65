/* svcwait: after `devnode start NAME` or `devnode stop NAME`, watches the node's status until
 * the service is up (or completed) or down, so the command's exit says how it ended. It reads
 * status replies only; the node decides everything. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

/* A waiting line that names a failure rather than a condition still to come: "waiting for
 * Migrate: exited 1" against "waiting for Db to be ready" (node/depwait.c). */
static int waiting_blocked(const char *line)
{
    static const char *const pending[] = {" to be ready", " to start", " to complete"};
    size_t n = strlen(line);
    for (size_t i = 0; i < sizeof pending / sizeof pending[0]; i++) {
        size_t k = strlen(pending[i]);
        if (n >= k && !strcmp(line + n - k, pending[i]))
            return 0;
    }
    return n > 0;
}

/* 1: settled as wanted; 0: not yet; -1: failed, with why set. */
static int service_settled(const struct proto_status_service_view *svc, int up, char *why, size_t cap)
{
    char name[256];
    proto_status_str_copy(svc->name, name, sizeof name);
    for (size_t i = 0; i < svc->instance_count; i++) {
        const struct proto_status_instance_view *inst = &svc->instances[i];
        char state[32], line[512];
        proto_status_str_copy(inst->state, state, sizeof state);
        if (!up) {
            if (inst->pid)
                return 0;
            continue;
        }
        if (!strcmp(state, "running") || !strcmp(state, "completed"))
            continue;
        if (!strcmp(state, "failed") || !strcmp(state, "exited")) {
            proto_status_str_copy(inst->failure, line, sizeof line);
            if (!line[0] && inst->has_exit)
                snprintf(line, sizeof line, "exited %lld", (long long)inst->exit_code);
            snprintf(why, cap, "%s.%lld %s%s%s", name, (long long)inst->index, state, line[0] ? ": " : "", line);
            return -1;
        }
        if (!strcmp(state, "waiting")) {
            proto_status_str_copy(inst->waiting, line, sizeof line);
            if (waiting_blocked(line)) {
                snprintf(why, cap, "%s not started: %s", name, line);
                return -1;
            }
        }
        return 0;
    }
    return 1;
}

int cli_service_wait(const struct cli_project *project, const char *command, const char *service, int up,
                     int timeout_ms)
{
    struct timespec start, now, pause = {0, 20 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct wire_msg reply;
        struct proto_status st;
        int got = cli_call_status(project, command, &reply, &st);
        if (got < 0)
            return CLI_FAILURE;
        int rc = 0;
        char why[900] = "";
        if (got == 0) {
            for (size_t i = 0; i < st.service_count; i++) {
                char name[256];
                proto_status_str_copy(st.services[i].name, name, sizeof name);
                if (!strcmp(name, service))
                    rc = service_settled(&st.services[i], up, why, sizeof why);
            }
        }
        proto_status_free(&st);
        wire_msg_free(&reply);
        if (rc > 0)
            return CLI_OK;
        if (rc < 0) {
            cli_error("%s %s: %s", command, service, why);
            return CLI_FAILURE;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited_ms = (double)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1e6;
        if (waited_ms > timeout_ms) {
            cli_error("%s %s: not %s after %.0fs (see `devnode status`)", command, service, up ? "up" : "down",
                      timeout_ms / 1000.0);
            return CLI_FAILURE;
        }
        nanosleep(&pause, NULL);
    }
}
