/* Unit tests for the dashboard's model (tui/model.c): status replies into services and
 * instances, table rows and selection, the bounded line buffer and its filtered index,
 * filters, search, the follow/pause logic of the log view, the selected line's trace and the
 * trace view (order, duplicates, lanes), and the cleaning of child text. No curses here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msg_control.h"
#include "proto/wire.h"
#include "tui/model.h"

/* ---------------------------------------------------------------- helpers */

struct feeder {
    uint64_t seq;
    int64_t wall_ns;
};

/* Adds a line from a heap copy freed right after, so a model keeping the caller's pointer
 * fails under ASan. */
static void feed(struct model *m, struct feeder *f, const char *service, int instance, const char *trace,
                 enum log_level level, const char *text)
{
    char *copy = strdup(text);
    char *svc = strdup(service);
    assert_non_null(copy);
    assert_non_null(svc);
    struct log_line line = {
        .seq = ++f->seq,
        .wall_ns = f->wall_ns += 1000000,
        .service = svc,
        .instance = instance,
        .pid = 100 + instance,
        .stream = LOG_STREAM_STDOUT,
        .level = level,
        .text = copy,
        .len = strlen(copy),
    };
    snprintf(line.trace_id, sizeof line.trace_id, "%s", trace ? trace : "");
    model_add_line(m, &line);
    free(copy);
    free(svc);
}

static void feed_n(struct model *m, struct feeder *f, int n)
{
    char text[64];
    for (int i = 0; i < n; i++) {
        snprintf(text, sizeof text, "line %llu", (unsigned long long)f->seq + 1);
        feed(m, f, "Web", 0, NULL, LOG_LEVEL_INFO, text);
    }
}

/* The text of the line on row `row` of a window of `rows` rows. */
static const char *row_text(struct model *m, size_t rows, size_t row, size_t *sel_row)
{
    const struct model_line *out[64];
    assert_true(rows <= 64);
    size_t n = model_logs_window(m, rows, out, sel_row);
    return row < n ? out[row]->text : NULL;
}

struct status_inst {
    int index;
    const char *state;
    int pid;
    int restarts;
    int exit_code;       /* -2: no last_exit */
    const char *signal;  /* last_exit signal or NULL */
    const char *failure;
    const char *waiting; /* NULL: no `waiting` key */
};

struct status_svc {
    const char *name;
    int desired, running;
    int sockets;
    size_t count;
    const struct status_inst *insts;
};

static void pack_status(struct wire_body *b, const struct status_svc *svcs, size_t n)
{
    wire_body_init(b);
    msgpack_packer *pk = &b->pk;
    msgpack_pack_map(pk, 3);
    wire_pack_kv_int(pk, "id", 1);
    wire_pack_str(pk, "node");
    msgpack_pack_map(pk, 8);
    wire_pack_kv_int(pk, "pid", 4242);
    wire_pack_kv_str(pk, "endpoint", "ipc:///tmp/x/.devnode/node.sock");
    wire_pack_kv_str(pk, "config", "/tmp/x/.lymph.yml");
    wire_pack_kv_int(pk, "uptime_ms", 65000);
    wire_pack_kv_double(pk, "cpu_percent", 1.5);
    wire_pack_kv_int(pk, "rss_kib", 7000);
    wire_pack_kv_bool(pk, "stopping", 0);
    wire_pack_str(pk, "sockets"); /* "web" (the services' socket) has connections nobody takes */
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 2);
    wire_pack_kv_str(pk, "name", "api");
    wire_pack_kv_str(pk, "warning", NULL);
    msgpack_pack_map(pk, 2);
    wire_pack_kv_str(pk, "name", "web");
    wire_pack_kv_str(pk, "warning", "web: 3 connections waiting on 127.0.0.1:4080, none accepted for 5 s");
    wire_pack_str(pk, "services");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, 5);
        wire_pack_kv_str(pk, "name", svcs[i].name);
        wire_pack_kv_int(pk, "desired", svcs[i].desired);
        wire_pack_kv_int(pk, "running", svcs[i].running);
        wire_pack_str(pk, "sockets");
        msgpack_pack_array(pk, svcs[i].sockets);
        for (int s = 0; s < svcs[i].sockets; s++)
            wire_pack_str(pk, "web");
        wire_pack_str(pk, "instances");
        msgpack_pack_array(pk, svcs[i].count);
        for (size_t k = 0; k < svcs[i].count; k++) {
            const struct status_inst *in = &svcs[i].insts[k];
            msgpack_pack_map(pk, 10 + (in->waiting != NULL));
            wire_pack_kv_int(pk, "index", in->index);
            if (in->waiting)
                wire_pack_kv_str(pk, "waiting", in->waiting);
            if (in->index == 2)
                wire_pack_kv_str(pk, "port", "http");
            else
                wire_pack_kv_int(pk, "port", 5000 + in->index);
            wire_pack_kv_str(pk, "state", in->state);
            wire_pack_kv_int(pk, "pid", in->pid);
            wire_pack_kv_int(pk, "restarts", in->restarts);
            wire_pack_kv_int(pk, "uptime_ms", 1234);
            wire_pack_kv_double(pk, "cpu_percent", 0.5);
            wire_pack_kv_int(pk, "rss_kib", 2048);
            wire_pack_str(pk, "last_exit");
            if (in->exit_code == -2) {
                msgpack_pack_nil(pk);
            } else {
                msgpack_pack_map(pk, 2);
                wire_pack_str(pk, "code");
                if (in->signal)
                    msgpack_pack_nil(pk);
                else
                    msgpack_pack_int(pk, in->exit_code);
                wire_pack_kv_str(pk, "signal", in->signal);
            }
            wire_pack_kv_str(pk, "failure", in->failure);
        }
    }
}

static int apply(struct model *m, const struct status_svc *svcs, size_t n)
{
    struct wire_body b;
    pack_status(&b, svcs, n);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, b.sbuf.data, b.sbuf.size, NULL), MSGPACK_UNPACK_SUCCESS);
    int rc = model_apply_status(m, &up.data);
    msgpack_unpacked_destroy(&up);
    wire_body_free(&b);
    return rc;
}

static const struct status_inst web_insts[] = {
    {0, "running", 101, 0, -2, NULL, NULL, NULL},
    {1, "backoff", 0, 3, 1, NULL, NULL, NULL},
};
static const struct status_inst greet_insts[] = {
    {0, "running", 201, 0, -2, NULL, NULL, NULL},
    {1, "failed", 0, 0, 127, NULL, "command not found", NULL},
    {2, "running", 203, 1, -1, "KILL", NULL, NULL},
};

/* ---------------------------------------------------------------- status and table */

/* depends_on's states: a held instance says for what, a finished one-shot is completed. */
static void test_status_waiting_completed_disabled(void **state)
{
    static const struct status_inst insts[] = {
        {0, "waiting", 0, 0, -2, NULL, NULL, "waiting for Migrate: exited 1"},
    };
    static const struct status_inst done[] = {{0, "completed", 0, 0, 0, NULL, NULL, NULL}};
    static const struct status_inst off[] = {{0, "disabled", 0, 0, -2, NULL, NULL, NULL}};
    struct model m;
    model_init(&m, 100);
    struct status_svc svcs[] = {{"Api", 1, 0, 0, 1, insts}, {"Migrate", 1, 0, 0, 1, done}, {"Admin", 1, 0, 0, 1, off}};
    assert_int_equal(apply(&m, svcs, 3), 0);
    assert_int_equal(m.services[0].instances[0].state, MODEL_STATE_WAITING);
    assert_string_equal(m.services[0].instances[0].waiting, "waiting for Migrate: exited 1");
    assert_string_equal(model_state_name(MODEL_STATE_WAITING), "waiting");
    assert_int_equal(m.services[1].instances[0].state, MODEL_STATE_COMPLETED);
    assert_string_equal(m.services[1].instances[0].waiting, "");
    assert_int_equal(m.services[2].instances[0].state, MODEL_STATE_DISABLED);
    model_free(&m);
}

static void test_status_fills_services_and_instances(void **state)
{
    struct model m;
    model_init(&m, 100);
    struct status_svc svcs[] = {
        {"Web", 2, 1, 1, 2, web_insts},
        {"Greeting", 3, 2, 0, 3, greet_insts},
    };
    assert_int_equal(apply(&m, svcs, 2), 0);
    assert_true(m.node.known);
    assert_int_equal(m.node.pid, 4242);
    assert_string_equal(m.node.endpoint, "ipc:///tmp/x/.devnode/node.sock");
    assert_int_equal(m.service_count, 2);
    assert_string_equal(m.services[0].name, "Web");
    assert_true(m.services[0].has_socket);
    assert_false(m.services[1].has_socket);
    assert_int_equal(m.services[0].desired, 2);
    assert_int_equal(m.services[0].running, 1);
    assert_int_equal(m.services[0].instances[1].state, MODEL_STATE_BACKOFF);
    assert_int_equal(m.services[0].instances[1].restarts, 3);
    assert_true(m.services[0].instances[1].has_exit);
    assert_int_equal(m.services[0].instances[1].exit_code, 1);
    assert_false(m.services[0].instances[0].has_exit);
    assert_int_equal(m.services[1].instances[1].state, MODEL_STATE_FAILED);
    assert_string_equal(m.services[1].instances[1].failure, "command not found");
    assert_string_equal(m.services[1].instances[2].exit_signal, "KILL");
    assert_int_equal(m.services[1].instances[2].exit_code, -1);
    assert_string_equal(m.services[0].warning, "web: 3 connections waiting on 127.0.0.1:4080, none accepted for 5 s");
    assert_string_equal(m.services[1].warning, "");
    assert_string_equal(m.services[1].instances[1].port, "5001");
    assert_string_equal(m.services[1].instances[2].port, "http");
    size_t inst, running, starting, failing;
    model_totals(&m, &inst, &running, &starting, &failing);
    assert_int_equal(inst, 5);
    assert_int_equal(running, 3);
    assert_int_equal(failing, 2);
    model_free(&m);
}

/* An instance's liveness misses (status `health`, packed by the node's own packers) show as
 * a mark in the table; a passing probe shows nothing. */
static void test_liveness_misses_are_marked(void **state)
{
    struct wire_body b;
    wire_body_init(&b);
    msgpack_packer *pk = &b.pk;
    msgpack_object id = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 1};
    struct proto_status_node head = {.pid = 1, .endpoint = "ipc:///x", .config = "/x/.lymph.yml", .run_dir = "/x"};
    proto_pack_status_head(pk, &id, &head, 0);
    proto_pack_status_services_begin(pk, 1);
    proto_pack_status_service(pk, &(struct proto_status_service){.name = "Web", .desired = 2, .running = 2}, 0);
    proto_pack_status_instances_begin(pk, 2);
    struct proto_status_health missed = {.probe = "GET http://127.0.0.1:5000/healthz", .result = "missed",
                                         .failures = 2, .failures_max = 3, .last_error = "timed out after 1s"};
    struct proto_status_health ok = {.probe = "GET http://127.0.0.1:5001/healthz", .result = "ok", .failures_max = 3};
    proto_pack_status_instance(pk, &(struct proto_status_instance){.index = 0, .state = "running", .pid = 10,
                                                                    .command = "x", .port = "5000", .health = &missed});
    proto_pack_status_instance(pk, &(struct proto_status_instance){.index = 1, .state = "running", .pid = 11,
                                                                    .command = "x", .port = "5001", .health = &ok});
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, b.sbuf.data, b.sbuf.size, NULL), MSGPACK_UNPACK_SUCCESS);
    struct model m;
    model_init(&m, 100);
    assert_int_equal(model_apply_status(&m, &up.data), 0);
    assert_string_equal(m.services[0].instances[0].health, "live 2/3: timed out after 1s");
    assert_string_equal(m.services[0].instances[1].health, "");
    model_free(&m);
    msgpack_unpacked_destroy(&up);
    wire_body_free(&b);
}

static void test_status_rejects_malformed_bodies(void **state)
{
    struct model m;
    model_init(&m, 100);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    wire_pack_kv_str(&pk, "services", "not a list");
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(model_apply_status(&m, &up.data), -1);
    assert_false(m.node.known);
    assert_int_equal(m.service_count, 0);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    model_free(&m);
}

static void test_table_rows_selection_and_targets(void **state)
{
    struct model m;
    model_init(&m, 100);
    struct status_svc svcs[] = {
        {"Web", 2, 1, 1, 2, web_insts},
        {"Greeting", 3, 2, 0, 3, greet_insts},
    };
    apply(&m, svcs, 2);
    /* small services start expanded: Web, Web.0, Web.1, Greeting, Greeting.0..2 */
    assert_int_equal(model_table_row_count(&m), 7);
    char target[64];
    assert_int_equal(model_table_target(&m, target, sizeof target, NULL), 0);
    assert_string_equal(target, "Web");
    model_table_move(&m, 2);
    model_table_target(&m, target, sizeof target, NULL);
    assert_string_equal(target, "Web.1");
    model_table_move(&m, 3);
    model_table_target(&m, target, sizeof target, NULL);
    assert_string_equal(target, "Greeting.1");
    /* a refresh keeps the selection on the same instance */
    apply(&m, svcs, 2);
    model_table_target(&m, target, sizeof target, NULL);
    assert_string_equal(target, "Greeting.1");
    /* collapsing moves the selection to the service row */
    model_table_expand(&m, 0);
    model_table_target(&m, target, sizeof target, NULL);
    assert_string_equal(target, "Greeting");
    assert_int_equal(model_table_row_count(&m), 4);
    /* scaled down to one instance: the selection stays inside the table */
    model_table_expand(&m, 1);
    model_table_move(&m, 3);
    struct status_svc smaller[] = {
        {"Web", 2, 1, 1, 2, web_insts},
        {"Greeting", 1, 1, 0, 1, greet_insts},
    };
    apply(&m, smaller, 2);
    model_table_target(&m, target, sizeof target, NULL);
    assert_string_equal(target, "Greeting.0");
    model_table_move(&m, 100);
    assert_int_equal(model_table_selected_row(&m), model_table_row_count(&m) - 1);
    model_table_move(&m, -100);
    assert_int_equal(model_table_selected_row(&m), 0);
    /* scrolling keeps the selected row among the rows shown */
    model_table_move(&m, 4);
    model_table_scroll_into_view(&m, 2);
    assert_true(model_table_selected_row(&m) >= m.table.top && model_table_selected_row(&m) < m.table.top + 2);
    model_free(&m);
}

/* ---------------------------------------------------------------- buffer */

static void test_ring_is_bounded_and_keeps_the_newest(void **state)
{
    struct model m;
    struct feeder f = {0, 0};
    model_init(&m, 100);
    feed_n(&m, &f, 250);
    assert_int_equal(m.logs.next - m.logs.first, 100);
    assert_int_equal(model_logs_count(&m), 100);
    assert_null(model_line_at(&m, m.logs.first - 1));
    assert_string_equal(model_line_at(&m, m.logs.first)->text, "line 151");
    assert_string_equal(model_line_at(&m, m.logs.next - 1)->text, "line 250");
    assert_int_equal(m.logs.received, 250);
    size_t sel;
    assert_string_equal(row_text(&m, 10, 9, &sel), "line 250");
    assert_int_equal(sel, 9);
    /* a filter's index shrinks with the buffer too */
    model_filter_level(&m, LOG_LEVEL_INFO);
    assert_int_equal(model_logs_count(&m), 100);
    feed(&m, &f, "Web", 0, NULL, LOG_LEVEL_DEBUG, "quiet");
    assert_int_equal(model_logs_count(&m), 99);
    feed_n(&m, &f, 1000);
    assert_int_equal(model_logs_count(&m), 100);
    model_free(&m);
}

static void test_notes_and_skipped_lines(void **state)
{
    struct model m;
    struct feeder f = {0, 0};
    model_init(&m, 100);
    feed_n(&m, &f, 3);
    model_add_skipped(&m, 0);
    assert_int_equal(model_logs_count(&m), 3);
    model_add_skipped(&m, 1234);
    assert_int_equal(m.logs.skipped, 1234);
    const struct model_line *l = model_logs_selected(&m);
    assert_true(l->note);
    assert_non_null(strstr(l->text, "1234 lines skipped"));
    /* notes pass every filter */
    model_filter_service(&m, "Nobody", -1);
    assert_int_equal(model_logs_count(&m), 1);
    model_free(&m);
}

static void test_text_is_cleaned_for_the_screen(void **state)
{
    struct strbuf sb;
    strbuf_init(&sb);
    const char raw[] = "a\033[31mred\033[0m b\033]0;title\007c\033[2J\td\001e\x7f";
    model_clean_text(&sb, raw, sizeof raw - 1);
    /* escapes and control bytes go; the tab moves to the next multiple of 8 columns */
    assert_string_equal(strbuf_cstr(&sb), "ared bc de");
    strbuf_reset(&sb);
    model_clean_text(&sb, "plain", 5);
    assert_string_equal(strbuf_cstr(&sb), "plain");
    strbuf_free(&sb);
    /* stored lines carry the cleaned text */
    struct model m;
    struct feeder f = {0, 0};
    model_init(&m, 10);
    feed(&m, &f, "Web", 0, NULL, LOG_LEVEL_NONE, "x\033[1;31my\033[0mz\r");
    assert_string_equal(model_logs_selected(&m)->text, "xyz");
    model_free(&m);
}

static void test_text_keeps_printable_utf8_only(void **state)
{
    if (!setlocale(LC_CTYPE, "C.UTF-8")) {
        skip();
        return;
    }
    struct strbuf sb;
    strbuf_init(&sb);
    /* é and 世 stay; a stray byte and a C1 control (U+009B, CSI for some terminals) do not */
    const char raw[] = "h\xc3\xa9llo \xe4\xb8\x96 \xff x \xc2\x9b[2J y";
    model_clean_text(&sb, raw, sizeof raw - 1);
    assert_string_equal(strbuf_cstr(&sb), "h\xc3\xa9llo \xe4\xb8\x96 ? x ?[2J y");
    strbuf_free(&sb);
    setlocale(LC_CTYPE, "C");
    /* in an ASCII locale every non-ASCII byte shows as '?' */
    strbuf_init(&sb);
    model_clean_text(&sb, "h\xc3\xa9", 3);
    assert_string_equal(strbuf_cstr(&sb), "h??");
    strbuf_free(&sb);
}

/* ---------------------------------------------------------------- filters */

static void test_filters_service_instance_level(void **state)
{
    struct model m;
    struct feeder f = {0, 0};
    model_init(&m, 100);
    feed(&m, &f, "Web", 0, NULL, LOG_LEVEL_INFO, "w0 info");
    feed(&m, &f, "Web", 1, NULL, LOG_LEVEL_ERROR, "w1 error");
    feed(&m, &f, "Greeting", 0, NULL, LOG_LEVEL_WARNING, "g0 warning");
    feed(&m, &f, "Greeting", 1, NULL, LOG_LEVEL_NONE, "g1 plain");
    assert_int_equal(model_logs_count(&m), 4);
    model_filter_service(&m, "Web", -1);
    assert_int_equal(model_logs_count(&m), 2);
    model_filter_service(&m, "Web", 1);
    assert_int_equal(model_logs_count(&m), 1);
    assert_string_equal(model_logs_selected(&m)->text, "w1 error");
    /* new lines go through the filter as they arrive */
    feed(&m, &f, "Web", 1, NULL, LOG_LEVEL_INFO, "w1 again");
    feed(&m, &f, "Web", 0, NULL, LOG_LEVEL_INFO, "w0 again");
    assert_int_equal(model_logs_count(&m), 2);
    model_filter_service(&m, NULL, -1);
    assert_int_equal(model_logs_count(&m), 6);
    model_filter_level(&m, LOG_LEVEL_WARNING);
    assert_int_equal(model_logs_count(&m), 2); /* error and warning; lines without a level drop out */
    model_filter_cycle_level(&m);
    assert_int_equal(m.filter.level_min, LOG_LEVEL_ERROR);
    assert_int_equal(model_logs_count(&m), 1);
    model_filter_cycle_level(&m);
    model_filter_cycle_level(&m);
    assert_int_equal(m.filter.level_min, LOG_LEVEL_NONE);
    model_filter_service(&m, "Greeting", -1);
    model_filter_level(&m, LOG_LEVEL_INFO);
    model_search_set(&m, "x");
    model_filter_clear(&m);
    assert_int_equal(m.filter.name, -1);
    assert_int_equal(m.filter.level_min, LOG_LEVEL_NONE);
    assert_string_equal(m.search, "");
    assert_int_equal(model_logs_count(&m), 6);
    model_free(&m);
}

/* ---------------------------------------------------------------- follow and pause */

static void test_scrolling_pauses_and_end_resumes(void **state)
{
    struct model m;
    struct feeder f = {0, 0};
    model_init(&m, 1000);
    feed_n(&m, &f, 50);
    size_t sel;
    assert_true(m.logs.follow);
    assert_string_equal(model_logs_selected(&m)->text, "line 50");
    /* Up: paused one line above the newest */
    model_logs_move(&m, -1, 10, 0);
    assert_false(m.logs.follow);
    assert_string_equal(model_logs_selected(&m)->text, "line 49");
    assert_string_equal(row_text(&m, 10, 0, &sel), "line 41");
    assert_int_equal(sel, 8);
    /* new lines do not move a paused view; they are counted */
    feed_n(&m, &f, 5);
    assert_string_equal(row_text(&m, 10, 0, &sel), "line 41");
    assert_string_equal(model_logs_selected(&m)->text, "line 49");
    assert_int_equal(m.logs.unseen, 5);
    /* PgUp moves selection and view by a page */
    model_logs_move(&m, -10, 10, 1);
    assert_string_equal(model_logs_selected(&m)->text, "line 39");
    assert_string_equal(row_text(&m, 10, 0, &sel), "line 31");
    /* Home: the oldest line */
    model_logs_home(&m, 10);
    assert_string_equal(model_logs_selected(&m)->text, "line 1");
    assert_string_equal(row_text(&m, 10, 0, &sel), "line 1");
    assert_int_equal(sel, 0);
    model_logs_move(&m, -1, 10, 0); /* already at the top: stays */
    assert_string_equal(model_logs_selected(&m)->text, "line 1");
    /* End: live again, newest at the bottom */
    model_logs_end(&m);
    assert_true(m.logs.follow);
    assert_int_equal(m.logs.unseen, 0);
    assert_string_equal(row_text(&m, 10, 9, &sel), "line 55");
    assert_int_equal(sel, 9);
    /* Down in follow mode changes nothing */
    model_logs_move(&m, 1, 10, 0);
    assert_true(m.logs.follow);
    /* Down past the last line resumes following */
    model_logs_move(&m, -1, 10, 0);
    model_logs_move(&m, 1, 10, 0);
    assert_false(m.logs.follow);
    assert_string_equal(model_logs_selected(&m)->text, "line 55");
    model_logs_move(&m, 1, 10, 0);
    assert_true(m.logs.follow);
    model_free(&m);
}

static void test_paused_view_survives_eviction(void **state)
{
    struct model m;
    struct feeder f = {0, 0};
    model_init(&m, 100);
    feed_n(&m, &f, 100);
    model_logs_home(&m, 10);
    assert_string_equal(model_logs_selected(&m)->text, "line 1");
    feed_n(&m, &f, 30); /* lines 1..30 leave the buffer under the paused view */
    size_t sel;
    assert_string_equal(row_text(&m, 10, 0, &sel), "line 31");
    assert_string_equal(model_logs_selected(&m)->text, "line 31");
    assert_false(m.logs.follow);
    /* a view shorter than the pane stays full */
    struct model small;
    struct feeder g = {0, 0};
    model_init(&small, 100);
    feed_n(&small, &g, 3);
    model_logs_move(&small, -1, 10, 0);
    assert_string_equal(row_text(&small, 10, 0, &sel), "line 1");
    assert_int_equal(sel, 1);
    model_free(&small);
    model_free(&m);
}

static void test_filter_change_keeps_a_paused_selection(void **state)
{
    struct model m;
    struct feeder f = {0, 0};
    model_init(&m, 100);
    for (int i = 0; i < 20; i++)
        feed(&m, &f, i % 2 ? "Greeting" : "Web", 0, NULL, LOG_LEVEL_INFO, i == 11 ? "needle" : "hay");
    model_search_set(&m, "NEEDLE");
    assert_int_equal(model_search_step(&m, 1, 1, 5), 1);
    assert_string_equal(model_logs_selected(&m)->text, "needle");
    model_filter_service(&m, "Greeting", -1);
    assert_string_equal(model_logs_selected(&m)->text, "needle");
    model_filter_service(&m, NULL, -1);
    assert_string_equal(model_logs_selected(&m)->text, "needle");
    model_free(&m);
}

/* ---------------------------------------------------------------- search */

static void test_search_steps_and_finds(void **state)
{
    struct model m;
    struct feeder f = {0, 0};
    model_init(&m, 100);
    feed(&m, &f, "Web", 0, NULL, LOG_LEVEL_INFO, "alpha one");
    feed(&m, &f, "Web", 0, NULL, LOG_LEVEL_INFO, "beta");
    feed(&m, &f, "Web", 0, NULL, LOG_LEVEL_INFO, "ALPHA two");
    feed(&m, &f, "Web", 0, NULL, LOG_LEVEL_INFO, "gamma");
    size_t at;
    assert_true(model_text_find("xxAlPhA", 7, 0, "alpha", 5, &at));
    assert_int_equal(at, 2);
    assert_false(model_text_find("alp", 3, 0, "alpha", 5, &at));
    assert_false(model_text_find("alpha", 5, 1, "alpha", 5, &at));
    assert_int_equal(model_search_step(&m, 1, 0, 10), 0); /* no search text yet */
    model_search_set(&m, "alpha");
    /* from the live view: the newest match, paused on it */
    assert_int_equal(model_search_step(&m, 1, 1, 10), 1);
    assert_false(m.logs.follow);
    assert_string_equal(model_logs_selected(&m)->text, "ALPHA two");
    assert_int_equal(model_search_step(&m, 1, 0, 10), 1); /* n: older */
    assert_string_equal(model_logs_selected(&m)->text, "alpha one");
    assert_int_equal(model_search_step(&m, 1, 0, 10), 0); /* none older: nothing moves */
    assert_string_equal(model_logs_selected(&m)->text, "alpha one");
    assert_int_equal(model_search_step(&m, 0, 0, 10), 1); /* N: newer */
    assert_string_equal(model_logs_selected(&m)->text, "ALPHA two");
    model_search_set(&m, "zeta");
    assert_int_equal(model_search_step(&m, 1, 1, 10), 0);
    assert_string_equal(model_logs_selected(&m)->text, "ALPHA two");
    /* a far match is brought into view */
    model_search_set(&m, "alpha one");
    feed_n(&m, &f, 50);
    model_logs_end(&m);
    assert_int_equal(model_search_step(&m, 1, 1, 10), 1);
    size_t sel;
    const char *t = row_text(&m, 10, 0, &sel);
    assert_non_null(t);
    assert_string_equal(model_logs_selected(&m)->text, "alpha one");
    assert_true(sel < 10);
    model_free(&m);
}

/* ---------------------------------------------------------------- traces */

static void test_selected_line_trace_and_trace_view(void **state)
{
    struct model m;
    struct feeder f = {0, 0};
    model_init(&m, 100);
    feed(&m, &f, "Web", 0, "t1", LOG_LEVEL_INFO, "GET /greet trace_id=t1");
    feed(&m, &f, "Web", 1, "t2", LOG_LEVEL_INFO, "GET /other trace_id=t2");
    feed(&m, &f, "Greeting", 2, "t1", LOG_LEVEL_INFO, "greet joe");
    feed(&m, &f, "Listen", 0, "t2", LOG_LEVEL_INFO, "heard other");
    feed(&m, &f, "Listen", 3, "t1", LOG_LEVEL_INFO, "heard joe");
    feed(&m, &f, "Web", 0, NULL, LOG_LEVEL_INFO, "untraced");
    /* the selected line's trace: newest first, then moving up */
    assert_string_equal(model_logs_selected(&m)->trace_id, "");
    model_logs_move(&m, -1, 10, 0);
    assert_string_equal(model_logs_selected(&m)->trace_id, "t1");
    model_logs_move(&m, -1, 10, 0);
    assert_string_equal(model_logs_selected(&m)->trace_id, "t2");
    model_logs_move(&m, -3, 10, 0);
    assert_string_equal(model_logs_selected(&m)->text, "GET /greet trace_id=t1");

    model_trace_open(&m, "t1");
    assert_true(m.trace.active);
    assert_int_equal(m.trace.count, 3);
    const struct model_line *out[16];
    assert_int_equal(model_trace_window(&m, 16, out), 3);
    assert_string_equal(out[0]->text, "GET /greet trace_id=t1");
    assert_string_equal(out[2]->text, "heard joe");
    assert_int_equal(m.trace.lane_count, 3);
    assert_string_equal(m.names[m.trace.lanes[0]].text, "Web");
    assert_string_equal(m.names[m.trace.lanes[1]].text, "Greeting");
    assert_string_equal(m.names[m.trace.lanes[2]].text, "Listen");
    assert_int_equal(model_trace_lane(&m, out[1]), 1);

    /* the node's answer repeats lines the buffer had (same seq): ignored; an earlier line
     * the buffer had lost goes first and its service becomes the first lane */
    struct log_line dup = {.seq = 3, .wall_ns = 3000000, .service = "Greeting", .instance = 2,
                           .stream = LOG_STREAM_STDOUT, .text = "greet joe", .len = 9};
    snprintf(dup.trace_id, sizeof dup.trace_id, "t1");
    model_trace_add(&m, &dup);
    assert_int_equal(m.trace.count, 3);
    struct log_line early = {.seq = 0, .wall_ns = 0, .service = "Edge", .instance = 0,
                             .stream = LOG_STREAM_STDOUT, .text = "accepted", .len = 8};
    snprintf(early.trace_id, sizeof early.trace_id, "t1");
    model_trace_add(&m, &early);
    assert_int_equal(m.trace.count, 4);
    model_trace_window(&m, 16, out);
    assert_string_equal(out[0]->text, "accepted");
    assert_string_equal(m.names[m.trace.lanes[0]].text, "Edge");
    assert_int_equal(m.trace.lane_count, 4);

    /* live lines of the open trace join it; others do not */
    feed(&m, &f, "Listen", 1, "t1", LOG_LEVEL_INFO, "late");
    feed(&m, &f, "Listen", 1, "t2", LOG_LEVEL_INFO, "other");
    assert_int_equal(m.trace.count, 5);
    model_trace_scroll(&m, 100, 2);
    assert_int_equal(m.trace.top, 3);
    model_trace_scroll(&m, -100, 2);
    assert_int_equal(m.trace.top, 0);

    /* Esc closes it along with the filters */
    model_filter_clear(&m);
    assert_false(m.trace.active);
    assert_int_equal(m.trace.count, 0);
    model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_fills_services_and_instances),
        cmocka_unit_test(test_status_waiting_completed_disabled),
        cmocka_unit_test(test_status_rejects_malformed_bodies),
        cmocka_unit_test(test_liveness_misses_are_marked),
        cmocka_unit_test(test_table_rows_selection_and_targets),
        cmocka_unit_test(test_ring_is_bounded_and_keeps_the_newest),
        cmocka_unit_test(test_notes_and_skipped_lines),
        cmocka_unit_test(test_text_is_cleaned_for_the_screen),
        cmocka_unit_test(test_text_keeps_printable_utf8_only),
        cmocka_unit_test(test_filters_service_instance_level),
        cmocka_unit_test(test_scrolling_pauses_and_end_resumes),
        cmocka_unit_test(test_paused_view_survives_eviction),
        cmocka_unit_test(test_filter_change_keeps_a_paused_selection),
        cmocka_unit_test(test_search_steps_and_finds),
        cmocka_unit_test(test_selected_line_trace_and_trace_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
