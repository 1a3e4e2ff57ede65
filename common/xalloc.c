/* xalloc: abort on out-of-memory, with a line saying so (a bare abort() looks like a crash).
 * Nothing here may be linked into lib/, which returns errors instead. */
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xalloc_check(void *p, size_t size)
{
    if (!p) {
        fprintf(stderr, "devnode: out of memory (allocating %zu bytes)\n", size);
        abort();
    }
    return p;
}

void *xmalloc(size_t size)
{
    return xalloc_check(malloc(size ? size : 1), size);
}

void *xcalloc(size_t count, size_t size)
{
    return xalloc_check(calloc(count ? count : 1, size ? size : 1), count * size);
}

void *xrealloc(void *p, size_t size)
{
    return xalloc_check(realloc(p, size ? size : 1), size);
}

void *xreallocarray(void *p, size_t count, size_t size)
{
    if (size && count > (size_t)-1 / size) {
        fprintf(stderr, "devnode: out of memory (%zu elements of %zu bytes)\n", count, size);
        abort();
    }
    return xrealloc(p, count * size);
}

char *xstrndup(const char *s, size_t len)
{
    size_t n = strnlen(s, len);
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}
