/* fuzz_proto: every decoder of proto/ on the body of the message type it belongs to. The
 * input is [len][type frame][body: one msgpack value] (fuzz_util.h's length; bounded by
 * wire_msgpack_check first, as wire_recv does); the type frame picks the decoders, as the
 * node's dispatch and the clients' reply handling do. A body a decoder accepts is packed
 * again with that message's encoder and must decode to the same fields; a refused request
 * must say why. The tail bodies are here too (the `tail` request into a filter that is then
 * matched, each line of a `lines` message through tailwire_pack_line and back); fuzz_tailwire
 * drives the client's tail conversation (tail/tailconv.c) with them. */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "proto/logfilter.h"
#include "proto/proto.h"
#include "proto/tailwire.h"
#include "tests/fuzz/fuzz_tailline.h"
#include "tests/fuzz/fuzz_util.h"

struct repacked {
    struct wire_body b;
    msgpack_unpacked up;
};

/* Decodes what an encoder just wrote: it must be one valid msgpack map. */
static const msgpack_object *repacked_decode(struct repacked *r)
{
    msgpack_unpacked_init(&r->up);
    size_t off = 0;
    FUZZ_CHECK(wire_msgpack_check(r->b.sbuf.data, r->b.sbuf.size) == 0, "encoder wrote unchecked msgpack");
    FUZZ_CHECK(msgpack_unpack_next(&r->up, r->b.sbuf.data, r->b.sbuf.size, &off) == MSGPACK_UNPACK_SUCCESS &&
                   off == r->b.sbuf.size && r->up.data.type == MSGPACK_OBJECT_MAP,
               "encoder wrote no single map");
    return &r->up.data;
}

static void repacked_free(struct repacked *r)
{
    msgpack_unpacked_destroy(&r->up);
    wire_body_free(&r->b);
}


/* ---------------------------------------------------------------- the node's own requests */

static void fuzz_restart(const msgpack_object *body)
{
    char buf[256], err[200] = "", buf2[256], target[300];
    struct proto_restart r, back;
    if (proto_unpack_restart(body, &r, buf, sizeof buf, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0], "restart refused without a reason");
        return;
    }
    FUZZ_CHECK(r.index >= -1 && r.index < 100000, "index %d", r.index);
    if (r.index >= 0)
        snprintf(target, sizeof target, "%s.%d", r.target, r.index);
    else
        snprintf(target, sizeof target, "%s", r.target);
    struct repacked p;
    wire_body_init(&p.b);
    proto_pack_restart(&p.b.pk, 1, &(struct proto_restart){.target = target, .wait = r.wait});
    if (strlen(target) < sizeof buf2) {
        FUZZ_CHECK(proto_unpack_restart(repacked_decode(&p), &back, buf2, sizeof buf2, err, sizeof err) == 0,
                   "repacked restart refused: %s", err);
        /* "A.1.2" reads as A.1 instance 2, and "A.01" as A instance 1, both times. */
        FUZZ_CHECK(back.wait == r.wait && back.index == r.index && strcmp(back.target, r.target) == 0,
                   "restart changed through pack/unpack: %s.%d -> %s.%d", r.target, r.index, back.target, back.index);
    } else {
        repacked_decode(&p);
    }
    repacked_free(&p);
}

static void fuzz_scale(const msgpack_object *body)
{
    char buf[256], buf2[256], err[200] = "";
    struct proto_scale s, back;
    if (proto_unpack_scale(body, &s, buf, sizeof buf, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0], "scale refused without a reason");
        return;
    }
    FUZZ_CHECK(s.count >= 0 && s.count <= PROTO_SCALE_MAX, "count %lld", (long long)s.count);
    struct repacked p;
    wire_body_init(&p.b);
    proto_pack_scale(&p.b.pk, 1, &s);
    FUZZ_CHECK(proto_unpack_scale(repacked_decode(&p), &back, buf2, sizeof buf2, err, sizeof err) == 0,
               "repacked scale refused: %s", err);
    FUZZ_CHECK(strcmp(back.service, s.service) == 0 && back.count == s.count && back.wait == s.wait,
               "scale changed through pack/unpack");
    repacked_free(&p);
}

static void fuzz_stop(const msgpack_object *body)
{
    struct proto_stop s, back;
    proto_unpack_stop(body, &s);
    struct repacked p;
    wire_body_init(&p.b);
    proto_pack_stop(&p.b.pk, 1, &s);
    proto_unpack_stop(repacked_decode(&p), &back);
    FUZZ_CHECK(back.force == s.force, "force changed");
    repacked_free(&p);
}

/* start_service and stop_service: a service name, and force. */
static void fuzz_service_request(const msgpack_object *body)
{
    char buf[256], buf2[256], err[200] = "";
    struct proto_service_request r, back;
    if (proto_unpack_service_request(body, &r, buf, sizeof buf, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0], "service request refused without a reason");
        return;
    }
    FUZZ_CHECK(r.service[0], "an empty service accepted");
    struct repacked p;
    wire_body_init(&p.b);
    proto_pack_service_request(&p.b.pk, 1, &r);
    FUZZ_CHECK(proto_unpack_service_request(repacked_decode(&p), &back, buf2, sizeof buf2, err, sizeof err) == 0,
               "repacked service request refused: %s", err);
    FUZZ_CHECK(back.force == r.force && strcmp(back.service, r.service) == 0,
               "service request changed through pack/unpack");
    repacked_free(&p);
}

static void fuzz_status(const msgpack_object *body)
{
    struct proto_status st;
    if (proto_unpack_status(body, &st) == 0) {
        for (size_t i = 0; i < st.service_count; i++) {
            const struct proto_status_service_view *s = &st.services[i];
            char name[64];
            proto_status_str_copy(s->name, name, sizeof name);
            FUZZ_CHECK(strlen(name) < sizeof name, "copy overran");
            for (size_t k = 0; k < s->instance_count; k++)
                FUZZ_CHECK(!s->instances[k].exit_has_code || s->instances[k].has_exit, "code without exit");
        }
    }
    proto_status_free(&st);
}

static void fuzz_replies(const msgpack_object *body)
{
    char message[64];
    proto_unpack_error(body, message, sizeof message);
    FUZZ_CHECK(strlen(message) < sizeof message, "message overran");
    int64_t n;
    struct proto_change_started s;
    struct proto_change_done d;
    for (int is_scale = 0; is_scale < 2; is_scale++) {
        proto_unpack_change_accepted(body, is_scale, &n);
        proto_unpack_change_started(body, is_scale, &s);
        proto_unpack_change_done(body, is_scale, &d);
    }
    proto_unpack_stop_reply(body, &n);
    struct proto_service_reply sr;
    char services[48];
    proto_unpack_service_reply(body, &sr, services, sizeof services);
    FUZZ_CHECK(strlen(services) < sizeof services, "services overran");
    struct proto_status_str changes[4];
    size_t change_count = proto_unpack_reload_reply(body, changes, 4);
    for (size_t i = 0; i < change_count && i < 4; i++)
        FUZZ_CHECK(changes[i].ptr != NULL, "reload line without text");
    char identity[40];
    proto_unpack_register_reply(body, identity, sizeof identity);
    proto_unpack_emit_offset(body);
    int64_t events, index;
    const msgpack_object *refused;
    if (proto_unpack_emit_refused(body, &events, &refused) == 0) {
        char type[16], why[24];
        for (uint32_t i = 0; i < refused->via.array.size; i++)
            if (proto_unpack_emit_refusal(&refused->via.array.ptr[i], &index, type, sizeof type, why, sizeof why) == 0)
                FUZZ_CHECK(strlen(why) < sizeof why && strlen(type) < sizeof type && index >= 0, "refusal overran");
    }
    proto_unpack_emit_quiet(body);
}

/* ---------------------------------------------------------------- registry */

static void fuzz_register(const msgpack_object *body)
{
    struct proto_register_view r, back;
    char err[200] = "";
    if (proto_unpack_register(body, &r, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0], "register refused without a reason");
        return;
    }
    /* Pack it again from copies, as the node keeps it and the library sends it. */
    char *service = strndup(r.service->via.str.ptr, r.service->via.str.size);
    char *endpoint = strndup(r.endpoint->via.str.ptr, r.endpoint->via.str.size);
    struct repacked p;
    wire_body_init(&p.b);
    proto_pack_register_begin(&p.b.pk, 1, &(struct proto_register){.service = service, .instance = r.instance,
                                                                     .pid = r.pid, .endpoint = endpoint});
    size_t n = r.methods ? r.methods->via.array.size : 0;
    proto_pack_methods_begin(&p.b.pk, n);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *m = &r.methods->via.array.ptr[i];
        const msgpack_object *name = wire_map_get(m, "name"), *params = wire_map_get(m, "params");
        char *copies[PROTO_REGISTER_PARAMS_MAX];
        size_t pc = params && params->type == MSGPACK_OBJECT_ARRAY ? params->via.array.size : 0;
        for (size_t j = 0; j < pc; j++)
            copies[j] = strndup(params->via.array.ptr[j].via.str.ptr, params->via.array.ptr[j].via.str.size);
        char *name_copy = strndup(name->via.str.ptr, name->via.str.size);
        proto_pack_method(&p.b.pk, &(struct proto_method){.name = name_copy, .params = (const char *const *)copies,
                                                           .param_count = pc, .help = ""});
        free(name_copy);
        for (size_t j = 0; j < pc; j++)
            free(copies[j]);
    }
    FUZZ_CHECK(proto_unpack_register(repacked_decode(&p), &back, err, sizeof err) == 0,
               "repacked register refused: %s", err);
    FUZZ_CHECK(back.pid == r.pid && back.instance == r.instance, "register numbers changed");
    FUZZ_CHECK((back.methods ? back.methods->via.array.size : 0) == n, "methods count changed");
    repacked_free(&p);
    free(service);
    free(endpoint);
}

static void fuzz_discover(const msgpack_object *body)
{
    char service[256], back_service[256], err[200] = "";
    if (proto_unpack_discover(body, service, sizeof service, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0], "discover refused without a reason");
        return;
    }
    struct repacked p;
    wire_body_init(&p.b);
    proto_pack_discover(&p.b.pk, 1, service[0] ? service : NULL);
    FUZZ_CHECK(proto_unpack_discover(repacked_decode(&p), back_service, sizeof back_service, err, sizeof err) == 0,
               "repacked discover refused");
    FUZZ_CHECK(strcmp(service, back_service) == 0, "service changed");
    repacked_free(&p);
}

static void fuzz_services(const msgpack_object *body)
{
    const msgpack_object *services = proto_services_array(body);
    const msgpack_object *insts = proto_services_instances(services, "Greeting");
    FUZZ_CHECK(!insts || insts->type == MSGPACK_OBJECT_ARRAY, "instances not a list");
}

/* ---------------------------------------------------------------- events */

static void fuzz_emit(const msgpack_object *body)
{
    const msgpack_object *batch, *source;
    char err[300] = "";
    if (proto_unpack_emit_batch(body, &batch, &source, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0], "emit batch refused without a reason");
        return;
    }
    FUZZ_CHECK(!source || source->type == MSGPACK_OBJECT_STR, "source not a string");
    size_t n = batch ? batch->via.array.size : 1;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *m = batch ? &batch->via.array.ptr[i] : body;
        struct proto_emit_view v;
        err[0] = '\0';
        if (proto_unpack_emit_event(m, &v, err, sizeof err) < 0) {
            FUZZ_CHECK(err[0], "event refused without a reason");
            continue;
        }
        FUZZ_CHECK(v.type && v.type->type == MSGPACK_OBJECT_STR, "type not a string");
        FUZZ_CHECK(v.delay_ms >= 0 && v.delay_ms <= PROTO_DELAY_MAX_MS, "delay %lld", (long long)v.delay_ms);
        char *type = strndup(v.type->via.str.ptr, v.type->via.str.size);
        struct repacked p;
        wire_body_init(&p.b);
        struct proto_emit e = {.type = type, .trace_id = "t", .source = "fuzz", .delay_ms = v.delay_ms};
        proto_pack_emit_begin(&p.b.pk, 1, &e);
        if (v.body)
            msgpack_pack_object(&p.b.pk, *v.body);
        else
            msgpack_pack_nil(&p.b.pk);
        proto_pack_emit_end(&p.b.pk, &e);
        struct proto_emit_view back;
        FUZZ_CHECK(proto_unpack_emit_event(repacked_decode(&p), &back, err, sizeof err) == 0,
                   "repacked event refused: %s", err);
        FUZZ_CHECK(back.delay_ms == v.delay_ms && wire_str_eq(back.type, type), "event changed");
        repacked_free(&p);
        free(type);
    }
}

static void fuzz_subscribe(const msgpack_object *body)
{
    struct proto_subscribe_view s, back;
    char err[400] = "";
    if (proto_unpack_subscribe(body, &s, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0], "subscribe refused without a reason");
        return;
    }
    size_t n = s.patterns->via.array.size;
    FUZZ_CHECK(n >= 1 && n <= PROTO_PATTERNS_MAX, "%zu patterns", n);
    FUZZ_CHECK(s.batch >= 1 && s.batch <= PROTO_EMIT_BATCH_MAX, "batch %lld", (long long)s.batch);
    FUZZ_CHECK(s.prefetch >= 1 && s.prefetch <= PROTO_PREFETCH_MAX, "prefetch %lld", (long long)s.prefetch);
    FUZZ_CHECK(s.broadcast || s.group[0], "no group and no broadcast");
    char *patterns[PROTO_PATTERNS_MAX];
    for (size_t i = 0; i < n; i++)
        patterns[i] = strndup(s.patterns->via.array.ptr[i].via.str.ptr, s.patterns->via.array.ptr[i].via.str.size);
    char from[32];
    if (s.from == PROTO_FROM_OFFSET)
        snprintf(from, sizeof from, "%lld", (long long)s.from_offset);
    else
        snprintf(from, sizeof from, "%s", s.from == PROTO_FROM_BEGINNING ? "beginning" : s.from == PROTO_FROM_NOW ? "now"
                                                                                                              : "resume");
    struct repacked p;
    wire_body_init(&p.b);
    proto_pack_subscribe(&p.b.pk, 1, &(struct proto_subscribe){.subscription = s.subscription,
                                                                .patterns = (const char *const *)patterns,
                                                                .pattern_count = n,
                                                                .group = s.group[0] ? s.group : NULL,
                                                                .broadcast = s.broadcast,
                                                                .pid = s.pid,
                                                                .prefetch = s.prefetch,
                                                                .batch = s.batch,
                                                                .stream = s.has_stream ? s.stream : NULL,
                                                                .from = from});
    FUZZ_CHECK(proto_unpack_subscribe(repacked_decode(&p), &back, err, sizeof err) == 0,
               "repacked subscribe refused: %s", err);
    FUZZ_CHECK(strcmp(back.subscription, s.subscription) == 0 && strcmp(back.group, s.group) == 0 &&
                   back.broadcast == s.broadcast && back.pid == s.pid && back.prefetch == s.prefetch &&
                   back.batch == s.batch && back.has_stream == s.has_stream && back.from == s.from &&
                   (s.from != PROTO_FROM_OFFSET || back.from_offset == s.from_offset),
               "subscribe changed through pack/unpack");
    repacked_free(&p);
    for (size_t i = 0; i < n; i++)
        free(patterns[i]);
}

static void fuzz_bus_small(const msgpack_object *body)
{
    char sub[PROTO_SUBSCRIPTION_MAX + 1], err[200];
    proto_unpack_unsubscribe(body, sub, sizeof sub, err, sizeof err);
    const msgpack_object *one, *list;
    proto_unpack_settle(body, &one, &list);
    FUZZ_CHECK(!one || (one->type == MSGPACK_OBJECT_POSITIVE_INTEGER && one->via.u64), "bad delivery kept");
    FUZZ_CHECK(!list || list->type == MSGPACK_OBJECT_ARRAY, "deliveries not a list");
    FUZZ_CHECK(!(one && list), "both a delivery and a list");
    int64_t next, committed;
    proto_unpack_bus_status_stream(body, "book.#", "View.on_book", &next, &committed);
    int64_t pid;
    proto_unpack_pid(body, &pid);
}

/* ---------------------------------------------------------------- tail */


static void fuzz_lines(const msgpack_object *body)
{
    const msgpack_object *lines = tailwire_lines_array(body);
    for (uint32_t i = 0; lines && i < lines->via.array.size && i < 64; i++) {
        struct tail_line line;
        if (tailwire_unpack_line(&lines->via.array.ptr[i], &line) == 0)
            check_line_roundtrip(&line);
    }
    struct tail_skipped sk;
    if (tailwire_unpack_skipped(body, &sk) == 0 && sk.count) {
        /* What the node sends must come back the same. */
        struct repacked p;
        wire_body_init(&p.b);
        struct tailwire_lines_mark mark;
        tailwire_lines_begin(&p.b, "\x01", 1, &mark);
        tailwire_lines_finish(&p.b, &mark, 0, &sk);
        struct tail_skipped back;
        FUZZ_CHECK(tailwire_unpack_skipped(repacked_decode(&p), &back) == 0 && back.count == sk.count &&
                       back.first == sk.first && back.last == sk.last,
                   "skipped changed through pack/unpack");
        repacked_free(&p);
    }
    int truncated;
    tailwire_unpack_end(body, &truncated, &sk);
}

static void fuzz_tail(const msgpack_object *body)
{
    check_tail_request(body, NULL);
}

static void fuzz_tail_small(const msgpack_object *body)
{
    int has;
    uint64_t received;
    char err[200] = "";
    if (tailwire_unpack_renew(body, &has, &received, err, sizeof err) < 0)
        FUZZ_CHECK(err[0], "renew refused without a reason");
    int64_t limit;
    err[0] = '\0';
    if (tailwire_unpack_traces_request(body, &limit, err, sizeof err) == 0)
        FUZZ_CHECK(limit >= 1 && limit <= PROTO_TRACES_LIMIT_MAX, "limit %lld", (long long)limit);
    else
        FUZZ_CHECK(err[0], "traces refused without a reason");
    /* The reply: what decodes must pack and decode back the same. */
    struct tail_traces tr, back;
    err[0] = '\0';
    if (tailwire_unpack_traces(body, &tr, err, sizeof err) == 0) {
        struct repacked p;
        wire_body_init(&p.b);
        tailwire_pack_traces_head(&p.b.pk, NULL, tr.count);
        for (size_t i = 0; i < tr.count; i++)
            tailwire_pack_trace(&p.b.pk, &tr.items[i]);
        FUZZ_CHECK(tailwire_unpack_traces(repacked_decode(&p), &back, err, sizeof err) == 0 &&
                       back.count == tr.count,
                   "traces changed through pack/unpack");
        for (size_t i = 0; i < tr.count; i++) {
            const struct tail_trace_summary *a = &tr.items[i], *b = &back.items[i];
            FUZZ_CHECK(!strcmp(a->trace_id, b->trace_id) && a->first_ns == b->first_ns &&
                           a->last_ns == b->last_ns && a->lines == b->lines && a->error == b->error &&
                           a->service_count == b->service_count,
                       "trace %zu changed through pack/unpack", i);
        }
        tailwire_traces_free(&back);
        repacked_free(&p);
    } else {
        FUZZ_CHECK(err[0], "traces reply refused without a reason");
    }
    tailwire_traces_free(&tr);
}

/* ---------------------------------------------------------------- attach */

static void fuzz_attach(const msgpack_object *body)
{
    char buf[256], tty[64], err[200] = "", buf2[256], tty2[64], target[300];
    struct proto_attach a, back;
    if (proto_unpack_attach(body, &a, buf, sizeof buf, tty, sizeof tty, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0], "attach refused without a reason");
        return;
    }
    FUZZ_CHECK(a.index >= -1 && a.rows >= 0 && a.rows <= 65535 && a.cols >= 0 && a.cols <= 65535 && a.pid >= 0,
               "attach fields out of range");
    if (a.index >= 0)
        snprintf(target, sizeof target, "%s.%d", a.target, a.index);
    else
        snprintf(target, sizeof target, "%s", a.target);
    struct repacked p;
    wire_body_init(&p.b);
    struct proto_attach again = a;
    again.target = target;
    proto_pack_attach(&p.b.pk, 1, &again);
    if (strlen(target) < sizeof buf2) {
        FUZZ_CHECK(proto_unpack_attach(repacked_decode(&p), &back, buf2, sizeof buf2, tty2, sizeof tty2, err,
                                       sizeof err) == 0,
                   "repacked attach refused: %s", err);
        FUZZ_CHECK(back.index == a.index && !strcmp(back.target, a.target) && !strcmp(back.tty, a.tty) &&
                       back.pid == a.pid && back.rows == a.rows && back.cols == a.cols,
                   "attach changed through pack/unpack");
    } else {
        repacked_decode(&p);
    }
    repacked_free(&p);
    /* the reply and a refusal carry the same fields */
    char mode[16], reason[16];
    struct proto_attach_reply r;
    proto_unpack_attach_reply(body, &r, mode, sizeof mode);
    proto_unpack_attach_reason(body, reason, sizeof reason);
    FUZZ_CHECK(strlen(mode) < sizeof mode && strlen(reason) < sizeof reason, "copy overran");
}

static void fuzz_attach_data(const msgpack_object *body)
{
    char err[200] = "";
    struct proto_attach_data d;
    if (proto_unpack_attach_data(body, &d, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0] && !d.data && !d.len, "attach data refused without a reason");
        return;
    }
    FUZZ_CHECK(d.data && d.len <= PROTO_ATTACH_DATA_MAX, "attach data of %zu bytes", d.len);
    struct repacked p;
    wire_body_init(&p.b);
    proto_pack_attach_data(&p.b.pk, &d);
    struct proto_attach_data back;
    FUZZ_CHECK(proto_unpack_attach_data(repacked_decode(&p), &back, err, sizeof err) == 0 && back.len == d.len &&
                   memcmp(back.data, d.data, d.len) == 0,
               "attach data changed through pack/unpack");
    repacked_free(&p);
}

static void fuzz_attach_small(const msgpack_object *body)
{
    char err[200] = "", reason[32], message[200];
    struct proto_attach_resize z;
    if (proto_unpack_attach_resize(body, &z, err, sizeof err) == 0) {
        FUZZ_CHECK(z.rows >= 1 && z.rows <= 65535 && z.cols >= 1 && z.cols <= 65535, "resize out of range");
        struct repacked p;
        wire_body_init(&p.b);
        proto_pack_attach_resize(&p.b.pk, &z);
        struct proto_attach_resize back;
        FUZZ_CHECK(proto_unpack_attach_resize(repacked_decode(&p), &back, err, sizeof err) == 0 &&
                       back.rows == z.rows && back.cols == z.cols,
                   "resize changed through pack/unpack");
        repacked_free(&p);
    } else {
        FUZZ_CHECK(err[0], "resize refused without a reason");
    }
    proto_unpack_attach_end(body, reason, sizeof reason, message, sizeof message);
    FUZZ_CHECK(strlen(reason) < sizeof reason && strlen(message) < sizeof message, "copy overran");
}

/* ---------------------------------------------------------------- dispatch */

static const struct {
    const char *type;
    void (*fn)(const msgpack_object *body);
} decoders[] = {
    {PROTO_STATUS, fuzz_status},          {PROTO_RESTART, fuzz_restart},     {PROTO_SCALE, fuzz_scale},
    {PROTO_STOP, fuzz_stop},              {PROTO_OK, fuzz_replies},          {PROTO_STARTED, fuzz_replies},
    {PROTO_RELOAD, fuzz_replies},
    {PROTO_ERROR, fuzz_replies},          {PROTO_REGISTER, fuzz_register},   {PROTO_HEARTBEAT, fuzz_bus_small},
    {PROTO_UNREGISTER, fuzz_bus_small},   {PROTO_DISCOVER, fuzz_discover},   {PROTO_SERVICES, fuzz_services},
    {PROTO_EMIT, fuzz_emit},              {PROTO_SUBSCRIBE, fuzz_subscribe}, {PROTO_UNSUBSCRIBE, fuzz_bus_small},
    {PROTO_EVENT, fuzz_bus_small},        {PROTO_EVENTS, fuzz_bus_small},    {PROTO_ACK, fuzz_bus_small},
    {PROTO_NACK, fuzz_bus_small},         {PROTO_BUS_STATUS, fuzz_bus_small}, {PROTO_TAIL, fuzz_tail},
    {PROTO_LINES, fuzz_lines},            {PROTO_END, fuzz_lines},           {PROTO_TAIL_RENEW, fuzz_tail_small},
    {PROTO_UNTAIL, fuzz_tail_small},      {PROTO_TRACES, fuzz_tail_small},
    {PROTO_ATTACH, fuzz_attach},          {PROTO_ATTACH_INPUT, fuzz_attach_data},
    {PROTO_ATTACH_OUTPUT, fuzz_attach_data}, {PROTO_ATTACH_RESIZE, fuzz_attach_small},
    {PROTO_ATTACH_END, fuzz_attach_small},   {PROTO_DETACH, fuzz_tail_small},
    {PROTO_START_SERVICE, fuzz_service_request}, {PROTO_STOP_SERVICE, fuzz_service_request},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t type_len = fuzz_len(&in), got;
    const uint8_t *type_bytes = fuzz_bytes(&in, type_len, &got);
    char type[WIRE_TYPE_MAX + 1];
    if (got == 0 || got > WIRE_TYPE_MAX)
        return 0;
    memcpy(type, type_bytes, got);
    type[got] = '\0';
    if (wire_msgpack_check(in.p, in.n) < 0)
        return 0;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    if (msgpack_unpack_next(&up, (const char *)in.p, in.n, &off) != MSGPACK_UNPACK_SUCCESS || off != in.n ||
        up.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&up);
        return 0; /* wire_recv drops it: not a body */
    }
    for (size_t i = 0; i < sizeof decoders / sizeof decoders[0]; i++)
        if (strcmp(decoders[i].type, type) == 0)
            decoders[i].fn(&up.data);
    msgpack_unpacked_destroy(&up);
    return 0;
}
