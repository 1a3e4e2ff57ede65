/* tui: the curses dashboard, a client of the node protocol (status, restart, scale, stop,
 * and the tail stream) running on a libuv loop it is given: its own in `devnode tui`, the
 * node's in `devnode up`. It owns the terminal from tui_start to tui_close and always gives
 * it back as it found it, on every exit path. */
#ifndef DEVNODE_TUI_H
#define DEVNODE_TUI_H

#include <stddef.h>
#include <uv.h>

struct tui;

struct tui_options {
    const char *endpoint;     /* the node's ZeroMQ endpoint (copied) */
    int in_node;              /* devnode up: q asks, then stops the node; signals are the host's */
    int color;                /* 1: colours (when the terminal has them); 0: bold/reverse only */
    const char *project_dir;  /* optional (devnode tui): when the node's lock is free the dashboard
                                 ends by itself, with status 0 and "the node stopped" */
};

/* Takes the terminal (stdin/stdout must be one), connects to the node and starts drawing.
 * Returns 0, or -1 with err set (the terminal is then untouched). */
int tui_start(struct tui **out, uv_loop_t *loop, const struct tui_options *opts, char *err, size_t errlen);

/* in_node mode: called once the user confirmed stopping the node; the host starts the stop.
 * The dashboard keeps showing the progress until tui_close. Without a callback the dashboard
 * sends the node a `stop` request itself. */
void tui_set_stop_callback(struct tui *t, void (*on_stop)(void *ctx), void *ctx);

/* Called when the dashboard wants to end: `q` in devnode tui (status 0), SIGINT/SIGTERM/SIGHUP
 * in devnode tui (0), the node went away (0, message "the node stopped"), the terminal went
 * away (1). message is NULL or a line for the user, valid during the call. The host calls
 * tui_close (and may print the message once the terminal is restored). Without a callback
 * the dashboard closes itself. */
void tui_set_quit_callback(struct tui *t, void (*on_quit)(void *ctx, int status, const char *message), void *ctx);

/* Restores the terminal at once and closes the handles; the memory is freed by the loop's
 * close callbacks, so the loop must run once more (uv_run returns when it was the last user). */
void tui_close(struct tui *t);

#endif
