/* spawn: the fork path. The node has ZeroMQ threads, so between fork and exec the child
 * calls only async-signal-safe functions: no malloc, no stdio, no locks.
 *
 * The child is made with clone(CLONE_VM | CLONE_VFORK), as posix_spawn does: it runs on a
 * stack of its own in the node's memory, and the node's loop waits until it has exec'd. That
 * spares copying the node's page tables for every worker (the bulk of a spawn's cost, which
 * W1 pays 100 times in a row). posix_spawn itself cannot set PR_SET_PDEATHSIG. Sharing memory
 * means the child writes nothing the node reads, but its own stack, the pid slot of this
 * spawn's envp and errno; and signals stay blocked until the child reset every handler. */
#include "node/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Reports a failure from the child to the parent through the exec-status pipe. */
struct spawn_failure {
    int err;       /* errno */
    int stage;     /* what failed */
};

enum { STAGE_CHDIR = 1, STAGE_DUP = 2, STAGE_EXEC = 3 };

static void write_decimal(char *slot, size_t width, long value)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 && n < sizeof digits);
    size_t i = 0;
    while (n > 0 && i < width)
        slot[i++] = digits[--n];
    slot[i] = '\0';
}

static void child_fail(int status_fd, int stage)
{
    struct spawn_failure f = {.err = errno, .stage = stage};
    ssize_t ignored = write(status_fd, &f, sizeof f);
    (void)ignored;
    _exit(127);
}

/* Moves fd `from` to `to`, clearing close-on-exec. */
static int place_fd(int from, int to)
{
    if (from == to)
        return fcntl(to, F_SETFD, 0);
    return dup2(from, to) < 0 ? -1 : 0;
}

#define SPAWN_CHILD_STACK (64u * 1024)

/* A sanitized node (make asan) takes the fork path. A CLONE_VM child would run ASan's
 * instrumentation and interceptors as the node's spawning thread on a stack ASan does not know
 * ("ASan is ignoring requested __asan_handle_no_return ... false positive error reports may
 * follow"), writing its frames' shadow into the node's own. fork is the path production takes
 * when mmap fails and runs the same child_main, so only the clone call itself goes unchecked. */
#if defined(__SANITIZE_ADDRESS__)
#define SPAWN_USE_CLONE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPAWN_USE_CLONE 0
#endif
#endif
#ifndef SPAWN_USE_CLONE
#define SPAWN_USE_CLONE 1
#endif

struct child_args {
    const struct spawn_request *req;
    pid_t parent;
    int status_fd;
};

static void child_main(const struct spawn_request *req, pid_t parent, int status_fd)
{
    /* Die with the node; the guardian takes care of what this child forks later. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != parent)
        _exit(1);
    /* A tty worker leads a session of its own (also its own group) so the pty can be its
     * controlling terminal: the line discipline turns Ctrl-C into SIGINT for it. */
    if (req->tty)
        setsid();
    else
        setpgid(0, 0);

    /* libuv's handlers and the node's ignored SIGPIPE must not leak into the worker; until
     * they are gone every signal stays blocked (the spawner blocked them), since a handler
     * of the node's running here would run on the node's memory. */
    sigset_t none;
    sigemptyset(&none);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Sockets first go above every fd we will place, so dup2 never clobbers one. */
    int high[64];
    size_t nfds = req->fd_count < 64 ? req->fd_count : 64;
    for (size_t i = 0; i < nfds; i++) {
        high[i] = fcntl(req->fds[i], F_DUPFD_CLOEXEC, 100);
        if (high[i] < 0)
            child_fail(status_fd, STAGE_DUP);
    }
    int std_in = fcntl(req->stdin_fd, F_DUPFD_CLOEXEC, 100);
    int std_out = fcntl(req->stdout_fd, F_DUPFD_CLOEXEC, 100);
    int std_err = fcntl(req->stderr_fd, F_DUPFD_CLOEXEC, 100);
    int status_high = fcntl(status_fd, F_DUPFD_CLOEXEC, 100);
    if (std_in < 0 || std_out < 0 || std_err < 0 || status_high < 0)
        child_fail(status_fd, STAGE_DUP);
    status_fd = status_high;
    if (place_fd(std_in, 0) < 0 || place_fd(std_out, 1) < 0 || place_fd(std_err, 2) < 0)
        child_fail(status_fd, STAGE_DUP);
    for (size_t i = 0; i < nfds; i++)
        if (place_fd(high[i], 3 + (int)i) < 0)
            child_fail(status_fd, STAGE_DUP);
    /* Everything else the node had open stays behind; the status pipe is close-on-exec. */
    int first_unused = 3 + (int)nfds;
    if (status_fd > first_unused)
        syscall(SYS_close_range, (unsigned)first_unused, (unsigned)status_fd - 1, 0u);
    syscall(SYS_close_range, (unsigned)status_fd + 1, ~0u, 0u);

    if (req->tty)
        ioctl(0, TIOCSCTTY, 0);

    if (req->cwd && chdir(req->cwd) < 0)
        child_fail(status_fd, STAGE_CHDIR);

    for (char *const *e = req->envp; *e; e++)
        if (strncmp(*e, "LISTEN_PID=", 11) == 0)
            write_decimal(*e + 11, 20, (long)getpid());

    char *const argv[] = {"sh", "-c", (char *)req->command, NULL};
    execve("/bin/sh", argv, req->envp);
    child_fail(status_fd, STAGE_EXEC);
}

static int child_entry(void *arg)
{
    const struct child_args *a = arg;
    child_main(a->req, a->parent, a->status_fd);
    return 127; /* not reached: child_main execs or _exits */
}

/* Starts the child sharing the node's memory until it execs; falls back to fork (and forks
 * in a sanitized build, see SPAWN_USE_CLONE). */
static pid_t start_child(const struct spawn_request *req, pid_t parent, int status_fd)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t child = -1;
    void *stack = !SPAWN_USE_CLONE ? MAP_FAILED
                : mmap(NULL, SPAWN_CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack != MAP_FAILED) {
        struct child_args args = {req, parent, status_fd};
        child = clone(child_entry, (char *)stack + SPAWN_CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
        int saved = errno;
        munmap(stack, SPAWN_CHILD_STACK);
        errno = saved;
    } else {
        child = fork();
        if (child == 0)
            child_main(req, parent, status_fd);
    }
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return child;
}

int spawn_process(const struct spawn_request *req, pid_t *pid, char *err, size_t errlen)
{
    int status[2];
    if (pipe2(status, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot create pipe: %s", strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t child = start_child(req, parent, status[1]);
    if (child < 0) {
        snprintf(err, errlen, "fork failed: %s", strerror(errno));
        close(status[0]);
        close(status[1]);
        return -1;
    }
    close(status[1]);
    /* Both sides set the group so a signal sent right after fork reaches it either way. */
    if (!req->tty) /* a session leader's group is its own already, and setsid needs no group */
        setpgid(child, child);

    struct spawn_failure failure;
    ssize_t n;
    do
        n = read(status[0], &failure, sizeof failure);
    while (n < 0 && errno == EINTR);
    close(status[0]);
    *pid = child;
    if (n == (ssize_t)sizeof failure) {
        const char *what = failure.stage == STAGE_CHDIR ? "cannot change to directory"
                         : failure.stage == STAGE_EXEC  ? "cannot execute /bin/sh"
                                                        : "cannot set up file descriptors";
        if (failure.stage == STAGE_CHDIR)
            snprintf(err, errlen, "%s %s: %s", what, req->cwd, strerror(failure.err));
        else
            snprintf(err, errlen, "%s: %s", what, strerror(failure.err));
        return -1;
    }
    return 0;
}
