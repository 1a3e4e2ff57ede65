/* attachclient: the client side of `devnode attach` on a libuv loop, shared by the CLI (its
 * own loop) and the dashboard (the loop it runs on, which may be the node's): the `attach`
 * request, the terminal in raw mode (a pty) or line mode (a pipe), keys to attach_input,
 * attach_output to stdout, SIGWINCH to attach_resize, and the detach key. It lives beside the
 * tail client because both are conversations a viewer holds with the node; it never blocks
 * the loop on the node, and it gives the terminal back as it found it on every way out. */
#ifndef DEVNODE_ATTACHCLIENT_H
#define DEVNODE_ATTACHCLIENT_H

#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

/* Ctrl-]: telnet's escape. Neither pdb, Python's REPL (readline) nor a shell needs it, unlike
 * Ctrl-C (KeyboardInterrupt), Ctrl-D (EOF), Ctrl-\ (SIGQUIT, faulthandler's dump) or Ctrl-P
 * (readline's previous line, which docker's Ctrl-P Ctrl-Q takes away). */
#define ATTACH_DETACH_KEY 0x1d
#define ATTACH_DETACH_KEY_NAME "Ctrl-]"

/* How a session ended: the CLI's exit code follows from it (docs/cli.md). */
enum attach_result {
    ATTACH_DETACHED,        /* the detach key, or end of input: the instance runs on */
    ATTACH_EXITED,          /* the process attached to is gone (message says how) */
    ATTACH_REFUSED_CONFIG,  /* no such instance, or it has neither stdin nor tty */
    ATTACH_REFUSED,         /* attached by someone else, or not running now */
    ATTACH_INTERRUPTED,     /* SIGINT/SIGTERM/SIGHUP of the attacher itself */
    ATTACH_FAILED,          /* the node did not answer or went away */
};

struct attach_client;

struct attach_client_options {
    const char *endpoint;   /* the node's */
    pid_t node_pid;         /* checked twice a second: a node that died ends the session; 0: not */
    const char *target;     /* "Web.1" */
    int handle_signals;     /* SIGINT/SIGTERM/SIGHUP end the session (the CLI); 0: the host's */
};

/* message is NULL or one line for the user (without "devnode: "), valid during the call. The
 * terminal is restored and every handle closing when it is called; the memory goes with the
 * loop's close callbacks. */
typedef void (*attach_client_done)(void *ctx, enum attach_result result, const char *message);

/* Sends `attach` and, once accepted, takes the terminal (stdin and stdout must be one for a
 * pty; a pipe also works from a file). Returns 0, or -1 with err set (nothing started). */
int attach_client_start(struct attach_client **out, uv_loop_t *loop, const struct attach_client_options *opts,
                        attach_client_done done, void *ctx, char *err, size_t errlen);

/* Ends the session now (the dashboard closing): done is called with ATTACH_DETACHED. */
void attach_client_cancel(struct attach_client *c);

/* The pure part, unit-tested: how many bytes of buf go to the instance before the detach key
 * (all of them when it is not there); *found is 1 when the key was seen. */
size_t attach_scan_detach(const char *buf, size_t len, int *found);

#endif
