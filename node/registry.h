/* registry: which service instances serve RPC, and where. Entries come from `register`,
 * leave on `unregister`, when their process exits, or when the node has heard nothing from
 * them (heartbeat, or any message on the connection they registered on) for 3 s.
 * It never connects to a service: callers resolve here and talk to services directly. */
#ifndef DEVNODE_REGISTRY_H
#define DEVNODE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "node/control.h"
#include "node/loghub.h"


struct registry_method {
    char *name;
    char **params;
    size_t param_count;
    char *help;
};

struct registry_entry {
    char *service;
    int instance;                    /* DEVNODE_INSTANCE, -1 for a process the node did not start */
    pid_t pid;
    char *endpoint;
    char identity[33];               /* 32 hex digits, stable for (service, instance, pid, endpoint) */
    struct registry_method *methods;
    size_t method_count;
    uint64_t registered_ms;          /* loop time */
    uint64_t last_heartbeat_ms;
    unsigned char routing[WIRE_IDENTITY_MAX]; /* the connection it registered on: any message */
    size_t routing_len;                       /* on it counts as a heartbeat */
};

struct registry {
    uv_loop_t *loop;
    struct loghub *hub;
    struct control *ctl;             /* heartbeats are judged against what it has read */
    struct registry_entry **entries; /* owned */
    size_t count, cap;
    uv_timer_t expiry;               /* drops entries whose heartbeats stopped */
};

void registry_init(struct registry *reg, uv_loop_t *loop, struct loghub *hub, struct control *ctl);
/* The process exited: its entry goes at once. */
void registry_on_process_exit(struct registry *reg, pid_t pid);
void registry_heartbeat(struct registry *reg, pid_t pid);
void registry_close(struct registry *reg);

#endif
