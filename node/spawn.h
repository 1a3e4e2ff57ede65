/* spawn: fork/exec of one worker with everything devnode promises a child: its own process
 * group, death with the node (PR_SET_PDEATHSIG), /bin/sh -c, passed sockets from fd 3 with
 * LISTEN_PID equal to its own pid, and no other fd of the node. */
#ifndef DEVNODE_SPAWN_H
#define DEVNODE_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

struct spawn_request {
    const char *command;   /* run as /bin/sh -c COMMAND */
    const char *cwd;       /* NULL: the node's */
    char *const *envp;     /* full environment; an entry "LISTEN_PID=" + 20 spaces is filled in
                              with the child's pid (see SPAWN_LISTEN_PID_SLOT) */
    const int *fds;        /* sockets to pass, placed at 3, 4, ... */
    size_t fd_count;
    int stdin_fd;          /* placed at 0 */
    int stdout_fd;         /* placed at 1 */
    int stderr_fd;         /* placed at 2 */
    int tty;               /* stdin is a pty slave: the child starts a session with it as its
                              controlling terminal (job control, Ctrl-C as SIGINT) */
};

/* The env entry spawn fills with the child's pid; the caller puts it in envp when it
 * passes sockets. */
#define SPAWN_LISTEN_PID_SLOT "LISTEN_PID=                    "

/* Forks and execs. Returns 0 with *pid set, or -1 with err set when the child could not
 * even start (fork failed, cwd missing, /bin/sh missing); the child's own failures
 * (command not found) show up as its exit status. */
int spawn_process(const struct spawn_request *req, pid_t *pid, char *err, size_t errlen);

#endif
