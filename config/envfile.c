/* envfile: the dialect of .env and env_file: files (see envfile.h and docs/config.md). One
 * pass over the buffer, line by line; a quoted value may span lines. Expansion asks the
 * caller, so which layer a ${VAR} sees is decided outside. It must never read a file or the
 * environment itself: the fuzzer and the unit tests drive it with buffers alone. */
#include "config/envfile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfgalloc.h"

/* ${A:-${B:-${C}}}: deep enough for any real file, shallow enough for the stack. */
#define EXPAND_DEPTH_MAX 8

struct parser {
    const char *s;
    size_t len, pos;
    int line;  /* of s[pos] */
    const char *file;
    const struct envfile_reader *reader;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static int fail(struct parser *p, int line, const char *fmt, ...)
{
    if (!p->err || !p->errlen)
        return -1;
    int n = snprintf(p->err, p->errlen, "%s:%d: ", p->file, line);
    size_t used = n < 0 ? 0 : (size_t)n;
    if (used < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + used, p->errlen - used, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int at(const struct parser *p, size_t i)
{
    return p->pos + i < p->len ? (unsigned char)p->s[p->pos + i] : -1;
}

/* A character for a message: 'x', or \xNN for what would not print. */
static const char *shown(int c, char buf[24])
{
    if (c < 0 || c == '\n')
        snprintf(buf, 24, "the end of the line");
    else if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 24, "'%c'", c);
    else
        snprintf(buf, 24, "\\x%02x", (unsigned)c);
    return buf;
}

static int append(struct parser *p, struct cfg_text *out, const char *s, size_t n)
{
    if (out->len + n > ENVFILE_VALUE_MAX)
        return fail(p, p->line, "value longer than %u bytes", ENVFILE_VALUE_MAX);
    cfg_text_append(out, s, n);
    return 0;
}

/* Reads NAME at p->pos into a new string (NULL when none starts there). */
static char *read_name(struct parser *p)
{
    size_t start = p->pos;
    if (at(p, 0) < 0 || !is_name_start((char)at(p, 0)))
        return NULL;
    while (at(p, 0) >= 0 && is_name_char((char)at(p, 0)))
        p->pos++;
    return cfg_xstrndup(p->s + start, p->pos - start);
}

/* ${NAME}, ${NAME:-default} (unset or empty) or ${NAME-default} (unset), p->pos at '$'.
 * The default is literal text up to the matching '}', where ${...} nests. */
static int expand_ref(struct parser *p, struct cfg_text *out, int depth)
{
    int line = p->line;
    char c[24];
    if (depth >= EXPAND_DEPTH_MAX)
        return fail(p, line, "${...} nested more than %d deep", EXPAND_DEPTH_MAX);
    p->pos += 2;
    char *name = read_name(p);
    if (!name)
        return fail(p, line, "expected a variable name after '${', got %s", shown(at(p, 0), c));
    bool has_default = false, colon = false;
    if (at(p, 0) == ':' && at(p, 1) == '-') {
        has_default = colon = true;
        p->pos += 2;
    } else if (at(p, 0) == '-') {
        has_default = true;
        p->pos++;
    } else if (at(p, 0) != '}') {
        fail(p, line, "${%.80s must end with '}' (or give a default: ${%.80s:-default}), got %s", name, name,
             shown(at(p, 0), c));
        free(name);
        return -1;
    }
    struct cfg_text fallback = {0};
    while (has_default && at(p, 0) != '}') {
        int ch = at(p, 0);
        if (ch < 0 || ch == '\n') {
            fail(p, line, "${%.80s is not closed with '}' on its line", name);
            free(name);
            free(fallback.s);
            return -1;
        }
        if (ch == '$' && at(p, 1) == '{') {
            if (expand_ref(p, &fallback, depth + 1) < 0) {
                free(name);
                free(fallback.s);
                return -1;
            }
            continue;
        }
        if (append(p, &fallback, p->s + p->pos, 1) < 0) {
            free(name);
            free(fallback.s);
            return -1;
        }
        p->pos++;
    }
    p->pos++; /* the '}' */
    const char *value = p->reader->lookup(p->reader->ctx, name);
    if (has_default && (!value || (colon && !value[0])))
        value = fallback.s ? fallback.s : "";
    int rc = value ? append(p, out, value, strlen(value)) : 0;
    free(name);
    free(fallback.s);
    return rc;
}

/* An unquoted value: the rest of the line, up to a '#' that follows a blank, trimmed. */
static int value_unquoted(struct parser *p, struct cfg_text *out)
{
    size_t end = p->pos;
    while (end < p->len && p->s[end] != '\n' && !(p->s[end] == '#' && end > 0 && is_blank(p->s[end - 1])))
        end++;
    size_t stop = end;
    while (stop > p->pos && is_blank(p->s[stop - 1]))
        stop--;
    while (p->pos < stop) {
        if (p->s[p->pos] == '$' && p->pos + 1 < stop && p->s[p->pos + 1] == '{') {
            /* The reference must close before the comment or the line's end. */
            struct parser sub = *p;
            sub.len = stop;
            if (expand_ref(&sub, out, 0) < 0)
                return -1;
            p->pos = sub.pos;
            continue;
        }
        size_t run = 1;
        while (p->pos + run < stop && p->s[p->pos + run] != '$')
            run++;
        if (append(p, out, p->s + p->pos, run) < 0)
            return -1;
        p->pos += run;
    }
    while (p->pos < p->len && p->s[p->pos] != '\n')
        p->pos++; /* the comment, if any */
    return 0;
}

/* '...': every byte as it is, newlines too, up to the next quote. */
static int value_single(struct parser *p, struct cfg_text *out, const char *name)
{
    int line = p->line;
    p->pos++;
    const char *close = memchr(p->s + p->pos, '\'', p->len - p->pos);
    if (!close)
        return fail(p, line, "the single quote of %.80s's value is not closed", name);
    size_t n = (size_t)(close - (p->s + p->pos));
    if (append(p, out, p->s + p->pos, n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        p->line += p->s[p->pos + i] == '\n';
    p->pos += n + 1;
    return 0;
}

/* "...": \n \t \r \" \\ \$ escapes, ${VAR} expansion, newlines kept, up to the next
 * unescaped quote. Any other backslash stays as written. */
static int value_double(struct parser *p, struct cfg_text *out, const char *name)
{
    int line = p->line;
    p->pos++;
    for (;;) {
        int ch = at(p, 0);
        if (ch < 0)
            return fail(p, line, "the double quote of %.80s's value is not closed", name);
        if (ch == '"') {
            p->pos++;
            return 0;
        }
        if (ch == '$' && at(p, 1) == '{') {
            if (expand_ref(p, out, 0) < 0)
                return -1;
            continue;
        }
        char one = (char)ch;
        size_t used = 1;
        if (ch == '\\') {
            used = 2;
            switch (at(p, 1)) {
            case 'n': one = '\n'; break;
            case 't': one = '\t'; break;
            case 'r': one = '\r'; break;
            case '"': one = '"'; break;
            case '\\': one = '\\'; break;
            case '$': one = '$'; break;
            case -1: return fail(p, line, "the double quote of %.80s's value is not closed", name);
            default: used = 1; break; /* kept as written: the backslash now, the next byte after */
            }
        } else if (ch == '\n') {
            p->line++;
        }
        if (append(p, out, &one, 1) < 0)
            return -1;
        p->pos += used;
    }
}

/* One NAME=value line (or a multi-line quoted value), p->pos at its first non-blank. */
static int assignment(struct parser *p)
{
    char c[24];
    int line = p->line;
    if (at(p, 0) == 'e' && p->len - p->pos > 6 && memcmp(p->s + p->pos, "export", 6) == 0 &&
        (p->s[p->pos + 6] == ' ' || p->s[p->pos + 6] == '\t')) {
        p->pos += 6;
        while (at(p, 0) == ' ' || at(p, 0) == '\t')
            p->pos++;
    }
    char *name = read_name(p);
    if (!name)
        return fail(p, line, "expected a variable name (letters, digits and '_', not starting with a digit), got %s",
                    shown(at(p, 0), c));
    while (at(p, 0) >= 0 && at(p, 0) != '\n' && is_blank((char)at(p, 0)))
        p->pos++;
    if (at(p, 0) != '=') {
        if (at(p, 0) < 0 || at(p, 0) == '\n')
            fail(p, line, "%.80s has no value: write %.80s=value (or %.80s= for an empty one)", name, name, name);
        else
            fail(p, line, "expected '=' after %.80s, got %s", name, shown(at(p, 0), c));
        free(name);
        return -1;
    }
    p->pos++;
    while (at(p, 0) == ' ' || at(p, 0) == '\t')
        p->pos++;
    struct cfg_text value = {0};
    int rc;
    bool quoted = at(p, 0) == '\'' || at(p, 0) == '"';
    if (at(p, 0) == '\'')
        rc = value_single(p, &value, name);
    else if (at(p, 0) == '"')
        rc = value_double(p, &value, name);
    else
        rc = value_unquoted(p, &value);
    if (rc == 0 && quoted) {
        while (at(p, 0) >= 0 && at(p, 0) != '\n' && is_blank((char)at(p, 0)))
            p->pos++;
        if (at(p, 0) == '#') {
            while (at(p, 0) >= 0 && at(p, 0) != '\n')
                p->pos++;
        } else if (at(p, 0) >= 0 && at(p, 0) != '\n') {
            rc = fail(p, p->line, "unexpected %s after the closing quote of %.80s's value (quote all of it)",
                      shown(at(p, 0), c), name);
        }
    }
    if (rc == 0) {
        char *text = cfg_text_take(&value);
        p->reader->assign(p->reader->ctx, name, text, line);
        free(text);
    } else {
        free(value.s);
    }
    free(name);
    return rc;
}

int envfile_parse(const char *text, size_t len, const char *file, const struct envfile_reader *reader, char *err,
                  size_t errlen)
{
    struct parser p = {.s = text, .len = len, .line = 1, .file = file, .reader = reader, .err = err, .errlen = errlen};
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *q = text; q < nul; q++)
            line += *q == '\n';
        return fail(&p, line, "holds a NUL byte: an environment file is text");
    }
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        p.pos = 3; /* a UTF-8 byte order mark, as some Windows editors write */
    while (p.pos < p.len) {
        char ch = p.s[p.pos];
        if (ch == '\n') {
            p.line++;
            p.pos++;
        } else if (is_blank(ch)) {
            p.pos++;
        } else if (ch == '#') {
            while (p.pos < p.len && p.s[p.pos] != '\n')
                p.pos++;
        } else if (assignment(&p) < 0) {
            return -1;
        }
    }
    return 0;
}

bool envfile_name_is_secret(const char *name)
{
    static const char *const words[] = {"SECRET", "TOKEN", "PASSWORD", "KEY"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(name, words[i]))
            return true;
    return false;
}
