/* peers: when the node last handled a message from each client connection (by routing id).
 * Any message shows its sender is alive, so expiry asks here as well as looking at heartbeats:
 * a client whose heartbeat waits behind a flood of its own emits is still heard. Pure data,
 * no I/O; forgets connections silent for PEERS_FORGET_MS once the table needs room. */
#ifndef DEVNODE_PEERS_H
#define DEVNODE_PEERS_H

#include <stddef.h>
#include <stdint.h>

#define PEERS_ID_MAX 32           /* longer routing ids are not tracked (ZeroMQ's own are 5 bytes) */
#define PEERS_FORGET_MS 60000     /* far above every expiry that asks */

struct peer {
    unsigned char id[PEERS_ID_MAX];
    uint8_t id_len;               /* 0: empty slot */
    uint64_t heard_ms;
};

struct peers {
    struct peer *slots;           /* open addressing, linear probing; a power of two */
    size_t cap, count;
};

void peers_init(struct peers *p);
void peers_free(struct peers *p);
/* Notes a message from `id` at now_ms. */
void peers_heard(struct peers *p, const void *id, size_t id_len, uint64_t now_ms);
/* When a message from `id` was last noted; 0 when never (or forgotten, or id too long). */
uint64_t peers_last_heard(const struct peers *p, const void *id, size_t id_len);

#endif
