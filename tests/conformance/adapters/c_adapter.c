/* c_adapter: libdevnode's side of the conformance suite (tests/conformance/README.md is the
 * contract every adapter follows). A service run by `devnode up` whose subscriptions come from
 * CONFORMANCE_SUBS and whose RPC methods let the scenarios make it act: echo, fail, sleep,
 * hold, call, emit, whoami. Everything it handles it reports as one line on stdout,
 * `conformance rpc|event {json}`, through devnode_log so the line carries the trace id.
 * It must stay a plain user of lib/devnode.h: no private header, no protocol of its own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <devnode.h>

#define MAX_SUBS 16

struct sub {
    char kind[16];   /* group, broadcast, stream */
    char name[64];
    char pattern[128];
    char from[32];   /* stream only */
    int broadcast;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int64_t json_int(const json_t *args, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(args, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* One report line: `conformance KIND {json}`; devnode_log appends trace_id=<current>. */
static void report(struct devnode *dn, const char *kind, json_t *fields)
{
    json_object_set_new(fields, "trace_id", json_string(devnode_trace_id(dn) ? devnode_trace_id(dn) : ""));
    json_object_set_new(fields, "pid", json_integer(getpid()));
    char *text = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    devnode_log(dn, DEVNODE_INFO, "conformance %s %s", kind, text ? text : "{}");
    free(text);
    json_decref(fields);
}

static void report_rpc(struct devnode *dn, const char *method, const json_t *args)
{
    report(dn, "rpc", json_pack("{s:s,s:O}", "method", method, "args", args));
}

static json_t *m_echo(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    (void)err, (void)ctx;
    report_rpc(dn, "echo", args);
    return json_incref(json_object_get(args, "value"));
}

static json_t *m_fail(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    (void)ctx;
    report_rpc(dn, "fail", args);
    const char *type = json_string_value(json_object_get(args, "type"));
    const char *message = json_string_value(json_object_get(args, "message"));
    return devnode_error_set(err, type && *type ? type : "HandlerError", "%s", message ? message : "");
}

static json_t *m_sleep(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    (void)err, (void)ctx;
    report_rpc(dn, "sleep", args);
    int64_t ms = json_int(args, "ms", 0);
    sleep_ms(ms > 0 ? (long)ms : 0);
    return json_integer(ms);
}

/* Blocks until the file exists: a handler that is busy (not waiting in a call). libdevnode has
 * no threads, so its instance serves nothing else meanwhile (README: capabilities). */
static json_t *m_hold(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    (void)ctx;
    report_rpc(dn, "hold", args);
    const char *path = json_string_value(json_object_get(args, "path"));
    if (!path)
        return devnode_error_set(err, "ValueError", "hold: want a path");
    while (access(path, F_OK) != 0)
        sleep_ms(20);
    return json_string("held");
}

static const char *call_kind(int rc)
{
    switch (rc) {
    case DEVNODE_E_REMOTE: return "remote";
    case DEVNODE_E_NACK: return "nack";
    case DEVNODE_E_TIMEOUT: return "timeout";
    case DEVNODE_E_NOT_FOUND: return "not_found";
    case DEVNODE_E_NODE: return "node";
    case DEVNODE_E_INVALID: return "invalid";
    default: return "other";
    }
}

/* Calls another service with the current trace id: {result} or {error: {kind, type, message}}. */
static json_t *m_call(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    (void)ctx;
    report_rpc(dn, "call", args);
    const char *subject = json_string_value(json_object_get(args, "subject"));
    if (!subject)
        return devnode_error_set(err, "ValueError", "call: want a subject");
    json_t *cargs = json_object_get(args, "args");
    json_t *result = NULL;
    struct devnode_error cerr = {0};
    int rc = devnode_call(dn, subject, json_is_object(cargs) ? cargs : NULL, (int)json_int(args, "timeout_ms", 0),
                          &result, &cerr);
    if (rc == DEVNODE_OK)
        return json_pack("{s:o}", "result", result);
    return json_pack("{s:{s:s,s:s,s:s}}", "error", "kind", call_kind(rc), "type", cerr.type, "message",
                     cerr.message);
}

/* Emits with the current trace id: waited (its offset) or not (queued, coalesced). */
static json_t *m_emit(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    (void)ctx;
    report_rpc(dn, "emit", args);
    const char *type = json_string_value(json_object_get(args, "type"));
    json_t *body = json_object_get(args, "body");
    int64_t delay_ms = json_int(args, "delay_ms", 0);
    int64_t count = json_int(args, "count", 1);
    int wait = json_is_true(json_object_get(args, "wait"));
    if (!type)
        return devnode_error_set(err, "ValueError", "emit: want a type");
    json_t *offsets = json_array();
    for (int64_t i = 0; i < count; i++) {
        json_t *b = count > 1 ? json_pack("{s:I,s:O}", "i", (json_int_t)i, "body", body ? body : json_null())
                              : json_incref(body ? body : json_null());
        int64_t offset = -1;
        int rc = wait ? devnode_emit_offset(dn, type, b, (unsigned)delay_ms, &offset)
                      : devnode_emit_nowait(dn, type, b, (unsigned)delay_ms);
        json_decref(b);
        if (rc != 0) {
            json_decref(offsets);
            return devnode_error_set(err, rc == DEVNODE_E_INVALID ? "InvalidArgument" : "NodeError", "%s",
                                     devnode_last_error(dn));
        }
        json_array_append_new(offsets, offset >= 0 ? json_integer(offset) : json_null());
    }
    return json_pack("{s:s,s:o}", "trace_id", devnode_trace_id(dn) ? devnode_trace_id(dn) : "", "offsets",
                     offsets);
}

static json_t *m_whoami(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    (void)err, (void)ctx;
    report_rpc(dn, "whoami", args);
    return json_pack("{s:s,s:i,s:i,s:s,s:s}", "service", devnode_service(dn), "instance", devnode_instance(dn),
                     "pid", (int)getpid(), "trace_id", devnode_trace_id(dn) ? devnode_trace_id(dn) : "",
                     "language", "c");
}

/* Every event: one report line; then what its body asks: `relay` (emit that type on, with the
 * same body minus relay), `hold` (never return before a redelivery: the consumer is to be
 * killed before it acks) and `nack` (give it back unless it is a redelivery). */
static int on_event(const struct devnode_event *ev, void *ctx)
{
    const struct sub *s = ctx;
    report(ev->dn, "event",
           json_pack("{s:s,s:s,s:O,s:s,s:s,s:I,s:b,s:I,s:O}", "sub", s->name, "type", ev->type, "body", ev->body,
                     "source", ev->source, "event_trace_id", ev->trace_id, "offset", (json_int_t)ev->offset,
                     "redelivered", ev->redelivered, "delivery", (json_int_t)ev->delivery, "headers",
                     ev->headers));
    const char *relay = json_string_value(json_object_get(ev->body, "relay"));
    if (relay) {
        json_t *body = json_deep_copy(ev->body);
        json_object_del(body, "relay");
        devnode_emit_nowait(ev->dn, relay, body, 0);
        json_decref(body);
    }
    if (json_is_true(json_object_get(ev->body, "hold")) && !ev->redelivered)
        for (;;)
            sleep_ms(100);
    if (json_is_true(json_object_get(ev->body, "nack")) && !ev->redelivered)
        return 1; /* given back: the node delivers it again */
    return 0;
}

/* CONFORMANCE_SUBS: items separated by spaces, group:NAME:PATTERN, broadcast:NAME:PATTERN,
 * stream:NAME:STREAM:FROM[:broadcast]. */
static int parse_subs(const char *spec, struct sub *subs, int *count)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", spec ? spec : "");
    *count = 0;
    char *save = NULL;
    for (char *item = strtok_r(buf, " ", &save); item; item = strtok_r(NULL, " ", &save)) {
        if (*count == MAX_SUBS)
            return -1;
        struct sub *s = &subs[(*count)++];
        char *f[5] = {0};
        int n = 0;
        char *fsave = NULL;
        for (char *p = strtok_r(item, ":", &fsave); p && n < 5; p = strtok_r(NULL, ":", &fsave))
            f[n++] = p;
        if (n < 3)
            return -1;
        snprintf(s->kind, sizeof s->kind, "%s", f[0]);
        snprintf(s->name, sizeof s->name, "%s", f[1]);
        snprintf(s->pattern, sizeof s->pattern, "%s", f[2]);
        s->broadcast = !strcmp(f[0], "broadcast") || (n == 5 && !strcmp(f[4], "broadcast"));
        if (!strcmp(f[0], "stream")) {
            if (n < 4)
                return -1;
            snprintf(s->from, sizeof s->from, "%s", f[3]);
        } else if (strcmp(f[0], "group") && strcmp(f[0], "broadcast")) {
            return -1;
        }
    }
    return 0;
}

int main(void)
{
    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "c_adapter: %s\n", err);
        return 2;
    }
    static const char *const echo_p[] = {"value", NULL};
    static const char *const fail_p[] = {"type", "message", NULL};
    static const char *const sleep_p[] = {"ms", NULL};
    static const char *const hold_p[] = {"path", NULL};
    static const char *const call_p[] = {"subject", "args?", "timeout_ms?", NULL};
    static const char *const emit_p[] = {"type", "body?", "delay_ms?", "wait?", "count?", NULL};
    static const char *const whoami_p[] = {NULL};
    devnode_add_method(dn, "echo", echo_p, "Returns value", m_echo, NULL);
    devnode_add_method(dn, "fail", fail_p, "Fails with the given error type and message", m_fail, NULL);
    devnode_add_method(dn, "sleep", sleep_p, "Sleeps ms milliseconds", m_sleep, NULL);
    devnode_add_method(dn, "hold", hold_p, "Returns once the file path exists", m_hold, NULL);
    devnode_add_method(dn, "call", call_p, "Calls subject with args", m_call, NULL);
    devnode_add_method(dn, "emit", emit_p, "Emits count events of type", m_emit, NULL);
    devnode_add_method(dn, "whoami", whoami_p, "Says which instance answers", m_whoami, NULL);

    static struct sub subs[MAX_SUBS];
    int nsubs = 0;
    if (parse_subs(getenv("CONFORMANCE_SUBS"), subs, &nsubs) != 0) {
        fprintf(stderr, "c_adapter: CONFORMANCE_SUBS: want group:NAME:PATTERN, broadcast:NAME:PATTERN or "
                        "stream:NAME:STREAM:FROM[:broadcast] items\n");
        devnode_close(dn);
        return 2;
    }
    for (int i = 0; i < nsubs; i++) {
        struct sub *s = &subs[i];
        unsigned flags = s->broadcast ? DEVNODE_BROADCAST : 0;
        int rc = !strcmp(s->kind, "stream")
                     ? devnode_subscribe_stream(dn, s->name, s->pattern, NULL, s->from, flags, on_event, s)
                     : devnode_subscribe_named(dn, s->name, s->pattern, flags, on_event, s);
        if (rc != 0) {
            fprintf(stderr, "c_adapter: subscribe %s: %s\n", s->name, devnode_last_error(dn));
            devnode_close(dn);
            return 2;
        }
    }
    int rc = devnode_run(dn);
    int unconfirmed = devnode_close(dn);
    return rc != 0 || unconfirmed != 0;
}
