/* yamltree: a YAML file as a tree of maps, lists and scalars that keeps every node's line
 * and column, so each complaint about a config can name file:line:col and the dotted key.
 * It knows no config key: duplicates, non-scalar keys, anchors and aliases are checked or
 * expanded here; what a key means is config/keys.c's business. */
#ifndef DEVNODE_YAMLTREE_H
#define DEVNODE_YAMLTREE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Key paths only ever appear in messages, so a long one may be cut short ("..."). */
#define KEY_PATH_MAX 256

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
    enum ynode_kind kind;
    int line;              /* 1-based */
    int col;               /* 1-based */
    char *text;            /* scalars: the value as written, NUL-terminated */
    bool plain;            /* scalars: unquoted, so `~`, `null` and "" mean null */
    struct ynode **kids;   /* maps: key, value, key, value...; lists: the items */
    size_t kid_count;
    size_t kid_cap;
};

/* Where messages go: one line, "FILE:LINE:COL: KEY: message". */
struct ydiag {
    char *err;
    size_t errlen;
};

/* Parses `file` into a tree (*root NULL for an empty file), then refuses duplicate and
 * non-scalar map keys. Returns 0, or -1 with the message in d. */
int ytree_parse_file(const struct ydiag *d, const char *file, struct ynode **root);
/* ytree_parse_file of text already in memory (a Procfile's .lymph.yml), named `file`. */
int ytree_parse_text(const struct ydiag *d, const char *file, const char *text, size_t len, struct ynode **root);
void ytree_free(struct ynode *n);

size_t ynode_pairs(const struct ynode *map);
bool ynode_is_null(const struct ynode *n);
const char *ynode_kind_name(const struct ynode *n);  /* "a map", "a list", "a scalar" */

/* Writes "FILE:LINE:COL: KEY: message" (leaving out what is 0 or empty) and returns -1. */
__attribute__((format(printf, 6, 7)))
int ydiag_fail(const struct ydiag *d, const char *file, int line, int col, const char *key_path,
               const char *fmt, ...);
int ydiag_vfail(const struct ydiag *d, const char *file, int line, int col, const char *key_path,
                const char *fmt, va_list ap);

/* dst (KEY_PATH_MAX bytes) = "parent.key" or "parent[index]". */
void key_path_child(char *dst, const char *parent, const char *key);
void key_path_item(char *dst, const char *parent, size_t index);

#endif
