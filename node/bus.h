/* bus: the embedded event bus. Events are routed by AMQP topic patterns to groups; each
 * group delivers an event to one member at a time and keeps it until that member acks, so
 * a member's death puts its events back for another (at-least-once). Queues are bounded;
 * drops are counted and reported. It holds no threads and never blocks on a subscriber. */
#ifndef DEVNODE_BUS_H
#define DEVNODE_BUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "config/config.h"
#include "node/control.h"
#include "node/loghub.h"

#define BUS_QUEUE_CAP 10000        /* a full queue pauses its emitters, or drops without a member */
#define BUS_QUEUE_HARD_CAP 100000  /* with members, past it events are dropped all the same */
#define BUS_PAUSE_MAX_MS 5000      /* an emitter is paused this long at most (no deadlock) */
#define BUS_DEFAULT_PREFETCH 64

struct bus_event;
struct bus_group;
struct bus_stream;
struct bus_member;
struct bus_delivery_table;
struct bus_pending;
struct bus_event_pool;

struct bus_delayed {
    uint64_t due_ms;        /* loop time */
    uint64_t order;         /* keeps emit order among events due at the same time */
    struct bus_event *event;
};

struct bus {
    uv_loop_t *loop;
    struct control *ctl;
    struct loghub *hub;
    struct bus_group **groups;       /* owned */
    size_t group_count, group_cap;
    struct bus_delivery_table *deliveries; /* in-flight deliveries by tag */
    uint64_t next_tag;
    struct bus_delayed *delayed;     /* min-heap by due_ms */
    size_t delayed_count, delayed_cap;
    uint64_t delayed_order;
    uv_timer_t delay_timer;
    uv_timer_t expiry_timer;         /* drops members whose connection and process are gone */
    msgpack_sbuffer scratch;         /* reused to build event messages */
    msgpack_sbuffer event_scratch;   /* reused to pack a new event's headers and body */
    struct wire_body reply;          /* reused for `ok` replies to emits */
    struct bus_event_pool *event_pool; /* released event records, for reuse */
    struct bus_pending *batch_buf;   /* the events of one `events` message being sent */
    struct proto_emit_view *emit_views; /* a batch emit's events, checked before any is emitted */
    unsigned dispatch_holds;         /* > 0 inside a turn or batch: groups dispatch at its end */
    struct bus_stream *streams;      /* retained streams (streams: in .lymph.yml) */
    size_t stream_count;
    uv_timer_t commit_timer;         /* persists committed offsets and fdatasyncs journals */
    uint64_t emitted, delivered, dropped;
};

/* Opens the journals of cfg's streams under <run_dir>/streams (a torn tail is cut and
 * reported as a node line). Returns 0, or -1 with err set when a journal cannot be opened. */
int bus_init(struct bus *bus, uv_loop_t *loop, struct loghub *hub, struct control *ctl,
             const struct config *cfg, const char *run_dir, char *err, size_t errlen);
/* A connection showed it is alive (heartbeat, ack). */
void bus_touch(struct bus *bus, const void *routing, size_t routing_len);
/* A process exited: its subscriptions go, their unacked events go back to their groups. */
void bus_on_process_exit(struct bus *bus, pid_t pid);
void bus_close(struct bus *bus);

#endif
