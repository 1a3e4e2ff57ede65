/* stream_lib_replay.c: compiled and run by bench_streams.py.
 * A libdevnode service whose start-up replays the stream, as the bookshelf's view does. */
#include <devnode.h>
#include "bench/driver.h"

static int on_event(const struct devnode_event *ev, void *ctx)
{
    long *count = ctx;
    if (json_integer_value(json_object_get(ev->body, "n")) == *count) /* a handler looks at the body */
        (*count)++;
    return 0;
}

int main(void)
{
    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    long count = 0;
    devnode_subscribe_stream(dn, "bench", "book.#", NULL, "beginning", DEVNODE_BROADCAST | DEVNODE_CATCH_UP,
                             on_event, &count);
    double t0 = mono();
    int rc = devnode_start(dn);
    double took = mono() - t0;
    if (rc != 0)
        fprintf(stderr, "%s\n", devnode_last_error(dn));
    printf("%.6f %ld\n", took, count);
    devnode_close(dn);
    return rc != 0;
}
