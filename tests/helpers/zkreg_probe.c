/* zkreg_probe: drives lib/zkregistry.c for the e2e tests and the bench, one command a line
 * on stdin, one JSON line of answer on stdout:
 *   register SERVICE ID ENDPOINT [WIRE]   lymph's description, WIRE "-" for none
 *   unregister SERVICE ID
 *   lookup SERVICE                        {"ok":true,"instances":[{"id","endpoint","wire"}...]}
 *   stats                                 the module's counters
 *   bench SERVICE N                       N cached lookups beside N reads from ZooKeeper
 *   quit
 * Usage: zkreg_probe URL SESSION_TIMEOUT_MS. The first line says the session is up (or why
 * not, exit 1). It never registers anything it was not told to. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define THREADED
#include <zookeeper/zookeeper.h>

#include "common/zkurl.h"
#include "lib/zkregistry.h"

static void say(json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\n", text);
    fflush(stdout);
    free(text);
    json_decref(o);
}

static void fail_line(const char *err)
{
    say(json_pack("{sbss}", "ok", 0, "error", err));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the round-trip side of the bench: what a lookup costs without the cache ------------- */

static pthread_mutex_t raw_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t raw_cv = PTHREAD_COND_INITIALIZER;
static int raw_connected;

static void raw_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) {
        pthread_mutex_lock(&raw_mu);
        raw_connected = 1;
        pthread_cond_broadcast(&raw_cv);
        pthread_mutex_unlock(&raw_mu);
    }
}

static void quiet_log(const char *message)
{
}

/* One lookup the way a client without a cache does it: the children, then each one's data. */
static int raw_lookup(zhandle_t *zh, const char *base)
{
    struct String_vector kids;
    if (zoo_get_children(zh, base, 0, &kids) != ZOK)
        return -1;
    int n = kids.count;
    for (int i = 0; i < kids.count; i++) {
        char path[1024], buf[4096];
        int len = sizeof buf;
        snprintf(path, sizeof path, "%s/%s", base, kids.data[i]);
        json_t *d = zoo_get(zh, path, 0, buf, &len, NULL) == ZOK ? json_loadb(buf, (size_t)len, 0, NULL) : NULL;
        json_decref(d);
    }
    deallocate_String_vector(&kids);
    return n;
}

static void bench(struct zkreg *z, const char *url, const char *service, long n)
{
    char err[512];
    struct zkurl u;
    zkurl_parse(url, &u, err, sizeof err);
    zhandle_t *zh = zookeeper_init2(u.hosts, raw_watcher, 10000, NULL, NULL, 0, quiet_log);
    pthread_mutex_lock(&raw_mu);
    while (zh && !raw_connected)
        pthread_cond_wait(&raw_cv, &raw_mu);
    pthread_mutex_unlock(&raw_mu);
    if (!zh) {
        fail_line("cannot connect the round-trip client");
        return;
    }
    char base[1024];
    snprintf(base, sizeof base, "%s/services/%s", u.chroot, service);

    struct zkreg_stats before, after;
    struct zkreg_list warm;
    if (zkreg_lookup(z, service, &warm, err, sizeof err) < 0) {
        zookeeper_close(zh);
        fail_line(err);
        return;
    }
    size_t count = warm.count;
    zkreg_list_free(&warm);
    zkreg_get_stats(z, &before);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        struct zkreg_list l;
        zkreg_lookup(z, service, &l, err, sizeof err);
        zkreg_list_free(&l);
    }
    double cached = now_s() - t0;
    zkreg_get_stats(z, &after);
    long rounds = n < 2000 ? n : 2000; /* round trips are slow: a bounded sample */
    t0 = now_s();
    for (long i = 0; i < rounds; i++)
        raw_lookup(zh, base);
    double raw = now_s() - t0;
    zookeeper_close(zh);
    say(json_pack("{sbsIsIsfsIsfsI}", "ok", 1, "instances", (json_int_t)count, "lookups", (json_int_t)n,
                  "cached_ns_per_lookup", cached / n * 1e9, "round_trips", (json_int_t)rounds,
                  "round_trip_ns_per_lookup", raw / rounds * 1e9, "reads_during_cached",
                  (json_int_t)(after.reads - before.reads)));
}

/* ---- the commands ------------------------------------------------------------------------- */

static void lookup(struct zkreg *z, const char *service)
{
    char err[512];
    struct zkreg_list l;
    if (zkreg_lookup(z, service, &l, err, sizeof err) < 0) {
        fail_line(err);
        return;
    }
    json_t *insts = json_array();
    for (size_t i = 0; i < l.count; i++)
        json_array_append_new(insts, json_pack("{s:s, s:s?, s:s?}", "id", l.insts[i].id, "endpoint", l.insts[i].endpoint,
                                               "wire", l.insts[i].wire));
    zkreg_list_free(&l);
    say(json_pack("{sbso}", "ok", 1, "instances", insts));
}

static void stats(struct zkreg *z)
{
    struct zkreg_stats s;
    zkreg_get_stats(z, &s);
    say(json_pack("{sbsIsIsIsIsIsI}", "ok", 1, "lookups", (json_int_t)s.lookups, "first_reads",
                  (json_int_t)s.first_reads, "reads", (json_int_t)s.reads, "sessions", (json_int_t)s.sessions,
                  "restored", (json_int_t)s.restored, "session_id", (json_int_t)s.session_id));
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: zkreg_probe URL SESSION_TIMEOUT_MS\n");
        return 2;
    }
    char err[512];
    struct zkreg *z;
    if (zkreg_open(&z, argv[1], atoi(argv[2]), err, sizeof err) < 0) {
        fail_line(err);
        return 1;
    }
    struct zkreg_stats s;
    zkreg_get_stats(z, &s);
    say(json_pack("{sbsI}", "ok", 1, "session_id", (json_int_t)s.session_id));

    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        char *words[8] = {0};
        int nw = 0;
        for (char *save = NULL, *w = strtok_r(line, " \t\r\n", &save); w && nw < 8; w = strtok_r(NULL, " \t\r\n", &save))
            words[nw++] = w;
        if (nw == 0)
            continue;
        if (strcmp(words[0], "register") == 0 && nw >= 4) {
            char host[256] = "";
            gethostname(host, sizeof host - 1);
            const char *wire = nw >= 5 ? (strcmp(words[4], "-") == 0 ? NULL : words[4]) : ZKREG_WIRE_DEVNODE;
            struct zkreg_desc d = {.service = words[1], .id = words[2], .identity = words[2], .endpoint = words[3],
                                   .hostname = host, .ip = "127.0.0.1", .wire = wire, .pid = (long)getpid()};
            if (zkreg_register(z, &d, err, sizeof err) < 0)
                fail_line(err);
            else
                say(json_pack("{sb}", "ok", 1));
        } else if (strcmp(words[0], "unregister") == 0 && nw == 3) {
            if (zkreg_unregister(z, words[1], words[2], err, sizeof err) < 0)
                fail_line(err);
            else
                say(json_pack("{sb}", "ok", 1));
        } else if (strcmp(words[0], "lookup") == 0 && nw == 2) {
            lookup(z, words[1]);
        } else if (strcmp(words[0], "stats") == 0) {
            stats(z);
        } else if (strcmp(words[0], "bench") == 0 && nw == 3) {
            bench(z, argv[1], words[1], atol(words[2]) > 0 ? atol(words[2]) : 1);
        } else if (strcmp(words[0], "quit") == 0) {
            break;
        } else {
            fail_line("unknown command");
        }
    }
    zkreg_close(z);
    return 0;
}
