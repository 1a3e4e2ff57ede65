/* config: reads .lymph.yml into struct config, keeping every YAML node's line and column
 * so each complaint names file:line:col and the dotted key. It never prints, spawns or
 * binds, and it never keeps state between calls: all it owns hangs off struct config. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <yaml.h>

#include "common/topic.h"

/* Key paths only ever appear in messages, so a long one may be cut short. */
#define KEY_PATH_MAX 256
/* Bounds what a hostile or mistaken file can make us do: recursion in the tree walks
 * and alias expansion ("billion laughs") both stop here. */
#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 1000000
/* Nodes alone do not bound memory: a few aliases of one long scalar copy it a million times. */
#define YAML_MAX_TEXT_BYTES (16u << 20)

#define DEFAULT_NUMPROCESSES 1
#define MAX_NUMPROCESSES 1000
#define DEFAULT_STOP_TIMEOUT_MS 10000u
#define DEFAULT_READY_TIMEOUT_MS 30000u
#define DEFAULT_RETAIN_EVENTS 100000u
#define MAX_STOP_TIMEOUT_MS 3600000LL
#define DEFAULT_HOST "127.0.0.1"

/* ---- memory: same policy as strbuf, running out of memory aborts ---- */

static void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q) {
        abort();
    }
    return q;
}

/* Empty arrays stay NULL, so users of struct config can test the pointer or the count. */
static void *xcalloc(size_t count, size_t size)
{
    if (count == 0) {
        return NULL;
    }
    void *p = calloc(count, size);
    if (!p) {
        abort();
    }
    return p;
}

static char *xstrndup(const char *s, size_t len)
{
    char *d = xrealloc(NULL, len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

static char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

/* Doubles *cap until it holds `need` elements of `size` bytes. */
static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return p;
    }
    size_t n = *cap ? *cap : 8;
    while (n < need) {
        n *= 2;
    }
    *cap = n;
    return xrealloc(p, n * size);
}

struct text {
    char *s;
    size_t len;
    size_t cap;
};

static void text_append(struct text *t, const char *p, size_t n)
{
    t->s = grow(t->s, &t->cap, t->len + n + 1, 1);
    memcpy(t->s + t->len, p, n);
    t->len += n;
    t->s[t->len] = '\0';
}

/* Always returns an allocated string, "" for an empty text. */
static char *text_take(struct text *t)
{
    if (!t->s) {
        return xstrdup("");
    }
    return t->s;
}

/* ---- the YAML tree: what libyaml's events describe, plus positions ---- */

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
    enum ynode_kind kind;
    int line;              /* 1-based */
    int col;               /* 1-based */
    char *text;            /* scalars: the value as written, NUL-terminated */
    bool plain;            /* scalars: unquoted, so `~`, `null` and "" mean null */
    struct ynode **kids;   /* maps: key, value, key, value...; lists: the items */
    size_t kid_count;
    size_t kid_cap;
};

static void ynode_free(struct ynode *n)
{
    if (!n) {
        return;
    }
    for (size_t i = 0; i < n->kid_count; i++) {
        ynode_free(n->kids[i]);
    }
    free(n->kids);
    free(n->text);
    free(n);
}

static size_t ynode_pairs(const struct ynode *map)
{
    return map->kid_count / 2;
}

static bool ynode_is_null(const struct ynode *n)
{
    if (n->kind != YNODE_SCALAR || !n->plain) {
        return false;
    }
    const char *t = n->text;
    return t[0] == '\0' || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 ||
           strcmp(t, "Null") == 0 || strcmp(t, "NULL") == 0;
}

static const char *ynode_kind_name(const struct ynode *n)
{
    switch (n->kind) {
    case YNODE_MAP: return "a map";
    case YNODE_SEQ: return "a list";
    default: return "a scalar";
    }
}

/* ---- error reporting ---- */

struct loader {
    const char *path_arg;      /* the config path as the caller gave it, for messages */
    const char *vars_arg;      /* the vars path as given, or NULL */
    const struct ynode *vars;  /* root of the vars file (a map), or NULL */
    struct config *cfg;
    char *err;
    size_t errlen;
    bool keep_unresolved;      /* an undefined $(env.X) or $(var.X) stays as written */
};

/* "FILE:LINE:COL: KEY: message", leaving out the parts that are unknown. */
static int vreport(struct loader *ld, const char *file, int line, int col, const char *key_path,
                   const char *fmt, va_list ap)
{
    if (!ld->err || ld->errlen == 0) {
        return -1;
    }
    int n;
    if (line > 0) {
        n = snprintf(ld->err, ld->errlen, "%s:%d:%d: ", file, line, col);
    } else {
        n = snprintf(ld->err, ld->errlen, "%s: ", file);
    }
    size_t used = n < 0 ? 0 : (size_t)n;
    if (used < ld->errlen && key_path && key_path[0]) {
        n = snprintf(ld->err + used, ld->errlen - used, "%s: ", key_path);
        used += n < 0 ? 0 : (size_t)n;
    }
    if (used < ld->errlen) {
        vsnprintf(ld->err + used, ld->errlen - used, fmt, ap);
    }
    return -1;
}

__attribute__((format(printf, 5, 6)))
static int fail_in(struct loader *ld, const char *file, const struct ynode *at,
                   const char *key_path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(ld, file, at ? at->line : 0, at ? at->col : 0, key_path, fmt, ap);
    va_end(ap);
    return -1;
}

__attribute__((format(printf, 4, 5)))
static int fail(struct loader *ld, const struct ynode *at, const char *key_path,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(ld, ld->path_arg, at ? at->line : 0, at ? at->col : 0, key_path, fmt, ap);
    va_end(ap);
    return -1;
}

__attribute__((format(printf, 6, 7)))
static int fail_pos(struct loader *ld, const char *file, int line, int col, const char *key_path,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(ld, file, line, col, key_path, fmt, ap);
    va_end(ap);
    return -1;
}

/* A path cut short ends in "..." so the message does not pretend it is whole. */
static void key_path_mark_cut(char *dst, int written)
{
    if (written >= KEY_PATH_MAX) {
        memcpy(dst + KEY_PATH_MAX - 4, "...", 4);
    }
}

static void key_path_child(char *dst, const char *parent, const char *key)
{
    key_path_mark_cut(dst, snprintf(dst, KEY_PATH_MAX, "%s%s%s", parent, parent[0] ? "." : "", key));
}

static void key_path_item(char *dst, const char *parent, size_t index)
{
    key_path_mark_cut(dst, snprintf(dst, KEY_PATH_MAX, "%s[%zu]", parent, index));
}

/* ---- building the tree from libyaml events ---- */

struct anchor {
    char *name;
    const struct ynode *node;
};

struct tree_builder {
    struct loader *ld;
    const char *file;                        /* label for messages */
    const char *src;                         /* the file's bytes, to place reader errors */
    size_t src_len;
    struct ynode *root;
    struct ynode *open[YAML_MAX_DEPTH];      /* collections still being filled */
    char *open_anchor[YAML_MAX_DEPTH];       /* their anchors, registered once complete */
    size_t depth;
    struct anchor *anchors;
    size_t anchor_count;
    size_t anchor_cap;
    size_t node_count;
    size_t text_bytes;                       /* scalar text held, copies of aliases included */
    int documents;
};

static struct ynode *builder_new_node(struct tree_builder *b, enum ynode_kind kind,
                                      yaml_mark_t mark)
{
    struct ynode *n = xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    b->node_count++;
    return n;
}

static void builder_add_anchor(struct tree_builder *b, char *name, const struct ynode *n)
{
    b->anchors = grow(b->anchors, &b->anchor_cap, b->anchor_count + 1, sizeof(*b->anchors));
    b->anchors[b->anchor_count].name = name;
    b->anchors[b->anchor_count].node = n;
    b->anchor_count++;
}

static const struct ynode *builder_find_anchor(const struct tree_builder *b, const char *name)
{
    /* YAML lets a later anchor of the same name shadow an earlier one. */
    for (size_t i = b->anchor_count; i > 0; i--) {
        if (strcmp(b->anchors[i - 1].name, name) == 0) {
            return b->anchors[i - 1].node;
        }
    }
    return NULL;
}

/* Aliases become copies so that every node has one owner and one free path. */
static struct ynode *builder_copy(struct tree_builder *b, const struct ynode *src)
{
    size_t text_len = src->text ? strlen(src->text) : 0;
    if (b->node_count >= YAML_MAX_NODES || b->text_bytes + text_len > YAML_MAX_TEXT_BYTES) {
        return NULL;
    }
    struct ynode *n = xcalloc(1, sizeof(*n));
    b->node_count++;
    b->text_bytes += text_len;
    n->kind = src->kind;
    n->line = src->line;
    n->col = src->col;
    n->plain = src->plain;
    n->text = src->text ? xstrdup(src->text) : NULL;
    if (src->kid_count) {
        n->kids = xcalloc(src->kid_count, sizeof(*n->kids));
        n->kid_cap = src->kid_count;
        for (size_t i = 0; i < src->kid_count; i++) {
            n->kids[i] = builder_copy(b, src->kids[i]);
            if (!n->kids[i]) {
                ynode_free(n);
                return NULL;
            }
            n->kid_count++;
        }
    }
    return n;
}

/* Takes ownership of n, even on failure. */
static int builder_attach(struct tree_builder *b, struct ynode *n)
{
    if (b->node_count > YAML_MAX_NODES) {
        ynode_free(n);
        return fail_pos(b->ld, b->file, 0, 0, "", "more than %d YAML nodes (alias expansion?)",
                        YAML_MAX_NODES);
    }
    if (b->depth == 0) {
        if (b->root) {
            ynode_free(n);
            return fail_pos(b->ld, b->file, 0, 0, "", "internal error: second root node");
        }
        b->root = n;
        return 0;
    }
    struct ynode *parent = b->open[b->depth - 1];
    /* libyaml places an empty value (`key:`) at the next token, often the next line;
     * the key's position is where the user has to look. */
    if (parent->kind == YNODE_MAP && parent->kid_count % 2 == 1 && n->kind == YNODE_SCALAR &&
        n->plain && n->text[0] == '\0') {
        const struct ynode *key = parent->kids[parent->kid_count - 1];
        n->line = key->line;
        n->col = key->col;
    }
    parent->kids = grow(parent->kids, &parent->kid_cap, parent->kid_count + 1,
                        sizeof(*parent->kids));
    parent->kids[parent->kid_count++] = n;
    return 0;
}

static int builder_open(struct tree_builder *b, enum ynode_kind kind, const yaml_event_t *ev,
                        const yaml_char_t *anchor)
{
    if (b->depth == YAML_MAX_DEPTH) {
        return fail_pos(b->ld, b->file, (int)ev->start_mark.line + 1,
                        (int)ev->start_mark.column + 1, "", "nested deeper than %d levels",
                        YAML_MAX_DEPTH);
    }
    struct ynode *n = builder_new_node(b, kind, ev->start_mark);
    if (builder_attach(b, n) < 0) {
        return -1;
    }
    b->open[b->depth] = n;
    b->open_anchor[b->depth] = anchor ? xstrdup((const char *)anchor) : NULL;
    b->depth++;
    return 0;
}

static void builder_close(struct tree_builder *b)
{
    b->depth--;
    if (b->open_anchor[b->depth]) {
        builder_add_anchor(b, b->open_anchor[b->depth], b->open[b->depth]);
        b->open_anchor[b->depth] = NULL;
    }
}

static int builder_event(struct tree_builder *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1) {
            return fail_pos(b->ld, b->file, (int)ev->start_mark.line + 1,
                            (int)ev->start_mark.column + 1, "",
                            "only one YAML document is allowed (found a second '---')");
        }
        return 0;
    case YAML_SCALAR_EVENT: {
        const char *value = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        if (memchr(value, '\0', len)) {
            return fail_pos(b->ld, b->file, (int)ev->start_mark.line + 1,
                            (int)ev->start_mark.column + 1, "", "string contains a NUL character");
        }
        struct ynode *n = builder_new_node(b, YNODE_SCALAR, ev->start_mark);
        n->text = xstrndup(value, len);
        b->text_bytes += len;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (ev->data.scalar.anchor) {
            builder_add_anchor(b, xstrdup((const char *)ev->data.scalar.anchor), n);
        }
        return builder_attach(b, n);
    }
    case YAML_SEQUENCE_START_EVENT:
        return builder_open(b, YNODE_SEQ, ev, ev->data.sequence_start.anchor);
    case YAML_MAPPING_START_EVENT:
        return builder_open(b, YNODE_MAP, ev, ev->data.mapping_start.anchor);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        builder_close(b);
        return 0;
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        const struct ynode *target = builder_find_anchor(b, name);
        if (!target) {
            return fail_pos(b->ld, b->file, (int)ev->start_mark.line + 1,
                            (int)ev->start_mark.column + 1, "", "unknown alias *%s", name);
        }
        struct ynode *copy = builder_copy(b, target);
        if (!copy) {
            return fail_pos(b->ld, b->file, (int)ev->start_mark.line + 1,
                            (int)ev->start_mark.column + 1, "",
                            "more than %d YAML nodes or %u MiB of text (alias expansion?)", YAML_MAX_NODES,
                            YAML_MAX_TEXT_BYTES >> 20);
        }
        return builder_attach(b, copy);
    }
    default:
        return 0;
    }
}

static int report_syntax_error(struct tree_builder *b, const yaml_parser_t *parser)
{
    if (parser->error == YAML_MEMORY_ERROR) {
        abort();
    }
    const char *problem = parser->problem ? parser->problem : "unknown error";
    int line = (int)parser->problem_mark.line + 1;
    int col = (int)parser->problem_mark.column + 1;
    if (parser->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset, not a mark. */
        line = 1;
        col = 1;
        for (size_t i = 0; i < parser->problem_offset && i < b->src_len; i++) {
            if (b->src[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
    }
    if (parser->context) {
        return fail_pos(b->ld, b->file, line, col, "", "YAML syntax error: %s (%s at line %d, column %d)",
                        problem, parser->context, (int)parser->context_mark.line + 1,
                        (int)parser->context_mark.column + 1);
    }
    return fail_pos(b->ld, b->file, line, col, "", "YAML syntax error: %s", problem);
}

static int read_file(struct loader *ld, const char *file, char **data, size_t *len)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        return fail_pos(ld, file, 0, 0, "", "cannot read: %s", strerror(errno));
    }
    struct text buf = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        text_append(&buf, chunk, n);
    }
    if (ferror(f)) {
        int saved = errno;
        fclose(f);
        free(buf.s);
        return fail_pos(ld, file, 0, 0, "", "cannot read: %s", strerror(saved));
    }
    fclose(f);
    *len = buf.len;
    *data = text_take(&buf);
    return 0;
}

/* Parses `file` into a tree; *root is NULL for an empty file. */
static int parse_yaml_file(struct loader *ld, const char *file, struct ynode **root)
{
    *root = NULL;
    char *data = NULL;
    size_t len = 0;
    if (read_file(ld, file, &data, &len) < 0) {
        return -1;
    }
    struct tree_builder b = {.ld = ld, .file = file, .src = data, .src_len = len};
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        abort();
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = report_syntax_error(&b, &parser);
            break;
        }
        rc = builder_event(&b, &ev);
        bool done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (rc < 0 || done) {
            break;
        }
    }
    yaml_parser_delete(&parser);
    /* Open collections are already attached under root; only their anchors are loose. */
    for (size_t i = 0; i < b.depth; i++) {
        free(b.open_anchor[i]);
    }
    for (size_t i = 0; i < b.anchor_count; i++) {
        free(b.anchors[i].name);
    }
    free(b.anchors);
    free(data);
    if (rc < 0) {
        ynode_free(b.root);
        return -1;
    }
    *root = b.root;
    return 0;
}

/* libyaml accepts duplicate and non-scalar keys; a config must not silently keep one of two. */
static int check_keys(struct loader *ld, const char *file, const struct ynode *n,
                      const char *key_path)
{
    char child[KEY_PATH_MAX];
    if (n->kind == YNODE_SEQ) {
        for (size_t i = 0; i < n->kid_count; i++) {
            key_path_item(child, key_path, i);
            if (check_keys(ld, file, n->kids[i], child) < 0) {
                return -1;
            }
        }
    } else if (n->kind == YNODE_MAP) {
        for (size_t i = 0; i < ynode_pairs(n); i++) {
            const struct ynode *key = n->kids[2 * i];
            if (key->kind != YNODE_SCALAR) {
                return fail_in(ld, file, key, key_path, "map keys must be scalars, got %s",
                               ynode_kind_name(key));
            }
            key_path_child(child, key_path, key->text);
            for (size_t j = 0; j < i; j++) {
                const struct ynode *earlier = n->kids[2 * j];
                if (strcmp(earlier->text, key->text) == 0) {
                    return fail_in(ld, file, key, child, "duplicate key (first defined at line %d)",
                                   earlier->line);
                }
            }
            if (check_keys(ld, file, n->kids[2 * i + 1], child) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* ---- interpolation: $(env.NAME) and $(var.a.b) ---- */

static bool is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static bool is_ref_path_char(char c)
{
    return is_name_char(c) || c == '.' || c == '-';
}

/* Matches `$(ns.path)` at s; fills the lengths of the whole ref, the namespace and the path. */
static bool match_ref(const char *s, size_t *ref_len, size_t *ns_len, size_t *path_len)
{
    if (s[0] != '$' || s[1] != '(' || !is_name_start(s[2])) {
        return false;
    }
    size_t i = 3;
    while (is_name_char(s[i])) {
        i++;
    }
    *ns_len = i - 2;
    if (s[i] != '.') {
        return false;
    }
    size_t path_start = ++i;
    while (is_ref_path_char(s[i])) {
        i++;
    }
    if (i == path_start || s[i] != ')') {
        return false;
    }
    *path_len = i - path_start;
    *ref_len = i + 1;
    return true;
}

/* Walks the vars tree along a dotted path; NULL when any step is missing. */
static const struct ynode *vars_lookup(const struct ynode *root, const char *path, size_t len)
{
    const struct ynode *cur = root;
    size_t start = 0;
    while (start <= len) {
        size_t end = start;
        while (end < len && path[end] != '.') {
            end++;
        }
        if (!cur || cur->kind != YNODE_MAP || end == start) {
            return NULL;
        }
        const struct ynode *next = NULL;
        for (size_t i = 0; i < ynode_pairs(cur); i++) {
            const struct ynode *key = cur->kids[2 * i];
            if (strlen(key->text) == end - start && memcmp(key->text, path + start, end - start) == 0) {
                next = cur->kids[2 * i + 1];
                break;
            }
        }
        cur = next;
        start = end + 1;
    }
    return cur;
}

/* The scalar's text with env and var refs replaced; other namespaces stay for later stages
 * ($(socket.X.fd) at spawn time) or for the shell ($(date) has no dot, so never matches). */
static char *interpolate(struct loader *ld, const struct ynode *n, const char *key_path)
{
    const char *s = n->text;
    struct text out = {0};
    size_t i = 0;
    while (s[i]) {
        size_t ref_len, ns_len, path_len;
        if (!match_ref(s + i, &ref_len, &ns_len, &path_len)) {
            size_t run = 1;
            while (s[i + run] && s[i + run] != '$') {
                run++;
            }
            text_append(&out, s + i, run);
            i += run;
            continue;
        }
        const char *ns = s + i + 2;
        const char *path = ns + ns_len + 1;
        if (ns_len == 3 && memcmp(ns, "env", 3) == 0) {
            char *name = xstrndup(path, path_len);
            const char *value = getenv(name);
            free(name);
            if (!value && ld->keep_unresolved) {
                text_append(&out, s + i, ref_len);
                i += ref_len;
                continue;
            }
            if (!value) {
                free(out.s);
                fail(ld, n, key_path, "undefined variable %.*s", (int)ref_len, s + i);
                return NULL;
            }
            text_append(&out, value, strlen(value));
        } else if (ns_len == 3 && memcmp(ns, "var", 3) == 0) {
            const struct ynode *value = ld->vars ? vars_lookup(ld->vars, path, path_len) : NULL;
            if (!value && ld->keep_unresolved) {
                text_append(&out, s + i, ref_len);
                i += ref_len;
                continue;
            }
            if (!value) {
                free(out.s);
                fail(ld, n, key_path, "undefined variable %.*s%s", (int)ref_len, s + i,
                     ld->vars_arg ? "" : " (no vars file was given)");
                return NULL;
            }
            if (value->kind != YNODE_SCALAR) {
                free(out.s);
                fail(ld, n, key_path, "%.*s is %s in %s, but only a scalar can be interpolated",
                     (int)ref_len, s + i, ynode_kind_name(value), ld->vars_arg);
                return NULL;
            }
            text_append(&out, value->text, strlen(value->text));
        } else {
            text_append(&out, s + i, ref_len);
        }
        i += ref_len;
    }
    return text_take(&out);
}

/* ---- typed values; every one goes through interpolation first ---- */

/* `expected` completes "must be ...": "a string", "an integer". */
static char *value_text(struct loader *ld, const struct ynode *n, const char *key_path,
                        const char *expected)
{
    if (n->kind != YNODE_SCALAR) {
        fail(ld, n, key_path, "must be %s, got %s", expected, ynode_kind_name(n));
        return NULL;
    }
    return interpolate(ld, n, key_path);
}

static int value_string(struct loader *ld, const struct ynode *n, const char *key_path,
                        char **out)
{
    char *t = value_text(ld, n, key_path, "a string");
    if (!t) {
        return -1;
    }
    if (t[0] == '\0') {
        free(t);
        return fail(ld, n, key_path, "must not be empty");
    }
    free(*out);
    *out = t;
    return 0;
}

static int value_int(struct loader *ld, const struct ynode *n, const char *key_path,
                     long long min, long long max, long long *out)
{
    char *t = value_text(ld, n, key_path, "an integer");
    if (!t) {
        return -1;
    }
    const char *p = t;
    bool negative = *p == '-';
    if (*p == '-' || *p == '+') {
        p++;
    }
    bool digits = *p >= '0' && *p <= '9';
    bool too_big = false;
    long long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (LLONG_MAX - (*p - '0')) / 10) {
            too_big = true;
        } else {
            v = v * 10 + (*p - '0');
        }
    }
    if (!digits || *p) {
        fail(ld, n, key_path, "must be an integer, got \"%.80s\"", t);
        free(t);
        return -1;
    }
    if (negative) {
        v = -v;
    }
    if (too_big || v < min || v > max) {
        if (negative && min == 0) {
            fail(ld, n, key_path, "must be a non-negative integer, got %.80s", t);
        } else {
            fail(ld, n, key_path, "must be between %lld and %lld, got %.80s", min, max, t);
        }
        free(t);
        return -1;
    }
    free(t);
    *out = v;
    return 0;
}

/* Seconds as a number (10, 0.5) or with a unit (500ms, 2s), to whole milliseconds. */
static int value_duration_ms(struct loader *ld, const struct ynode *n, const char *key_path,
                             unsigned *out)
{
    char *t = value_text(ld, n, key_path, "a duration (seconds, or like 500ms or 2s)");
    if (!t) {
        return -1;
    }
    const char *p = t;
    bool negative = *p == '-';
    if (*p == '-' || *p == '+') {
        p++;
    }
    long long whole = 0;
    size_t whole_digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, whole_digits++) {
        if (whole < 100000000000LL) {
            whole = whole * 10 + (*p - '0');
        }
    }
    /* Keep fractional digits as thousandths (enough for both units), rounding on the next. */
    long long frac_milli = 0;
    size_t frac_digits = 0;
    bool round_up = false;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, frac_digits++) {
            if (frac_digits < 3) {
                frac_milli = frac_milli * 10 + (*p - '0');
            } else if (frac_digits == 3) {
                round_up = *p >= '5';
            }
        }
        for (size_t k = frac_digits; k < 3; k++) {
            frac_milli *= 10;
        }
    }
    long long ms;
    bool unit_ok = true;
    if (strcmp(p, "ms") == 0) {
        ms = whole + (frac_milli >= 500 ? 1 : 0);
    } else if (strcmp(p, "s") == 0 || *p == '\0') {
        ms = whole * 1000 + frac_milli + (round_up ? 1 : 0);
    } else {
        unit_ok = false;
        ms = 0;
    }
    if (!unit_ok || whole_digits + frac_digits == 0) {
        fail(ld, n, key_path,
             "must be a duration in seconds (10, 0.5) or with a unit (500ms, 2s), got \"%.80s\"", t);
        free(t);
        return -1;
    }
    if ((negative && ms > 0) || ms > MAX_STOP_TIMEOUT_MS) {
        fail(ld, n, key_path, "must be between 0 and %lld seconds, got %.80s",
             MAX_STOP_TIMEOUT_MS / 1000, t);
        free(t);
        return -1;
    }
    free(t);
    *out = (unsigned)ms;
    return 0;
}

/* ---- paths ---- */

/* Joins and cleans lexically rather than with realpath: a cwd or socket path need not
 * exist yet when the config is checked. `base` is absolute. */
static char *path_resolve(const char *base, const char *rel)
{
    struct text joined = {0};
    if (rel[0] != '/') {
        text_append(&joined, base, strlen(base));
        text_append(&joined, "/", 1);
    }
    text_append(&joined, rel, strlen(rel));
    char *in = joined.s;
    char *out = xcalloc(joined.len + 2, 1);
    size_t len = 0;
    for (char *seg = in; *seg;) {
        char *end = strchr(seg, '/');
        size_t seg_len = end ? (size_t)(end - seg) : strlen(seg);
        if (seg_len == 2 && seg[0] == '.' && seg[1] == '.') {
            while (len > 0 && out[len - 1] != '/') {
                len--;
            }
            if (len > 0) {
                len--;
            }
        } else if (seg_len > 0 && !(seg_len == 1 && seg[0] == '.')) {
            out[len++] = '/';
            memcpy(out + len, seg, seg_len);
            len += seg_len;
        }
        seg += seg_len;
        if (*seg == '/') {
            seg++;
        }
    }
    if (len == 0) {
        out[len++] = '/';
    }
    out[len] = '\0';
    free(in);
    return out;
}

/* ---- the config itself ---- */

/* Service and socket names end up in `Name.N` addressing and `$(socket.NAME.fd)`. */
static bool is_valid_name(const char *s)
{
    if (!s[0]) {
        return false;
    }
    for (; *s; s++) {
        if (!is_name_char(*s) && *s != '-') {
            return false;
        }
    }
    return true;
}

__attribute__((format(printf, 2, 3)))
static void add_note(struct config *cfg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *note = NULL;
    if (vasprintf(&note, fmt, ap) < 0) {
        abort();
    }
    va_end(ap);
    cfg->notes = xrealloc(cfg->notes, (cfg->note_count + 1) * sizeof(*cfg->notes));
    cfg->notes[cfg->note_count++] = note;
}

static const char *const socket_keys_text = "host, port, path";

static int load_socket(struct loader *ld, const struct ynode *where, const struct ynode *body,
                       const char *key_path, bool list_form, struct config_socket *sock)
{
    char child[KEY_PATH_MAX];
    sock->line = where->line;
    sock->port = -1;
    if (ynode_is_null(body)) {
        return fail(ld, where, key_path, "needs a port (TCP) or a path (unix socket)");
    }
    if (body->kind != YNODE_MAP) {
        return fail(ld, body, key_path, "must be a map with port or path, got %s",
                    ynode_kind_name(body));
    }
    const struct ynode *port_key = NULL, *path_key = NULL, *host_key = NULL;
    for (size_t i = 0; i < ynode_pairs(body); i++) {
        const struct ynode *key = body->kids[2 * i];
        const struct ynode *value = body->kids[2 * i + 1];
        key_path_child(child, key_path, key->text);
        if (list_form && strcmp(key->text, "name") == 0) {
            continue; /* read by the caller */
        }
        if (strcmp(key->text, "host") != 0 && strcmp(key->text, "port") != 0 &&
            strcmp(key->text, "path") != 0) {
            return fail(ld, key, child, "unknown key (a socket takes %s%s)", socket_keys_text,
                        list_form ? ", name" : "");
        }
        if (ynode_is_null(value)) {
            continue;
        }
        if (strcmp(key->text, "host") == 0) {
            host_key = key;
            if (value_string(ld, value, child, &sock->host) < 0) {
                return -1;
            }
        } else if (strcmp(key->text, "port") == 0) {
            port_key = key;
            long long port;
            if (value_int(ld, value, child, 0, 65535, &port) < 0) {
                return -1;
            }
            sock->port = (int)port;
        } else {
            path_key = key;
            char *path = NULL;
            if (value_string(ld, value, child, &path) < 0) {
                return -1;
            }
            sock->path = path_resolve(ld->cfg->dir, path);
            free(path);
            size_t limit = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
            if (strlen(sock->path) > limit) {
                return fail(ld, value, child,
                            "unix socket path %s is %zu bytes, the kernel allows %zu",
                            sock->path, strlen(sock->path), limit);
            }
        }
    }
    if (port_key && path_key) {
        const struct ynode *later = port_key->line > path_key->line ||
                                    (port_key->line == path_key->line && port_key->col > path_key->col)
                                    ? port_key : path_key;
        key_path_child(child, key_path, later->text);
        return fail(ld, later, child, "give either port (TCP) or path (unix socket), not both");
    }
    if (!port_key && !path_key) {
        return fail(ld, where, key_path, "needs a port (TCP) or a path (unix socket)");
    }
    if (path_key && host_key) {
        key_path_child(child, key_path, "host");
        return fail(ld, host_key, child, "host applies to TCP sockets only, not with path");
    }
    if (port_key && !sock->host) {
        sock->host = xstrdup(DEFAULT_HOST);
    }
    return 0;
}

static int load_sockets(struct loader *ld, const struct ynode *node)
{
    struct config *cfg = ld->cfg;
    char child[KEY_PATH_MAX];
    if (node->kind == YNODE_SCALAR) {
        return fail(ld, node, "sockets",
                    "must be a map of NAME: {port or path} or a list of {port or path}, got a scalar");
    }
    bool list_form = node->kind == YNODE_SEQ;
    size_t count = list_form ? node->kid_count : ynode_pairs(node);
    cfg->sockets = xcalloc(count, sizeof(*cfg->sockets));
    for (size_t i = 0; i < count; i++) {
        struct config_socket *sock = &cfg->sockets[cfg->socket_count++];
        const struct ynode *where, *body;
        if (list_form) {
            where = body = node->kids[i];
            key_path_item(child, "sockets", i);
            const struct ynode *name_value = NULL;
            for (size_t k = 0; body->kind == YNODE_MAP && k < ynode_pairs(body); k++) {
                if (strcmp(body->kids[2 * k]->text, "name") == 0) {
                    name_value = body->kids[2 * k + 1];
                }
            }
            if (name_value) {
                char name_path[KEY_PATH_MAX];
                key_path_child(name_path, child, "name");
                if (value_string(ld, name_value, name_path, &sock->name) < 0) {
                    return -1;
                }
                if (!is_valid_name(sock->name)) {
                    return fail(ld, name_value, name_path,
                                "socket names may use only letters, digits, '_' and '-', got \"%s\"",
                                sock->name);
                }
            } else if (asprintf(&sock->name, "socket%zu", i) < 0) {
                abort();
            }
        } else {
            where = node->kids[2 * i];
            body = node->kids[2 * i + 1];
            key_path_child(child, "sockets", where->text);
            if (!is_valid_name(where->text)) {
                return fail(ld, where, child,
                            "socket names may use only letters, digits, '_' and '-'");
            }
            sock->name = xstrdup(where->text);
        }
        if (load_socket(ld, where, body, child, list_form, sock) < 0) {
            return -1;
        }
        for (size_t j = 0; j + 1 < cfg->socket_count; j++) {
            if (strcmp(cfg->sockets[j].name, sock->name) == 0) {
                return fail(ld, where, child, "duplicate socket name \"%s\" (first defined at line %d)",
                            sock->name, cfg->sockets[j].line);
            }
        }
    }
    return 0;
}

static int load_logs(struct loader *ld, const struct ynode *node)
{
    struct config_logs *logs = &ld->cfg->logs;
    char child[KEY_PATH_MAX];
    if (node->kind != YNODE_MAP) {
        return fail(ld, node, "logs", "must be a map (buffer_lines, file_max_mb, keep_files), got %s",
                    ynode_kind_name(node));
    }
    /* Every key is a bounded integer; null keeps the default. */
    static const struct {
        const char *name;
        long long min, max;
    } keys[] = {{"buffer_lines", 1000, 100000000}, {"file_max_mb", 1, 100000}, {"keep_files", 0, 1000}};
    for (size_t i = 0; i < ynode_pairs(node); i++) {
        const struct ynode *key = node->kids[2 * i];
        const struct ynode *value = node->kids[2 * i + 1];
        key_path_child(child, "logs", key->text);
        size_t k = 0;
        while (k < sizeof keys / sizeof keys[0] && strcmp(key->text, keys[k].name) != 0)
            k++;
        if (k == sizeof keys / sizeof keys[0])
            return fail(ld, key, child, "unknown key (logs takes buffer_lines, file_max_mb, keep_files)");
        long long v;
        if (ynode_is_null(value))
            continue;
        if (value_int(ld, value, child, keys[k].min, keys[k].max, &v) < 0)
            return -1;
        if (k == 0)
            logs->buffer_lines = (size_t)v;
        else if (k == 1)
            logs->file_max_mb = (unsigned)v;
        else
            logs->keep_files = (unsigned)v;
    }
    return 0;
}

static int load_env(struct loader *ld, const struct ynode *node, const char *key_path,
                    struct config_service *svc)
{
    char child[KEY_PATH_MAX];
    if (node->kind != YNODE_MAP) {
        return fail(ld, node, key_path, "must be a map of NAME: value, got %s",
                    ynode_kind_name(node));
    }
    svc->env = xcalloc(ynode_pairs(node), sizeof(*svc->env));
    for (size_t i = 0; i < ynode_pairs(node); i++) {
        const struct ynode *key = node->kids[2 * i];
        const struct ynode *value = node->kids[2 * i + 1];
        key_path_child(child, key_path, key->text);
        if (key->text[0] == '\0' || strchr(key->text, '=')) {
            return fail(ld, key, child, "environment variable names must be non-empty and without '='");
        }
        /* Values stay as written (yes, 08, ~) because the child sees text anyway. */
        char *text = value_text(ld, value, child, "a string");
        if (!text) {
            return -1;
        }
        struct config_env_var *var = &svc->env[svc->env_count++];
        var->name = xstrdup(key->text);
        var->value = text;
        var->line = value->line;
        var->col = value->col;
    }
    return 0;
}

static const struct config_socket *find_socket(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->socket_count; i++) {
        if (strcmp(cfg->sockets[i].name, name) == 0) {
            return &cfg->sockets[i];
        }
    }
    return NULL;
}

static int load_service_sockets(struct loader *ld, const struct ynode *node, const char *key_path,
                                struct config_service *svc)
{
    char child[KEY_PATH_MAX];
    if (node->kind != YNODE_SEQ) {
        return fail(ld, node, key_path, "must be a list of socket names, got %s",
                    ynode_kind_name(node));
    }
    svc->sockets = xcalloc(node->kid_count, sizeof(*svc->sockets));
    for (size_t i = 0; i < node->kid_count; i++) {
        const struct ynode *item = node->kids[i];
        key_path_item(child, key_path, i);
        char *name = value_text(ld, item, child, "a socket name");
        if (!name) {
            return -1;
        }
        svc->sockets[svc->socket_count++] = name;
        if (!find_socket(ld->cfg, name)) {
            return fail(ld, item, child, "no socket named \"%s\" under the top-level sockets:", name);
        }
        for (size_t j = 0; j + 1 < svc->socket_count; j++) {
            if (strcmp(svc->sockets[j], name) == 0) {
                return fail(ld, item, child, "socket \"%s\" is listed twice", name);
            }
        }
    }
    return 0;
}

static const char *const service_keys_text =
    "command, numprocesses, env, cwd, restart, stop_signal, stop_timeout, sockets, ready";

static bool is_service_key(const char *key)
{
    static const char *const keys[] = {"command", "numprocesses", "env", "cwd", "restart",
                                       "stop_signal", "stop_timeout", "sockets", "ready"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(key, keys[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* 1 when a connect to probe_host reaches a socket listening on listen_host (same port). */
static bool host_reaches(const char *listen_host, const char *probe_host)
{
    static const char *const wildcard[] = {"0.0.0.0", "::", "*", ""};
    static const char *const loopback[] = {"127.0.0.1", "::1", "localhost"};
    if (strcmp(listen_host, probe_host) == 0)
        return true;
    for (size_t i = 0; i < sizeof wildcard / sizeof wildcard[0]; i++)
        if (strcmp(listen_host, wildcard[i]) == 0)
            return true;
    bool listen_lo = false, probe_lo = false;
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        listen_lo |= strcmp(listen_host, loopback[i]) == 0;
        probe_lo |= strcmp(probe_host, loopback[i]) == 0;
    }
    /* localhost names either loopback address */
    return listen_lo && probe_lo && (!strcmp(listen_host, "localhost") || !strcmp(probe_host, "localhost"));
}

/* The node listens on every socket of `sockets:` before any worker starts, so a readiness
 * probe of one is answered by the node and passes at once: refuse it. Sockets load first. */
static int check_ready_tcp(struct loader *ld, const struct ynode *at, const char *key_path,
                           const struct config_ready *r)
{
    for (size_t i = 0; i < ld->cfg->socket_count; i++) {
        const struct config_socket *sock = &ld->cfg->sockets[i];
        if (sock->path || sock->port != r->tcp_port || !host_reaches(sock->host, r->tcp_host))
            continue;
        return fail(ld, at, key_path,
                    "port %d is the node's own socket %s: the node accepts on it before any worker runs, "
                    "so this check always passes; use `ready: notify` or `ready: {log: PATTERN}` "
                    "for a line the server prints once it serves",
                    r->tcp_port, sock->name);
    }
    return 0;
}

/* ready: notify | {notify: true} | {log: RE} | {tcp: PORT | "HOST:PORT"} | {delay: 2s},
 * each map form optionally with timeout. */
static int load_ready(struct loader *ld, const struct ynode *value, const char *key_path,
                      struct config_service *svc)
{
    struct config_ready *r = &svc->ready;
    char child[KEY_PATH_MAX];
    if (value->kind == YNODE_SCALAR) {
        char *text = value_text(ld, value, key_path, "a string");
        if (!text)
            return -1;
        int rc = 0;
        if (strcmp(text, "notify") == 0)
            r->kind = READY_NOTIFY;
        else if (strcmp(text, "start") != 0)
            rc = fail(ld, value, key_path,
                      "must be notify, start, or a map with one of notify, log, tcp, delay; got \"%.80s\"",
                      text);
        free(text);
        return rc;
    }
    if (value->kind != YNODE_MAP)
        return fail(ld, value, key_path, "must be notify or a map (notify, log, tcp, delay, timeout), got %s",
                    ynode_kind_name(value));
    int kinds = 0;
    for (size_t i = 0; i < ynode_pairs(value); i++) {
        const struct ynode *k = value->kids[2 * i];
        const struct ynode *v = value->kids[2 * i + 1];
        key_path_child(child, key_path, k->text);
        if (strcmp(k->text, "timeout") == 0) {
            if (value_duration_ms(ld, v, child, &r->timeout_ms) < 0)
                return -1;
            continue;
        }
        kinds++;
        if (strcmp(k->text, "notify") == 0) {
            char *text = value_text(ld, v, child, "true");
            if (!text)
                return -1;
            int yes = strcmp(text, "true") == 0 || strcmp(text, "yes") == 0;
            free(text);
            if (!yes)
                return fail(ld, v, child, "must be true (or leave the key out)");
            r->kind = READY_NOTIFY;
        } else if (strcmp(k->text, "log") == 0) {
            char *pattern = NULL;
            if (value_string(ld, v, child, &pattern) < 0)
                return -1;
            regex_t re;
            int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char why[160];
                regerror(rc, &re, why, sizeof why);
                free(pattern);
                return fail(ld, v, child, "not a valid regular expression: %s", why);
            }
            regfree(&re);
            free(r->log_pattern);
            r->log_pattern = pattern;
            r->kind = READY_LOG;
        } else if (strcmp(k->text, "tcp") == 0) {
            char *text = value_text(ld, v, child, "a port or HOST:PORT");
            if (!text)
                return -1;
            char *colon = strrchr(text, ':');
            const char *port_text = colon ? colon + 1 : text;
            char *end;
            long port = strtol(port_text, &end, 10);
            if (*end || end == port_text || port < 1 || port > 65535) {
                int rc = fail(ld, v, child, "must be a port 1..65535 or HOST:PORT, got \"%.80s\"", text);
                free(text);
                return rc;
            }
            free(r->tcp_host);
            if (colon) {
                *colon = '\0';
                /* [::1]:80 -> ::1 */
                char *host = text;
                size_t hl = strlen(host);
                if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
                    host[hl - 1] = '\0';
                    host++;
                }
                r->tcp_host = xstrdup(host);
            } else {
                r->tcp_host = xstrdup("127.0.0.1");
            }
            free(text);
            r->tcp_port = (int)port;
            r->kind = READY_TCP;
            if (check_ready_tcp(ld, v, child, r) < 0)
                return -1;
        } else if (strcmp(k->text, "delay") == 0) {
            if (value_duration_ms(ld, v, child, &r->delay_ms) < 0)
                return -1;
            r->kind = READY_DELAY;
        } else {
            return fail(ld, k, child, "unknown key (ready takes notify, log, tcp, delay, timeout)");
        }
    }
    if (kinds > 1)
        return fail(ld, value, key_path, "give one of notify, log, tcp or delay, not several");
    return 0;
}

/* $(socket.NAME.fd|port) is expanded at spawn time; a name or field that cannot be is a
 * config error now, so `check` reports what `up` would refuse. Same scan as sockets.c. */
static int check_socket_refs(struct loader *ld, const struct ynode *value, const char *key_path,
                             const char *command)
{
    const struct config *cfg = ld->cfg;
    for (const char *p = command; (p = strstr(p, "$(socket."));) {
        const char *name = p + 9;
        const char *close = strchr(name, ')');
        const char *dot = close ? memrchr(name, '.', (size_t)(close - name)) : NULL;
        if (!close || !dot || dot == name) {
            p = name;
            continue;
        }
        int ref_len = (int)(close + 1 - p);
        size_t name_len = (size_t)(dot - name), field_len = (size_t)(close - dot - 1);
        if (!((field_len == 2 && !memcmp(dot + 1, "fd", 2)) || (field_len == 4 && !memcmp(dot + 1, "port", 4)))) {
            return fail(ld, value, key_path, "%.*s: a socket has only .fd and .port", ref_len, p);
        }
        bool found = false;
        struct text known = {0};
        for (size_t i = 0; i < cfg->socket_count; i++) {
            const char *sname = cfg->sockets[i].name;
            found |= strlen(sname) == name_len && !memcmp(sname, name, name_len);
            if (i > 0)
                text_append(&known, ", ", 2);
            text_append(&known, sname, strlen(sname));
        }
        if (!found) {
            fail(ld, value, key_path, "%.*s names no socket under the top-level sockets: (%s%s)", ref_len, p,
                 known.s ? "defined: " : "none defined", known.s ? known.s : "");
            free(known.s);
            return -1;
        }
        free(known.s);
        p = close + 1;
    }
    return 0;
}

static int load_command(struct loader *ld, const struct ynode *value, const char *key_path,
                        struct config_service *svc)
{
    if (ynode_is_null(value)) {
        return fail(ld, value, key_path, "must not be empty: give the shell command to run");
    }
    char *text = value_text(ld, value, key_path, "a string");
    if (!text) {
        return -1;
    }
    const char *start = text;
    while (isspace((unsigned char)*start)) {
        start++;
    }
    size_t len = strlen(start);
    while (len > 0 && isspace((unsigned char)start[len - 1])) {
        len--;
    }
    if (len == 0) {
        free(text);
        return fail(ld, value, key_path, "must not be empty: give the shell command to run");
    }
    svc->command = xstrndup(start, len);
    svc->command_line = value->line;
    svc->command_col = value->col;
    free(text);
    return check_socket_refs(ld, value, key_path, svc->command);
}

static int load_service_key(struct loader *ld, const struct ynode *key, const struct ynode *value,
                            const char *key_path, struct config_service *svc)
{
    const char *k = key->text;
    if (strcmp(k, "command") == 0) {
        return load_command(ld, value, key_path, svc);
    }
    if (!is_service_key(k)) {
        return fail(ld, key, key_path, "unknown key (a service takes %s)", service_keys_text);
    }
    if (ynode_is_null(value)) {
        return 0; /* `key:` with nothing keeps the default */
    }
    if (strcmp(k, "numprocesses") == 0) {
        long long n;
        if (value_int(ld, value, key_path, 0, MAX_NUMPROCESSES, &n) < 0) {
            return -1;
        }
        svc->numprocesses = (int)n;
        return 0;
    }
    if (strcmp(k, "env") == 0) {
        return load_env(ld, value, key_path, svc);
    }
    if (strcmp(k, "cwd") == 0) {
        char *cwd = NULL;
        if (value_string(ld, value, key_path, &cwd) < 0) {
            return -1;
        }
        free(svc->cwd);
        svc->cwd = path_resolve(ld->cfg->dir, cwd);
        svc->cwd_line = value->line;
        svc->cwd_col = value->col;
        free(cwd);
        return 0;
    }
    if (strcmp(k, "restart") == 0) {
        char *text = value_text(ld, value, key_path, "a string");
        if (!text) {
            return -1;
        }
        int rc = 0;
        if (strcmp(text, "always") == 0) {
            svc->restart = RESTART_ALWAYS;
        } else if (strcmp(text, "on-failure") == 0) {
            svc->restart = RESTART_ON_FAILURE;
        } else if (strcmp(text, "never") == 0) {
            svc->restart = RESTART_NEVER;
        } else {
            rc = fail(ld, value, key_path, "must be always, on-failure or never, got \"%.80s\"", text);
        }
        free(text);
        return rc;
    }
    if (strcmp(k, "stop_signal") == 0) {
        char *text = value_text(ld, value, key_path, "a signal name or number");
        if (!text) {
            return -1;
        }
        int sig = config_parse_signal(text);
        int rc = 0;
        if (sig < 0) {
            rc = fail(ld, value, key_path,
                      "must be a signal name like TERM or SIGINT, or a number 1..64, got \"%.80s\"",
                      text);
        } else {
            svc->stop_signal = sig;
        }
        free(text);
        return rc;
    }
    if (strcmp(k, "stop_timeout") == 0) {
        return value_duration_ms(ld, value, key_path, &svc->stop_timeout_ms);
    }
    if (strcmp(k, "ready") == 0) {
        return load_ready(ld, value, key_path, svc);
    }
    return load_service_sockets(ld, value, key_path, svc);
}

static int load_service(struct loader *ld, const struct ynode *key, const struct ynode *body,
                        struct config_service *svc)
{
    char key_path[KEY_PATH_MAX], child[KEY_PATH_MAX];
    key_path_child(key_path, "instances", key->text);
    svc->name = xstrdup(key->text);
    svc->line = key->line;
    svc->col = key->col;
    svc->numprocesses = DEFAULT_NUMPROCESSES;
    svc->restart = RESTART_ALWAYS;
    svc->stop_signal = SIGTERM;
    svc->stop_timeout_ms = DEFAULT_STOP_TIMEOUT_MS;
    svc->ready.timeout_ms = DEFAULT_READY_TIMEOUT_MS;
    svc->cwd = xstrdup(ld->cfg->dir);
    if (!is_valid_name(key->text)) {
        return fail(ld, key, key_path,
                    "service names may use only letters, digits, '_' and '-' (they are addressed as NAME.N)");
    }
    if (ynode_is_null(body)) {
        return fail(ld, key, key_path, "missing required key \"command\"");
    }
    if (body->kind != YNODE_MAP) {
        return fail(ld, body, key_path, "must be a map of service settings (command, ...), got %s",
                    ynode_kind_name(body));
    }
    for (size_t i = 0; i < ynode_pairs(body); i++) {
        const struct ynode *k = body->kids[2 * i];
        key_path_child(child, key_path, k->text);
        if (load_service_key(ld, k, body->kids[2 * i + 1], child, svc) < 0) {
            return -1;
        }
    }
    if (!svc->command) {
        return fail(ld, key, key_path, "missing required key \"command\"");
    }
    return 0;
}

static int load_instances(struct loader *ld, const struct ynode *node)
{
    struct config *cfg = ld->cfg;
    if (node->kind != YNODE_MAP) {
        return fail(ld, node, "instances", "must be a map of service name to settings, got %s",
                    ynode_kind_name(node));
    }
    cfg->services = xcalloc(ynode_pairs(node), sizeof(*cfg->services));
    for (size_t i = 0; i < ynode_pairs(node); i++) {
        struct config_service *svc = &cfg->services[cfg->service_count++];
        if (load_service(ld, node->kids[2 * i], node->kids[2 * i + 1], svc) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Keys lymph's services read from the same file; the node has no use for them. */
static bool is_lymph_service_key(const char *key)
{
    static const char *const keys[] = {"container", "interfaces", "dependencies", "plugins",
                                       "logging", "debug", "registry", "event_system",
                                       "components", "name"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(key, keys[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int load_streams(struct loader *ld, const struct ynode *node)
{
    struct config *cfg = ld->cfg;
    char key_path[KEY_PATH_MAX], child[KEY_PATH_MAX];
    if (node->kind != YNODE_MAP) {
        return fail(ld, node, "streams", "must be a map of event pattern to {retain_events}, got %s",
                    ynode_kind_name(node));
    }
    size_t n = ynode_pairs(node);
    cfg->streams = xcalloc(n ? n : 1, sizeof *cfg->streams);
    for (size_t i = 0; i < n; i++) {
        const struct ynode *key = node->kids[2 * i];
        const struct ynode *body = node->kids[2 * i + 1];
        key_path_child(key_path, "streams", key->text);
        struct config_stream *st = &cfg->streams[cfg->stream_count++];
        st->pattern = xstrdup(key->text);
        st->line = key->line;
        st->retain_events = DEFAULT_RETAIN_EVENTS;
        if (!topic_pattern_valid(key->text)) {
            return fail(ld, key, key_path,
                        "not an event pattern (dot-separated words, * for one word, # for any)");
        }
        if (ynode_is_null(body)) {
            continue;
        }
        if (body->kind != YNODE_MAP) {
            return fail(ld, body, key_path, "must be a map (retain_events), got %s", ynode_kind_name(body));
        }
        for (size_t k = 0; k < ynode_pairs(body); k++) {
            const struct ynode *bk = body->kids[2 * k];
            key_path_child(child, key_path, bk->text);
            if (strcmp(bk->text, "retain_events") != 0) {
                return fail(ld, bk, child, "unknown key (a stream takes retain_events)");
            }
            long long v;
            if (value_int(ld, body->kids[2 * k + 1], child, 1, 1000000000LL, &v) < 0) {
                return -1;
            }
            st->retain_events = (uint64_t)v;
        }
    }
    return 0;
}

/* ---- PORT ---- */

const char *config_service_env(const struct config_service *svc, const char *name)
{
    const char *value = NULL;
    for (size_t i = 0; i < svc->env_count; i++) {
        if (strcmp(svc->env[i].name, name) == 0) {
            value = svc->env[i].value; /* the last one, as the child's environment has it */
        }
    }
    return value;
}

/* Offset of the first $(socket.NAME.fd) or $(socket.NAME.port) in `command`, or -1. */
static long command_socket_ref(const char *command, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = command; (p = strstr(p, "$(socket.")); p++) {
        const char *n = p + strlen("$(socket.");
        if (strncmp(n, name, len) == 0 &&
            (strncmp(n + len, ".fd)", 4) == 0 || strncmp(n + len, ".port)", 6) == 0)) {
            return (long)(p - command);
        }
    }
    return -1;
}

/* The first TCP socket a service's workers get, in sockets_for_service's order (the one
 * named like it, those it lists, those its command names), and whether it gets any. */
static const struct config_socket *service_first_tcp_socket(const struct config *cfg,
                                                            const struct config_service *svc,
                                                            bool *any)
{
    *any = false;
    const struct config_socket *own = find_socket(cfg, svc->name);
    if (own) {
        *any = true;
        if (!own->path) {
            return own;
        }
    }
    for (size_t i = 0; i < svc->socket_count; i++) {
        const struct config_socket *sock = find_socket(cfg, svc->sockets[i]);
        if (sock) {
            *any = true;
            if (!sock->path) {
                return sock;
            }
        }
    }
    const struct config_socket *first = NULL;
    long earliest = LONG_MAX;
    for (size_t i = 0; i < cfg->socket_count; i++) {
        long at = command_socket_ref(svc->command, cfg->sockets[i].name);
        if (at < 0) {
            continue;
        }
        *any = true;
        if (!cfg->sockets[i].path && at < earliest) {
            earliest = at;
            first = &cfg->sockets[i];
        }
    }
    return first;
}

enum config_port_source config_service_port(const struct config *cfg, const struct config_service *svc,
                                            const struct config_socket **socket)
{
    bool any;
    const struct config_socket *first = service_first_tcp_socket(cfg, svc, &any);
    if (socket) {
        *socket = first;
    }
    if (config_service_env(svc, "PORT")) {
        return PORT_FROM_ENV;
    }
    if (!any) {
        return PORT_FROM_BLOCK;
    }
    return first ? PORT_FROM_SOCKET : PORT_FROM_NONE;
}

int config_block_port(const struct config_service *svc, int index)
{
    if (index < 0 || index >= CONFIG_PORT_BLOCK || svc->port_first + index > 65535) {
        return -1;
    }
    return svc->port_first + index;
}

/* The socket with a fixed TCP `port`, or NULL. */
static const struct config_socket *socket_on_port(const struct config *cfg, long port)
{
    for (size_t i = 0; i < cfg->socket_count; i++) {
        if (!cfg->sockets[i].path && cfg->sockets[i].port > 0 && cfg->sockets[i].port == port) {
            return &cfg->sockets[i];
        }
    }
    return NULL;
}

/* Blocks in config order: a service keeps its block whatever the others do. */
static void assign_port_blocks(struct config *cfg)
{
    for (size_t s = 0; s < cfg->service_count; s++) {
        cfg->services[s].port_first = cfg->port_base + (int)s * CONFIG_PORT_BLOCK;
    }
}

/* Refuses a PORT a worker could not bind: one the node holds for a socket, or one past
 * 65535. `file` names the config in messages. */
static int check_ports(struct loader *ld, const char *file)
{
    struct config *cfg = ld->cfg;
    char key_path[KEY_PATH_MAX];
    for (size_t s = 0; s < cfg->service_count; s++) {
        const struct config_service *svc = &cfg->services[s];
        key_path_child(key_path, "instances", svc->name);
        enum config_port_source source = config_service_port(cfg, svc, NULL);
        bool any_socket;
        service_first_tcp_socket(cfg, svc, &any_socket);
        if (source == PORT_FROM_ENV && !any_socket) {
            const struct config_env_var *var = NULL;
            for (size_t i = 0; i < svc->env_count; i++) {
                if (strcmp(svc->env[i].name, "PORT") == 0) {
                    var = &svc->env[i];
                }
            }
            char *end;
            long port = strtol(var->value, &end, 10);
            const struct config_socket *sock = *end == '\0' ? socket_on_port(cfg, port) : NULL;
            if (sock) {
                char env_path[KEY_PATH_MAX];
                key_path_child(env_path, key_path, "env.PORT");
                return fail_pos(ld, file, var->line, var->col, env_path,
                                "PORT %ld is the port of sockets.%s (line %d), which the node holds: "
                                "a worker that binds $PORT would fail with \"Address already in use\"",
                                port, sock->name, sock->line);
            }
            continue;
        }
        if (source != PORT_FROM_BLOCK || svc->numprocesses == 0) {
            continue;
        }
        if (config_block_port(svc, 0) < 0) {
            int line = cfg->port_base_line ? cfg->port_base_line : svc->line;
            int col = cfg->port_base_line ? cfg->port_base_col : svc->col;
            return fail_pos(ld, file, line, col, cfg->port_base_line ? "port_base" : key_path,
                            "%s's PORT block would start at %d, past 65535 (lower port_base, or give %s "
                            "an env: PORT)", svc->name, svc->port_first, svc->name);
        }
        for (int i = 0; i < svc->numprocesses; i++) {
            int port = config_block_port(svc, i);
            const struct config_socket *sock = port > 0 ? socket_on_port(cfg, port) : NULL;
            if (sock) {
                return fail_pos(ld, file, svc->line, svc->col, key_path,
                                "PORT %d of %s.%d is the port of sockets.%s (line %d), which the node holds: "
                                "a worker that binds $PORT would fail with \"Address already in use\" "
                                "(change port_base, or give %s an env: PORT)",
                                port, svc->name, i, sock->name, sock->line, svc->name);
            }
        }
    }
    return 0;
}

int config_check_ports(struct config *cfg, const char *file, int port_base, char *err, size_t errlen)
{
    struct loader ld = {.path_arg = file, .cfg = cfg, .err = err, .errlen = errlen};
    if (port_base > 0) {
        cfg->port_base = port_base;
        cfg->port_base_line = 0; /* a message about the base names the service, not the file's key */
        assign_port_blocks(cfg);
    }
    return check_ports(&ld, file);
}

static int load_top_level(struct loader *ld, const struct ynode *root)
{
    const struct ynode *instances = NULL, *sockets = NULL, *logs = NULL, *streams = NULL;
    const struct ynode *port_base = NULL;
    if (!root || ynode_is_null(root)) {
        return 0;
    }
    if (root->kind != YNODE_MAP) {
        return fail(ld, root, "", "the top level must be a map (instances, sockets, logs), got %s",
                    ynode_kind_name(root));
    }
    for (size_t i = 0; i < ynode_pairs(root); i++) {
        const struct ynode *key = root->kids[2 * i];
        const struct ynode *value = root->kids[2 * i + 1];
        const char *k = key->text;
        if (strcmp(k, "instances") == 0) {
            instances = value;
        } else if (strcmp(k, "sockets") == 0) {
            sockets = value;
        } else if (strcmp(k, "logs") == 0) {
            logs = value;
        } else if (strcmp(k, "streams") == 0) {
            streams = value;
        } else if (strcmp(k, "port_base") == 0) {
            port_base = value;
        } else if (is_lymph_service_key(k)) {
            add_note(ld->cfg, "%s: read by lymph services, ignored by the node", k);
        } else {
            return fail(ld, key, k,
                        "unknown key (the node reads instances, sockets, logs, streams, port_base; "
                        "lymph's service keys like container are accepted and ignored)");
        }
    }
    /* Sockets first: services refer to them by name, wherever they sit in the file. */
    if (sockets && !ynode_is_null(sockets) && load_sockets(ld, sockets) < 0) {
        return -1;
    }
    if (logs && !ynode_is_null(logs) && load_logs(ld, logs) < 0) {
        return -1;
    }
    if (streams && !ynode_is_null(streams) && load_streams(ld, streams) < 0) {
        return -1;
    }
    if (port_base && !ynode_is_null(port_base)) {
        long long base;
        if (value_int(ld, port_base, "port_base", 1, 65535, &base) < 0) {
            return -1;
        }
        ld->cfg->port_base = (int)base;
        ld->cfg->port_base_line = port_base->line;
        ld->cfg->port_base_col = port_base->col;
    }
    if (instances && !ynode_is_null(instances) && load_instances(ld, instances) < 0) {
        return -1;
    }
    assign_port_blocks(ld->cfg);
    return 0;
}

static int load_vars(struct loader *ld, const char *vars_path, struct ynode **vars)
{
    if (parse_yaml_file(ld, vars_path, vars) < 0) {
        return -1;
    }
    if (!*vars) {
        return 0;
    }
    if (check_keys(ld, vars_path, *vars, "") < 0) {
        return -1;
    }
    if (ynode_is_null(*vars)) {
        return 0;
    }
    if ((*vars)->kind != YNODE_MAP) {
        return fail_in(ld, vars_path, *vars, "", "a vars file must be a map of names to values, got %s",
                       ynode_kind_name(*vars));
    }
    ld->vars = *vars;
    return 0;
}

static int resolve_location(struct loader *ld, const char *path)
{
    char *abs = realpath(path, NULL);
    if (!abs) {
        return fail_pos(ld, path, 0, 0, "", "cannot read: %s", strerror(errno));
    }
    ld->cfg->path = abs;
    char *slash = strrchr(abs, '/');
    ld->cfg->dir = slash == abs ? xstrdup("/") : xstrndup(abs, (size_t)(slash - abs));
    return 0;
}

static int load(const char *path, const char *vars_path, bool keep_unresolved, struct config *out, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (err && errlen) {
        err[0] = '\0';
    }
    out->logs.buffer_lines = 200000;
    out->logs.file_max_mb = 64;
    out->logs.keep_files = 5;
    out->port_base = CONFIG_PORT_BASE_DEFAULT;
    struct loader ld = {.path_arg = path, .vars_arg = vars_path, .cfg = out,
                        .err = err, .errlen = errlen, .keep_unresolved = keep_unresolved};
    struct ynode *root = NULL, *vars = NULL;
    int rc = -1;
    if (parse_yaml_file(&ld, path, &root) < 0) {
        goto done;
    }
    if (root && check_keys(&ld, path, root, "") < 0) {
        goto done;
    }
    if (resolve_location(&ld, path) < 0) {
        goto done;
    }
    if (vars_path && load_vars(&ld, vars_path, &vars) < 0) {
        goto done;
    }
    rc = load_top_level(&ld, root);
done:
    ynode_free(root);
    ynode_free(vars);
    if (rc < 0) {
        config_free(out);
    }
    return rc;
}

int config_load(const char *path, const char *vars_path, struct config *out, char *err, size_t errlen)
{
    return load(path, vars_path, false, out, err, errlen);
}

int config_load_unresolved(const char *path, struct config *out, char *err, size_t errlen)
{
    return load(path, NULL, true, out, err, errlen);
}

void config_free(struct config *cfg)
{
    if (!cfg) {
        return;
    }
    for (size_t i = 0; i < cfg->service_count; i++) {
        struct config_service *svc = &cfg->services[i];
        free(svc->name);
        free(svc->command);
        for (size_t j = 0; j < svc->env_count; j++) {
            free(svc->env[j].name);
            free(svc->env[j].value);
        }
        free(svc->env);
        free(svc->cwd);
        free(svc->ready.log_pattern);
        free(svc->ready.tcp_host);
        for (size_t j = 0; j < svc->socket_count; j++) {
            free(svc->sockets[j]);
        }
        free(svc->sockets);
    }
    free(cfg->services);
    for (size_t i = 0; i < cfg->socket_count; i++) {
        free(cfg->sockets[i].name);
        free(cfg->sockets[i].host);
        free(cfg->sockets[i].path);
    }
    free(cfg->sockets);
    for (size_t i = 0; i < cfg->note_count; i++) {
        free(cfg->notes[i]);
    }
    for (size_t i = 0; i < cfg->stream_count; i++)
        free(cfg->streams[i].pattern);
    free(cfg->streams);
    free(cfg->notes);
    free(cfg->path);
    free(cfg->dir);
    memset(cfg, 0, sizeof(*cfg));
}

const struct config_service *config_find_service(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->service_count; i++) {
        if (strcmp(cfg->services[i].name, name) == 0) {
            return &cfg->services[i];
        }
    }
    return NULL;
}

static const struct {
    int number;
    const char *name;
} signal_names[] = {
    {SIGHUP, "HUP"},   {SIGINT, "INT"},       {SIGQUIT, "QUIT"}, {SIGILL, "ILL"},
    {SIGTRAP, "TRAP"}, {SIGABRT, "ABRT"},     {SIGBUS, "BUS"},   {SIGFPE, "FPE"},
    {SIGKILL, "KILL"}, {SIGUSR1, "USR1"},     {SIGSEGV, "SEGV"}, {SIGUSR2, "USR2"},
    {SIGPIPE, "PIPE"}, {SIGALRM, "ALRM"},     {SIGTERM, "TERM"}, {SIGCHLD, "CHLD"},
    {SIGCONT, "CONT"}, {SIGSTOP, "STOP"},     {SIGTSTP, "TSTP"}, {SIGTTIN, "TTIN"},
    {SIGTTOU, "TTOU"}, {SIGURG, "URG"},       {SIGXCPU, "XCPU"}, {SIGXFSZ, "XFSZ"},
    {SIGVTALRM, "VTALRM"}, {SIGPROF, "PROF"}, {SIGWINCH, "WINCH"}, {SIGIO, "IO"},
    {SIGPWR, "PWR"},   {SIGSYS, "SYS"},
};

int config_parse_signal(const char *text)
{
    if (!text || !text[0]) {
        return -1;
    }
    if (text[0] >= '0' && text[0] <= '9') {
        int n = 0;
        for (const char *p = text; *p; p++) {
            if (*p < '0' || *p > '9' || n > 64) {
                return -1;
            }
            n = n * 10 + (*p - '0');
        }
        return n >= 1 && n <= 64 ? n : -1;
    }
    const char *name = strncasecmp(text, "SIG", 3) == 0 ? text + 3 : text;
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
        if (strcasecmp(name, signal_names[i].name) == 0) {
            return signal_names[i].number;
        }
    }
    return -1;
}

const char *config_signal_name(int sig)
{
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
        if (signal_names[i].number == sig) {
            return signal_names[i].name;
        }
    }
    return "?";
}
