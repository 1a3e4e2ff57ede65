/* shellcmd: decides how a configured command is handed to /bin/sh -c. Debian's dash forks
 * for `sh -c 'cmd args'` instead of replacing itself, so a simple command gets an `exec`
 * prefix: the pid the node supervises is then the worker's, and signals reach it directly.
 * Anything with shell control (&&, ;, |, subshells, builtins like cd) is left as written. */
#ifndef DEVNODE_SHELLCMD_H
#define DEVNODE_SHELLCMD_H

/* 1 when `command` is a single simple command that may be prefixed with exec. */
int shellcmd_is_simple(const char *command);
/* The string to pass to sh -c: "exec COMMAND" or a copy of COMMAND. Caller frees. */
char *shellcmd_for_sh(const char *command);

#endif
