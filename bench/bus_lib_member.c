/* bus_lib_member.c: compiled by bench_bus.py and run by the node as one instance of a
 * 4-member group (the library run). A service as its author writes it: devnode_connect,
 * devnode_subscribe with default settings, devnode_run. The handler returns 0 and does no
 * I/O: it keeps the event's n in memory and stores its count and the time of the last event
 * in a shared page (DIR/live.<instance>) the bench polls. Once devnode_run returns (SIGTERM)
 * the n's go to DIR/seqs.<instance> (uint32 each, in the order handled). */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <devnode.h>
#include "bench/driver.h"

/* The shared page, read by bench_bus.py as "<QdQQ". */
struct live {
    volatile uint64_t count;       /* events handled */
    volatile double last;          /* wall-clock time the last one was handled */
    volatile uint64_t ready;       /* 1 once the subscription is in place */
    volatile uint64_t redelivered; /* events that came with the redelivered flag */
};

struct member {
    struct live *live;
    uint32_t *seqs;
    size_t count, cap;
    int out_of_memory;
};

static int on_event(const struct devnode_event *ev, void *ctx)
{
    struct member *m = ctx;
    if (m->count == m->cap) {
        uint32_t *more = realloc(m->seqs, m->cap * 2 * sizeof *more);
        if (!more) {
            m->out_of_memory = 1;
            return 0;
        }
        m->seqs = more;
        m->cap *= 2;
    }
    m->seqs[m->count++] = (uint32_t)json_integer_value(json_object_get(ev->body, "n"));
    m->live->redelivered += ev->redelivered != 0;
    m->live->last = wall();
    m->live->count = m->count;
    return 0;
}

static struct live *open_live(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, sizeof(struct live)) < 0)
        return NULL;
    void *p = mmap(NULL, sizeof(struct live), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bus_lib_member DIR\n");
        return 2;
    }
    char err[256], path[4096];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "bus_lib_member: %s\n", err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/live.%d", argv[1], devnode_instance(dn));
    struct member m = {.live = open_live(path), .cap = 1 << 17};
    m.seqs = malloc(m.cap * sizeof *m.seqs);
    if (!m.live || !m.seqs) {
        fprintf(stderr, "bus_lib_member: %s: cannot map the shared page or allocate\n", path);
        return 1;
    }
    if (devnode_subscribe(dn, "bench.evt", 0, on_event, &m) != 0 || devnode_start(dn) != 0) {
        fprintf(stderr, "bus_lib_member: %s\n", devnode_last_error(dn));
        return 1;
    }
    m.live->ready = 1;
    int rc = devnode_run(dn);
    snprintf(path, sizeof path, "%s/seqs.%d", argv[1], devnode_instance(dn));
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    /* Renamed once complete, so the bench never reads half a file. */
    if (!f || fwrite(m.seqs, sizeof *m.seqs, m.count, f) != m.count || fclose(f) != 0 || rename(tmp, path) != 0)
        fprintf(stderr, "bus_lib_member: cannot write %s\n", path);
    if (m.out_of_memory)
        fprintf(stderr, "bus_lib_member: out of memory: some events were not recorded\n");
    devnode_close(dn);
    free(m.seqs);
    return rc;
}
