/* zkregistry.c: the ZooKeeper registry in lymph's layout (see zkregistry.h).
 *
 * Threads: the caller's; the ZooKeeper client's completion thread, which runs every watcher
 * and asynchronous completion; and a keeper thread that replaces the handle after a session
 * expired and writes the registrations again. The cache is refreshed only by asynchronous
 * calls from the completion thread (a synchronous call there would wait for itself), and
 * every refresh carries a generation so an answer from an older read or an older session is
 * dropped rather than published. It must never block the completion thread, nor hand a
 * caller anything that a later refresh frees: snapshots are reference-counted. */
#include "lib/zkregistry.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define THREADED /* the synchronous calls of libzookeeper_mt */
#include <zookeeper/zookeeper.h>

#include "common/zkurl.h"

#define ZK_PATH_MAX (ZKURL_CHROOT_MAX + 512)

/* An immutable answer for one service; the cache and every list handed out share it. */
struct zk_snapshot {
    atomic_int refs;
    size_t count;
    struct zkreg_instance *insts; /* owned array */
    char **ids;                   /* owned: the znode names the insts point at */
    json_t **descs;               /* owned references */
};

struct zk_service {
    struct zkreg *z;
    char *name;                /* owned */
    char *path;                /* owned: <chroot>/services/<name> */
    uint64_t gen;              /* the refresh whose answer may be published (under mu) */
    int loaded;                /* a snapshot was published (under mu) */
    int stale;                 /* the last read failed: read again once connected (under mu) */
    struct zk_snapshot *snap;  /* owned reference (under mu) */
    struct zk_service *next;
};

struct zk_registration {
    char *service, *id;        /* owned */
    char *path;                /* owned */
    char *json;                /* owned: the description as written */
    int written;               /* in the current session */
    struct zk_registration *next;
};

struct zkreg {
    pthread_mutex_t mu;        /* guards the state and the cache below; never held over a round trip */
    pthread_cond_t cv;         /* connected, expired, loaded, closing changed */
    /* The handle: callers hold handle_lock for reading while they use it; the keeper takes
     * it for writing to swap it. The completion thread never takes it: its callbacks use
     * the handle they were called for, which stays valid until zookeeper_close joins them. */
    pthread_rwlock_t handle_lock;
    zhandle_t *zh;
    struct zkurl url;
    int session_timeout_ms;
    int connected, expired, closing;
    int lost;                  /* a lost connection was said on stderr: say when it is back */
    int64_t expired_session;   /* the session that expired, for the keeper's one line */
    /* Registrations: regs_mu is held across their writes, so the keeper and a caller never
     * write the same znode at once. The completion thread never takes it. Lock order:
     * handle_lock (read), regs_mu, mu. */
    pthread_mutex_t regs_mu;
    struct zk_registration *regs;   /* owned list, under regs_mu */
    struct zk_service *services;    /* owned list: the cache */
    struct zkreg_stats stats;
    pthread_t keeper;
    int keeper_started;
};

/* A read of one service in flight: the children, then each child's data. */
struct zk_read {
    struct zk_service *svc;
    uint64_t gen;
    zhandle_t *zh;
    size_t n, pending;        /* children; their reads still out (completion thread only) */
    int failed;
    char **ids;               /* owned until published */
    json_t **descs;           /* owned until published; NULL where a child went or is not JSON */
};

struct zk_get {
    struct zk_read *read;
    size_t index;
};

static void refresh(struct zk_service *svc, zhandle_t *zh);

/* ---- small helpers ----------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    return -1;
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* A znode name: what ZooKeeper accepts and a path cannot misread. */
static int valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 255 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 ||
        strcmp(s, "zookeeper") == 0)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f || *s == '/')
            return 0;
    return 1;
}

static void snapshot_unref(struct zk_snapshot *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->count; i++) {
        free(s->ids[i]);
        json_decref(s->descs[i]);
    }
    free(s->ids);
    free(s->descs);
    free(s->insts);
    free(s);
}

static void read_free(struct zk_read *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->ids[i]);
        json_decref(r->descs[i]);
    }
    free(r->ids);
    free(r->descs);
    free(r);
}

static const char *field(const json_t *desc, const char *key)
{
    return json_string_value(json_object_get(desc, key));
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct zkreg_instance *)a)->id, ((const struct zkreg_instance *)b)->id);
}

/* ---- the cache: reads from the completion thread ------------------------------------------ */

/* Makes the read's answer the service's snapshot, unless a newer read has started. Takes
 * the read's ids and descriptions. */
static void publish(struct zk_read *r)
{
    struct zk_service *svc = r->svc;
    struct zkreg *z = svc->z;
    struct zk_snapshot *s = calloc(1, sizeof *s);
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->descs[i] != NULL;
    if (s) {
        s->insts = calloc(n ? n : 1, sizeof *s->insts);
        s->ids = calloc(n ? n : 1, sizeof *s->ids);
        s->descs = calloc(n ? n : 1, sizeof *s->descs);
    }
    if (!s || !s->insts || !s->ids || !s->descs) {
        if (s) {
            free(s->insts);
            free(s->ids);
            free(s->descs);
            free(s);
        }
        pthread_mutex_lock(&z->mu);
        svc->stale = 1; /* out of memory: keep what we had and read again later */
        pthread_mutex_unlock(&z->mu);
        read_free(r);
        return;
    }
    atomic_init(&s->refs, 1);
    for (size_t i = 0; i < r->n; i++) {
        if (!r->descs[i])
            continue;
        s->ids[s->count] = r->ids[i];
        s->descs[s->count] = r->descs[i];
        r->ids[i] = NULL;
        r->descs[i] = NULL;
        struct zkreg_instance *in = &s->insts[s->count];
        in->id = s->ids[s->count];
        in->description = s->descs[s->count];
        in->endpoint = field(in->description, "endpoint");
        in->identity = field(in->description, "identity");
        in->wire = field(in->description, "wire");
        s->count++;
    }
    /* insts and ids are parallel only until sorted; the insts own nothing, so sort them alone */
    qsort(s->insts, s->count, sizeof *s->insts, by_id);

    struct zk_snapshot *old = NULL;
    pthread_mutex_lock(&z->mu);
    if (r->gen == svc->gen) {
        old = svc->snap;
        svc->snap = s;
        svc->loaded = 1;
        svc->stale = 0;
        s = NULL;
        pthread_cond_broadcast(&z->cv);
    }
    pthread_mutex_unlock(&z->mu);
    snapshot_unref(old);
    snapshot_unref(s);
    read_free(r);
}

static void read_failed(struct zk_read *r)
{
    struct zkreg *z = r->svc->z;
    pthread_mutex_lock(&z->mu);
    if (r->gen == r->svc->gen)
        r->svc->stale = 1; /* connection lost mid-read: read again once connected */
    pthread_mutex_unlock(&z->mu);
    read_free(r);
}

static void service_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    /* Session events reach every watcher; the global one handles them. A child's data
     * changing, the children changing, the service's node appearing or going: read again. */
    if (type == ZOO_CHILD_EVENT || type == ZOO_CHANGED_EVENT || type == ZOO_CREATED_EVENT ||
        type == ZOO_DELETED_EVENT)
        refresh(ctx, zh);
}

/* One child's read finished (failed: the connection went mid-read); the last one publishes. */
static void child_done(struct zk_read *r, int failed)
{
    r->failed |= failed;
    if (--r->pending > 0)
        return;
    if (r->failed)
        read_failed(r);
    else
        publish(r);
}

static void got_child(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
    struct zk_get *g = (struct zk_get *)data;
    struct zk_read *r = g->read;
    if (rc == ZOK && value && len > 0) {
        json_t *desc = json_loadb(value, (size_t)len, 0, NULL);
        if (json_is_object(desc))
            r->descs[g->index] = desc; /* anything else is not an instance devnode can call */
        else
            json_decref(desc);
    }
    free(g);
    child_done(r, rc != ZOK && rc != ZNONODE); /* ZNONODE: it went between the two reads */
}

static void got_exists(int rc, const struct Stat *stat, const void *data)
{
    struct zk_read *r = (struct zk_read *)data;
    if (rc == ZOK) {
        /* created between the two calls: the watch may have missed it, so read again */
        zhandle_t *zh = r->zh;
        struct zk_service *svc = r->svc;
        read_free(r);
        refresh(svc, zh);
    } else if (rc == ZNONODE) {
        publish(r); /* no such service (yet): an empty answer, and a watch for its creation */
    } else {
        read_failed(r);
    }
}

static void got_children(int rc, const struct String_vector *children, const void *data)
{
    struct zk_read *r = (struct zk_read *)data;
    struct zk_service *svc = r->svc;
    if (rc == ZNONODE) {
        if (zoo_awexists(r->zh, svc->path, service_watcher, svc, got_exists, r) != ZOK)
            read_failed(r);
        return;
    }
    if (rc != ZOK) {
        read_failed(r);
        return;
    }
    size_t n = children ? (size_t)children->count : 0;
    r->ids = calloc(n ? n : 1, sizeof *r->ids);
    r->descs = calloc(n ? n : 1, sizeof *r->descs);
    if (!r->ids || !r->descs) {
        read_failed(r);
        return;
    }
    r->n = n;
    if (n == 0) {
        publish(r);
        return;
    }
    /* One more than the gets, released below, so the read cannot finish while they go out
     * (completions run on this thread, but a refused call finishes here and now). */
    r->pending = n + 1;
    for (size_t i = 0; i < n; i++) {
        char path[ZK_PATH_MAX];
        r->ids[i] = strdup(children->data[i]);
        struct zk_get *g = malloc(sizeof *g);
        int ok = r->ids[i] && g &&
                 snprintf(path, sizeof path, "%s/%s", svc->path, children->data[i]) < (int)sizeof path;
        if (ok) {
            g->read = r;
            g->index = i;
            ok = zoo_awget(r->zh, path, service_watcher, svc, got_child, g) == ZOK;
        }
        if (!ok) {
            free(g);
            child_done(r, 1);
        }
    }
    child_done(r, 0);
}

/* Starts a read of the service on zh, superseding any read in flight. */
static void refresh(struct zk_service *svc, zhandle_t *zh)
{
    struct zkreg *z = svc->z;
    struct zk_read *r = calloc(1, sizeof *r);
    pthread_mutex_lock(&z->mu);
    uint64_t gen = ++svc->gen;
    z->stats.reads++;
    if (!r)
        svc->stale = 1;
    pthread_mutex_unlock(&z->mu);
    if (!r)
        return;
    r->svc = svc;
    r->gen = gen;
    r->zh = zh;
    if (zoo_awget_children(zh, svc->path, service_watcher, svc, got_children, r) != ZOK)
        read_failed(r);
}

/* ---- the session ------------------------------------------------------------------------- */

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    struct zkreg *z = ctx;
    if (type != ZOO_SESSION_EVENT)
        return;
    pthread_mutex_lock(&z->mu);
    /* One line on stderr when the connection goes and one when it is back, however many
     * attempts it took (the client's own log of each attempt is dropped by zk_log). */
    const char *say = NULL;
    int back = 0;
    if (state == ZOO_CONNECTED_STATE) {
        const clientid_t *id = zoo_client_id(zh);
        back = !z->connected && z->stats.session_id != 0;
        if (!z->connected && id && id->client_id != z->stats.session_id) {
            z->stats.sessions++;
            z->stats.session_id = id->client_id;
        }
        z->connected = 1;
        if (z->lost && !z->closing)
            say = "connected to ZooKeeper again in the same session; the cached services are read again";
        z->lost = 0;
    } else if (state == ZOO_EXPIRED_SESSION_STATE) {
        z->connected = 0;
        z->expired = 1;        /* the keeper makes a new session, registers again and says so */
        z->expired_session = z->stats.session_id;
        z->stats.session_id = 0;
        z->lost = 0;
    } else {
        if (z->connected && !z->closing) {
            say = "lost the connection to ZooKeeper; lookups answer from the cache until it is back";
            z->lost = 1;
        }
        z->connected = 0;      /* connecting again, within the session: watches come back */
    }
    /* Back in the same session: every cached service is read again, not only those whose read
     * failed, so nothing that changed while the connection was away is left out of the cache
     * (the client's re-armed watches would say so too; a read costs little and is certain).
     * Entries are only ever added at the head and freed at close, so the list holds still. */
    struct zk_service *head = back ? z->services : NULL;
    pthread_cond_broadcast(&z->cv);
    pthread_mutex_unlock(&z->mu);
    if (say)
        fprintf(stderr, "registry zookeeper://%s%s: %s\n", z->url.hosts, z->url.chroot, say);
    for (struct zk_service *s = head; s; s = s->next)
        refresh(s, zh);
}

/* The client's own log: keep its warnings and errors on stderr, drop its chatter, and drop
 * what it says about the connection: two lines per attempt, every few tens of milliseconds
 * while the server is away, which the session watcher above says once instead. */
static void zk_log(const char *message)
{
    static const char *const connection_noise[] = {"@check_events@", "@zookeeper_interest@",
                                                   "@handle_socket_error_msg@", "@handle_error@"};
    if (!strstr(message, "ZOO_ERROR") && !strstr(message, "ZOO_WARN"))
        return;
    for (size_t i = 0; i < sizeof connection_noise / sizeof *connection_noise; i++)
        if (strstr(message, connection_noise[i]))
            return;
    fprintf(stderr, "zookeeper: %s\n", message);
}

static zhandle_t *zk_connect(struct zkreg *z)
{
    return zookeeper_init2(z->url.hosts, session_watcher, z->session_timeout_ms, NULL, z, 0, zk_log);
}

/* Waits until connected, closing or deadline (mu held). Returns 1 when connected. */
static int wait_connected(struct zkreg *z, int timeout_ms)
{
    struct timespec dl;
    deadline_in(&dl, timeout_ms);
    while (!z->connected && !z->closing && !z->expired)
        if (pthread_cond_timedwait(&z->cv, &z->mu, &dl) == ETIMEDOUT)
            break;
    return z->connected;
}

/* Creates path's ancestors (persistent, empty) below the root; an existing one is fine. */
static int ensure_parents(zhandle_t *zh, const char *path)
{
    char buf[ZK_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        int rc = zoo_create(zh, buf, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
        *p = '/';
        if (rc != ZOK && rc != ZNODEEXISTS)
            return rc;
    }
    return ZOK;
}

/* Writes one registration on zh: the parents, then delete-and-create as lymph does. */
static int write_registration(zhandle_t *zh, const struct zk_registration *reg)
{
    int rc = ensure_parents(zh, reg->path);
    if (rc != ZOK)
        return rc;
    rc = zoo_delete(zh, reg->path, -1);
    if (rc != ZOK && rc != ZNONODE)
        return rc;
    return zoo_create(zh, reg->path, reg->json, (int)strlen(reg->json), &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL,
                      0);
}

static void registration_free(struct zk_registration *reg)
{
    free(reg->service);
    free(reg->id);
    free(reg->path);
    free(reg->json);
    free(reg);
}

/* After an expiry: a new session, then every registration written again and every cached
 * service read again (their watches went with the old session). Runs until closing. */
static void *keeper_main(void *arg)
{
    struct zkreg *z = arg;
    pthread_mutex_lock(&z->mu);
    while (!z->closing) {
        if (!z->expired) {
            pthread_cond_wait(&z->cv, &z->mu);
            continue;
        }
        z->expired = 0;
        pthread_mutex_unlock(&z->mu);

        pthread_mutex_lock(&z->regs_mu);
        for (struct zk_registration *reg = z->regs; reg; reg = reg->next)
            reg->written = 0; /* they went with the session */
        pthread_mutex_unlock(&z->regs_mu);
        pthread_rwlock_wrlock(&z->handle_lock);
        zookeeper_close(z->zh);
        z->zh = zk_connect(z);
        pthread_rwlock_unlock(&z->handle_lock);

        pthread_mutex_lock(&z->mu);
        if (!z->zh) {
            /* cannot even make a handle (out of memory, no resolvable host): try again soon */
            z->expired = 1;
            struct timespec dl;
            deadline_in(&dl, 1000);
            pthread_cond_timedwait(&z->cv, &z->mu, &dl);
            continue;
        }
        while (!z->connected && !z->closing && !z->expired)
            pthread_cond_wait(&z->cv, &z->mu);
        if (z->closing || z->expired)
            continue;
        pthread_mutex_unlock(&z->mu);

        /* Only this thread swaps the handle; callers registering meanwhile hold the read
         * lock too and regs_mu orders their writes with these. A write that fails (the
         * connection went again) is retried every half second until the session is back
         * or gone. */
        pthread_rwlock_rdlock(&z->handle_lock);
        zhandle_t *zh = z->zh;
        pthread_mutex_lock(&z->regs_mu);
        size_t restored = 0, failed;
        do {
            failed = 0;
            for (struct zk_registration *reg = z->regs; reg; reg = reg->next) {
                if (reg->written)
                    continue;
                if (write_registration(zh, reg) == ZOK) {
                    reg->written = 1;
                    restored++;
                } else {
                    failed++;
                }
            }
            if (failed) {
                pthread_mutex_lock(&z->mu);
                struct timespec dl;
                deadline_in(&dl, 500);
                if (!z->closing && !z->expired)
                    pthread_cond_timedwait(&z->cv, &z->mu, &dl);
                int give_up = z->closing || z->expired;
                pthread_mutex_unlock(&z->mu);
                if (give_up)
                    break;
            }
        } while (failed);
        pthread_mutex_unlock(&z->regs_mu);
        pthread_mutex_lock(&z->mu);
        z->stats.restored += restored;
        struct zk_service *list = z->services;
        long long old_id = (long long)z->expired_session, new_id = (long long)z->stats.session_id;
        int quiet = z->closing || new_id == 0;
        pthread_mutex_unlock(&z->mu);
        /* the one line an expiry is worth: the instance was out of the registry meanwhile */
        if (!quiet)
            fprintf(stderr,
                "registry zookeeper://%s%s: the ZooKeeper session 0x%llx expired; renewed as 0x%llx, %zu "
                "registration(s) written again%s\n",
                z->url.hosts, z->url.chroot, old_id, new_id, restored, failed ? " (some failed: retried later)" : "");
        /* Entries are only ever added at the head, so `list` onwards stays valid. */
        for (struct zk_service *s = list; s; s = s->next)
            refresh(s, zh);
        pthread_rwlock_unlock(&z->handle_lock);
        pthread_mutex_lock(&z->mu);
    }
    pthread_mutex_unlock(&z->mu);
    return NULL;
}

/* ---- the API ----------------------------------------------------------------------------- */

int zkreg_open(struct zkreg **out, const char *url, int session_timeout_ms, char *err, size_t errlen)
{
    *out = NULL;
    struct zkreg *z = calloc(1, sizeof *z);
    if (!z)
        return fail(err, errlen, "out of memory%s%s", "", "");
    if (zkurl_parse(url, &z->url, err, errlen) < 0) {
        free(z);
        return -1;
    }
    z->session_timeout_ms = session_timeout_ms > 0 ? session_timeout_ms : 10000;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&z->mu, NULL);
    pthread_mutex_init(&z->regs_mu, NULL);
    pthread_cond_init(&z->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_rwlock_init(&z->handle_lock, NULL);

    z->zh = zk_connect(z);
    if (!z->zh) {
        fail(err, errlen, "cannot start a ZooKeeper client for %s: %s", z->url.hosts, strerror(errno));
        goto undo_locks;
    }
    pthread_mutex_lock(&z->mu);
    int up = wait_connected(z, z->session_timeout_ms);
    pthread_mutex_unlock(&z->mu);
    if (!up) {
        char ms[32];
        snprintf(ms, sizeof ms, "%d", z->session_timeout_ms);
        fail(err, errlen, "no ZooKeeper session with %s within %s ms", z->url.hosts, ms);
        goto undo_handle;
    }
    if (pthread_create(&z->keeper, NULL, keeper_main, z) != 0) {
        fail(err, errlen, "cannot start the registry's keeper thread: %s%s", strerror(errno), "");
        goto undo_handle;
    }
    z->keeper_started = 1;
    *out = z;
    return 0;

undo_handle:
    zookeeper_close(z->zh);
undo_locks:
    pthread_rwlock_destroy(&z->handle_lock);
    pthread_cond_destroy(&z->cv);
    pthread_mutex_destroy(&z->regs_mu);
    pthread_mutex_destroy(&z->mu);
    free(z);
    return -1;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* lymph's description (ServiceContainer.get_instance_description) plus devnode's wire. */
static char *describe(const struct zkreg_desc *d)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", str_or_null(d->id));
    json_object_set_new(o, "identity", str_or_null(d->identity));
    json_object_set_new(o, "version", str_or_null(d->version));
    json_object_set_new(o, "endpoint", str_or_null(d->endpoint));
    json_object_set_new(o, "log_endpoint", str_or_null(d->log_endpoint));
    json_object_set_new(o, "monitoring_endpoint", json_null());
    json_object_set_new(o, "backdoor_endpoint", json_null());
    json_object_set_new(o, "fqdn", str_or_null(d->fqdn ? d->fqdn : d->hostname));
    json_object_set_new(o, "hostname", str_or_null(d->hostname));
    json_object_set_new(o, "ip", str_or_null(d->ip));
    json_object_set_new(o, "type", json_false()); /* lymph's quirk: the container's `worker` flag */
    json_object_set_new(o, "wire", str_or_null(d->wire));
    if (d->pid > 0)
        json_object_set_new(o, "pid", json_integer(d->pid));
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return text;
}

int zkreg_register(struct zkreg *z, const struct zkreg_desc *d, char *err, size_t errlen)
{
    if (!valid_name(d->service))
        return fail(err, errlen, "registry: '%s' cannot be a service's znode name%s", d->service ? d->service : "", "");
    if (!valid_name(d->id))
        return fail(err, errlen, "registry: '%s' cannot be an instance's znode name%s", d->id ? d->id : "", "");
    struct zk_registration *reg = calloc(1, sizeof *reg);
    char path[ZK_PATH_MAX];
    snprintf(path, sizeof path, "%s/services/%s/%s", z->url.chroot, d->service, d->id);
    if (!reg || !(reg->service = strdup(d->service)) || !(reg->id = strdup(d->id)) || !(reg->path = strdup(path)) ||
        !(reg->json = describe(d))) {
        if (reg)
            registration_free(reg);
        return fail(err, errlen, "out of memory%s%s", "", "");
    }
    pthread_rwlock_rdlock(&z->handle_lock);
    pthread_mutex_lock(&z->regs_mu);
    int rc = write_registration(z->zh, reg);
    if (rc == ZOK) {
        reg->written = 1;
        /* replaces a registration of the same znode */
        for (struct zk_registration **link = &z->regs; *link; link = &(*link)->next) {
            if (strcmp((*link)->path, reg->path) == 0) {
                struct zk_registration *old = *link;
                *link = old->next;
                registration_free(old);
                break;
            }
        }
        reg->next = z->regs;
        z->regs = reg;
    }
    pthread_mutex_unlock(&z->regs_mu);
    pthread_rwlock_unlock(&z->handle_lock);
    if (rc != ZOK) {
        fail(err, errlen, "registry: cannot write %s: %s", path, zerror(rc));
        registration_free(reg);
        return -1;
    }
    return 0;
}

int zkreg_unregister(struct zkreg *z, const char *service, const char *id, char *err, size_t errlen)
{
    if (!valid_name(service) || !valid_name(id))
        return fail(err, errlen, "registry: no such registration %s/%s", service ? service : "", id ? id : "");
    char path[ZK_PATH_MAX];
    snprintf(path, sizeof path, "%s/services/%s/%s", z->url.chroot, service, id);
    pthread_rwlock_rdlock(&z->handle_lock);
    pthread_mutex_lock(&z->regs_mu);
    for (struct zk_registration **link = &z->regs; *link; link = &(*link)->next) {
        if (strcmp((*link)->path, path) == 0) {
            struct zk_registration *old = *link;
            *link = old->next;
            registration_free(old);
            break;
        }
    }
    int rc = zoo_delete(z->zh, path, -1);
    pthread_mutex_unlock(&z->regs_mu);
    pthread_rwlock_unlock(&z->handle_lock);
    if (rc != ZOK && rc != ZNONODE)
        return fail(err, errlen, "registry: cannot delete %s: %s", path, zerror(rc));
    return 0;
}

int zkreg_lookup(struct zkreg *z, const char *service, struct zkreg_list *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!valid_name(service))
        return fail(err, errlen, "registry: '%s' cannot be a service's name%s", service ? service : "", "");
    pthread_mutex_lock(&z->mu);
    z->stats.lookups++;
    struct zk_service *svc = z->services;
    while (svc && strcmp(svc->name, service) != 0)
        svc = svc->next;
    if (!svc) {
        /* First lookup: make the entry, read it (which sets the watches) and wait for that. */
        char path[ZK_PATH_MAX];
        snprintf(path, sizeof path, "%s/services/%s", z->url.chroot, service);
        svc = calloc(1, sizeof *svc);
        if (!svc || !(svc->name = strdup(service)) || !(svc->path = strdup(path))) {
            if (svc)
                free(svc->name);
            free(svc);
            pthread_mutex_unlock(&z->mu);
            return fail(err, errlen, "out of memory%s%s", "", "");
        }
        svc->z = z;
        svc->next = z->services;
        z->services = svc;
        z->stats.first_reads++;
        pthread_mutex_unlock(&z->mu);
        pthread_rwlock_rdlock(&z->handle_lock);
        refresh(svc, z->zh);
        pthread_rwlock_unlock(&z->handle_lock);
        pthread_mutex_lock(&z->mu);
    }
    if (!svc->loaded) {
        struct timespec dl;
        deadline_in(&dl, z->session_timeout_ms);
        while (!svc->loaded && !z->closing)
            if (pthread_cond_timedwait(&z->cv, &z->mu, &dl) == ETIMEDOUT)
                break;
    }
    struct zk_snapshot *s = svc->snap;
    if (s)
        atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&z->mu);
    if (!s)
        return fail(err, errlen, "registry: no answer from ZooKeeper at %s about %s", z->url.hosts, service);
    out->count = s->count;
    out->insts = s->insts;
    out->snapshot = s;
    return 0;
}

void zkreg_list_free(struct zkreg_list *list)
{
    if (!list)
        return;
    snapshot_unref(list->snapshot);
    memset(list, 0, sizeof *list);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void zkreg_names_free(char **names, size_t count)
{
    for (size_t i = 0; names && i < count; i++)
        free(names[i]);
    free(names);
}

int zkreg_services(struct zkreg *z, char ***names, size_t *count, char *err, size_t errlen)
{
    *names = NULL;
    *count = 0;
    char path[ZK_PATH_MAX];
    snprintf(path, sizeof path, "%s/services", z->url.chroot);
    struct String_vector children = {0};
    pthread_rwlock_rdlock(&z->handle_lock);
    int rc = zoo_get_children(z->zh, path, 0, &children);
    pthread_rwlock_unlock(&z->handle_lock);
    if (rc == ZNONODE)
        return 0;
    if (rc != ZOK)
        return fail(err, errlen, "registry: cannot list %s: %s", path, zerror(rc));
    char **out = children.count ? calloc((size_t)children.count, sizeof *out) : NULL;
    size_t n = 0;
    for (int32_t i = 0; out && i < children.count; i++)
        if (!(out[n] = strdup(children.data[i])))
            break;
        else
            n++;
    int short_of_memory = children.count && n < (size_t)children.count;
    deallocate_String_vector(&children);
    if (short_of_memory) {
        zkreg_names_free(out, n);
        return fail(err, errlen, "out of memory%s%s", "", "");
    }
    qsort(out, n, sizeof *out, by_name);
    *names = out;
    *count = n;
    return 0;
}

void zkreg_get_stats(struct zkreg *z, struct zkreg_stats *out)
{
    pthread_mutex_lock(&z->mu);
    *out = z->stats;
    pthread_mutex_unlock(&z->mu);
}

void zkreg_close(struct zkreg *z)
{
    if (!z)
        return;
    pthread_mutex_lock(&z->mu);
    z->closing = 1;
    pthread_cond_broadcast(&z->cv);
    pthread_mutex_unlock(&z->mu);
    if (z->keeper_started)
        pthread_join(z->keeper, NULL);
    /* Closing the session deletes its ephemeral znodes at once and joins the client's
     * threads, so no callback runs after this. */
    if (z->zh)
        zookeeper_close(z->zh);
    while (z->regs) {
        struct zk_registration *reg = z->regs;
        z->regs = reg->next;
        registration_free(reg);
    }
    while (z->services) {
        struct zk_service *s = z->services;
        z->services = s->next;
        snapshot_unref(s->snap);
        free(s->name);
        free(s->path);
        free(s);
    }
    pthread_rwlock_destroy(&z->handle_lock);
    pthread_cond_destroy(&z->cv);
    pthread_mutex_destroy(&z->regs_mu);
    pthread_mutex_destroy(&z->mu);
    free(z);
}
