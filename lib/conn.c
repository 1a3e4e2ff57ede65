/* conn.c: the service's connection to its node: reading the environment, the DEALER to the
 * node, request/reply by id with events queued meanwhile, heartbeats, and teardown.
 * It must never wait on the node without a deadline, nor free what a handler still holds. */
#include "lib/conn.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/nodeconn.h"

long long dn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long dn_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int dn_fail(struct devnode *dn, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dn->last_error, sizeof dn->last_error, fmt, ap);
    va_end(ap);
    return code;
}

const char *devnode_last_error(const struct devnode *dn)
{
    return dn->last_error;
}

const char *devnode_service(const struct devnode *dn)
{
    return dn->service;
}

int devnode_instance(const struct devnode *dn)
{
    return dn->instance;
}

const char *devnode_endpoint(const struct devnode *dn)
{
    return dn->rpc_endpoint;
}

static int valid_service_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DN_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* The connection both ways of connecting share: validated names in, a devnode with its node
 * DEALER (none when node_endpoint is NULL) out. */
static struct devnode *dn_open(const char *endpoint, const char *service, int index, const char *run_dir,
                               char *err, size_t errlen)
{
    if (!valid_service_name(service)) {
        snprintf(err, errlen, "service name '%s': want 1-%d letters, digits, '_' or '-'", service, DN_NAME_MAX);
        return NULL;
    }
    if ((endpoint && strlen(endpoint) >= sizeof ((struct devnode *)0)->node_endpoint) ||
        (run_dir && strlen(run_dir) >= sizeof ((struct devnode *)0)->run_dir)) {
        snprintf(err, errlen, "the node endpoint or the run dir is too long");
        return NULL;
    }
    struct devnode *dn = calloc(1, sizeof *dn);
    if (!dn) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (dn_backends_read(dn, err, errlen) < 0) {
        free(dn);
        return NULL;
    }
    dn->epfd = -1;
    dn->instance = index;
    dn->pid = getpid();
    snprintf(dn->service, sizeof dn->service, "%s", service);
    snprintf(dn->node_endpoint, sizeof dn->node_endpoint, "%s", endpoint ? endpoint : "");
    snprintf(dn->run_dir, sizeof dn->run_dir, "%s", run_dir ? run_dir : "");
    wire_body_init(&dn->out);
    wire_body_init(&dn->out_headers);
    wire_body_init(&dn->emitq.buf);
    dn_emitq_clear(dn);
    dn->emitq.linger_us = DN_EMIT_LINGER_US;
    dn->next_request_id = 1;

    /* Call ids are a per-process random prefix plus a counter: unique without a syscall each. */
    unsigned char rnd[4];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        unsigned v = (unsigned)dn->pid ^ (unsigned)dn_now_ms();
        memcpy(rnd, &v, sizeof rnd);
    }
    snprintf(dn->call_prefix, sizeof dn->call_prefix, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);

    dn->zctx = zmq_ctx_new();
    if (!dn->zctx) {
        snprintf(err, errlen, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
        dn_conn_close(dn);
        free(dn);
        return NULL;
    }
    /* Not blocky: devnode_close must never hang in zmq_ctx_term on a message nobody reads. */
    zmq_ctx_set(dn->zctx, ZMQ_BLOCKY, 0);
    if (endpoint && !(dn->node = nodeconn_open(dn->zctx, dn->node_endpoint, NODECONN_FAREWELL, err, errlen))) {
        dn_conn_close(dn);
        free(dn);
        return NULL;
    }
    return dn;
}

struct devnode *devnode_connect(char *err, size_t errlen)
{
    const char *endpoint = getenv("DEVNODE_ENDPOINT");
    const char *service = getenv("DEVNODE_SERVICE");
    const char *instance = getenv("DEVNODE_INSTANCE");
    const char *run_dir = getenv("DEVNODE_RUN_DIR");
    if (!endpoint || !*endpoint) {
        snprintf(err, errlen, "not started by devnode: DEVNODE_ENDPOINT is not set");
        return NULL;
    }
    if (!service || !*service) {
        snprintf(err, errlen, "not started by devnode: DEVNODE_SERVICE is not set");
        return NULL;
    }
    if (!valid_service_name(service)) {
        snprintf(err, errlen, "DEVNODE_SERVICE=%s: want 1-%d letters, digits, '_' or '-'", service,
                 DN_NAME_MAX);
        return NULL;
    }
    int index = -1;
    if (instance && *instance) {
        char *end;
        long v = strtol(instance, &end, 10);
        if (*end || v < -1 || v > 1000000) {
            snprintf(err, errlen, "DEVNODE_INSTANCE=%s: want an instance index", instance);
            return NULL;
        }
        index = (int)v;
    }
    return dn_open(endpoint, service, index, run_dir, err, errlen);
}

struct devnode *devnode_open(const char *node_endpoint, const char *name, char *err, size_t errlen)
{
    if (node_endpoint && !*node_endpoint) {
        snprintf(err, errlen, "no node endpoint given");
        return NULL;
    }
    struct devnode *dn = dn_open(node_endpoint, name ? name : "client", -1, NULL, err, errlen);
    if (dn)
        dn->client = 1;
    return dn;
}

void dn_queued_free(struct dn_queued *q)
{
    if (!q)
        return;
    wire_msg_free(&q->msg);
    free(q);
}

/* The connection's part of teardown, once everything above has closed its sockets: the node
 * socket, then the ZeroMQ context they all lived in. */
void dn_conn_close(struct devnode *dn)
{
    while (dn->queue_head) {
        struct dn_queued *q = dn->queue_head;
        dn->queue_head = q->next;
        dn_queued_free(q);
    }
    free(dn->spare);
    if (dn->monitor) {
        zmq_socket_monitor(dn->node, NULL, 0);
        zmq_close(dn->monitor);
    }
    if (dn->node)
        zmq_close(dn->node);
    if (dn->zctx)
        zmq_ctx_term(dn->zctx);
    wire_body_free(&dn->out);
    wire_body_free(&dn->out_headers);
    wire_body_free(&dn->emitq.buf);
}

uint64_t dn_next_request_id(struct devnode *dn)
{
    return dn->next_request_id++;
}

int dn_node_send(struct devnode *dn, const char *type, const struct wire_body *b)
{
    if (!dn->node)
        return -1;
    /* The DEALER queues while the node is (re)connecting; DONTWAIT only fails when 100k
     * messages are stuck, and then dropping a heartbeat or ack is the right call. */
    return wire_send(dn->node, NULL, 0, type, b->sbuf.data, b->sbuf.size, ZMQ_DONTWAIT);
}

int dn_is_delivery(const struct dn_queued *q)
{
    return strcmp(q->msg.type, PROTO_EVENT) == 0 || strcmp(q->msg.type, PROTO_EVENTS) == 0;
}

struct dn_queued *dn_node_recv(struct devnode *dn)
{
    if (!dn->node)
        return NULL;
    for (;;) {
        struct dn_queued *q = dn->spare;
        dn->spare = NULL;
        if (!q && !(q = calloc(1, sizeof *q)))
            return NULL;
        char why[160];
        enum wire_recv_result r = wire_recv(dn->node, 0, &q->msg, why, sizeof why);
        if (r == WIRE_OK) {
            q->next = NULL;
            return q;
        }
        if (r == WIRE_OTHER_VERSION) {
            char line[300];
            proto_version_mismatch(line, sizeof line, q->msg.version, WIRE_VERSION, "libdevnode");
            wire_msg_free(&q->msg);
            dn->spare = q;
            dn->malformed++;
            dn_warn(dn, DEVNODE_WARNING, "dropped a message from the node: %s", line);
            continue;
        }
        dn->spare = q; /* nothing decoded: q holds nothing that needs freeing */
        if (r == WIRE_MALFORMED) {
            dn->malformed++;
            dn_warn(dn, DEVNODE_WARNING, "dropped a malformed message from the node: %s", why);
            continue;
        }
        return NULL;
    }
}

/* A client's subscriptions are kept alive by heartbeats too, as a service's are. */
static int dn_client_subscribed(const struct devnode *dn)
{
    for (size_t i = 0; dn->client && i < dn->sub_count; i++)
        if (dn->subs[i].active)
            return 1;
    return 0;
}

long long dn_heartbeat_due_ms(const struct devnode *dn)
{
    if (!dn->started && !dn_client_subscribed(dn))
        return -1;
    long long left = dn->next_heartbeat_ms - dn_now_ms();
    return left > 0 ? left : 0;
}

void dn_maybe_heartbeat(struct devnode *dn)
{
    if (!dn->started && !dn_client_subscribed(dn))
        return;
    long long now = dn_now_ms();
    if (now < dn->next_heartbeat_ms)
        return;
    long long gap_ms = now - (dn->next_heartbeat_ms - PROTO_HEARTBEAT_MS);
    dn->next_heartbeat_ms = now + PROTO_HEARTBEAT_MS; /* first: the register below waits in here */
    struct wire_body b;
    wire_body_init(&b);
    proto_pack_heartbeat(&b.pk, (int64_t)dn_next_request_id(dn), dn->pid);
    dn_node_send(dn, PROTO_HEARTBEAT, &b);
    wire_body_free(&b);
    /* A handler that ran longer than the registry's 3 s heartbeat timeout got us dropped, and a
     * heartbeat does not bring an entry back: register again, from devnode_process, since a
     * request from in here would swallow the reply an outer wait is waiting for. */
    if (dn->registered && gap_ms > DN_REREGISTER_GAP_MS) {
        dn_warn(dn, DEVNODE_WARNING, "%s.%d sent no heartbeat for %.1fs (a handler ran long); registering again",
                dn->service, dn->instance, (double)gap_ms / 1000.0);
        dn->reregister_due = 1;
    }
}

void dn_enqueue(struct devnode *dn, struct dn_queued *q)
{
    q->next = NULL;
    if (dn->queue_tail)
        dn->queue_tail->next = q;
    else
        dn->queue_head = q;
    dn->queue_tail = q;
}

/* Takes one message that is not the reply being waited for: events wait for devnode_process,
 * in order; anything else is a reply nobody waits for. */
static void dn_take_meanwhile(struct devnode *dn, struct dn_queued *q)
{
    if (dn_is_delivery(q))
        dn_enqueue(dn, q);
    else
        dn_unasked_reply(dn, q);
}

/* Whether the node looks gone: the DEALER has been failing to (re)connect for DN_NODE_GONE_MS.
 * A queue that stays full to a live node is a slow node, not a gone one; only the monitor
 * tells them apart. It is made the first time it is needed: a connection that is down then
 * says so with a retry every 100 ms. */
static int dn_node_gone(struct devnode *dn)
{
    if (!dn->monitor) {
        char addr[64];
        snprintf(addr, sizeof addr, "inproc://devnode-monitor-%p", (void *)dn);
        if (zmq_socket_monitor(dn->node, addr,
                               ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                                   ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_CONNECT_DELAYED) < 0 ||
            !(dn->monitor = zmq_socket(dn->zctx, ZMQ_PAIR)))
            return 0;
        int zero = 0;
        zmq_setsockopt(dn->monitor, ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_connect(dn->monitor, addr) < 0) {
            zmq_close(dn->monitor);
            dn->monitor = NULL;
            return 0;
        }
    }
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, dn->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&m) >= sizeof event)
            memcpy(&event, zmq_msg_data(&m), sizeof event);
        int more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, dn->monitor, 0) < 0)
                more = 0;
            else
                more = zmq_msg_more(&m);
            zmq_msg_close(&m);
        }
        if (event == ZMQ_EVENT_CONNECTED || event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            dn->unconnected_since_ms = 0;
        else if (!dn->unconnected_since_ms)
            dn->unconnected_since_ms = dn_now_ms();
    }
    return dn->unconnected_since_ms && dn_now_ms() - dn->unconnected_since_ms >= DN_NODE_GONE_MS;
}

/* Sends one message, waiting up to timeout_ms for room when the queue to the node is full. */
static int dn_node_send_bytes_room(struct devnode *dn, const char *type, const char *data, size_t len,
                                   int timeout_ms)
{
    long long deadline_ms = dn_now_ms() + timeout_ms;
    if (!dn->node)
        return dn_fail(dn, DEVNODE_E_NODE, "'%s' needs a node: opened without one", type);
    for (;;) {
        if (wire_send(dn->node, NULL, 0, type, data, len, ZMQ_DONTWAIT) == 0)
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return dn_fail(dn, DEVNODE_E_NODE, "cannot send '%s' to the node: %s", type, zmq_strerror(errno));
        /* The queue to the node is full: wait for room as a write to a full pipe would, reading
         * what the node sends meanwhile (its answers to our emits would otherwise pile up). */
        struct dn_queued *q;
        while ((q = dn_node_recv(dn)))
            dn_take_meanwhile(dn, q);
        if (dn_node_gone(dn))
            return dn_fail(dn, DEVNODE_E_NODE, "cannot send '%s': the node is gone (no connection to %s for %d ms)",
                           type, dn->node_endpoint, DN_NODE_GONE_MS);
        long long now = dn_now_ms();
        if (now >= deadline_ms)
            return dn_fail(dn, DEVNODE_E_TIMEOUT,
                           "cannot send '%s': the queue to the node stayed full for %d ms (is the node stuck?)",
                           type, timeout_ms);
        zmq_pollitem_t item = {.socket = dn->node, .events = ZMQ_POLLIN | ZMQ_POLLOUT};
        long long wait = deadline_ms - now;
        if (wait > 100)
            wait = 100; /* the monitor is read between polls */
        if (zmq_poll(&item, 1, (long)wait) < 0 && errno != EINTR)
            return dn_fail(dn, DEVNODE_E_NODE, "poll failed: %s", zmq_strerror(errno));
        if (item.revents & ZMQ_POLLOUT)
            dn_maybe_heartbeat(dn); /* room that opens takes a due heartbeat first: the registry waits 3 s */
    }
}

int dn_node_send_room(struct devnode *dn, const char *type, const struct wire_body *b, int timeout_ms)
{
    return dn_node_send_bytes_room(dn, type, b->sbuf.data, b->sbuf.size, timeout_ms);
}

/* ---- the no-wait events' queue --------------------------------------------------------- */

void dn_emitq_clear(struct devnode *dn)
{
    static const char room[DN_EMIT_HEAD_ROOM];
    msgpack_sbuffer_clear(&dn->emitq.buf.sbuf);
    msgpack_sbuffer_write(&dn->emitq.buf.sbuf, room, sizeof room);
    dn->emitq.count = 0;
}

/* A packer target of fixed size, for the quiet emit's head (never more than ~170 bytes). */
struct dn_head_buf {
    char data[DN_EMIT_HEAD_ROOM];
    size_t size;
};

static int dn_head_write(void *data, const char *buf, size_t len)
{
    struct dn_head_buf *h = data;
    if (len > sizeof h->data - h->size)
        return -1;
    memcpy(h->data + h->size, buf, len);
    h->size += len;
    return 0;
}

int dn_emitq_send_first(struct devnode *dn, size_t count, size_t end, int timeout_ms)
{
    struct dn_emit_queue *eq = &dn->emitq;
    if (count == 0)
        return 0;
    /* The head goes into the room kept before the items, right against them: the items are
     * never copied (ZeroMQ copies the message once, as for every send). */
    struct dn_head_buf head = {.size = 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &head, dn_head_write);
    uint64_t id = (dn_next_request_id(dn) & DN_QUIET_SEQ_MASK) | DN_UNWAITED_ID |
                  ((uint64_t)count << DN_QUIET_COUNT_SHIFT);
    proto_pack_emit_batch_head(&pk, (int64_t)id, dn->service, 1, count);
    char *start = eq->buf.sbuf.data + DN_EMIT_HEAD_ROOM - head.size;
    memcpy(start, head.data, head.size);
    int rc = dn_node_send_bytes_room(dn, PROTO_EMIT, start, end - (DN_EMIT_HEAD_ROOM - head.size), timeout_ms);
    if (rc < 0)
        return rc; /* still queued: sent by a later flush, or counted as lost by close */
    dn->emit_sent += count;
    size_t rest = eq->buf.sbuf.size - end;
    memmove(eq->buf.sbuf.data + DN_EMIT_HEAD_ROOM, eq->buf.sbuf.data + end, rest);
    eq->buf.sbuf.size = DN_EMIT_HEAD_ROOM + rest;
    eq->count -= count;
    if (eq->count)
        eq->first_us = dn_now_us(); /* the one left waits its own linger */
    return 0;
}

int dn_emitq_send(struct devnode *dn, int timeout_ms)
{
    return dn_emitq_send_first(dn, dn->emitq.count, dn->emitq.buf.sbuf.size, timeout_ms);
}

/* The node has every no-wait event up to `sent` (a reply to a message sent after them). */
static void dn_emit_confirm(struct devnode *dn, uint64_t sent)
{
    if (sent > dn->emit_confirmed)
        dn->emit_confirmed = sent;
}

int dn_emit_window(struct devnode *dn, int timeout_ms)
{
    if (dn->emit_sent - dn->emit_confirmed < DN_EMIT_WINDOW / 2)
        return 0;
    /* Half the window unconfirmed: a ping, whose reply (after theirs) confirms them. A node
     * that sends no `ok` for quiet emits would otherwise never say it has them. */
    if (!dn->ping_id) {
        struct wire_body b;
        wire_body_init(&b);
        uint64_t id = (dn_next_request_id(dn) & DN_QUIET_SEQ_MASK) | DN_UNWAITED_ID;
        proto_pack_request_id(&b.pk, (int64_t)id);
        int rc = dn_node_send_room(dn, PROTO_PING, &b, timeout_ms);
        wire_body_free(&b);
        if (rc < 0)
            return rc;
        dn->ping_id = id;
        dn->ping_covers = dn->emit_sent;
    }
    /* A full window waits, as a write to a full pipe does, reading what the node sends. */
    long long deadline_ms = dn_now_ms() + timeout_ms;
    while (dn->emit_sent - dn->emit_confirmed >= DN_EMIT_WINDOW) {
        struct dn_queued *q;
        while ((q = dn_node_recv(dn)))
            dn_take_meanwhile(dn, q);
        if (dn->emit_sent - dn->emit_confirmed < DN_EMIT_WINDOW)
            break;
        if (dn_node_gone(dn))
            return dn_fail(dn, DEVNODE_E_NODE, "the node is gone (no connection to %s for %d ms)", dn->node_endpoint,
                           DN_NODE_GONE_MS);
        long long now = dn_now_ms();
        if (now >= deadline_ms)
            return dn_fail(dn, DEVNODE_E_TIMEOUT,
                           "the node confirmed none of the last %d events for %d ms (is the node stuck?)",
                           DN_EMIT_WINDOW, timeout_ms);
        dn_maybe_heartbeat(dn);
        zmq_pollitem_t item = {.socket = dn->node, .events = ZMQ_POLLIN};
        long long wait = deadline_ms - now;
        if (wait > 100)
            wait = 100; /* the monitor is read between polls */
        if (zmq_poll(&item, 1, (long)wait) < 0 && errno != EINTR)
            return dn_fail(dn, DEVNODE_E_NODE, "poll failed: %s", zmq_strerror(errno));
    }
    return 0;
}

int dn_node_wait(struct devnode *dn, const char *type, uint64_t id, long long deadline_ms,
                 struct dn_queued **reply)
{
    for (;;) {
        struct dn_queued *q = dn_node_recv(dn);
        if (q) {
            int64_t rid;
            if (wire_get_int(q->msg.body, "id", &rid) == 0 && (uint64_t)rid == id) {
                if (strcmp(q->msg.type, PROTO_ERROR) == 0) {
                    char message[200];
                    proto_unpack_error(q->msg.body, message, sizeof message);
                    dn_queued_free(q);
                    return dn_fail(dn, DEVNODE_E_NODE, "the node refused '%s': %s", type, message);
                }
                if (reply)
                    *reply = q;
                else
                    dn_queued_free(q);
                return 0;
            }
            dn_take_meanwhile(dn, q); /* events are handled by devnode_process, in order */
            continue;
        }
        long long now = dn_now_ms();
        if (now >= deadline_ms)
            return dn_fail(dn, DEVNODE_E_NODE, "the node did not answer '%s' in time", type);
        int rc = dn_node_poll_until(dn, now, deadline_ms);
        if (rc < 0)
            return rc;
    }
}

int dn_node_poll_until(struct devnode *dn, long long now_ms, long long until_ms)
{
    dn_maybe_heartbeat(dn);
    long long wait = until_ms - now_ms;
    if (dn->started && dn->next_heartbeat_ms - now_ms < wait)
        wait = dn->next_heartbeat_ms - now_ms;
    zmq_pollitem_t item = {.socket = dn->node, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, wait > 0 ? (long)wait : 0) < 0 && errno != EINTR)
        return dn_fail(dn, DEVNODE_E_NODE, "poll failed: %s", zmq_strerror(errno));
    return 0;
}

int dn_node_request(struct devnode *dn, const char *type, const struct wire_body *b, uint64_t id,
                    int timeout_ms, struct dn_queued **reply)
{
    if (reply)
        *reply = NULL;
    if (!dn->node)
        return dn_fail(dn, DEVNODE_E_NODE, "'%s' needs a node: opened without one", type);
    long long deadline_ms = dn_now_ms() + timeout_ms;
    /* Queued no-wait events go first: the node gets a connection's messages in order. */
    int rc = dn_emitq_send(dn, timeout_ms);
    /* The node answers one connection in order: a reply confirms every no-wait emit sent before. */
    uint64_t sent = dn->emit_sent;
    if (rc == 0)
        rc = dn_node_send_room(dn, type, b, timeout_ms);
    if (rc == DEVNODE_E_TIMEOUT)
        rc = DEVNODE_E_NODE; /* our callers document DEVNODE_E_NODE for a node that does not answer */
    if (rc == 0)
        rc = dn_node_wait(dn, type, id, deadline_ms, reply);
    if (rc == 0)
        dn_emit_confirm(dn, sent);
    return rc;
}

/* Sends the queue and a ping and waits for the ping's reply (or a node gone for 2 s). */
static int dn_node_confirm_all(struct devnode *dn, int timeout_ms)
{
    long long deadline_ms = dn_now_ms() + timeout_ms;
    int rc = dn_emitq_send(dn, timeout_ms);
    if (rc < 0)
        return rc;
    uint64_t sent = dn->emit_sent;
    struct wire_body b;
    wire_body_init(&b);
    uint64_t id = dn_next_request_id(dn);
    proto_pack_request_id(&b.pk, (int64_t)id);
    rc = dn_node_send_room(dn, PROTO_PING, &b, timeout_ms);
    wire_body_free(&b);
    while (rc == 0) {
        struct dn_queued *q;
        while ((q = dn_node_recv(dn))) {
            int64_t rid;
            if (wire_get_int(q->msg.body, "id", &rid) == 0 && (uint64_t)rid == id) {
                dn_queued_free(q);
                dn_emit_confirm(dn, sent);
                return 0;
            }
            dn_take_meanwhile(dn, q); /* refusals come before the reply: they are counted here */
        }
        if (dn_node_gone(dn))
            return dn_fail(dn, DEVNODE_E_NODE, "the node is gone (no connection to %s for %d ms)", dn->node_endpoint,
                           DN_NODE_GONE_MS);
        long long now = dn_now_ms();
        if (now >= deadline_ms)
            return dn_fail(dn, DEVNODE_E_TIMEOUT, "the node did not answer in time");
        dn_maybe_heartbeat(dn);
        zmq_pollitem_t item = {.socket = dn->node, .events = ZMQ_POLLIN};
        long long wait = deadline_ms - now;
        if (wait > 100)
            wait = 100; /* the monitor is read between polls */
        if (zmq_poll(&item, 1, (long)wait) < 0 && errno != EINTR)
            rc = dn_fail(dn, DEVNODE_E_NODE, "poll failed: %s", zmq_strerror(errno));
    }
    return rc;
}

int dn_node_flush(struct devnode *dn, int timeout_ms)
{
    if (dn->node && (dn->emitq.count || dn->emit_sent != dn->emit_confirmed)) {
        if (dn_node_confirm_all(dn, timeout_ms) < 0) {
            uint64_t missing = dn->emitq.count + (dn->emit_sent - dn->emit_confirmed);
            dn_warn(dn, DEVNODE_WARNING,
                    "%llu event(s) emitted without waiting were not confirmed by the node within %d ms: %s",
                    (unsigned long long)missing, timeout_ms, dn->last_error);
            dn_fail(dn, DEVNODE_E_NODE, "%llu event(s) emitted without waiting were not confirmed by the node",
                    (unsigned long long)missing);
            dn->emit_lost += missing;
        }
    } else if (dn->emitq.count) {
        dn->emit_lost += dn->emitq.count; /* no node: devnode_emit_nowait refused them already */
    }
    /* Said once: what is lost now is not counted again by a later stop or close. */
    dn_emitq_clear(dn);
    dn->emit_confirmed = dn->emit_sent;
    dn->ping_id = 0;
    uint64_t lost = dn->emit_lost;
    dn->emit_lost = 0;
    return lost > INT_MAX ? INT_MAX : (int)lost;
}

/* The node's emit_refused for a quiet emit: one warning per refused event, naming it. */
static void dn_emit_refused(struct devnode *dn, const struct dn_queued *q)
{
    int64_t events;
    const msgpack_object *refused;
    if (proto_unpack_emit_refused(q->msg.body, &events, &refused) < 0) {
        dn->malformed++;
        dn_warn(dn, DEVNODE_WARNING, "dropped a malformed emit_refused from the node");
        return;
    }
    for (uint32_t i = 0; i < refused->via.array.size; i++) {
        int64_t index;
        char type[PROTO_NAME_MAX + 1], message[300];
        if (proto_unpack_emit_refusal(&refused->via.array.ptr[i], &index, type, sizeof type, message,
                                      sizeof message) < 0) {
            dn->malformed++;
            continue;
        }
        dn->emit_lost++;
        dn_warn(dn, DEVNODE_WARNING, "the node refused event %lld of %lld emitted without waiting (%s): %s",
                (long long)index + 1, (long long)events, type[0] ? type : "?", message);
    }
}

void dn_unasked_reply(struct devnode *dn, struct dn_queued *q)
{
    int64_t sid;
    if (wire_get_int(q->msg.body, "id", &sid) < 0 || !((uint64_t)sid & DN_UNWAITED_ID)) {
        dn_queued_free(q);
        return;
    }
    uint64_t id = (uint64_t)sid;
    if (id == dn->ping_id) {
        dn->ping_id = 0;
        dn_emit_confirm(dn, dn->ping_covers);
    }
    if (strcmp(q->msg.type, PROTO_EMIT_REFUSED) == 0) {
        dn_emit_refused(dn, q);
    } else if (strcmp(q->msg.type, PROTO_ERROR) == 0) {
        /* A quiet emit refused whole: malformed, or a node from before issue 17, which refuses a
         * batch at its first bad event. No caller waits for this answer: say it where the
         * service's log goes, and count every event of it. */
        uint64_t count = (id >> DN_QUIET_COUNT_SHIFT) & 0x3ff;
        char message[300];
        proto_unpack_error(q->msg.body, message, sizeof message);
        if (count) {
            dn->emit_lost += count;
            dn_warn(dn, DEVNODE_WARNING, "the node refused %llu event(s) emitted without waiting: %s",
                    (unsigned long long)count, message);
        }
    }
    dn_queued_free(q);
}
