/* bus_lib_pub.c: compiled and run by bench_bus.py (the library run, and the size of one emit).
 * The publisher a service author writes: devnode_emit_nowait once per event in a plain loop,
 * then devnode_close. Public API only (devnode.h), so it measures whatever the library does
 * today. A non-zero return is an event lost at the call; devnode_close's return is how many
 * accepted events the node did not confirm. Prints "start loop_end close_end failed
 * unconfirmed" (wall-clock seconds), the first failure's reason on stderr. The events' n run
 * from FIRST (default 0) to FIRST+N-1. */
#include <string.h>
#include <devnode.h>
#include "bench/driver.h"

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: bus_lib_pub ENDPOINT N [FIRST]\n");
        return 2;
    }
    long n = atol(argv[2]), first = argc == 4 ? atol(argv[3]) : 0;
    char err[256];
    struct devnode *dn = devnode_open(argv[1], "BenchPub", err, sizeof err);
    if (!dn) {
        fprintf(stderr, "bus_lib_pub: %s\n", err);
        return 1;
    }
    /* One body whose n changes: what the loop measures is the library and the bus, not
     * jansson building the same small object 400,000 times. */
    json_t *body = json_pack("{s:I,s:s}", "n", (json_int_t)0, "name", "joe");
    json_t *seq = json_object_get(body, "n");
    long failed = 0;
    char first_failure[256] = "";
    double start = wall();
    for (long i = 0; i < n; i++) {
        json_integer_set(seq, first + i);
        int rc = devnode_emit_nowait(dn, "bench.evt", body, 0);
        if (rc != 0) {
            if (!failed++)
                snprintf(first_failure, sizeof first_failure, "event %ld: status %d: %s", i, rc,
                         devnode_last_error(dn));
        }
    }
    double loop_end = wall();
    int unconfirmed = devnode_close(dn);
    double close_end = wall();
    json_decref(body);
    if (failed)
        fprintf(stderr, "bus_lib_pub: %ld emit(s) failed, the first %s\n", failed, first_failure);
    printf("%.6f %.6f %.6f %ld %d\n", start, loop_end, close_end, failed, unconfirmed);
    return 0;
}
