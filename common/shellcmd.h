/* shellcmd: decides how a configured command is handed to /bin/sh -c. Debian's dash forks
 * for `sh -c 'cmd args'` instead of replacing itself, so the command's last step gets an
 * `exec`: the pid the node supervises is then the server's, LISTEN_PID names it, and signals
 * reach it directly. That holds for one simple command and for an `A && B; C` chain ending in
 * one (`cd app && exec gunicorn app:app`); anything else (pipes, ||, &, subshells, control
 * keywords) is left as written. */
#ifndef DEVNODE_SHELLCMD_H
#define DEVNODE_SHELLCMD_H

#include <stddef.h>

/* The offset in `command` where `exec ` goes so that the shell's last step replaces the
 * shell, or -1 when the command has no such step. */
long shellcmd_exec_offset(const char *command);
/* 1 when the shell ends by exec'ing a program: there is a place for exec, or the command's
 * last step already is `exec PROGRAM ...`. */
int shellcmd_replaces_shell(const char *command);
/* 1 when `command` is a single simple command that may be prefixed with exec. */
int shellcmd_is_simple(const char *command);
/* The string to pass to sh -c: COMMAND with `exec ` inserted at shellcmd_exec_offset, or a
 * copy of COMMAND. Caller frees. */
char *shellcmd_for_sh(const char *command);

/* The program the shell looks up for `command`: the first word of its last simple command,
 * after VAR=value assignments and `exec` ("cd app && exec gunicorn x" -> "gunicorn").
 * Returns 1 with `out` filled and *in_list set when the command is a list or pipeline
 * (something before it may have changed directory), or 0 when only running the shell could
 * tell (quotes or expansions in that word, a builtin or keyword, a subshell). */
int shellcmd_program(const char *command, char *out, size_t cap, int *in_list);

#endif
