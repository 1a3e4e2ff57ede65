/* humanfmt: durations and sizes as people read them, the one spelling the CLI (`status`) and
 * the dashboard share, so the same uptime never reads "3m05s" in one and "3m05" in the other.
 * Pure formatting: no I/O, no allocation, always NUL-terminates a non-empty buffer. */
#ifndef DEVNODE_HUMANFMT_H
#define DEVNODE_HUMANFMT_H

#include <stddef.h>

/* At most 7 characters below 1000 days: "850ms", "12s", "3m05s", "2h03m", "4d02h". Two units,
 * the larger one first; the smaller is cut, not rounded (an uptime never reads ahead).
 * A negative ms (a clock step) reads "0ms". */
void humanfmt_duration_ms(char *buf, size_t cap, long long ms);

/* A size given in KiB: "512K", "12.3M", "1.2G"; "-" for 0 or less (not measured). */
void humanfmt_size_kib(char *buf, size_t cap, long long kib);

#endif
