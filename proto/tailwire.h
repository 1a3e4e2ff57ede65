/* tailwire: the `tail` conversation's message bodies (docs/protocol.md, "Log tail"): the
 * request a client sends and the node decodes, and one log line inside a `lines` message.
 * Encoder and decoder live together so the two sides cannot drift apart. Framing is wire.h's. */
#ifndef DEVNODE_TAILWIRE_H
#define DEVNODE_TAILWIRE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "common/logline.h"
#include "common/strbuf.h"
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

#endif
