/* tailserver: flow control is two-fold. Each subscription may have PROTO_TAIL_WINDOW `lines`
 * messages unacknowledged (acks ride on tail_renew), which bounds what the node queues for a
 * client that stopped reading; and sends use ZMQ_DONTWAIT with ROUTER_MANDATORY, so a full
 * peer (EAGAIN) keeps its cursor and a vanished one (EHOSTUNREACH) is dropped. A cursor the
 * ring overtakes is moved on by the eviction callback, which counts the matching lines missed. */
#include "node/tailserver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "proto/logfilter.h"
#include "proto/tailwire.h"

#define TAIL_SCAN_PER_BATCH 65536   /* lines examined for one batch, so a rare filter cannot stall */
#define TAIL_RETRY_MS 10

struct tail_sub {
    struct tail_sub *next;
    unsigned char identity[WIRE_IDENTITY_MAX];
    size_t identity_len;
    char *id_packed;             /* the request's id, msgpack-encoded, echoed in every message */
    size_t id_len;
    struct logfilter filter;
    int follow;
    uint64_t cursor;             /* next seq to look at */
    uint64_t end_seq;            /* not following: the last seq to look at */
    uint64_t *list;              /* a trace's backlog seqs, oldest first; sent before the cursor */
    size_t list_count, list_next;
    int truncated;               /* the trace index could not give every line asked for */
    uint64_t skipped;            /* matching lines missed since the last `lines` message */
    uint64_t skipped_first;      /* seqs of the first and last of them: a lossless client */
    uint64_t skipped_last;       /* reads that range from the log files */
    uint64_t batches_sent;
    uint64_t batches_acked;
    uint64_t renewed_ms;         /* loop time of the request or the last tail_renew */
    uint64_t retry_ms;           /* after EAGAIN: not before this loop time */
    int confirmed;               /* a first message went out */
};

enum pump_result { PUMP_IDLE, PUMP_MORE, PUMP_WAIT, PUMP_REMOVE };

static void sub_free(struct tail_sub *sub)
{
    logfilter_free(&sub->filter);
    free(sub->id_packed);
    free(sub->list);
    free(sub);
}

static void remove_sub(struct tailserver *ts, struct tail_sub *sub)
{
    for (struct tail_sub **link = &ts->subs; *link; link = &(*link)->next) {
        if (*link == sub) {
            *link = sub->next;
            ts->sub_count--;
            sub_free(sub);
            return;
        }
    }
}

static int sub_matches(const struct tailserver *ts, struct tail_sub *sub, uint64_t seq, struct log_line *view)
{
    return logring_get(&ts->ring, seq, view) == 0 && logfilter_match(&sub->filter, view);
}

/* ---------------------------------------------------------------- hub and ring */

static void count_skipped(struct tail_sub *sub, uint64_t seq)
{
    if (sub->skipped == 0 || seq < sub->skipped_first)
        sub->skipped_first = seq;
    if (sub->skipped == 0 || seq > sub->skipped_last)
        sub->skipped_last = seq;
    sub->skipped++;
}

static void tail_on_line(void *ctx, const struct log_line *line)
{
    struct tailserver *ts = ctx;
    logring_append(&ts->ring, line);
}

/* A line leaves the ring: every cursor still pointing at it has fallen behind. */
static void tail_on_evict(void *ctx, uint64_t seq)
{
    struct tailserver *ts = ctx;
    struct log_line view;
    for (struct tail_sub *sub = ts->subs; sub; sub = sub->next) {
        if (sub->cursor != seq || (!sub->follow && seq > sub->end_seq))
            continue;
        if (sub_matches(ts, sub, seq, &view))
            count_skipped(sub, seq);
        sub->cursor++;
    }
}

/* ---------------------------------------------------------------- sending */

static struct tail_skipped sub_skipped(const struct tail_sub *sub)
{
    return (struct tail_skipped){.count = sub->skipped, .first = sub->skipped_first, .last = sub->skipped_last};
}

static int send_end(struct tailserver *ts, struct tail_sub *sub)
{
    struct wire_body b;
    wire_body_init(&b);
    struct tail_skipped skipped = sub_skipped(sub);
    tailwire_pack_end(&b, sub->id_packed, sub->id_len, sub->truncated, &skipped);
    int rc = control_send(ts->ctl, sub->identity, sub->identity_len, PROTO_END, &b);
    wire_body_free(&b);
    return rc;
}

/* The next seq this subscription should consider, or 0 when it has nothing more for now. */
static uint64_t next_seq(struct tailserver *ts, struct tail_sub *sub)
{
    while (sub->list_next < sub->list_count) {
        uint64_t seq = sub->list[sub->list_next++];
        if (logring_entry_at(&ts->ring, seq))
            return seq;
        count_skipped(sub, seq); /* a line of the trace left the ring before we sent it */
    }
    uint64_t first = logring_first_seq(&ts->ring);
    if (sub->cursor < first)
        sub->cursor = first; /* cannot happen with the eviction callback; kept as a guard */
    uint64_t limit = sub->follow ? logring_last_seq(&ts->ring) : sub->end_seq;
    if (sub->cursor > limit)
        return 0;
    return sub->cursor++;
}

static int sub_finished(const struct tail_sub *sub)
{
    return !sub->follow && sub->list_next == sub->list_count && sub->cursor > sub->end_seq;
}

/* Builds and sends one `lines` message. */
static enum pump_result send_batch(struct tailserver *ts, struct tail_sub *sub, uint64_t now)
{
    uint64_t saved_cursor = sub->cursor, saved_skipped = sub->skipped;
    uint64_t saved_first = sub->skipped_first, saved_last = sub->skipped_last;
    size_t saved_list_next = sub->list_next;
    struct wire_body b;
    wire_body_init(&b);
    struct tailwire_lines_mark mark;
    tailwire_lines_begin(&b, sub->id_packed, sub->id_len, &mark);
    uint32_t n = 0;
    size_t scanned = 0;
    struct log_line view;
    strbuf_reset(&ts->batch);
    while (n < PROTO_TAIL_BATCH_LINES && ts->batch.len < PROTO_TAIL_BATCH_BYTES && scanned < TAIL_SCAN_PER_BATCH) {
        uint64_t seq = next_seq(ts, sub);
        if (!seq)
            break;
        scanned++;
        if (!sub_matches(ts, sub, seq, &view))
            continue;
        tailwire_pack_line(&ts->batch, &view, &ts->scratch);
        n++;
    }
    if (ts->batch.len)
        msgpack_sbuffer_write(&b.sbuf, ts->batch.data, ts->batch.len);
    strbuf_reset(&ts->batch);
    if (n == 0 && sub->skipped == 0 && (sub->confirmed || !sub->follow)) {
        wire_body_free(&b);
        if (sub_finished(sub))
            return PUMP_IDLE;
        return scanned == TAIL_SCAN_PER_BATCH ? PUMP_MORE : PUMP_IDLE;
    }
    struct tail_skipped skipped = sub_skipped(sub);
    tailwire_lines_finish(&b, &mark, n, &skipped);
    int rc = control_send(ts->ctl, sub->identity, sub->identity_len, PROTO_LINES, &b);
    wire_body_free(&b);
    if (rc == -EAGAIN) {
        sub->cursor = saved_cursor;
        sub->skipped = saved_skipped;
        sub->skipped_first = saved_first;
        sub->skipped_last = saved_last;
        sub->list_next = saved_list_next;
        sub->retry_ms = now + TAIL_RETRY_MS;
        return PUMP_WAIT;
    }
    if (rc < 0)
        return PUMP_REMOVE;
    sub->confirmed = 1;
    sub->skipped = 0;
    sub->batches_sent++;
    return PUMP_MORE;
}

static enum pump_result pump_sub(struct tailserver *ts, struct tail_sub *sub, uint64_t now)
{
    if (sub->retry_ms > now)
        return PUMP_WAIT;
    /* The window shrinks as followers multiply (at least 2, so one stays in flight while
     * the next is acknowledged). */
    uint64_t window = TAILSERVER_WINDOW_TOTAL / (ts->sub_count ? ts->sub_count : 1);
    if (window > PROTO_TAIL_WINDOW)
        window = PROTO_TAIL_WINDOW;
    if (window < 2)
        window = 2;
    for (uint64_t budget = window; budget > 0; budget--) {
        if (sub->batches_sent - sub->batches_acked >= window)
            return PUMP_IDLE; /* the ack will wake us */
        enum pump_result r = send_batch(ts, sub, now);
        if (r == PUMP_IDLE && sub_finished(sub)) {
            int rc = send_end(ts, sub);
            if (rc == -EAGAIN) {
                sub->retry_ms = now + TAIL_RETRY_MS;
                return PUMP_WAIT;
            }
            return PUMP_REMOVE;
        }
        if (r != PUMP_MORE)
            return r;
    }
    return PUMP_MORE;
}

/* Both only make the loop turn once more; the check callback does the work. */
static void tail_on_idle(uv_idle_t *idle)
{
    (void)idle;
}

static void tail_on_retry(uv_timer_t *timer)
{
    (void)timer;
}

static void pump_all(struct tailserver *ts)
{
    if (ts->closed)
        return;
    uint64_t now = uv_now(ts->loop);
    int more = 0, wait = 0;
    struct tail_sub *sub = ts->subs;
    while (sub) {
        struct tail_sub *next = sub->next;
        switch (pump_sub(ts, sub, now)) {
        case PUMP_MORE: more = 1; break;
        case PUMP_WAIT: wait = 1; break;
        case PUMP_REMOVE: remove_sub(ts, sub); break;
        case PUMP_IDLE: break;
        }
        sub = next;
    }
    if (more && !uv_is_active((uv_handle_t *)&ts->idle))
        uv_idle_start(&ts->idle, tail_on_idle);
    else if (!more && uv_is_active((uv_handle_t *)&ts->idle))
        uv_idle_stop(&ts->idle);
    if (wait && !uv_is_active((uv_handle_t *)&ts->retry))
        uv_timer_start(&ts->retry, tail_on_retry, TAIL_RETRY_MS, 0);
}

static void tail_on_check(uv_check_t *check)
{
    pump_all(check->data);
}

static void tail_on_expiry(uv_timer_t *timer)
{
    struct tailserver *ts = timer->data;
    /* Not the clock, as the registry and the bus judge it: a tail_renew still queued behind a
     * flood of the client's other messages, or sent while the node's own loop was late, is not
     * late, and any message on the subscription's connection shows the client alive. */
    uint64_t heard = control_heard_until_ms(ts->ctl);
    struct tail_sub *sub = ts->subs;
    while (sub) {
        struct tail_sub *next = sub->next;
        uint64_t last = sub->renewed_ms;
        uint64_t on_conn = control_last_heard_ms(ts->ctl, sub->identity, sub->identity_len);
        if (on_conn > last)
            last = on_conn;
        if (heard > last && heard - last > PROTO_TAIL_EXPIRY_MS)
            remove_sub(ts, sub);
        sub = next;
    }
}

/* ---------------------------------------------------------------- requests */

static char *pack_request_id(const struct wire_msg *msg, size_t *len)
{
    const msgpack_object *id = wire_map_get(msg->body, "id");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (id)
        msgpack_pack_object(&pk, *id);
    else
        msgpack_pack_nil(&pk);
    *len = sb.size;
    return sb.data; /* ownership moves to the caller (sbuffer data is malloc'ed) */
}

static struct tail_sub *find_sub(struct tailserver *ts, const struct wire_msg *msg)
{
    size_t len;
    char *id = pack_request_id(msg, &len);
    struct tail_sub *found = NULL;
    for (struct tail_sub *sub = ts->subs; sub && !found; sub = sub->next)
        if (sub->identity_len == msg->identity_len && memcmp(sub->identity, msg->identity, msg->identity_len) == 0 &&
            sub->id_len == len && memcmp(sub->id_packed, id, len) == 0)
            found = sub;
    free(id);
    return found;
}

static int reserve_seq_buf(struct tailserver *ts, size_t n)
{
    if (n <= ts->seq_cap)
        return 0;
    uint64_t *p = realloc(ts->seq_buf, n * sizeof *p);
    if (!p)
        return -1;
    ts->seq_buf = p;
    ts->seq_cap = n;
    return 0;
}

/* The backlog of a trace query comes from the trace index: a walk over the trace's lines. */
static int start_trace_backlog(struct tailserver *ts, struct tail_sub *sub, int64_t backlog)
{
    const struct logring_trace *t = logring_trace_find(&ts->ring, sub->filter.trace_id);
    if (!t) {
        sub->truncated = 1; /* never seen, or its summary was dropped: the log files may have it */
        return 0;
    }
    size_t cap = t->lines < ts->ring.count ? (size_t)t->lines : ts->ring.count;
    if (cap == 0 || backlog == 0)
        return 0;
    if (reserve_seq_buf(ts, cap) < 0)
        return -1;
    int complete = 0;
    size_t n = logring_trace_seqs(&ts->ring, t, ts->seq_buf, cap, &complete);
    size_t want = (uint64_t)backlog < n ? (size_t)backlog : n, kept = 0;
    sub->list = malloc((want ? want : 1) * sizeof *sub->list);
    if (!sub->list)
        return -1;
    struct log_line view;
    for (size_t i = 0; i < n && kept < want; i++)
        if (sub_matches(ts, sub, ts->seq_buf[i], &view))
            sub->list[kept++] = ts->seq_buf[i];
    for (size_t i = 0; i < kept / 2; i++) {
        uint64_t tmp = sub->list[i];
        sub->list[i] = sub->list[kept - 1 - i];
        sub->list[kept - 1 - i] = tmp;
    }
    sub->list_count = kept;
    sub->truncated = !complete && (int64_t)kept < backlog;
    return 0;
}

/* Where the backlog of the newest `backlog` matching lines starts. */
static uint64_t backlog_start(struct tailserver *ts, struct tail_sub *sub, int64_t backlog)
{
    uint64_t first = logring_first_seq(&ts->ring), last = logring_last_seq(&ts->ring);
    if (backlog == 0 || first > last)
        return last + 1;
    const struct logfilter *f = &sub->filter;
    if (f->target_count == 0 && f->level_min == LOG_LEVEL_NONE && !f->has_grep)
        return (uint64_t)backlog > last - first ? first : last - (uint64_t)backlog + 1;
    uint64_t seq = last, found = 0;
    struct log_line view;
    for (;; seq--) {
        if (sub_matches(ts, sub, seq, &view) && ++found == (uint64_t)backlog)
            return seq;
        if (seq == first)
            return first;
    }
}

static void handle_tail(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct tailserver *ts = ctx;
    struct tail_sub *old = find_sub(ts, msg);
    if (old)
        remove_sub(ts, old); /* the same client asking again under the same id replaces it */
    if (ts->sub_count >= TAILSERVER_MAX_SUBS) {
        control_reply_error(ctl, msg, "too many tail clients (1024); stop one first");
        return;
    }
    struct tail_sub *sub = xcalloc(1, sizeof *sub);
    char err[512];
    int64_t backlog;
    if (tailwire_unpack_request(msg->body, &backlog, &sub->follow, &sub->filter, err, sizeof err) < 0) {
        sub_free(sub);
        control_reply_error(ctl, msg, err);
        return;
    }
    memcpy(sub->identity, msg->identity, msg->identity_len);
    sub->identity_len = msg->identity_len;
    sub->id_packed = pack_request_id(msg, &sub->id_len);
    sub->renewed_ms = uv_now(ts->loop);
    uint64_t last = logring_last_seq(&ts->ring);
    sub->end_seq = last;
    if (sub->filter.trace_id[0]) {
        if (start_trace_backlog(ts, sub, backlog) < 0) {
            sub_free(sub);
            control_reply_error(ctl, msg, "out of memory");
            return;
        }
        sub->cursor = last + 1;
    } else {
        sub->cursor = backlog_start(ts, sub, backlog);
    }
    sub->next = ts->subs;
    ts->subs = sub;
    ts->sub_count++;
    /* The check callback of this loop iteration sends the first batch. */
}

static void handle_renew(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct tailserver *ts = ctx;
    struct tail_sub *sub = find_sub(ts, msg);
    if (!sub) {
        control_reply_error(ctl, msg, "unknown tail subscription (it ends 5 s after the last tail_renew)");
        return;
    }
    int has_received;
    uint64_t received;
    char err[160];
    if (tailwire_unpack_renew(msg->body, &has_received, &received, err, sizeof err) < 0) {
        control_reply_error(ctl, msg, err);
        return;
    }
    if (has_received) {
        uint64_t n = received < sub->batches_sent ? received : sub->batches_sent;
        if (n > sub->batches_acked)
            sub->batches_acked = n;
    }
    sub->renewed_ms = uv_now(ts->loop);
}

static void handle_untail(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct tailserver *ts = ctx;
    struct tail_sub *sub = find_sub(ts, msg);
    if (sub)
        remove_sub(ts, sub);
    control_reply_ok(ctl, msg);
}

static void handle_traces(void *ctx, struct control *ctl, const struct wire_msg *msg)
{
    struct tailserver *ts = ctx;
    int64_t limit;
    char err[160];
    if (tailwire_unpack_traces_request(msg->body, &limit, err, sizeof err) < 0) {
        control_reply_error(ctl, msg, err);
        return;
    }
    const struct logring_trace **list = malloc((size_t)limit * sizeof *list);
    if (!list) {
        control_reply_error(ctl, msg, "out of memory");
        return;
    }
    size_t n = logring_traces_newest(&ts->ring, list, (size_t)limit);
    struct wire_body b;
    wire_body_init(&b);
    tailwire_pack_traces_head(&b.pk, proto_request_id(msg->body), n);
    for (size_t i = 0; i < n; i++) {
        const struct logring_trace *t = list[i];
        const char *services[sizeof t->services / sizeof t->services[0]];
        for (unsigned s = 0; s < t->service_count; s++)
            services[s] = logring_service_name(&ts->ring, t->services[s]);
        struct tail_trace_summary summary = {.trace_id = t->id,
                                             .first_ns = t->first_ns,
                                             .last_ns = t->last_ns,
                                             .lines = (int64_t)t->lines,
                                             .error = t->error,
                                             .services = services,
                                             .service_count = t->service_count};
        tailwire_pack_trace(&b.pk, &summary);
    }
    control_reply(ctl, msg, PROTO_TRACES, &b);
    wire_body_free(&b);
    free(list);
}

/* ---------------------------------------------------------------- life cycle */

static size_t traces_for_lines(size_t lines)
{
    size_t n = lines / 4;
    return n < 1024 ? 1024 : n > (1u << 20) ? (1u << 20) : n;
}

int tailserver_init(struct tailserver *ts, uv_loop_t *loop, struct loghub *hub, struct control *ctl,
                    size_t buffer_lines, char *err, size_t errlen)
{
    memset(ts, 0, sizeof *ts);
    ts->closed = 1; /* until every handle exists: close and free are then no-ops */
    ts->loop = loop;
    ts->hub = hub;
    ts->ctl = ctl;
    strbuf_init(&ts->scratch);
    strbuf_init(&ts->batch);
    if (logring_init(&ts->ring, buffer_lines, traces_for_lines(buffer_lines)) < 0) {
        snprintf(err, errlen, "cannot reserve memory for a log ring of %zu lines", buffer_lines);
        return -1;
    }
    logring_set_evict_cb(&ts->ring, tail_on_evict, ts);
    if (loghub_subscribe(hub, tail_on_line, ts) < 0) {
        logring_free(&ts->ring);
        snprintf(err, errlen, "too many log hub subscribers");
        return -1;
    }
    ts->closed = 0;
    uv_check_init(loop, &ts->check);
    ts->check.data = ts;
    uv_check_start(&ts->check, tail_on_check);
    uv_idle_init(loop, &ts->idle);
    ts->idle.data = ts;
    uv_timer_init(loop, &ts->retry);
    ts->retry.data = ts;
    uv_timer_init(loop, &ts->expiry);
    ts->expiry.data = ts;
    uv_timer_start(&ts->expiry, tail_on_expiry, 1000, 1000);
    /* The expiry timer alone must not keep a stopping node's loop alive. */
    uv_unref((uv_handle_t *)&ts->expiry);
    control_register(ctl, PROTO_TAIL, handle_tail, ts);
    control_register(ctl, PROTO_TAIL_RENEW, handle_renew, ts);
    control_register(ctl, PROTO_UNTAIL, handle_untail, ts);
    control_register(ctl, PROTO_TRACES, handle_traces, ts);
    return 0;
}

void tailserver_close(struct tailserver *ts)
{
    if (ts->closed)
        return;
    uint64_t now = uv_now(ts->loop);
    /* Last words: what each client is owed (within its window), then `end`. Best effort. */
    while (ts->subs) {
        struct tail_sub *sub = ts->subs;
        sub->retry_ms = 0;
        if (pump_sub(ts, sub, now) != PUMP_REMOVE)
            send_end(ts, sub);
        remove_sub(ts, sub);
    }
    ts->closed = 1;
    loghub_unsubscribe(ts->hub, tail_on_line, ts);
    uv_close((uv_handle_t *)&ts->check, NULL);
    uv_close((uv_handle_t *)&ts->idle, NULL);
    uv_close((uv_handle_t *)&ts->retry, NULL);
    uv_close((uv_handle_t *)&ts->expiry, NULL);
}

void tailserver_free(struct tailserver *ts)
{
    logring_free(&ts->ring);
    strbuf_free(&ts->scratch);
    strbuf_free(&ts->batch);
    free(ts->seq_buf);
    ts->seq_buf = NULL;
    ts->seq_cap = 0;
}
