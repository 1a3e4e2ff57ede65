/* events.h: subscriptions (new events and retained streams), emits, and the deliveries the
 * node's bus sends, acked after their handler. Above the connection (conn.h) only. */
#ifndef DEVNODE_LIB_EVENTS_H
#define DEVNODE_LIB_EVENTS_H

#include "lib/conn.h"

void dn_handle_node_msg(struct devnode *dn, struct dn_queued *q);  /* takes q */
int dn_send_subscription(struct devnode *dn, struct dn_sub *sub);
/* Sends unsubscribe for every active subscription; returns the last request id (0: none). */
uint64_t dn_send_unsubscribes(struct devnode *dn);
/* Handles sub_index's events until it has handled the stream's end as of now: no deadline
 * when deadline_ms is 0, but DEVNODE_E_TIMEOUT after DN_CATCH_UP_IDLE_MS without an event. */
int dn_catch_up(struct devnode *dn, size_t sub_index, long long deadline_ms);
void dn_events_free(struct devnode *dn);

#endif
