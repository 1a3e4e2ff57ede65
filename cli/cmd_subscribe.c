/* cmd_subscribe: `devnode subscribe PATTERN...`: a broadcast subscription to the node's bus
 * that prints every event as it arrives (lymph's `subscribe`), acks it, and keeps the
 * subscription alive with heartbeats. Ctrl-C or a closed stdout end it quietly. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/msgjson.h"
#include "common/nodeconn.h"
#include "common/rundir.h"
#include "common/strbuf.h"

#define PREFETCH 64
#define SUBSCRIPTION "s1"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct subscriber {
    void *ctx, *sock;
    pid_t node_pid;
    char node_endpoint[PATH_MAX + 16];
    const struct cli_project *project;
    int as_json;
    long limit;              /* exit after this many events; 0: never */
    long seen;
    int64_t next_id;
    int subscribed;          /* the node said ok */
    int output_closed;       /* stdout is gone (EPIPE): end quietly */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_body(struct subscriber *s, const char *type, struct wire_body *b)
{
    int rc = wire_send(s->sock, NULL, 0, type, b->sbuf.data, b->sbuf.size, 0);
    wire_body_free(b);
    return rc;
}

static int send_subscribe(struct subscriber *s, char **patterns, int count)
{
    struct wire_body b;
    wire_body_init(&b);
    msgpack_packer *pk = &b.pk;
    struct proto_subscribe req = {.subscription = SUBSCRIPTION,
                                  .patterns = (const char *const *)patterns,
                                  .pattern_count = (size_t)count,
                                  .broadcast = 1,
                                  .pid = getpid(),
                                  /* With -n, taking more than we will ack would only make the
                                   * node requeue them. */
                                  .prefetch = s->limit && s->limit < PREFETCH ? s->limit : PREFETCH};
    proto_pack_subscribe(pk, s->next_id++, &req);
    return send_body(s, PROTO_SUBSCRIBE, &b);
}

static void send_ack(struct subscriber *s, uint64_t delivery)
{
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_settle(&b.pk, s->next_id++, &delivery, 1);
    send_body(s, PROTO_ACK, &b);
}

static void send_heartbeat(struct subscriber *s)
{
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_heartbeat(&b.pk, s->next_id++, getpid());
    send_body(s, PROTO_HEARTBEAT, &b);
}

static void send_unsubscribe(struct subscriber *s)
{
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_unsubscribe(&b.pk, s->next_id++, SUBSCRIPTION);
    send_body(s, PROTO_UNSUBSCRIBE, &b);
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
static void format_event(struct subscriber *s, json_t *ev, struct strbuf *line)
{
    json_t *type = json_object_get(ev, "type"), *headers = json_object_get(ev, "headers");
    json_t *body = json_object_get(ev, "body"), *source = json_object_get(ev, "source");
    if (s->as_json) {
        json_t *out = json_pack("{s:O?, s:O?, s:O?, s:O?}", "type", type, "headers", headers, "body", body,
                                "source", source);
        char *text = out ? json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        strbuf_puts(line, text ? text : "{}");
        free(text);
        json_decref(out);
        return;
    }
    append_value(line, type ? type : json_null());
    strbuf_puts(line, ": ");
    char *text = json_dumps(body ? body : json_null(), JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    strbuf_puts(line, text ? text : "null");
    free(text);
    strbuf_puts(line, " ");
    const char *key;
    json_t *v;
    json_object_foreach(headers, key, v) {
        strbuf_printf(line, " %s=", key);
        append_value(line, v);
    }
    if (json_is_string(source))
        strbuf_printf(line, " source=%s", json_string_value(source));
    if (json_is_true(json_object_get(ev, "redelivered")))
        strbuf_puts(line, " redelivered");
}

static void handle_event(struct subscriber *s, const struct wire_msg *msg)
{
    json_t *ev = msgjson_to_json(msg->body);
    if (!ev)
        return;
    struct strbuf line;
    strbuf_init(&line);
    format_event(s, ev, &line);
    strbuf_putc(&line, '\n');
    json_decref(ev);
    if (fwrite(line.data, 1, line.len, stdout) != line.len || fflush(stdout) != 0)
        s->output_closed = 1;
    strbuf_free(&line);
    /* Acked only once printed: an event we could not show goes back to the node. */
    int64_t delivery;
    if (!s->output_closed && wire_get_int(msg->body, "delivery", &delivery) == 0) {
        send_ack(s, (uint64_t)delivery);
        s->seen++;
    }
}

/* Handles everything the socket holds. -1 with err set when the node refused us. */
static int drain(struct subscriber *s, char *err, size_t errlen)
{
    for (;;) {
        struct wire_msg msg;
        char why[160];
        enum wire_recv_result r = wire_recv(s->sock, 0, &msg, why, sizeof why);
        if (r == WIRE_AGAIN)
            return 0;
        if (r == WIRE_MALFORMED)
            continue;
        if (r == WIRE_OTHER_VERSION) {
            proto_version_mismatch(err, errlen, msg.version, WIRE_VERSION, "devnode");
            wire_msg_free(&msg);
            return -1;
        }
        if (r == WIRE_ERROR) {
            snprintf(err, errlen, "%s", why);
            return -1;
        }
        int rc = 0;
        if (!strcmp(msg.type, PROTO_EVENT)) {
            handle_event(s, &msg);
        } else if (!strcmp(msg.type, PROTO_ERROR)) {
            char message[400];
            proto_unpack_error(msg.body, message, sizeof message);
            snprintf(err, errlen, "%s", message);
            rc = -1;
        } else if (!strcmp(msg.type, PROTO_OK)) {
            s->subscribed = 1; /* the only request with a reply is the subscribe */
        }
        wire_msg_free(&msg);
        if (rc < 0 || s->output_closed || (s->limit && s->seen >= s->limit))
            return rc;
    }
}

/* The node that took our subscription still holds its lock; a new node would not know us. */
static int node_still_there(struct subscriber *s)
{
    char endpoint[PATH_MAX + 16], err[256];
    pid_t pid;
    return rundir_find_node(s->project->dir, endpoint, sizeof endpoint, &pid, err, sizeof err) == 0 &&
           pid == s->node_pid;
}

static int run(struct subscriber *s, char **patterns, int count)
{
    char err[512];
    if (send_subscribe(s, patterns, count) < 0) {
        cli_error("subscribe: cannot send to the node: %s", zmq_strerror(errno));
        return CLI_FAILURE;
    }
    long long subscribe_deadline = now_ms() + PROTO_ANSWER_TIMEOUT_MS;
    long long next_heartbeat = now_ms() + PROTO_HEARTBEAT_MS;
    while (!stop_requested) {
        long long now = now_ms();
        if (!s->subscribed && now >= subscribe_deadline) {
            cli_error("subscribe: the node (pid %d) did not answer within %d ms", (int)s->node_pid,
                      PROTO_ANSWER_TIMEOUT_MS);
            return CLI_FAILURE;
        }
        if (now >= next_heartbeat) {
            if (!node_still_there(s)) {
                cli_error("subscribe: the node (pid %d) is gone", (int)s->node_pid);
                return CLI_FAILURE;
            }
            send_heartbeat(s);
            next_heartbeat = now + PROTO_HEARTBEAT_MS;
        }
        long long wake = next_heartbeat;
        if (!s->subscribed && subscribe_deadline < wake)
            wake = subscribe_deadline;
        zmq_pollitem_t item = {.socket = s->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, (long)(wake - now > 0 ? wake - now : 0)) < 0) {
            if (errno == EINTR)
                continue;
            cli_error("subscribe: poll failed: %s", zmq_strerror(errno));
            return CLI_FAILURE;
        }
        if (!(item.revents & ZMQ_POLLIN))
            continue;
        if (drain(s, err, sizeof err) < 0) {
            /* The node's refusals already name the request ("subscribe: ..."). */
            if (strncmp(err, "subscribe", 9) == 0)
                cli_error("%s", err);
            else
                cli_error("subscribe: %s", err);
            return CLI_FAILURE;
        }
        if (s->output_closed || (s->limit && s->seen >= s->limit))
            break;
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
    struct subscriber s = {.next_id = 1, .as_json = args->json};
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
    char err[1024];
    s.project = &project;
    if (rundir_find_node(project.dir, s.node_endpoint, sizeof s.node_endpoint, &s.node_pid, err,
                         sizeof err) < 0) {
        cli_error("subscribe: %s", err);
        return CLI_FAILURE;
    }
    /* No SA_RESTART: the signal must interrupt zmq_poll so the loop sees the request. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    s.ctx = zmq_ctx_new();
    /* Farewell: the acks and the unsubscribe must leave, briefly enough for Ctrl-C. */
    s.sock = nodeconn_open(s.ctx, s.node_endpoint, NODECONN_FAREWELL, err, sizeof err);
    int rc = CLI_FAILURE;
    if (!s.sock) {
        cli_error("subscribe: %s", err);
    } else {
        rc = run(&s, args->argv, args->argc);
        /* So unacked deliveries go back at once, not at expiry; also when the node had not
         * confirmed yet (an unknown subscription only earns an error reply nobody reads). */
        send_unsubscribe(&s);
    }
    if (s.sock)
        zmq_close(s.sock);
    zmq_ctx_term(s.ctx);
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
