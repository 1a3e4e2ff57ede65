/* loop.c: the top of libdevnode's stack, a service's life: start (bind, catch up with streams,
 * register, subscribe, READY=1), the loop that serves requests and handles events
 * (devnode_process, devnode_fd, devnode_run with its signals), stop and close. It composes the
 * layers below (server.h, client.h, events.h over conn.h) and nothing calls up into it.
 * It must never stop in the middle of a handler, nor leave a socket file behind. */
#include "lib/client.h"
#include "lib/events.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* sd_notify(3) READY=1, so `ready: notify` in .lymph.yml knows we serve. Advisory only. */
static void dn_notify_ready(struct devnode *dn)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof addr.sun_path)
        return;
    memcpy(addr.sun_path, path, len);
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    else
        addr_len++;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    static const char msg[] = "READY=1";
    if (sendto(fd, msg, sizeof msg - 1, MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len) < 0)
        dn_warn(dn, DEVNODE_WARNING, "NOTIFY_SOCKET=%s: %s", path, strerror(errno));
    close(fd);
}

/* Subscribes the DEVNODE_CATCH_UP stream subscriptions and handles each to its stream's end. */
static int dn_start_catch_up(struct devnode *dn)
{
    for (size_t i = 0; i < dn->sub_count; i++) {
        if (!(dn->subs[i].flags & DEVNODE_CATCH_UP) || !dn->subs[i].stream)
            continue;
        if (dn_send_subscription(dn, &dn->subs[i]) < 0) {
            char why[sizeof dn->last_error];
            snprintf(why, sizeof why, "%s", dn->last_error);
            return dn_fail(dn, DEVNODE_E_NODE, "cannot subscribe to stream %s: %s", dn->subs[i].stream, why);
        }
    }
    for (size_t i = 0; i < dn->sub_count; i++) {
        if (!(dn->subs[i].flags & DEVNODE_CATCH_UP) || !dn->subs[i].stream)
            continue;
        long long t0 = dn_now_ms();
        int rc = dn_catch_up(dn, i, 0);
        if (rc < 0) {
            char why[sizeof dn->last_error];
            snprintf(why, sizeof why, "%s", dn->last_error);
            return dn_fail(dn, rc, "cannot catch up with stream %s: %s", dn->subs[i].stream, why);
        }
        /* A replay can take a while: say so, as one line the node's log keeps. */
        if (dn_now_ms() - t0 >= 1000)
            dn_warn(dn, DEVNODE_INFO, "%s caught up with stream %s (to offset %lld) in %.1fs", dn->subs[i].group,
                    dn->subs[i].stream, (long long)dn->subs[i].last_offset, (double)(dn_now_ms() - t0) / 1000.0);
    }
    return 0;
}

int devnode_start(struct devnode *dn)
{
    if (dn->started)
        return 0;
    /* A registry that cannot be reached is a start failure naming its URL, not a service that
     * runs where nobody can find it. */
    int rc;
    if (dn_remote(dn) && (rc = dn_remote_open(dn)) < 0)
        return rc;
    dn->router = zmq_socket(dn->zctx, ZMQ_ROUTER);
    int linger_ms = 100;
    zmq_setsockopt(dn->router, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
    rc = dn_bind(dn);
    if (rc < 0) {
        zmq_close(dn->router);
        dn->router = NULL;
        return rc;
    }
    dn->started_ms = dn_now_ms();
    dn->started = 1;
    dn->next_heartbeat_ms = dn->started_ms + PROTO_HEARTBEAT_MS;
    /* Streams to catch up with come first, and are handled to their end before anyone can find
     * us (register) or is told we serve (READY=1): a view never answers from half of its state. */
    if ((rc = dn_start_catch_up(dn)) < 0) {
        char why[sizeof dn->last_error];
        snprintf(why, sizeof why, "%s", dn->last_error);
        devnode_stop(dn); /* may note its own failures; ours is the one to report */
        snprintf(dn->last_error, sizeof dn->last_error, "%s", why);
        return rc;
    }
    /* Not fatal: RPC still answers whoever knows the endpoint, and the node's log shows why. */
    if (dn_register(dn) < 0)
        dn_warn(dn, DEVNODE_WARNING, "%s.%d could not register: %s", dn->service, dn->instance,
                dn->last_error);
    for (size_t i = 0; i < dn->sub_count; i++)
        if (!dn->subs[i].active && dn_send_subscription(dn, &dn->subs[i]) < 0)
            dn_warn(dn, DEVNODE_WARNING, "%s.%d could not subscribe to '%s': %s", dn->service,
                    dn->instance, dn->subs[i].pattern, dn->last_error);
    if (dn->epfd >= 0) {
        int fd;
        size_t len = sizeof fd;
        struct epoll_event ev = {.events = EPOLLIN};
        if (zmq_getsockopt(dn->router, ZMQ_FD, &fd, &len) == 0)
            epoll_ctl(dn->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    dn_notify_ready(dn);
    return 0;
}

int devnode_stop(struct devnode *dn)
{
    if (!dn->started)
        return 0;
    /* Every event this service emitted without waiting reaches the node before it leaves. */
    int lost = dn_node_flush(dn, DN_FLUSH_TIMEOUT_MS);
    lost += dn_events_flush(dn, DN_FLUSH_TIMEOUT_MS); /* DEVNODE_EVENTS=amqp: the broker's confirms */
    /* Out of the remote registry first: callers watching it stop picking us while we drain. */
    dn_remote_unregister(dn);
    /* Unsubscribe first (the node hands our unacked events to other members), then unregister;
     * the node answers in order, so waiting for the last reply covers them all. */
    uint64_t last = dn_send_unsubscribes(dn);
    if (dn->registered) {
        struct wire_body b;
        wire_body_init(&b);
        last = dn_next_request_id(dn);
        proto_pack_unregister(&b.pk, (int64_t)last, dn->pid);
        dn_node_send(dn, PROTO_UNREGISTER, &b);
        wire_body_free(&b);
        dn->registered = 0;
    }
    dn->started = 0; /* no heartbeat while we wait */
    if (last)
        dn_node_wait(dn, PROTO_UNREGISTER, last, dn_now_ms() + DN_STOP_TIMEOUT_MS, NULL);
    dn_drain_rpc(dn);
    /* Events queued meanwhile are pending at the node, which requeues them for others. */
    while (dn->queue_head) {
        struct dn_queued *q = dn->queue_head;
        dn->queue_head = q->next;
        dn_queued_free(q);
    }
    dn->queue_tail = NULL;
    if (dn->router) {
        if (dn->epfd >= 0) {
            int fd;
            size_t len = sizeof fd;
            if (zmq_getsockopt(dn->router, ZMQ_FD, &fd, &len) == 0)
                epoll_ctl(dn->epfd, EPOLL_CTL_DEL, fd, NULL);
        }
        zmq_close(dn->router);
        dn->router = NULL;
        /* libzmq leaves the ipc socket file behind; it is ours (our pid is in its name). */
        if (strncmp(dn->rpc_endpoint, "ipc://", 6) == 0)
            unlink(dn->rpc_endpoint + 6);
    }
    return lost;
}

/* Handles one queued or freshly received node message; returns 1 if there was one. */
static int dn_process_node(struct devnode *dn)
{
    struct dn_queued *q = dn->queue_head;
    if (q) {
        dn->queue_head = q->next;
        if (!dn->queue_head)
            dn->queue_tail = NULL;
    } else {
        q = dn_node_recv(dn);
    }
    if (!q)
        return 0;
    dn_handle_node_msg(dn, q);
    return 1;
}

static int dn_socket_readable(void *sock)
{
    int events = 0;
    size_t len = sizeof events;
    return sock && zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN);
}

/* The end of a turn: the no-wait events its handlers (or the caller since the last turn)
 * emitted go out now, as one quiet emit; a failure leaves them queued for the next try. */
static void dn_end_turn(struct devnode *dn)
{
    if (dn->emitq.count && dn_emitq_send(dn, DN_ROOM_TIMEOUT_MS) < 0)
        dn_warn(dn, DEVNODE_WARNING, "%zu event(s) emitted without waiting are still queued: %s", dn->emitq.count,
                dn->last_error);
}

int devnode_process(struct devnode *dn)
{
    if (dn->in_handler)
        return 0; /* called from inside a handler: the outer loop carries on afterwards */
    dn_maybe_heartbeat(dn);
    if (dn->reregister_due && dn->started) {
        dn->reregister_due = 0;
        if (dn_register(dn) < 0)
            dn_warn(dn, DEVNODE_WARNING, "%s.%d could not register again: %s", dn->service, dn->instance,
                    dn->last_error);
    }
    for (int handled = 0; handled < DN_PROCESS_BUDGET; handled++) {
        if (dn->stop_requested)
            break;
        int got = dn_process_rpc(dn);
        got += dn_process_node(dn);
        got += dn_events_process(dn);
        /* ZMQ_FD is edge-triggered: only stop once both sockets say nothing is readable,
         * after our own sends (replies, acks), or the fd may never wake the caller again. */
        if (!got && !dn->queue_head && !dn_socket_readable(dn->router) && !dn_socket_readable(dn->node) &&
            !dn_events_ready(dn)) {
            dn_end_turn(dn);
            if (!dn->started)
                return PROTO_HEARTBEAT_MS;
            long long left = dn->next_heartbeat_ms - dn_now_ms();
            int events_ms = dn_events_timeout_ms(dn);
            if (events_ms >= 0 && events_ms < left)
                left = events_ms;
            return left > 0 ? (int)left : 0;
        }
    }
    dn_end_turn(dn);
    return 0;
}

int devnode_timeout_ms(struct devnode *dn)
{
    if (dn->queue_head || (dn->reregister_due && dn->started) || dn_events_ready(dn))
        return 0;
    long long wait = dn_heartbeat_due_ms(dn);
    long long events_ms = dn_events_timeout_ms(dn);
    if (events_ms >= 0 && (wait < 0 || events_ms < wait))
        wait = events_ms;
    if (dn->emitq.count) {
        long long left_us = dn->emitq.linger_us - (dn_now_us() - dn->emitq.first_us);
        long long linger_ms = left_us > 0 ? (left_us + 999) / 1000 : 0;
        if (wait < 0 || linger_ms < wait)
            wait = linger_ms;
    }
    return wait > INT_MAX ? INT_MAX : (int)wait;
}

void devnode_request_stop(struct devnode *dn)
{
    dn->stop_requested = 1;
}

int devnode_fd(struct devnode *dn)
{
    if (dn->epfd >= 0)
        return dn->epfd;
    /* One fd for the host loop: readable when either ZeroMQ socket has something. */
    dn->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (dn->epfd < 0)
        return -1;
    void *socks[2] = {dn->node, dn->router};
    for (int i = 0; i < 2; i++) {
        int fd;
        size_t len = sizeof fd;
        struct epoll_event ev = {.events = EPOLLIN};
        if (socks[i] && zmq_getsockopt(socks[i], ZMQ_FD, &fd, &len) == 0)
            epoll_ctl(dn->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    int fds[2];
    dn_events_fds(dn, fds); /* DEVNODE_EVENTS=amqp: the broker's sockets join the set */
    return dn->epfd;
}

int devnode_run(struct devnode *dn)
{
    if (!dn->started && devnode_start(dn) < 0) {
        dn_warn(dn, DEVNODE_ERROR, "%s", dn->last_error);
        return 1;
    }
    /* signalfd rather than a handler: no global state, and the signal is read in our loop
     * between requests, so a stop never interrupts a handler halfway. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, &old);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        dn_warn(dn, DEVNODE_ERROR, "signalfd: %s", strerror(errno));
        sigprocmask(SIG_SETMASK, &old, NULL);
        devnode_stop(dn);
        return 1;
    }
    int signo = 0;
    while (!dn->stop_requested) {
        int wait_ms = devnode_process(dn);
        if (dn->stop_requested)
            break;
        int fds[2];
        dn_events_fds(dn, fds);
        zmq_pollitem_t items[5] = {
            {.socket = dn->router, .events = ZMQ_POLLIN},
            {.socket = dn->node, .events = ZMQ_POLLIN},
            {.socket = NULL, .fd = sfd, .events = ZMQ_POLLIN},
            {.socket = NULL, .fd = fds[0], .events = fds[0] >= 0 ? ZMQ_POLLIN : 0},
            {.socket = NULL, .fd = fds[1], .events = fds[1] >= 0 ? ZMQ_POLLIN : 0},
        };
        if (zmq_poll(items, 5, wait_ms) < 0 && errno != EINTR) {
            dn_warn(dn, DEVNODE_ERROR, "poll: %s", zmq_strerror(errno));
            break;
        }
        if (items[2].revents & ZMQ_POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                signo = (int)si.ssi_signo;
                break;
            }
        }
    }
    if (signo)
        printf("INFO %s.%d stopping on %s trace_id=None\n", dn->service, dn->instance,
               signo == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stdout);
    /* Its count is said once, here: a devnode_close after it has nothing left to count. */
    int lost = devnode_stop(dn);
    /* Swallow signals that came during the stop, so unblocking cannot kill us mid-exit. */
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
    }
    close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    dn->stop_requested = 0;
    if (lost > 0) {
        dn_warn(dn, DEVNODE_ERROR, "%s.%d: %d event(s) emitted without waiting were not delivered (said above)",
                dn->service, dn->instance, lost);
        return 1;
    }
    return 0;
}

int devnode_close(struct devnode *dn)
{
    if (!dn)
        return 0;
    int lost;
    if (dn->started && dn->node) {
        lost = devnode_stop(dn);
    } else {
        lost = dn_node_flush(dn, DN_FLUSH_TIMEOUT_MS);
        lost += dn_events_flush(dn, DN_FLUSH_TIMEOUT_MS);
        if (dn->client)
            dn_send_unsubscribes(dn); /* not waited for: the connection's farewell linger sends them */
    }
    /* Each layer frees what it owns, top down; the connection goes last, with the ZeroMQ
     * context every socket above lived in. */
    dn_client_free(dn);
    dn_events_free(dn);
    dn_server_free(dn);
    if (dn->epfd >= 0)
        close(dn->epfd);
    dn_conn_close(dn);
    free(dn);
    return lost;
}
