/* proto: the node protocol (docs/protocol.md) in one place, as tmux keeps its messages in
 * tmux-protocol.h: the version, every message type's name, the timing both ends agree on,
 * and a struct per body with its encoder and decoder side by side (proto/msg_*.c), so the
 * node, the CLI, the dashboard and libdevnode cannot drift apart. Encoders pack into a caller's
 * msgpack packer and never allocate; decoders check every field of untrusted input.
 *
 * Bump PROTOCOL_VERSION when a field's meaning or a required field changes (docs/protocol.md,
 * "Versions"); a new optional field or a new message type does not bump it. */
#ifndef DEVNODE_PROTO_H
#define DEVNODE_PROTO_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define PROTOCOL_VERSION 1 /* before wire.h: the version frame is made of it */

#include "proto/wire.h"

/* ---- message types (frame 2) ---------------------------------------------------------- */
/* Replies */
#define PROTO_OK          "ok"
#define PROTO_ERROR       "error"
#define PROTO_STARTED     "started"
/* The node's own requests */
#define PROTO_STATUS      "status"      /* reply: status */
#define PROTO_RESTART     "restart"
#define PROTO_SCALE       "scale"
#define PROTO_STOP        "stop"
#define PROTO_PING        "ping"
#define PROTO_START_SERVICE "start_service" /* one service and what it needs, on a running node */
#define PROTO_STOP_SERVICE  "stop_service"  /* one service alone */
#define PROTO_RELOAD      "reload"      /* request {id}; reply ok {id, changes} */
/* Registry */
#define PROTO_REGISTER    "register"
#define PROTO_HEARTBEAT   "heartbeat"
#define PROTO_UNREGISTER  "unregister"
#define PROTO_DISCOVER    "discover"
#define PROTO_SERVICES    "services"    /* discover's reply */
/* Events */
#define PROTO_EMIT        "emit"
#define PROTO_EMIT_REFUSED "emit_refused" /* node → client: events of a quiet emit it refused */
#define PROTO_SUBSCRIBE   "subscribe"
#define PROTO_UNSUBSCRIBE "unsubscribe"
#define PROTO_EVENT       "event"
#define PROTO_EVENTS      "events"
#define PROTO_ACK         "ack"
#define PROTO_NACK        "nack"
#define PROTO_BUS_STATUS  "bus_status"  /* reply: bus_status */
/* Log tail and traces (bodies in proto/tailwire.h) */
#define PROTO_TAIL        "tail"
#define PROTO_LINES       "lines"
#define PROTO_END         "end"
#define PROTO_TAIL_RENEW  "tail_renew"
#define PROTO_UNTAIL      "untail"
#define PROTO_TRACES      "traces"      /* reply: traces */
/* Attach to an instance's terminal (bodies in proto/msg_attach.h) */
#define PROTO_ATTACH        "attach"        /* reply: ok {pid, mode}, or error {reason} */
#define PROTO_ATTACH_INPUT  "attach_input"  /* client → node: keys, no reply */
#define PROTO_ATTACH_RESIZE "attach_resize" /* client → node: window size, no reply */
#define PROTO_ATTACH_OUTPUT "attach_output" /* node → client: the process's bytes */
#define PROTO_ATTACH_END    "attach_end"    /* node → client: the session is over, and why */
#define PROTO_DETACH        "detach"        /* reply: ok */

/* ---- timing and windows both ends rely on ------------------------------------------- */
#define PROTO_HEARTBEAT_MS          1000  /* heartbeat / tail_renew: how often a client sends it */
#define PROTO_REGISTRY_EXPIRY_MS    3000  /* a registry entry without heartbeat for this long goes */
#define PROTO_SUBSCRIPTION_EXPIRY_MS 5000 /* a bus member without heartbeat for this long goes */
#define PROTO_TAIL_EXPIRY_MS        5000  /* a tail subscription without tail_renew for this long ends */
#define PROTO_ANSWER_TIMEOUT_MS     5000  /* how long a client waits for the node to answer at all */
#define PROTO_TAIL_WINDOW           16    /* `lines` messages in flight and not acknowledged */
#define PROTO_TAIL_ACK_EVERY        2     /* a client acknowledges every this many `lines` messages */
#define PROTO_TAIL_BATCH_LINES      1024  /* lines in one `lines` message at most */
#define PROTO_TAIL_BATCH_BYTES      (256u * 1024) /* ... or about this many bytes */
#define PROTO_SCALE_MAX             10000 /* instances a `scale` may ask for */
#define PROTO_EMIT_BATCH_MAX        1000  /* events per `events` message and per emit */
#define PROTO_TRACES_LIMIT_MAX      10000
#define PROTO_ATTACH_DATA_MAX       (64u * 1024) /* bytes in one attach_input / attach_output */

/* ---- another version ----------------------------------------------------------------- */
/* The one line for a peer of another protocol version, naming both, e.g. "the node speaks
 * protocol 1, this devnode 2: ...". node_version/peer_version are version frames; peer is
 * what the other side is called ("devnode" in the CLI, "client" in the node's answer). */
void proto_version_mismatch(char *out, size_t cap, const char *node_version, const char *peer_version,
                            const char *peer);

#include "proto/msg_control.h"
#include "proto/msg_registry.h"
#include "proto/msg_bus.h"
#include "proto/msg_attach.h"

#endif
