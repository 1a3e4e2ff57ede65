/* keys: the schema of .lymph.yml as one table, the way redis's config.c has standardConfig.
 * Each key the loader accepts is one row (name, kind, limits, default, loader, doc); the key
 * lists of error messages, `devnode schema` and the docs check are generated from the rows.
 * Internal to config/ (and the schema generator): callers use config/config.h. */
#ifndef DEVNODE_KEYS_H
#define DEVNODE_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "config/envlayers.h"
#include "config/interp.h"
#include "config/yamltree.h"

/* What the value of a key looks like. A row with `load` set has its own loader (a custom
 * kind); its `kind` still describes the value's shape for the schema and messages. */
enum config_key_kind {
    KEY_INT,       /* decimal integer in min..max; stored at offset by size (int, unsigned, size_t, uint64_t) */
    KEY_DURATION,  /* seconds (10, 0.5) or 500ms / 2s, in whole ms in min..max; stored as unsigned */
    KEY_STRING,    /* a non-empty string; stored as char * (the target owns it) */
    KEY_ENUM,      /* one of `choices`; stored as the int index of the choice */
    KEY_MAP,       /* the keys of `section`, or with KEY_NAMED: NAME -> `section` (or -> scalar) */
    KEY_LIST,      /* a list of strings */
    KEY_IGNORED,   /* read by lymph's services: accepted, noted for `check`, not read */
};

enum {
    KEY_REQUIRED = 1,       /* a missing key is an error (the row's loader or section says so) */
    KEY_NULL_IS_VALUE = 2,  /* `key:` with no value goes to the loader instead of keeping the default */
    KEY_NAMED = 4,          /* KEY_MAP: the keys are names the user picks */
    KEY_OR_LIST = 8,        /* KEY_MAP with KEY_NAMED: also a list of `section` (sockets) */
    KEY_LIST_ONLY = 16,     /* only in the list form of the parent (a socket's name) */
    KEY_LOAD_FIRST = 32,    /* loaded before its siblings, wherever it is in the file */
    KEY_LOAD_LAST = 64,     /* loaded after its siblings */
    KEY_EMPTY_ITEMS = 128,  /* KEY_NAMED: `NAME:` with no value takes the defaults (streams) */
    KEY_OR_NAMES = 256,     /* KEY_MAP with KEY_NAMED: also a plain list of the names (depends_on) */
};

/* Every duration key: 0 up to an hour. */
#define CONFIG_DURATION_MAX_MS 3600000LL

struct loader;
struct config_section;

struct config_key {
    const char *name;
    enum config_key_kind kind;
    unsigned flags;                   /* KEY_* above */
    long long min, max;               /* KEY_INT; KEY_DURATION in ms */
    long long def;                    /* default of KEY_INT / KEY_DURATION / KEY_ENUM, set before loading */
    const char *default_text;         /* the default as the docs write it; NULL when there is none */
    const char *const *choices;       /* KEY_ENUM, or the scalar forms of a KEY_MAP; NULL-terminated */
    size_t offset, size;              /* generic kinds: the field in the section's target struct */
    /* A custom kind: loads `value` (never null unless KEY_NULL_IS_VALUE) of `key` into target. */
    int (*load)(struct loader *ld, const struct ynode *key, const struct ynode *value,
                const char *key_path, void *target);
    const struct config_section *section;  /* KEY_MAP: its keys, or the settings of each NAME */
    const char *doc;                  /* one line, for the schema's description */
};

struct config_section {
    const char *takes;                /* "a service takes": opens the key list of "unknown key (...)" */
    const struct config_key *keys;
    size_t count;
};

/* The top level of .lymph.yml; every other section hangs off its rows. */
extern const struct config_section config_top_section;

/* One load's state: where messages go, how values are interpolated, what is being filled. */
struct loader {
    const char *file;      /* the config path as the caller gave it, for messages */
    struct ydiag diag;
    struct interp interp;
    struct config *cfg;
    struct envlist top_env;      /* what the top-level env_file: files set, in order */
    struct envlist service_env;  /* the same for the service being loaded */
};

/* Fills ld->cfg from the tree's root (NULL for an empty file) through the table. */
int keys_load_top(struct loader *ld, const struct ynode *root);

/* "a, b or c" / "a, b, c": the names of sec's keys (with KEY_LIST_ONLY ones when list_form,
 * never the KEY_IGNORED ones) into buf. */
void keys_names(const struct config_section *sec, bool list_form, char *buf, size_t len);

/* A map of sec's keys into target, as a fixed sub-map (`ready: {...}`) is loaded. */
int keys_load_map(struct loader *ld, const struct config_section *sec, const struct ynode *value,
                  const char *key_path, void *target);

/* depends.c: depends_on's loaders, its {condition, restart} section and the check, run once
 * every service is loaded, that refuses unknown names, self dependencies and cycles. */
extern const struct config_section keys_dep_section;
extern const char *const keys_dep_condition_choices[];
int keys_load_depends_on(struct loader *ld, const struct ynode *key, const struct ynode *value,
                         const char *key_path, void *target);
int keys_load_dep_condition(struct loader *ld, const struct ynode *key, const struct ynode *value,
                            const char *key_path, void *target);
int keys_check_depends(struct loader *ld);

/* Socket of cfg by name, or NULL. */
const struct config_socket *keys_find_socket(const struct config *cfg, const char *name);

#endif
