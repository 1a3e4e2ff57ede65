/* cfgalloc: the allocation helpers config/ shares, on common/xalloc's policy (running out of
 * memory aborts with a line); on top of it, empty arrays stay NULL so users of struct config can
 * test either the pointer or the count. Header-only so the files of config/ need no extra object. */
#ifndef DEVNODE_CFGALLOC_H
#define DEVNODE_CFGALLOC_H

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

static inline void *cfg_xrealloc(void *p, size_t size)
{
    return xrealloc(p, size);
}

static inline void *cfg_xcalloc(size_t count, size_t size)
{
    return count ? xcalloc(count, size) : NULL;
}

/* Exactly len bytes (a YAML scalar may hold a NUL), then a terminator. */
static inline char *cfg_xstrndup(const char *s, size_t len)
{
    char *d = xmalloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

static inline char *cfg_xstrdup(const char *s)
{
    return cfg_xstrndup(s, strlen(s));
}

/* Doubles *cap until it holds `need` elements of `size` bytes. */
static inline void *cfg_grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 8;
    while (n < need)
        n *= 2;
    *cap = n;
    return cfg_xrealloc(p, n * size);
}

/* A growing NUL-terminated string. */
struct cfg_text {
    char *s;
    size_t len;
    size_t cap;
};

static inline void cfg_text_append(struct cfg_text *t, const char *p, size_t n)
{
    t->s = cfg_grow(t->s, &t->cap, t->len + n + 1, 1);
    memcpy(t->s + t->len, p, n);
    t->len += n;
    t->s[t->len] = '\0';
}

/* Always returns an allocated string, "" for an empty text. */
static inline char *cfg_text_take(struct cfg_text *t)
{
    return t->s ? t->s : cfg_xstrdup("");
}

#endif
