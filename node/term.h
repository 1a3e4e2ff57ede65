/* term: a worker's terminal side for `stdin: true` (a pipe on its stdin) and `tty: true` (a
 * pseudo-terminal for stdin, stdout and stderr): the fds spawn hands the child, the node's
 * input end, the pty's window size, the last output kept for a new attacher, and the attach
 * session (node/attach.c) that its bytes go to. Output is still read by the supervisor's
 * pipes (the pty master is one); term only sees a copy. It never blocks: input is queued
 * on a libuv stream and bounded. */
#ifndef DEVNODE_TERM_H
#define DEVNODE_TERM_H

#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#define TERM_TAIL_BYTES 4096           /* output replayed to a new attacher */
#define TERM_INPUT_QUEUE_MAX (1u << 20) /* input bytes queued while the worker does not read */

struct attach_session;

/* The fds of one spawn, before it: what the child gets, what the node keeps. */
struct term_fds {
    int pty;          /* 1: a pseudo-terminal */
    int child_stdin;  /* the child's 0: the pipe's read end or the pty slave */
    int master;       /* pty: the master the node reads the output from (non-blocking); -1 */
    int writer;       /* the node's input end: the pipe's write end or a dup of the master */
    char tty_name[64];/* the slave's name ("/dev/pts/7"), "" for a pipe */
};

/* Opens a pty (tty) or a stdin pipe (else). 0, or -1 with errno set and nothing open. */
int term_fds_open(struct term_fds *fds, int tty);
/* Closes what term_fds_open opened and term_new did not take. */
void term_fds_close(struct term_fds *fds);

struct term {
    uv_pipe_t writer;          /* input to the worker: uv_write, never blocking the node */
    int pty;                   /* 1: the writer is a pty master (TIOCSWINSZ works on it) */
    pid_t pid;                 /* the process it belongs to */
    char tty_name[64];
    char tail[TERM_TAIL_BYTES];/* the last output, a ring */
    size_t tail_len, tail_head;/* bytes in it; where the next byte goes */
    int input_dropped;         /* input was dropped since the worker stopped reading (said once) */
    struct attach_session *session; /* the one attacher, or NULL */
};

/* Takes fds->writer (and closes child_stdin: the child has it now). Returns the term, or
 * NULL with errno set (fds->writer then closed). */
struct term *term_new(uv_loop_t *loop, struct term_fds *fds, pid_t pid);
/* A copy of the worker's output as it was read (both streams of a pipe worker). */
void term_output(struct term *t, const char *data, size_t len);
/* Typed input. 0, or -1 when the worker has not read the last TERM_INPUT_QUEUE_MAX bytes
 * (this input is dropped) or the stream failed. */
int term_write(struct term *t, const char *data, size_t len);
/* The window size of a pty (the kernel sends the worker SIGWINCH); a pipe ignores it. */
void term_resize(struct term *t, int rows, int cols);
/* The kept output in order, in at most two pieces. */
void term_tail(const struct term *t, const char **a, size_t *alen, const char **b, size_t *blen);
/* The process is gone: its session ends with `how` ("exited with status 1"), and the term
 * is freed once libuv closed the writer. */
void term_close(struct term *t, const char *name, const char *how);

#endif
