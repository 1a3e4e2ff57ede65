/* preflight: the rule for programs (docs/config.md): a name looked up in PATH or an absolute
 * path that does not exist is an error; a relative path that does not exist is a warning, since
 * a build may create it (./build/server); one that exists but cannot run is an error. Only the
 * first word of the last simple command is checked, and only when shellcmd can tell it. */
#include "node/preflight.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/shellcmd.h"
#include "common/xalloc.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

__attribute__((format(printf, 6, 7)))
static void say(char *buf, size_t len, const char *file, int line, int col, const char *fmt, ...)
{
    int n = line > 0 ? snprintf(buf, len, "%s:%d:%d: ", file, line, col) : snprintf(buf, len, "%s: ", file);
    if (n < 0 || (size_t)n >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, len - (size_t)n, fmt, ap);
    va_end(ap);
}

static void add_warning(struct preflight *pf, const char *text)
{
    pf->warnings = xrealloc(pf->warnings, (pf->warning_count + 1) * sizeof *pf->warnings);
    pf->warnings[pf->warning_count++] = xstrdup(text);
}

/* What the worker's PATH will be: the service's env wins over the node's. */
static const char *service_path(const struct config_service *svc)
{
    for (size_t i = 0; i < svc->env_count; i++)
        if (strcmp(svc->env[i].name, "PATH") == 0)
            return svc->env[i].value;
    const char *path = getenv("PATH");
    return path ? path : DEFAULT_PATH;
}

/* Why `path` cannot be run, or NULL when it can; *missing tells a file that is not there. */
static const char *cannot_run(const char *path, int *missing)
{
    struct stat st;
    *missing = 0;
    if (stat(path, &st) < 0) {
        *missing = errno == ENOENT || errno == ENOTDIR;
        return *missing ? "no such file" : strerror(errno);
    }
    if (S_ISDIR(st.st_mode))
        return "is a directory, not a program";
    if (access(path, X_OK) < 0)
        return "is not executable (chmod +x?)";
    return NULL;
}

/* 1 when `name` is an executable file in one of PATH's directories (relative ones from cwd). */
static int found_in_path(const char *name, const char *path, const char *cwd)
{
    for (const char *dir = path;; dir++) {
        size_t len = strcspn(dir, ":");
        char full[8192];
        int n;
        if (len == 0)
            n = snprintf(full, sizeof full, "%s/%s", cwd, name);
        else if (dir[0] == '/')
            n = snprintf(full, sizeof full, "%.*s/%s", (int)len, dir, name);
        else
            n = snprintf(full, sizeof full, "%s/%.*s/%s", cwd, (int)len, dir, name);
        int missing;
        if (n > 0 && (size_t)n < sizeof full && !cannot_run(full, &missing))
            return 1;
        dir += len;
        if (!*dir)
            return 0;
    }
}

static int check_service(const struct config_service *svc, const char *file, struct preflight *pf,
                         char *err, size_t errlen)
{
    struct stat st;
    int line = svc->cwd_line ? svc->cwd_line : svc->line, col = svc->cwd_line ? svc->cwd_col : 1;
    if (stat(svc->cwd, &st) < 0) {
        say(err, errlen, file, line, col, "instances.%s.cwd: directory %s %s", svc->name, svc->cwd,
            errno == ENOENT ? "does not exist" : strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        say(err, errlen, file, line, col, "instances.%s.cwd: %s is not a directory", svc->name, svc->cwd);
        return -1;
    }

    char program[4096];
    int in_list;
    if (!shellcmd_program(svc->command, program, sizeof program, &in_list))
        return 0;
    line = svc->command_line;
    col = svc->command_col;
    if (!strchr(program, '/')) {
        const char *path = service_path(svc);
        if (found_in_path(program, path, svc->cwd))
            return 0;
        say(err, errlen, file, line, col, "instances.%s.command: %s: not found in PATH", svc->name, program);
        return -1;
    }
    /* A list may change directory before it gets there ("cd app && ./run"). */
    if (program[0] != '/' && in_list)
        return 0;
    char full[8192];
    if (program[0] == '/')
        snprintf(full, sizeof full, "%s", program);
    else
        snprintf(full, sizeof full, "%s/%s", svc->cwd, program);
    int missing;
    const char *why = cannot_run(full, &missing);
    if (!why)
        return 0;
    if (missing && program[0] != '/') {
        char text[8400];
        say(text, sizeof text, file, line, col,
            "instances.%s.command: %s does not exist yet in %s; up starts it anyway (fine if a build creates it)",
            svc->name, program, svc->cwd);
        add_warning(pf, text);
        return 0;
    }
    say(err, errlen, file, line, col, "instances.%s.command: %s: %s", svc->name, program, why);
    return -1;
}

int preflight_run(const struct config *cfg, const char *shown_path, struct preflight *pf, char *err,
                  size_t errlen)
{
    memset(pf, 0, sizeof *pf);
    for (size_t i = 0; i < cfg->service_count; i++)
        if (check_service(&cfg->services[i], shown_path, pf, err, errlen) < 0)
            return -1;
    return 0;
}

void preflight_free(struct preflight *pf)
{
    for (size_t i = 0; i < pf->warning_count; i++)
        free(pf->warnings[i]);
    free(pf->warnings);
    pf->warnings = NULL;
    pf->warning_count = 0;
}
