/* backoff: restart delays for crashing processes, so a crash loop costs almost nothing.
 * Holds no timers and reads no clock: the supervisor passes the uptime in. */
#include "node/backoff.h"

void backoff_init(struct backoff *b)
{
    b->next_delay_ms = BACKOFF_INITIAL_MS;
}

unsigned backoff_on_exit(struct backoff *b, uint64_t uptime_ms)
{
    /* A run that lasted long enough was healthy: the next crash starts the ladder again. */
    if (uptime_ms >= BACKOFF_STABLE_MS)
        b->next_delay_ms = BACKOFF_INITIAL_MS;
    unsigned delay = b->next_delay_ms;
    b->next_delay_ms = delay >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS : delay * 2;
    return delay;
}
