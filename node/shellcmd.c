/* shellcmd: a conservative scan of shell syntax. When in doubt it answers "not simple":
 * a command that forks once more still works, a wrongly exec'd one would not. */
#include "node/shellcmd.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First words that must run in the shell itself, or that exec cannot take. */
static const char *const not_execable[] = {
    "exec", "cd", "export", "set", "unset", "if", "for", "while", "until", "case", "{", "!",
    ".", "source", "eval", "trap", "ulimit", "umask", ":", "true", "false", "wait", "read",
    "alias", "readonly", "local", "shift", "times", "type", "command", "builtin", "return",
    "exit", "break", "continue", "test", "[", "echo", "printf", "kill", "getopts", "hash",
    "jobs", "fg", "bg", "pwd", "select", "function", "time", NULL,
};

int shellcmd_is_simple(const char *command)
{
    const char *p = command;
    while (*p && isspace((unsigned char)*p))
        p++;
    if (!*p)
        return 0;

    /* The first word, unquoted: a builtin, keyword or VAR=value assignment is not simple. */
    char first[64];
    size_t n = 0;
    while (p[n] && !isspace((unsigned char)p[n]) && n < sizeof first - 1) {
        first[n] = p[n];
        n++;
    }
    first[n] = '\0';
    if (strchr(first, '=') || strchr(first, '\'') || strchr(first, '"') || strchr(first, '\\') ||
        strchr(first, '$') || strchr(first, '`'))
        return 0;
    for (const char *const *w = not_execable; *w; w++)
        if (strcmp(first, *w) == 0)
            return 0;

    /* Any unquoted control operator, subshell, substitution or background job: not simple. */
    char quote = 0;
    for (const char *c = p; *c; c++) {
        if (quote == '\'') {
            if (*c == '\'')
                quote = 0;
            continue;
        }
        if (*c == '\\') {
            if (!c[1])
                return 0;
            c++;
            continue;
        }
        if (quote == '"') {
            if (*c == '"')
                quote = 0;
            else if (*c == '`' || (*c == '$' && c[1] == '('))
                return 0;
            continue;
        }
        switch (*c) {
        case '\'':
        case '"':
            quote = *c;
            break;
        case ';': case '&': case '|': case '(': case ')': case '`': case '\n': case '#':
        case '{': case '}':
            return 0;
        case '$':
            if (c[1] == '(')
                return 0;
            break;
        default:
            break;
        }
    }
    return quote == 0;
}

char *shellcmd_for_sh(const char *command)
{
    char *out;
    if (asprintf(&out, shellcmd_is_simple(command) ? "exec %s" : "%s", command) < 0)
        abort();
    return out;
}
