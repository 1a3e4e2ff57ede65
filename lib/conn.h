/* conn.h: the bottom of the library's stack: the service's one connection to its node (the
 * DEALER, requests answered by id with events queued meanwhile, heartbeats) and teardown of what
 * the layers share. It calls nothing above it; serving, calls, events and the loop use it. */
#ifndef DEVNODE_LIB_CONN_H
#define DEVNODE_LIB_CONN_H

#include "lib/internal.h"

uint64_t dn_next_request_id(struct devnode *dn);
/* Sends b (a map whose id is `id`) as `type` and waits for the reply with that id; other
 * messages that arrive meanwhile are queued (events) or dropped. Returns 0 with *reply owned
 * by the caller (dn_queued_free), or DEVNODE_E_NODE with last_error set (error reply,
 * timeout). `reply` may be NULL when only success matters. */
int dn_node_request(struct devnode *dn, const char *type, const struct wire_body *b, uint64_t id,
                    int timeout_ms, struct dn_queued **reply);
/* The waiting half of dn_node_request, until deadline_ms (monotonic). */
int dn_node_wait(struct devnode *dn, const char *type, uint64_t id, long long deadline_ms,
                 struct dn_queued **reply);
/* Sends a heartbeat when due, then waits for the node's socket to be readable until until_ms
 * (monotonic), or until the next heartbeat is due, whichever comes first. 0, or DEVNODE_E_NODE
 * with last_error set when the poll fails. */
int dn_node_poll_until(struct devnode *dn, long long now_ms, long long until_ms);
/* Sends `type`, waiting up to timeout_ms for room when the queue to the node is full, reading
 * what arrives meanwhile. Returns 0, DEVNODE_E_TIMEOUT (still full) or DEVNODE_E_NODE. */
int dn_node_send_room(struct devnode *dn, const char *type, const struct wire_body *b, int timeout_ms);
/* The no-wait events' queue (dn->emitq): events.c packs items into it, this sends them as one
 * quiet emit (docs/protocol.md, "Coalescing"). Empties it (the buffer is kept). */
void dn_emitq_clear(struct devnode *dn);
/* Sends the first `count` queued events, whose items end at byte `end` of the buffer, as one
 * quiet emit, waiting up to timeout_ms for room; the rest stay queued. On failure (0,
 * DEVNODE_E_TIMEOUT or DEVNODE_E_NODE) nothing leaves the queue. */
int dn_emitq_send_first(struct devnode *dn, size_t count, size_t end, int timeout_ms);
/* The same for every queued event; 0 when there is none. Every request to the node calls it
 * first, so the node gets a connection's events in order, waited or not. */
int dn_emitq_send(struct devnode *dn, int timeout_ms);
/* Waits (up to timeout_ms) while DN_EMIT_WINDOW no-wait events sent are not confirmed, and asks
 * for a confirmation (a ping) at half of it. 0, DEVNODE_E_TIMEOUT or DEVNODE_E_NODE (gone). */
int dn_emit_window(struct devnode *dn, int timeout_ms);
/* Sends what is queued and waits (up to timeout_ms) until the node has every no-wait emit:
 * one ping, whose reply comes after theirs. Returns how many accepted no-wait events since
 * the last call the node refused or did not confirm (the latter warned here), 0 when none. */
int dn_node_flush(struct devnode *dn, int timeout_ms);
/* Sends without waiting (heartbeat, ack). */
int dn_node_send(struct devnode *dn, const char *type, const struct wire_body *b);
void dn_queued_free(struct dn_queued *q);
/* Appends q to the queue of messages devnode_process takes next (dn->queue_head). */
void dn_enqueue(struct devnode *dn, struct dn_queued *q);
/* Receives one node message without blocking into a new dn_queued; NULL when none. */
struct dn_queued *dn_node_recv(struct devnode *dn);
int dn_is_delivery(const struct dn_queued *q); /* an `event` or `events` message */
/* Takes a message nobody waits for (a late reply, an error about a heartbeat or ack, the
 * answer to an unwaited emit) and frees it, reporting the node's refusal of an unwaited emit. */
void dn_unasked_reply(struct devnode *dn, struct dn_queued *q);
/* ms until a heartbeat is due (0: now), -1 when none is (not started, no subscription). */
long long dn_heartbeat_due_ms(const struct devnode *dn);
/* Sends a heartbeat when one is due (once started); notes when a stall may have cost the
 * registry entry (reregister_due), for the loop to register again. */
void dn_maybe_heartbeat(struct devnode *dn);
/* Frees the queue, closes the node socket and ends the ZeroMQ context: last, once every
 * socket of the layers above is closed. */
void dn_conn_close(struct devnode *dn);

#endif
