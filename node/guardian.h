/* guardian: a tiny process forked at start-up that outlives the node just long enough to kill
 * every worker's process group if the node dies without stopping them (e.g. SIGKILL).
 * It learns the process groups through a pipe; the pipe closing is its only trigger. */
#ifndef DEVNODE_GUARDIAN_H
#define DEVNODE_GUARDIAN_H

#include <sys/types.h>

struct guardian {
    pid_t pid;    /* the guardian process, 0 when not started */
    int write_fd; /* node's end of the pipe, -1 when closed */
};

/* Forks the guardian. Call before any thread exists (before ZeroMQ starts its threads).
 * Every fd of the node above 2 is closed in the guardian. `run_dir` is the value workers get
 * as DEVNODE_RUN_DIR: after the groups, the guardian also kills any process still carrying
 * it in its environment (daemons that left their group with setsid). */
int guardian_start(struct guardian *g, const char *run_dir, char *err, size_t errlen);
/* Tells the guardian about a process group to kill if the node dies / to forget. */
void guardian_watch(struct guardian *g, pid_t pgid);
void guardian_forget(struct guardian *g, pid_t pgid);
/* Clean shutdown: every group is gone; the guardian exits without killing anything. */
void guardian_stop(struct guardian *g);

#endif
