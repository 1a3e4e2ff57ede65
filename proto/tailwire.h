/* tailwire: the `tail` conversation's message bodies (docs/protocol.md, "Log tail"): the
 * request a client sends and the node decodes, the `lines` and `end` replies with one log line
 * inside a `lines` message, `tail_renew`, `untail` and `traces`. Encoder and decoder live
 * together so the two sides cannot drift apart. Framing is wire.h's, type names proto.h's. */
#ifndef DEVNODE_TAILWIRE_H
#define DEVNODE_TAILWIRE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "common/logline.h"
#include "common/strbuf.h"
#include "proto/wire.h"
#include "proto/logfilter.h"

#define TAILWIRE_GREP_MAX 4096

/* A tail query as the user gave it (strings, not yet compiled). */
struct tail_request {
    int64_t backlog;             /* matching lines of history to send first; >= 0 */
    int follow;                  /* then stream new lines until `untail` or expiry */
    const char *const *services; /* "Service" or "Service.N" */
    size_t service_count;
    const char *trace;           /* NULL: any */
    const char *level;           /* NULL: any */
    const char *grep;            /* NULL: any */
};

/* Builds the filter of a request. 0, or -1 with err (the filter is then freed). */
int tail_request_filter(const struct tail_request *req, struct logfilter *f, char *err, size_t errlen);

/* Packs the `tail` request body {id, backlog, follow, services, trace, level, grep}. */
void tailwire_pack_request(msgpack_packer *pk, int64_t id, const struct tail_request *req);
/* Node side: validates every field's type and builds the filter. 0, or -1 with err for an
 * `error` reply (nothing to free then). */
int tailwire_unpack_request(const msgpack_object *body, int64_t *backlog, int *follow, struct logfilter *f,
                            char *err, size_t errlen);

/* Appends the msgpack encoding of one line, a map of 11 keys, to out. Text that is not valid
 * UTF-8 is sent with U+FFFD per bad byte, as in the log file, so the online and offline views
 * agree; scratch is reused for that. */
void tailwire_pack_line(struct strbuf *out, const struct log_line *line, struct strbuf *scratch);

/* A decoded line: line.service points into `service`, line.text into the message. */
struct tail_line {
    struct log_line line;
    char service[LOGFILTER_NAME_MAX + 1];
};
/* 0, or -1 when obj is not a well-formed line map. */
int tailwire_unpack_line(const msgpack_object *obj, struct tail_line *out);

/* Lines a client missed (`skipped`, and `skipped_seqs` [first, last] when count > 0). */
struct tail_skipped {
    uint64_t count;
    uint64_t first, last;  /* seqs of the first and the last of them */
};
/* 0, or -1 when `skipped` is absent or not a non-negative integer. A missing or malformed
 * `skipped_seqs` leaves the empty range first 1, last 0. */
int tailwire_unpack_skipped(const msgpack_object *body, struct tail_skipped *out);

/* `lines` {id, lines: [...], skipped, skipped_seqs?}, built in one pass: begin writes the head
 * (id: the request's id, already packed) with room for the count, the caller appends the
 * lines' encodings to b->sbuf, and finish patches the count in and adds the skipped fields. */
struct tailwire_lines_mark {
    size_t map_at, count_at;
};
void tailwire_lines_begin(struct wire_body *b, const char *id_packed, size_t id_len, struct tailwire_lines_mark *mark);
void tailwire_lines_finish(struct wire_body *b, const struct tailwire_lines_mark *mark, uint32_t line_count,
                           const struct tail_skipped *skipped);
/* The lines array of a `lines` body, or NULL when absent or not an array. */
const msgpack_object *tailwire_lines_array(const msgpack_object *body);

/* `end` {id, truncated, skipped, skipped_seqs?}. */
void tailwire_pack_end(struct wire_body *b, const char *id_packed, size_t id_len, int truncated,
                       const struct tail_skipped *skipped);
/* truncated: 1 when the body says true. The skipped fields as tailwire_unpack_skipped. */
void tailwire_unpack_end(const msgpack_object *body, int *truncated, struct tail_skipped *skipped);

/* `tail_renew` {id, received?}: received NULL packs no key. */
void tailwire_pack_renew(msgpack_packer *pk, int64_t id, const uint64_t *received);
/* *has_received 0 when absent or nil. 0, or -1 with err for an `error` reply. */
int tailwire_unpack_renew(const msgpack_object *body, int *has_received, uint64_t *received, char *err,
                          size_t errlen);
/* `untail` {id}. */
void tailwire_pack_untail(msgpack_packer *pk, int64_t id);

/* `traces` {id, limit?}: limit 0 packs no key. */
#define TAILWIRE_TRACES_DEFAULT 20
void tailwire_pack_traces_request(msgpack_packer *pk, int64_t id, int64_t limit);
/* *limit TAILWIRE_TRACES_DEFAULT when absent or nil. 0, or -1 with err. */
int tailwire_unpack_traces_request(const msgpack_object *body, int64_t *limit, char *err, size_t errlen);
/* The reply {id, traces: [...]}: head, then each summary. */
struct tail_trace_summary {
    const char *trace_id;
    int64_t first_ns, last_ns, lines;
    int error;
    const char *const *services;  /* in the order they first printed it */
    size_t service_count;
};
void tailwire_pack_traces_head(msgpack_packer *pk, const msgpack_object *id, size_t count);
void tailwire_pack_trace(msgpack_packer *pk, const struct tail_trace_summary *t);
/* A decoded traces reply: the summaries in the order sent, their strings copied (free with
 * tailwire_traces_free, also after -1). */
struct tail_traces {
    struct tail_trace_summary *items;
    size_t count;
};
/* 0, or -1 with err when body is no traces reply (no `traces` array, an entry that is not a
 * map with a string trace_id) or memory runs out. */
int tailwire_unpack_traces(const msgpack_object *body, struct tail_traces *out, char *err, size_t errlen);
void tailwire_traces_free(struct tail_traces *t);

#endif
