/* zkregistry: the service registry on ZooKeeper, in lymph's layout (issue 19). An instance
 * registers an ephemeral znode <chroot>/services/<Service>/<id> holding lymph's JSON
 * description; it goes with the session when the process dies, and is written again after
 * the session expires. Lookups answer from a cache that watches keep current: a call costs
 * one cached lookup (a mutex and a reference count), not a round trip to ZooKeeper.
 *
 * Self-contained (libzookeeper_mt, jansson, pthreads): lib/remote.c and `devnode discover` use it. The
 * client's threads (I/O, completion) and one keeper thread of its own run beside the
 * caller's; every function here may be called from any one thread of the caller's. */
#ifndef DEVNODE_ZKREGISTRY_H
#define DEVNODE_ZKREGISTRY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The RPC wire a registration speaks (its "wire" field). A client calls only instances whose
 * wire it speaks; lymph's own processes register none (the 2016 ZeroMQ wire). */
#define ZKREG_WIRE_DEVNODE "devnode/1"

struct zkreg;

/* What an instance registers; NULL strings are written as JSON null. */
struct zkreg_desc {
    const char *service;      /* the znode's parent: <chroot>/services/<service> */
    const char *id;           /* the znode's name and the description's "id" */
    const char *identity;
    const char *endpoint;     /* where its RPC listens: tcp://<ip>:<port> */
    const char *log_endpoint;
    const char *hostname;
    const char *fqdn;
    const char *ip;
    const char *version;      /* semver text or NULL */
    const char *wire;         /* ZKREG_WIRE_DEVNODE */
    long pid;                 /* 0: not written */
};

/* One registered instance as a lookup saw it. Every pointer lives as long as its list. */
struct zkreg_instance {
    const char *id;           /* the znode's name */
    const char *endpoint;     /* NULL when the description has none */
    const char *identity;     /* NULL when absent */
    const char *wire;         /* NULL when absent: a lymph process, not callable by devnode */
    const json_t *description; /* the whole description, read-only */
};

/* A lookup's answer: instances sorted by id. Free with zkreg_list_free. */
struct zkreg_list {
    size_t count;
    const struct zkreg_instance *insts;
    void *snapshot;           /* private: the cache entry this borrows from */
};

struct zkreg_stats {
    uint64_t lookups;         /* zkreg_lookup calls answered */
    uint64_t first_reads;     /* lookups of a service not cached yet (they wait for one read) */
    uint64_t reads;           /* reads of a service's children from ZooKeeper (round trips) */
    uint64_t sessions;        /* sessions established: 1, plus one per expiry survived */
    uint64_t restored;        /* registrations written again in a new session */
    int64_t session_id;       /* the current session, 0 while there is none */
};

/* Connects to the registry `url` names (zookeeper://host:port[,...][/chroot]) and waits up
 * to session_timeout_ms for the session. Returns 0, or -1 with err filled. */
int zkreg_open(struct zkreg **out, const char *url, int session_timeout_ms, char *err, size_t errlen);

/* Writes the ephemeral znode (deleting one of the same path first, as lymph does, so a fast
 * restart is not refused by its own previous session's znode) and keeps it for
 * re-registration after an expiry. Returns 0 or -1 with err filled. */
int zkreg_register(struct zkreg *z, const struct zkreg_desc *d, char *err, size_t errlen);
int zkreg_unregister(struct zkreg *z, const char *service, const char *id, char *err, size_t errlen);

/* The instances of `service`, from the cache; the first lookup of a service reads it and
 * sets the watches (waiting up to the session timeout). No instances: count 0, returns 0. */
int zkreg_lookup(struct zkreg *z, const char *service, struct zkreg_list *out, char *err, size_t errlen);
void zkreg_list_free(struct zkreg_list *list);

/* The names of the services that have a znode (the children of <chroot>/services), sorted, in
 * one round trip and not cached: for listing them all (`devnode discover`), not for calls.
 * Free with zkreg_names_free. Returns 0 (none: count 0) or -1 with err filled. */
int zkreg_services(struct zkreg *z, char ***names, size_t *count, char *err, size_t errlen);
void zkreg_names_free(char **names, size_t count);

void zkreg_get_stats(struct zkreg *z, struct zkreg_stats *out);

/* Closes the session (its znodes go at once) and frees everything but the lists still held. */
void zkreg_close(struct zkreg *z);

#endif
