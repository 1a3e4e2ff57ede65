/* pathglob: the path patterns of a service's `watch:` and `ignore:` (docs/config.md#watch),
 * matched against '/'-separated paths relative to the config's folder ("src/app/main.py"; ""
 * is that folder itself). `*` and `?` stay within one name, `[a-z]` is a class, `**` as a
 * whole name is any number of folders, a trailing '/' matches only what lies under a folder.
 * A pattern matches a path or anything under a folder it matches. Pure: no file system. */
#ifndef DEVNODE_PATHGLOB_H
#define DEVNODE_PATHGLOB_H

#include <stddef.h>

enum pathglob_rule {
    PATHGLOB_ANCHORED, /* watch: always from the config's folder */
    PATHGLOB_GITIGNORE, /* ignore: without a '/' inside it matches at any depth; a leading '/' anchors */
};

struct pathglob {
    char **names;      /* the pattern split at '/', "**" kept as a name of its own */
    size_t count;
    int folder_only;   /* written with a trailing '/' */
};

/* Returns 0, or -1 with err set ("must be relative to ...") and nothing to free. */
int pathglob_compile(struct pathglob *g, const char *pattern, enum pathglob_rule rule, char *err, size_t errlen);
void pathglob_free(struct pathglob *g);

/* 1 when `path` or a folder above it matches (a folder_only pattern needs something under). */
int pathglob_match(const struct pathglob *g, const char *path);
/* pathglob_match for a path known to be a folder, which folder_only patterns match too. */
int pathglob_match_folder(const struct pathglob *g, const char *folder);
/* 1 when one of gs[0..count) matches (pathglob_match, or _folder when is_folder), for the
 * price of one split of the path. */
int pathglob_match_any(const struct pathglob *gs, size_t count, const char *path, int is_folder);
/* 1 when some path strictly under `folder` could match, so the folder is worth watching. */
int pathglob_may_match_under(const struct pathglob *g, const char *folder);

#endif
