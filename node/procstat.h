/* procstat: CPU and memory of a process from /proc, for status and the dashboard. */
#ifndef DEVNODE_PROCSTAT_H
#define DEVNODE_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

struct procstat {
    uint64_t cpu_ticks;      /* utime + stime at the last sample */
    uint64_t sampled_ms;     /* monotonic time of the last sample, 0 before the first */
    double cpu_percent;      /* over the last interval; 100 = one core */
    uint64_t rss_kib;
};

/* Samples pid; returns 0 or -1 when the process is gone. */
int procstat_sample(struct procstat *ps, pid_t pid, uint64_t now_ms);

#endif
