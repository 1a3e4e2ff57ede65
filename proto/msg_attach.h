/* msg_attach: the bodies of an attach session (docs/protocol.md, "Attach"): `attach` and its
 * replies, the raw bytes both ways (`attach_input`, `attach_output`, msgpack bin), the window
 * size (`attach_resize`), and `attach_end`. Encoders beside decoders; included via proto.h. */
#ifndef DEVNODE_PROTO_MSG_ATTACH_H
#define DEVNODE_PROTO_MSG_ATTACH_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/* `attach` {id, target, pid, tty, rows, cols}: who attaches (pid and terminal, named to a
 * second attacher) and the size of its window (0: unknown, the pty keeps its size). */
struct proto_attach {
    const char *target;    /* "Service.N" or "Service"; decoded: the service alone */
    int index;             /* decoded: N, or -1 when the target named no instance */
    int64_t pid;           /* the attacher's process */
    const char *tty;       /* its terminal ("/dev/pts/3"), "" when none */
    int rows, cols;        /* 0..65535 */
};
void proto_pack_attach(msgpack_packer *pk, int64_t id, const struct proto_attach *req);
/* target is copied into buf, tty into ttybuf. 0, or -1 with a line for an `error` reply. */
int proto_unpack_attach(const msgpack_object *body, struct proto_attach *req, char *buf, size_t cap, char *ttybuf,
                        size_t ttycap, char *err, size_t errlen);

/* Why an attach was refused, for the exit code (docs/cli.md): the instance cannot be attached
 * as configured (a usage error), or it can but not now. */
#define PROTO_ATTACH_REFUSED_CONFIG "config" /* no such instance, or neither stdin nor tty */
#define PROTO_ATTACH_REFUSED_BUSY   "busy"   /* another attacher holds it */
#define PROTO_ATTACH_REFUSED_DOWN   "down"   /* it runs no process now */

/* `ok` {id, pid, mode}: the process attached to and "pty" or "pipe". */
struct proto_attach_reply {
    int64_t pid;
    const char *mode;
};
void proto_pack_attach_reply(msgpack_packer *pk, const msgpack_object *id, const struct proto_attach_reply *r);
/* mode is copied into modebuf ("" when absent). */
void proto_unpack_attach_reply(const msgpack_object *body, struct proto_attach_reply *r, char *modebuf,
                               size_t modecap);
/* `error` {id, message, reason}: an error any client reads, with one of the reasons above. */
void proto_pack_attach_error(msgpack_packer *pk, const msgpack_object *id, const char *reason,
                             const char *message);
/* The reason of an attach error into buf, "" when it has none. */
void proto_unpack_attach_reason(const msgpack_object *body, char *buf, size_t cap);

/* `attach_input` / `attach_output` {data}: raw bytes, at most PROTO_ATTACH_DATA_MAX. */
struct proto_attach_data {
    const char *data;      /* decoded: points into the message */
    size_t len;
};
void proto_pack_attach_data(msgpack_packer *pk, const struct proto_attach_data *d);
/* 0, or -1 with err set (no bin/str `data`, or too long). */
int proto_unpack_attach_data(const msgpack_object *body, struct proto_attach_data *d, char *err, size_t errlen);

/* `attach_resize` {rows, cols}, both 1..65535. */
struct proto_attach_resize {
    int rows, cols;
};
void proto_pack_attach_resize(msgpack_packer *pk, const struct proto_attach_resize *r);
int proto_unpack_attach_resize(const msgpack_object *body, struct proto_attach_resize *r, char *err,
                               size_t errlen);

/* `attach_end` {reason, message}: the session is over. reason "exited" (the process is gone;
 * message names how it ended), "detached" (a `detach`), "stopping" (the node stops), or
 * "unknown" (input from a client the node holds no session for). */
struct proto_attach_end {
    const char *reason;
    const char *message;
};
void proto_pack_attach_end(msgpack_packer *pk, const struct proto_attach_end *e);
/* Copies both, "" when absent. */
void proto_unpack_attach_end(const msgpack_object *body, char *reason, size_t rcap, char *message, size_t mcap);

#endif
