/* sdquote: the quoting rules of systemd's unit files, and a strict reading of shell words.
 * Strict on purpose: a command it is unsure about goes to /bin/sh -c, which always runs it the
 * way devnode does; a word read wrongly here would run a different program line. */
#include "export/sdquote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Characters systemd's word splitting passes through unquoted and unchanged (`%` and `$` are
 * doubled where they are literal). */
static int is_bare_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("_/.,:+=@-%${}", c) != NULL;
}

/* The inside of a double-quoted value: C escapes for what systemd would unescape or split on. */
static void put_quoted_char(struct strbuf *out, unsigned char c)
{
    switch (c) {
    case '\\': strbuf_puts(out, "\\\\"); break;
    case '"': strbuf_puts(out, "\\\""); break;
    case '\n': strbuf_puts(out, "\\n"); break;
    case '\t': strbuf_puts(out, "\\t"); break;
    case '\r': strbuf_puts(out, "\\r"); break;
    case '%': strbuf_puts(out, "%%"); break;
    default:
        if (c < 0x20 || c == 0x7f)
            strbuf_printf(out, "\\x%02x", c);
        else
            strbuf_putc(out, (char)c);
    }
}

void sdquote_word(struct strbuf *out, const char *text, int literal_dollars)
{
    int bare = text[0] != '\0';
    for (const unsigned char *p = (const unsigned char *)text; *p && bare; p++)
        bare = is_bare_char(*p);
    if (!bare)
        strbuf_putc(out, '"');
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '$' && literal_dollars)
            strbuf_puts(out, "$$");
        else if (bare)
            strbuf_puts(out, *p == '%' ? "%%" : (char[]){(char)*p, 0});
        else
            put_quoted_char(out, *p);
    }
    if (!bare)
        strbuf_putc(out, '"');
}

/* What systemd takes as a variable name: letters, digits and '_', not starting with a digit. */
static int env_name_ok(const char *name)
{
    if (!is_name_start(name[0]))
        return 0;
    for (const char *p = name; *p; p++)
        if (!is_name_char(*p))
            return 0;
    return 1;
}

int sdquote_env(struct strbuf *out, const char *name, const char *value)
{
    if (!env_name_ok(name))
        return -1;
    strbuf_putc(out, '"');
    strbuf_puts(out, name);
    strbuf_putc(out, '=');
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        put_quoted_char(out, *p);
    strbuf_putc(out, '"');
    return 0;
}

/* Why systemd would not take value from an EnvironmentFile=, or NULL: its utf8_is_valid() and
 * the man page's "unicode scalar values other than noncharacters, NUL and U+FEFF". */
static const char *envfile_value_problem(const char *value)
{
    const unsigned char *p = (const unsigned char *)value;
    while (*p) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        int n = *p >= 0xc2 && *p <= 0xdf ? 1 : *p >= 0xe0 && *p <= 0xef ? 2 : *p >= 0xf0 && *p <= 0xf4 ? 3 : -1;
        if (n < 0)
            return "holds bytes that are not UTF-8, and systemd ignores such a line of an EnvironmentFile=";
        unsigned long cp = *p & (0x3f >> n);
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return "holds bytes that are not UTF-8, and systemd ignores such a line of an EnvironmentFile=";
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return "holds bytes that are not UTF-8, and systemd ignores such a line of an EnvironmentFile=";
        if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe || cp == 0xfeff)
            return "holds a Unicode noncharacter or U+FEFF, which systemd does not take in an EnvironmentFile=";
        p += n + 1;
    }
    return NULL;
}

int sdquote_envfile(struct strbuf *out, const char *name, const char *value, const char **why)
{
    if (!env_name_ok(name))
        return -1;
    *why = envfile_value_problem(value);
    if (*why)
        return -2;
    strbuf_puts(out, name);
    strbuf_puts(out, "=\"");
    for (const char *p = value; *p; p++) {
        if (strchr("\\\"`$", *p))
            strbuf_putc(out, '\\');
        strbuf_putc(out, *p);
    }
    strbuf_puts(out, "\"\n");
    return 0;
}

int sdquote_plain(struct strbuf *out, const char *text)
{
    size_t len = strlen(text);
    /* systemd strips the whitespace around a value and continues a line ending in '\\'. */
    if (len == 0 || text[0] == ' ' || text[len - 1] == ' ' || text[len - 1] == '\\')
        return -1;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return -1;
    for (const char *p = text; *p; p++)
        strbuf_puts(out, *p == '%' ? "%%" : (char[]){*p, 0});
    return 0;
}

/* ---- reading shell words ---- */

struct word_state {
    struct strbuf sd;      /* systemd's text of the word, `$` already doubled where literal */
    struct strbuf lit;     /* the word after quote removal */
    int refs;              /* variables named */
    int whole_unquoted_ref; /* the word is exactly an unquoted $NAME or ${NAME} */
    int started;           /* something (even '') was read: the word exists */
};

/* A variable reference at s ("$NAME", "${NAME}"): its length, with the name in [*name, +*len);
 * 0 when `$` is not followed by a name or `{` (the caller tells a literal `$` from $1 or $@),
 * or -1 for a braced form only a shell expands (${X:-y}, ${#X}). */
static int read_ref(const char *s, const char **name, size_t *len)
{
    if (s[1] == '{') {
        size_t n = 0;
        if (!is_name_start(s[2]))
            return -1;
        while (is_name_char(s[2 + n]))
            n++;
        if (s[2 + n] != '}')
            return -1;
        *name = s + 2;
        *len = n;
        return (int)n + 3;
    }
    if (!is_name_start(s[1]))
        return 0;
    size_t n = 0;
    while (is_name_char(s[1 + n]))
        n++;
    *name = s + 1;
    *len = n;
    return (int)n + 1;
}

static void add_ref(struct word_state *w, const char *name, size_t len)
{
    strbuf_puts(&w->sd, "${");
    strbuf_append(&w->sd, name, len);
    strbuf_putc(&w->sd, '}');
    w->refs++;
}

static void add_literal(struct word_state *w, char c)
{
    if (c == '$')
        strbuf_puts(&w->sd, "$$");
    else
        strbuf_putc(&w->sd, c);
    strbuf_putc(&w->lit, c);
}

/* The $ at p: $NAME or ${NAME} as a reference (*is_ref set), or a lone $ before the end or one
 * of `lone_before` as a literal (is_ref may be NULL). Returns the bytes taken, or -1 for what only a shell expands. */
static int add_dollar(struct word_state *w, const char *p, const char *lone_before, int *is_ref)
{
    const char *name;
    size_t len;
    int n = read_ref(p, &name, &len);
    if (is_ref)
        *is_ref = n > 0;
    if (n < 0 || (n == 0 && p[1] != '\0' && !strchr(lone_before, p[1])))
        return -1;
    if (n == 0) {
        add_literal(w, '$');
        return 1;
    }
    add_ref(w, name, len);
    return n;
}

static void finish_word(struct word_state *w, struct sdword **words, int *count)
{
    *words = xreallocarray(*words, (size_t)*count + 1, sizeof **words);
    struct sdword *out = &(*words)[(*count)++];
    struct strbuf q;
    strbuf_init(&q);
    if (w->whole_unquoted_ref) {
        /* `$NAME` alone: both split the value at whitespace; keep systemd's split form. */
        strbuf_putc(&q, '$');
        strbuf_append(&q, w->sd.data + 2, w->sd.len - 3);
    } else {
        sdquote_word(&q, w->sd.len ? strbuf_cstr(&w->sd) : "", 0);
    }
    out->systemd = xstrdup(strbuf_cstr(&q));
    out->literal = w->refs ? NULL : xstrdup(w->lit.len ? strbuf_cstr(&w->lit) : "");
    strbuf_free(&q);
    strbuf_reset(&w->sd);
    strbuf_reset(&w->lit);
    w->refs = w->whole_unquoted_ref = w->started = 0;
}

void sdquote_words_free(struct sdword *words, int count)
{
    for (int i = 0; i < count; i++) {
        free(words[i].literal);
        free(words[i].systemd);
    }
    free(words);
}

int sdquote_split_simple(const char *command, struct sdword **words_out)
{
    struct sdword *words = NULL;
    int count = 0;
    struct word_state w = {0};
    strbuf_init(&w.sd);
    strbuf_init(&w.lit);
    const char *p = command;
    int ok = 1;
    while (ok) {
        char c = *p;
        if (c == '\0' || c == ' ' || c == '\t') {
            if (w.started)
                finish_word(&w, &words, &count);
            if (c == '\0')
                break;
            p++;
            continue;
        }
        int at_start = !w.started;
        w.started = 1;
        if (c == '\\') {
            if (p[1] == '\0' || p[1] == '\n') {
                ok = 0;
                break;
            }
            add_literal(&w, p[1]);
            p += 2;
        } else if (c == '\'') {
            const char *end = strchr(p + 1, '\'');
            if (!end) {
                ok = 0;
                break;
            }
            for (const char *q = p + 1; q < end; q++)
                add_literal(&w, *q);
            p = end + 1;
        } else if (c == '"') {
            p++;
            while (ok && *p != '"') {
                if (*p == '\0' || *p == '`') {
                    ok = 0;
                } else if (*p == '\\' && p[1] && strchr("$`\"\\", p[1])) {
                    add_literal(&w, p[1]);
                    p += 2;
                } else if (*p == '\\' && p[1] == '\n') {
                    ok = 0;
                } else if (*p == '$') {
                    int n = add_dollar(&w, p, "\" ", NULL);
                    if (n < 0)
                        ok = 0; /* $(...), $1, $@, ${X:-y}: the shell's */
                    else
                        p += n;
                } else {
                    add_literal(&w, *p++);
                }
            }
            if (ok)
                p++;
        } else if (c == '$') {
            int is_ref;
            int n = add_dollar(&w, p, " \t", &is_ref);
            if (n < 0) {
                ok = 0;
            } else {
                p += n;
            }
            if (ok && is_ref) {
                /* An unquoted expansion inside a longer word is split by the shell and not
                 * by systemd: only a whole word keeps the same meaning. */
                char next = *p;
                int word_ends = next == '\0' || next == ' ' || next == '\t';
                if (at_start && word_ends)
                    w.whole_unquoted_ref = 1;
                else
                    ok = 0;
            }
        } else if (strchr("*?[]~`<>|&;(){}#!\n", c) || (c == '=' && count == 0)) {
            ok = 0; /* globs, ~, redirections, control, an assignment: only a shell reads them */
        } else {
            add_literal(&w, c);
            p++;
        }
    }
    strbuf_free(&w.sd);
    strbuf_free(&w.lit);
    if (!ok || count == 0 || !words[0].literal || !words[0].literal[0]) {
        sdquote_words_free(words, count);
        return -1;
    }
    *words_out = words;
    return count;
}
