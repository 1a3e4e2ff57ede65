/* tailconv: acknowledgements are what lets the node send more (it keeps at most 16 `lines`
 * messages unacknowledged per subscription), so they go out every second message; a client
 * that stops reading therefore stops acknowledging, and the node skips ahead instead of
 * queueing. Renewals start with the first answer: a refused request is never renewed. */
#include "tail/tailconv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

static void out_reset(struct tailconv_out *out)
{
    memset(out, 0, sizeof *out);
}

void tailconv_out_free(struct tailconv_out *out)
{
    for (size_t i = 0; i < out->send_count; i++)
        wire_body_free(&out->send[i].body);
    out->send_count = 0;
}

static struct wire_body *push(struct tailconv_out *out, const char *type)
{
    /* Every step sends at most one message; the bound is a promise of this file. */
    if (out->send_count == TAILCONV_SEND_MAX)
        abort();
    struct tailconv_send *s = &out->send[out->send_count++];
    s->type = type;
    wire_body_init(&s->body);
    return &s->body;
}

static void push_renew(struct tailconv *c, struct tailconv_out *out)
{
    struct wire_body *b = push(out, PROTO_TAIL_RENEW);
    tailwire_pack_renew(&b->pk, c->id, &c->received);
    c->acked = c->received;
}

static void push_untail(struct tailconv *c, struct tailconv_out *out)
{
    struct wire_body *b = push(out, PROTO_UNTAIL);
    tailwire_pack_untail(&b->pk, c->id);
}

/* A new subscription (new id) asking for backlog lines of history. */
static void push_request(struct tailconv *c, int64_t backlog, long long now_ms, struct tailconv_out *out)
{
    struct tail_request req = *c->req;
    req.backlog = backlog;
    c->id = (*c->next_id)++;
    struct wire_body *b = push(out, PROTO_TAIL);
    tailwire_pack_request(&b->pk, c->id, &req);
    c->state = TAILCONV_ASKED;
    c->received = c->acked = 0;
    c->asked_ms = now_ms;
    c->next_renew_ms = now_ms + TAILCONV_RENEW_MS;
}

static void fail(struct tailconv *c, struct tailconv_out *out, const char *message)
{
    c->state = TAILCONV_FAILED;
    out->event = TAILCONV_EV_FAILED;
    snprintf(out->error, sizeof out->error, "%s", message);
}

void tailconv_init(struct tailconv *c, const struct tail_request *req, const struct tailconv_options *opts,
                   int64_t *next_id)
{
    memset(c, 0, sizeof *c);
    c->req = req;
    c->opts = *opts;
    c->next_id = next_id;
}

void tailconv_free(struct tailconv *c)
{
    free(c->lines);
    c->lines = NULL;
    c->lines_cap = 0;
}

int tailconv_open(const struct tailconv *c)
{
    return c->state == TAILCONV_ASKED || c->state == TAILCONV_LIVE;
}

void tailconv_start(struct tailconv *c, long long now_ms, struct tailconv_out *out)
{
    out_reset(out);
    c->last_seq = 0;
    c->resume_from = 0;
    c->gone_deadline_ms = 0;
    push_request(c, c->req->backlog, now_ms, out);
}

void tailconv_stop(struct tailconv *c, struct tailconv_out *out)
{
    out_reset(out);
    if (tailconv_open(c))
        push_untail(c, out);
    c->state = TAILCONV_IDLE;
}

void tailconv_node_gone(struct tailconv *c, long long now_ms)
{
    if (!c->gone_deadline_ms)
        c->gone_deadline_ms = now_ms + TAILCONV_GONE_GRACE_MS;
}

void tailconv_forget_seqs(struct tailconv *c)
{
    c->last_seq = 0;
    c->resume_from = 0;
}

/* The `skipped` count and `skipped_seqs` range of a lines or end message, if any. The range
 * starts after what was shown already: the node's range may reach back before the last line it
 * sent (docs/protocol.md). Everything up to its end is the caller's from now on. */
static void take_skipped(struct tailconv *c, const msgpack_object *body, struct tailconv_out *out)
{
    struct tail_skipped sk;
    if (tailwire_unpack_skipped(body, &sk) < 0 || sk.count == 0)
        return;
    out->gap = 1;
    out->skipped = sk.count;
    if (sk.first <= sk.last) { /* absent or malformed skipped_seqs read as the empty range */
        out->gap_seqs_known = 1;
        out->gap_first = sk.first;
        out->gap_last = sk.last;
        if (out->gap_first <= c->last_seq)
            out->gap_first = c->last_seq + 1;
        if (out->gap_last > c->last_seq)
            c->last_seq = out->gap_last;
    }
}

static void on_lines(struct tailconv *c, const msgpack_object *body, struct tailconv_out *out)
{
    c->state = TAILCONV_LIVE;
    if (++c->received - c->acked >= TAILCONV_ACK_EVERY)
        push_renew(c, out);
    out->event = TAILCONV_EV_LINES;
    const msgpack_object *arr = tailwire_lines_array(body);
    if (!arr) {
        out->malformed = 1;
        return;
    }
    uint32_t count = arr->via.array.size;
    if (count > c->lines_cap) {
        c->lines = xrealloc(c->lines, count * sizeof *c->lines);
        c->lines_cap = count;
    }
    /* A resubscription sends the ring again: lines already shown are left out, and so is one
     * out of seq order (the node never sends one), so no line is shown twice. Malformed lines
     * are dropped one by one; the rest of the message still counts. */
    size_t n = 0;
    for (uint32_t i = 0; i < count; i++)
        if (tailwire_unpack_line(&arr->via.array.ptr[i], &c->lines[n]) == 0 &&
            c->lines[n].line.seq > (n ? c->lines[n - 1].line.seq : c->last_seq))
            n++;
    for (size_t i = 0; i < n; i++)
        c->lines[i].line.service = c->lines[i].service;
    if (c->resume_from) {
        if (n > 0) {
            /* Everything between what we saw and what the node still had is in the log files. */
            out->gap = 1;
            out->gap_seqs_known = 1;
            out->gap_first = c->resume_from;
            out->gap_last = c->lines[0].line.seq - 1;
            c->resume_from = 0;
        }
    } else {
        take_skipped(c, body, out);
    }
    if (n > 0)
        c->last_seq = c->lines[n - 1].line.seq;
    out->lines = c->lines;
    out->line_count = n;
}

static void on_end(struct tailconv *c, const msgpack_object *body, struct tailconv_out *out)
{
    c->state = TAILCONV_ENDED;
    out->event = TAILCONV_EV_END;
    struct tail_skipped unused;
    tailwire_unpack_end(body, &out->truncated, &unused);
    take_skipped(c, body, out);
}

static void on_error(struct tailconv *c, const msgpack_object *body, long long now_ms, struct tailconv_out *out)
{
    char message[TAILCONV_ERROR_MAX];
    proto_unpack_error(body, message, sizeof message);
    if (c->state == TAILCONV_ASKED || !c->opts.resume) {
        fail(c, out, message);
        return;
    }
    /* The node forgot a live subscription (no renewal for over 5 s, e.g. after Ctrl-Z). */
    if (c->opts.resume_gap && !c->resume_from)
        c->resume_from = c->last_seq + 1;
    push_request(c, c->opts.resume_backlog, now_ms, out);
    out->event = TAILCONV_EV_RESUMED;
}

int tailconv_feed(struct tailconv *c, const char *type, const msgpack_object *body, long long now_ms,
                  struct tailconv_out *out)
{
    out_reset(out);
    int lines = !strcmp(type, PROTO_LINES), end = !strcmp(type, PROTO_END), error = !strcmp(type, PROTO_ERROR);
    int64_t id;
    if (!tailconv_open(c) || !(lines || end || error) || !body || wire_get_int(body, "id", &id) < 0 ||
        id != c->id)
        return 0; /* another conversation's, or a stale message of an earlier subscription */
    if (lines)
        on_lines(c, body, out);
    else if (end)
        on_end(c, body, out);
    else
        on_error(c, body, now_ms, out);
    return 1;
}

void tailconv_tick(struct tailconv *c, long long now_ms, struct tailconv_out *out)
{
    out_reset(out);
    if (!tailconv_open(c))
        return;
    if (c->gone_deadline_ms && now_ms >= c->gone_deadline_ms) {
        fail(c, out, "the node is gone");
        return;
    }
    if (c->state == TAILCONV_ASKED && now_ms - c->asked_ms >= TAILCONV_ANSWER_MS) {
        if (!c->opts.retry_unanswered) {
            char message[TAILCONV_ERROR_MAX];
            snprintf(message, sizeof message, "the node did not answer the tail request within %d ms",
                     TAILCONV_ANSWER_MS);
            fail(c, out, message);
            return;
        }
        /* The node was busy or not there yet: ask again, for the same history. */
        push_request(c, c->req->backlog, now_ms, out);
        out->event = TAILCONV_EV_RETRIED;
        return;
    }
    if (c->state == TAILCONV_LIVE && now_ms >= c->next_renew_ms) {
        push_renew(c, out);
        c->next_renew_ms = now_ms + TAILCONV_RENEW_MS;
    }
}

long long tailconv_next_deadline(const struct tailconv *c)
{
    if (!tailconv_open(c))
        return -1;
    long long due = c->state == TAILCONV_LIVE ? c->next_renew_ms : c->asked_ms + TAILCONV_ANSWER_MS;
    if (c->gone_deadline_ms && c->gone_deadline_ms < due)
        due = c->gone_deadline_ms;
    return due;
}
