/* envlayers: reads the project's .env and the env_file: files through envfile's dialect and
 * merges the layers into each service's env list (see envlayers.h). What a ${VAR} in a file
 * sees is the value VAR has at that point of the layering. It reads files and the
 * environment, never changes either, and never prints. */
#include "config/envlayers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/cfgalloc.h"
#include "config/envfile.h"
#include "config/keys.h"

/* An environment file is a few KiB; past this it is something else. */
#define ENVFILE_SIZE_MAX (16u << 20)

void envlist_free(struct envlist *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->vars[i].name);
        free(list->vars[i].value);
        free(list->vars[i].file);
    }
    free(list->vars);
    memset(list, 0, sizeof *list);
}

static void envlist_add(struct envlist *list, const struct config_env_var *var)
{
    list->vars = cfg_grow(list->vars, &list->cap, list->count + 1, sizeof *list->vars);
    struct config_env_var *v = &list->vars[list->count++];
    *v = *var;
    v->name = cfg_xstrdup(var->name);
    v->value = cfg_xstrdup(var->value);
    v->file = var->file ? cfg_xstrdup(var->file) : NULL;
}

/* The last assignment of name in vars[0..count), or NULL. */
static const struct config_env_var *find_last(const struct config_env_var *vars, size_t count, const char *name)
{
    for (size_t i = count; i-- > 0;)
        if (strcmp(vars[i].name, name) == 0)
            return &vars[i];
    return NULL;
}

const char *envlayers_dotenv_value(void *ctx, const char *name)
{
    const struct config *cfg = ctx;
    const struct config_env_var *v = find_last(cfg->dotenv, cfg->dotenv_count, name);
    return v ? v->value : NULL;
}

/* ---- reading one file ---- */

/* What the lines of a file being read see and where they go. */
struct reading {
    const struct envlist *first;   /* looked at first (the file's own layer), or NULL */
    const struct envlist *second;  /* then this one (the top-level files), or NULL */
    const struct config *cfg;      /* then the shell, then the .env */
    struct envlist *into;
    enum config_env_layer layer;
    const char *file;
};

static const char *reading_lookup(void *ctx, const char *name)
{
    const struct reading *r = ctx;
    const struct config_env_var *v = NULL;
    if (r->layer == ENV_FROM_DOTENV) {
        /* The shell wins over .env, also over the lines above this one. */
        const char *shell = getenv(name);
        v = shell ? NULL : find_last(r->into->vars, r->into->count, name);
        return shell ? shell : v ? v->value : NULL;
    }
    if (r->first)
        v = find_last(r->first->vars, r->first->count, name);
    if (!v && r->second)
        v = find_last(r->second->vars, r->second->count, name);
    if (v)
        return v->value;
    const char *shell = getenv(name);
    return shell ? shell : envlayers_dotenv_value((void *)r->cfg, name);
}

static void reading_assign(void *ctx, const char *name, const char *value, int line)
{
    struct reading *r = ctx;
    struct config_env_var var = {.name = (char *)name, .value = (char *)value, .line = line, .layer = r->layer,
                                 .file = (char *)r->file};
    envlist_add(r->into, &var);
}

/* The whole of a regular file: a FIFO or a device named by mistake must not hang `up`.
 * 0, -1 with errno, or -2 when it is no regular file, -3 when too large. */
static int read_whole(const char *path, char **text, size_t *len)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -1 : S_ISDIR(st.st_mode) ? (errno = EISDIR, -1) : !S_ISREG(st.st_mode) ? -2 : 0;
    if (rc < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return rc;
    }
    struct cfg_text buf = {0};
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            free(buf.s);
            close(fd);
            errno = saved;
            return -1;
        }
        if (n == 0)
            break;
        if (buf.len + (size_t)n > ENVFILE_SIZE_MAX) {
            free(buf.s);
            close(fd);
            return -3;
        }
        cfg_text_append(&buf, chunk, (size_t)n);
    }
    close(fd);
    *len = buf.len;
    *text = cfg_text_take(&buf);
    return 0;
}

static const char *read_error(int rc)
{
    return rc == -2 ? "not a regular file" : rc == -3 ? "larger than 16 MiB" : strerror(errno);
}

/* name as messages show it: beside the config as the user named it ("sub/.env" for
 * `-c sub/.lymph.yml`), or as written when absolute. */
static char *shown_path(const struct loader *ld, const char *name)
{
    const char *slash = strrchr(ld->file, '/');
    if (name[0] == '/' || !slash)
        return cfg_xstrdup(name);
    char *out = NULL;
    if (asprintf(&out, "%.*s/%s", (int)(slash - ld->file), ld->file, name) < 0)
        abort();
    return out;
}

static char *absolute_path(const struct loader *ld, const char *name)
{
    if (name[0] == '/')
        return cfg_xstrdup(name);
    char *out = NULL;
    if (asprintf(&out, "%s/%s", ld->cfg->dir, name) < 0)
        abort();
    return out;
}

/* Parses text as `shown`, through r. */
static int parse_into(struct loader *ld, const char *text, size_t len, struct reading *r)
{
    struct envfile_reader reader = {.lookup = reading_lookup, .assign = reading_assign, .ctx = r};
    return envfile_parse(text, len, r->file, &reader, ld->diag.err, ld->diag.errlen);
}

int envlayers_read_dotenv(struct loader *ld)
{
    struct config *cfg = ld->cfg;
    char *abs = absolute_path(ld, ".env");
    char *text = NULL;
    size_t len = 0;
    int rc = read_whole(abs, &text, &len);
    if (rc == -1 && errno == ENOENT) {
        free(abs);
        return 0;
    }
    char *shown = shown_path(ld, ".env");
    if (rc < 0) {
        ydiag_fail(&ld->diag, shown, 0, 0, "", "cannot read: %s (or start with --no-dotenv)", read_error(rc));
        free(shown);
        free(abs);
        return -1;
    }
    struct envlist list = {0};
    struct reading r = {.cfg = cfg, .into = &list, .layer = ENV_FROM_DOTENV, .file = shown};
    rc = parse_into(ld, text, len, &r);
    cfg->dotenv = list.vars; /* config_free frees it, also after a failure */
    cfg->dotenv_count = list.count;
    cfg->dotenv_path = abs;
    free(text);
    free(shown);
    return rc;
}

int envlayers_read_file(struct loader *ld, const struct ynode *item, const char *key_path, const char *name,
                        enum config_env_layer layer, struct envlist *into, const struct envlist *below,
                        char **abs)
{
    *abs = absolute_path(ld, name);
    char *text = NULL;
    size_t len = 0;
    int rc = read_whole(*abs, &text, &len);
    if (rc < 0)
        return ydiag_fail(&ld->diag, ld->file, item->line, item->col, key_path, "cannot read %s: %s", name,
                          read_error(rc));
    char *shown = shown_path(ld, name);
    struct reading r = {.first = into, .second = below, .cfg = ld->cfg, .into = into, .layer = layer,
                        .file = shown};
    rc = parse_into(ld, text, len, &r);
    free(text);
    free(shown);
    return rc;
}

/* ---- merging ---- */

/* Sets var in list: a name already there takes the new value and origin in its place. */
static void merge(struct envlist *list, const struct config_env_var *var)
{
    for (size_t i = 0; i < list->count; i++) {
        struct config_env_var *v = &list->vars[i];
        if (strcmp(v->name, var->name) == 0) {
            free(v->value);
            free(v->file);
            v->value = cfg_xstrdup(var->value);
            v->file = var->file ? cfg_xstrdup(var->file) : NULL;
            v->line = var->line;
            v->col = var->col;
            v->layer = var->layer;
            return;
        }
    }
    envlist_add(list, var);
}

void envlayers_finish_service(struct loader *ld, struct config_service *svc, const struct envlist *service_files)
{
    const struct config *cfg = ld->cfg;
    struct envlist out = {0};
    for (size_t i = 0; i < cfg->dotenv_count; i++) {
        const struct config_env_var *v = &cfg->dotenv[i];
        /* The worker inherits the shell's own value. PORT is each instance's (docs/config.md
         * "PORT"), as a PORT of the shell is: a project's .env PORT=3000 must not put every
         * service on one port. */
        if (getenv(v->name) || strcmp(v->name, "PORT") == 0)
            continue;
        merge(&out, v);
    }
    for (size_t i = 0; i < ld->top_env.count; i++)
        merge(&out, &ld->top_env.vars[i]);
    for (size_t i = 0; service_files && i < service_files->count; i++)
        merge(&out, &service_files->vars[i]);
    for (size_t i = 0; i < svc->env_count; i++)
        merge(&out, &svc->env[i]);
    struct envlist own = {.vars = svc->env, .count = svc->env_count};
    envlist_free(&own);
    svc->env = out.vars;
    svc->env_count = out.count;
}
