/* pathglob: path patterns split into names once, matched name by name with fnmatch(3), so
 * `*` never crosses a '/'. `**` is the only thing that spans folders. Nothing here touches
 * the file system: the watcher hands in the paths it saw. */
#include "common/pathglob.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

static int is_globstar(const char *name)
{
    return strcmp(name, "**") == 0;
}

int pathglob_compile(struct pathglob *g, const char *pattern, enum pathglob_rule rule, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    size_t len = strlen(pattern);
    if (len == 0) {
        snprintf(err, errlen, "a pattern must not be empty");
        return -1;
    }
    const char *p = pattern;
    int anchored = rule == PATHGLOB_ANCHORED;
    if (*p == '/') {
        if (rule == PATHGLOB_ANCHORED) {
            snprintf(err, errlen, "\"%.80s\" must be relative to the folder of the config file (no leading /)",
                     pattern);
            return -1;
        }
        anchored = 1;
        while (*p == '/')
            p++;
    }
    len = strlen(p);
    while (len > 0 && p[len - 1] == '/') {
        g->folder_only = 1;
        len--;
    }
    /* gitignore's rule: a '/' before the end ties the pattern to the config's folder. */
    if (memchr(p, '/', len))
        anchored = 1;
    char *copy = xstrndup(p, len);
    g->names = xcalloc(len + 2, sizeof *g->names);
    if (!anchored)
        g->names[g->count++] = xstrdup("**");
    for (char *save = NULL, *name = strtok_r(copy, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
        if (strcmp(name, ".") == 0)
            continue;
        if (strcmp(name, "..") == 0) {
            snprintf(err, errlen, "\"%.80s\" must stay inside the folder of the config file (no ..)", pattern);
            free(copy);
            pathglob_free(g);
            return -1;
        }
        if (is_globstar(name) && g->count && is_globstar(g->names[g->count - 1]))
            continue; /* two globstars in a row are one */
        g->names[g->count++] = xstrdup(name);
    }
    free(copy);
    if (g->count == 0) {
        snprintf(err, errlen, "\"%.80s\" names no file or folder", pattern);
        pathglob_free(g);
        return -1;
    }
    return 0;
}

void pathglob_free(struct pathglob *g)
{
    for (size_t i = 0; i < g->count; i++)
        free(g->names[i]);
    free(g->names);
    memset(g, 0, sizeof *g);
}

/* A path split at '/' in place: names[] point into text. */
struct split_path {
    char *text;
    char **names;
    size_t count;
};

static void split_path(struct split_path *sp, const char *path)
{
    size_t len = strlen(path);
    sp->text = xstrndup(path, len);
    sp->names = xcalloc(len / 2 + 2, sizeof *sp->names);
    sp->count = 0;
    for (char *save = NULL, *name = strtok_r(sp->text, "/", &save); name; name = strtok_r(NULL, "/", &save))
        sp->names[sp->count++] = name;
}

static void split_free(struct split_path *sp)
{
    free(sp->text);
    free(sp->names);
}

static int name_matches(const char *pattern, const char *name)
{
    return fnmatch(pattern, name, 0) == 0;
}

/* The pattern's names then a tail that takes what lies under a matched folder: `**` (any
 * number of names), or `*` `**` (at least one) when the pattern needs a folder and the path
 * is not known to be one. Matched with the classic wildcard walk that backs up only to the
 * last `**`, since every other name takes exactly one name of the path: O(names x path),
 * never exponential, whatever a config writes. */
static int match_from(const struct pathglob *g, const struct split_path *sp, int is_folder)
{
    const char *tail[2] = {"*", "**"};
    int needs_under = g->folder_only && !is_folder;
    size_t tail_first = needs_under ? 0 : 1;
    size_t m = g->count + 2 - tail_first;
#define TOKEN(k) ((k) < g->count ? g->names[(k)] : tail[(k) - g->count + tail_first])
    size_t i = 0, j = 0, star = (size_t)-1, mark = 0;
    while (j < sp->count) {
        if (i < m && is_globstar(TOKEN(i))) {
            star = i++;
            mark = j;
        } else if (i < m && name_matches(TOKEN(i), sp->names[j])) {
            i++;
            j++;
        } else if (star != (size_t)-1) {
            i = star + 1;
            j = ++mark;
        } else {
            return 0;
        }
    }
    while (i < m && is_globstar(TOKEN(i)))
        i++;
#undef TOKEN
    return i == m;
}

static int match_path(const struct pathglob *g, const char *path, int is_folder)
{
    struct split_path sp;
    split_path(&sp, path);
    int m = match_from(g, &sp, is_folder);
    split_free(&sp);
    return m;
}

int pathglob_match_any(const struct pathglob *gs, size_t count, const char *path, int is_folder)
{
    struct split_path sp;
    split_path(&sp, path);
    int m = 0;
    for (size_t i = 0; i < count && !m; i++)
        m = match_from(&gs[i], &sp, is_folder);
    split_free(&sp);
    return m;
}

int pathglob_match(const struct pathglob *g, const char *path)
{
    return match_path(g, path, 0);
}

int pathglob_match_folder(const struct pathglob *g, const char *folder)
{
    return match_path(g, folder, 1);
}

int pathglob_may_match_under(const struct pathglob *g, const char *folder)
{
    struct split_path sp;
    split_path(&sp, folder);
    int m = 1;
    for (size_t i = 0, j = 0; i < g->count && j < sp.count; i++, j++) {
        /* `**` takes in the rest of the folder, and the names after it can follow below */
        if (is_globstar(g->names[i]))
            break;
        if (!name_matches(g->names[i], sp.names[j])) {
            m = 0;
            break;
        }
    }
    /* Whatever names are left match new names under the folder; none left: the folder, or
     * one above it, matched already, so everything under it does. */
    split_free(&sp);
    return m;
}
