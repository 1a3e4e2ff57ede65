/* cmd_import: `devnode import procfile [PROCFILE]`: writes the .lymph.yml a Procfile stands
 * for, the very text `up` runs a Procfile through, so the file runs the same. It never
 * replaces an existing file unless told to (--force), and never leaves a half-written one. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/procfile.h"

static const struct cli_option options[] = {
    CLI_OPTION_FORMATION,
    {"force", 'f', 0, 'f'},
    {"output", 'o', 1, 'o'},
    {0},
};

/* <dir of path>/.lymph.yml */
static void default_output(const char *procfile, char *out, size_t cap)
{
    const char *slash = strrchr(procfile, '/');
    if (slash)
        snprintf(out, cap, "%.*s/.lymph.yml", (int)(slash - procfile), procfile);
    else
        snprintf(out, cap, ".lymph.yml");
}

/* Writes text to a temporary file beside `path`. 0 with tmp filled, or -1 after printing. */
static int write_temp(const char *path, const char *text, char *tmp, size_t cap)
{
    snprintf(tmp, cap, "%s.import.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        cli_error("import: cannot write beside %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            cli_error("import: cannot write %s: %s", tmp, strerror(n < 0 ? errno : ENOSPC));
            close(fd);
            unlink(tmp);
            return -1;
        }
        done += (size_t)n;
    }
    mode_t mask = umask(0); /* mkstemp made it 0600; a config is as readable as any new file */
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) < 0 || fsync(fd) < 0 || close(fd) < 0) {
        cli_error("import: cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int cmd_import(struct cli_args *args)
{
    if (args->argc < 1 || strcmp(args->argv[0], "procfile") != 0) {
        cli_error("import: what to import: `devnode import procfile [PROCFILE]`%s%s%s",
                  args->argc ? " (not '" : "", args->argc ? args->argv[0] : "", args->argc ? "')" : "");
        return CLI_USAGE;
    }
    if (args->argc > 2) {
        cli_error("import: unexpected argument '%s'", args->argv[2]);
        return CLI_USAGE;
    }
    const char *procfile = args->argc > 1 ? args->argv[1] : "Procfile";
    char output[PATH_MAX];
    if (cli_arg(args, 'o'))
        snprintf(output, sizeof output, "%s", cli_arg(args, 'o'));
    else
        default_output(procfile, output, sizeof output);
    int force = cli_arg(args, 'f') != NULL;

    char err[1024];
    struct procfile pf;
    if (procfile_read(procfile, &pf, err, sizeof err) < 0) {
        cli_error("%s", err);
        return CLI_USAGE;
    }
    int *counts = calloc(pf.count, sizeof *counts);
    if (!counts) {
        procfile_free(&pf);
        cli_error("import: out of memory");
        return CLI_FAILURE;
    }
    for (size_t i = 0; i < pf.count; i++)
        counts[i] = 1;
    const char *spec = cli_arg(args, 'm');
    if (spec) {
        struct procfile_formation f;
        int parsed = procfile_formation_parse(spec, &f, err, sizeof err) == 0, bad = !parsed;
        for (size_t k = 0; !bad && k < f.count; k++) {
            size_t i = 0;
            while (i < pf.count && strcmp(pf.entries[i].name, f.names[k]) != 0)
                i++;
            if (i == pf.count) {
                snprintf(err, sizeof err, "%s has no process '%s'", procfile, f.names[k]);
                bad = 1;
            }
        }
        for (size_t i = 0; !bad && i < pf.count; i++)
            counts[i] = procfile_formation_count(&f, pf.entries[i].name);
        if (parsed)
            procfile_formation_free(&f);
        if (bad) {
            cli_error("import: -m: %s", err);
            free(counts);
            procfile_free(&pf);
            return CLI_USAGE;
        }
    }
    const char *base = strrchr(procfile, '/');
    char *yaml = procfile_to_yaml(&pf, counts, base ? base + 1 : procfile);
    free(counts);

    int rc = CLI_FAILURE;
    char tmp[PATH_MAX + 32];
    if (!force && access(output, F_OK) == 0) {
        cli_error("import: %s exists; --force replaces it", output);
        rc = CLI_USAGE;
        goto out;
    }
    if (write_temp(output, yaml, tmp, sizeof tmp) < 0)
        goto out;
    /* What was written must load as the config it claims to be before it takes the name. */
    struct config cfg;
    if (config_load_unresolved(tmp, &cfg, err, sizeof err) < 0) {
        cli_error("import: the written config does not load (a bug): %s", err);
        unlink(tmp);
        goto out;
    }
    config_free(&cfg);
    /* Without --force, link(2) refuses a file that appeared meanwhile, where rename would not. */
    if (force ? rename(tmp, output) < 0 : link(tmp, output) < 0) {
        int e = errno;
        unlink(tmp);
        if (e == EEXIST) {
            cli_error("import: %s exists; --force replaces it", output);
            rc = CLI_USAGE;
        } else {
            cli_error("import: cannot write %s: %s", output, strerror(e));
        }
        goto out;
    }
    if (!force)
        unlink(tmp);
    printf("wrote %s:", output);
    for (size_t i = 0; i < pf.count; i++)
        printf("%s %s", i ? "," : "", pf.entries[i].name);
    printf(" (from %s; `devnode check` shows what it runs)\n", procfile);
    rc = CLI_OK;
out:
    free(yaml);
    procfile_free(&pf);
    return rc;
}

const struct cli_command cmd_import_entry = {
    .name = "import",
    .usage = "procfile [PROCFILE] [-m NAME=N,...] [-o FILE] [--force]",
    .summary = "write the .lymph.yml equivalent of a Procfile",
    .options = options,
    .run = cmd_import,
};
