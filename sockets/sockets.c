/* sockets: binding with the options a dev server needs (SO_REUSEADDR, backlog 1024,
 * IPv6, unix paths, port 0) and an error that says who holds a busy port, read from /proc.
 * Sockets stay blocking: that is what a worker that inherits one expects. */
#include "sockets/sockets.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "common/shellcmd.h"
#include "common/xalloc.h"

/* Finds the inode of a listening TCP socket on `port` in /proc/net/tcp{,6}; 0 if none. */
static unsigned long listening_inode(int port)
{
    const char *tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (size_t t = 0; t < 2; t++) {
        FILE *f = fopen(tables[t], "re");
        if (!f)
            continue;
        char line[512];
        if (!fgets(line, sizeof line, f)) {
            fclose(f);
            continue;
        }
        while (fgets(line, sizeof line, f)) {
            char local[128];
            unsigned state;
            unsigned long inode;
            if (sscanf(line, "%*d: %127s %*s %x %*s %*s %*s %*s %*s %lu", local, &state, &inode) != 3)
                continue;
            const char *colon = strrchr(local, ':');
            if (colon && state == 0x0A && (int)strtol(colon + 1, NULL, 16) == port) {
                fclose(f);
                return inode;
            }
        }
        fclose(f);
    }
    return 0;
}

/* "pid 123, nginx" for the process holding the listening port, or "" when /proc does not
 * tell (another user's process, or a namespace we cannot see). */
static void describe_port_holder(int port, char *out, size_t cap)
{
    out[0] = '\0';
    unsigned long inode = listening_inode(port);
    if (!inode)
        return;
    char want[64];
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    DIR *proc = opendir("/proc");
    if (!proc)
        return;
    struct dirent *p;
    while ((p = readdir(proc)) && !out[0]) {
        char *end;
        long pid = strtol(p->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char fddir[64];
        snprintf(fddir, sizeof fddir, "/proc/%ld/fd", pid);
        DIR *fds = opendir(fddir);
        if (!fds)
            continue;
        struct dirent *f;
        while ((f = readdir(fds))) {
            char link[320], target[128];
            snprintf(link, sizeof link, "%s/%s", fddir, f->d_name);
            ssize_t n = readlink(link, target, sizeof target - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            if (strcmp(target, want) == 0) {
                char comm_path[64], comm[64] = "?";
                snprintf(comm_path, sizeof comm_path, "/proc/%ld/comm", pid);
                FILE *c = fopen(comm_path, "re");
                if (c) {
                    if (fgets(comm, sizeof comm, c))
                        comm[strcspn(comm, "\n")] = '\0';
                    fclose(c);
                }
                snprintf(out, cap, "pid %ld, %s", pid, comm);
                break;
            }
        }
        closedir(fds);
    }
    closedir(proc);
}

static int bind_unix(struct bound_socket *bs, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "%s:%d: sockets.%s: unix path %s is too long", bs->config_path, bs->cfg->line, bs->cfg->name, path);
        return -1;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s:%d: sockets.%s: %s", bs->config_path, bs->cfg->line, bs->cfg->name, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s:%d: sockets.%s: %s exists and is not a socket", bs->config_path, bs->cfg->line, bs->cfg->name, path);
            close(fd);
            return -1;
        }
        /* A socket file nobody listens on is left from a killed node: replace it. */
        if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0) {
            snprintf(err, errlen, "%s:%d: sockets.%s: unix:%s is in use by another process", bs->config_path, bs->cfg->line, bs->cfg->name, path);
            close(fd);
            return -1;
        }
        close(fd);
        unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, errlen, "%s:%d: sockets.%s: %s", bs->config_path, bs->cfg->line, bs->cfg->name, strerror(errno));
            return -1;
        }
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(fd, SOCKETS_BACKLOG) < 0) {
        snprintf(err, errlen, "%s:%d: sockets.%s: cannot listen on unix:%s: %s", bs->config_path, bs->cfg->line, bs->cfg->name, path, strerror(errno));
        close(fd);
        return -1;
    }
    bs->fd = fd;
    bs->family = AF_UNIX;
    bs->port = -1;
    bs->queue.waiting = -1;
    snprintf(bs->address, sizeof bs->address, "unix:%s", path);
    return 0;
}

static int bind_tcp(struct bound_socket *bs, const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "%s:%d: sockets.%s: cannot resolve host '%s': %s", bs->config_path, bs->cfg->line, bs->cfg->name, host, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s:%d: sockets.%s: %s", bs->config_path, bs->cfg->line, bs->cfg->name, strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    char shown[300];
    if (res->ai_family == AF_INET6)
        snprintf(shown, sizeof shown, "[%s]:%d", host, port);
    else
        snprintf(shown, sizeof shown, "%s:%d", host, port);
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, SOCKETS_BACKLOG) < 0) {
        int e = errno;
        char holder[128] = "";
        if (e == EADDRINUSE && port > 0)
            describe_port_holder(port, holder, sizeof holder);
        snprintf(err, errlen, "%s:%d: sockets.%s: cannot listen on %s: %s%s%s%s", bs->config_path,
                 bs->cfg->line, bs->cfg->name, shown, strerror(e), holder[0] ? " (held by " : "", holder,
                 holder[0] ? ")" : "");
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    bs->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    bs->family = res->ai_family;
    bs->fd = fd;
    if (res->ai_family == AF_INET6)
        snprintf(bs->address, sizeof bs->address, "[%s]:%d", host, bs->port);
    else
        snprintf(bs->address, sizeof bs->address, "%s:%d", host, bs->port);
    freeaddrinfo(res);
    return 0;
}

int sockets_bind_all(struct socket_set *set, const struct config *cfg, char *err, size_t errlen)
{
    set->count = 0;
    set->items = xcalloc(cfg->socket_count ? cfg->socket_count : 1, sizeof *set->items);
    for (size_t i = 0; i < cfg->socket_count; i++) {
        struct bound_socket *bs = &set->items[i];
        bs->cfg = &cfg->sockets[i];
        bs->config_path = cfg->path;
        bs->fd = -1;
        int rc = bs->cfg->path ? bind_unix(bs, bs->cfg->path, err, errlen)
                               : bind_tcp(bs, bs->cfg->host, bs->cfg->port, err, errlen);
        if (rc < 0) {
            sockets_close_all(set);
            return -1;
        }
        set->count = i + 1;
    }
    return 0;
}

void sockets_close_all(struct socket_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        if (set->items[i].fd >= 0)
            close(set->items[i].fd);
        if (set->items[i].family == AF_UNIX && set->items[i].cfg->path)
            unlink(set->items[i].cfg->path);
    }
    free(set->items);
    set->items = NULL;
    set->count = 0;
}

static int same_address(const struct config_socket *a, const struct config_socket *b)
{
    if (!!a->path != !!b->path)
        return 0;
    if (a->path)
        return strcmp(a->path, b->path) == 0;
    return a->port == b->port && strcmp(a->host ? a->host : "", b->host ? b->host : "") == 0;
}

/* The old socket whose listening fd `want` (new socket i) keeps: its own when its address did
 * not change, else one renamed or given another's address (ports swapped) that no new socket
 * took yet: binding that address again would fail on the node's own fd. A `port: 0` socket
 * keeps only its own (any port would do). NULL: bind it. */
static const struct bound_socket *rebind_keep(const struct socket_set *set, const struct config_socket *want,
                                              const size_t *kept_from, size_t i)
{
    const struct bound_socket *own = sockets_find(set, want->name);
    if (own && same_address(own->cfg, want))
        return own;
    if (!want->path && want->port == 0)
        return NULL;
    for (size_t o = 0; o < set->count; o++) {
        int taken = 0;
        for (size_t k = 0; k < i && !taken; k++)
            taken = kept_from[k] == o;
        if (!taken && same_address(set->items[o].cfg, want))
            return &set->items[o];
    }
    return NULL;
}

int sockets_rebind(struct socket_set *set, const struct config *cfg, struct socket_set *retired,
                   struct bound_socket **old_items, char *err, size_t errlen)
{
    struct bound_socket *items = xcalloc(cfg->socket_count ? cfg->socket_count : 1, sizeof *items);
    size_t *kept_from = xcalloc(cfg->socket_count ? cfg->socket_count : 1, sizeof *kept_from);
    for (size_t i = 0; i < cfg->socket_count; i++) {
        const struct bound_socket *old = rebind_keep(set, &cfg->sockets[i], kept_from, i);
        kept_from[i] = SIZE_MAX;
        if (old) {
            items[i] = *old;
            kept_from[i] = (size_t)(old - set->items);
        } else {
            items[i].fd = -1;
            items[i].cfg = &cfg->sockets[i]; /* the bind's messages name it */
            items[i].config_path = cfg->path;
            int rc = cfg->sockets[i].path ? bind_unix(&items[i], cfg->sockets[i].path, err, errlen)
                                          : bind_tcp(&items[i], cfg->sockets[i].host, cfg->sockets[i].port, err,
                                                     errlen);
            if (rc < 0) {
                for (size_t k = 0; k < i; k++) {
                    if (kept_from[k] != SIZE_MAX)
                        continue;
                    close(items[k].fd);
                    if (items[k].family == AF_UNIX)
                        unlink(cfg->sockets[k].path);
                }
                free(kept_from);
                free(items);
                return -1;
            }
        }
        items[i].cfg = &cfg->sockets[i];
        items[i].config_path = cfg->path;
    }
    /* The old ones not kept: their fds and unix paths go once the caller is done with them. */
    retired->items = xcalloc(set->count ? set->count : 1, sizeof *retired->items);
    retired->count = 0;
    for (size_t o = 0; o < set->count; o++) {
        int kept = 0;
        for (size_t i = 0; i < cfg->socket_count && !kept; i++)
            kept = kept_from[i] == o;
        if (!kept)
            retired->items[retired->count++] = set->items[o];
    }
    free(kept_from);
    *old_items = set->items;
    set->items = items;
    set->count = cfg->socket_count;
    return 0;
}

const struct bound_socket *sockets_find(const struct socket_set *set, const char *name)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->items[i].cfg->name, name) == 0)
            return &set->items[i];
    return NULL;
}

static int add_passed(const struct bound_socket **out, size_t *n, size_t cap, const struct bound_socket *bs)
{
    for (size_t i = 0; i < *n; i++)
        if (out[i] == bs)
            return 0;
    if (*n == cap)
        return -1;
    out[(*n)++] = bs;
    return 0;
}

/* Walks $(socket.NAME.FIELD) references; calls `visit` for each. Returns -1 if visit does. */
static int scan_socket_refs(const char *command,
                            int (*visit)(void *ctx, const char *name, size_t name_len, const char *field,
                                         size_t field_len, const char *start, const char *end),
                            void *ctx)
{
    const char *p = command;
    while ((p = strstr(p, "$(socket."))) {
        const char *name = p + 9;
        const char *close = strchr(name, ')');
        const char *dot = close ? memrchr(name, '.', (size_t)(close - name)) : NULL;
        if (!close || !dot || dot == name) {
            p = name;
            continue;
        }
        if (visit(ctx, name, (size_t)(dot - name), dot + 1, (size_t)(close - dot - 1), p, close + 1) < 0)
            return -1;
        p = close + 1;
    }
    return 0;
}

struct collect_ctx {
    const struct socket_set *set;
    const struct bound_socket **out;
    size_t *n;
    size_t cap;
    char *err;
    size_t errlen;
    const char *service;
};

static int collect_ref(void *vctx, const char *name, size_t name_len, const char *field, size_t field_len,
                       const char *start, const char *end)
{
    struct collect_ctx *c = vctx;
    char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)name_len, name);
    if (!((field_len == 2 && !memcmp(field, "fd", 2)) || (field_len == 4 && !memcmp(field, "port", 4)))) {
        snprintf(c->err, c->errlen, "instances.%s.command: %.*s: a socket has only .fd and .port",
                 c->service, (int)(end - start), start);
        return -1;
    }
    const struct bound_socket *bs = sockets_find(c->set, buf);
    if (!bs) {
        snprintf(c->err, c->errlen, "instances.%s.command: %.*s names no socket of `sockets:`", c->service,
                 (int)(end - start), start);
        return -1;
    }
    if (add_passed(c->out, c->n, c->cap, bs) < 0) {
        snprintf(c->err, c->errlen, "instances.%s: too many sockets", c->service);
        return -1;
    }
    return 0;
}

int sockets_for_service(const struct socket_set *set, const struct config_service *svc,
                        const struct bound_socket **out, size_t cap, char *err, size_t errlen)
{
    size_t n = 0;
    const struct bound_socket *own = sockets_find(set, svc->name);
    if (own)
        add_passed(out, &n, cap, own);
    for (size_t i = 0; i < svc->socket_count; i++) {
        const struct bound_socket *bs = sockets_find(set, svc->sockets[i]);
        if (bs && add_passed(out, &n, cap, bs) < 0) {
            snprintf(err, errlen, "instances.%s: too many sockets", svc->name);
            return -1;
        }
    }
    struct collect_ctx ctx = {set, out, &n, cap, err, errlen, svc->name};
    if (scan_socket_refs(svc->command, collect_ref, &ctx) < 0)
        return -1;
    return (int)n;
}

struct expand_ctx {
    const struct bound_socket *const *passed;
    size_t count;
    FILE *out;
    const char *copied_to;
};

static int expand_ref(void *vctx, const char *name, size_t name_len, const char *field, size_t field_len,
                      const char *start, const char *end)
{
    struct expand_ctx *c = vctx;
    fwrite(c->copied_to, 1, (size_t)(start - c->copied_to), c->out);
    c->copied_to = end;
    for (size_t i = 0; i < c->count; i++) {
        const char *sname = c->passed[i]->cfg->name;
        if (strlen(sname) == name_len && !memcmp(sname, name, name_len)) {
            if (field_len == 2)
                fprintf(c->out, "%zu", 3 + i);
            else
                fprintf(c->out, "%d", c->passed[i]->port);
            return 0;
        }
    }
    fwrite(start, 1, (size_t)(end - start), c->out); /* unknown: validated earlier, keep as is */
    return 0;
}

char *sockets_expand_command(const char *command, const struct bound_socket *const *passed, size_t count)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        abort();
    struct expand_ctx ctx = {passed, count, out, command};
    scan_socket_refs(command, expand_ref, &ctx);
    fputs(ctx.copied_to, out);
    fclose(out);
    return buf;
}

enum socket_queue_event socket_queue_update(struct socket_queue *q, int waiting, uint64_t now_ms)
{
    int before = q->waiting;
    q->waiting = waiting;
    int was_stalled = q->stalled;
    if (waiting > 0 && before > 0 && waiting >= before) {
        if (!q->stalled && now_ms - q->waiting_since_ms >= SOCKETS_STALL_MS) {
            q->stalled = 1;
            return SOCKET_QUEUE_STALLED;
        }
        return SOCKET_QUEUE_NO_CHANGE;
    }
    /* Empty, or shorter than before: a worker took connections. A new run starts. */
    q->waiting_since_ms = now_ms;
    q->stalled = 0;
    return was_stalled ? SOCKET_QUEUE_MOVING : SOCKET_QUEUE_NO_CHANGE;
}

enum socket_queue_event sockets_sample_queue(struct bound_socket *bs, uint64_t now_ms)
{
    if (bs->family == AF_UNIX || bs->fd < 0) {
        bs->queue.waiting = -1;
        return SOCKET_QUEUE_NO_CHANGE;
    }
    /* On a listening socket Linux reports the accept queue's length in tcpi_unacked
     * (and its limit in tcpi_sacked). */
    struct tcp_info info;
    socklen_t len = sizeof info;
    memset(&info, 0, sizeof info);
    if (getsockopt(bs->fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
        return SOCKET_QUEUE_NO_CHANGE;
    return socket_queue_update(&bs->queue, (int)info.tcpi_unacked, now_ms);
}

int sockets_describe_stall(const struct bound_socket *bs, uint64_t now_ms, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!bs->queue.stalled)
        return 0;
    snprintf(buf, cap, "%d connection%s waiting on %s, none accepted for %llu s", bs->queue.waiting,
             bs->queue.waiting == 1 ? "" : "s", bs->address,
             (unsigned long long)((now_ms - bs->queue.waiting_since_ms) / 1000));
    return 1;
}

static int find_fd_ref(void *ctx, const char *name, size_t name_len, const char *field, size_t field_len,
                       const char *start, const char *end)
{
    (void)name, (void)name_len, (void)start, (void)end;
    if (field_len == 2 && !memcmp(field, "fd", 2)) {
        *(int *)ctx = 1;
        return -1; /* found: stop the walk */
    }
    return 0;
}

int sockets_command_names_fd(const char *command)
{
    int found = 0;
    scan_socket_refs(command, find_fd_ref, &found);
    return found;
}

struct first_ref {
    char name[128]; /* the first socket the command names, "" when none */
};

static int first_ref(void *ctx, const char *name, size_t name_len, const char *field, size_t field_len,
                     const char *start, const char *end)
{
    (void)field, (void)field_len, (void)start, (void)end;
    struct first_ref *r = ctx;
    snprintf(r->name, sizeof r->name, "%.*s", (int)name_len, name);
    return -1;
}

int sockets_listen_pid_warning(const struct config *cfg, const struct config_service *svc, char *out,
                               size_t outlen)
{
    /* The socket the workers get first, in sockets_for_service's order. */
    struct first_ref first = {""};
    for (size_t i = 0; i < cfg->socket_count && !first.name[0]; i++)
        if (strcmp(cfg->sockets[i].name, svc->name) == 0)
            snprintf(first.name, sizeof first.name, "%s", svc->name);
    if (!first.name[0] && svc->socket_count > 0)
        snprintf(first.name, sizeof first.name, "%s", svc->sockets[0]);
    if (!first.name[0])
        scan_socket_refs(svc->command, first_ref, &first);
    if (!first.name[0] || sockets_command_names_fd(svc->command))
        return 0;
    /* $(socket.X.port) is digits by spawn time: judge the command as the shell will see it. */
    char *plain = xstrdup(svc->command);
    for (char *p = plain; (p = strstr(p, "$(socket."));) {
        char *close = strchr(p, ')');
        if (!close)
            break;
        memmove(p + 1, close + 1, strlen(close + 1) + 1);
        *p++ = '0';
    }
    int replaced = shellcmd_replaces_shell(plain);
    free(plain);
    if (replaced)
        return 0;
    snprintf(out, outlen,
             "%s:%d: instances.%s.command: LISTEN_PID will name the shell, not the server: the shell "
             "cannot exec a command with a pipe, ||, &, a subshell or a control keyword, and servers that "
             "check LISTEN_PID (gunicorn, sd_listen_fds) then ignore the socket; use `cwd:` instead of "
             "`cd`, end the command in the server, or pass $(socket.%s.fd)",
             cfg->path, svc->line, svc->name, first.name);
    return 1;
}
