/* cmd_subscribe: `devnode subscribe PATTERN...`: a broadcast subscription to the node's bus
 * that prints every event as it arrives (lymph's `subscribe`) and acks it once printed, as a
 * libdevnode client (which keeps the subscription alive with heartbeats). Ctrl-C or a closed
 * stdout end it quietly. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/rundir.h"
#include "common/strbuf.h"
#include "lib/devnode.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct subscriber {
    pid_t node_pid;
    const struct cli_project *project;
    int as_json;
    long limit;              /* exit after this many events; 0: never */
    long seen;
    int output_closed;       /* stdout is gone (EPIPE): end quietly */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void append_value(struct strbuf *line, json_t *v)
{
    if (json_is_string(v)) {
        strbuf_puts(line, json_string_value(v));
        return;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    strbuf_puts(line, text ? text : "?");
    free(text);
}

/* `greeted: {"name": "joe"}  trace_id=abc source=Greeting`, or one JSON object per line. */
static void format_event(struct subscriber *s, const struct devnode_event *ev, struct strbuf *line)
{
    json_t *source = *ev->source ? json_string(ev->source) : NULL;
    if (s->as_json) {
        json_t *out = json_pack("{s:s, s:O, s:O, s:o?}", "type", ev->type, "headers", ev->headers, "body",
                                ev->body, "source", source);
        char *text = out ? json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        strbuf_puts(line, text ? text : "{}");
        free(text);
        json_decref(out);
        return;
    }
    strbuf_puts(line, ev->type);
    strbuf_puts(line, ": ");
    char *text = json_dumps(ev->body, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    strbuf_puts(line, text ? text : "null");
    free(text);
    strbuf_puts(line, " ");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)ev->headers, key, v) {
        strbuf_printf(line, " %s=", key);
        append_value(line, v);
    }
    if (source)
        strbuf_printf(line, " source=%s", ev->source);
    json_decref(source);
    if (ev->redelivered)
        strbuf_puts(line, " redelivered");
}

/* Acked (0) only once printed: an event we could not show, or one past -n, goes back. */
static int on_event(const struct devnode_event *ev, void *ctx)
{
    struct subscriber *s = ctx;
    if (s->output_closed || (s->limit && s->seen >= s->limit))
        return 1;
    struct strbuf line;
    strbuf_init(&line);
    format_event(s, ev, &line);
    strbuf_putc(&line, '\n');
    if (fwrite(line.data, 1, line.len, stdout) != line.len || fflush(stdout) != 0)
        s->output_closed = 1;
    strbuf_free(&line);
    if (s->output_closed)
        return 1;
    s->seen++;
    return 0;
}

/* The node that took our subscription still holds its lock; a new node would not know us. */
static int node_still_there(struct subscriber *s)
{
    char endpoint[PATH_MAX + 16], err[256];
    pid_t pid;
    return rundir_find_node(s->project->dir, endpoint, sizeof endpoint, &pid, err, sizeof err) == 0 &&
           pid == s->node_pid;
}

static int run(struct subscriber *s, struct devnode *dn, char **patterns, int count)
{
    if (devnode_subscribe_patterns(dn, (const char *const *)patterns, (size_t)count, DEVNODE_BROADCAST, on_event,
                                   s) < 0) {
        const char *why = cli_devnode_error(dn);
        if (strncmp(why, "subscribe", 9) == 0)
            cli_error("%s", why);
        else
            cli_error("subscribe: %s", why);
        return CLI_FAILURE;
    }
    int fd = devnode_fd(dn);
    if (fd < 0) {
        cli_error("subscribe: %s", strerror(errno));
        return CLI_FAILURE;
    }
    long long next_check = now_ms() + PROTO_HEARTBEAT_MS;
    while (!stop_requested && !s->output_closed && !(s->limit && s->seen >= s->limit)) {
        int wait_ms = devnode_process(dn);
        if (stop_requested || s->output_closed || (s->limit && s->seen >= s->limit))
            break;
        long long now = now_ms();
        if (now >= next_check) {
            if (!node_still_there(s)) {
                cli_error("subscribe: the node (pid %d) is gone", (int)s->node_pid);
                return CLI_FAILURE;
            }
            next_check = now + PROTO_HEARTBEAT_MS;
        }
        if (wait_ms > next_check - now)
            wait_ms = (int)(next_check - now);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR) {
            cli_error("subscribe: poll failed: %s", strerror(errno));
            return CLI_FAILURE;
        }
    }
    return CLI_OK;
}

static int parse_limit(const char *text, long *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < 1)
        return -1;
    *out = v;
    return 0;
}

static const struct cli_option options[] = {
    {"count", 'n', 1, 'n'},
    {0},
};

static int cmd_subscribe(struct cli_args *args)
{
    struct subscriber s = {.as_json = args->json};
    const char *count = cli_arg(args, 'n');
    if (count && parse_limit(count, &s.limit) < 0) {
        cli_error("subscribe: -n takes a positive count of events, not '%s'", count);
        return CLI_USAGE;
    }
    if (args->argc == 0) {
        cli_error("subscribe: expected at least one PATTERN (e.g. greeted, order.*, #)");
        return CLI_USAGE;
    }
    for (int i = 0; i < args->argc; i++) {
        if (!*args->argv[i] || strlen(args->argv[i]) > 255) {
            cli_error("subscribe: a pattern must be 1 to 255 characters");
            return CLI_USAGE;
        }
    }
    const struct cli_project project = args->project;
    char err[1024], endpoint[PATH_MAX + 16];
    s.project = &project;
    /* The project's backends: key, as emit and the workers follow it: with events on RabbitMQ
     * the subscription is the broker's, or it would wait on the node's bus, where none come. */
    if (cli_backends_apply(&project, err, sizeof err) < 0) {
        cli_error("subscribe: %s", err);
        return CLI_FAILURE;
    }
    if (rundir_find_node(project.dir, endpoint, sizeof endpoint, &s.node_pid, err, sizeof err) < 0) {
        cli_error("subscribe: %s", err);
        return CLI_FAILURE;
    }
    /* No SA_RESTART: the signal must interrupt poll so the loop sees the request. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct devnode *dn = devnode_open(endpoint, "cli", err, sizeof err);
    if (!dn) {
        cli_error("subscribe: %s", err);
        return CLI_FAILURE;
    }
    int rc = run(&s, dn, args->argv, args->argc);
    /* Unsubscribes, so unacked deliveries go back at once, not at expiry. */
    devnode_close(dn);
    return rc;
}

const struct cli_command cmd_subscribe_entry = {
    .name = "subscribe",
    .usage = "[-c PATH] [--json] [-n COUNT] PATTERN...",
    .summary = "print events as they are published",
    .flags = CLI_NEEDS_PROJECT | CLI_NEEDS_NODE | CLI_JSON,
    .options = options,
    .run = cmd_subscribe,
};
