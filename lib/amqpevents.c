/* amqpevents.c: events through RabbitMQ in lymph's layout (see amqpevents.h), on librabbitmq.
 * Two connections, so the publisher's confirms and the consumer's deliveries never wait on one
 * another: the publisher runs in confirm mode with a window of unconfirmed events (a ring of
 * their state and type, for the warning that names a nacked one); the consumer acks after the
 * handler returned, once the events the handler emitted are confirmed. It must never drop an
 * accepted event silently, nor ack a delivery it did not hand to the handler. */
#include "lib/amqpevents.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <msgpack.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/msgjson.h"

#define EXCHANGE "lymph"
#define EXCHANGE_WAITING "lymph_waiting"
#define EXCHANGE_RETRY "lymph_retry"
#define CONTENT_MSGPACK "application/lymph+x-msgpack"
#define CONTENT_JSON "application/lymph+json"
#define RETRY_HEADER "retry_count"
#define BODY_MAX (16u << 20)     /* the embedded node's limit, kept here so both behave alike */
#define FRAME_MAX 131072
#define RECONNECT_MS 1000        /* a lost connection is opened again this long after */
#define TYPE_KEEP 48             /* bytes of an event's type kept for the warning about it */
#define WAIT_QUEUES_MAX 64       /* delay queues remembered as declared (more are declared again) */
#define CHANNEL 1

enum seq_state { SEQ_PENDING = 0, SEQ_ACKED, SEQ_NACKED };
#define WAIT_PENDING 1           /* the waited publish has no outcome yet (outcomes are 0 or < 0) */

struct sub {
    char *queue;                 /* owned: the configured name */
    char *name;                  /* owned: the declared one (a broadcast queue has a suffix) */
    char **patterns;             /* owned */
    size_t count;
    int broadcast;
    int tag;
    char ctag[24];               /* consumer tag: "dn-<tag>" */
};

struct amqpev {
    char *urlbuf;                /* owned: amqp_parse_url points into it */
    struct amqp_connection_info info;
    char shown[300];             /* the URL with its password as *** */
    char *source;                /* owned */
    int timeout_ms;
    int heartbeat_s;             /* asked of the broker at login (0: none) */
    long long beat_ms;           /* when both connections must next be read or written (monotonic) */
    amqpev_warn_fn warn;
    void *warn_ctx;

    amqp_connection_state_t pub; /* owned; NULL after a loss, until the next publish */
    long long pub_retry_ms;      /* no reconnection attempt before this (monotonic) */
    char pub_err[256];           /* why the last attempt failed */
    uint64_t next_seq;           /* the publisher's number for the next publish (1, 2, ...) */
    uint64_t low;                /* the lowest number not yet confirmed or refused */
    unsigned char *state;        /* owned ring of AMQPEV_WINDOW enum seq_state */
    char (*types)[TYPE_KEEP];    /* owned ring: each event's type, for the warning */
    uint64_t waiting_seq;        /* the waited publish (0: none)... */
    int waiting_result;          /* ...its outcome: WAIT_PENDING, 0 acked, AMQPEV_E_BROKER refused or lost */
    uint64_t lost_since_flush;
    char *waitq[WAIT_QUEUES_MAX];/* owned: delay queues declared on this publisher connection */
    size_t waitq_count;

    amqp_connection_state_t con; /* owned; NULL before the first subscription and after a loss */
    long long con_retry_ms;
    struct sub *subs;            /* owned array */
    size_t sub_count;
    uint64_t ack_upto;           /* deliveries up to this tag handled, their ack not sent (0: none) */
    uint64_t ack_needs_seq;      /* ...sent once the publisher confirmed every number up to this */

    msgpack_sbuffer sbuf;        /* reused for every message packed */
    struct amqpev_stats stats;
    unsigned opened;             /* connections opened so far (amqpev_fds) */
};

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void warnf(struct amqpev *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(struct amqpev *a, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (a->warn)
        a->warn(a->warn_ctx, line);
    else
        fprintf(stderr, "WARNING devnode: %s\n", line);
}

/* One line for a failed broker round trip. */
static void reply_error(amqp_rpc_reply_t r, char *out, size_t len)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(out, len, "no error");
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(out, len, "no reply from the broker");
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(out, len, "%s", amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(out, len, "the broker closed the connection: %d %.*s", m->reply_code, (int)m->reply_text.len,
                     (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(out, len, "the broker refused: %d %.*s", m->reply_code, (int)m->reply_text.len,
                     (const char *)m->reply_text.bytes);
        } else {
            snprintf(out, len, "the broker answered method 0x%08x", (unsigned)r.reply.id);
        }
        break;
    }
}

/* Checks the reply of the last round trip; on failure fills err with `what: why`. */
static int rpc_ok(amqp_connection_state_t c, const char *what, char *err, size_t errlen)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    char why[300];
    reply_error(r, why, sizeof why);
    snprintf(err, errlen, "%s: %s", what, why);
    return -1;
}

static amqp_table_t ha_args(amqp_table_entry_t *e)
{
    /* lymph declares every queue with x-ha-policy: all (ignored by brokers since 3.0, kept so
     * both sides declare the same arguments). */
    e->key = amqp_cstring_bytes("x-ha-policy");
    e->value.kind = AMQP_FIELD_KIND_UTF8;
    e->value.value.bytes = amqp_cstring_bytes("all");
    return (amqp_table_t){.num_entries = 1, .entries = e};
}

/* Opens a connection with channel CHANNEL and lymph's three exchanges (durable, as lymph
 * declares them: a mismatch would be refused). NULL with err set. */
static amqp_connection_state_t conn_open(struct amqpev *a, int confirm, char *err, size_t errlen)
{
    char why[300];
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = c ? amqp_tcp_socket_new(c) : NULL;
    if (!s) {
        snprintf(err, errlen, "%s: out of memory", a->shown);
        if (c)
            amqp_destroy_connection(c);
        return NULL;
    }
    struct timeval tv = {.tv_sec = a->timeout_ms / 1000, .tv_usec = (a->timeout_ms % 1000) * 1000};
    int rc = amqp_socket_open_noblock(s, a->info.host, a->info.port, &tv);
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, errlen, "%s: cannot connect: %s", a->shown, amqp_error_string2(rc));
        amqp_destroy_connection(c);
        return NULL;
    }
    amqp_set_handshake_timeout(c, &tv);
    amqp_set_rpc_timeout(c, &tv);
    amqp_rpc_reply_t r = amqp_login(c, a->info.vhost, 0, FRAME_MAX, a->heartbeat_s, AMQP_SASL_METHOD_PLAIN,
                                    a->info.user, a->info.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_error(r, why, sizeof why);
        snprintf(err, errlen, "%s: login as %s to vhost %s failed: %s", a->shown, a->info.user, a->info.vhost, why);
        amqp_destroy_connection(c);
        return NULL;
    }
    char what[64];
    amqp_channel_open(c, CHANNEL);
    if (rpc_ok(c, "opening a channel", why, sizeof why) < 0)
        goto fail;
    static const char *const exchanges[][2] = {
        {EXCHANGE, "topic"}, {EXCHANGE_WAITING, "direct"}, {EXCHANGE_RETRY, "direct"}};
    for (size_t i = 0; i < 3; i++) {
        amqp_exchange_declare(c, CHANNEL, amqp_cstring_bytes(exchanges[i][0]), amqp_cstring_bytes(exchanges[i][1]),
                              0, 1, 0, 0, amqp_empty_table);
        snprintf(what, sizeof what, "declaring exchange %s", exchanges[i][0]);
        if (rpc_ok(c, what, why, sizeof why) < 0)
            goto fail;
    }
    if (confirm) {
        amqp_confirm_select(c, CHANNEL);
        if (rpc_ok(c, "selecting publisher confirms", why, sizeof why) < 0)
            goto fail;
    } else {
        amqp_basic_qos(c, CHANNEL, 0, AMQPEV_PREFETCH, 0);
        if (rpc_ok(c, "setting the prefetch", why, sizeof why) < 0)
            goto fail;
    }
    a->opened++;
    return c;
fail:
    snprintf(err, errlen, "%s: %s", a->shown, why);
    amqp_destroy_connection(c);
    return NULL;
}

static int conn_fd(amqp_connection_state_t c)
{
    amqp_socket_t *s = c ? amqp_get_socket(c) : NULL;
    return s ? amqp_socket_get_sockfd(s) : -1;
}

/* The wait of amqp_simple_wait_frame_noblock. librabbitmq sends our heartbeat when one is due
 * inside any wait, but notices the broker's missing (AMQP_STATUS_HEARTBEAT_TIMEOUT) only in a
 * wait with a real deadline: {0, 0} is its "immediate", which always comes first, so a silent
 * broker would never be reported (rabbitmq-c issue 433, PR 557). A look without waiting is
 * therefore one microsecond, which polls just the same. */
static struct timeval wait_tv(int wait_ms)
{
    if (wait_ms <= 0)
        return (struct timeval){.tv_sec = 0, .tv_usec = 1};
    return (struct timeval){.tv_sec = wait_ms / 1000, .tv_usec = (wait_ms % 1000) * 1000};
}

/* Why a wait for a frame failed, for the warning that the connection is lost. */
static const char *wait_error(const struct amqpev *a, int rc, char *buf, size_t len)
{
    if (rc != AMQP_STATUS_HEARTBEAT_TIMEOUT)
        return amqp_error_string2(rc);
    snprintf(buf, len, "no heartbeat from the broker for %d s", 2 * a->heartbeat_s);
    return buf;
}

static int beat_interval_ms(const struct amqpev *a)
{
    return a->heartbeat_s * 1000 / 2; /* librabbitmq's timers are read at most this late */
}

static int fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return fd >= 0 && poll(&p, 1, 0) > 0;
}

/* ---- the publisher ------------------------------------------------------------------ */

static uint64_t pub_unconfirmed(const struct amqpev *a)
{
    return a->next_seq - a->low;
}

/* Settles publish `seq` (acked or refused); returns 1 when that changed something. */
static int pub_settle_one(struct amqpev *a, uint64_t seq, int ok)
{
    if (seq < a->low || seq >= a->next_seq || a->state[seq % AMQPEV_WINDOW] != SEQ_PENDING)
        return 0;
    a->state[seq % AMQPEV_WINDOW] = ok ? SEQ_ACKED : SEQ_NACKED;
    if (seq == a->waiting_seq) {
        a->waiting_result = ok ? 0 : AMQPEV_E_BROKER;
        return 0; /* the waiting caller hears of it: not counted, not warned */
    }
    if (ok) {
        a->stats.confirmed++;
    } else {
        a->stats.nacked++;
        a->lost_since_flush++;
    }
    return !ok;
}

static void pub_advance(struct amqpev *a)
{
    while (a->low < a->next_seq && a->state[a->low % AMQPEV_WINDOW] != SEQ_PENDING)
        a->low++;
}

/* A basic.ack or basic.nack: `multiple` covers every number up to tag. */
static void pub_confirm(struct amqpev *a, uint64_t tag, int multiple, int ok)
{
    uint64_t from = multiple ? a->low : tag, refused = 0, first = 0;
    for (uint64_t s = from; s <= tag && s < a->next_seq; s++)
        if (pub_settle_one(a, s, ok) && !refused++)
            first = s;
    if (refused)
        warnf(a, "the broker refused %llu event(s) emitted without waiting (nack; the first: %s)",
              (unsigned long long)refused, a->types[first % AMQPEV_WINDOW]);
    pub_advance(a);
}

/* The publisher connection is gone: what it did not confirm is lost (warned, counted). */
static void pub_lost(struct amqpev *a, const char *why)
{
    uint64_t lost = 0;
    for (uint64_t s = a->low; s < a->next_seq; s++) {
        if (a->state[s % AMQPEV_WINDOW] != SEQ_PENDING)
            continue;
        if (s == a->waiting_seq)
            a->waiting_result = AMQPEV_E_BROKER;
        else
            lost++;
    }
    a->stats.lost += lost;
    a->lost_since_flush += lost;
    if (lost)
        warnf(a, "lost the connection to the broker %s (%s): %llu event(s) emitted without waiting were not "
              "confirmed", a->shown, why, (unsigned long long)lost);
    else
        warnf(a, "lost the connection to the broker %s (%s)", a->shown, why);
    snprintf(a->pub_err, sizeof a->pub_err, "%s: the connection was lost (%s)", a->shown, why);
    if (a->pub)
        amqp_destroy_connection(a->pub);
    a->pub = NULL;
    a->pub_retry_ms = now_ms(); /* the next publish may try at once; a failed try waits */
    a->next_seq = a->low = 1;
    for (size_t i = 0; i < a->waitq_count; i++)
        free(a->waitq[i]);
    a->waitq_count = 0; /* a restarted broker has lost them: declare again */
}

/* Reads the publisher's frames: waits up to timeout_ms for the first, then takes what is
 * there. Returns 0, or -1 when the connection was lost. */
static int pub_pump(struct amqpev *a, int timeout_ms)
{
    int wait = timeout_ms;
    while (a->pub) {
        struct timeval tv = wait_tv(wait);
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(a->pub, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            return 0;
        if (rc != AMQP_STATUS_OK) {
            char why[80];
            pub_lost(a, wait_error(a, rc, why, sizeof why));
            return -1;
        }
        wait = 0; /* after the first frame, only what is there already */
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *m = f.payload.method.decoded;
            pub_confirm(a, m->delivery_tag, m->multiple, 1);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *m = f.payload.method.decoded;
            pub_confirm(a, m->delivery_tag, m->multiple, 0);
            break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD: {
            char why[300];
            amqp_rpc_reply_t r = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = f.payload.method};
            reply_error(r, why, sizeof why);
            pub_lost(a, why);
            return -1;
        }
        default:
            break;
        }
    }
    return -1;
}

/* Heartbeats: reads (and so writes, when due) the publisher's connection at least every half
 * heartbeat, whether or not it has something to say; the consumer's is read at every
 * amqpev_process. A connection the broker dropped meanwhile is found here, before a publish. */
static void beat(struct amqpev *a)
{
    if (!a->heartbeat_s || now_ms() < a->beat_ms)
        return;
    a->beat_ms = now_ms() + beat_interval_ms(a);
    if (a->pub)
        pub_pump(a, 0);
}

static int pub_ensure(struct amqpev *a, char *err, size_t errlen)
{
    if (a->pub)
        return 0;
    if (now_ms() < a->pub_retry_ms) {
        snprintf(err, errlen, "%s", a->pub_err);
        return AMQPEV_E_BROKER;
    }
    a->pub = conn_open(a, 1, a->pub_err, sizeof a->pub_err);
    if (!a->pub) {
        a->pub_retry_ms = now_ms() + RECONNECT_MS;
        snprintf(err, errlen, "%s", a->pub_err);
        return AMQPEV_E_BROKER;
    }
    a->next_seq = a->low = 1;
    return 0;
}

/* Declares the delay queue `name` (TTL delay_ms, dead-lettering into lymph with key `type`) and
 * binds it to lymph_waiting under its own name, once per publisher connection. */
static int pub_wait_queue(struct amqpev *a, const char *name, const char *type, unsigned delay_ms, char *err,
                          size_t errlen)
{
    for (size_t i = 0; i < a->waitq_count; i++)
        if (strcmp(a->waitq[i], name) == 0)
            return 0;
    amqp_table_entry_t e[4];
    ha_args(&e[0]);
    e[1].key = amqp_cstring_bytes("x-dead-letter-exchange");
    e[1].value.kind = AMQP_FIELD_KIND_UTF8;
    e[1].value.value.bytes = amqp_cstring_bytes(EXCHANGE);
    e[2].key = amqp_cstring_bytes("x-dead-letter-routing-key");
    e[2].value.kind = AMQP_FIELD_KIND_UTF8;
    e[2].value.value.bytes = amqp_cstring_bytes(type);
    e[3].key = amqp_cstring_bytes("x-message-ttl");
    e[3].value.kind = AMQP_FIELD_KIND_I32;
    e[3].value.value.i32 = (int32_t)delay_ms;
    char what[300];
    amqp_queue_declare(a->pub, CHANNEL, amqp_cstring_bytes(name), 0, 0, 0, 0,
                       (amqp_table_t){.num_entries = 4, .entries = e});
    snprintf(what, sizeof what, "declaring delay queue %s", name);
    if (rpc_ok(a->pub, what, err, errlen) < 0)
        goto lost;
    amqp_queue_bind(a->pub, CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes(EXCHANGE_WAITING),
                    amqp_cstring_bytes(name), amqp_empty_table);
    snprintf(what, sizeof what, "binding delay queue %s", name);
    if (rpc_ok(a->pub, what, err, errlen) < 0)
        goto lost;
    if (a->waitq_count < WAIT_QUEUES_MAX)
        a->waitq[a->waitq_count++] = strdup(name);
    return 0;
lost:
    /* A refused declaration closes the channel, and confirms ride on it. */
    pub_lost(a, err);
    return AMQPEV_E_BROKER;
}

/* Publishes one packed message; see amqpev_publish for `wait`. */
static int pub_send(struct amqpev *a, const char *exchange, const char *key, const char *content_type,
                    int retry_count, amqp_bytes_t body, const char *type, int wait, int timeout_ms, char *err,
                    size_t errlen)
{
    long long deadline = now_ms() + timeout_ms;
    beat(a);
    /* Room in the window (the ring holds AMQPEV_WINDOW numbers, waited or not). */
    while (a->pub && pub_unconfirmed(a) >= AMQPEV_WINDOW) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            snprintf(err, errlen, "%llu events published are not confirmed by the broker after %d ms",
                     (unsigned long long)pub_unconfirmed(a), timeout_ms);
            return AMQPEV_E_TIMEOUT;
        }
        pub_pump(a, (int)(left > 100 ? 100 : left));
    }
    int rc = pub_ensure(a, err, errlen);
    if (rc < 0)
        return rc;
    amqp_table_entry_t h;
    amqp_basic_properties_t p = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG,
        .content_type = amqp_cstring_bytes(content_type),
        .content_encoding = amqp_cstring_bytes("binary"),
        .delivery_mode = 2, /* kombu's default, as lymph published */
    };
    if (retry_count > 0) {
        h.key = amqp_cstring_bytes(RETRY_HEADER);
        h.value.kind = AMQP_FIELD_KIND_I32;
        h.value.value.i32 = retry_count;
        p.headers = (amqp_table_t){.num_entries = 1, .entries = &h};
        p._flags |= AMQP_BASIC_HEADERS_FLAG; /* only then: an empty table is work for the broker */
    }
    rc = amqp_basic_publish(a->pub, CHANNEL, amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), 0, 0, &p, body);
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, errlen, "%s: publishing failed: %s", a->shown, amqp_error_string2(rc));
        pub_lost(a, amqp_error_string2(rc));
        return AMQPEV_E_BROKER;
    }
    uint64_t seq = a->next_seq++;
    a->state[seq % AMQPEV_WINDOW] = SEQ_PENDING;
    snprintf(a->types[seq % AMQPEV_WINDOW], TYPE_KEEP, "%s", type);
    a->stats.published++;
    if (!wait) {
        /* Confirms come in while we publish: read those already here now and then, so a nack
         * is said soon and the window moves without a blocking wait. */
        if ((seq & 63) == 0 || amqp_frames_enqueued(a->pub))
            pub_pump(a, 0);
        return 0;
    }
    a->waiting_seq = seq;
    a->waiting_result = WAIT_PENDING;
    while (a->waiting_result == WAIT_PENDING) {
        long long left = deadline - now_ms();
        if (left <= 0)
            break;
        pub_pump(a, (int)(left > 100 ? 100 : left));
    }
    rc = a->waiting_result;
    a->waiting_seq = 0;
    pub_advance(a);
    if (rc == WAIT_PENDING) {
        snprintf(err, errlen, "the broker %s did not confirm it within %d ms", a->shown, timeout_ms);
        return AMQPEV_E_TIMEOUT;
    }
    if (rc < 0)
        snprintf(err, errlen, "%s", a->pub ? "the broker refused it (nack)" : a->pub_err);
    return rc;
}

/* Packs lymph's message {type, headers, body, source} into a->sbuf. */
static int pack_event(struct amqpev *a, const char *type, const json_t *headers, const json_t *body)
{
    msgpack_sbuffer_clear(&a->sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &a->sbuf, msgpack_sbuffer_write);
    static const char *const keys[] = {"type", "headers", "body", "source"};
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, keys[0], strlen(keys[0]));
    msgpack_pack_str_with_body(&pk, type, strlen(type));
    msgpack_pack_str_with_body(&pk, keys[1], strlen(keys[1]));
    if (headers && json_is_object(headers)) {
        if (msgjson_pack(&pk, headers) < 0)
            return -1;
    } else {
        msgpack_pack_map(&pk, 0);
    }
    msgpack_pack_str_with_body(&pk, keys[2], strlen(keys[2]));
    if (!body)
        msgpack_pack_nil(&pk);
    else if (msgjson_pack(&pk, body) < 0)
        return -1;
    msgpack_pack_str_with_body(&pk, keys[3], strlen(keys[3]));
    msgpack_pack_str_with_body(&pk, a->source, strlen(a->source));
    return 0;
}

int amqpev_publish(struct amqpev *a, const char *type, const json_t *headers, const json_t *body, unsigned delay_ms,
                   int wait, int timeout_ms, char *err, size_t errlen)
{
    if (pack_event(a, type, headers, body) < 0) {
        snprintf(err, errlen, "the body cannot be encoded");
        return AMQPEV_E_INVALID;
    }
    if (a->sbuf.size > BODY_MAX) {
        snprintf(err, errlen, "the event takes %zu bytes, more than %u", a->sbuf.size, BODY_MAX);
        return AMQPEV_E_INVALID;
    }
    amqp_bytes_t bytes = {.len = a->sbuf.size, .bytes = a->sbuf.data};
    if (delay_ms == 0)
        return pub_send(a, EXCHANGE, type, CONTENT_MSGPACK, 0, bytes, type, wait, timeout_ms, err, errlen);
    /* lymph's delay: "<type>-wait_<ms>" holds it for its TTL, then dead-letters it into lymph. */
    char name[AMQPEV_QUEUE_MAX + 1];
    if ((size_t)snprintf(name, sizeof name, "%s-wait_%u", type, delay_ms) >= sizeof name) {
        snprintf(err, errlen, "the delay queue's name would be longer than %d bytes", AMQPEV_QUEUE_MAX);
        return AMQPEV_E_INVALID;
    }
    int rc = pub_ensure(a, err, errlen);
    if (rc == 0)
        rc = pub_wait_queue(a, name, type, delay_ms, err, errlen);
    if (rc < 0)
        return rc;
    return pub_send(a, EXCHANGE_WAITING, name, CONTENT_MSGPACK, 0, bytes, type, wait, timeout_ms, err, errlen);
}

uint64_t amqpev_flush(struct amqpev *a, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (a->pub && pub_unconfirmed(a) > 0) {
        long long left = deadline - now_ms();
        if (left <= 0)
            break;
        pub_pump(a, (int)(left > 100 ? 100 : left));
    }
    if (a->pub && pub_unconfirmed(a) > 0) {
        uint64_t n = 0;
        for (uint64_t s = a->low; s < a->next_seq; s++)
            n += a->state[s % AMQPEV_WINDOW] == SEQ_PENDING;
        warnf(a, "%llu event(s) emitted without waiting were not confirmed by the broker %s within %d ms",
              (unsigned long long)n, a->shown, timeout_ms);
        a->stats.lost += n;
        a->lost_since_flush += n;
        for (uint64_t s = a->low; s < a->next_seq; s++)
            a->state[s % AMQPEV_WINDOW] = SEQ_NACKED; /* counted: a late ack changes nothing */
        pub_advance(a);
    }
    uint64_t lost = a->lost_since_flush;
    a->lost_since_flush = 0;
    return lost;
}

/* ---- the consumer ------------------------------------------------------------------- */

static void sub_free(struct sub *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->patterns[i]);
    free(s->patterns);
    free(s->queue);
    free(s->name);
}

/* Declares, binds and consumes one subscription's queue on a->con. */
static int sub_setup(struct amqpev *a, struct sub *s, char *err, size_t errlen)
{
    char what[AMQPEV_QUEUE_MAX + 64];
    free(s->name);
    s->name = NULL;
    if (s->broadcast) {
        /* lymph: "<iface>-<func>-<uuid4>", auto-delete: every instance has one of its own */
        unsigned char r[16];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
            for (size_t i = 0; i < sizeof r; i++)
                r[i] = (unsigned char)(rand() ^ (now_ms() >> (i % 8)));
        char hex[33];
        for (size_t i = 0; i < sizeof r; i++)
            snprintf(hex + 2 * i, 3, "%02x", r[i]);
        size_t len = strlen(s->queue) + 34;
        if ((s->name = malloc(len)))
            snprintf(s->name, len, "%s-%s", s->queue, hex);
    } else {
        s->name = strdup(s->queue);
    }
    if (!s->name) {
        snprintf(err, errlen, "out of memory");
        return AMQPEV_E_INVALID;
    }
    amqp_table_entry_t e;
    amqp_queue_declare(a->con, CHANNEL, amqp_cstring_bytes(s->name), 0, 0, 0, s->broadcast, ha_args(&e));
    snprintf(what, sizeof what, "declaring queue %s", s->name);
    if (rpc_ok(a->con, what, err, errlen) < 0)
        return AMQPEV_E_BROKER;
    for (size_t i = 0; i < s->count; i++) {
        amqp_queue_bind(a->con, CHANNEL, amqp_cstring_bytes(s->name), amqp_cstring_bytes(EXCHANGE),
                        amqp_cstring_bytes(s->patterns[i]), amqp_empty_table);
        snprintf(what, sizeof what, "binding queue %s to %s", s->name, s->patterns[i]);
        if (rpc_ok(a->con, what, err, errlen) < 0)
            return AMQPEV_E_BROKER;
    }
    amqp_queue_bind(a->con, CHANNEL, amqp_cstring_bytes(s->name), amqp_cstring_bytes(EXCHANGE_RETRY),
                    amqp_cstring_bytes(s->name), amqp_empty_table);
    snprintf(what, sizeof what, "binding queue %s to %s", s->name, EXCHANGE_RETRY);
    if (rpc_ok(a->con, what, err, errlen) < 0)
        return AMQPEV_E_BROKER;
    amqp_basic_consume(a->con, CHANNEL, amqp_cstring_bytes(s->name), amqp_cstring_bytes(s->ctag), 0, 0, 0,
                       amqp_empty_table);
    snprintf(what, sizeof what, "consuming queue %s", s->name);
    if (rpc_ok(a->con, what, err, errlen) < 0)
        return AMQPEV_E_BROKER;
    return 0;
}

static void con_drop(struct amqpev *a)
{
    if (a->con)
        amqp_destroy_connection(a->con);
    a->con = NULL;
    a->ack_upto = 0; /* the broker hands those deliveries to other consumers */
    a->con_retry_ms = now_ms() + RECONNECT_MS;
}

static void con_lost(struct amqpev *a, const char *why)
{
    warnf(a, "lost the consumer connection to the broker %s (%s): subscribing again in %d ms", a->shown, why,
          RECONNECT_MS);
    con_drop(a);
}

/* Opens the consumer connection with every subscription; 0, or a failure with err set. */
static int con_open(struct amqpev *a, char *err, size_t errlen)
{
    a->con = conn_open(a, 0, err, errlen);
    if (!a->con) {
        a->con_retry_ms = now_ms() + RECONNECT_MS;
        return AMQPEV_E_BROKER;
    }
    a->ack_upto = 0;
    for (size_t i = 0; i < a->sub_count; i++) {
        if (sub_setup(a, &a->subs[i], err, errlen) < 0) {
            con_drop(a);
            return AMQPEV_E_BROKER;
        }
    }
    return 0;
}

/* Sends the acks of the handled deliveries once the events their handlers emitted are
 * confirmed (a process that dies after the ack has those events with the broker). */
static void con_settle(struct amqpev *a)
{
    if (!a->con || !a->ack_upto)
        return;
    long long deadline = now_ms() + a->timeout_ms;
    while (a->pub && a->low <= a->ack_needs_seq && a->low < a->next_seq && now_ms() < deadline)
        pub_pump(a, 100);
    if (amqp_basic_ack(a->con, CHANNEL, a->ack_upto, 1) != AMQP_STATUS_OK) {
        con_lost(a, "sending an ack failed");
        return;
    }
    a->stats.acked++;
    a->ack_upto = 0;
}

int amqpev_subscribe(struct amqpev *a, const char *queue, const char *const *patterns, size_t count, int broadcast,
                     int tag, char *err, size_t errlen)
{
    if (!queue || !*queue || strlen(queue) + (broadcast ? 33 : 0) > AMQPEV_QUEUE_MAX || strncmp(queue, "amq.", 4) == 0) {
        snprintf(err, errlen, "queue name '%.60s' does not fit AMQP (1-%d bytes%s, not amq.*)", queue ? queue : "",
                 AMQPEV_QUEUE_MAX - (broadcast ? 33 : 0), broadcast ? " with the broadcast suffix" : "");
        return AMQPEV_E_INVALID;
    }
    for (size_t i = 0; i < a->sub_count; i++)
        if (strcmp(a->subs[i].queue, queue) == 0) {
            snprintf(err, errlen, "queue %s is subscribed already (give the subscription another name)", queue);
            return AMQPEV_E_INVALID;
        }
    con_settle(a); /* a refusal below would cost the handled deliveries their acks */
    struct sub *grown = realloc(a->subs, (a->sub_count + 1) * sizeof *grown);
    if (!grown) {
        snprintf(err, errlen, "out of memory");
        return AMQPEV_E_INVALID;
    }
    a->subs = grown;
    struct sub *s = &a->subs[a->sub_count];
    memset(s, 0, sizeof *s);
    s->queue = strdup(queue);
    s->patterns = calloc(count ? count : 1, sizeof *s->patterns);
    int ok = s->queue && s->patterns;
    for (size_t i = 0; ok && i < count; i++)
        ok = (s->patterns[s->count++] = strdup(patterns[i])) != NULL;
    s->broadcast = broadcast;
    s->tag = tag;
    snprintf(s->ctag, sizeof s->ctag, "dn-%d", tag);
    if (!ok) {
        sub_free(s);
        snprintf(err, errlen, "out of memory");
        return AMQPEV_E_INVALID;
    }
    a->sub_count++;
    int rc = a->con ? sub_setup(a, s, err, errlen) : con_open(a, err, errlen);
    if (rc < 0) {
        /* Not kept: the caller hears of the failure and may subscribe again. A refusal closed
         * the channel the others consume on: they are subscribed again without it. */
        int had_con = a->con != NULL;
        a->sub_count--;
        con_drop(a);
        char again[300];
        if (had_con && a->sub_count && con_open(a, again, sizeof again) < 0)
            warnf(a, "cannot subscribe again: %s (retrying in %d ms)", again, RECONNECT_MS);
        sub_free(s);
    }
    return rc;
}

static const struct sub *sub_of_ctag(const struct amqpev *a, amqp_bytes_t ctag)
{
    for (size_t i = 0; i < a->sub_count; i++)
        if (strlen(a->subs[i].ctag) == ctag.len && memcmp(a->subs[i].ctag, ctag.bytes, ctag.len) == 0)
            return &a->subs[i];
    return NULL;
}

static unsigned retry_count_of(const amqp_basic_properties_t *p)
{
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return 0;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        if (e->key.len != strlen(RETRY_HEADER) || memcmp(e->key.bytes, RETRY_HEADER, e->key.len) != 0)
            continue;
        switch (e->value.kind) {
        case AMQP_FIELD_KIND_I8: return e->value.value.i8 > 0 ? (unsigned)e->value.value.i8 : 0;
        case AMQP_FIELD_KIND_U8: return e->value.value.u8;
        case AMQP_FIELD_KIND_I16: return e->value.value.i16 > 0 ? (unsigned)e->value.value.i16 : 0;
        case AMQP_FIELD_KIND_U16: return e->value.value.u16;
        case AMQP_FIELD_KIND_I32: return e->value.value.i32 > 0 ? (unsigned)e->value.value.i32 : 0;
        case AMQP_FIELD_KIND_U32: return e->value.value.u32;
        case AMQP_FIELD_KIND_I64: return e->value.value.i64 > 0 ? (unsigned)e->value.value.i64 : 0;
        case AMQP_FIELD_KIND_U64: return (unsigned)e->value.value.u64;
        default: return 0;
        }
    }
    return 0;
}

static int bytes_are(amqp_bytes_t b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.bytes, s, b.len) == 0;
}

/* Decodes lymph's message into type (or the routing key), headers, body and source. */
static int decode_event(const amqp_message_t *m, amqp_bytes_t key, char *type, size_t typelen, json_t **headers,
                        json_t **body, char *source, size_t sourcelen, char *why, size_t whylen)
{
    amqp_bytes_t ct = (m->properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) ? m->properties.content_type
                                                                          : amqp_empty_bytes;
    json_t *doc = NULL;
    if (bytes_are(ct, CONTENT_MSGPACK)) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        if (msgpack_unpack_next(&u, m->body.bytes, m->body.len, &off) == MSGPACK_UNPACK_SUCCESS)
            doc = msgjson_to_json(&u.data);
        msgpack_unpacked_destroy(&u);
    } else if (bytes_are(ct, CONTENT_JSON) || bytes_are(ct, "application/json")) {
        doc = json_loadb(m->body.bytes, m->body.len, JSON_DECODE_ANY, NULL);
    } else {
        snprintf(why, whylen, "content type '%.*s' is not lymph's (%s)", (int)ct.len, (const char *)ct.bytes,
                 CONTENT_MSGPACK);
        return -1;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        snprintf(why, whylen, "the body is not a {type, headers, body, source} map");
        return -1;
    }
    const char *t = json_string_value(json_object_get(doc, "type"));
    if (t)
        snprintf(type, typelen, "%s", t);
    else
        snprintf(type, typelen, "%.*s", (int)key.len, (const char *)key.bytes);
    const char *s = json_string_value(json_object_get(doc, "source"));
    snprintf(source, sourcelen, "%s", s ? s : "");
    json_t *h = json_object_get(doc, "headers");
    *headers = json_is_object(h) ? json_incref(h) : json_object();
    json_t *b = json_object_get(doc, "body");
    *body = b ? json_incref(b) : json_null();
    json_decref(doc);
    return 0;
}

/* One delivery: decode, hand to fn, then ack (coalesced) or retry through lymph_retry. */
static void con_deliver(struct amqpev *a, const amqp_basic_deliver_t *d, const amqp_message_t *m,
                        amqpev_handler_fn fn, void *ctx)
{
    uint64_t tag = d->delivery_tag;
    int redelivered = d->redelivered;
    const struct sub *s = sub_of_ctag(a, d->consumer_tag);
    char type[256], source[256], why[300], queue[AMQPEV_QUEUE_MAX + 1];
    json_t *headers = NULL, *body = NULL;
    a->stats.delivered++;
    if (!s) {
        amqp_basic_reject(a->con, CHANNEL, tag, 1); /* not ours: back to the queue */
        return;
    }
    snprintf(queue, sizeof queue, "%s", s->name);
    int tag_index = s->tag;
    if (decode_event(m, d->routing_key, type, sizeof type, &headers, &body, source, sizeof source, why,
                     sizeof why) < 0) {
        /* It can never be handled: a retry would loop it. Dropped, and said. */
        a->stats.malformed++;
        warnf(a, "dropped a message of queue %s (routing key %.*s): %s", queue, (int)d->routing_key.len,
              (const char *)d->routing_key.bytes, why);
        con_settle(a);
        if (a->con)
            amqp_basic_reject(a->con, CHANNEL, tag, 0);
        return;
    }
    unsigned retries = retry_count_of(&m->properties);
    struct amqpev_delivery ev = {
        .tag = tag_index,
        .queue = queue,
        .type = type,
        .body = body,
        .headers = headers,
        .source = source,
        .delivery_tag = tag,
        .redelivered = redelivered || retries > 0,
        .retry_count = retries,
    };
    amqp_connection_state_t con = a->con;
    int rc = fn(ctx, &ev);
    json_decref(body);
    json_decref(headers);
    if (a->con != con)
        return; /* the handler's own calls lost the connection: the broker redelivers */
    if (rc == 0) {
        a->ack_upto = tag;
        a->ack_needs_seq = a->next_seq - 1;
        return;
    }
    /* Given back: published again through lymph_retry to this queue (another instance may take
     * it), confirmed before the reject, so it is never lost between the two. */
    con_settle(a);
    if (!a->con)
        return;
    amqp_bytes_t ct = (m->properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) ? m->properties.content_type
                                                                          : amqp_cstring_bytes(CONTENT_MSGPACK);
    char ctype[128];
    snprintf(ctype, sizeof ctype, "%.*s", (int)ct.len, (const char *)ct.bytes);
    char err[300];
    int prc = pub_send(a, EXCHANGE_RETRY, queue, ctype, (int)(retries + 1 > 1000000 ? 1000000 : retries + 1),
                       m->body, type, 1, a->timeout_ms, err, sizeof err);
    if (!a->con)
        return;
    if (prc == 0) {
        a->stats.retried++;
        amqp_basic_reject(a->con, CHANNEL, tag, 0);
    } else {
        warnf(a, "could not give event %s back through %s (%s): the broker requeues it", type, EXCHANGE_RETRY, err);
        amqp_basic_reject(a->con, CHANNEL, tag, 1);
    }
}

int amqpev_process(struct amqpev *a, amqpev_handler_fn fn, void *ctx, int budget)
{
    /* The publisher's socket is in the caller's poll set: whatever makes it readable (a
     * confirm, the broker closing the connection) is read here, or the loop would spin on it. */
    if (a->pub && (amqp_frames_enqueued(a->pub) || amqp_data_in_buffer(a->pub) || pub_unconfirmed(a) ||
                   fd_readable(conn_fd(a->pub))))
        pub_pump(a, 0);
    beat(a);
    if (!a->con && a->sub_count && now_ms() >= a->con_retry_ms) {
        char err[300];
        if (con_open(a, err, sizeof err) < 0)
            warnf(a, "cannot subscribe again: %s (retrying in %d ms)", err, RECONNECT_MS);
        else
            warnf(a, "subscribed again to %s", a->shown);
    }
    int handled = 0;
    while (a->con && handled < budget) {
        struct timeval look = wait_tv(0);
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(a->con, &f, &look);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK) {
            char why[80];
            con_lost(a, wait_error(a, rc, why, sizeof why));
            break;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_DELIVER_METHOD) {
            /* The frame lives in the connection's pool, which reading the message may reuse. */
            amqp_basic_deliver_t d = *(const amqp_basic_deliver_t *)f.payload.method.decoded;
            char ctag[64], key[256];
            snprintf(ctag, sizeof ctag, "%.*s", (int)d.consumer_tag.len, (const char *)d.consumer_tag.bytes);
            snprintf(key, sizeof key, "%.*s", (int)d.routing_key.len, (const char *)d.routing_key.bytes);
            d.consumer_tag = amqp_cstring_bytes(ctag);
            d.routing_key = amqp_cstring_bytes(key);
            amqp_message_t m;
            amqp_rpc_reply_t r = amqp_read_message(a->con, f.channel, &m, 0);
            if (r.reply_type != AMQP_RESPONSE_NORMAL) {
                char why[300];
                reply_error(r, why, sizeof why);
                con_lost(a, why);
                break;
            }
            con_deliver(a, &d, &m, fn, ctx);
            amqp_destroy_message(&m);
            handled++;
        } else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                   f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
            char why[300];
            amqp_rpc_reply_t r = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = f.payload.method};
            reply_error(r, why, sizeof why);
            con_lost(a, why);
        } else if (f.payload.method.id == AMQP_BASIC_CANCEL_METHOD) {
            con_lost(a, "the broker cancelled a subscription: its queue was deleted");
        }
    }
    con_settle(a);
    if (a->con && !amqp_frames_enqueued(a->con))
        amqp_maybe_release_buffers(a->con);
    if (a->pub && !amqp_frames_enqueued(a->pub))
        amqp_maybe_release_buffers(a->pub);
    return handled;
}

int amqpev_ready(struct amqpev *a)
{
    if (a->pub && (amqp_frames_enqueued(a->pub) || amqp_data_in_buffer(a->pub)))
        return 1;
    if (a->con && (amqp_frames_enqueued(a->con) || amqp_data_in_buffer(a->con)))
        return 1;
    return !a->con && a->sub_count && now_ms() >= a->con_retry_ms;
}

unsigned amqpev_fds(struct amqpev *a, int fds[2])
{
    fds[0] = conn_fd(a->pub);
    fds[1] = conn_fd(a->con);
    return a->opened;
}

int amqpev_timeout_ms(struct amqpev *a)
{
    long long due = -1;
    if (!a->con && a->sub_count)
        due = a->con_retry_ms;
    if (a->heartbeat_s && (a->pub || a->con) && (due < 0 || a->beat_ms < due))
        due = a->beat_ms;
    if (due < 0)
        return -1;
    long long left = due - now_ms();
    return left > 0 ? (int)left : 0;
}

void amqpev_unsubscribe_all(struct amqpev *a)
{
    con_settle(a);
    if (a->con) {
        amqp_channel_close(a->con, CHANNEL, AMQP_REPLY_SUCCESS);
        amqp_connection_close(a->con, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(a->con);
        a->con = NULL;
    }
    for (size_t i = 0; i < a->sub_count; i++)
        sub_free(&a->subs[i]);
    free(a->subs);
    a->subs = NULL;
    a->sub_count = 0;
    a->ack_upto = 0;
}

void amqpev_get_stats(const struct amqpev *a, struct amqpev_stats *out)
{
    *out = a->stats;
}

/* "amqp://user:***@host…": the URL as errors may show it. */
static void redact(const char *url, char *out, size_t len)
{
    snprintf(out, len, "%s", url);
    char *start = strstr(out, "://");
    char *at = start ? strchr(start + 3, '@') : NULL;
    char *colon = at ? memchr(start + 3, ':', (size_t)(at - start - 3)) : NULL;
    if (colon) {
        char rest[300];
        snprintf(rest, sizeof rest, "%s", at);
        snprintf(colon, len - (size_t)(colon - out), ":***%s", rest);
    }
}

struct amqpev *amqpev_open(const char *url, const char *source, int timeout_ms, int heartbeat_s, amqpev_warn_fn warn,
                           void *ctx, char *err, size_t errlen)
{
    struct amqpev *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    redact(url, a->shown, sizeof a->shown);
    a->urlbuf = strdup(url);
    a->source = strdup(source ? source : "");
    a->state = calloc(AMQPEV_WINDOW, 1);
    a->types = calloc(AMQPEV_WINDOW, sizeof *a->types);
    msgpack_sbuffer_init(&a->sbuf);
    if (!a->urlbuf || !a->source || !a->state || !a->types) {
        snprintf(err, errlen, "out of memory");
        amqpev_close(a);
        return NULL;
    }
    a->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    a->heartbeat_s = heartbeat_s > 0 ? heartbeat_s : 0;
    a->warn = warn;
    a->warn_ctx = ctx;
    a->next_seq = a->low = 1;
    amqp_default_connection_info(&a->info);
    if (strncmp(url, "amqp://", 7) != 0 || amqp_parse_url(a->urlbuf, &a->info) != AMQP_STATUS_OK) {
        snprintf(err, errlen, "%s: not an AMQP URL (want amqp://user:pass@host:5672/vhost, the vhost "
                 "percent-encoded: %%2F for /)", strncmp(url, "amqps://", 8) == 0 ? "amqps:// (TLS) is not supported" :
                 a->shown);
        amqpev_close(a);
        return NULL;
    }
    if (!*a->info.host) {
        snprintf(err, errlen, "%s: the URL names no host", a->shown);
        amqpev_close(a);
        return NULL;
    }
    if (!(a->pub = conn_open(a, 1, err, errlen))) {
        amqpev_close(a);
        return NULL;
    }
    a->beat_ms = now_ms() + beat_interval_ms(a);
    return a;
}

void amqpev_close(struct amqpev *a)
{
    if (!a)
        return;
    amqpev_unsubscribe_all(a);
    if (a->pub) {
        amqp_channel_close(a->pub, CHANNEL, AMQP_REPLY_SUCCESS);
        amqp_connection_close(a->pub, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(a->pub);
    }
    for (size_t i = 0; i < a->waitq_count; i++)
        free(a->waitq[i]);
    msgpack_sbuffer_destroy(&a->sbuf);
    free(a->types);
    free(a->state);
    free(a->source);
    free(a->urlbuf);
    free(a);
}
