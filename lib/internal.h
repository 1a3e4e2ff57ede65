/* internal.h: the state behind `struct devnode` and the helpers every layer of the library uses
 * (time, last_error, warnings, trace ids). Nothing here is public API; services include
 * devnode.h only. The library is a stack, each file calling only the layers below it:
 *   conn.h    the connection to the node (bottom)
 *   server.h  serving RPC and registering         events.h  subscriptions, emits, deliveries
 *   client.h  calls (which serve while they wait, so above server.h)
 *   loop.c    start, the loop, stop and close (top)
 * Every pointer below has one owner, named in its comment; each layer frees its own. */
#ifndef DEVNODE_LIB_INTERNAL_H
#define DEVNODE_LIB_INTERNAL_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/rpcwire.h"
#include "proto/proto.h"
#include "proto/wire.h"
#include "lib/devnode.h"

struct amqpev;

#define DN_REREGISTER_GAP_MS 2500    /* a stall this long may have cost the registry entry (3 s) */
#define DN_NODE_TIMEOUT_MS PROTO_ANSWER_TIMEOUT_MS /* register, subscribe, emit, discover */
#define DN_STOP_TIMEOUT_MS 1000      /* unsubscribe + unregister at the end, all together */
#define DN_DISCOVER_TTL_MS 1000      /* a service's instances are re-read after this */
#define DN_DRAIN_QUIET_MS 300        /* a stopping server answers until quiet this long... */
#define DN_DRAIN_MAX_MS (DN_DISCOVER_TTL_MS + 200) /* ...or callers' caches have expired */
#define DN_CONNECT_WAIT_MS 200       /* how long a fresh connection may take before we try another */
#define DN_PREFETCH 128
#define DN_BATCH 64                  /* events per delivery message the node may send */
#define DN_UNWAITED_ID (1ULL << 61)  /* marks the request ids of quiet emits and of the window's pings */
#define DN_QUIET_COUNT_SHIFT 48      /* a quiet emit's id carries its event count in bits 48-57, so an
                                        `error` for it (a node before issue 17) counts its events */
#define DN_QUIET_SEQ_MASK ((1ULL << DN_QUIET_COUNT_SHIFT) - 1)
#define DN_EMIT_QUEUE_MAX PROTO_EMIT_BATCH_MAX /* no-wait events per quiet emit */
#define DN_EMIT_QUEUE_BYTES (1u << 20) /* ...or about this many bytes of them */
#define DN_EMIT_LINGER_US DEVNODE_EMIT_LINGER_US /* ...or this long after the first */
#define DN_EMIT_WINDOW 8000          /* no-wait events sent that the node has not confirmed: more waits. Under
                                      * a group queue of the node (10,000), so a fast publisher waits on its own
                                      * window before the node must hold its messages back (copied, decoded twice) */
#define DN_EMIT_HEAD_ROOM 256        /* bytes kept before the queued items for the quiet emit's head */
#define DN_ROOM_TIMEOUT_MS DEVNODE_EMIT_ROOM_TIMEOUT_MS   /* a no-wait emit waits this long for room */
#define DN_NODE_GONE_MS 2000         /* no connection to the node this long, while waiting: it is gone */
#define DN_FLUSH_TIMEOUT_MS DEVNODE_CLOSE_FLUSH_TIMEOUT_MS /* stop/close wait this long for the node */
#define DN_CATCH_UP_IDLE_MS 5000     /* a start-time catch-up fails when no event came this long */
#define DN_PROCESS_BUDGET 256        /* messages handled per devnode_process before yielding */
#define DN_NAME_MAX 127
#define DN_NEST_MAX 16               /* handlers a waiting call may nest (self-calls, cycles) */
#define DN_ZK_SESSION_MS 5000        /* ZooKeeper session timeout: a killed instance's znode goes after it */
#define DN_AMQP_HEARTBEAT_S 15       /* RabbitMQ heartbeat: a broker gone silent is noticed in 30-37 s */
#define DN_URL_MAX 1100              /* DEVNODE_REGISTRY: zkurl's hosts and chroot, with the scheme */

struct dn_method {
    char *name;         /* owned */
    char **params;      /* owned, NULL-terminated; a trailing '?' marks optional; NULL: any */
    char *help;         /* owned */
    devnode_method_fn fn;
    void *ctx;
};

struct dn_sub {
    char id[16];        /* "s1", unique per connection */
    char *pattern;      /* owned; the first of `patterns` */
    char **more;        /* owned: more_count further patterns of the same subscription */
    size_t more_count;
    char *group;        /* owned; "<Service>.<name>" (also used for broadcast, for display) */
    char *stream;       /* owned; the retained stream's pattern, NULL for new events only */
    char from[24];      /* stream subscriptions: "beginning", "now", "resume" or an offset */
    unsigned flags;
    devnode_event_fn fn;
    void *ctx;
    int active;         /* the node accepted it */
    int running;        /* its handler runs now: no catch-up on it from inside */
    int64_t last_offset;/* the highest stream offset handled and acked here; -1 before any */
    int64_t start_offset; /* broadcast stream subscriptions: the offset they started at (nothing
                           below it comes); named groups ask the node for their committed one */
};

/* One DEALER connected to one callee endpoint, kept open across calls. */
struct dn_peer {
    char *endpoint;     /* owned */
    void *sock;         /* owned DEALER */
    int pending;        /* calls on dn->calls waiting on it: it is not closed while > 0 */
    int listed;         /* mark for the sweep after a discover */
    int bad;            /* sends would not go through: skipped until the next discover */
    struct dn_peer *next;
};

struct zkreg;
struct zkreg_list;

struct dn_instance {
    struct dn_peer *peer;  /* borrowed from dn->peers */
    int instance;
    int pid;
};

/* What `discover` said about one service, and where round robin stands. */
struct dn_service {
    char *name;                 /* owned */
    struct dn_instance *insts;  /* owned array */
    size_t count;
    size_t next;                /* round robin position */
    long long fetched_ms;
    void *zk_snapshot;          /* the ZooKeeper snapshot insts were built from (held by zk_list) */
    struct zkreg_list *zk_list; /* owned: keeps zk_snapshot alive, so a pointer compare is safe */
    int zk_refused;             /* instances the snapshot lists that devnode cannot call (no wire) */
    struct dn_service *next_service;
};

/* A call in flight. Sync calls live on the caller's stack and are on dn->calls while they
 * wait; deferred ones live on the heap and are on dn->calls until waited for or cancelled. */
struct devnode_call {
    char id[RPC_ID_MAX + 1];
    struct dn_peer *peer;        /* borrowed; its `pending` counts this call while listed */
    long long deadline_ms;
    int done;                    /* reply (or failure) recorded below */
    int code;                    /* enum devnode_status once done */
    json_t *result;              /* owned until handed to the waiter */
    int want_headers;            /* DEVNODE_CALL_HEADERS: keep the reply's headers below */
    json_t *headers;             /* owned until handed to the waiter; NULL unless wanted */
    struct devnode_error err;
    int deferred;
    struct devnode_call *prev, *next;
};

/* The no-wait events not sent yet: one quiet emit's items, packed straight into a buffer that
 * is reused (emptied, never freed) from one emit to the next. */
struct dn_emit_queue {
    struct wire_body buf;        /* DN_EMIT_HEAD_ROOM spare bytes, then the packed items */
    size_t count;                /* events in it */
    long long first_us;          /* when the oldest of them was queued (monotonic) */
    long long linger_us;         /* how long an event may wait for more (0: sent at each call) */
};

/* A node message that arrived while we waited for another one (events during a request). */
struct dn_queued {
    struct dn_queued *next;
    struct wire_msg msg;         /* owned: wire_msg_free */
};

struct devnode {
    void *zctx;                  /* owned ZeroMQ context */
    void *node;                  /* owned DEALER to the node */
    void *router;                /* owned ROUTER serving RPC; NULL before start */
    int epfd;                    /* owned epoll fd for devnode_fd, -1 until asked for */

    char service[DN_NAME_MAX + 1];
    int instance;                /* DEVNODE_INSTANCE, -1 when not supervised */
    pid_t pid;
    char node_endpoint[PATH_MAX + 8];
    char run_dir[PATH_MAX];
    char rpc_endpoint[PATH_MAX + 8];
    char identity[40];           /* from the register reply (ours, with a ZooKeeper registry) */

    /* The remote registry (issue 19, docs/backends.md): set from DEVNODE_REGISTRY at open.
     * Empty: the node's embedded registry, exactly as before. */
    char registry_url[DN_URL_MAX];
    char ip[64];                 /* what a served endpoint binds and registers: DEVNODE_IP or 127.0.0.1 */
    int zk_session_ms;           /* DEVNODE_REGISTRY_SESSION_MS, else DN_ZK_SESSION_MS */
    struct zkreg *zk;            /* owned (server.c): the session, opened at the first need */
    char zk_id[40];              /* our znode's name once registered there; "" when not */

    struct dn_method *methods;   /* owned array */
    size_t method_count;
    struct dn_sub *subs;         /* owned array */
    size_t sub_count;

    uint64_t next_request_id;    /* ids of node requests */
    char call_prefix[9];         /* random per process: call ids are prefix + counter */
    uint64_t call_counter;
    uint64_t trace_counter;      /* trace ids made up for calls and emits without one */
    struct devnode_call *calls;  /* calls waiting for replies (the list does not own them) */
    struct dn_peer *peers;       /* owned list */
    struct dn_service *services; /* owned list: the discover cache */
    struct dn_queued *queue_head, *queue_tail; /* owned */
    struct dn_queued *spare;     /* owned: reused by dn_node_recv when nothing arrived */

    char trace_id[DEVNODE_TRACE_ID_MAX + 1];   /* "" when none */

    int client;                  /* devnode_open: subscriptions go out at once; no serving */
    int started;                 /* bound and registered (or tried to) */
    int registered;
    int reregister_due;          /* a stall may have cost the registry entry: register again */
    int stop_requested;
    int in_handler;              /* handlers running (nested only from a call that waits) */
    long long started_ms;
    long long next_heartbeat_ms;
    uint64_t served;             /* RPC requests answered */
    uint64_t malformed;          /* frames dropped */
    struct dn_emit_queue emitq;  /* devnode_emit_nowait's events not sent yet */
    uint64_t emit_sent;          /* no-wait events sent to the node, ever */
    uint64_t emit_confirmed;     /* ...of which a later reply confirmed the first this many */
    uint64_t emit_lost;          /* accepted no-wait events the node refused or never got, since the
                                    last devnode_stop/devnode_close said how many */
    uint64_t ping_id;            /* the window's ping in flight (0: none)... */
    uint64_t ping_covers;        /* ...whose reply confirms the first this many no-wait events */
    void *monitor;               /* owned PAIR reading the node DEALER's connection events, made
                                    at the first wait for room; NULL until then */
    long long unconnected_since_ms; /* when the monitor first saw no connection; 0: connected */

    struct wire_body out;        /* reused for every body we pack (calls, replies) */
    struct wire_body out_headers;

    char last_error[256];

    struct amqpev *amqp;         /* owned by events.c: RabbitMQ when DEVNODE_EVENTS=amqp://… is set
                                    (lib/amqpevents.h), opened at the first subscribe or emit */
    int events_backend;          /* events.c: 0 not looked yet, 1 the node's bus, 2 amqp */
    unsigned amqp_watched;       /* events.c: amqpev_fds's number when epfd last got its sockets */
    long long amqp_failed_ms;    /* events.c: when opening the broker last failed (0: never)... */
    char amqp_error[200];        /* ...and why: calls within a second fail with it, not another try */
    int amqp_heartbeat_s;        /* backends.c: DEVNODE_EVENTS_HEARTBEAT_S, else DN_AMQP_HEARTBEAT_S */

    devnode_warning_fn warn_fn;  /* NULL: stderr (devnode_set_warning_handler) */
    void *warn_ctx;
};

long long dn_now_ms(void);
long long dn_now_us(void);
/* logging.c: the one way the library reports what is not a call's result (a dropped message,
 * a lost registration): to the service's warning handler, else one line on stderr. */
void dn_warn(struct devnode *dn, enum devnode_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Records why something failed in dn->last_error (and returns `code`). */
int dn_fail(struct devnode *dn, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* backends.c: reads DEVNODE_REGISTRY, DEVNODE_IP, DEVNODE_REGISTRY_SESSION_MS, DEVNODE_EVENTS_HEARTBEAT_S into dn and refuses
 * a bad value with one line in err. 0 or -1. (DEVNODE_EVENTS is events.c's.) */
int dn_backends_read(struct devnode *dn, char *err, size_t errlen);

/* Trace id helpers (logging.c). */
void dn_trace_sanitize(char out[DEVNODE_TRACE_ID_MAX + 1], const char *in, size_t len);
/* The current trace id, or a fresh one written to `tmp` when there is none. */
const char *dn_trace_or_new(struct devnode *dn, char tmp[DEVNODE_TRACE_ID_MAX + 1]);

#endif
