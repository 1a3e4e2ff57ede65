/* cmd_tail: `devnode tail`: lines of the running node's ring (-n), then new ones (-f), filtered
 * node-side; a trace as a timeline; and, when no node runs, the same answers from the log
 * files. Off a terminal it is lossless: what the ring dropped before we read it is read from
 * the log files. A closed pipe or Ctrl-C ends it quietly with status 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/rundir.h"
#include "config/config.h"
#include "tail/catchup.h"
#include "tail/linebuf.h"
#include "tail/offline.h"
#include "tail/tailclient.h"
#include "tail/tailprint.h"

#define DEFAULT_BACKLOG 10
#define BACKLOG_ALL INT64_MAX
#define CATCHUP_WAIT_MS 10000  /* for the node to write skipped lines to its log file */

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
    int lossless;                /* read skipped lines from the log files instead of skipping */
    struct catchup catchup;
    struct tailclient *client;   /* kept alive while the log files are read */
    int output_gone;
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

/* Shows (or, for a sorted timeline, collects) one line. 0, or -1 when the reader is gone. */
static int show_line(struct tail_run *run, const struct log_line *line)
{
    if (run->timeline_sorted) {
        linebuf_add(&run->collected, line);
        return 0;
    }
    tailprint_measure(&run->print, line);
    tailprint_line(&run->print, line);
    if (run->print.out.len > (1u << 20) && flush_out(run) < 0) {
        run->output_gone = 1;
        return -1;
    }
    return 0;
}

static int on_catchup_line(void *ctx, const struct log_line *line)
{
    return show_line(ctx, line) < 0;
}

static void on_catchup_tick(void *ctx)
{
    struct tail_run *run = ctx;
    tailclient_keepalive(run->client);
}

/* The matching lines the node could not send before a message's lines: from the log files
 * when lossless and their seqs are known, else (and for any the files do not have) the notice
 * of how many we miss. */
static void on_skipped(struct tail_run *run, const struct tailconv_out *out)
{
    uint64_t count = out->skipped;
    if (run->lossless && out->gap_seqs_known) {
        if (out->gap_first > out->gap_last)
            return; /* shown already */
        char err[1024];
        struct rundir rd;
        if (!run->catchup.logs_dir[0]) {
            rundir_paths(&rd, run->project.dir);
            catchup_init(&run->catchup, rd.logs_dir);
        }
        int64_t found = catchup_read(&run->catchup, out->gap_first, out->gap_last, &run->filter, CATCHUP_WAIT_MS,
                                     on_catchup_line, on_catchup_tick, run, err, sizeof err);
        if (found < 0)
            cli_error("tail: cannot read the skipped lines: %s", err);
        if (run->output_gone)
            return;
        if (count == 0)
            return; /* a resubscription's gap: no count to hold it against */
        count = found < 0 ? count : (uint64_t)found >= count ? 0 : count - (uint64_t)found;
    }
    if (count > 0)
        tailprint_skipped(&run->print, count);
}

/* Shows the lines of one `lines` message, after what was skipped before them: 0 to go on, -1
 * when the output is gone. */
static int on_lines(struct tail_run *run, const struct tailconv_out *out)
{
    if (out->gap)
        on_skipped(run, out);
    if (run->output_gone)
        return -1;
    /* Measured first, so the name column is sized for the whole batch before printing. */
    for (size_t i = 0; i < out->line_count && !run->timeline_sorted; i++)
        tailprint_measure(&run->print, &out->lines[i].line);
    for (size_t i = 0; i < out->line_count; i++) {
        const struct log_line *line = &out->lines[i].line;
        if (run->timeline_sorted)
            linebuf_add(&run->collected, line);
        else
            tailprint_line(&run->print, line);
    }
    return flush_out(run);
}

static int run_online(struct tail_run *run)
{
    char err[1024];
    struct tailclient client;
    /* Lossless: subscribe again for the whole ring, then read from the log files what lies
     * between the last line shown and the ring's oldest. */
    struct tailconv_options opts = {.resume = 1,
                                    .resume_backlog = run->lossless ? BACKLOG_ALL : 0,
                                    .resume_gap = run->lossless};
    if (tailclient_open(&client, run->project.dir, &run->req, &opts, err, sizeof err) < 0) {
        cli_error("tail: %s", err);
        return CLI_FAILURE;
    }
    client.output_fd = 1;
    run->client = &client;
    int rc = CLI_OK, truncated = 0;
    for (;;) {
        const struct tailconv_out *out;
        enum tailclient_event ev = tailclient_next(&client, &out, &interrupted, err, sizeof err);
        if (ev == TAILCLIENT_INTERRUPTED)
            break;
        if (ev == TAILCLIENT_FAILED) {
            cli_error("tail: %s", err);
            rc = CLI_FAILURE;
            break;
        }
        if (ev == TAILCLIENT_RESUMED) {
            if (run->lossless)
                fprintf(stderr, "devnode: tail: the node had dropped this tail (no renewal for 5 s); "
                                "following again, missed lines are read from .devnode/logs\n");
            else
                fprintf(stderr, "devnode: tail: the node had dropped this tail (no renewal for 5 s); "
                                "following again from now, missed lines are in .devnode/logs\n");
            continue;
        }
        if (ev == TAILCLIENT_END) {
            truncated = out->truncated;
            if (out->gap)
                on_skipped(run, out);
            flush_out(run);
            break;
        }
        if (on_lines(run, out) < 0)
            break; /* the reader is gone (| head): end quietly */
    }
    tailclient_close(&client);
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

/* Without a node the config says which services there are (not how many instances ran). A
 * config that does not load cannot say: the log files are still worth reading then. */
static int check_names_offline(const struct cli_project *project, char *const *names, size_t count)
{
    char err[1024];
    struct config cfg;
    if (count == 0 || config_load_unresolved(project->config_path, &cfg, err, sizeof err) < 0)
        return CLI_OK;
    struct cli_names services = {0};
    for (size_t i = 0; i < cfg.service_count; i++)
        cli_names_add(&services, cfg.services[i].name, strlen(cfg.services[i].name), -1, NULL, 0);
    config_free(&cfg);
    int rc = cli_check_names("tail", &services, names, count, CLI_NAMES_INSTANCES | CLI_NAMES_NODE) < 0 ? CLI_USAGE
                                                                                                       : CLI_OK;
    cli_names_free(&services);
    return rc;
}

extern const struct cli_command cmd_tail_entry;

static void usage_error(const char *fmt, const char *arg)
{
    fputs("devnode: tail: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    cli_print_usage(stderr, &cmd_tail_entry, "tail", 0);
}

static const struct cli_option options[] = {
    {"lines", 'n', 1, 'n'},
    {"follow", 'f', 0, 'f'},
    {"trace", 0, 1, 't'},
    {"grep", 0, 1, 'g'},
    {"level", 0, 1, 'l'},
    {"lossy", 0, 0, 'L'}, /* one choice with --lossless: the last one given wins */
    {"lossless", 0, 0, 'L'},
    {0},
};

static int cmd_tail(struct cli_args *args)
{
    const char *count_arg = cli_arg(args, 'n'), *loss = cli_arg(args, 'L');
    struct tail_run run;
    memset(&run, 0, sizeof run);
    int as_json = args->json, lossy = loss ? !strcmp(loss, "lossy") : -1;
    run.req.follow = cli_arg(args, 'f') != NULL;
    run.req.trace = cli_arg(args, 't');
    run.req.grep = cli_arg(args, 'g');
    run.req.level = cli_arg(args, 'l');
    run.req.backlog = run.req.trace ? BACKLOG_ALL : DEFAULT_BACKLOG;
    if (count_arg && parse_count(count_arg, &run.req.backlog) < 0) {
        usage_error("-n takes a number of lines, not '%s'", count_arg);
        return CLI_USAGE;
    }
    run.req.services = (const char *const *)args->argv;
    run.req.service_count = (size_t)args->argc;
    int color = args->color;
    char err[1024];
    if (tail_request_filter(&run.req, &run.filter, err, sizeof err) < 0) {
        usage_error("%s", err);
        return CLI_USAGE;
    }
    run.project = args->project;
    install_signals();
    tailprint_init(&run.print, as_json ? TAILPRINT_JSON : run.req.trace ? TAILPRINT_TIMELINE : TAILPRINT_HUMAN,
                   color && !as_json);
    run.print.interrupted = &interrupted;
    run.timeline_sorted = run.req.trace && !run.req.follow;
    /* A terminal is read by a person: skipping (with a notice) beats falling ever further
     * behind. A file or a pipe is read by a program that wants every line. */
    run.lossless = lossy < 0 ? !isatty(1) : !lossy;
    linebuf_init(&run.collected, 0);

    char endpoint[PATH_MAX + 16];
    pid_t pid;
    int rc;
    char *const *names = (char *const *)run.req.services;
    if (rundir_find_node(run.project.dir, endpoint, sizeof endpoint, &pid, err, sizeof err) == 0) {
        rc = cli_check_targets(&run.project, "tail", names, run.req.service_count,
                               CLI_NAMES_INSTANCES | CLI_NAMES_NODE);
        if (rc == CLI_OK)
            rc = run_online(&run);
    } else if (run.req.follow) {
        cli_error("tail: %s; -f needs a running node (`devnode up`)", err);
        rc = CLI_FAILURE;
    } else {
        rc = check_names_offline(&run.project, names, run.req.service_count);
        if (rc == CLI_OK)
            rc = run_offline(&run);
    }
    linebuf_free(&run.collected);
    tailprint_free(&run.print);
    logfilter_free(&run.filter);
    return rc;
}

const struct cli_command cmd_tail_entry = {
    .name = "tail",
    .usage = "[-c PATH] [-n N] [-f] [--trace ID] [--grep PATTERN] [--level LEVEL] [--json] "
             "[--color=auto|always|never] [--lossy|--lossless] [SERVICE[.N]...]",
    .summary = "log lines of the node, live with -f, or one trace",
    .flags = CLI_NEEDS_PROJECT | CLI_JSON | CLI_COLOR,
    .options = options,
    .run = cmd_tail,
};
