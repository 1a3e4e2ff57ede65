/* shellcmd: a conservative scan of shell syntax. When in doubt it answers "no exec": a
 * command that forks once more still runs, a wrongly exec'd one would not (the steps after
 * it would never run). */
#include "common/shellcmd.h"

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

/* First words that make a chain more than a list of commands: control structures (their
 * parts would be split at `;`), and trap and exec, whose meaning an inserted exec changes. */
static const char *const not_in_chain[] = {
    "if", "then", "else", "elif", "fi", "for", "in", "do", "done", "while", "until", "case",
    "esac", "select", "function", "{", "}", "!", "trap", "exec", NULL,
};

#define SHELLCMD_MAX_STEPS 64

/* One command of an `A && B; C` chain: [start, end) of the text. */
struct step {
    size_t start, end;
};

static int in_list(const char *const *list, const char *word, size_t len)
{
    for (const char *const *w = list; *w; w++)
        if (strlen(*w) == len && memcmp(*w, word, len) == 0)
            return 1;
    return 0;
}

static int add_step(const char *s, struct step *steps, int *n, size_t start, size_t end)
{
    while (start < end && isspace((unsigned char)s[start]))
        start++;
    if (start == end || *n == SHELLCMD_MAX_STEPS)
        return -1; /* `a;;`, `&& b`, a trailing `;`: not a plain chain */
    steps[(*n)++] = (struct step){start, end};
    return 0;
}

/* Splits the command at unquoted && and ; into steps. Returns the count, or -1 for any other
 * shell control: |, ||, a background &, ( ), `...`, $( ), { }, #, a newline, an empty step or
 * an unterminated quote. Redirections (`2>&1`, `<&0`) are part of a step. */
static int split_chain(const char *s, struct step *steps)
{
    int n = 0;
    size_t start = 0, i;
    char quote = 0;
    int after_redirect = 0; /* the previous character was an unquoted > or < */
    for (i = 0; s[i]; i++) {
        char c = s[i];
        if (quote == '\'') {
            if (c == '\'')
                quote = 0;
            continue;
        }
        if (c == '\\') {
            if (!s[i + 1] || s[i + 1] == '\n')
                return -1;
            i++;
            after_redirect = 0;
            continue;
        }
        if (c == '`' || (c == '$' && s[i + 1] == '('))
            return -1;
        if (c == '$' && s[i + 1] == '{') {
            /* ${VAR} or ${VAR:-word}; anything that nests is left alone */
            size_t j = i + 2;
            while (s[j] && s[j] != '}') {
                if (strchr("`$()'\"\\{\n", s[j]))
                    return -1;
                j++;
            }
            if (!s[j])
                return -1;
            i = j;
            after_redirect = 0;
            continue;
        }
        if (quote == '"') {
            if (c == '"')
                quote = 0;
            continue;
        }
        int redirect = 0;
        switch (c) {
        case '\'':
        case '"':
            quote = c;
            break;
        case '&':
            if (s[i + 1] == '&') {
                if (add_step(s, steps, &n, start, i) < 0)
                    return -1;
                i++;
                start = i + 1;
            } else if (!after_redirect) {
                return -1; /* a background job, or bash's &> */
            }
            break;
        case ';':
            if (s[i + 1] == ';' || add_step(s, steps, &n, start, i) < 0)
                return -1;
            start = i + 1;
            break;
        case '>':
        case '<':
            redirect = 1;
            break;
        case '|': case '(': case ')': case '\n': case '#': case '{': case '}':
            return -1;
        default:
            break;
        }
        after_redirect = redirect;
    }
    if (quote || add_step(s, steps, &n, start, i) < 0)
        return -1;
    return n;
}

/* The end of the word starting at `i` (quotes already checked to be closed). */
static size_t word_end(const char *s, size_t i, size_t end)
{
    char quote = 0;
    for (; i < end; i++) {
        char c = s[i];
        if (quote) {
            if (c == quote)
                quote = 0;
            else if (quote == '"' && c == '\\')
                i++;
            continue;
        }
        if (c == '\\')
            i++;
        else if (c == '\'' || c == '"')
            quote = c;
        else if (isspace((unsigned char)c))
            break;
    }
    return i < end ? i : end;
}

static size_t skip_space(const char *s, size_t i, size_t end)
{
    while (i < end && isspace((unsigned char)s[i]))
        i++;
    return i;
}

static int is_assignment(const char *w, size_t len)
{
    if (len == 0 || !(isalpha((unsigned char)w[0]) || w[0] == '_'))
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (w[i] == '=')
            return 1;
        if (!(isalnum((unsigned char)w[i]) || w[i] == '_'))
            return 0;
    }
    return 0;
}

/* The offset of the program word of step `st`, after leading VAR=value words (the shell
 * exports those to what it execs), or -1 when there is no plain program word there. */
static long step_program(const char *command, const struct step *st)
{
    size_t w = st->start;
    for (;;) {
        if (w >= st->end)
            return -1; /* assignments only */
        size_t we = word_end(command, w, st->end);
        if (!is_assignment(command + w, we - w)) {
            for (size_t i = w; i < we; i++)
                if (strchr("'\"\\$`=<>&", command[i]))
                    return -1;
            return (long)w;
        }
        w = skip_space(command, we, st->end);
    }
}

/* Splits `command` into a chain whose steps before the last are plain commands; returns the
 * number of steps, or -1. */
static int plain_chain(const char *command, struct step *steps)
{
    int n = split_chain(command, steps);
    for (int k = 0; k < n - 1; k++) {
        size_t w = steps[k].start;
        if (in_list(not_in_chain, command + w, word_end(command, w, steps[k].end) - w))
            return -1;
    }
    return n < 1 ? -1 : n;
}

long shellcmd_exec_offset(const char *command)
{
    struct step steps[SHELLCMD_MAX_STEPS];
    int n = plain_chain(command, steps);
    if (n < 1)
        return -1;
    const struct step *last = &steps[n - 1];
    size_t w = last->start;
    if (in_list(not_in_chain, command + w, word_end(command, w, last->end) - w))
        return -1;
    long at = step_program(command, last);
    if (at < 0 || in_list(not_execable, command + at, word_end(command, (size_t)at, last->end) - (size_t)at))
        return -1;
    return at;
}

int shellcmd_replaces_shell(const char *command)
{
    if (shellcmd_exec_offset(command) >= 0)
        return 1;
    /* Or the user wrote the exec: `cd app && exec ./srv` (but not `exec >log`). */
    struct step steps[SHELLCMD_MAX_STEPS];
    int n = plain_chain(command, steps);
    if (n < 1)
        return 0;
    struct step last = steps[n - 1];
    long at = step_program(command, &last);
    if (at < 0)
        return 0;
    size_t we = word_end(command, (size_t)at, last.end);
    if (we - (size_t)at != 4 || memcmp(command + at, "exec", 4) != 0)
        return 0;
    last.start = skip_space(command, we, last.end);
    return last.start < last.end && step_program(command, &last) == (long)last.start;
}

int shellcmd_is_simple(const char *command)
{
    long at = shellcmd_exec_offset(command);
    if (at < 0)
        return 0;
    struct step steps[SHELLCMD_MAX_STEPS];
    return split_chain(command, steps) == 1 && (size_t)at == steps[0].start;
}

char *shellcmd_for_sh(const char *command)
{
    long at = shellcmd_exec_offset(command);
    char *out;
    int rc = at < 0 ? asprintf(&out, "%s", command)
                    : asprintf(&out, "%.*sexec %s", (int)at, command, command + at);
    if (rc < 0)
        abort();
    return out;
}

/* Keywords that close or continue a compound command: what precedes them decides. */
static const char *const keywords[] = {"then", "else", "elif", "fi", "do", "done", "esac", "in", "}", NULL};

/* Where the last simple command begins, or NULL for what this scan does not follow.
 * $(...) and `...` inside a word are skipped over: they do not start a command. */
static const char *last_command_start(const char *command, int *in_list)
{
    const char *start = command;
    char quote = 0;
    int word_start = 1;
    *in_list = 0;
    for (const char *c = command; *c; c++) {
        if (quote) {
            if (*c == quote)
                quote = 0;
            else if (quote == '"' && *c == '\\' && c[1])
                c++;
            continue;
        }
        int at_word_start = word_start;
        word_start = isspace((unsigned char)*c);
        switch (*c) {
        case '\'': case '"':
            quote = *c;
            break;
        case '\\':
            if (!c[1])
                return NULL;
            c++;
            break;
        case '`': {
            const char *end = strchr(c + 1, '`');
            if (!end)
                return NULL;
            c = end;
            break;
        }
        case '$':
            if (c[1] == '(') {
                int depth = 0;
                for (c++; *c; c++) {
                    depth += *c == '(';
                    depth -= *c == ')';
                    if (depth == 0)
                        break;
                }
                if (!*c)
                    return NULL;
            }
            break;
        case '(': case ')': case '{':
            return NULL;
        case '#':
            if (at_word_start)
                return NULL;
            break;
        case '&': case '|':
            if (c > command && (c[-1] == '>' || c[-1] == '<'))
                break; /* 2>&1, >| */
            /* fallthrough */
        case ';': case '\n':
            start = c + 1;
            *in_list = 1;
            word_start = 1;
            break;
        default:
            break;
        }
    }
    return quote ? NULL : start;
}

int shellcmd_program(const char *command, char *out, size_t cap, int *in_list)
{
    const char *p = last_command_start(command, in_list);
    if (!p)
        return 0;
    for (int saw_exec = 0;;) {
        while (isspace((unsigned char)*p))
            p++;
        size_t len = 0;
        while (p[len] && !isspace((unsigned char)p[len]))
            len++;
        if (len == 0)
            return 0;
        if (is_assignment(p, len)) {
            p += len;
            continue;
        }
        if (!saw_exec && len == 4 && !memcmp(p, "exec", 4)) {
            saw_exec = 1;
            p += len;
            continue;
        }
        if (len >= cap || p[0] == '-' || p[0] == '~' || strcspn(p, "'\"\\$`*?[<>") < len)
            return 0;
        memcpy(out, p, len);
        out[len] = '\0';
        for (const char *const *w = not_execable; *w; w++)
            if (strcmp(out, *w) == 0)
                return 0;
        for (const char *const *w = keywords; *w; w++)
            if (strcmp(out, *w) == 0)
                return 0;
        return 1;
    }
}
