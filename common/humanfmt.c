/* humanfmt: see humanfmt.h. Both units are cut rather than rounded, so "59s" never becomes
 * "1m00s" ahead of time and the two fields of a duration always agree. */
#include "common/humanfmt.h"

#include <stdio.h>

void humanfmt_duration_ms(char *buf, size_t cap, long long ms)
{
    if (ms < 0)
        ms = 0;
    long long s = ms / 1000;
    if (ms < 1000)
        snprintf(buf, cap, "%lldms", ms);
    else if (s < 60)
        snprintf(buf, cap, "%llds", s);
    else if (s < 3600)
        snprintf(buf, cap, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else
        snprintf(buf, cap, "%lldd%02lldh", s / 86400, s / 3600 % 24);
}

void humanfmt_size_kib(char *buf, size_t cap, long long kib)
{
    if (kib <= 0)
        snprintf(buf, cap, "-");
    else if (kib < 1024)
        snprintf(buf, cap, "%lldK", kib);
    else if (kib < 1024 * 1024)
        snprintf(buf, cap, "%.1fM", kib / 1024.0);
    else
        snprintf(buf, cap, "%.1fG", kib / (1024.0 * 1024.0));
}
