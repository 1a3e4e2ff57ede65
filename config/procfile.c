/* procfile: parses a Procfile into `name: command` entries, strictly enough that a typo is an
 * error with its line and column rather than a silently skipped line (foreman skips what its
 * regex does not match), and renders the entries as the equivalent .lymph.yml. */
#include "config/procfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/cfgalloc.h"
#include "config/yamltree.h"

__attribute__((format(printf, 6, 7)))
static int fail(char *err, size_t errlen, const char *file, int line, int col, const char *fmt, ...)
{
    if (!err || !errlen)
        return -1;
    int used = line ? col ? snprintf(err, errlen, "%s:%d:%d: ", file, line, col)
                          : snprintf(err, errlen, "%s:%d: ", file, line)
                    : snprintf(err, errlen, "%s: ", file);
    if (used < 0 || (size_t)used >= errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + used, errlen - (size_t)used, fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Around a command: spaces, tabs, and the CRs of files saved with stray line ends. */
static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

bool procfile_is_procfile(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, "Procfile", 8) != 0)
        return false;
    if (base[8] == '\0')
        return true;
    if (base[8] != '.' || base[9] == '\0')
        return false;
    const char *ext = strrchr(base, '.');
    return strcasecmp(ext, ".yml") != 0 && strcasecmp(ext, ".yaml") != 0;
}

/* Length of the UTF-8 sequence at s (at most `len` bytes) with its code point in *cp, or 0
 * when it is not valid (overlong, a surrogate, past U+10FFFF, cut short). */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 && s[0] < 0xf0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    if (n == 0 || n > len)
        return 0;
    uint32_t v = s[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* One line without its newline (and without a CRLF's CR). Returns 1 for an entry, 0 for a
 * line to skip, -1 on error. */
static int parse_line(const char *file, int lineno, const char *line, size_t len, struct procfile_entry *e,
                      char *err, size_t errlen)
{
    const char *nul = memchr(line, '\0', len);
    if (nul)
        return fail(err, errlen, file, lineno, (int)(nul - line) + 1, "a NUL byte is not allowed in a Procfile");
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len || line[i] == '#')
        return 0;
    size_t name_start = i;
    while (i < len && is_name_char(line[i]))
        i++;
    size_t name_len = i - name_start;
    if (i == len || line[i] != ':' || name_len == 0) {
        if (name_len > 0 && (i == len || line[i] == ' ' || line[i] == '\t'))
            return fail(err, errlen, file, lineno, (int)i + 1, "expected ':' after '%.*s' (lines are NAME: COMMAND)",
                        (int)name_len, line + name_start);
        return fail(err, errlen, file, lineno, (int)i + 1,
                    "expected NAME: COMMAND, a name of letters, digits, '_' and '-' (comments start with #)");
    }
    if (name_len > PROCFILE_NAME_MAX)
        return fail(err, errlen, file, lineno, (int)name_start + 1, "process name longer than %d characters",
                    PROCFILE_NAME_MAX);
    i++; /* the ':' */
    while (i < len && is_blank(line[i]))
        i++;
    size_t end = len;
    while (end > i && is_blank(line[end - 1]))
        end--;
    if (end == i)
        return fail(err, errlen, file, lineno, (int)i + 1, "%.*s has no command", (int)name_len, line + name_start);
    for (size_t k = i; k < end;) {
        uint32_t cp;
        size_t n = utf8_next((const unsigned char *)line + k, end - k, &cp);
        if (n == 0)
            return fail(err, errlen, file, lineno, (int)k + 1, "the command is not valid UTF-8");
        k += n;
    }
    e->name = cfg_xstrndup(line + name_start, name_len);
    e->command = cfg_xstrndup(line + i, end - i);
    e->line = lineno;
    e->col = (int)name_start + 1;
    e->command_col = (int)i + 1;
    return 1;
}

void procfile_free(struct procfile *pf)
{
    if (!pf)
        return;
    for (size_t i = 0; i < pf->count; i++) {
        free(pf->entries[i].name);
        free(pf->entries[i].command);
    }
    free(pf->entries);
    memset(pf, 0, sizeof *pf);
}

int procfile_parse(const char *file, const char *text, size_t len, struct procfile *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    int lineno = 0;
    size_t at = 0;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        at = 3; /* a byte order mark some editors write */
    while (at < len) {
        lineno++;
        const char *nl = memchr(text + at, '\n', len - at);
        size_t line_len = nl ? (size_t)(nl - (text + at)) : len - at;
        size_t used = line_len;
        if (used > 0 && text[at + used - 1] == '\r')
            used--;
        struct procfile_entry e;
        int rc = parse_line(file, lineno, text + at, used, &e, err, errlen);
        if (rc < 0) {
            procfile_free(out);
            return -1;
        }
        if (rc > 0) {
            for (size_t k = 0; k < out->count; k++) {
                if (strcmp(out->entries[k].name, e.name) == 0) {
                    fail(err, errlen, file, lineno, 1, "%s is defined twice (first at line %d)", e.name,
                         out->entries[k].line);
                    free(e.name);
                    free(e.command);
                    procfile_free(out);
                    return -1;
                }
            }
            out->entries = cfg_grow(out->entries, &cap, out->count + 1, sizeof *out->entries);
            out->entries[out->count++] = e;
        }
        at += line_len + (nl ? 1 : 0);
    }
    if (out->count == 0)
        return fail(err, errlen, file, 0, 0, "no process in it (a Procfile has lines NAME: COMMAND)");
    return 0;
}

int procfile_read(const char *path, struct procfile *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errlen, path, 0, 0, "cannot read: %s", strerror(errno));
    struct cfg_text buf = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        cfg_text_append(&buf, chunk, n);
    int failed = ferror(f) ? errno : 0;
    fclose(f);
    if (failed) {
        free(buf.s);
        return fail(err, errlen, path, 0, 0, "cannot read: %s", strerror(failed));
    }
    int rc = procfile_parse(path, buf.s ? buf.s : "", buf.len, out, err, errlen);
    free(buf.s);
    return rc;
}

/* ---- the .lymph.yml it stands for ---- */

/* What libyaml accepts unescaped in a double-quoted scalar (its IS_PRINTABLE). */
static bool yaml_printable(uint32_t cp)
{
    return (cp >= 0x20 && cp <= 0x7e) || cp == 0x85 || (cp >= 0xa0 && cp <= 0xd7ff) ||
           (cp >= 0xe000 && cp <= 0xfffd && cp != 0xfeff) || (cp >= 0x10000 && cp <= 0x10ffff);
}

static void append_quoted(struct cfg_text *out, const char *s)
{
    cfg_text_append(out, "\"", 1);
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_next((const unsigned char *)s + i, len - i, &cp);
        if (n == 0) { /* not from procfile_parse; keep the byte visible rather than emit bad YAML */
            cp = 0xfffd;
            n = 1;
        }
        char esc[16];
        if (cp == '"' || cp == '\\') {
            esc[0] = '\\';
            esc[1] = (char)cp;
            cfg_text_append(out, esc, 2);
        } else if (cp == 0xfffd && n == 1) {
            cfg_text_append(out, "\\uFFFD", 6);
        } else if (yaml_printable(cp) && cp != 0x85) {
            cfg_text_append(out, s + i, n);
        } else {
            int w = cp < 0x100 ? snprintf(esc, sizeof esc, "\\x%02X", (unsigned)cp)
                    : cp < 0x10000 ? snprintf(esc, sizeof esc, "\\u%04X", (unsigned)cp)
                                   : snprintf(esc, sizeof esc, "\\U%08X", (unsigned)cp);
            cfg_text_append(out, esc, (size_t)w);
        }
        i += n;
    }
    cfg_text_append(out, "\"", 1);
}

/* A name YAML would read as something else unquoted (null, a boolean, a number's sign). */
static bool key_needs_quotes(const char *name)
{
    static const char *const words[] = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", NULL};
    if (!((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
        return true;
    for (const char *const *w = words; *w; w++)
        if (strcasecmp(name, *w) == 0)
            return true;
    return false;
}

static void appendf(struct cfg_text *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(struct cfg_text *out, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        cfg_text_append(out, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

char *procfile_to_yaml(const struct procfile *pf, const int *counts, const char *source)
{
    struct cfg_text out = {0};
    if (source)
        appendf(&out,
                "# The processes of %s, as `devnode import procfile` wrote them (docs/procfile.md).\n"
                "# Each one gets PORT from its block: port_base (5000) + 100 per process in this order,\n"
                "# + 1 per instance, as foreman gives them.\n",
                source);
    cfg_text_append(&out, "instances:\n", 11);
    for (size_t i = 0; i < pf->count; i++) {
        const struct procfile_entry *e = &pf->entries[i];
        if (key_needs_quotes(e->name))
            appendf(&out, "  \"%s\":\n", e->name);
        else
            appendf(&out, "  %s:\n", e->name);
        cfg_text_append(&out, "    command: ", 13);
        append_quoted(&out, e->command);
        cfg_text_append(&out, "\n", 1);
        if (counts)
            appendf(&out, "    numprocesses: %d\n", counts[i]);
    }
    return cfg_text_take(&out);
}

/* ---- formation ---- */

void procfile_formation_free(struct procfile_formation *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->count; i++)
        free(f->names[i]);
    free(f->names);
    free(f->counts);
    memset(f, 0, sizeof *f);
    f->all = -1;
}

int procfile_formation_parse(const char *spec, struct procfile_formation *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->all = -1;
    size_t cap = 0;
    const char *p = spec;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *name = p;
        while (is_name_char(*p))
            p++;
        size_t name_len = (size_t)(p - name);
        while (*p == ' ' || *p == '\t')
            p++;
        if (name_len == 0 || *p != '=') {
            snprintf(err, errlen, "formation '%s': expected NAME=COUNT[,NAME=COUNT...] (all=COUNT for the rest)",
                     spec);
            procfile_formation_free(out);
            return -1;
        }
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        long n = 0;
        const char *digits = p;
        while (*p >= '0' && *p <= '9' && n <= 1000)
            n = n * 10 + (*p++ - '0');
        while (*p == ' ' || *p == '\t')
            p++;
        if (p == digits || n > 1000 || (*p != ',' && *p != '\0')) {
            snprintf(err, errlen, "formation '%s': the count of %.*s must be a number 0..1000", spec, (int)name_len,
                     name);
            procfile_formation_free(out);
            return -1;
        }
        if (name_len == 3 && memcmp(name, "all", 3) == 0) {
            out->all = (int)n;
        } else {
            for (size_t i = 0; i < out->count; i++) {
                if (strlen(out->names[i]) == name_len && memcmp(out->names[i], name, name_len) == 0) {
                    snprintf(err, errlen, "formation '%s': %.*s is given twice", spec, (int)name_len, name);
                    procfile_formation_free(out);
                    return -1;
                }
            }
            size_t names_cap = cap;
            out->names = cfg_grow(out->names, &names_cap, out->count + 1, sizeof *out->names);
            out->counts = cfg_grow(out->counts, &cap, out->count + 1, sizeof *out->counts);
            out->names[out->count] = cfg_xstrndup(name, name_len);
            out->counts[out->count++] = (int)n;
        }
        if (*p == '\0')
            return 0;
        p++; /* ',' */
    }
}

int procfile_formation_count(const struct procfile_formation *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->names[i], name) == 0)
            return f->counts[i];
    return f->all >= 0 ? f->all : 0;
}

/* ---- the tree config_load reads ---- */

static void place(struct ynode *n, int line, int col)
{
    n->line = line;
    n->col = col;
}

int procfile_parse_tree(const struct ydiag *d, const char *path, struct ynode **root)
{
    *root = NULL;
    struct procfile pf;
    if (procfile_read(path, &pf, d->err, d->errlen) < 0)
        return -1;
    char *yaml = procfile_to_yaml(&pf, NULL, NULL);
    int rc = ytree_parse_text(d, path, yaml, strlen(yaml), root);
    free(yaml);
    if (rc == 0) {
        /* instances: { NAME: {command: "..."} ... } in entry order, as procfile_to_yaml wrote it. */
        struct ynode *top = *root;
        place(top, 0, 0);
        place(top->kids[0], 0, 0);
        struct ynode *instances = top->kids[1];
        place(instances, 0, 0);
        for (size_t i = 0; i < pf.count && i < ynode_pairs(instances); i++) {
            const struct procfile_entry *e = &pf.entries[i];
            struct ynode *svc = instances->kids[2 * i + 1];
            place(instances->kids[2 * i], e->line, e->col);
            place(svc, e->line, e->col);
            place(svc->kids[0], e->line, e->col);
            place(svc->kids[1], e->line, e->command_col);
        }
    }
    procfile_free(&pf);
    return rc;
}
