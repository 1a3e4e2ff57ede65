/* export/systemd: the systemd units of a project, generated from its loaded .lymph.yml
 * (`devnode export systemd`, docs/export.md): a template service per service, a socket unit
 * per shared socket, a target that wants every instance. Pure: config in, file texts out; it
 * never writes, reads the file system or prints (the caller does, and looks programs up). */
#ifndef DEVNODE_EXPORT_SYSTEMD_H
#define DEVNODE_EXPORT_SYSTEMD_H

#include <stddef.h>

#include "config/config.h"

struct export_options {
    const char *project; /* unit name prefix, valid per export_project_name */
    int user;            /* user units (`--user`): WantedBy=default.target, no User= */
    const char *run_as;  /* User= of system units (the exporting user), or NULL for none */
    /* The absolute path of a program named without a slash (a PATH lookup), malloc'd, or NULL
     * to leave the name to systemd's own search path. May be NULL. */
    char *(*which)(void *ctx, const char *program);
    void *which_ctx;
};

struct export_file {
    char *name; /* path under the target directory: "demo-Web@.service", "demo-Api@0.service.d/port.conf" */
    char *text;
    int secret; /* an environment file: mode 0600, its values never printed (NAME.env) */
    char *shown; /* what a dry run prints: text with every value replaced by its length; NULL: text */
};

struct export_result {
    struct export_file *files;
    size_t file_count;
    char **not_exported; /* one line each: "instances.Web.ready.log: ..." (also a comment in the units) */
    size_t not_exported_count;
};

/* Generates the units of cfg. Returns 0 with *out to free with export_result_free, or -1 with
 * one line in err naming the file, line and key (a port 0 socket, a host name instead of an
 * address, a value a unit file or an environment file cannot hold; never the value itself). */
int export_systemd(const struct config *cfg, const struct export_options *opt, struct export_result *out,
                   char *err, size_t errlen);
void export_result_free(struct export_result *r);

/* The project name: `given` when it is valid (letters, digits, '_', '-', '.', not starting
 * with '.' or '-', at most 64 bytes), or the last component of dir with every other byte
 * turned into '-'. 0, or -1 with err (a bad --name, or a dir that leaves nothing). */
int export_project_name(const char *given, const char *dir, char *out, size_t cap, char *err, size_t errlen);

/* How the export treats the config key at `path` (key names joined by '.', '*' for a name
 * the user picks: "instances.*.ready.log"): 1 exported, with *how the unit setting; 0 not
 * exported, with *how saying why; -1 undecided (a unit test walks the key table, so a new
 * key must decide here). */
int export_key_decision(const char *path, const char **how);

#endif
