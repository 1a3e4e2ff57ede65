/* Unit tests for proto/: every message body packed by its encoder decodes with its decoder to
 * what went in (both sides of the node protocol use these pairs, so a drift shows here), the
 * decoders refuse what the node must refuse, and the bytes of a few bodies are exactly those
 * an independent msgpack implementation produces (the e2e suite speaks the protocol so). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/rpcwire.h"
#include "proto/tailwire.h"

/* A packed body and its decoded form. */
struct packed {
    struct wire_body b;
    msgpack_unpacked up;
    const msgpack_object *body;
};

static void packed_init(struct packed *p)
{
    wire_body_init(&p->b);
    msgpack_unpacked_init(&p->up);
    p->body = NULL;
}

/* Decodes what was packed: exactly one value, nothing left over. */
static const msgpack_object *packed_decode(struct packed *p)
{
    size_t off = 0;
    assert_int_equal(wire_msgpack_check(p->b.sbuf.data, p->b.sbuf.size), 0);
    assert_int_equal(msgpack_unpack_next(&p->up, p->b.sbuf.data, p->b.sbuf.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, p->b.sbuf.size);
    p->body = &p->up.data;
    return p->body;
}

static void packed_free(struct packed *p)
{
    msgpack_unpacked_destroy(&p->up);
    wire_body_free(&p->b);
}

/* Decodes `bytes` as a standalone object (for ids, ...). */
static void decode_bytes(msgpack_unpacked *up, const char *bytes, size_t len)
{
    msgpack_unpacked_init(up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(up, bytes, len, &off), MSGPACK_UNPACK_SUCCESS);
}

static int str_is(struct proto_status_str s, const char *want)
{
    return s.ptr && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static void test_request_id_bytes_are_plain_msgpack(void **state)
{
    (void)state;
    struct packed p;
    packed_init(&p);
    proto_pack_request_id(&p.b.pk, 1);
    static const unsigned char want[] = {0x81, 0xa2, 'i', 'd', 0x01}; /* msgpack.packb({"id": 1}) */
    assert_int_equal(p.b.sbuf.size, sizeof want);
    assert_memory_equal(p.b.sbuf.data, want, sizeof want);
    packed_free(&p);

    packed_init(&p);
    proto_pack_restart(&p.b.pk, 7, &(struct proto_restart){.target = "Web", .wait = 1});
    /* {"id": 7, "target": "Web", "wait": True} */
    static const unsigned char restart[] = {0x83, 0xa2, 'i', 'd', 0x07, 0xa6, 't', 'a', 'r', 'g', 'e', 't',
                                            0xa3, 'W', 'e', 'b', 0xa4, 'w', 'a', 'i', 't', 0xc3};
    assert_int_equal(p.b.sbuf.size, sizeof restart);
    assert_memory_equal(p.b.sbuf.data, restart, sizeof restart);
    packed_free(&p);
}

static void test_ok_error_and_echoed_ids(void **state)
{
    (void)state;
    msgpack_unpacked id;
    decode_bytes(&id, "\xa3" "abc", 4); /* any value may be an id: here the string "abc" */
    struct packed p;
    packed_init(&p);
    proto_pack_error(&p.b.pk, &id.data, "no service named 'Nope'");
    const msgpack_object *body = packed_decode(&p);
    assert_true(wire_str_eq(proto_request_id(body), "abc"));
    char message[64];
    proto_unpack_error(body, message, sizeof message);
    assert_string_equal(message, "no service named 'Nope'");
    packed_free(&p);

    packed_init(&p);
    proto_pack_ok(&p.b.pk, NULL);
    body = packed_decode(&p);
    assert_int_equal(body->via.map.size, 1);
    assert_int_equal(proto_request_id(body)->type, MSGPACK_OBJECT_NIL);
    proto_unpack_error(body, message, sizeof message);
    assert_string_equal(message, "(no message)");
    packed_free(&p);
    msgpack_unpacked_destroy(&id);
}

static void test_status_roundtrip(void **state)
{
    (void)state;
    struct packed p;
    packed_init(&p);
    struct proto_status_node node = {.pid = 42, .endpoint = "ipc:///x/node.sock", .config = "/x/.lymph.yml",
                                     .run_dir = "/x/.devnode", .uptime_ms = 5000, .cpu_percent = 1.5,
                                     .rss_kib = 2048, .stopping = 1, .malformed_messages = 3};
    proto_pack_status_head(&p.b.pk, NULL, &node, 2);
    proto_pack_status_socket(&p.b.pk, &(struct proto_status_socket){.name = "web", .address = "127.0.0.1:8080",
                                                                      .port = 8080, .waiting = 4,
                                                                      .warning = "nobody accepts"});
    proto_pack_status_socket(&p.b.pk, &(struct proto_status_socket){.name = "unix", .address = "/x/s.sock",
                                                                      .port = -1, .waiting = -1});
    proto_pack_status_services_begin(&p.b.pk, 2);
    static const char *const watched[] = {"src/**/*.py", "templates/"};
    static const char *const ignored[] = {"src/gen/"};
    struct proto_status_watch watch = {.paths = watched, .path_count = 2, .ignore = ignored, .ignore_count = 1,
                                       .debounce_ms = 200, .folders = 12, .state = "restarting", .pending = 1,
                                       .events = 1000, .restarts = 3, .last_path = "src/a.py",
                                       .last_change_ago_ms = 40};
    proto_pack_status_service(&p.b.pk, &(struct proto_status_service){.name = "Web", .desired = 2, .running = 1,
                                                                      .watch = &watch}, 1);
    proto_pack_status_socket_name(&p.b.pk, "web");
    proto_pack_status_instances_begin(&p.b.pk, 2);
    proto_pack_status_instance(&p.b.pk, &(struct proto_status_instance){
                                            .index = 0, .state = "running", .pid = 100, .restarts = 1,
                                            .uptime_ms = 900, .cpu_percent = 0.5, .rss_kib = 10, .command = "web",
                                            .ready = 1, .port = "8080", .has_exit = 1,
                                            .last_exit = {.code = 3}});
    proto_pack_status_instance(&p.b.pk, &(struct proto_status_instance){
                                            .index = 1, .state = "backoff", .failure = "exits at once",
                                            .command = "web", .port = "auto", .has_exit = 1,
                                            .waiting = "waiting for Db to be ready",
                                            .last_exit = {.signal = "TERM"}});
    proto_pack_status_service(&p.b.pk, &(struct proto_status_service){.name = "Idle"}, 0);
    proto_pack_status_instances_begin(&p.b.pk, 0);
    const msgpack_object *body = packed_decode(&p);

    struct proto_status st;
    assert_int_equal(proto_unpack_status(body, &st), 0);
    assert_int_equal(st.pid, 42);
    assert_true(str_is(st.config, "/x/.lymph.yml"));
    assert_true(str_is(st.endpoint, "ipc:///x/node.sock"));
    assert_int_equal(st.uptime_ms, 5000);
    assert_true(st.cpu_percent > 1.4 && st.cpu_percent < 1.6);
    assert_true(st.stopping);
    assert_int_equal(st.malformed_messages, 3);
    assert_int_equal(st.socket_count, 2);
    assert_int_equal(st.sockets[0].waiting, 4);
    assert_true(str_is(st.sockets[0].warning, "nobody accepts"));
    assert_int_equal(st.sockets[1].port, -1);
    assert_int_equal(st.sockets[1].waiting, -1);
    assert_null(st.sockets[1].warning.ptr);
    assert_int_equal(st.service_count, 2);
    const struct proto_status_service_view *web = &st.services[0];
    assert_true(str_is(web->name, "Web"));
    assert_int_equal(web->desired, 2);
    assert_int_equal(web->running, 1);
    assert_int_equal(web->socket_count, 1);
    assert_true(str_is(web->sockets[0], "web"));
    assert_true(web->watch.present);
    assert_int_equal(web->watch.path_count, 2);
    assert_true(str_is(web->watch.paths[1], "templates/"));
    assert_int_equal(web->watch.folders, 12);
    assert_true(str_is(web->watch.state, "restarting"));
    assert_true(web->watch.pending);
    assert_false(web->watch.limit_reached);
    assert_int_equal(web->watch.events, 1000);
    assert_int_equal(web->watch.restarts, 3);
    assert_true(str_is(web->watch.last_path, "src/a.py"));
    assert_int_equal(web->watch.last_change_ago_ms, 40);
    assert_false(st.services[1].watch.present);
    assert_int_equal(web->instance_count, 2);
    assert_true(str_is(web->instances[0].state, "running"));
    assert_true(web->instances[0].ready);
    assert_true(web->instances[0].port_is_int);
    assert_int_equal(web->instances[0].port_int, 8080);
    assert_true(web->instances[0].has_exit && web->instances[0].exit_has_code);
    assert_int_equal(web->instances[0].exit_code, 3);
    assert_null(web->instances[0].exit_signal.ptr);
    assert_false(web->instances[1].port_is_int);
    assert_true(str_is(web->instances[1].port, "auto"));
    assert_false(web->instances[1].exit_has_code);
    assert_true(str_is(web->instances[1].exit_signal, "TERM"));
    assert_true(str_is(web->instances[1].failure, "exits at once"));
    assert_null(web->instances[0].waiting.ptr);
    assert_true(str_is(web->instances[1].waiting, "waiting for Db to be ready"));
    assert_int_equal(st.services[1].instance_count, 0);
    proto_status_free(&st);
    packed_free(&p);

    /* Not a status reply: refused, and freeing is still safe. */
    packed_init(&p);
    proto_pack_ok(&p.b.pk, NULL);
    assert_int_equal(proto_unpack_status(packed_decode(&p), &st), -1);
    proto_status_free(&st);
    packed_free(&p);
}

static void test_restart_scale_stop_roundtrip(void **state)
{
    (void)state;
    char buf[256], err[128];
    struct packed p;
    packed_init(&p);
    proto_pack_restart(&p.b.pk, 1, &(struct proto_restart){.target = "Web.2", .wait = 1});
    struct proto_restart r;
    assert_int_equal(proto_unpack_restart(packed_decode(&p), &r, buf, sizeof buf, err, sizeof err), 0);
    assert_string_equal(r.target, "Web");
    assert_int_equal(r.index, 2);
    assert_true(r.wait);
    packed_free(&p);

    packed_init(&p);
    proto_pack_restart(&p.b.pk, 1, &(struct proto_restart){.target = "my.service"});
    assert_int_equal(proto_unpack_restart(packed_decode(&p), &r, buf, sizeof buf, err, sizeof err), 0);
    assert_string_equal(r.target, "my.service"); /* a dot not followed by a number is part of the name */
    assert_int_equal(r.index, -1);
    assert_false(r.wait);
    packed_free(&p);

    packed_init(&p);
    proto_pack_request_id(&p.b.pk, 1);
    assert_int_equal(proto_unpack_restart(packed_decode(&p), &r, buf, sizeof buf, err, sizeof err), -1);
    assert_non_null(strstr(err, "target"));
    packed_free(&p);

    struct proto_scale s;
    packed_init(&p);
    proto_pack_scale(&p.b.pk, 2, &(struct proto_scale){.service = "Web", .count = 3, .wait = 1});
    assert_int_equal(proto_unpack_scale(packed_decode(&p), &s, buf, sizeof buf, err, sizeof err), 0);
    assert_string_equal(s.service, "Web");
    assert_int_equal(s.count, 3);
    assert_true(s.wait);
    packed_free(&p);
    packed_init(&p);
    proto_pack_scale(&p.b.pk, 2, &(struct proto_scale){.service = "Web", .count = PROTO_SCALE_MAX + 1});
    assert_int_equal(proto_unpack_scale(packed_decode(&p), &s, buf, sizeof buf, err, sizeof err), -1);
    assert_string_equal(err, "count must be between 0 and 10000");
    packed_free(&p);

    /* start_service / stop_service: one service, force only when set. */
    struct proto_service_request sr;
    packed_init(&p);
    proto_pack_service_request(&p.b.pk, 3, &(struct proto_service_request){.service = "Worker", .force = 1});
    assert_int_equal(proto_unpack_service_request(packed_decode(&p), &sr, buf, sizeof buf, err, sizeof err), 0);
    assert_string_equal(sr.service, "Worker");
    assert_true(sr.force);
    packed_free(&p);
    packed_init(&p);
    proto_pack_service_request(&p.b.pk, 3, &(struct proto_service_request){.service = "Worker"});
    assert_int_equal(proto_unpack_service_request(packed_decode(&p), &sr, buf, sizeof buf, err, sizeof err), 0);
    assert_false(sr.force);
    packed_free(&p);
    packed_init(&p);
    proto_pack_request_id(&p.b.pk, 1);
    assert_int_equal(proto_unpack_service_request(packed_decode(&p), &sr, buf, sizeof buf, err, sizeof err), -1);
    assert_string_equal(err, "needs 'service' (a service name)");
    packed_free(&p);
    struct proto_service_reply rep;
    char names[64];
    packed_init(&p);
    proto_pack_service_reply(&p.b.pk, NULL, &(struct proto_service_reply){.services = "Db, Api", .instances = 2});
    proto_unpack_service_reply(packed_decode(&p), &rep, names, sizeof names);
    assert_string_equal(rep.services, "Db, Api");
    assert_int_equal(rep.instances, 2);
    packed_free(&p);
    packed_init(&p);
    proto_pack_request_id(&p.b.pk, 1);
    proto_unpack_service_reply(packed_decode(&p), &rep, names, sizeof names);
    assert_string_equal(rep.services, "");
    assert_int_equal(rep.instances, 0);
    packed_free(&p);

    for (int is_scale = 0; is_scale < 2; is_scale++) {
        int64_t n;
        packed_init(&p);
        proto_pack_change_accepted(&p.b.pk, NULL, is_scale, 4);
        proto_unpack_change_accepted(packed_decode(&p), is_scale, &n);
        assert_int_equal(n, 4);
        packed_free(&p);

        struct proto_change_started st = {.is_scale = is_scale, .count = is_scale ? 5 : 0, .instances = 2,
                                          .timeout_ms = 31000}, st2;
        packed_init(&p);
        proto_pack_change_started(&p.b.pk, NULL, &st);
        proto_unpack_change_started(packed_decode(&p), is_scale, &st2);
        assert_int_equal(st2.is_scale, is_scale);
        assert_int_equal(st2.count, st.count);
        assert_int_equal(st2.instances, 2);
        assert_int_equal(st2.timeout_ms, 31000);
        packed_free(&p);

        struct proto_change_done d = {.is_scale = is_scale, .count = 5, .ready = 2, .stopped = 1,
                                      .elapsed_ms = 1234}, d2;
        packed_init(&p);
        proto_pack_change_done(&p.b.pk, NULL, &d);
        proto_unpack_change_done(packed_decode(&p), is_scale, &d2);
        assert_int_equal(d2.is_scale, is_scale);
        assert_int_equal(d2.count, 5);
        assert_int_equal(d2.ready, 2);
        assert_int_equal(d2.stopped, 1);
        assert_int_equal(d2.elapsed_ms, 1234);
        packed_free(&p);
    }

    struct proto_stop stop;
    packed_init(&p);
    proto_pack_stop(&p.b.pk, 1, &(struct proto_stop){.force = 1});
    proto_unpack_stop(packed_decode(&p), &stop);
    assert_true(stop.force);
    packed_free(&p);
    int64_t pid;
    packed_init(&p);
    proto_pack_stop_reply(&p.b.pk, NULL, 4321);
    proto_unpack_stop_reply(packed_decode(&p), &pid);
    assert_int_equal(pid, 4321);
    packed_free(&p);

    /* reload: the lines come back in order; a short buffer still learns the full count */
    const char *changes[] = {"Web: rolled (command changed)", "", "2 services unchanged"};
    struct proto_status_str got[3];
    packed_init(&p);
    proto_pack_reload_reply(&p.b.pk, NULL, changes, 3);
    const msgpack_object *body = packed_decode(&p);
    assert_int_equal(proto_unpack_reload_reply(body, got, 3), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(got[i].len, strlen(changes[i]));
        assert_memory_equal(got[i].ptr, changes[i], got[i].len);
    }
    assert_int_equal(proto_unpack_reload_reply(body, got, 1), 3);
    packed_free(&p);
    packed_init(&p);
    proto_pack_stop_reply(&p.b.pk, NULL, 1); /* no changes key */
    assert_int_equal(proto_unpack_reload_reply(packed_decode(&p), got, 3), 0);
    packed_free(&p);
}

static void test_registry_roundtrip(void **state)
{
    (void)state;
    char err[160];
    struct packed p;
    packed_init(&p);
    static const char *const params[] = {"name", "greeting?"};
    proto_pack_register_begin(&p.b.pk, 9, &(struct proto_register){.service = "Greeting", .instance = 1,
                                                                     .pid = 77, .endpoint = "ipc:///r.sock"});
    proto_pack_methods_begin(&p.b.pk, 1);
    proto_pack_method(&p.b.pk, &(struct proto_method){.name = "greet", .params = params, .param_count = 2,
                                                       .strip_optional_mark = 1, .help = "Says hello"});
    struct proto_register_view r;
    assert_int_equal(proto_unpack_register(packed_decode(&p), &r, err, sizeof err), 0);
    assert_true(wire_str_eq(r.service, "Greeting"));
    assert_true(wire_str_eq(r.endpoint, "ipc:///r.sock"));
    assert_int_equal(r.instance, 1);
    assert_int_equal(r.pid, 77);
    assert_non_null(r.methods);
    const msgpack_object *m = &r.methods->via.array.ptr[0];
    assert_true(wire_str_eq(wire_map_get(m, "name"), "greet"));
    const msgpack_object *ps = wire_map_get(m, "params");
    assert_true(wire_str_eq(&ps->via.array.ptr[1], "greeting")); /* the optional mark is not sent */
    packed_free(&p);

    packed_init(&p);
    proto_pack_heartbeat(&p.b.pk, 1, 77);
    assert_int_equal(proto_unpack_register(packed_decode(&p), &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "register needs"));
    int64_t pid;
    assert_int_equal(proto_unpack_pid(p.body, &pid), 0);
    assert_int_equal(pid, 77);
    packed_free(&p);

    char identity[40];
    packed_init(&p);
    proto_pack_register_reply(&p.b.pk, NULL, "0123456789abcdef0123456789abcdef");
    proto_unpack_register_reply(packed_decode(&p), identity, sizeof identity);
    assert_string_equal(identity, "0123456789abcdef0123456789abcdef");
    packed_free(&p);

    char service[64];
    packed_init(&p);
    proto_pack_discover(&p.b.pk, 1, NULL);
    assert_int_equal(proto_unpack_discover(packed_decode(&p), service, sizeof service, err, sizeof err), 0);
    assert_string_equal(service, "");
    packed_free(&p);
    packed_init(&p);
    proto_pack_discover(&p.b.pk, 1, "Greeting");
    assert_int_equal(proto_unpack_discover(packed_decode(&p), service, sizeof service, err, sizeof err), 0);
    assert_string_equal(service, "Greeting");
    packed_free(&p);

    packed_init(&p);
    proto_pack_services_head(&p.b.pk, NULL, 2);
    proto_pack_services_service(&p.b.pk, "A", 0);
    proto_pack_services_service(&p.b.pk, "Greeting", 1);
    proto_pack_services_entry(&p.b.pk, &(struct proto_discover_entry){.identity = "id", .instance = 0, .pid = 5,
                                                                       .endpoint = "ipc:///g", .registered_ms = 9});
    proto_pack_methods_begin(&p.b.pk, 0);
    const msgpack_object *insts = proto_services_instances(proto_services_array(packed_decode(&p)), "Greeting");
    assert_non_null(insts);
    assert_int_equal(insts->via.array.size, 1);
    char endpoint[32];
    assert_int_equal(wire_get_str(&insts->via.array.ptr[0], "endpoint", endpoint, sizeof endpoint), 0);
    assert_string_equal(endpoint, "ipc:///g");
    assert_null(proto_services_instances(proto_services_array(p.body), "Nope"));
    packed_free(&p);
}

/* A coalesced quiet emit packs its items first and its head last; the node reads it as a
 * batch. Its refusals come back by index, with the type and a reason cut to fit. */
static void test_quiet_emit_roundtrip(void **state)
{
    (void)state;
    char why[200];
    struct packed items, p;
    packed_init(&items);
    struct proto_emit e = {.type = "a.b", .trace_id = "t1", .source = "Shop", .delay_ms = 0};
    for (int i = 0; i < 3; i++) {
        proto_pack_emit_item_begin(&items.b.pk, &e);
        msgpack_pack_int(&items.b.pk, i);
        proto_pack_emit_item_end(&items.b.pk, &e);
    }
    packed_init(&p);
    proto_pack_emit_batch_head(&p.b.pk, 9, "Shop", 1, 3);
    msgpack_sbuffer_write(&p.b.sbuf, items.b.sbuf.data, items.b.sbuf.size);
    const msgpack_object *body = packed_decode(&p);
    assert_int_equal(proto_unpack_emit_quiet(body), 1);
    const msgpack_object *batch, *batch_source;
    assert_int_equal(proto_unpack_emit_batch(body, &batch, &batch_source, why, sizeof why), 0);
    assert_non_null(batch);
    assert_int_equal(batch->via.array.size, 3);
    assert_true(wire_str_eq(batch_source, "Shop"));
    struct proto_emit_view v;
    assert_int_equal(proto_unpack_emit_event(&batch->via.array.ptr[2], &v, why, sizeof why), 0);
    assert_true(wire_str_eq(v.type, "a.b"));
    assert_int_equal(v.body->via.i64, 2);
    assert_null(v.source);
    packed_free(&p);
    packed_free(&items);

    packed_init(&p);
    proto_pack_emit_batch_head(&p.b.pk, 9, "Shop", 0, 0);
    assert_int_equal(proto_unpack_emit_quiet(packed_decode(&p)), 0);
    packed_free(&p);

    packed_init(&p);
    struct proto_emit_refusal r[2] = {{.index = 1, .type = "a.b", .type_len = 3, .message = "journal full"},
                                      {.index = 4, .type = NULL, .message = "a very long reason indeed"}};
    proto_pack_emit_refused(&p.b.pk, NULL, 5, r, 2);
    body = packed_decode(&p);
    int64_t events, index;
    const msgpack_object *refused;
    assert_int_equal(proto_unpack_emit_refused(body, &events, &refused), 0);
    assert_int_equal(events, 5);
    assert_int_equal(refused->via.array.size, 2);
    char type[16], message[10];
    assert_int_equal(proto_unpack_emit_refusal(&refused->via.array.ptr[0], &index, type, sizeof type, message,
                                               sizeof message), 0);
    assert_int_equal(index, 1);
    assert_string_equal(type, "a.b");
    assert_string_equal(message, "journal f");
    assert_int_equal(proto_unpack_emit_refusal(&refused->via.array.ptr[1], &index, type, sizeof type, message,
                                               sizeof message), 0);
    assert_int_equal(index, 4);
    assert_string_equal(type, "");
    packed_free(&p);
}

static void test_bus_roundtrip(void **state)
{
    (void)state;
    char why[200];
    struct packed p;
    packed_init(&p);
    struct proto_emit e = {.type = "order.created", .trace_id = "t1", .source = "Shop", .delay_ms = 10};
    proto_pack_emit_begin(&p.b.pk, 3, &e);
    msgpack_pack_int(&p.b.pk, 42);
    proto_pack_emit_end(&p.b.pk, &e);
    const msgpack_object *body = packed_decode(&p);
    const msgpack_object *batch, *batch_source;
    assert_int_equal(proto_unpack_emit_batch(body, &batch, &batch_source, why, sizeof why), 0);
    assert_null(batch);
    struct proto_emit_view v;
    assert_int_equal(proto_unpack_emit_event(body, &v, why, sizeof why), 0);
    assert_true(wire_str_eq(v.type, "order.created"));
    assert_true(wire_str_eq(v.source, "Shop"));
    assert_int_equal(v.body->via.i64, 42);
    assert_int_equal(v.delay_ms, 10);
    packed_free(&p);

    packed_init(&p);
    e.type = "order.*";
    proto_pack_emit_begin(&p.b.pk, 3, &e);
    msgpack_pack_nil(&p.b.pk);
    proto_pack_emit_end(&p.b.pk, &e);
    assert_int_equal(proto_unpack_emit_event(packed_decode(&p), &v, why, sizeof why), -1);
    assert_non_null(strstr(why, "dot-separated"));
    packed_free(&p);

    packed_init(&p);
    proto_pack_emit_reply(&p.b.pk, NULL, 0, 2, 17);
    assert_int_equal(proto_unpack_emit_offset(packed_decode(&p)), 17);
    packed_free(&p);
    packed_init(&p);
    proto_pack_emit_reply(&p.b.pk, NULL, 5, 2, -1);
    assert_int_equal(proto_unpack_emit_offset(packed_decode(&p)), -1);
    packed_free(&p);

    static const char *const patterns[] = {"order.#", "greeted"};
    struct proto_subscribe_view sv;
    packed_init(&p);
    proto_pack_subscribe(&p.b.pk, 4, &(struct proto_subscribe){.subscription = "s1", .patterns = patterns,
                                                                .pattern_count = 2, .group = "Shop.on_order",
                                                                .pid = 9, .prefetch = 8, .batch = 32,
                                                                .stream = "order.#", .from = "12"});
    assert_int_equal(proto_unpack_subscribe(packed_decode(&p), &sv, why, sizeof why), 0);
    assert_string_equal(sv.subscription, "s1");
    assert_int_equal(sv.patterns->via.array.size, 2);
    assert_string_equal(sv.group, "Shop.on_order");
    assert_false(sv.broadcast);
    assert_int_equal(sv.pid, 9);
    assert_int_equal(sv.prefetch, 8);
    assert_int_equal(sv.batch, 32);
    assert_true(sv.has_stream);
    assert_string_equal(sv.stream, "order.#");
    assert_int_equal(sv.from, PROTO_FROM_OFFSET);
    assert_int_equal(sv.from_offset, 12);
    assert_true(sv.has_from);
    packed_free(&p);

    static const char *const bad[] = {"a..b"};
    packed_init(&p);
    proto_pack_subscribe(&p.b.pk, 4, &(struct proto_subscribe){.subscription = "s1", .patterns = bad,
                                                                .pattern_count = 1, .broadcast = 1});
    assert_int_equal(proto_unpack_subscribe(packed_decode(&p), &sv, why, sizeof why), -1);
    assert_non_null(strstr(why, "not a valid pattern"));
    packed_free(&p);

    char sub[65];
    packed_init(&p);
    proto_pack_unsubscribe(&p.b.pk, 5, "s1");
    assert_int_equal(proto_unpack_unsubscribe(packed_decode(&p), sub, sizeof sub, why, sizeof why), 0);
    assert_string_equal(sub, "s1");
    packed_free(&p);

    /* Deliveries carry the event's packed headers and body as they are. */
    static const char headers[] = "\x81\xa8trace_id\xa2t1", ebody[] = "\x2a";
    struct proto_event ev = {.delivery = 17, .has_offset = 1, .offset = 3, .type = "greeted", .source = "G",
                             .headers = headers, .headers_len = sizeof headers - 1, .body = ebody,
                             .body_len = 1, .redelivered = 1};
    packed_init(&p);
    proto_pack_events_begin(&p.b.pk, "s1", 2);
    proto_pack_events_item(&p.b.pk, &p.b.sbuf, &ev);
    proto_pack_events_item(&p.b.pk, &p.b.sbuf, &ev);
    body = packed_decode(&p);
    const msgpack_object *events = wire_map_get(body, "events");
    assert_int_equal(events->via.array.size, 2);
    int64_t n;
    assert_int_equal(wire_get_int(&events->via.array.ptr[1], "delivery", &n), 0);
    assert_int_equal(n, 17);
    const msgpack_object *h = wire_map_get(&events->via.array.ptr[1], "headers");
    assert_true(wire_str_eq(wire_map_get(h, "trace_id"), "t1"));
    struct proto_event_view view;
    proto_unpack_event_view(&events->via.array.ptr[1], &view);
    assert_int_equal(view.delivery, 17);
    assert_int_equal(view.offset, 3);
    assert_true(wire_str_eq(view.type, "greeted"));
    assert_true(wire_str_eq(view.source, "G"));
    assert_int_equal(view.body->via.u64, 42);
    assert_true(wire_str_eq(wire_map_get(view.headers, "trace_id"), "t1"));
    assert_int_equal(view.redelivered, 1);
    packed_free(&p);
    /* Missing, nil or mistyped fields read as absent; the first of a repeated key counts. */
    packed_init(&p);
    msgpack_pack_map(&p.b.pk, 5);
    wire_pack_kv_int(&p.b.pk, "delivery", 9);
    wire_pack_kv_int(&p.b.pk, "delivery", 10);
    wire_pack_str(&p.b.pk, "offset");
    msgpack_pack_nil(&p.b.pk);
    wire_pack_kv_int(&p.b.pk, "type", 3);
    wire_pack_kv_str(&p.b.pk, "redelivered", "yes");
    proto_unpack_event_view(packed_decode(&p), &view);
    assert_int_equal(view.delivery, 9);
    assert_int_equal(view.offset, -1);
    assert_null(view.type);
    assert_null(view.source);
    assert_null(view.body);
    assert_int_equal(view.redelivered, 0);
    packed_free(&p);
    packed_init(&p);
    msgpack_pack_map(&p.b.pk, 1);
    wire_pack_kv_int(&p.b.pk, "delivery", -4);
    proto_unpack_event_view(packed_decode(&p), &view);
    assert_int_equal(view.delivery, -1);
    packed_free(&p);
    packed_init(&p);
    proto_pack_event(&p.b.pk, &p.b.sbuf, "s1", &ev);
    body = packed_decode(&p);
    assert_true(wire_str_eq(wire_map_get(body, "subscription"), "s1"));
    assert_int_equal(wire_get_int(body, "offset", &n), 0);
    assert_int_equal(n, 3);
    packed_free(&p);

    const msgpack_object *one, *list;
    uint64_t tags[] = {5, 6, 7};
    packed_init(&p);
    proto_pack_settle(&p.b.pk, 0, tags, 1);
    proto_unpack_settle(packed_decode(&p), &one, &list);
    assert_non_null(one);
    assert_null(list);
    assert_int_equal(one->via.u64, 5);
    packed_free(&p);
    packed_init(&p);
    proto_pack_settle(&p.b.pk, 2, tags, 3);
    proto_unpack_settle(packed_decode(&p), &one, &list);
    assert_null(one);
    assert_int_equal(list->via.array.size, 3);
    packed_free(&p);

    packed_init(&p);
    proto_pack_bus_status_head(&p.b.pk, NULL, 1);
    proto_pack_bus_status_stream(&p.b.pk, &(struct proto_bus_stream){.pattern = "book.#", .first_offset = 0,
                                                                      .next_offset = 40});
    proto_pack_bus_status_totals(&p.b.pk, &(struct proto_bus_totals){.emitted = 40}, 1);
    proto_pack_bus_status_group(&p.b.pk, &(struct proto_bus_group){.name = "View.on_book", .stream = "book.#",
                                                                    .read_offset = 40, .committed_offset = 38},
                                patterns, 1);
    int64_t next, committed;
    assert_int_equal(proto_unpack_bus_status_stream(packed_decode(&p), "book.#", "View.on_book", &next, &committed),
                     0);
    assert_int_equal(next, 40);
    assert_int_equal(committed, 38);
    assert_int_equal(proto_unpack_bus_status_stream(p.body, "other.#", NULL, &next, &committed), -1);
    packed_free(&p);
}

static void test_tail_conversation_roundtrip(void **state)
{
    (void)state;
    char err[160];
    struct packed p;
    uint64_t received = 12;
    int has;
    uint64_t got;
    packed_init(&p);
    tailwire_pack_renew(&p.b.pk, 1, &received);
    assert_int_equal(tailwire_unpack_renew(packed_decode(&p), &has, &got, err, sizeof err), 0);
    assert_true(has);
    assert_int_equal(got, 12);
    packed_free(&p);
    packed_init(&p);
    tailwire_pack_renew(&p.b.pk, 1, NULL);
    assert_int_equal(tailwire_unpack_renew(packed_decode(&p), &has, &got, err, sizeof err), 0);
    assert_false(has);
    packed_free(&p);

    int64_t limit;
    packed_init(&p);
    tailwire_pack_traces_request(&p.b.pk, 1, 50);
    assert_int_equal(tailwire_unpack_traces_request(packed_decode(&p), &limit, err, sizeof err), 0);
    assert_int_equal(limit, 50);
    packed_free(&p);
    packed_init(&p);
    tailwire_pack_untail(&p.b.pk, 1);
    assert_int_equal(tailwire_unpack_traces_request(packed_decode(&p), &limit, err, sizeof err), 0);
    assert_int_equal(limit, TAILWIRE_TRACES_DEFAULT);
    packed_free(&p);
    packed_init(&p);
    tailwire_pack_traces_request(&p.b.pk, 1, PROTO_TRACES_LIMIT_MAX + 1);
    assert_int_equal(tailwire_unpack_traces_request(packed_decode(&p), &limit, err, sizeof err), -1);
    packed_free(&p);

    /* `lines` and `end` echo the request's id as packed, and carry the skipped range. */
    static const char id[] = "\x07";
    struct tail_skipped sk = {.count = 3, .first = 10, .last = 19}, sk2;
    packed_init(&p);
    struct tailwire_lines_mark mark;
    tailwire_lines_begin(&p.b, id, 1, &mark);
    struct strbuf line, scratch;
    strbuf_init(&line);
    strbuf_init(&scratch);
    struct log_line l = {.seq = 20, .service = "Web", .instance = 0, .text = "hi", .len = 2};
    tailwire_pack_line(&line, &l, &scratch);
    msgpack_sbuffer_write(&p.b.sbuf, line.data, line.len);
    tailwire_lines_finish(&p.b, &mark, 1, &sk);
    const msgpack_object *body = packed_decode(&p);
    int64_t n;
    assert_int_equal(wire_get_int(body, "id", &n), 0);
    assert_int_equal(n, 7);
    const msgpack_object *lines = tailwire_lines_array(body);
    assert_int_equal(lines->via.array.size, 1);
    struct tail_line tl;
    assert_int_equal(tailwire_unpack_line(&lines->via.array.ptr[0], &tl), 0);
    assert_int_equal(tl.line.seq, 20);
    assert_int_equal(tailwire_unpack_skipped(body, &sk2), 0);
    assert_memory_equal(&sk, &sk2, sizeof sk);
    packed_free(&p);
    strbuf_free(&line);
    strbuf_free(&scratch);

    int truncated;
    struct tail_skipped none = {0};
    packed_init(&p);
    tailwire_pack_end(&p.b, id, 1, 1, &none);
    tailwire_unpack_end(packed_decode(&p), &truncated, &sk2);
    assert_true(truncated);
    assert_int_equal(sk2.count, 0);
    assert_null(wire_map_get(p.body, "skipped_seqs"));
    packed_free(&p);

    static const char *const services[] = {"Web", "Db"};
    packed_init(&p);
    tailwire_pack_traces_head(&p.b.pk, NULL, 1);
    tailwire_pack_trace(&p.b.pk, &(struct tail_trace_summary){.trace_id = "abc", .first_ns = 1, .last_ns = 2,
                                                               .lines = 3, .error = 1, .services = services,
                                                               .service_count = 2});
    body = packed_decode(&p);
    const msgpack_object *traces = wire_map_get(body, "traces");
    assert_int_equal(traces->via.array.size, 1);
    assert_true(wire_str_eq(wire_map_get(&traces->via.array.ptr[0], "trace_id"), "abc"));
    struct tail_traces back;
    assert_int_equal(tailwire_unpack_traces(body, &back, err, sizeof err), 0);
    assert_int_equal(back.count, 1);
    assert_string_equal(back.items[0].trace_id, "abc");
    assert_int_equal(back.items[0].first_ns, 1);
    assert_int_equal(back.items[0].last_ns, 2);
    assert_int_equal(back.items[0].lines, 3);
    assert_true(back.items[0].error);
    assert_int_equal(back.items[0].service_count, 2);
    assert_string_equal(back.items[0].services[0], "Web");
    assert_string_equal(back.items[0].services[1], "Db");
    tailwire_traces_free(&back);
    packed_free(&p);

    /* Not a traces reply: a clear word, nothing leaked. */
    packed_init(&p);
    tailwire_pack_traces_request(&p.b.pk, 1, 5);
    assert_int_equal(tailwire_unpack_traces(packed_decode(&p), &back, err, sizeof err), -1);
    assert_string_equal(err, "the node's traces reply could not be decoded");
    tailwire_traces_free(&back);
    packed_free(&p);
}

static void test_rpc_bodies_roundtrip(void **state)
{
    (void)state;
    struct packed p;
    char type[32], message[64];
    packed_init(&p);
    rpc_pack_error_body(&p.b.pk, "ValueError", "bad name");
    rpc_unpack_error_body(packed_decode(&p), type, sizeof type, "Error", message, sizeof message);
    assert_string_equal(type, "ValueError");
    assert_string_equal(message, "bad name");
    packed_free(&p);
    packed_init(&p);
    rpc_pack_error_body(&p.b.pk, "AVeryLongErrorTypeNameThatDoesNotFit", "bad name");
    rpc_unpack_error_body(packed_decode(&p), type, 8, "Error", message, sizeof message);
    assert_string_equal(type, "AVeryLo"); /* cut to fit: a long one is still worth reading */
    packed_free(&p);
    packed_init(&p);
    rpc_pack_headers(&p.b.pk, "t9");
    rpc_unpack_error_body(packed_decode(&p), type, sizeof type, "Error", message, sizeof message);
    assert_string_equal(type, "Error");
    assert_string_equal(message, "(no message)");
    assert_true(wire_str_eq(wire_map_get(p.body, "trace_id"), "t9"));
    packed_free(&p);
    packed_init(&p);
    rpc_pack_lymph_status(&p.b.pk, &(struct rpc_lymph_status){.service = "G", .instance = 1, .pid = 2,
                                                                .endpoint = "ipc:///g", .served = 5});
    const msgpack_object *body = packed_decode(&p);
    assert_int_equal(wire_map_get(body, "identity")->type, MSGPACK_OBJECT_NIL);
    int64_t served;
    assert_int_equal(wire_get_int(body, "served", &served), 0);
    assert_int_equal(served, 5);
    packed_free(&p);
}

static void test_attach_bodies_roundtrip(void **state)
{
    (void)state;
    char buf[256], tty[64], err[160], mode[16];
    struct packed p;
    struct proto_attach a;
    packed_init(&p);
    proto_pack_attach(&p.b.pk, 1, &(struct proto_attach){.target = "Web.1", .pid = 4242, .tty = "/dev/pts/3",
                                                         .rows = 40, .cols = 120});
    assert_int_equal(proto_unpack_attach(packed_decode(&p), &a, buf, sizeof buf, tty, sizeof tty, err, sizeof err), 0);
    assert_string_equal(a.target, "Web");
    assert_int_equal(a.index, 1);
    assert_int_equal(a.pid, 4242);
    assert_string_equal(a.tty, "/dev/pts/3");
    assert_int_equal(a.rows, 40);
    assert_int_equal(a.cols, 120);
    packed_free(&p);
    /* no instance named; a window size out of range reads as unknown, not as a refusal */
    packed_init(&p);
    proto_pack_attach(&p.b.pk, 1, &(struct proto_attach){.target = "Web", .rows = 70000, .cols = 80});
    assert_int_equal(proto_unpack_attach(packed_decode(&p), &a, buf, sizeof buf, tty, sizeof tty, err, sizeof err), 0);
    assert_int_equal(a.index, -1);
    assert_int_equal(a.rows, 0);
    assert_int_equal(a.cols, 0);
    assert_string_equal(a.tty, "");
    packed_free(&p);
    packed_init(&p);
    proto_pack_request_id(&p.b.pk, 1);
    assert_int_equal(proto_unpack_attach(packed_decode(&p), &a, buf, sizeof buf, tty, sizeof tty, err, sizeof err), -1);
    assert_string_equal(err, "attach needs a string 'target' (Service.N)");
    packed_free(&p);

    struct proto_attach_reply r;
    packed_init(&p);
    proto_pack_attach_reply(&p.b.pk, NULL, &(struct proto_attach_reply){.pid = 7, .mode = "pty"});
    proto_unpack_attach_reply(packed_decode(&p), &r, mode, sizeof mode);
    assert_int_equal(r.pid, 7);
    assert_string_equal(r.mode, "pty");
    packed_free(&p);

    /* a refusal is an ordinary `error` to any client, with the reason beside its message */
    packed_init(&p);
    proto_pack_attach_error(&p.b.pk, NULL, PROTO_ATTACH_REFUSED_BUSY, "Web.1 is attached already");
    char message[100], reason[16];
    proto_unpack_error(packed_decode(&p), message, sizeof message);
    proto_unpack_attach_reason(p.body, reason, sizeof reason);
    assert_string_equal(message, "Web.1 is attached already");
    assert_string_equal(reason, "busy");
    packed_free(&p);

    /* bytes go as bin, any byte value; a str is read too; too long is refused */
    static const char bytes[] = {'\x03', '\0', '\x1d', '\xff', 'a'};
    struct proto_attach_data d;
    packed_init(&p);
    proto_pack_attach_data(&p.b.pk, &(struct proto_attach_data){.data = bytes, .len = sizeof bytes});
    assert_int_equal(p.b.sbuf.data[1 + 1 + 4], (char)0xc4); /* {"data": bin8 ...} */
    assert_int_equal(proto_unpack_attach_data(packed_decode(&p), &d, err, sizeof err), 0);
    assert_int_equal(d.len, sizeof bytes);
    assert_memory_equal(d.data, bytes, sizeof bytes);
    packed_free(&p);
    packed_init(&p);
    msgpack_pack_map(&p.b.pk, 1);
    wire_pack_kv_str(&p.b.pk, "data", "ls\n");
    assert_int_equal(proto_unpack_attach_data(packed_decode(&p), &d, err, sizeof err), 0);
    assert_int_equal(d.len, 3);
    packed_free(&p);
    char *big = calloc(1, PROTO_ATTACH_DATA_MAX + 1);
    packed_init(&p);
    proto_pack_attach_data(&p.b.pk, &(struct proto_attach_data){.data = big, .len = PROTO_ATTACH_DATA_MAX + 1});
    assert_int_equal(proto_unpack_attach_data(packed_decode(&p), &d, err, sizeof err), -1);
    assert_string_equal(err, "attach data of 65537 bytes: at most 65536 in one message");
    packed_free(&p);
    free(big);
    packed_init(&p);
    proto_pack_request_id(&p.b.pk, 1);
    assert_int_equal(proto_unpack_attach_data(packed_decode(&p), &d, err, sizeof err), -1);
    packed_free(&p);

    struct proto_attach_resize z;
    packed_init(&p);
    proto_pack_attach_resize(&p.b.pk, &(struct proto_attach_resize){.rows = 30, .cols = 100});
    assert_int_equal(proto_unpack_attach_resize(packed_decode(&p), &z, err, sizeof err), 0);
    assert_int_equal(z.rows, 30);
    assert_int_equal(z.cols, 100);
    packed_free(&p);
    packed_init(&p);
    proto_pack_attach_resize(&p.b.pk, &(struct proto_attach_resize){.rows = 0, .cols = 100});
    assert_int_equal(proto_unpack_attach_resize(packed_decode(&p), &z, err, sizeof err), -1);
    packed_free(&p);

    packed_init(&p);
    proto_pack_attach_end(&p.b.pk, &(struct proto_attach_end){.reason = "exited", .message = "Web.1 (pid 9) exited"});
    char why[200];
    proto_unpack_attach_end(packed_decode(&p), reason, sizeof reason, why, sizeof why);
    assert_string_equal(reason, "exited");
    assert_string_equal(why, "Web.1 (pid 9) exited");
    packed_free(&p);
}

static void test_version_mismatch_names_both_versions(void **state)
{
    (void)state;
    char line[300];
    proto_version_mismatch(line, sizeof line, "2", WIRE_VERSION, "devnode");
    assert_non_null(strstr(line, "the node speaks protocol 2, this devnode 1: "));
    assert_null(strchr(line, '\n'));
    assert_string_equal(WIRE_VERSION, "1");
    assert_int_equal(PROTOCOL_VERSION, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_id_bytes_are_plain_msgpack),
        cmocka_unit_test(test_ok_error_and_echoed_ids),
        cmocka_unit_test(test_status_roundtrip),
        cmocka_unit_test(test_restart_scale_stop_roundtrip),
        cmocka_unit_test(test_registry_roundtrip),
        cmocka_unit_test(test_bus_roundtrip),
        cmocka_unit_test(test_tail_conversation_roundtrip),
        cmocka_unit_test(test_rpc_bodies_roundtrip),
        cmocka_unit_test(test_quiet_emit_roundtrip),
        cmocka_unit_test(test_version_mismatch_names_both_versions),
        cmocka_unit_test(test_attach_bodies_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
