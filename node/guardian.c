/* guardian: the answer to "the node was SIGKILLed and its workers' children live on".
 * PR_SET_PDEATHSIG kills the direct children, but not what they forked; the guardian kills
 * whole process groups. It must never kill anything while the node is alive. */
#include "node/guardian.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

struct guardian_record {
    int32_t op; /* '+' watch, '-' forget, 'q' clean shutdown */
    int32_t pgid;
};

static void guardian_main(int read_fd)
{
    prctl(PR_SET_NAME, "devnode-guard", 0, 0, 0);
    /* Terminal ^C and a kill of the node's group must not take the guardian first. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);

    size_t cap = 64, count = 0;
    pid_t *groups = malloc(cap * sizeof *groups);
    if (!groups)
        _exit(1);
    struct guardian_record rec;
    for (;;) {
        ssize_t n = read(read_fd, &rec, sizeof rec);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof rec)
            break; /* EOF: the node is gone */
        if (rec.op == 'q')
            _exit(0);
        if (rec.op == '+') {
            if (count == cap) {
                pid_t *grown = realloc(groups, cap * 2 * sizeof *groups);
                if (!grown)
                    continue;
                groups = grown;
                cap *= 2;
            }
            groups[count++] = rec.pgid;
        } else if (rec.op == '-') {
            for (size_t i = 0; i < count; i++)
                if (groups[i] == rec.pgid) {
                    groups[i] = groups[--count];
                    break;
                }
        }
    }
    for (size_t i = 0; i < count; i++)
        kill(-groups[i], SIGKILL);
    _exit(0);
}

int guardian_start(struct guardian *g, char *err, size_t errlen)
{
    int fds[2];
    g->pid = 0;
    g->write_fd = -1;
    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot create guardian pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot fork guardian: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        /* Keep nothing of the node's: its lock and sockets must die with the node. */
        if (dup2(fds[0], 3) < 0)
            _exit(1);
        syscall(SYS_close_range, 4u, ~0u, 0u);
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        guardian_main(3);
    }
    close(fds[0]);
    g->pid = pid;
    g->write_fd = fds[1];
    return 0;
}

static void guardian_send(struct guardian *g, int op, pid_t pgid)
{
    if (g->write_fd < 0)
        return;
    struct guardian_record rec = {.op = op, .pgid = pgid};
    ssize_t n;
    do
        n = write(g->write_fd, &rec, sizeof rec);
    while (n < 0 && errno == EINTR);
}

void guardian_watch(struct guardian *g, pid_t pgid)
{
    guardian_send(g, '+', pgid);
}

void guardian_forget(struct guardian *g, pid_t pgid)
{
    guardian_send(g, '-', pgid);
}

void guardian_stop(struct guardian *g)
{
    guardian_send(g, 'q', 0);
    if (g->write_fd >= 0)
        close(g->write_fd);
    g->write_fd = -1;
}
