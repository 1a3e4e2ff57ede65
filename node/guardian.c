/* guardian: the answer to "the node was SIGKILLed and its workers' children live on".
 * PR_SET_PDEATHSIG kills the direct children, but not what they forked; the guardian kills
 * whole process groups. It must never kill anything while the node is alive. */
#include "node/guardian.h"

#include <dirent.h>
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

/* Kills every process whose environment holds `marker` ("DEVNODE_RUN_DIR=<dir>").
 * Returns how many were signalled. */
static int guardian_kill_marked(const char *marker)
{
    size_t mlen = strlen(marker) + 1; /* match the terminating NUL too: no prefix matches */
    static char env[1 << 16];
    int killed = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *e;
    pid_t self = getpid();
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self)
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/environ", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, env, sizeof env);
        close(fd);
        if (n <= 0)
            continue;
        for (ssize_t i = 0; i + (ssize_t)mlen <= n;) {
            if (memcmp(env + i, marker, mlen) == 0) {
                kill((pid_t)pid, SIGKILL);
                killed++;
                break;
            }
            const char *nul = memchr(env + i, '\0', (size_t)(n - i));
            if (!nul)
                break;
            i = (nul - env) + 1;
        }
    }
    closedir(d);
    return killed;
}

static void guardian_main(int read_fd, const char *marker)
{
    prctl(PR_SET_NAME, "devnode-guard", 0, 0, 0);
    /* Its own session: a SIGKILL sent to the node's whole process group (a test harness,
     * `kill -9 -- -PGID`) must not take the guardian down with the node. */
    setsid();
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
    /* A daemon may be forking while we look: sweep until a pass finds nothing. */
    for (int pass = 0; pass < 5 && guardian_kill_marked(marker) > 0; pass++)
        ;
    _exit(0);
}

int guardian_start(struct guardian *g, const char *run_dir, char *err, size_t errlen)
{
    char marker[4200];
    snprintf(marker, sizeof marker, "DEVNODE_RUN_DIR=%s", run_dir);
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
        guardian_main(3, marker);
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
