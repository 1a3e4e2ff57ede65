/* rundir: one node per project, enforced with flock on .devnode/node.lock. A lock dies with
 * its process, so a node killed with SIGKILL never blocks the next start. Unix socket paths
 * are limited to ~107 bytes; deep project paths get their endpoint under a hashed tmp dir. */
#include "common/rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ENDPOINT_FILE "endpoint"
#define LOCK_FILE "node.lock"
#define SOCK_NAME "node.sock"
#define LOCK_WAIT_MS 1000 /* how long a starting node waits for a lock held without a pid */
#define LOCK_RETRY_MS 5

void rundir_paths(struct rundir *rd, const char *project_dir)
{
    memset(rd, 0, sizeof *rd);
    rd->lock_fd = -1;
    snprintf(rd->dir, sizeof rd->dir, "%s/.devnode", project_dir);
    snprintf(rd->logs_dir, sizeof rd->logs_dir, "%s/logs", rd->dir);
}

static int mkdir_private(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Picks where the ipc endpoint lives: in the run dir when the path fits sun_path. */
static int rundir_choose_sock_dir(struct rundir *rd, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    if (strlen(rd->dir) + 1 + strlen(SOCK_NAME) < sizeof sun.sun_path) {
        snprintf(rd->sock_dir, sizeof rd->sock_dir, "%s", rd->dir);
        return 0;
    }
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    char base[PATH_MAX];
    if (xdg && *xdg)
        snprintf(base, sizeof base, "%s/devnode", xdg);
    else
        snprintf(base, sizeof base, "/tmp/devnode-%u", (unsigned)getuid());
    if (mkdir_private(base) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", base, strerror(errno));
        return -1;
    }
    snprintf(rd->sock_dir, sizeof rd->sock_dir, "%s/%016llx", base,
             (unsigned long long)fnv1a64(rd->dir));
    if (mkdir_private(rd->sock_dir) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", rd->sock_dir, strerror(errno));
        return -1;
    }
    return 0;
}

static pid_t read_pid_file(int fd)
{
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    return (pid_t)strtol(buf, NULL, 10);
}

int rundir_open(struct rundir *rd, const char *project_dir, pid_t *other_pid, char *err, size_t errlen)
{
    rundir_paths(rd, project_dir);
    *other_pid = 0;
    if (mkdir_private(rd->dir) < 0) {
        snprintf(err, errlen, "cannot create run dir %s: %s", rd->dir, strerror(errno));
        return -1;
    }
    chmod(rd->dir, 0700);
    if (mkdir_private(rd->logs_dir) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", rd->logs_dir, strerror(errno));
        return -1;
    }

    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", rd->dir, LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    /* A command that looks for the node (rundir_find_node) holds a shared lock for a moment:
     * a starting node that meets one waits for it rather than give up. Whoever really holds
     * the lock writes its pid right after taking it, so a lock still held with no pid after
     * LOCK_WAIT_MS is another node starting (or one just stopping). */
    for (int waited_ms = 0;; waited_ms += LOCK_RETRY_MS) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            break;
        int e = errno;
        *other_pid = e == EWOULDBLOCK ? read_pid_file(fd) : 0;
        if (e == EWOULDBLOCK && *other_pid <= 0 && waited_ms < LOCK_WAIT_MS) {
            struct timespec pause = {0, LOCK_RETRY_MS * 1000000L};
            nanosleep(&pause, NULL);
            continue;
        }
        close(fd);
        if (e == EWOULDBLOCK && *other_pid > 0)
            snprintf(err, errlen, "node already running (pid %d)", (int)*other_pid);
        else if (e == EWOULDBLOCK)
            snprintf(err, errlen, "another node is starting in %s", project_dir);
        else
            snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
        return -1;
    }
    char pidbuf[32];
    int n = snprintf(pidbuf, sizeof pidbuf, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pidbuf, (size_t)n, 0) != n) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    rd->lock_fd = fd;

    if (rundir_choose_sock_dir(rd, err, errlen) < 0) {
        rundir_close(rd);
        return -1;
    }
    snprintf(rd->endpoint, sizeof rd->endpoint, "ipc://%s/%s", rd->sock_dir, SOCK_NAME);
    /* A socket file left by a killed node would make bind fail: we hold the lock, so it is stale. */
    unlink(rd->endpoint + 6);

    snprintf(path, sizeof path, "%s/%s", rd->dir, ENDPOINT_FILE);
    FILE *f = fopen(path, "we");
    if (!f || fprintf(f, "%s\n", rd->endpoint) < 0 || fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rundir_close(rd);
        return -1;
    }
    return 0;
}

void rundir_close(struct rundir *rd)
{
    if (rd->lock_fd < 0)
        return;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", rd->dir, ENDPOINT_FILE);
    unlink(path);
    if (rd->endpoint[0])
        unlink(rd->endpoint + 6);
    if (strcmp(rd->sock_dir, rd->dir) != 0 && rd->sock_dir[0])
        rmdir(rd->sock_dir);
    /* Clearing the pid before unlocking keeps a reader from naming a dead node. */
    if (ftruncate(rd->lock_fd, 0) < 0) {
        /* nothing more to do: the flock below is what others rely on */
    }
    close(rd->lock_fd);
    rd->lock_fd = -1;
}

int rundir_find_node(const char *project_dir, char *endpoint, size_t cap, pid_t *pid,
                     char *err, size_t errlen)
{
    struct rundir rd;
    rundir_paths(&rd, project_dir);
    *pid = 0;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", rd.dir, LOCK_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "no node running in %s", project_dir);
        return -1;
    }
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        close(fd);
        snprintf(err, errlen, "no node running in %s", project_dir);
        return -1;
    }
    *pid = read_pid_file(fd);
    close(fd);

    snprintf(path, sizeof path, "%s/%s", rd.dir, ENDPOINT_FILE);
    FILE *f = fopen(path, "re");
    if (!f || !fgets(endpoint, (int)cap, f)) {
        if (f)
            fclose(f);
        if (*pid > 0)
            snprintf(err, errlen, "node (pid %d) is starting or stopping: no endpoint in %s yet", (int)*pid, path);
        else
            snprintf(err, errlen, "a node is starting or stopping in %s: no endpoint yet", project_dir);
        return -1;
    }
    fclose(f);
    endpoint[strcspn(endpoint, "\n")] = '\0';
    return 0;
}
