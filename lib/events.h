/* events.h: subscriptions (new events and retained streams), emits, and the deliveries the
 * node's bus sends, acked after their handler. Above the connection (conn.h) only. */
#ifndef DEVNODE_LIB_EVENTS_H
#define DEVNODE_LIB_EVENTS_H

#include "lib/conn.h"
#include "lib/amqpevents.h"

void dn_handle_node_msg(struct devnode *dn, struct dn_queued *q);  /* takes q */
int dn_send_subscription(struct devnode *dn, struct dn_sub *sub);
/* Sends unsubscribe for every active subscription; returns the last request id (0: none). */
uint64_t dn_send_unsubscribes(struct devnode *dn);
/* Handles sub_index's events until it has handled the stream's end as of now: no deadline
 * when deadline_ms is 0, but DEVNODE_E_TIMEOUT after DN_CATCH_UP_IDLE_MS without an event. */
int dn_catch_up(struct devnode *dn, size_t sub_index, long long deadline_ms);
void dn_events_free(struct devnode *dn);

/* With DEVNODE_EVENTS=amqp://… (lib/amqpevents.h) events go to RabbitMQ, not the node; the
 * loop drives that side through these (each a no-op under the node's bus). */
int dn_events_process(struct devnode *dn);          /* handles what arrived; returns how many */
int dn_events_ready(struct devnode *dn);            /* 1: dn_events_process has work buffered */
void dn_events_fds(struct devnode *dn, int fds[2]); /* sockets to poll for reading (-1: none) */
int dn_events_timeout_ms(struct devnode *dn);       /* ms until it must run anyway; -1: never */
/* Waits until the broker confirmed every no-wait event; returns how many accepted since the
 * last call it refused or did not confirm (warned). */
int dn_events_flush(struct devnode *dn, int timeout_ms);

#endif
