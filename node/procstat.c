/* procstat: reads /proc/PID/stat; cheap enough to run for 100 instances every second.
 * Never keeps the file open: pids are reused. */
#include "node/procstat.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int procstat_sample(struct procstat *ps, pid_t pid, uint64_t now_ms)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p += 2;
    unsigned long long utime = 0, stime = 0;
    long long rss_pages = 0;
    /* fields from 3 (state) on: utime is 14, stime 15, rss 24 */
    int field = 3;
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 14)
            utime = strtoull(tok, NULL, 10);
        else if (field == 15)
            stime = strtoull(tok, NULL, 10);
        else if (field == 24) {
            rss_pages = strtoll(tok, NULL, 10);
            break;
        }
    }
    uint64_t ticks = utime + stime;
    long hz = sysconf(_SC_CLK_TCK);
    long page_kib = sysconf(_SC_PAGESIZE) / 1024;
    if (ps->sampled_ms && now_ms > ps->sampled_ms && ticks >= ps->cpu_ticks)
        ps->cpu_percent = (double)(ticks - ps->cpu_ticks) * 1000.0 * 100.0 /
                          ((double)hz * (double)(now_ms - ps->sampled_ms));
    ps->cpu_ticks = ticks;
    ps->sampled_ms = now_ms;
    ps->rss_kib = rss_pages > 0 ? (uint64_t)rss_pages * (uint64_t)page_kib : 0;
    return 0;
}
