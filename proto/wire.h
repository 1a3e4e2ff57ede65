/* wire: the node protocol's framing, used by the node, the CLI and the client library.
 * A message is the multipart [version "1"][type][msgpack map body], preceded on a ROUTER
 * by the peer's routing id. Decoding is defensive: a malformed message is drained and
 * reported, never trusted and never allowed an allocation beyond WIRE_BODY_MAX. */
#ifndef DEVNODE_WIRE_H
#define DEVNODE_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>
#include <zmq.h>

#ifndef PROTOCOL_VERSION
#include "proto/proto.h" /* PROTOCOL_VERSION */
#endif
#define WIRE_STR_(v) #v
#define WIRE_STR(v) WIRE_STR_(v)
#define WIRE_VERSION WIRE_STR(PROTOCOL_VERSION) /* the version frame: decimal text */
#define WIRE_VERSION_MAX 3                      /* digits of a version frame */
#define WIRE_TYPE_MAX 31
#define WIRE_IDENTITY_MAX 255
#define WIRE_BODY_MAX (16u << 20)

struct wire_msg {
    unsigned char identity[WIRE_IDENTITY_MAX]; /* ROUTER routing id; identity_len 0 otherwise */
    size_t identity_len;
    char version[WIRE_VERSION_MAX + 1]; /* the sender's protocol version, as sent */
    char type[WIRE_TYPE_MAX + 1];   /* NUL-terminated ASCII word */
    zmq_msg_t body_frame;           /* keeps the bytes the decoded objects point into */
    msgpack_unpacked unpacked;      /* owns the decoded objects */
    const msgpack_object *body;     /* the body map */
};

enum wire_recv_result {
    WIRE_OK = 0,
    WIRE_AGAIN = 1,
    WIRE_OTHER_VERSION = 2, /* a well-formed message of another protocol version */
    WIRE_MALFORMED = -1,
    WIRE_ERROR = -2,
};

/* Receives one message without blocking. With `routed` the first frame is a routing id.
 * WIRE_OK: *msg must be released with wire_msg_free. WIRE_OTHER_VERSION: the same, but the
 * version frame (msg->version, decimal digits) is not ours; the body is only known to be a
 * map (docs/protocol.md, "Versions"). WIRE_MALFORMED: every frame of the bad message was
 * consumed and err says why (msg holds nothing). WIRE_AGAIN: nothing to read. */
enum wire_recv_result wire_recv(void *sock, int routed, struct wire_msg *msg, char *err, size_t errlen);
void wire_msg_free(struct wire_msg *msg);
/* Consumes the remaining frames of a message being received (after a bad frame). */
void wire_drain(void *sock);

/* Sends [identity][version][type][body]; identity may be NULL. Returns 0 or -errno. */
int wire_send(void *sock, const void *identity, size_t identity_len, const char *type,
              const char *body, size_t body_len, int flags);

/* Body building on top of msgpack-c's packer. */
struct wire_body {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
};
void wire_body_init(struct wire_body *b);
void wire_body_free(struct wire_body *b);
void wire_pack_str(msgpack_packer *pk, const char *s);
void wire_pack_strn(msgpack_packer *pk, const char *s, size_t len);
void wire_pack_kv_str(msgpack_packer *pk, const char *key, const char *value); /* NULL -> nil */
void wire_pack_kv_int(msgpack_packer *pk, const char *key, int64_t value);
void wire_pack_kv_double(msgpack_packer *pk, const char *key, double value);
void wire_pack_kv_bool(msgpack_packer *pk, const char *key, int value);

/* Body reading: lookups in a map by string key; NULL/-1 when absent or of another type. */
const msgpack_object *wire_map_get(const msgpack_object *map, const char *key);
int wire_get_int(const msgpack_object *map, const char *key, int64_t *out);
int wire_get_double(const msgpack_object *map, const char *key, double *out);
/* Copies a string field NUL-terminated; -1 when absent, not a string, or longer than cap-1. */
int wire_get_str(const msgpack_object *map, const char *key, char *out, size_t cap);
/* The same for a value already found (NULL reads as absent). */
int wire_str_copy(const msgpack_object *v, char *out, size_t cap);
/* 1 when obj is a msgpack string equal to s. */
int wire_str_eq(const msgpack_object *obj, const char *s);

/* 0 when data is exactly one msgpack value in which no array or map announces more elements
 * than bytes remain; -1 otherwise. msgpack-c allocates what a header announces before reading
 * the elements, so untrusted bytes pass here before msgpack_unpack_next. */
int wire_msgpack_check(const void *data, size_t len);
/* The length of the one msgpack value data starts with, under the same rule; 0 when it is not
 * whole or announces more than remains. */
size_t wire_msgpack_span(const void *data, size_t len);
/* The packed bytes of `val`, a value of a map of msg's body as wire_map_get returns it, found
 * in the received frame without packing it again (the bus copies event bodies this way).
 * 0, or -1 when they cannot be found there (then pack the object). */
int wire_value_bytes(const struct wire_msg *msg, const msgpack_object *val, const char **out, size_t *len);

#endif
