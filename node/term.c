/* term: the stdin pipe or pseudo-terminal of one worker process. The writer is a uv_pipe_t so
 * input queues in libuv instead of blocking the node when the worker does not read; the queue
 * is bounded and excess input is dropped (the attacher is told). */
#include "node/term.h"

#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "node/attach.h"

int term_fds_open(struct term_fds *fds, int tty)
{
    memset(fds, 0, sizeof *fds);
    fds->child_stdin = fds->master = fds->writer = -1;
    fds->pty = tty;
    if (!tty) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return -1;
        fds->child_stdin = p[0];
        fds->writer = p[1];
        return 0;
    }
    /* 80x24 until an attacher says its size: what a terminal starts as. */
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    int master, slave;
    if (openpty(&master, &slave, fds->tty_name, NULL, &ws) < 0)
        return -1;
    fcntl(master, F_SETFD, FD_CLOEXEC);
    fcntl(slave, F_SETFD, FD_CLOEXEC);
    fcntl(master, F_SETFL, O_NONBLOCK);
    int writer = fcntl(master, F_DUPFD_CLOEXEC, 0);
    if (writer < 0) {
        int saved = errno;
        close(master);
        close(slave);
        errno = saved;
        return -1;
    }
    fds->master = master;
    fds->child_stdin = slave;
    fds->writer = writer;
    return 0;
}

void term_fds_close(struct term_fds *fds)
{
    int *all[] = {&fds->child_stdin, &fds->master, &fds->writer};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (*all[i] >= 0)
            close(*all[i]);
        *all[i] = -1;
    }
}

static void term_on_closed(uv_handle_t *handle)
{
    free(handle->data);
}

struct term *term_new(uv_loop_t *loop, struct term_fds *fds, pid_t pid)
{
    struct term *t = xcalloc(1, sizeof *t);
    t->pty = fds->pty;
    t->pid = pid;
    memcpy(t->tty_name, fds->tty_name, sizeof t->tty_name);
    if (fds->child_stdin >= 0)
        close(fds->child_stdin);
    fds->child_stdin = -1;
    uv_pipe_init(loop, &t->writer, 0);
    t->writer.data = t;
    int rc = uv_pipe_open(&t->writer, fds->writer);
    if (rc < 0) {
        close(fds->writer);
        fds->writer = -1;
        uv_close((uv_handle_t *)&t->writer, term_on_closed); /* frees t */
        errno = -rc;
        return NULL;
    }
    fds->writer = -1;
    return t;
}

void term_output(struct term *t, const char *data, size_t len)
{
    /* Keep the last TERM_TAIL_BYTES for the next attacher (it sees the prompt it attaches to). */
    const char *p = data;
    size_t n = len;
    if (n > TERM_TAIL_BYTES) {
        p += n - TERM_TAIL_BYTES;
        n = TERM_TAIL_BYTES;
    }
    while (n > 0) {
        size_t room = TERM_TAIL_BYTES - t->tail_head;
        size_t k = n < room ? n : room;
        memcpy(t->tail + t->tail_head, p, k);
        t->tail_head = (t->tail_head + k) % TERM_TAIL_BYTES;
        t->tail_len = t->tail_len + k > TERM_TAIL_BYTES ? TERM_TAIL_BYTES : t->tail_len + k;
        p += k;
        n -= k;
    }
    if (t->session)
        attach_session_output(t->session, data, len);
}

void term_tail(const struct term *t, const char **a, size_t *alen, const char **b, size_t *blen)
{
    size_t start = (t->tail_head + TERM_TAIL_BYTES - t->tail_len) % TERM_TAIL_BYTES;
    if (start + t->tail_len <= TERM_TAIL_BYTES) {
        *a = t->tail + start;
        *alen = t->tail_len;
        *b = NULL;
        *blen = 0;
    } else {
        *a = t->tail + start;
        *alen = TERM_TAIL_BYTES - start;
        *b = t->tail;
        *blen = t->tail_len - *alen;
    }
}

struct term_write_req {
    uv_write_t req;
    char data[]; /* the bytes being written, owned until the callback */
};

static void term_on_written(uv_write_t *req, int status)
{
    free(req); /* a failed write means the worker closed its end: its exit ends the term */
}

int term_write(struct term *t, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    if (uv_is_closing((uv_handle_t *)&t->writer))
        return -1;
    if (t->writer.write_queue_size + len > TERM_INPUT_QUEUE_MAX)
        return -1;
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    /* Most input leaves at once; only what the worker has not read yet is copied. */
    int sent = uv_try_write((uv_stream_t *)&t->writer, &buf, 1);
    if (sent == (int)len)
        return 0;
    if (sent < 0 && sent != UV_EAGAIN)
        return -1;
    size_t done = sent > 0 ? (size_t)sent : 0;
    struct term_write_req *w = xmalloc(sizeof *w + (len - done));
    memcpy(w->data, data + done, len - done);
    buf = uv_buf_init(w->data, (unsigned)(len - done));
    if (uv_write(&w->req, (uv_stream_t *)&t->writer, &buf, 1, term_on_written) < 0) {
        free(w);
        return -1;
    }
    return 0;
}

void term_resize(struct term *t, int rows, int cols)
{
    uv_os_fd_t fd;
    if (!t->pty || rows <= 0 || cols <= 0 || uv_fileno((uv_handle_t *)&t->writer, &fd) < 0)
        return;
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    ioctl(fd, TIOCSWINSZ, &ws);
}

void term_close(struct term *t, const char *name, const char *how)
{
    if (t->session)
        attach_session_end_exited(t->session, name, t->pid, how);
    uv_close((uv_handle_t *)&t->writer, term_on_closed);
}
