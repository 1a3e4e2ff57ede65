/* sockets: the listening sockets of `sockets:` in .lymph.yml, bound once by the node before
 * any worker starts and kept open for the node's whole life, so the port never closes while
 * workers come and go. It only binds and describes; passing them is spawn's job. */
#ifndef DEVNODE_SOCKETS_H
#define DEVNODE_SOCKETS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* How long connections may wait in an accept queue that never shrinks before the node says
 * that nobody takes them. */
#define SOCKETS_STALL_MS 5000

/* A TCP socket's accept queue as sampled by the node: a run of samples in which it is
 * non-empty and never shrinks means no worker accepted (a shrink is an accept). */
struct socket_queue {
    int waiting;                /* connections the kernel holds for accept(); -1 unknown (unix) */
    uint64_t waiting_since_ms;  /* first sample of the current run; meaningful while waiting > 0 */
    int stalled;                /* the run passed SOCKETS_STALL_MS (and was reported) */
};

enum socket_queue_event {
    SOCKET_QUEUE_NO_CHANGE,
    SOCKET_QUEUE_STALLED,  /* just passed SOCKETS_STALL_MS: say so once */
    SOCKET_QUEUE_MOVING,   /* was stalled; a worker accepted or the queue drained */
};

struct bound_socket {
    const struct config_socket *cfg;
    const char *config_path; /* the .lymph.yml it came from, for messages */
    int fd;              /* listening, close-on-exec; owned */
    int family;          /* AF_INET, AF_INET6 or AF_UNIX */
    int port;            /* the bound port (a real one when the config said 0); -1 for unix */
    char address[320];   /* "127.0.0.1:4080", "[::1]:4080" or "unix:/path" */
    struct socket_queue queue;
};

struct socket_set {
    struct bound_socket *items;
    size_t count;
};

#define SOCKETS_BACKLOG 1024

/* Binds every configured socket. Returns 0, or -1 with err naming the socket, the address
 * and, for a port in use, the process holding it. On failure nothing stays bound. */
int sockets_bind_all(struct socket_set *set, const struct config *cfg, char *err, size_t errlen);
void sockets_close_all(struct socket_set *set);
/* A reload's sockets: `set` becomes the sockets of `cfg`. A socket whose address did not
 * change keeps its listening fd (and its struct's contents: it moves to a new array), and so
 * does one renamed or given the address another had (ports swapped); a new or moved one is
 * bound. Returns 0 with *retired holding the old array's sockets that are
 * not kept (close them with sockets_close_all once nothing points to them) and *old_items
 * the old array (free it then too: what pointed into it must be re-pointed first). Returns
 * -1 with err when a bind fails; then nothing changed and nothing new stays bound. */
int sockets_rebind(struct socket_set *set, const struct config *cfg, struct socket_set *retired,
                   struct bound_socket **old_items, char *err, size_t errlen);
const struct bound_socket *sockets_find(const struct socket_set *set, const char *name);

/* The sockets a service's workers get, in fd order from 3: the socket named like the
 * service (lymph's convention), then those it lists in `sockets:`, then any its command
 * names as $(socket.NAME.fd|port). Fills `out` (cap entries); returns the count, or -1
 * with err set for an unknown $(socket.NAME...) or a bad field. */
int sockets_for_service(const struct socket_set *set, const struct config_service *svc,
                        const struct bound_socket **out, size_t cap, char *err, size_t errlen);

/* The command with $(socket.NAME.fd) and $(socket.NAME.port) replaced, given the sockets
 * passed (as returned above). Caller frees. */
char *sockets_expand_command(const char *command, const struct bound_socket *const *passed, size_t count);

/* One sample of the queue length (the rule above, without the kernel: unit-tested). */
enum socket_queue_event socket_queue_update(struct socket_queue *q, int waiting, uint64_t now_ms);
/* Reads bs's accept queue (TCP_INFO) and feeds it to socket_queue_update. Unix sockets are
 * not sampled (their queue stays -1). */
enum socket_queue_event sockets_sample_queue(struct bound_socket *bs, uint64_t now_ms);
/* "12 connections waiting on 127.0.0.1:4080, none accepted for 5 s" while stalled; returns 0
 * and leaves buf "" otherwise. */
int sockets_describe_stall(const struct bound_socket *bs, uint64_t now_ms, char *buf, size_t cap);

/* 1 when `command` names $(socket.NAME.fd): it has picked its socket itself, so its workers
 * are not told again by LISTEN_FDS (gunicorn reads both and would take fd 3 twice). */
int sockets_command_names_fd(const char *command);

/* The warning `check` and `up` give for a service whose workers learn their sockets from
 * LISTEN_FDS while its command is not one the shell can exec (`a | b`, `a || b`): LISTEN_PID
 * then names the shell, and servers that check it ignore the sockets. Returns 1 with `out`
 * filled ("FILE:LINE: instances.NAME.command: ..."), 0 when there is nothing to say. */
int sockets_listen_pid_warning(const struct config *cfg, const struct config_service *svc, char *out,
                               size_t outlen);

#endif
