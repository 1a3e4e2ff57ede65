/* watch: inotify is not recursive, so every folder that could hold a watched path gets a watch
 * of its own, found by a walk that runs in slices of a few milliseconds (an idle handle, only
 * while there is something to walk) and follows new folders as they appear. Each service has
 * a small machine: idle -> debouncing -> restarting (-> one queued follow-up), and waits for
 * a restart someone else started. Nothing here blocks the loop for long or signals a process. */
#include "node/watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/pathglob.h"
#include "common/xalloc.h"

/* A walk slice gives the loop back after this long. */
#define WATCH_SLICE_NS (2 * 1000 * 1000)
/* Changes that never pause still restart after this many debounce periods. */
#define WATCH_DEBOUNCE_CAP_FACTOR 10
/* How often a debounced restart checks whether someone else's restart of the service ended. */
#define WATCH_WAIT_POLL_MS 50
#define WATCH_MASK (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
                    IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)

/* Never a change worth a restart, for any service: version control, caches, the run dir and
 * editors' swap and backup files (vim's 4913 is its write test). */
static const char *const default_ignores[] = {
    ".git", ".hg", ".svn", "__pycache__", "node_modules", ".devnode", ".venv", ".tox", ".mypy_cache",
    ".pytest_cache", "*.swp", "*.swo", "*.swx", "*~", ".#*", "#*#", "4913", "*.pyc", "*.pyo", ".DS_Store",
    "*___jb_tmp___", "*___jb_old___",
};
#define DEFAULT_IGNORE_COUNT (sizeof default_ignores / sizeof default_ignores[0])

enum target_state {
    TARGET_IDLE,
    TARGET_DEBOUNCING, /* changes came; the restart follows once they pause */
    TARGET_WAITING,    /* debounced, but another restart of the service is still running */
    TARGET_RESTARTING, /* our restart runs; changes now queue one more */
};

static const char *const target_state_names[] = {"idle", "debouncing", "waiting", "restarting"};

/* One watched service. */
struct target {
    struct watch *w;
    char *name;                    /* the service's; owned: a reload frees the config */
    unsigned debounce_ms;          /* its watch_debounce */
    struct pathglob *paths, *ignores;
    size_t path_count, ignore_count;
    uv_timer_t timer;              /* debounce, or the wait for another restart */
    enum target_state state;
    int pending;                   /* a change came while restarting: one more restart follows */
    uint64_t batch_first_ms;       /* loop time of the first change the next restart is for */
    char batch_path[PATH_MAX];     /* ... and its path */
    uint64_t batch_others;         /* changes of other paths since */
    uint64_t events, restarts;
    char last_path[PATH_MAX];      /* "" before any change */
    uint64_t last_change_ms;
    size_t folders;                /* folders watched for it, counted at folders_version */
    uint64_t folders_version;
};

struct folder {
    int wd;                        /* FOLDER_EMPTY / FOLDER_GONE when the slot is free */
    char *rel;                     /* relative to the config's folder, "" for it */
};
#define FOLDER_EMPTY (-1)
#define FOLDER_GONE (-2)

struct walk_item {
    char *rel;
    int report;                    /* a new folder: what is already in it changed too */
};

struct watch {
    uv_loop_t *loop;
    struct supervisor *sup;
    struct loghub *hub;
    char *root;                    /* the config's folder; owned */
    int fd;                        /* inotify */
    uv_poll_t poll;
    uv_idle_t walk_idle;           /* active only while the walk has work */
    struct pathglob defaults[DEFAULT_IGNORE_COUNT];
    struct target *targets;
    size_t target_count;
    /* folders by wd: open addressing, linear probing */
    struct folder *folders;
    size_t folder_cap, folder_count, folder_used; /* used: live + gone slots */
    uint64_t folders_version;      /* bumped when a folder comes or goes (status counts lazily) */
    /* the walk: a FIFO of folders, and the one being read */
    struct walk_item *queue;
    size_t queue_head, queue_len, queue_cap;
    DIR *dir;
    struct walk_item current;
    int initial_walk;              /* the first walk has not finished */
    uint64_t walk_started_ns, walk_busy_ns;
    int limit_told;
    int open_handles;
    int closing;
};

/* ---- folders by wd ------------------------------------------------------------------ */

static size_t folder_slot(const struct watch *w, int wd)
{
    return ((unsigned)wd * 2654435761u) & (w->folder_cap - 1);
}

static struct folder *folder_find(struct watch *w, int wd)
{
    if (!w->folder_cap)
        return NULL;
    for (size_t i = folder_slot(w, wd);; i = (i + 1) & (w->folder_cap - 1)) {
        if (w->folders[i].wd == wd)
            return &w->folders[i];
        if (w->folders[i].wd == FOLDER_EMPTY)
            return NULL;
    }
}

static void folder_insert_slot(struct watch *w, int wd, char *rel)
{
    size_t i = folder_slot(w, wd);
    while (w->folders[i].wd >= 0)
        i = (i + 1) & (w->folder_cap - 1);
    if (w->folders[i].wd == FOLDER_EMPTY)
        w->folder_used++;
    w->folders[i] = (struct folder){.wd = wd, .rel = rel};
    w->folder_count++;
    w->folders_version++;
}

static void folder_grow(struct watch *w)
{
    struct folder *old = w->folders;
    size_t old_cap = w->folder_cap;
    w->folder_cap = old_cap ? old_cap * 2 : 64;
    while ((w->folder_count + 1) * 2 > w->folder_cap)
        w->folder_cap *= 2;
    w->folders = xcalloc(w->folder_cap, sizeof *w->folders);
    for (size_t i = 0; i < w->folder_cap; i++)
        w->folders[i].wd = FOLDER_EMPTY;
    w->folder_count = w->folder_used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].wd >= 0)
            folder_insert_slot(w, old[i].wd, old[i].rel);
    free(old);
}

/* Records wd's path (a wd seen again, e.g. a folder moved back, gets its new path). */
static void folder_put(struct watch *w, int wd, const char *rel)
{
    struct folder *f = folder_find(w, wd);
    if (f) {
        free(f->rel);
        f->rel = xstrdup(rel);
        w->folders_version++;
        return;
    }
    if ((w->folder_used + 1) * 4 > w->folder_cap * 3)
        folder_grow(w);
    folder_insert_slot(w, wd, xstrdup(rel));
}

static void folder_drop(struct watch *w, struct folder *f)
{
    free(f->rel);
    f->rel = NULL;
    f->wd = FOLDER_GONE;
    w->folder_count--;
    w->folders_version++;
}

/* A folder moved away or deleted: its watches and those under it go (the paths are stale). */
static void folder_forget_tree(struct watch *w, const char *rel)
{
    size_t len = strlen(rel);
    for (size_t i = 0; i < w->folder_cap; i++) {
        struct folder *f = &w->folders[i];
        if (f->wd < 0 || strncmp(f->rel, rel, len) != 0 || (f->rel[len] != '\0' && f->rel[len] != '/'))
            continue;
        inotify_rm_watch(w->fd, f->wd);
        folder_drop(w, f);
    }
}

/* ---- what is wanted ----------------------------------------------------------------- */

/* is_folder: rel is a folder, which `build/` ignores too. */
static int default_ignored(const struct watch *w, const char *rel, int is_folder)
{
    return pathglob_match_any(w->defaults, DEFAULT_IGNORE_COUNT, rel, is_folder);
}

static int target_ignores(const struct target *t, const char *rel, int is_folder)
{
    return pathglob_match_any(t->ignores, t->ignore_count, rel, is_folder);
}

/* The folder could hold something t watches. */
static int target_wants_folder(const struct target *t, const char *rel)
{
    if (rel[0] && target_ignores(t, rel, 1))
        return 0;
    for (size_t i = 0; i < t->path_count; i++)
        if (pathglob_may_match_under(&t->paths[i], rel))
            return 1;
    return 0;
}

static int folder_wanted(const struct watch *w, const char *rel)
{
    if (rel[0] && default_ignored(w, rel, 1))
        return 0;
    for (size_t i = 0; i < w->target_count; i++)
        if (target_wants_folder(&w->targets[i], rel))
            return 1;
    return 0;
}

static int target_watches(const struct target *t, const char *rel, int is_folder)
{
    return pathglob_match_any(t->paths, t->path_count, rel, 0) && !target_ignores(t, rel, is_folder);
}

/* ---- the restart machine ------------------------------------------------------------- */

static void target_start_restart(struct target *t);

static void target_on_timer(uv_timer_t *timer)
{
    struct target *t = timer->data;
    if (t->w->closing)
        return;
    target_start_restart(t);
}

static void target_on_restart_done(void *ctx, const struct change_result *result)
{
    struct target *t = ctx;
    struct watch *w = t->w;
    t->state = TARGET_IDLE;
    if (w->closing || w->sup->stopping) {
        t->pending = 0;
        return;
    }
    if (!result->ok)
        loghub_node_line(w->hub, getpid(), LOG_LEVEL_WARNING, "watch: the restart of %s did not finish: %s",
                         t->name, result->message ? result->message : "?");
    if (t->pending) {
        /* The supervisor is calling us: the follow-up starts from the timer, never from here. */
        t->pending = 0;
        t->state = TARGET_DEBOUNCING;
        uv_timer_start(&t->timer, target_on_timer, t->debounce_ms, 0);
    }
}

static void target_start_restart(struct target *t)
{
    struct watch *w = t->w;
    if (w->sup->stopping) {
        t->state = TARGET_IDLE;
        return;
    }
    struct service *svc = supervisor_find_service(w->sup, t->name);
    if (svc && svc->rolling) {
        /* `devnode restart` (or a reload) is rolling it: ours follows once that one is over. */
        t->state = TARGET_WAITING;
        uv_timer_start(&t->timer, target_on_timer, WATCH_WAIT_POLL_MS, 0);
        return;
    }
    char others[64] = "";
    if (t->batch_others)
        snprintf(others, sizeof others, " (and %llu other change%s)", (unsigned long long)t->batch_others,
                 t->batch_others == 1 ? "" : "s");
    loghub_node_line(w->hub, getpid(), LOG_LEVEL_INFO, "watch: %s changed%s; restarting %s", t->batch_path, others,
                     t->name);
    t->state = TARGET_RESTARTING;
    t->pending = 0;
    t->restarts++;
    t->batch_others = 0;
    struct change_waiter waiter = {.done = target_on_restart_done, .ctx = t};
    char err[256];
    /* done may come before this returns (nothing to wait for): it leaves the state right. */
    if (supervisor_restart(w->sup, t->name, -1, &waiter, err, sizeof err) < 0) {
        loghub_node_line(w->hub, getpid(), LOG_LEVEL_WARNING, "watch: cannot restart %s: %s", t->name, err);
        t->state = TARGET_IDLE;
    }
}

static void target_note_change(struct target *t, const char *rel)
{
    struct watch *w = t->w;
    uint64_t now = uv_now(w->loop);
    /* One write is several events (modify, close); a change of another path is news. */
    int other = strcmp(rel, t->last_path) != 0 && strcmp(rel, t->batch_path) != 0;
    t->events++;
    snprintf(t->last_path, sizeof t->last_path, "%s", rel);
    t->last_change_ms = now;
    switch (t->state) {
    case TARGET_RESTARTING:
        if (!t->pending) {
            t->pending = 1;
            t->batch_first_ms = now;
            t->batch_others = 0;
            snprintf(t->batch_path, sizeof t->batch_path, "%s", rel);
            loghub_node_line(w->hub, getpid(), LOG_LEVEL_INFO,
                             "watch: %s changed during the restart of %s; one more restart follows", rel, t->name);
        } else {
            t->batch_others += other;
        }
        return;
    case TARGET_WAITING:
        t->batch_others += other;
        return;
    case TARGET_IDLE:
        t->state = TARGET_DEBOUNCING;
        t->batch_first_ms = now;
        t->batch_others = 0;
        snprintf(t->batch_path, sizeof t->batch_path, "%s", rel);
        break;
    case TARGET_DEBOUNCING:
        t->batch_others += other;
        break;
    }
    /* Each change pushes the restart back, up to a cap, so a burst is one restart and a file
     * written without pause still restarts. */
    uint64_t debounce = t->debounce_ms;
    uint64_t cap_at = t->batch_first_ms + debounce * WATCH_DEBOUNCE_CAP_FACTOR;
    uint64_t delay = now + debounce <= cap_at ? debounce : (cap_at > now ? cap_at - now : 0);
    uv_timer_start(&t->timer, target_on_timer, delay, 0);
}

static void watch_note_change(struct watch *w, const char *rel, int is_folder)
{
    for (size_t i = 0; i < w->target_count; i++)
        if (target_watches(&w->targets[i], rel, is_folder))
            target_note_change(&w->targets[i], rel);
}

/* ---- the walk -------------------------------------------------------------------------- */

static void walk_push(struct watch *w, const char *rel, int report)
{
    if (w->queue_head > 0 && w->queue_head == w->queue_len) {
        w->queue_head = w->queue_len = 0;
    }
    if (w->queue_len == w->queue_cap) {
        if (w->queue_head > w->queue_cap / 2) {
            memmove(w->queue, w->queue + w->queue_head, (w->queue_len - w->queue_head) * sizeof *w->queue);
            w->queue_len -= w->queue_head;
            w->queue_head = 0;
        } else {
            w->queue_cap = w->queue_cap ? w->queue_cap * 2 : 64;
            w->queue = xreallocarray(w->queue, w->queue_cap, sizeof *w->queue);
        }
    }
    w->queue[w->queue_len++] = (struct walk_item){.rel = xstrdup(rel), .report = report};
}

static void walk_on_idle(uv_idle_t *idle);

static void walk_wake(struct watch *w)
{
    if (!w->closing && !uv_is_active((uv_handle_t *)&w->walk_idle)) {
        w->walk_started_ns = uv_hrtime();
        uv_idle_start(&w->walk_idle, walk_on_idle);
    }
}

static void join_path(char *out, size_t cap, const char *rel, const char *name)
{
    snprintf(out, cap, "%s%s%s", rel, rel[0] ? "/" : "", name);
}

static void read_limit(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(out, (int)cap, f))
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

/* Adds the watch, then opens the folder: what appears in between is in the listing. */
static void walk_open(struct watch *w, struct walk_item item)
{
    char abs[PATH_MAX];
    join_path(abs, sizeof abs, w->root, item.rel);
    int wd = inotify_add_watch(w->fd, abs, WATCH_MASK);
    if (wd < 0) {
        if (errno == ENOSPC && !w->limit_told) {
            w->limit_told = 1;
            char limit[32], ns_limit[32], ns_note[96] = "";
            read_limit("/proc/sys/fs/inotify/max_user_watches", limit, sizeof limit);
            /* In a container the user namespace may have a lower limit of its own. */
            read_limit("/proc/sys/user/max_inotify_watches", ns_limit, sizeof ns_limit);
            if (strcmp(ns_limit, "?") != 0 && strcmp(ns_limit, limit) != 0)
                snprintf(ns_note, sizeof ns_note, "; this user namespace's user.max_inotify_watches = %s", ns_limit);
            loghub_node_line(w->hub, getpid(), LOG_LEVEL_ERROR,
                             "watch: the kernel's limit of inotify watches is reached (fs.inotify.max_user_watches = "
                             "%s%s) at %s: %zu folders are watched, changes in the others are not seen; raise it, "
                             "e.g. sudo sysctl fs.inotify.max_user_watches=524288, or ignore: big folders",
                             limit, ns_note, item.rel[0] ? item.rel : ".", w->folder_count);
        }
        free(item.rel);
        return;
    }
    folder_put(w, wd, item.rel);
    w->dir = opendir(abs);
    if (!w->dir) {
        free(item.rel);
        return;
    }
    w->current = item;
}

static void walk_close_dir(struct watch *w)
{
    if (w->dir)
        closedir(w->dir);
    w->dir = NULL;
    free(w->current.rel);
    w->current.rel = NULL;
}

/* One entry of the folder being read. */
static void walk_entry(struct watch *w, const struct dirent *e)
{
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        return;
    char rel[PATH_MAX];
    join_path(rel, sizeof rel, w->current.rel, e->d_name);
    int is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = fstatat(dirfd(w->dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    if (default_ignored(w, rel, is_dir))
        return;
    if (is_dir && folder_wanted(w, rel))
        walk_push(w, rel, w->current.report);
    if (w->current.report)
        watch_note_change(w, rel, is_dir); /* written before its folder had a watch */
}

static void walk_on_idle(uv_idle_t *idle)
{
    struct watch *w = idle->data;
    uint64_t began = uv_hrtime();
    while (uv_hrtime() - began < WATCH_SLICE_NS) {
        if (w->dir) {
            struct dirent *e = readdir(w->dir);
            if (e)
                walk_entry(w, e);
            else
                walk_close_dir(w);
            continue;
        }
        if (w->queue_head == w->queue_len)
            break;
        struct walk_item item = w->queue[w->queue_head++];
        if (!folder_wanted(w, item.rel)) {
            free(item.rel);
            continue;
        }
        walk_open(w, item);
    }
    uint64_t now = uv_hrtime();
    w->walk_busy_ns += now - began;
    if (w->dir || w->queue_head != w->queue_len)
        return;
    uv_idle_stop(&w->walk_idle);
    w->queue_head = w->queue_len = 0;
    if (w->initial_walk) {
        w->initial_walk = 0;
        char names[256] = "";
        size_t len = 0;
        for (size_t i = 0; i < w->target_count && len < sizeof names; i++)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", w->targets[i].name);
        loghub_node_line(w->hub, getpid(), LOG_LEVEL_INFO,
                         "watch: %zu folder%s watched for %s (walked in %.0f ms, %.0f ms of it busy)", w->folder_count,
                         w->folder_count == 1 ? "" : "s", names, (now - w->walk_started_ns) / 1e6,
                         w->walk_busy_ns / 1e6);
    }
}

/* ---- events ----------------------------------------------------------------------------- */

static void watch_on_event(struct watch *w, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        /* Events were lost: every watcher counts it as a change, and a walk finds new folders. */
        loghub_node_line(w->hub, getpid(), LOG_LEVEL_WARNING,
                         "watch: the kernel's inotify queue overflowed (fs.inotify.max_queued_events); "
                         "restarting every watched service");
        for (size_t i = 0; i < w->target_count; i++)
            target_note_change(&w->targets[i], "(events lost)");
        walk_push(w, "", 0);
        walk_wake(w);
        return;
    }
    struct folder *f = folder_find(w, ev->wd);
    if (!f)
        return;
    if (ev->mask & IN_IGNORED) {
        folder_drop(w, f);
        return;
    }
    if (!ev->len)
        return;
    char rel[PATH_MAX];
    join_path(rel, sizeof rel, f->rel, ev->name);
    int is_dir = (ev->mask & IN_ISDIR) != 0;
    if (default_ignored(w, rel, is_dir))
        return;
    if (is_dir) {
        if (ev->mask & (IN_MOVED_FROM | IN_DELETE))
            folder_forget_tree(w, rel);
        if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && folder_wanted(w, rel)) {
            walk_push(w, rel, 1);
            walk_wake(w);
        }
    }
    watch_note_change(w, rel, is_dir);
}

static void watch_on_readable(uv_poll_t *poll, int status, int events)
{
    struct watch *w = poll->data;
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    uv_update_time(w->loop);
    /* A bounded number of reads per wake-up: the rest waits for the next turn of the loop. */
    for (int reads = 0; reads < 16; reads++) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            watch_on_event(w, ev);
            p += sizeof *ev + ev->len;
        }
    }
}

/* ---- lifetime ------------------------------------------------------------------------------ */

static void watch_free(struct watch *w)
{
    for (size_t i = 0; i < w->target_count; i++) {
        struct target *t = &w->targets[i];
        for (size_t j = 0; j < t->path_count; j++)
            pathglob_free(&t->paths[j]);
        for (size_t j = 0; j < t->ignore_count; j++)
            pathglob_free(&t->ignores[j]);
        free(t->paths);
        free(t->ignores);
        free(t->name);
    }
    free(w->targets);
    free(w->root);
    for (size_t i = 0; i < DEFAULT_IGNORE_COUNT; i++)
        pathglob_free(&w->defaults[i]);
    for (size_t i = 0; i < w->folder_cap; i++)
        if (w->folders[i].wd >= 0)
            free(w->folders[i].rel);
    free(w->folders);
    for (size_t i = w->queue_head; i < w->queue_len; i++)
        free(w->queue[i].rel);
    free(w->queue);
    walk_close_dir(w);
    if (w->fd >= 0)
        close(w->fd);
    free(w);
}

static void watch_on_closed(uv_handle_t *handle)
{
    struct watch *w = handle->data;
    if (handle->type == UV_TIMER)
        w = ((struct target *)handle->data)->w;
    if (--w->open_handles == 0)
        watch_free(w);
}

static int compile_all(struct pathglob **out, char *const *patterns, size_t count, enum pathglob_rule rule)
{
    *out = xcalloc(count ? count : 1, sizeof **out);
    char err[256];
    for (size_t i = 0; i < count; i++)
        if (pathglob_compile(&(*out)[i], patterns[i], rule, err, sizeof err) < 0)
            return -1; /* config_load checked them all */
    return 0;
}

struct watch *watch_start(uv_loop_t *loop, const struct config *cfg, struct supervisor *sup, struct loghub *hub)
{
    size_t count = 0;
    for (size_t i = 0; i < cfg->service_count; i++)
        count += cfg->services[i].watch.path_count > 0;
    if (!count)
        return NULL;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        char limit[32];
        read_limit("/proc/sys/fs/inotify/max_user_instances", limit, sizeof limit);
        loghub_node_line(hub, getpid(), LOG_LEVEL_ERROR, "watch: cannot start watching: %s%s%s%s", strerror(e),
                         e == EMFILE ? " (the kernel's fs.inotify.max_user_instances = " : "",
                         e == EMFILE ? limit : "", e == EMFILE ? " is reached; raise it with sysctl)" : "");
        return NULL;
    }
    struct watch *w = xcalloc(1, sizeof *w);
    w->loop = loop;
    w->sup = sup;
    w->hub = hub;
    w->root = xstrdup(cfg->dir);
    w->fd = fd;
    char err[256];
    for (size_t i = 0; i < DEFAULT_IGNORE_COUNT; i++)
        pathglob_compile(&w->defaults[i], default_ignores[i], PATHGLOB_GITIGNORE, err, sizeof err);
    w->targets = xcalloc(count, sizeof *w->targets);
    for (size_t i = 0; i < cfg->service_count; i++) {
        const struct config_service *svc = &cfg->services[i];
        if (!svc->watch.path_count)
            continue;
        struct target *t = &w->targets[w->target_count++];
        t->w = w;
        t->name = xstrdup(svc->name);
        t->debounce_ms = svc->watch.debounce_ms;
        t->path_count = svc->watch.path_count;
        t->ignore_count = svc->watch.ignore_count;
        compile_all(&t->paths, svc->watch.paths, t->path_count, PATHGLOB_ANCHORED);
        compile_all(&t->ignores, svc->watch.ignore, t->ignore_count, PATHGLOB_GITIGNORE);
        uv_timer_init(loop, &t->timer);
        t->timer.data = t;
        w->open_handles++;
    }
    uv_poll_init(loop, &w->poll, fd);
    w->poll.data = w;
    uv_poll_start(&w->poll, UV_READABLE, watch_on_readable);
    w->open_handles++;
    uv_idle_init(loop, &w->walk_idle);
    w->walk_idle.data = w;
    w->open_handles++;
    w->initial_walk = 1;
    walk_push(w, "", 0);
    walk_wake(w);
    return w;
}

void watch_close(struct watch *w)
{
    if (!w || w->closing)
        return;
    w->closing = 1;
    for (size_t i = 0; i < w->target_count; i++)
        uv_close((uv_handle_t *)&w->targets[i].timer, watch_on_closed);
    uv_close((uv_handle_t *)&w->poll, watch_on_closed);
    uv_close((uv_handle_t *)&w->walk_idle, watch_on_closed);
}

int watch_report(struct watch *w, const char *service, struct watch_report *out)
{
    if (!w)
        return -1;
    for (size_t i = 0; i < w->target_count; i++) {
        struct target *t = &w->targets[i];
        if (strcmp(t->name, service) != 0)
            continue;
        memset(out, 0, sizeof *out);
        out->state = target_state_names[t->state];
        out->pending = t->pending;
        /* Counted again only when folders changed: a dashboard asks every second. */
        if (t->folders_version != w->folders_version + 1) {
            t->folders = 0;
            for (size_t k = 0; k < w->folder_cap; k++)
                if (w->folders[k].wd >= 0 && target_wants_folder(t, w->folders[k].rel))
                    t->folders++;
            t->folders_version = w->folders_version + 1; /* + 1: 0 is "never counted" */
        }
        out->folders = t->folders;
        out->events = t->events;
        out->restarts = t->restarts;
        out->last_path = t->last_path[0] ? t->last_path : NULL;
        uv_update_time(w->loop);
        out->last_change_ago_ms = t->last_path[0] ? (int64_t)(uv_now(w->loop) - t->last_change_ms) : -1;
        out->limit_reached = w->limit_told;
        return 0;
    }
    return -1;
}
