/* bus_caller.c: compiled and run by bench_bus.py.
 * The service-to-service path: a libdevnode caller (as Web calls Greeting), timing each
 * devnode_call of Greeting.lymph.ping after a warm-up. Prints the sorted latencies in ns. */
#include <devnode.h>
#include "bench/driver.h"

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) { fprintf(stderr, "connect: %s\n", err); return 1; }
    json_t *args = json_pack("{s:s}", "payload", "x");
    long long *lat = malloc(n * sizeof *lat);
    struct devnode_error e;
    for (long i = -500; i < n; i++) {
        json_t *res = NULL;
        long long t0 = now_ns();
        if (devnode_call(dn, "Greeting.lymph.ping", args, 5000, &res, &e) != 0) {
            fprintf(stderr, "call: %s\n", e.message);
            return 1;
        }
        if (i >= 0) lat[i] = now_ns() - t0;
        json_decref(res);
    }
    print_latencies(lat, n);
    json_decref(args);
    devnode_close(dn);
    return 0;
}
