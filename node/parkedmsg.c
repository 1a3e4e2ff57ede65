/* parkedmsg: moving a message costs no copy of its bytes and no second decode, but two things
 * need care. A body of up to 33 bytes lives inside the zmq_msg_t itself, so moving the frame
 * moves its bytes and the strings decoded from it must be pointed at the new place. And
 * msgpack_unpack_next gives every message a zone of 8 KiB, most of it unused: kept as is, the
 * thousands of messages a paused emitter may have waiting would hold 8 KiB each, so the object
 * tree (arrays and map pairs, not the bytes they point to) is copied into a zone of its size. */
#include "node/parkedmsg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* Where the frame's bytes were and are now; a pointer into [from, from + len] moves to `to`. */
struct rebase {
    uintptr_t from;
    size_t len;
    const char *to;
};

static const char *rebased(const char *p, const struct rebase *rb)
{
    uintptr_t a = (uintptr_t)p;
    if (p && a >= rb->from && a - rb->from <= rb->len)
        return rb->to + (a - rb->from);
    return p;
}

/* Bytes of the arrays and map pairs below o. msgpack-c decodes at most 32 levels deep, which
 * bounds the recursion here and in tree_place. */
static size_t tree_bytes(const msgpack_object *o)
{
    size_t n = 0;
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        n += o->via.array.size * sizeof(msgpack_object);
        for (uint32_t i = 0; i < o->via.array.size; i++)
            n += tree_bytes(&o->via.array.ptr[i]);
    } else if (o->type == MSGPACK_OBJECT_MAP) {
        n += o->via.map.size * sizeof(msgpack_object_kv);
        for (uint32_t i = 0; i < o->via.map.size; i++)
            n += tree_bytes(&o->via.map.ptr[i].key) + tree_bytes(&o->via.map.ptr[i].val);
    }
    return n;
}

/* Places src at dst with its strings rebased. With an arena, its arrays and pairs are copied
 * there (in order, each level before the levels below it); without one (dst == src), the tree
 * is rebased where it is. */
static void tree_place(msgpack_object *dst, const msgpack_object *src, char **arena, const struct rebase *rb)
{
    *dst = *src;
    switch (src->type) {
    case MSGPACK_OBJECT_STR:
        dst->via.str.ptr = rebased(src->via.str.ptr, rb);
        break;
    case MSGPACK_OBJECT_BIN:
        dst->via.bin.ptr = rebased(src->via.bin.ptr, rb);
        break;
    case MSGPACK_OBJECT_EXT:
        dst->via.ext.ptr = rebased(src->via.ext.ptr, rb);
        break;
    case MSGPACK_OBJECT_ARRAY: {
        uint32_t n = src->via.array.size;
        msgpack_object *to = src->via.array.ptr;
        if (arena) {
            to = n ? (msgpack_object *)(void *)*arena : NULL;
            *arena += n * sizeof *to;
        }
        for (uint32_t i = 0; i < n; i++)
            tree_place(&to[i], &src->via.array.ptr[i], arena, rb);
        dst->via.array.ptr = to;
        break;
    }
    case MSGPACK_OBJECT_MAP: {
        uint32_t n = src->via.map.size;
        msgpack_object_kv *to = src->via.map.ptr;
        if (arena) {
            to = n ? (msgpack_object_kv *)(void *)*arena : NULL;
            *arena += n * sizeof *to;
        }
        for (uint32_t i = 0; i < n; i++) {
            tree_place(&to[i].key, &src->via.map.ptr[i].key, arena, rb);
            tree_place(&to[i].val, &src->via.map.ptr[i].val, arena, rb);
        }
        dst->via.map.ptr = to;
        break;
    }
    default:
        break;
    }
}

struct parked_msg *parked_msg_take(struct wire_msg *msg)
{
    struct parked_msg *pm = xmalloc(sizeof *pm);
    pm->next = NULL;
    memcpy(pm->version, msg->version, sizeof pm->version);
    memcpy(pm->type, msg->type, sizeof pm->type);
    size_t len = zmq_msg_size(&msg->body_frame);
    struct rebase rb = {.from = (uintptr_t)zmq_msg_data(&msg->body_frame), .len = len};
    zmq_msg_init(&pm->body_frame);
    zmq_msg_move(&pm->body_frame, &msg->body_frame);
    rb.to = zmq_msg_data(&pm->body_frame);

    size_t tree = tree_bytes(msg->body);
    msgpack_unpacked_init(&pm->unpacked);
    char *arena = NULL;
    if (tree) {
        /* Sizes and chunk start are multiples of MSGPACK_ZONE_ALIGN: one chunk, one block. */
        pm->unpacked.zone = msgpack_zone_new(tree);
        arena = pm->unpacked.zone ? msgpack_zone_malloc(pm->unpacked.zone, tree) : NULL;
        if (!arena) {
            fprintf(stderr, "devnode: out of memory (allocating %zu bytes)\n", tree);
            abort();
        }
    }
    tree_place(&pm->unpacked.data, msg->body, &arena, &rb);
    pm->bytes = sizeof *pm + len + tree;
    return pm;
}

void parked_msg_give(struct parked_msg *pm, const void *routing, size_t routing_len, struct wire_msg *msg)
{
    memset(msg, 0, sizeof *msg);
    if (routing_len > WIRE_IDENTITY_MAX)
        routing_len = WIRE_IDENTITY_MAX;
    memcpy(msg->identity, routing, routing_len);
    msg->identity_len = routing_len;
    memcpy(msg->version, pm->version, sizeof msg->version);
    memcpy(msg->type, pm->type, sizeof msg->type);
    struct rebase rb = {.from = (uintptr_t)zmq_msg_data(&pm->body_frame), .len = zmq_msg_size(&pm->body_frame)};
    zmq_msg_init(&msg->body_frame);
    zmq_msg_move(&msg->body_frame, &pm->body_frame);
    rb.to = zmq_msg_data(&msg->body_frame);
    msg->unpacked = pm->unpacked; /* the zone goes with it */
    if ((uintptr_t)rb.to != rb.from) /* a small body moved inside the frame */
        tree_place(&msg->unpacked.data, &msg->unpacked.data, NULL, &rb);
    msg->body = &msg->unpacked.data;
    zmq_msg_close(&pm->body_frame);
    free(pm);
}

void parked_msg_free(struct parked_msg *pm)
{
    msgpack_unpacked_destroy(&pm->unpacked);
    zmq_msg_close(&pm->body_frame);
    free(pm);
}
