/* cmd_tail: `devnode tail`: lines of the running node's ring (-n), then new ones (-f), filtered
 * node-side; a trace as a timeline; and, when no node runs, the same answers from the log
 * files. A closed pipe or Ctrl-C ends it quietly with status 0. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/rundir.h"
#include "tail/linebuf.h"
#include "tail/offline.h"
#include "tail/tailclient.h"
#include "tail/tailprint.h"

#define DEFAULT_BACKLOG 10
#define BACKLOG_ALL INT64_MAX

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt; /* no SA_RESTART: a blocked write or poll returns at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed pipe shows up as EPIPE and ends us quietly */
}

static int parse_count(const char *s, int64_t *out)
{
    if (!s[0] || strspn(s, "0123456789") != strlen(s) || strlen(s) > 15)
        return -1;
    *out = strtoll(s, NULL, 10);
    return 0;
}

struct tail_run {
    struct tail_request req;
    struct logfilter filter;
    struct tailprint print;
    int timeline_sorted;      /* a one-shot trace query: collect, sort by time, then print */
    struct linebuf collected;
    struct cli_project project;
    struct tail_line *decoded;   /* the lines of one `lines` message */
    size_t decoded_cap;
};

/* 0 on success, -1 when the reader went away (which ends us quietly). */
static int flush_out(struct tail_run *run)
{
    return tailprint_flush(&run->print, 1);
}

static int print_sorted(struct tail_run *run, struct linebuf *lines)
{
    linebuf_sort_by_time(lines);
    for (size_t i = 0; i < lines->count; i++)
        tailprint_measure(&run->print, linebuf_get(lines, i));
    for (size_t i = 0; i < lines->count; i++) {
        tailprint_line(&run->print, linebuf_get(lines, i));
        if (run->print.out.len > (1u << 20) && flush_out(run) < 0)
            return -1;
    }
    return flush_out(run);
}

static int run_offline(struct tail_run *run)
{
    if (run->req.backlog == 0)
        return CLI_OK; /* -n 0 asks for nothing */
    char err[1024];
    struct rundir rd;
    rundir_paths(&rd, run->project.dir);
    struct linebuf lines;
    int files = offline_tail(rd.logs_dir, &run->filter, run->req.backlog, &lines, err, sizeof err);
    if (files <= 0) {
        linebuf_free(&lines);
        cli_error("tail: no node running and no log files in %s", rd.logs_dir);
        return CLI_FAILURE;
    }
    int rc = CLI_OK;
    if (run->req.trace && lines.count == 0) {
        cli_error("tail: no lines with trace_id %s in %s", run->req.trace, rd.logs_dir);
        rc = CLI_FAILURE;
    } else if (run->req.trace) {
        print_sorted(run, &lines);
    } else {
        for (size_t i = 0; i < lines.count; i++)
            tailprint_measure(&run->print, linebuf_get(&lines, i));
        for (size_t i = 0; i < lines.count; i++) {
            tailprint_line(&run->print, linebuf_get(&lines, i));
            if (run->print.out.len > (1u << 20) && flush_out(run) < 0)
                break;
        }
        flush_out(run);
    }
    linebuf_free(&lines);
    return rc;
}

/* Handles one `lines` message: 0 to go on, -1 when the output is gone or the message is bad. */
static int on_lines(struct tail_run *run, const struct wire_msg *msg)
{
    int64_t skipped = 0;
    wire_get_int(msg->body, "skipped", &skipped);
    const msgpack_object *lines = wire_map_get(msg->body, "lines");
    if (!lines || lines->type != MSGPACK_OBJECT_ARRAY) {
        cli_error("tail: bad `lines` message from the node");
        return -1;
    }
    if (skipped > 0)
        tailprint_skipped(&run->print, (uint64_t)skipped);
    uint32_t count = lines->via.array.size;
    if (count > run->decoded_cap) {
        struct tail_line *p = realloc(run->decoded, count * sizeof *p);
        if (!p)
            return -1;
        run->decoded = p;
        run->decoded_cap = count;
    }
    /* Decoded once, so the name column can be sized for the whole batch before printing. */
    size_t n = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (tailwire_unpack_line(&lines->via.array.ptr[i], &run->decoded[n]) == 0) {
            run->decoded[n].line.service = run->decoded[n].service;
            n++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (run->timeline_sorted)
            linebuf_add(&run->collected, &run->decoded[i].line);
        else
            tailprint_measure(&run->print, &run->decoded[i].line);
    }
    if (!run->timeline_sorted)
        for (size_t i = 0; i < n; i++)
            tailprint_line(&run->print, &run->decoded[i].line);
    return flush_out(run);
}

static int run_online(struct tail_run *run)
{
    char err[1024];
    struct tailclient client;
    if (tailclient_open(&client, run->project.dir, &run->req, err, sizeof err) < 0) {
        cli_error("tail: %s", err);
        return CLI_FAILURE;
    }
    client.output_fd = 1;
    int rc = CLI_OK, unsubscribe = 1, truncated = 0;
    for (;;) {
        struct wire_msg msg;
        enum tailclient_event ev = tailclient_next(&client, &msg, &interrupted, err, sizeof err);
        if (ev == TAILCLIENT_INTERRUPTED)
            break;
        if (ev == TAILCLIENT_FAILED) {
            cli_error("tail: %s", err);
            rc = CLI_FAILURE;
            break;
        }
        if (ev == TAILCLIENT_RESUMED) {
            fprintf(stderr, "devnode: tail: the node had dropped this tail (no renewal for 5 s); "
                            "following again from now, missed lines are in .devnode/logs\n");
            continue;
        }
        if (ev == TAILCLIENT_END) {
            int64_t skipped = 0;
            wire_get_int(msg.body, "skipped", &skipped);
            const msgpack_object *t = wire_map_get(msg.body, "truncated");
            truncated = t && t->type == MSGPACK_OBJECT_BOOLEAN && t->via.boolean;
            wire_msg_free(&msg);
            if (skipped > 0)
                tailprint_skipped(&run->print, (uint64_t)skipped);
            flush_out(run);
            unsubscribe = 0;
            break;
        }
        int out = on_lines(run, &msg);
        wire_msg_free(&msg);
        if (out < 0)
            break; /* the reader is gone (| head): end quietly */
    }
    tailclient_close(&client, unsubscribe);
    if (rc == CLI_OK && run->timeline_sorted) {
        /* The ring no longer holds every line of this trace: the log files do. */
        if (truncated)
            return run_offline(run);
        if (run->collected.count == 0) {
            cli_error("tail: no lines with trace_id %s", run->req.trace);
            return CLI_FAILURE;
        }
        print_sorted(run, &run->collected);
    }
    return rc;
}

static void usage_error(const char *fmt, const char *arg)
{
    fputs("devnode: tail: ", stderr);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: devnode tail %s\n", cli_find_command("tail")->usage);
}

int cmd_tail(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"lines", required_argument, NULL, 'n'},
        {"follow", no_argument, NULL, 'f'},
        {"trace", required_argument, NULL, 't'},
        {"grep", required_argument, NULL, 'g'},
        {"level", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},
        {"color", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *config_arg = NULL, *color_mode = NULL, *count_arg = NULL;
    struct tail_run run;
    memset(&run, 0, sizeof run);
    int as_json = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:n:fh", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config_arg = optarg; break;
        case 'n': count_arg = optarg; break;
        case 'f': run.req.follow = 1; break;
        case 't': run.req.trace = optarg; break;
        case 'g': run.req.grep = optarg; break;
        case 'l': run.req.level = optarg; break;
        case 'j': as_json = 1; break;
        case 'C': color_mode = optarg; break;
        case 'h':
            printf("usage: devnode tail %s\n", cli_find_command("tail")->usage);
            return CLI_OK;
        default:
            return CLI_USAGE;
        }
    }
    run.req.backlog = run.req.trace ? BACKLOG_ALL : DEFAULT_BACKLOG;
    if (count_arg && parse_count(count_arg, &run.req.backlog) < 0) {
        usage_error("-n takes a number of lines, not '%s'", count_arg);
        return CLI_USAGE;
    }
    run.req.services = (const char *const *)argv + optind;
    run.req.service_count = (size_t)(argc - optind);
    int color = 0;
    if (cli_color_mode(color_mode, &color) < 0) {
        usage_error("--color takes auto, always or never, not '%s'", color_mode);
        return CLI_USAGE;
    }
    char err[1024];
    if (tail_request_filter(&run.req, &run.filter, err, sizeof err) < 0) {
        usage_error("%s", err);
        return CLI_USAGE;
    }
    if (cli_find_project(config_arg, &run.project, err, sizeof err) < 0) {
        cli_error("%s", err);
        logfilter_free(&run.filter);
        return CLI_USAGE;
    }
    install_signals();
    tailprint_init(&run.print, as_json ? TAILPRINT_JSON : run.req.trace ? TAILPRINT_TIMELINE : TAILPRINT_HUMAN,
                   color && !as_json);
    run.print.interrupted = &interrupted;
    run.timeline_sorted = run.req.trace && !run.req.follow;
    linebuf_init(&run.collected, 0);

    char endpoint[PATH_MAX + 16];
    pid_t pid;
    int rc;
    if (rundir_find_node(run.project.dir, endpoint, sizeof endpoint, &pid, err, sizeof err) == 0) {
        rc = run_online(&run);
    } else if (run.req.follow) {
        cli_error("tail: %s; -f needs a running node (`devnode up`)", err);
        rc = CLI_FAILURE;
    } else {
        rc = run_offline(&run);
    }
    linebuf_free(&run.collected);
    free(run.decoded);
    tailprint_free(&run.print);
    logfilter_free(&run.filter);
    return rc;
}
