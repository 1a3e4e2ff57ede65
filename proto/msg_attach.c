/* msg_attach: encoders and decoders of an attach session's messages, side by side. Input and
 * output are msgpack bin (a terminal's bytes are not text); a str is read the same way so a
 * client whose msgpack has no bin type can still type. */
#include "proto/proto.h"

#include <stdio.h>
#include <string.h>

static int get_small(const msgpack_object *map, const char *key, int *out)
{
    int64_t v;
    if (wire_get_int(map, key, &v) < 0 || v < 0 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

void proto_pack_attach(msgpack_packer *pk, int64_t id, const struct proto_attach *req)
{
    msgpack_pack_map(pk, 6);
    wire_pack_kv_int(pk, "id", id);
    wire_pack_kv_str(pk, "target", req->target);
    wire_pack_kv_int(pk, "pid", req->pid);
    wire_pack_kv_str(pk, "tty", req->tty ? req->tty : "");
    wire_pack_kv_int(pk, "rows", req->rows);
    wire_pack_kv_int(pk, "cols", req->cols);
}

int proto_unpack_attach(const msgpack_object *body, struct proto_attach *req, char *buf, size_t cap, char *ttybuf,
                        size_t ttycap, char *err, size_t errlen)
{
    memset(req, 0, sizeof *req);
    if (wire_get_str(body, "target", buf, cap) < 0 || !buf[0]) {
        snprintf(err, errlen, "attach needs a string 'target' (Service.N)");
        return -1;
    }
    proto_split_target(buf, &req->index);
    req->target = buf;
    if (wire_get_int(body, "pid", &req->pid) < 0 || req->pid < 0)
        req->pid = 0;
    if (wire_get_str(body, "tty", ttybuf, ttycap) < 0)
        ttybuf[0] = '\0';
    req->tty = ttybuf;
    if (get_small(body, "rows", &req->rows) < 0 || get_small(body, "cols", &req->cols) < 0)
        req->rows = req->cols = 0;
    return 0;
}

void proto_pack_attach_reply(msgpack_packer *pk, const msgpack_object *id, const struct proto_attach_reply *r)
{
    msgpack_pack_map(pk, 3);
    proto_pack_id(pk, id);
    wire_pack_kv_int(pk, "pid", r->pid);
    wire_pack_kv_str(pk, "mode", r->mode);
}

void proto_unpack_attach_reply(const msgpack_object *body, struct proto_attach_reply *r, char *modebuf,
                               size_t modecap)
{
    if (wire_get_int(body, "pid", &r->pid) < 0)
        r->pid = 0;
    if (wire_get_str(body, "mode", modebuf, modecap) < 0)
        modebuf[0] = '\0';
    r->mode = modebuf;
}

void proto_pack_attach_error(msgpack_packer *pk, const msgpack_object *id, const char *reason, const char *message)
{
    msgpack_pack_map(pk, 3);
    proto_pack_id(pk, id);
    wire_pack_kv_str(pk, "message", message);
    wire_pack_kv_str(pk, "reason", reason);
}

void proto_unpack_attach_reason(const msgpack_object *body, char *buf, size_t cap)
{
    if (wire_get_str(body, "reason", buf, cap) < 0)
        buf[0] = '\0';
}

void proto_pack_attach_data(msgpack_packer *pk, const struct proto_attach_data *d)
{
    msgpack_pack_map(pk, 1);
    wire_pack_str(pk, "data");
    msgpack_pack_bin(pk, d->len);
    msgpack_pack_bin_body(pk, d->data, d->len);
}

int proto_unpack_attach_data(const msgpack_object *body, struct proto_attach_data *d, char *err, size_t errlen)
{
    const msgpack_object *v = wire_map_get(body, "data");
    d->data = NULL;
    d->len = 0;
    if (v && v->type == MSGPACK_OBJECT_BIN) {
        d->data = v->via.bin.ptr;
        d->len = v->via.bin.size;
    } else if (v && v->type == MSGPACK_OBJECT_STR) {
        d->data = v->via.str.ptr;
        d->len = v->via.str.size;
    } else {
        snprintf(err, errlen, "attach data needs 'data' (bin)");
        return -1;
    }
    if (d->len > PROTO_ATTACH_DATA_MAX) {
        snprintf(err, errlen, "attach data of %zu bytes: at most %u in one message", d->len,
                 PROTO_ATTACH_DATA_MAX);
        d->data = NULL;
        d->len = 0;
        return -1;
    }
    if (!d->data)
        d->data = "";
    return 0;
}

void proto_pack_attach_resize(msgpack_packer *pk, const struct proto_attach_resize *r)
{
    msgpack_pack_map(pk, 2);
    wire_pack_kv_int(pk, "rows", r->rows);
    wire_pack_kv_int(pk, "cols", r->cols);
}

int proto_unpack_attach_resize(const msgpack_object *body, struct proto_attach_resize *r, char *err,
                               size_t errlen)
{
    if (get_small(body, "rows", &r->rows) < 0 || get_small(body, "cols", &r->cols) < 0 || !r->rows ||
        !r->cols) {
        snprintf(err, errlen, "attach_resize needs 'rows' and 'cols' (1..65535)");
        return -1;
    }
    return 0;
}

void proto_pack_attach_end(msgpack_packer *pk, const struct proto_attach_end *e)
{
    msgpack_pack_map(pk, 2);
    wire_pack_kv_str(pk, "reason", e->reason);
    wire_pack_kv_str(pk, "message", e->message);
}

void proto_unpack_attach_end(const msgpack_object *body, char *reason, size_t rcap, char *message, size_t mcap)
{
    if (wire_get_str(body, "reason", reason, rcap) < 0)
        reason[0] = '\0';
    if (wire_get_str(body, "message", message, mcap) < 0)
        message[0] = '\0';
}
