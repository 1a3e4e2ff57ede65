/* devnode.h: libdevnode, the client library for services that devnode runs: register with the
 * node, serve RPC on an own endpoint, call other services, emit and handle events, log lines
 * that carry the current trace id. One `struct devnode` per process; no globals, no threads.
 * It must never block a caller beyond the timeout it was given, nor trust a peer's frames.
 * Nor end the process: running out of memory, like every other failure, comes back as an error
 * (a NULL or a negative status with devnode_last_error) for the service to handle, and what
 * the library notices on its own goes through the warning handler below, never a bare print. */
#ifndef DEVNODE_H
#define DEVNODE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct devnode;
struct devnode_call;

/* Outcome of a call, an emit or a node request: 0 or one of these (negative). */
enum devnode_status {
    DEVNODE_OK = 0,
    DEVNODE_E_REMOTE = -1,    /* the method failed: an ERROR reply (err.type from the callee) */
    DEVNODE_E_NACK = -2,      /* unknown method or malformed request: a NACK reply */
    DEVNODE_E_TIMEOUT = -3,   /* no reply within the timeout */
    DEVNODE_E_NOT_FOUND = -4, /* no reachable instance of the service */
    DEVNODE_E_NODE = -5,      /* the node refused the request or did not answer */
    DEVNODE_E_INVALID = -6,   /* bad arguments given to the library */
};

#define DEVNODE_TYPE_MAX 63
#define DEVNODE_MESSAGE_MAX 511
#define DEVNODE_TRACE_ID_MAX 64
#define DEVNODE_DEFAULT_TIMEOUT_MS 5000

/* Why something failed, for the caller of devnode_call and for method handlers to fill. */
struct devnode_error {
    int code;                               /* enum devnode_status */
    char type[DEVNODE_TYPE_MAX + 1];        /* "ValueError", "BadArguments", "Timeout", ... */
    char message[DEVNODE_MESSAGE_MAX + 1];  /* one line for a human */
};

/* Sets err's type and message (err may be NULL). Returns NULL, so a handler can end with
 * `return devnode_error_set(err, "ValueError", "no name");`. */
void *devnode_error_set(struct devnode_error *err, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- connecting --------------------------------------------------------------------- */

/* Connects to the node that started this process, from DEVNODE_ENDPOINT, DEVNODE_SERVICE,
 * DEVNODE_INSTANCE (-1 when unset) and DEVNODE_RUN_DIR. Returns NULL with err set when one
 * is missing ("not started by devnode: DEVNODE_ENDPOINT is not set") or on failure. */
struct devnode *devnode_connect(char *err, size_t errlen);
/* For a client that is not a service the node started (the devnode CLI, a script's helper):
 * connects to the node at `node_endpoint` (its control socket, ipc://…/node.sock) as `name`
 * (1-127 of [A-Za-z0-9_-]; NULL: "client"), which its emits carry as their source. It does not
 * register unless devnode_start is called; its subscriptions are sent at once (and kept
 * alive by heartbeats while devnode_process runs), and devnode_close unsubscribes them. node_endpoint NULL: no node at all, for calls to a
 * given endpoint (devnode_call_async_to); what needs the node then fails with DEVNODE_E_NODE.
 * Returns NULL with err set on failure. */
struct devnode *devnode_open(const char *node_endpoint, const char *name, char *err, size_t errlen);
/* How long devnode_close and devnode_stop wait for the node to confirm the events emitted
 * without waiting (devnode_emit_nowait), and how long one devnode_emit_nowait waits for room
 * (a full queue to the node, or 8,000 events the node has not confirmed yet). */
#define DEVNODE_CLOSE_FLUSH_TIMEOUT_MS 10000
#define DEVNODE_EMIT_ROOM_TIMEOUT_MS 30000

/* Sends every event emitted without waiting and waits (up to DEVNODE_CLOSE_FLUSH_TIMEOUT_MS, or
 * 2 s without a connection to the node) until the node has them all; unsubscribes and
 * unregisters if still running, closes every socket, frees everything, including calls never
 * waited for. Returns 0 when the node emitted every event devnode_emit_nowait accepted (since
 * the last devnode_stop), else how many it did not: refused by the node (each said as a
 * WARNING naming the event) or not confirmed in time (said as one WARNING). NULL is a no-op. */
int devnode_close(struct devnode *dn);

const char *devnode_service(const struct devnode *dn);
int devnode_instance(const struct devnode *dn);
/* The RPC endpoint ("ipc://…/rpc/Greeting.0.1234.sock"); "" before devnode_start. */
const char *devnode_endpoint(const struct devnode *dn);
/* A line saying why the last emit/subscribe/start failed. */
const char *devnode_last_error(const struct devnode *dn);

/* ---- serving RPC -------------------------------------------------------------------- */

/* A method: gets the keyword arguments as a JSON object (borrowed) and returns a new
 * reference to the result (json_null() for "nothing"), or NULL after filling err (type and
 * message; an unfilled err becomes HandlerError). */
typedef json_t *(*devnode_method_fn)(struct devnode *dn, const json_t *args,
                                     struct devnode_error *err, void *ctx);

/* Adds method `name` (served as "<Service>.<name>"). `params` is a NULL-terminated list of
 * argument names (a name ending in '?' is optional), or NULL to accept any arguments.
 * Arguments that do not fit get an ERROR BadArguments reply without calling fn.
 * Call before devnode_start. Returns 0, or DEVNODE_E_INVALID. */
int devnode_add_method(struct devnode *dn, const char *name, const char *const *params,
                       const char *help, devnode_method_fn fn, void *ctx);

/* ---- events ------------------------------------------------------------------------- */

#define DEVNODE_BROADCAST 1u /* every instance gets every event (a group of its own) */
#define DEVNODE_CATCH_UP 2u  /* stream subscriptions: devnode_start handles the stream up to its
                                end before it registers and says READY=1 (see below) */

struct devnode_event {
    struct devnode *dn;
    const char *type;        /* "greeted" */
    const json_t *body;      /* any JSON value */
    const json_t *headers;   /* an object: trace_id, ... */
    const char *trace_id;    /* headers.trace_id, or one made up when absent */
    const char *source;      /* the emitting service, "" when unknown */
    const char *subscription;/* the group name (or pattern) it came through */
    uint64_t delivery;       /* unique per node */
    int redelivered;         /* another member had it first and died or gave it back */
    int64_t offset;          /* its place in a retained stream (0, 1, 2, ...); -1 when the event
                                did not come from one (devnode_subscribe) */
};

/* Returns 0 to acknowledge the event (done), anything else to give it back to the node for
 * another instance. The ack is sent after the handler returns. */
typedef int (*devnode_event_fn)(const struct devnode_event *ev, void *ctx);

/* Subscribes to `pattern` (AMQP topic: `*` one word, `#` zero or more). Without
 * DEVNODE_BROADCAST each event is handled once per service, by one of its instances (group
 * "<Service>.<pattern>"). May be called before devnode_start (sent at start) or after.
 * Returns 0 or a negative enum devnode_status. */
int devnode_subscribe(struct devnode *dn, const char *pattern, unsigned flags,
                      devnode_event_fn fn, void *ctx);
/* The same with the group named "<Service>.<name>", for two handlers of one pattern. */
int devnode_subscribe_named(struct devnode *dn, const char *name, const char *pattern,
                            unsigned flags, devnode_event_fn fn, void *ctx);

/* devnode_subscribe with `count` patterns (1-32) in one subscription: an event
 * that matches several of them is handled once. The group is named by the first. */
int devnode_subscribe_patterns(struct devnode *dn, const char *const *patterns, size_t count, unsigned flags,
                               devnode_event_fn fn, void *ctx);

/* Subscribes to a retained stream (`streams:` in .lymph.yml; `stream` is its pattern as
 * configured, e.g. "book.#"), reading it from `from`: "beginning" (the oldest retained event:
 * rebuild a view), "now", "resume" (the group's committed offset, else now; NULL means this) or
 * a decimal offset. `pattern` (NULL: the stream's) filters the events. The group is
 * "<Service>.<name>" (name NULL: the pattern): its committed offset survives restarts.
 * With DEVNODE_BROADCAST the instance has a group of its own that sees every event (a view
 * each instance keeps). With DEVNODE_CATCH_UP, devnode_start sends this subscription first and
 * handles its events up to the stream's end as of then before it registers and tells
 * NOTIFY_SOCKET READY=1, so nothing is served from a half-built state. The handler gets each
 * event's offset in ev->offset. Returns 0 or a negative enum devnode_status. */
int devnode_subscribe_stream(struct devnode *dn, const char *name, const char *stream, const char *pattern,
                             const char *from, unsigned flags, devnode_event_fn fn, void *ctx);

/* Handles, now, the events of stream subscription `name` (as given to devnode_subscribe_stream,
 * or its pattern when that was NULL) up to the end the stream has at this moment: state built
 * from the stream is then as new as the stream (read-your-writes across instances: an
 * aggregate checks a command against events another instance just emitted). The only way a
 * handler runs inside another: call it from an RPC handler, never from the subscription's own.
 * Needs a subscription that gets every event of the stream (its pattern the stream's or "#";
 * DEVNODE_BROADCAST or a group of one member). Returns 0, or DEVNODE_E_TIMEOUT after
 * timeout_ms (0: 5 s), DEVNODE_E_NODE, DEVNODE_E_INVALID. */
int devnode_catch_up(struct devnode *dn, const char *name, int timeout_ms);

/* Emits an event of `type` with `body` (borrowed; NULL is null) and the current trace id;
 * delivered after delay_ms. Sends the queued no-wait events first. Returns once the node
 * queued it: 0 or a negative status (DEVNODE_E_INVALID, at the call, for what the node would
 * refuse: see devnode_emit_nowait). */
int devnode_emit(struct devnode *dn, const char *type, const json_t *body, unsigned delay_ms);
/* The same without waiting for the node: checks the event as the node would and packs it into
 * the connection's queue, which goes out as one message (a quiet emit) at the end of the
 * devnode_process / devnode_run turn, when it holds 1000 events or 1 MiB, when an event has
 * waited the linger (devnode_set_emit_linger, 1 ms by default; checked at each call and by
 * devnode_timeout_ms), or before any other message to the node (devnode_emit, subscribe, stop,
 * close), so the node gets the events of one connection in order, waited or not. Returns 0,
 * DEVNODE_E_INVALID at the call for what the node would refuse (a type that is not dot-separated
 * words of at most 200 bytes, a body that cannot be encoded or takes more than 16 MiB, a delay
 * over a week), DEVNODE_E_TIMEOUT or DEVNODE_E_NODE. When the connection is full (8,000
 * events sent that the node has not confirmed, or ZeroMQ's queue full) it waits for room, as a
 * write to a full pipe does, reading what the node sends meanwhile (events wait for
 * devnode_process); after DEVNODE_EMIT_ROOM_TIMEOUT_MS with no room it fails with
 * DEVNODE_E_TIMEOUT, and with DEVNODE_E_NODE when the node is gone (no connection for 2 s);
 * both are also said as a WARNING. An accepted event (0) is never dropped: devnode_close and
 * devnode_stop wait until the node has it. The node's refusal of one (a retained stream's
 * journal that cannot be written) comes later, as a WARNING naming the event, and is counted
 * in what devnode_close / devnode_stop return. For services that emit in loops. */
int devnode_emit_nowait(struct devnode *dn, const char *type, const json_t *body, unsigned delay_ms);
/* How long a no-wait event may wait in the queue for more to join it, in microseconds
 * (0: each is sent at its call; at most DEVNODE_EMIT_LINGER_MAX_US). Returns 0 or
 * DEVNODE_E_INVALID. Without a loop turn ending, the queue goes out at the next call past the
 * linger, or when devnode_timeout_ms says devnode_process must run. */
#define DEVNODE_EMIT_LINGER_US 1000
#define DEVNODE_EMIT_LINGER_MAX_US 1000000
int devnode_set_emit_linger(struct devnode *dn, unsigned microseconds);
/* The same as devnode_emit, and *offset gets the event's offset in the retained stream that keeps it (once the
 * node returned, the stream's journal has it), or -1 when no stream keeps its type. */
int devnode_emit_offset(struct devnode *dn, const char *type, const json_t *body, unsigned delay_ms,
                        int64_t *offset);

/* ---- calling other services --------------------------------------------------------- */

/* Calls "Service.method" with `args` (a JSON object, borrowed; NULL means no arguments) on
 * one instance of Service, chosen round robin. Blocks up to timeout_ms (0: 5 s). On 0 *result
 * holds a new reference; otherwise err says why and *result is NULL. */
int devnode_call(struct devnode *dn, const char *subject, const json_t *args, int timeout_ms,
                 json_t **result, struct devnode_error *err);

/* The deferred call: sends the request and returns at once. NULL with err set when it could
 * not be sent. Every handle goes to exactly one devnode_call_wait or devnode_call_cancel. */
struct devnode_call *devnode_call_async(struct devnode *dn, const char *subject,
                                        const json_t *args, int timeout_ms,
                                        struct devnode_error *err);
#define DEVNODE_CALL_HEADERS 1u /* devnode_call_async_to: keep the reply's headers */
/* devnode_call_async to the RPC endpoint `endpoint` (ipc://…, tcp://…) instead of an instance
 * found through the node (NULL: found through the node), with DEVNODE_CALL_HEADERS or 0. */
struct devnode_call *devnode_call_async_to(struct devnode *dn, const char *endpoint, const char *subject,
                                           const json_t *args, int timeout_ms, unsigned flags,
                                           struct devnode_error *err);
/* Waits up to timeout_ms (or a deferred call's earlier deadline) until a deferred call is
 * ready (devnode_call_ready), without serving anything: for a client with many calls in flight.
 * Returns 1 when one is ready, 0 otherwise. */
int devnode_call_poll(struct devnode *dn, int timeout_ms);
/* devnode_call_wait that also hands over the reply's headers (an object, a new reference) when
 * the call was made with DEVNODE_CALL_HEADERS and a reply came; else *headers is NULL. */
int devnode_call_wait_headers(struct devnode *dn, struct devnode_call *call, json_t **result, json_t **headers,
                              struct devnode_error *err);
/* Waits for the reply of a deferred call (until its own deadline) and frees the handle. */
int devnode_call_wait(struct devnode *dn, struct devnode_call *call, json_t **result,
                      struct devnode_error *err);
/* 1 when the reply (or the deadline) is there, so devnode_call_wait will not block. */
int devnode_call_ready(struct devnode *dn, struct devnode_call *call);
/* Forgets a deferred call; a late reply is dropped. */
void devnode_call_cancel(struct devnode *dn, struct devnode_call *call);

/* ---- trace ids and logging ---------------------------------------------------------- */

/* The current trace id: the one of the request or event being handled, or the one set with
 * devnode_set_trace_id; "" when none (calls and emits then make up a fresh one each). */
const char *devnode_trace_id(const struct devnode *dn);
/* Sets the current trace id: `id` (1-64 of [A-Za-z0-9_-]; other bytes become '_'), a fresh
 * one when id is NULL, none when id is "". Returns the current one. */
const char *devnode_set_trace_id(struct devnode *dn, const char *id);

enum devnode_level { DEVNODE_DEBUG, DEVNODE_INFO, DEVNODE_WARNING, DEVNODE_ERROR };

/* Prints one line to stdout, `LEVEL message trace_id=<current or None>`, and flushes, so
 * the node's log hub files it under the trace. Newlines in the message become spaces. */
void devnode_log(struct devnode *dn, enum devnode_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What the library notices on its own, outside any call's result: a malformed message dropped,
 * a registration or subscription lost and retried, a stream caught up with. By default one
 * line on stderr, `LEVEL devnode: message` (so the node's log shows it under the service).
 * A service with its own logger (or a test) passes a handler to get them instead; NULL
 * restores the default. `message` has no newline and is valid during the call only. */
typedef void (*devnode_warning_fn)(void *ctx, enum devnode_level level, const char *message);
void devnode_set_warning_handler(struct devnode *dn, devnode_warning_fn fn, void *ctx);

/* ---- running ------------------------------------------------------------------------ */

/* Binds the RPC endpoint, subscribes the DEVNODE_CATCH_UP stream subscriptions and handles
 * their streams to the end, registers (methods, params, help), sends the other subscriptions
 * and tells NOTIFY_SOCKET READY=1. Returns 0, or a negative status (devnode_last_error says
 * why; a stream that cannot be caught up with fails it). A node that does not know `register`
 * yet is reported on stderr, not fatal. */
int devnode_start(struct devnode *dn);
/* Serves RPC and events, heartbeats every second, until SIGTERM or SIGINT (or
 * devnode_request_stop); then unsubscribes, unregisters and returns 0. Starts first if
 * devnode_start was not called. Returns non-zero if it could not start. */
int devnode_run(struct devnode *dn);

/* For a service with its own loop: an fd (epoll) that turns readable when devnode_process
 * has work; poll it for reading, and call devnode_process when it is readable and at the
 * latest after devnode_timeout_ms (asked again before each wait: an emit made outside
 * devnode_process shortens it). */
int devnode_fd(struct devnode *dn);
/* The ms until devnode_process must run again: the linger of queued no-wait events, the next
 * heartbeat, 0 when something waits already; -1 when nothing is due (no queue, no heartbeat). */
int devnode_timeout_ms(struct devnode *dn);
/* Handles what is waiting (requests, events, heartbeat) without blocking, then sends the
 * queued no-wait events. Returns the ms until it wants to run again (0: more is waiting); an
 * emit made after it returned may want it sooner: see devnode_timeout_ms. */
int devnode_process(struct devnode *dn);
/* Makes devnode_run return after the current request or event. */
void devnode_request_stop(struct devnode *dn);
/* Sends the queued no-wait events and waits until the node has every one (up to
 * DEVNODE_CLOSE_FLUSH_TIMEOUT_MS), then unsubscribes and unregisters (up to ~1 s); the RPC
 * endpoint is closed. Returns 0, or how many no-wait events accepted since the last
 * devnode_stop the node refused or did not confirm in time (as devnode_close). */
int devnode_stop(struct devnode *dn);

#endif
