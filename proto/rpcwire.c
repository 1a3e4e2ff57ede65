/* rpcwire: frame-level encoding of lymph-style RPC messages. Ids and trace ids come from
 * getrandom(), so two processes never mint the same one. */
#include "proto/rpcwire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static const char *const type_names[] = {"REQ", "REP", "ACK", "NACK", "ERROR"};

const char *rpc_call_subject(const char *subject, size_t *service_len)
{
    const char *dot = subject ? strchr(subject, '.') : NULL;
    if (!dot || dot == subject || !dot[1] || strlen(subject) > RPC_SUBJECT_MAX)
        return NULL;
    *service_len = (size_t)(dot - subject);
    return strchr(dot + 1, '.') ? dot + 1 : subject;
}

const char *rpc_type_name(enum rpc_type type)
{
    return (unsigned)type < 5 ? type_names[type] : "?";
}

static void random_hex(char *out, size_t digits)
{
    unsigned char bytes[32];
    size_t n = (digits + 1) / 2;
    if (getrandom(bytes, n, 0) != (ssize_t)n) {
        /* No entropy source: fall back on something unique enough for ids. */
        for (size_t i = 0; i < n; i++)
            bytes[i] = (unsigned char)(rand() & 0xff);
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < digits; i++)
        out[i] = hex[(bytes[i / 2] >> ((i & 1) ? 0 : 4)) & 15];
    out[digits] = '\0';
}

void rpc_new_id(char out[17])
{
    random_hex(out, 16);
}

void rpc_new_trace_id(char out[33])
{
    random_hex(out, 32);
}

static int recv_frame(void *sock, zmq_msg_t *frame, int first)
{
    if (!first) {
        int more = 0;
        size_t len = sizeof more;
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
        if (!more)
            return -1;
    }
    zmq_msg_init(frame);
    if (zmq_msg_recv(frame, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(frame);
        return -2;
    }
    return 0;
}

static int copy_text_frame(zmq_msg_t *frame, char *out, size_t cap)
{
    size_t n = zmq_msg_size(frame);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, zmq_msg_data(frame), n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
            return -1;
    return 0;
}

enum wire_recv_result rpc_recv(void *sock, int routed, struct rpc_msg *msg, char *err, size_t errlen)
{
    memset(msg, 0, sizeof *msg);
    zmq_msg_t frame;
    int rc = recv_frame(sock, &frame, 1);
    if (rc == -2)
        return (errno == EAGAIN || errno == EINTR) ? WIRE_AGAIN : WIRE_ERROR;
    const char *why = NULL;
    if (routed) {
        size_t n = zmq_msg_size(&frame);
        msg->routing_len = n < WIRE_IDENTITY_MAX ? n : WIRE_IDENTITY_MAX;
        memcpy(msg->routing, zmq_msg_data(&frame), msg->routing_len);
        zmq_msg_close(&frame);
        if (recv_frame(sock, &frame, 0) < 0) {
            snprintf(err, errlen, "message has only a routing frame");
            return WIRE_MALFORMED;
        }
    }
    if (copy_text_frame(&frame, msg->id, sizeof msg->id) < 0)
        why = "bad id frame";
    zmq_msg_close(&frame);
    char type[8] = "";
    if (!why) {
        if (recv_frame(sock, &frame, 0) < 0) {
            snprintf(err, errlen, "message ends after its id");
            return WIRE_MALFORMED;
        }
        if (copy_text_frame(&frame, type, sizeof type) < 0)
            why = "bad type frame";
        zmq_msg_close(&frame);
    }
    if (!why) {
        int found = -1;
        for (int i = 0; i < 5; i++)
            if (strcmp(type, type_names[i]) == 0)
                found = i;
        if (found < 0)
            why = "unknown message type";
        else
            msg->type = (enum rpc_type)found;
    }
    if (!why) {
        if (recv_frame(sock, &frame, 0) < 0) {
            snprintf(err, errlen, "message ends after its type");
            return WIRE_MALFORMED;
        }
        if (copy_text_frame(&frame, msg->subject, sizeof msg->subject) < 0)
            why = "bad subject frame";
        zmq_msg_close(&frame);
    }
    if (why) {
        wire_drain(sock);
        snprintf(err, errlen, "%s", why);
        return WIRE_MALFORMED;
    }
    if (recv_frame(sock, &msg->headers_frame, 0) < 0) {
        snprintf(err, errlen, "message has no headers frame");
        return WIRE_MALFORMED;
    }
    if (recv_frame(sock, &msg->body_frame, 0) < 0) {
        zmq_msg_close(&msg->headers_frame);
        snprintf(err, errlen, "message has no body frame");
        return WIRE_MALFORMED;
    }
    int more = 0;
    size_t len = sizeof more;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
    if (more)
        wire_drain(sock);
    size_t hlen = zmq_msg_size(&msg->headers_frame), blen = zmq_msg_size(&msg->body_frame);
    if (more || hlen > WIRE_BODY_MAX || blen > WIRE_BODY_MAX) {
        zmq_msg_close(&msg->headers_frame);
        zmq_msg_close(&msg->body_frame);
        snprintf(err, errlen, more ? "message has extra frames" : "message is over the size limit");
        return WIRE_MALFORMED;
    }
    msgpack_unpacked_init(&msg->headers_unpacked);
    msgpack_unpacked_init(&msg->body_unpacked);
    size_t off = 0;
    int ok = wire_msgpack_check(zmq_msg_data(&msg->headers_frame), hlen) == 0 &&
             wire_msgpack_check(zmq_msg_data(&msg->body_frame), blen) == 0 &&
             msgpack_unpack_next(&msg->headers_unpacked, zmq_msg_data(&msg->headers_frame), hlen, &off) ==
                 MSGPACK_UNPACK_SUCCESS &&
             off == hlen && msg->headers_unpacked.data.type == MSGPACK_OBJECT_MAP;
    off = 0;
    ok = ok && msgpack_unpack_next(&msg->body_unpacked, zmq_msg_data(&msg->body_frame), blen, &off) ==
                   MSGPACK_UNPACK_SUCCESS && off == blen;
    msg->has_frames = 1;
    if (!ok) {
        rpc_msg_free(msg);
        snprintf(err, errlen, "headers must be one msgpack map and body one msgpack value");
        return WIRE_MALFORMED;
    }
    msg->headers = &msg->headers_unpacked.data;
    msg->body = &msg->body_unpacked.data;
    /* An id longer than the node indexes keeps its first RPC_TRACE_ID_MAX bytes, as an event's
     * does: the callee goes on with the caller's trace instead of starting a new one. */
    const msgpack_object *trace = wire_map_get(msg->headers, "trace_id");
    size_t tlen = 0;
    if (trace && trace->type == MSGPACK_OBJECT_STR) {
        tlen = trace->via.str.size < RPC_TRACE_ID_MAX ? trace->via.str.size : RPC_TRACE_ID_MAX;
        memcpy(msg->trace_id, trace->via.str.ptr, tlen);
    }
    msg->trace_id[tlen] = '\0';
    return WIRE_OK;
}

void rpc_msg_free(struct rpc_msg *msg)
{
    if (!msg->has_frames)
        return;
    msgpack_unpacked_destroy(&msg->headers_unpacked);
    msgpack_unpacked_destroy(&msg->body_unpacked);
    zmq_msg_close(&msg->headers_frame);
    zmq_msg_close(&msg->body_frame);
    msg->has_frames = 0;
    msg->headers = msg->body = NULL;
}

int rpc_send(void *sock, const void *routing, size_t routing_len, const char *id, enum rpc_type type,
             const char *subject, const char *headers, size_t headers_len, const char *body,
             size_t body_len, int flags)
{
    const char *tname = rpc_type_name(type);
    if (routing && zmq_send(sock, routing, routing_len, ZMQ_SNDMORE | flags) < 0)
        return -errno;
    if (zmq_send(sock, id, strlen(id), ZMQ_SNDMORE | flags) < 0 ||
        zmq_send(sock, tname, strlen(tname), ZMQ_SNDMORE | flags) < 0 ||
        zmq_send(sock, subject, strlen(subject), ZMQ_SNDMORE | flags) < 0 ||
        zmq_send(sock, headers, headers_len, ZMQ_SNDMORE | flags) < 0 ||
        zmq_send(sock, body, body_len, flags) < 0)
        return -errno;
    return 0;
}

/* ---------------------------------------------------------------- bodies */

void rpc_pack_headers(msgpack_packer *pk, const char *trace_id)
{
    msgpack_pack_map(pk, 1);
    wire_pack_kv_str(pk, "trace_id", trace_id);
}

void rpc_pack_error_body(msgpack_packer *pk, const char *type, const char *message)
{
    msgpack_pack_map(pk, 2);
    wire_pack_kv_str(pk, "type", type);
    wire_pack_kv_str(pk, "message", message);
}

/* A string field of an error body, cut to fit (a long message is still worth reading). */
static void copy_error_field(const msgpack_object *body, const char *key, char *out, size_t cap, const char *dflt)
{
    const msgpack_object *v = body && body->type == MSGPACK_OBJECT_MAP ? wire_map_get(body, key) : NULL;
    if (!v || v->type != MSGPACK_OBJECT_STR) {
        snprintf(out, cap, "%s", dflt);
        return;
    }
    size_t n = v->via.str.size < cap - 1 ? v->via.str.size : cap - 1;
    memcpy(out, v->via.str.ptr, n);
    out[n] = '\0';
}

void rpc_unpack_error_body(const msgpack_object *body, char *type, size_t type_cap, const char *dflt_type,
                           char *message, size_t message_cap)
{
    copy_error_field(body, "type", type, type_cap, dflt_type);
    copy_error_field(body, "message", message, message_cap, "(no message)");
}

void rpc_pack_lymph_status(msgpack_packer *pk, const struct rpc_lymph_status *st)
{
    msgpack_pack_map(pk, 7);
    wire_pack_kv_str(pk, "service", st->service);
    wire_pack_kv_int(pk, "instance", st->instance);
    wire_pack_kv_int(pk, "pid", st->pid);
    wire_pack_kv_str(pk, "endpoint", st->endpoint);
    wire_pack_kv_str(pk, "identity", st->identity);
    wire_pack_kv_int(pk, "uptime_ms", st->uptime_ms);
    wire_pack_kv_int(pk, "served", st->served);
}

void rpc_pack_lymph_inspect_begin(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    wire_pack_str(pk, "methods");
}
