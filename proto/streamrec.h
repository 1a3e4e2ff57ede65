/* streamrec: the payload of one journal record of a retained stream, shared by the bus
 * (which writes and replays it) and `devnode events` (which prints it):
 * a msgpack array [type, source, headers (map), body (any), wall_ns]. */
#ifndef DEVNODE_STREAMREC_H
#define DEVNODE_STREAMREC_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

/* Appends the record for an event to sb; headers and body are packed msgpack. */
void streamrec_pack(msgpack_sbuffer *sb, const char *type, const char *source, const char *headers,
                    size_t headers_len, const char *body, size_t body_len, int64_t wall_ns);

struct streamrec {
    msgpack_unpacked unpacked;   /* owns the objects below */
    const msgpack_object *type, *source, *headers, *body;
    int64_t wall_ns;
};

/* Decodes a record; 0, or -1 when it is not one (the caller skips it). */
int streamrec_unpack(struct streamrec *rec, const void *payload, size_t len);
void streamrec_free(struct streamrec *rec);

/* The journal file name for a stream pattern: [A-Za-z0-9_.-] kept, others as %XX. */
void streamrec_journal_name(const char *pattern, char *out, size_t cap);

#endif
