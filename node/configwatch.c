/* configwatch: one uv_fs_event per folder that holds a watched file, one debounce timer.
 * It never reads the files and never acts on the node: it calls on_change. */
#include "node/configwatch.h"

#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

struct folder {
    struct configwatch *cw;
    uv_fs_event_t event;
    char *dir;
};

struct configwatch {
    uv_timer_t timer;
    struct folder *folders;
    size_t folder_count;
    char **files;              /* absolute paths watched */
    size_t file_count;
    char changed[PATH_MAX];    /* the last changed one, for the callback */
    int open_handles;
    void (*on_change)(void *ctx, const char *path);
    void *ctx;
};

static void add_file(struct configwatch *cw, const char *path)
{
    if (!path || !path[0])
        return;
    for (size_t i = 0; i < cw->file_count; i++)
        if (strcmp(cw->files[i], path) == 0)
            return;
    cw->files = xrealloc(cw->files, (cw->file_count + 1) * sizeof *cw->files);
    cw->files[cw->file_count++] = xstrdup(path);
}

static void on_timer(uv_timer_t *t)
{
    struct configwatch *cw = t->data;
    cw->on_change(cw->ctx, cw->changed);
}

static void on_event(uv_fs_event_t *handle, const char *name, int events, int status)
{
    struct folder *f = handle->data;
    struct configwatch *cw = f->cw;
    if (status < 0 || !name)
        return;
    size_t dirlen = strlen(f->dir);
    for (size_t i = 0; i < cw->file_count; i++) {
        const char *p = cw->files[i];
        if (strncmp(p, f->dir, dirlen) == 0 && p[dirlen] == '/' && strcmp(p + dirlen + 1, name) == 0) {
            snprintf(cw->changed, sizeof cw->changed, "%s", p);
            uv_timer_start(&cw->timer, on_timer, CONFIGWATCH_DEBOUNCE_MS, 0);
            return;
        }
    }
}

static void free_all(struct configwatch *cw)
{
    for (size_t i = 0; i < cw->folder_count; i++)
        free(cw->folders[i].dir);
    for (size_t i = 0; i < cw->file_count; i++)
        free(cw->files[i]);
    free(cw->folders);
    free(cw->files);
    free(cw);
}

static void on_closed(uv_handle_t *h)
{
    struct configwatch *cw = h->data;
    if (h->type == UV_FS_EVENT)
        cw = ((struct folder *)h->data)->cw;
    if (--cw->open_handles == 0)
        free_all(cw);
}

struct configwatch *configwatch_start(uv_loop_t *loop, const struct config *cfg, int with_dotenv,
                                      void (*on_change)(void *ctx, const char *path), void *ctx)
{
    struct configwatch *cw = xcalloc(1, sizeof *cw);
    cw->on_change = on_change;
    cw->ctx = ctx;
    add_file(cw, cfg->path);
    if (with_dotenv) {
        char dotenv[PATH_MAX];
        snprintf(dotenv, sizeof dotenv, "%s/.env", cfg->dir);
        add_file(cw, dotenv);
    }
    for (size_t i = 0; i < cfg->env_file_count; i++)
        add_file(cw, cfg->env_files[i]);
    for (size_t s = 0; s < cfg->service_count; s++)
        for (size_t i = 0; i < cfg->services[s].env_file_count; i++)
            add_file(cw, cfg->services[s].env_files[i]);
    cw->folders = xcalloc(cw->file_count ? cw->file_count : 1, sizeof *cw->folders);
    for (size_t i = 0; i < cw->file_count; i++) {
        char copy[PATH_MAX];
        snprintf(copy, sizeof copy, "%s", cw->files[i]);
        const char *dir = dirname(copy);
        int seen = 0;
        for (size_t k = 0; k < cw->folder_count && !seen; k++)
            seen = strcmp(cw->folders[k].dir, dir) == 0;
        if (seen)
            continue;
        struct folder *f = &cw->folders[cw->folder_count];
        f->cw = cw;
        uv_fs_event_init(loop, &f->event);
        f->event.data = f;
        /* A folder that cannot be watched (gone, no inotify left) keeps its idle handle: it
         * is closed with the others. */
        uv_fs_event_start(&f->event, on_event, dir, 0);
        f->dir = xstrdup(dir);
        cw->folder_count++;
        cw->open_handles++;
    }
    uv_timer_init(loop, &cw->timer);
    cw->timer.data = cw;
    cw->open_handles++;
    return cw;
}

void configwatch_close(struct configwatch *cw)
{
    if (!cw)
        return;
    uv_close((uv_handle_t *)&cw->timer, on_closed);
    for (size_t i = 0; i < cw->folder_count; i++)
        uv_close((uv_handle_t *)&cw->folders[i].event, on_closed);
}
