/* xalloc: the allocation policy of the node and the command-line tools. They can do nothing
 * useful without memory, so running out aborts with one line on stderr instead of threading an
 * error through every caller. Only an allocation whose size comes from outside (a ring sized by
 * the config, a list sized by a request) is checked by hand and fails that one thing.
 * lib/ (libdevnode, linked into services) never uses this: it returns errors, see devnode.h. */
#ifndef DEVNODE_XALLOC_H
#define DEVNODE_XALLOC_H

#include <stddef.h>

/* Never return NULL; a size of 0 still returns a unique pointer to free. */
void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t size);
/* count * size, checked for overflow */
void *xreallocarray(void *p, size_t count, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);

#endif
