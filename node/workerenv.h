/* workerenv: the environment of a worker process (docs/supervision.md, "Environment of every
 * worker"), built as a NULL-terminated list for spawn. */
#ifndef DEVNODE_WORKERENV_H
#define DEVNODE_WORKERENV_H

#include <stddef.h>

struct instance;

struct env_list {
    char **items;           /* "KEY=value", NULL-terminated once non-empty; owned */
    size_t count, cap;
};

void workerenv_free(struct env_list *env);
/* The whole environment of the instance's next process; also sets inst->port (for status). */
void workerenv_build(struct instance *inst, struct env_list *env);

#endif
