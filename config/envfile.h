/* envfile: the one dialect of devnode's environment files (the project's .env and the files
 * of env_file:), documented in docs/config.md "Environment files". Pure: it reads a buffer,
 * asks its caller for the value of each ${VAR} and hands each assignment back, so the caller
 * owns precedence. It never reads files or the environment, and never prints. */
#ifndef DEVNODE_ENVFILE_H
#define DEVNODE_ENVFILE_H

#include <stdbool.h>
#include <stddef.h>

/* A value longer than this (after expansion) is refused: `A=${A}${A}` on 40 lines would
 * otherwise ask for a terabyte. */
#define ENVFILE_VALUE_MAX (1u << 20)

struct envfile_reader {
    /* The value ${name} has at this point, or NULL when it is unset. */
    const char *(*lookup)(void *ctx, const char *name);
    /* One assignment, in file order; `line` is where its name is (1-based). */
    void (*assign)(void *ctx, const char *name, const char *value, int line);
    void *ctx;
};

/* Parses text[0..len), the file `file` (named as the user should read it in messages).
 * Returns 0, or -1 with err holding one line "FILE:LINE: what is wrong"; the assignments
 * made before the bad line are the caller's to drop. */
int envfile_parse(const char *text, size_t len, const char *file, const struct envfile_reader *reader, char *err,
                  size_t errlen);

/* A name whose value `check` masks: it holds SECRET, TOKEN, PASSWORD or KEY (any case). */
bool envfile_name_is_secret(const char *name);

#endif
