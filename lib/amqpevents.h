/* amqpevents.h: events through RabbitMQ in lymph's layout (issue 19 item 3), standalone beside
 * the library's stack, as zkregistry.h is: librabbitmq, msgpack and jansson, no struct devnode.
 * events.c uses it when DEVNODE_EVENTS=amqp://user:pass@host:port/vhost is set.
 *
 * The layout (lymph's KombuEventSystem, docs/backends.md "The RabbitMQ layout"):
 *   exchanges (durable)   lymph (topic, routing key = event type), lymph_waiting (direct),
 *                         lymph_retry (direct)
 *   a subscription        queue "<Service>-<name>" shared by the service's instances (each
 *                         event handled once per service), bound to lymph with each pattern
 *                         and to lymph_retry with its own name; broadcast: "<Service>-<name>-
 *                         <random hex>", auto-delete, one per instance
 *   a delayed event       published to lymph_waiting with key "<type>-wait_<ms>", into the queue
 *                         of that name whose TTL dead-letters it into lymph with key <type>
 *   a message             msgpack {type, headers, body, source}, content type
 *                         application/lymph+x-msgpack (application/lymph+json is read too)
 *
 * One process, one caller thread, two connections: a publisher in confirm mode (opened at
 * amqpev_open) and a consumer (opened at the first subscription). It never blocks past the
 * timeout it was given, and never drops an event it accepted without saying so. */
#ifndef DEVNODE_LIB_AMQPEVENTS_H
#define DEVNODE_LIB_AMQPEVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct amqpev;

#define AMQPEV_WINDOW 8192        /* no-wait events published and not yet confirmed: more waits */
#define AMQPEV_PREFETCH 1000      /* deliveries in flight to one consumer (the anchor's figure) */
#define AMQPEV_QUEUE_MAX 255      /* AMQP's limit on a queue name */

/* Outcomes (0 or negative). */
enum { AMQPEV_OK = 0, AMQPEV_E_BROKER = -1, AMQPEV_E_TIMEOUT = -2, AMQPEV_E_INVALID = -3 };

/* What the module notices on its own (a nack, a lost connection): one line, no newline. */
typedef void (*amqpev_warn_fn)(void *ctx, const char *message);

/* Parses `url` (amqp://user:pass@host[:port]/vhost, vhost percent-encoded: %2F is "/") and
 * connects the publisher (timeout_ms for the connection and each broker round trip). `source`
 * is what emitted events carry as their source. heartbeat_s (0: none) is asked of the broker for
 * both connections: the caller must run amqpev_process within amqpev_timeout_ms, which sends them
 * and notices a broker that went silent (stopped, cut off) after twice that. NULL with err set
 * ("amqp://guest:***@h:5672/%2F: cannot connect: connection refused"); the password is never
 * shown. */
struct amqpev *amqpev_open(const char *url, const char *source, int timeout_ms, int heartbeat_s, amqpev_warn_fn warn,
                           void *ctx, char *err, size_t errlen);

/* Publishes an event (body borrowed, NULL is null; headers: an object or NULL, e.g. {trace_id}).
 * wait: returns once the broker confirmed it (0) or refused it (AMQPEV_E_BROKER), at most
 * timeout_ms (AMQPEV_E_TIMEOUT). Not wait: returns once it is written to the broker, after
 * waiting (up to timeout_ms) for room in the window; its confirmation is read later (by any
 * call here), a nack or a lost connection is warned and counted for amqpev_flush. A failure
 * means the event was not accepted; err says why. A lost publisher connection is opened again
 * at the next publish (at most once a second). */
int amqpev_publish(struct amqpev *a, const char *type, const json_t *headers, const json_t *body, unsigned delay_ms,
                   int wait, int timeout_ms, char *err, size_t errlen);

/* Declares and consumes the queue of a subscription: `queue` ("<Service>-<name>"; a broadcast
 * one gets a random suffix and auto-delete), bound to each pattern. `tag` (>= 0) comes back
 * with its deliveries. 0, or a negative outcome with err set. */
int amqpev_subscribe(struct amqpev *a, const char *queue, const char *const *patterns, size_t count, int broadcast,
                     int tag, char *err, size_t errlen);

/* One event handed to the handler of amqpev_process; valid during the call. */
struct amqpev_delivery {
    int tag;                     /* amqpev_subscribe's tag */
    const char *queue;           /* the queue it came from */
    const char *type;            /* the event's type (its routing key when the body has none) */
    const json_t *body;          /* any JSON value */
    const json_t *headers;       /* an object */
    const char *source;          /* "" when absent */
    uint64_t delivery_tag;       /* the broker's number, unique per consumer connection */
    int redelivered;             /* the broker's flag, or it came back through lymph_retry */
    unsigned retry_count;        /* times it went through lymph_retry */
};

/* Returns 0 to ack; anything else rejects it and publishes it again through lymph_retry
 * (confirmed before the reject: at least once) for another instance. */
typedef int (*amqpev_handler_fn)(void *ctx, const struct amqpev_delivery *d);

/* Handles what has arrived without blocking: up to `budget` deliveries (each to fn, acked after
 * fn returned, acks coalesced and sent once the events fn published are confirmed) and every
 * confirmation. A lost consumer connection is warned and opened again (with its subscriptions)
 * a second later. Returns how many deliveries were handled. */
int amqpev_process(struct amqpev *a, amqpev_handler_fn fn, void *ctx, int budget);
/* 1 when amqpev_process has work without its sockets turning readable (buffered frames). */
int amqpev_ready(struct amqpev *a);
/* The sockets to poll for reading (-1: none): the publisher's and the consumer's. Returns a
 * number that changes whenever a connection is opened (a new socket may reuse an old fd). */
unsigned amqpev_fds(struct amqpev *a, int fds[2]);
/* ms until amqpev_process must run without a socket turning readable (a reconnection or a
 * heartbeat due); -1 when nothing is due. */
int amqpev_timeout_ms(struct amqpev *a);
/* Stops consuming: sends the pending acks and closes the consumer connection (the broker hands
 * unacked deliveries to other consumers). Subscribing again opens it again. */
void amqpev_unsubscribe_all(struct amqpev *a);
/* Waits (up to timeout_ms) until every no-wait event is confirmed; returns how many accepted
 * since the last call were nacked, lost with a connection, or not confirmed in time (warned). */
uint64_t amqpev_flush(struct amqpev *a, int timeout_ms);

struct amqpev_stats {
    uint64_t published, confirmed, nacked, lost, delivered, acked, retried, malformed;
};
void amqpev_get_stats(const struct amqpev *a, struct amqpev_stats *out);

/* Closes both connections and frees a (NULL is a no-op); call amqpev_flush first. */
void amqpev_close(struct amqpev *a);

#endif
