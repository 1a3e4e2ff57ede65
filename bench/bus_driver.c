/* bus_driver.c: compiled and run by bench_bus.py. The publisher and the sinks are C (built
 * against proto/wire.c from libcore.a), so the figure is the node's: Python drivers top out
 * far below it on a small machine. When no compiler is at hand bench_bus.py uses its Python
 * drivers and the figure says so. */
#include <string.h>
#include <unistd.h>
#include "proto/wire.h"
#include "bench/driver.h"

static size_t cap = 1 << 16, count = 0;
static unsigned *seqs;

static void note_event(const msgpack_object *ev)
{
    int64_t n = -1;
    const msgpack_object *body = wire_map_get(ev, "body");
    if (body && body->type == MSGPACK_OBJECT_MAP)
        wire_get_int(body, "n", &n);
    if (count == cap)
        seqs = realloc(seqs, (cap *= 2) * sizeof *seqs);
    seqs[count++] = (unsigned)n;
}

static int sink(const char *endpoint, const char *group, const char *pattern, int prefetch, int batch, const char *out)
{
    void *ctx = zmq_ctx_new(), *s = connect_node(ctx, endpoint);
    send_subscribe(s, "s1", pattern, group, prefetch, batch, NULL);
    seqs = malloc(cap * sizeof *seqs);
    double last = 0, next_beat = mono() + 1;
    for (;;) {
        zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 1000) == 0 && count)
            break;
        struct wire_msg m;
        while (next_message(s, &m)) {
            if (!strcmp(m.type, "events")) {
                /* a batch: handled in order, then acked with one message */
                const msgpack_object *evs = wire_map_get(m.body, "events");
                struct wire_body a;
                wire_body_init(&a);
                msgpack_pack_map(&a.pk, 1);
                wire_pack_str(&a.pk, "deliveries");
                msgpack_pack_array(&a.pk, evs->via.array.size);
                for (uint32_t i = 0; i < evs->via.array.size; i++) {
                    int64_t delivery = 0;
                    wire_get_int(&evs->via.array.ptr[i], "delivery", &delivery);
                    note_event(&evs->via.array.ptr[i]);
                    msgpack_pack_int64(&a.pk, delivery);
                }
                wire_send(s, NULL, 0, "ack", a.sbuf.data, a.sbuf.size, 0);
                wire_body_free(&a);
            } else if (!strcmp(m.type, "event")) {
                int64_t delivery = 0;
                wire_get_int(m.body, "delivery", &delivery);
                note_event(m.body);
                send_ack(s, delivery);
            } else if (!strcmp(m.type, "ok")) {
                printf("ready\n");
                fflush(stdout);
            } else if (!strcmp(m.type, "error")) {
                char msg[256] = "?";
                wire_get_str(m.body, "message", msg, sizeof msg);
                printf("error %s\n", msg);
                return 1;
            }
            wire_msg_free(&m);
        }
        last = wall();
        heartbeat_every_second(s, &next_beat);
    }
    FILE *f = fopen(out, "wb");
    fwrite(seqs, sizeof *seqs, count, f);
    fclose(f);
    printf("%.6f %zu\n", last, count);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

static void pack_event(msgpack_packer *pk, long n, int with_id)
{
    msgpack_pack_map(pk, with_id ? 6 : 4);
    if (with_id)
        wire_pack_kv_int(pk, "id", n);
    wire_pack_kv_str(pk, "type", "bench.evt");
    wire_pack_str(pk, "body");
    msgpack_pack_map(pk, 2);
    wire_pack_kv_int(pk, "n", n);
    wire_pack_kv_str(pk, "name", "joe");
    wire_pack_str(pk, "headers");
    msgpack_pack_map(pk, 1);
    wire_pack_kv_str(pk, "trace_id", "bench");
    if (with_id)
        wire_pack_kv_str(pk, "source", "bench");
    wire_pack_kv_int(pk, "delay_ms", 0);
}

/* Emits n events, `window` of them awaiting the node's ok at most: one event per emit
 * message when batch is 1, else `batch` events per message. */
static int publish(const char *endpoint, long n, long window, long batch)
{
    void *ctx = zmq_ctx_new(), *s = connect_node(ctx, endpoint);
    long sent = 0, done = 0, refused = 0;
    double start = wall();
    while (done < n) {
        while (sent < n && sent - done < window) {
            struct wire_body b;
            wire_body_init(&b);
            if (batch <= 1) {
                pack_event(&b.pk, sent, 1);
                sent++;
            } else {
                long k = n - sent < batch ? n - sent : batch;
                msgpack_pack_map(&b.pk, 3);
                wire_pack_kv_int(&b.pk, "id", sent);
                wire_pack_kv_str(&b.pk, "source", "bench");
                wire_pack_str(&b.pk, "events");
                msgpack_pack_array(&b.pk, k);
                for (long i = 0; i < k; i++)
                    pack_event(&b.pk, sent + i, 0);
                sent += k;
            }
            wire_send(s, NULL, 0, "emit", b.sbuf.data, b.sbuf.size, 0);
            wire_body_free(&b);
        }
        if (wait_for_node(s, "the node stopped answering emits", done) < 0)
            return 1;
        struct wire_msg m;
        while (next_message(s, &m)) {
            int64_t events = 1;
            wire_get_int(m.body, "events", &events);
            if (strcmp(m.type, "ok") != 0) {
                char msg[256] = "?";
                wire_get_str(m.body, "message", msg, sizeof msg);
                fprintf(stderr, "emit refused: %s\n", msg);
                events = batch;
                refused += batch;
            }
            done += events;
            wire_msg_free(&m);
        }
    }
    printf("%.6f %.6f %ld\n", start, wall(), refused);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 8 && !strcmp(argv[1], "sink"))
        return sink(argv[2], argv[3], argv[4], atoi(argv[5]), atoi(argv[6]), argv[7]);
    if (argc == 6 && !strcmp(argv[1], "pub"))
        return publish(argv[2], atol(argv[3]), atol(argv[4]), atol(argv[5]));
    fprintf(stderr, "usage: driver sink ENDPOINT GROUP PATTERN PREFETCH BATCH OUT | pub ENDPOINT N WINDOW BATCH\n");
    return 2;
}
