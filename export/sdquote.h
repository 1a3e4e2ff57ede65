/* sdquote: writing values into systemd unit files (systemd.syntax(7), systemd.service(5)),
 * and turning one simple shell command into the words of an ExecStart= line. Pure text in,
 * text out; it never reads the environment or the file system. */
#ifndef DEVNODE_SDQUOTE_H
#define DEVNODE_SDQUOTE_H

#include <stddef.h>

#include "common/strbuf.h"

/* Appends `text` as one word of a command line (ExecStart=): bare when it is made of safe
 * characters, else in double quotes with \\, \" and C escapes for control bytes; `%` becomes
 * `%%` (specifiers). With literal_dollars, `$` becomes `$$`; without, `$NAME` and `${NAME}` in
 * text are left for systemd to substitute from the unit's environment. */
void sdquote_word(struct strbuf *out, const char *text, int literal_dollars);

/* Appends one argument of Environment=: "NAME=VALUE" quoted as above (no `$` substitution
 * happens there, so `$` stays). -1 (nothing appended) when systemd would refuse NAME (it takes
 * letters, digits and '_', not starting with a digit). */
int sdquote_env(struct strbuf *out, const char *name, const char *value);

/* Appends one line of an EnvironmentFile= (systemd.exec(5); systemd's src/basic/env-file.c):
 * NAME="VALUE" and a newline, the value with \\, \", \` and \$ escaped and everything else,
 * newlines and tabs too, verbatim (systemd keeps them inside double quotes; it expands
 * nothing and takes no specifier there). -1 (nothing appended) for a NAME systemd refuses, as
 * sdquote_env; -2 with *why for a value systemd drops or cannot hold (bytes that are not
 * UTF-8, a Unicode noncharacter, U+FEFF), *why saying so without the value. */
int sdquote_envfile(struct strbuf *out, const char *name, const char *value, const char **why);

/* Appends a path-like value (WorkingDirectory=, ListenStream=): `%` as `%%`, nothing quoted.
 * -1 (nothing appended) when such a line cannot carry it: a control byte, a space at either
 * end (systemd strips it), a '\' at the end (systemd continues the line). */
int sdquote_plain(struct strbuf *out, const char *text);

/* One word of a simple shell command as systemd will see it. */
struct sdword {
    char *literal; /* the word after the shell's quote removal, when it names no variable; else NULL */
    char *systemd; /* the word written for ExecStart= (quoted, `$$`, `${NAME}`) */
};

/* Splits a command into ExecStart= words when systemd's own word splitting gives the program
 * the same argv the shell would: plain words, '...', "...", backslashes, and $NAME / ${NAME}
 * (a whole unquoted $NAME stays $NAME, split at whitespace by both; any other becomes ${NAME},
 * one argument). Returns the word count (>= 1) with *words to free with sdquote_words_free,
 * or -1 when only a shell can run it: several commands, pipes, redirections, globs, ~,
 * assignments, $(...), `...`, ${X:-y}, $1 and the like, or a program word naming a variable. */
int sdquote_split_simple(const char *command, struct sdword **words);
void sdquote_words_free(struct sdword *words, int count);

#endif
