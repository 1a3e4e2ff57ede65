/* backoff: how long to wait before restarting a process that exited.
 * Exponential (100 ms doubling to 30 s), reset once a run lasted 10 s. Pure; no timers here. */
#ifndef DEVNODE_BACKOFF_H
#define DEVNODE_BACKOFF_H

#include <stdint.h>

#define BACKOFF_INITIAL_MS 100u
#define BACKOFF_MAX_MS 30000u
#define BACKOFF_STABLE_MS 10000u

struct backoff {
    unsigned next_delay_ms; /* delay handed out by the next unstable exit */
};

void backoff_init(struct backoff *b);
/* The process ran `uptime_ms` before it exited: the delay before starting it again. */
unsigned backoff_on_exit(struct backoff *b, uint64_t uptime_ms);

#endif
