/* rundir: the node's run dir `.devnode/` beside .lymph.yml: the lock that makes one node per
 * project, logs/, and where the ZeroMQ endpoint lives. Shared by the node and its clients. */
#ifndef DEVNODE_RUNDIR_H
#define DEVNODE_RUNDIR_H

#include <limits.h>
#include <sys/types.h>

/* In the run dir: the node's pid and its stop summary line, written before it releases the
 * lock, for `devnode stop` to print. */
#define RUNDIR_STOP_SUMMARY "stopped"

struct rundir {
    char dir[PATH_MAX];          /* <project>/.devnode, mode 0700 */
    char logs_dir[PATH_MAX];     /* <dir>/logs */
    char sock_dir[PATH_MAX];     /* dir holding ipc endpoints (dir itself unless its path is too long) */
    char endpoint[PATH_MAX + 8]; /* "ipc://<sock_dir>/node.sock" */
    int lock_fd;                 /* holds an exclusive flock while the node lives; -1 when closed */
};

/* Node side: creates the run dir, takes the lock (stale locks of dead nodes are taken over),
 * and publishes the endpoint in <dir>/endpoint. Returns 0, or -1 with err set; when another
 * node holds the lock err reads "node already running (pid N)" and *other_pid is set. */
int rundir_open(struct rundir *rd, const char *project_dir, pid_t *other_pid, char *err, size_t errlen);
/* Releases the lock and removes the endpoint file and socket. */
void rundir_close(struct rundir *rd);

/* Client side: the endpoint of the node running for project_dir. Returns 0, or -1 with err
 * set ("no node running in DIR") when none holds the lock. */
int rundir_find_node(const char *project_dir, char *endpoint, size_t cap, pid_t *pid,
                     char *err, size_t errlen);

/* Path helpers: <project>/.devnode and its logs dir, without touching the disk. */
void rundir_paths(struct rundir *rd, const char *project_dir);

#endif
