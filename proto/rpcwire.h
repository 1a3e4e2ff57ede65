/* rpcwire: lymph's RPC message between services, [id][type][subject][headers][body]
 * (after the routing id on a ROUTER). Shared by the client library and the CLI; decoding
 * checks every frame before trusting it, like wire.c does for the node protocol. */
#ifndef DEVNODE_RPCWIRE_H
#define DEVNODE_RPCWIRE_H

#include <stddef.h>
#include <msgpack.h>
#include <zmq.h>

#include "proto/wire.h"

#define RPC_ID_MAX 64
#define RPC_SUBJECT_MAX 255
#define RPC_TRACE_ID_MAX 64

enum rpc_type { RPC_REQ, RPC_REP, RPC_ACK, RPC_NACK, RPC_ERROR };

struct rpc_msg {
    unsigned char routing[WIRE_IDENTITY_MAX]; /* sender's routing id (ROUTER side) */
    size_t routing_len;
    char id[RPC_ID_MAX + 1];
    enum rpc_type type;
    char subject[RPC_SUBJECT_MAX + 1];
    char trace_id[RPC_TRACE_ID_MAX + 1];      /* headers.trace_id, "" when absent */
    zmq_msg_t headers_frame, body_frame;      /* keep the bytes the objects point into */
    msgpack_unpacked headers_unpacked, body_unpacked;
    const msgpack_object *headers;            /* a map */
    const msgpack_object *body;               /* any value */
    int has_frames;
};

/* Receives one RPC message without blocking (WIRE_OK, WIRE_AGAIN, WIRE_MALFORMED with
 * err set and the message consumed, WIRE_ERROR). `routed`: the socket is a ROUTER. */
enum wire_recv_result rpc_recv(void *sock, int routed, struct rpc_msg *msg, char *err, size_t errlen);
void rpc_msg_free(struct rpc_msg *msg);

/* Sends one RPC message. headers/body are packed msgpack (headers a map). Returns 0 or
 * -errno. */
int rpc_send(void *sock, const void *routing, size_t routing_len, const char *id, enum rpc_type type,
             const char *subject, const char *headers, size_t headers_len, const char *body,
             size_t body_len, int flags);

const char *rpc_type_name(enum rpc_type type);

/* ---- bodies (docs/protocol.md, "RPC between services") ------------------------------- */
/* The headers of every RPC message: {trace_id}. */
void rpc_pack_headers(msgpack_packer *pk, const char *trace_id);
/* The body of ERROR and NACK: {type, message}. */
void rpc_pack_error_body(msgpack_packer *pk, const char *type, const char *message);
/* Copies type and message, each cut to fit its buffer; dflt_type / "(no message)" when absent
 * or not strings. */
void rpc_unpack_error_body(const msgpack_object *body, char *type, size_t type_cap, const char *dflt_type,
                           char *message, size_t message_cap);
/* lymph.status's reply: {service, instance, pid, endpoint, identity, uptime_ms, served}. */
struct rpc_lymph_status {
    const char *service;
    int64_t instance, pid;
    const char *endpoint;
    const char *identity;  /* NULL before it registered */
    int64_t uptime_ms, served;
};
void rpc_pack_lymph_status(msgpack_packer *pk, const struct rpc_lymph_status *st);
/* lymph.inspect's reply {methods: [...]}: this, then proto_pack_methods_begin/method. */
void rpc_pack_lymph_inspect_begin(msgpack_packer *pk);
/* Splits a call's "Service.method": the service is what comes before the first dot (its
 * *service_len bytes), and the REQ carries "Service.method", or "iface.method" for
 * "Service.iface.method" (the lymph.* built-ins every service answers under the interface
 * lymph). Returns that subject (within `subject`), or NULL when subject is not Service.x or
 * is longer than RPC_SUBJECT_MAX. */
const char *rpc_call_subject(const char *subject, size_t *service_len);
/* 16 random hex digits: a message id. */
void rpc_new_id(char out[17]);
/* 32 random hex digits: a trace id (lymph used uuid4().hex). */
void rpc_new_trace_id(char out[33]);

#endif
