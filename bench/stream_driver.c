/* stream_driver.c: compiled and run by bench_streams.py, built against proto/wire.c from
 * libcore.a so the figures are the node's.
 *   pub ENDPOINT N WINDOW: emits N retained events, WINDOW in flight (JA).
 *   replay ENDPOINT STREAM N PREFETCH: reads the stream from the beginning and acks every
 *   event, checking offsets 0..N-1 arrive once and in order (JR). */
#include <string.h>
#include <unistd.h>
#include "proto/wire.h"
#include "bench/driver.h"

/* Emits n book.added events, `window` in flight; prints seconds, refused, last offset. */
static int publish(const char *endpoint, long n, long window)
{
    void *ctx = zmq_ctx_new(), *s = connect_node(ctx, endpoint);
    long sent = 0, done = 0, refused = 0;
    int64_t last_offset = -1;
    char title[32];
    double start = mono();
    while (done < n) {
        for (; sent < n && sent - done < window; sent++) {
            struct wire_body b;
            wire_body_init(&b);
            msgpack_pack_map(&b.pk, 6);
            wire_pack_kv_int(&b.pk, "id", sent);
            wire_pack_kv_str(&b.pk, "type", "book.added");
            wire_pack_str(&b.pk, "body");
            msgpack_pack_map(&b.pk, 2);
            wire_pack_kv_int(&b.pk, "n", sent);
            snprintf(title, sizeof title, "Book %ld", sent);
            wire_pack_kv_str(&b.pk, "title", title);
            wire_pack_str(&b.pk, "headers");
            msgpack_pack_map(&b.pk, 1);
            wire_pack_kv_str(&b.pk, "trace_id", "bench");
            wire_pack_kv_str(&b.pk, "source", "bench");
            wire_pack_kv_int(&b.pk, "delay_ms", 0);
            wire_send(s, NULL, 0, "emit", b.sbuf.data, b.sbuf.size, 0);
            wire_body_free(&b);
        }
        if (wait_for_node(s, "the node stopped answering emits", done) < 0)
            return 1;
        struct wire_msg m;
        while (next_message(s, &m)) {
            int64_t off;
            if (strcmp(m.type, "ok") != 0)
                refused++;
            else if (wire_get_int(m.body, "offset", &off) == 0 && off > last_offset)
                last_offset = off;
            done++;
            wire_msg_free(&m);
        }
    }
    printf("%.6f %ld %lld\n", mono() - start, refused, (long long)last_offset);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

/* Subscribes to `stream` from the beginning (a group of its own), acks every event until n
 * came; prints seconds, events, and how many arrived out of order or twice. */
static int replay(const char *endpoint, const char *stream, long n, int prefetch)
{
    void *ctx = zmq_ctx_new(), *s = connect_node(ctx, endpoint);
    double start = mono(), next_beat = start + 1;
    send_subscribe(s, "r1", stream, NULL, prefetch, 0, stream);
    long count = 0, disorder = 0;
    int64_t expect = 0;
    while (count < n) {
        if (wait_for_node(s, "no event for 10 s", count) < 0)
            return 1;
        struct wire_msg m;
        while (next_message(s, &m)) {
            if (!strcmp(m.type, "event")) {
                int64_t delivery = 0, offset = -1;
                wire_get_int(m.body, "delivery", &delivery);
                wire_get_int(m.body, "offset", &offset);
                disorder += offset != expect;
                expect = offset + 1;
                count++;
                send_ack(s, delivery);
            } else if (!strcmp(m.type, "error")) {
                char msg[256] = "?";
                wire_get_str(m.body, "message", msg, sizeof msg);
                fprintf(stderr, "subscribe refused: %s\n", msg);
                return 1;
            }
            wire_msg_free(&m);
        }
        heartbeat_every_second(s, &next_beat);
    }
    printf("%.6f %ld %ld\n", mono() - start, count, disorder);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "pub"))
        return publish(argv[2], atol(argv[3]), atol(argv[4]));
    if (argc == 6 && !strcmp(argv[1], "replay"))
        return replay(argv[2], argv[3], atol(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: driver pub ENDPOINT N WINDOW | replay ENDPOINT STREAM N PREFETCH\n");
    return 2;
}
