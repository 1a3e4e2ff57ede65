/* cmd_events: `devnode events [--from N] [--follow] [--json] PATTERN`: prints the retained
 * events of the project's streams from their journals. It reads the files read-only, so it
 * works with or without a running node and never disturbs one. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/msgjson.h"
#include "common/rundir.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "common/journal.h"
#include "proto/streamrec.h"
#include "common/topic.h"

struct events_view {
    const char *pattern;
    int json;
};

static void print_record(const struct events_view *v, const char *stream, uint64_t offset, const void *payload,
                         size_t len)
{
    struct streamrec rec;
    if (streamrec_unpack(&rec, payload, len) < 0)
        return;
    char type[256];
    snprintf(type, sizeof type, "%.*s", (int)rec.type->via.str.size, rec.type->via.str.ptr);
    if (!topic_match(v->pattern, type)) {
        streamrec_free(&rec);
        return;
    }
    json_t *body = msgjson_to_json(rec.body);
    json_t *headers = msgjson_to_json(rec.headers);
    if (v->json) {
        json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:s%, s:O, s:O}", "stream", stream, "offset",
                              (json_int_t)offset, "time_ns", (json_int_t)rec.wall_ns, "type", type, "source",
                              rec.source->via.str.ptr, (size_t)rec.source->via.str.size, "headers",
                              headers ? headers : json_null(), "body", body ? body : json_null());
        char *text = json_dumps(o, JSON_COMPACT);
        puts(text);
        free(text);
        json_decref(o);
    } else {
        time_t t = (time_t)(rec.wall_ns / 1000000000);
        struct tm tm;
        localtime_r(&t, &tm);
        char clock[16];
        strftime(clock, sizeof clock, "%H:%M:%S", &tm);
        char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_t *trace = headers ? json_object_get(headers, "trace_id") : NULL;
        printf("%8llu  %s.%03d  %s  %s", (unsigned long long)offset, clock,
               (int)((rec.wall_ns / 1000000) % 1000), type, text ? text : "null");
        if (json_is_string(trace))
            printf("  trace_id=%s", json_string_value(trace));
        printf("  source=%.*s\n", (int)rec.source->via.str.size, rec.source->via.str.ptr);
        free(text);
    }
    json_decref(body);
    json_decref(headers);
    streamrec_free(&rec);
}

static const struct cli_option options[] = {
    {"from", 0, 1, 'f'},
    {"follow", 0, 0, 'F'},
    {0},
};

static int cmd_events(struct cli_args *args)
{
    long long from = 0;
    int follow = cli_arg(args, 'F') != NULL;
    struct events_view view = {.pattern = "#", .json = args->json};
    const char *from_arg = cli_arg(args, 'f');
    if (from_arg) {
        char *end;
        from = strtoll(from_arg, &end, 10);
        if (*end || from < 0) {
            cli_error("events: --from takes an offset (0 or more), not '%s'", from_arg);
            return CLI_USAGE;
        }
    }
    if (args->argc > 0)
        view.pattern = args->argv[0];
    if (args->argc > 1 || !topic_pattern_valid(view.pattern)) {
        cli_error("events: usage: devnode events [--from N] [--follow] [--json] [PATTERN]");
        return CLI_USAGE;
    }
    const struct cli_project project = args->project;
    char err[1024];
    struct config cfg;
    /* Only the streams are needed: an unrelated $(env.X) unset in this shell must not matter. */
    if (config_load_unresolved(project.config_path, &cfg, err, sizeof err) < 0) {
        cli_error("%s", err);
        return CLI_USAGE;
    }
    if (cfg.stream_count == 0) {
        cli_error("events: %s declares no streams (streams: {book.#: {retain_events: 100000}})", cfg.path);
        config_free(&cfg);
        return CLI_FAILURE;
    }
    signal(SIGPIPE, SIG_DFL); /* `| head` ends us quietly */
    struct rundir rd;
    rundir_paths(&rd, project.dir);
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/streams", rd.dir);

    size_t n = cfg.stream_count;
    struct journal **journals = xcalloc(n, sizeof *journals);
    struct journal_reader **readers = xcalloc(n, sizeof *readers);
    int status = CLI_OK;
    for (size_t i = 0; i < n; i++) {
        char name[600];
        streamrec_journal_name(cfg.streams[i].pattern, name, sizeof name);
        struct journal_options o = {.dir = dir, .name = name, .retain_records = cfg.streams[i].retain_events,
                                    .readonly = 1};
        struct journal_recovery rep;
        if (journal_open(&journals[i], &o, &rep, err, sizeof err) < 0 ||
            journal_reader_open(journals[i], (uint64_t)from, &readers[i]) < 0) {
            cli_error("events: stream %s: %s", cfg.streams[i].pattern, err);
            status = CLI_FAILURE;
            goto out;
        }
    }
    for (;;) {
        for (size_t i = 0; i < n; i++) {
            uint64_t offset;
            const void *payload;
            size_t len;
            while (journal_reader_next(readers[i], &offset, &payload, &len) == 1)
                print_record(&view, cfg.streams[i].pattern, offset, payload, len);
        }
        fflush(stdout);
        if (!follow)
            break;
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
        for (size_t i = 0; i < n; i++)
            journal_refresh(journals[i]);
    }
out:
    for (size_t i = 0; i < n; i++) {
        journal_reader_close(readers[i]);
        journal_close(journals[i]);
    }
    free(readers);
    free(journals);
    config_free(&cfg);
    return status;
}

const struct cli_command cmd_events_entry = {
    .name = "events",
    .usage = "[-c PATH] [--from N] [--follow] [--json] [PATTERN]",
    .summary = "the retained events of the streams, from the journal",
    .flags = CLI_NEEDS_PROJECT | CLI_JSON,
    .options = options,
    .run = cmd_events,
};
