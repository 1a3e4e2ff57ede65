/* cmd_export: `devnode export systemd DIR`: writes the project's systemd units (export/systemd
 * makes them; docs/export.md) into DIR. All or nothing: a file that exists with other content
 * stops the export before anything is written, unless --force; every file is written into a
 * staging directory inside DIR first and renamed into place once all of them were written.
 * Environment files are mode 0600 and their values are never printed (--dry-run). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "export/systemd.h"
#include "node/preflight.h"
#include "sockets/sockets.h"

enum { OPT_USER = 'u', OPT_NAME = 'n', OPT_FORCE = 'f', OPT_VARS = 'V', OPT_PORT_BASE = 'P', OPT_DRY_RUN = 'D' };

static const struct cli_option options[] = {
    {"user", 0, 0, OPT_USER},
    {"name", 0, 1, OPT_NAME},
    {"force", 0, 0, OPT_FORCE},
    {"vars", 0, 1, OPT_VARS},
    {"port-base", 0, 1, OPT_PORT_BASE},
    {"dry-run", 0, 0, OPT_DRY_RUN},
    {0},
};

/* The program the exporting user's PATH finds, as the node's shell would: systemd searches
 * only its own fixed PATH, so a venv's gunicorn must be named by its path. */
static char *which(void *ctx, const char *program)
{
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    for (const char *p = path; *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (len > 0 && p[0] == '/') {
            char *candidate = NULL;
            if (asprintf(&candidate, "%.*s/%s", (int)len, p, program) < 0)
                abort();
            struct stat st;
            if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0)
                return candidate;
            free(candidate);
        }
        p += len + (colon ? 1 : 0);
    }
    return NULL;
}

/* mkdir -p */
static int make_dirs(const char *dir, char *err, size_t errlen)
{
    char *copy = xstrdup(dir);
    int rc = 0;
    for (char *p = copy + 1; rc == 0; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", copy, strerror(errno));
            rc = -1;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    free(copy);
    return rc;
}

/* 1 when path holds exactly text, 0 when it is missing, -1 when it differs (or is unreadable). */
static int same_content(const char *path, const char *text)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    struct strbuf sb;
    strbuf_init(&sb);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        strbuf_append(&sb, buf, n);
    int ok = !ferror(f) && sb.len == strlen(text) && (sb.len == 0 || memcmp(sb.data, text, sb.len) == 0);
    fclose(f);
    strbuf_free(&sb);
    return ok ? 1 : -1;
}

/* Writes text to a new file at path with mode (0600 whatever the umask for an environment file). */
static int write_new_file(const char *path, const char *text, mode_t mode, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    size_t len = strlen(text), done = 0;
    while (fd >= 0 && done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            break;
        done += (size_t)w;
    }
    int rc = fd >= 0 && done == len && (mode != 0600 || fchmod(fd, mode) == 0) && fsync(fd) == 0 ? 0 : -1;
    if (rc < 0)
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    if (fd >= 0 && close(fd) < 0 && rc == 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* Removes the staging directory and what is left in it (files not renamed into place). */
static void remove_staging(const char *staging)
{
    DIR *d = opendir(staging);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *path = NULL;
        if (asprintf(&path, "%s/%s", staging, e->d_name) < 0)
            abort();
        unlink(path);
        free(path);
    }
    if (d)
        closedir(d);
    rmdir(staging);
}

/* What a dry run prints: each file with what the export would do, environment files with
 * their names and lengths only. */
static int dry_run(const struct export_result *res, char **paths, const int *state, int force)
{
    int conflicts = 0;
    for (size_t i = 0; i < res->file_count; i++) {
        const struct export_file *f = &res->files[i];
        const char *what = state[i] == 1 ? "unchanged" : state[i] == 0 ? "would write"
                           : force ? "would overwrite" : "differs (--force overwrites it)";
        conflicts += state[i] < 0 && !force;
        printf("==> %s: %s%s <==\n%s", paths[i], what, f->secret ? ", mode 0600, values not shown" : "",
               f->shown ? f->shown : f->text);
    }
    return conflicts ? CLI_FAILURE : CLI_OK;
}

static int export_files(const char *dir, const struct export_result *res, int force, int dry)
{
    char err[PATH_MAX + 256];
    if (!dry && make_dirs(dir, err, sizeof err) < 0) {
        cli_error("export: %s", err);
        return CLI_FAILURE;
    }
    int *state = xcalloc(res->file_count ? res->file_count : 1, sizeof *state);
    char **paths = xcalloc(res->file_count ? res->file_count : 1, sizeof *paths);
    char **staged = xcalloc(res->file_count ? res->file_count : 1, sizeof *staged);
    int conflicts = 0, rc = CLI_OK;
    for (size_t i = 0; i < res->file_count; i++) {
        if (asprintf(&paths[i], "%s/%s", dir, res->files[i].name) < 0)
            abort();
        state[i] = same_content(paths[i], res->files[i].text);
        struct stat st;
        if (!dry && lstat(paths[i], &st) == 0 && !S_ISREG(st.st_mode)) {
            /* Not even --force replaces it: its rename would fail after others were done. */
            cli_error("export: %s exists and is not a regular file", paths[i]);
            conflicts++;
            continue;
        }
        if (state[i] < 0 && !force && !dry) {
            cli_error("export: %s exists with other content (--force overwrites it)", paths[i]);
            conflicts++;
        }
    }
    if (conflicts)
        rc = CLI_FAILURE;
    char *staging = NULL;
    if (dry) {
        rc = dry_run(res, paths, state, force);
    } else if (rc == CLI_OK) {
        /* Every file first into DIR/.devnode-export.XXXXXX (the same file system), then renamed:
         * a full disk or a bad permission leaves DIR as it was. */
        if (asprintf(&staging, "%s/.devnode-export.XXXXXX", dir) < 0)
            abort();
        if (!mkdtemp(staging)) {
            cli_error("export: cannot create a staging directory in %s: %s", dir, strerror(errno));
            free(staging);
            staging = NULL;
            rc = CLI_FAILURE;
        }
    }
    for (size_t i = 0; staging && i < res->file_count && rc == CLI_OK; i++) {
        if (state[i] == 1)
            continue;
        if (asprintf(&staged[i], "%s/%zu", staging, i) < 0)
            abort();
        if (write_new_file(staged[i], res->files[i].text, res->files[i].secret ? 0600 : 0644, err, sizeof err) < 0) {
            cli_error("export: %s (nothing written)", err);
            rc = CLI_FAILURE;
        }
    }
    for (size_t i = 0; staging && i < res->file_count && rc == CLI_OK; i++) {
        if (state[i] == 1) {
            /* Same text: an environment file still gets its mode back, should it have lost it. */
            if (res->files[i].secret && chmod(paths[i], 0600) < 0) {
                cli_error("export: cannot make %s mode 0600: %s", paths[i], strerror(errno));
                rc = CLI_FAILURE;
                break;
            }
            printf("unchanged %s\n", paths[i]);
            continue;
        }
        char *slash = strrchr(paths[i], '/');
        *slash = '\0';
        int made = make_dirs(paths[i], err, sizeof err);
        *slash = '/';
        if (made < 0 || rename(staged[i], paths[i]) < 0) {
            if (made == 0)
                snprintf(err, sizeof err, "cannot write %s: %s", paths[i], strerror(errno));
            cli_error("export: %s", err);
            rc = CLI_FAILURE;
            break;
        }
        printf("wrote %s%s\n", paths[i], res->files[i].secret ? " (mode 0600)" : "");
    }
    if (staging)
        remove_staging(staging);
    free(staging);
    for (size_t i = 0; i < res->file_count; i++) {
        free(paths[i]);
        free(staged[i]);
    }
    free(paths);
    free(staged);
    free(state);
    return rc;
}

static int cmd_export(struct cli_args *args)
{
    if (args->argc < 1) {
        cli_error("export: name the format and the directory: devnode export systemd DIR");
        return CLI_USAGE;
    }
    if (strcmp(args->argv[0], "systemd") != 0) {
        cli_error("export: unknown format '%s' (devnode exports: systemd)", args->argv[0]);
        return CLI_USAGE;
    }
    if (args->argc < 2) {
        cli_error("export systemd: name the directory to write the units to");
        return CLI_USAGE;
    }
    if (args->argc > 2) {
        cli_error("export: unexpected argument '%s'", args->argv[2]);
        return CLI_USAGE;
    }
    const char *dir = args->argv[1];
    const char *vars = cli_arg(args, OPT_VARS) ? cli_arg(args, OPT_VARS) : getenv("LYMPH_VARS");
    int user = cli_arg(args, OPT_USER) != NULL;
    char project[128], err[1024];
    if (export_project_name(cli_arg(args, OPT_NAME), args->project.dir, project, sizeof project, err,
                            sizeof err) < 0) {
        cli_error("export: %s", err);
        return CLI_USAGE;
    }
    struct config cfg;
    struct preflight pf;
    if (cli_load_config(args, vars, cli_arg(args, OPT_PORT_BASE), &cfg, &pf) < 0)
        return CLI_USAGE;
    /* System units run as root unless told: keep devnode's user, as the node ran. */
    const struct passwd *pw = geteuid() != 0 ? getpwuid(geteuid()) : NULL;
    struct export_options opt = {.project = project, .user = user, .run_as = pw ? pw->pw_name : NULL,
                                 .which = which};
    struct export_result res;
    if (export_systemd(&cfg, &opt, &res, err, sizeof err) < 0) {
        cli_error("export: %s", err);
        preflight_free(&pf);
        config_free(&cfg);
        return CLI_USAGE;
    }
    int dry = cli_arg(args, OPT_DRY_RUN) != NULL;
    int rc = export_files(dir, &res, cli_arg(args, OPT_FORCE) != NULL, dry);
    if (rc == CLI_OK) {
        for (size_t i = 0; i < cfg.service_count; i++) {
            char warning[1024];
            if (sockets_listen_pid_warning(&cfg, &cfg.services[i], warning, sizeof warning))
                printf("warning: %s\n", warning);
        }
        for (size_t i = 0; i < pf.warning_count; i++)
            printf("warning: %s\n", pf.warnings[i]);
        for (size_t i = 0; i < res.not_exported_count; i++)
            printf("not exported: %s\n", res.not_exported[i]);
        const char *units = user ? "~/.config/systemd/user" : "/etc/systemd/system";
        const char *ctl = user ? "systemctl --user" : "systemctl";
        printf("%sinstall: cp -r %s/. %s/ && %s daemon-reload && %s enable --now %s.target\n", dry ? "dry run, " : "",
               dir, units, ctl, ctl, project);
    }
    export_result_free(&res);
    preflight_free(&pf);
    config_free(&cfg);
    return rc;
}

const struct cli_command cmd_export_entry = {
    .name = "export",
    .usage = "systemd DIR [--user] [--name NAME] [--force] [--dry-run] [--vars FILE] [--port-base N]",
    .summary = "write systemd units for the project into DIR (docs/export.md)",
    .flags = CLI_NEEDS_PROJECT,
    .options = options,
    .run = cmd_export,
};
