/* procfile: a Procfile (foreman's and honcho's format: `name: command` per line) read as the
 * .lymph.yml it stands for. config_load runs a Procfile through the same key table as any
 * .lymph.yml (so defaults, PORT blocks and env files apply alike), `devnode import procfile`
 * writes the same text to disk. It never prints, spawns or binds. */
#ifndef DEVNODE_PROCFILE_H
#define DEVNODE_PROCFILE_H

#include <stdbool.h>
#include <stddef.h>

#define PROCFILE_NAME_MAX 63 /* longer names are refused (they end up as `name.N` columns) */

struct procfile_entry {
    char *name;    /* [A-Za-z0-9_-]+ */
    char *command; /* run with /bin/sh -c; trimmed, valid UTF-8, no NUL */
    int line;      /* 1-based */
    int col;       /* of the name, 1-based */
    int command_col; /* of the command */
};

struct procfile {
    struct procfile_entry *entries; /* in file order */
    size_t count;
};

/* True for the file names config_load reads as a Procfile: `Procfile` and `Procfile.*`
 * (Procfile.dev), but not `Procfile.yml`/`.yaml`. Only the last path component counts. */
bool procfile_is_procfile(const char *path);

/* Parses a Procfile's bytes. Blank lines and lines starting with `#` are skipped; every
 * other line must be `NAME: COMMAND`. Returns 0, or -1 with "FILE:LINE:COL: what is wrong"
 * in err (a bad name, an empty command, a duplicate, invalid UTF-8, a NUL byte, no process
 * at all). On failure *out holds nothing that needs freeing. */
int procfile_parse(const char *file, const char *text, size_t len, struct procfile *out, char *err,
                   size_t errlen);
/* procfile_parse of a file on disk. */
int procfile_read(const char *path, struct procfile *out, char *err, size_t errlen);
void procfile_free(struct procfile *pf);

struct ydiag;
struct ynode;
/* config_load's view of a Procfile: procfile_read, then the tree of procfile_to_yaml's text,
 * its service and command nodes placed at the Procfile's own lines and columns, so a message
 * about a command (a program not found, an undefined $(env.X)) names where it is written. */
int procfile_parse_tree(const struct ydiag *d, const char *path, struct ynode **root);

/* The .lymph.yml equivalent (malloc'd, NUL-terminated): one service per entry, its command a
 * double-quoted YAML scalar that reads back byte for byte; `counts` (may be NULL) gives each
 * entry's numprocesses, written only when not NULL. `source` names the Procfile in the
 * leading comment, or NULL for none. */
char *procfile_to_yaml(const struct procfile *pf, const int *counts, const char *source);

/* foreman's formation (`-m web=2,worker=1`, `all=N` for the rest): a process it does not
 * name gets `all`'s count, or 0 when it has no `all`. */
struct procfile_formation {
    char **names;
    int *counts;
    size_t count;
    int all; /* -1 when not given */
};

/* Parses "NAME=N,NAME=N" (spaces ignored, N 0..1000, names as a Procfile's). Returns 0, or
 * -1 with the reason in err. */
int procfile_formation_parse(const char *spec, struct procfile_formation *out, char *err, size_t errlen);
/* The count the formation gives process `name`. */
int procfile_formation_count(const struct procfile_formation *f, const char *name);
void procfile_formation_free(struct procfile_formation *f);

#endif
