/* yamltree: libyaml's events turned into a tree that keeps positions (see yamltree.h).
 * It bounds what a hostile file can make it do (depth, nodes, alias copies) and never
 * interprets a value. */
#include "config/yamltree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/cfgalloc.h"

/* Recursion in the tree walks and alias expansion ("billion laughs") both stop here. */
#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 1000000
/* Nodes alone do not bound memory: a few aliases of one long scalar copy it a million times. */
#define YAML_MAX_TEXT_BYTES (16u << 20)

int ydiag_vfail(const struct ydiag *d, const char *file, int line, int col, const char *key_path,
                const char *fmt, va_list ap)
{
    if (!d->err || d->errlen == 0) {
        return -1;
    }
    int n;
    if (line > 0) {
        n = snprintf(d->err, d->errlen, "%s:%d:%d: ", file, line, col);
    } else {
        n = snprintf(d->err, d->errlen, "%s: ", file);
    }
    size_t used = n < 0 ? 0 : (size_t)n;
    if (used < d->errlen && key_path && key_path[0]) {
        n = snprintf(d->err + used, d->errlen - used, "%s: ", key_path);
        used += n < 0 ? 0 : (size_t)n;
    }
    if (used < d->errlen) {
        vsnprintf(d->err + used, d->errlen - used, fmt, ap);
    }
    return -1;
}

int ydiag_fail(const struct ydiag *d, const char *file, int line, int col, const char *key_path,
               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ydiag_vfail(d, file, line, col, key_path, fmt, ap);
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

void key_path_child(char *dst, const char *parent, const char *key)
{
    key_path_mark_cut(dst, snprintf(dst, KEY_PATH_MAX, "%s%s%s", parent, parent[0] ? "." : "", key));
}

void key_path_item(char *dst, const char *parent, size_t index)
{
    key_path_mark_cut(dst, snprintf(dst, KEY_PATH_MAX, "%s[%zu]", parent, index));
}

void ytree_free(struct ynode *n)
{
    if (!n) {
        return;
    }
    for (size_t i = 0; i < n->kid_count; i++) {
        ytree_free(n->kids[i]);
    }
    free(n->kids);
    free(n->text);
    free(n);
}

size_t ynode_pairs(const struct ynode *map)
{
    return map->kid_count / 2;
}

bool ynode_is_null(const struct ynode *n)
{
    if (n->kind != YNODE_SCALAR || !n->plain) {
        return false;
    }
    const char *t = n->text;
    return t[0] == '\0' || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 ||
           strcmp(t, "Null") == 0 || strcmp(t, "NULL") == 0;
}

const char *ynode_kind_name(const struct ynode *n)
{
    switch (n->kind) {
    case YNODE_MAP: return "a map";
    case YNODE_SEQ: return "a list";
    default: return "a scalar";
    }
}

/* ---- building the tree from libyaml events ---- */

struct anchor {
    char *name;
    const struct ynode *node;
};

struct tree_builder {
    const struct ydiag *d;
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
    struct ynode *n = cfg_xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    b->node_count++;
    return n;
}

static void builder_add_anchor(struct tree_builder *b, char *name, const struct ynode *n)
{
    b->anchors = cfg_grow(b->anchors, &b->anchor_cap, b->anchor_count + 1, sizeof(*b->anchors));
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
    struct ynode *n = cfg_xcalloc(1, sizeof(*n));
    b->node_count++;
    b->text_bytes += text_len;
    n->kind = src->kind;
    n->line = src->line;
    n->col = src->col;
    n->plain = src->plain;
    n->text = src->text ? cfg_xstrdup(src->text) : NULL;
    if (src->kid_count) {
        n->kids = cfg_xcalloc(src->kid_count, sizeof(*n->kids));
        n->kid_cap = src->kid_count;
        for (size_t i = 0; i < src->kid_count; i++) {
            n->kids[i] = builder_copy(b, src->kids[i]);
            if (!n->kids[i]) {
                ytree_free(n);
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
        ytree_free(n);
        return ydiag_fail(b->d, b->file, 0, 0, "", "more than %d YAML nodes (alias expansion?)",
                        YAML_MAX_NODES);
    }
    if (b->depth == 0) {
        if (b->root) {
            ytree_free(n);
            return ydiag_fail(b->d, b->file, 0, 0, "", "internal error: second root node");
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
    parent->kids = cfg_grow(parent->kids, &parent->kid_cap, parent->kid_count + 1,
                        sizeof(*parent->kids));
    parent->kids[parent->kid_count++] = n;
    return 0;
}

static int builder_open(struct tree_builder *b, enum ynode_kind kind, const yaml_event_t *ev,
                        const yaml_char_t *anchor)
{
    if (b->depth == YAML_MAX_DEPTH) {
        return ydiag_fail(b->d, b->file, (int)ev->start_mark.line + 1,
                        (int)ev->start_mark.column + 1, "", "nested deeper than %d levels",
                        YAML_MAX_DEPTH);
    }
    struct ynode *n = builder_new_node(b, kind, ev->start_mark);
    if (builder_attach(b, n) < 0) {
        return -1;
    }
    b->open[b->depth] = n;
    b->open_anchor[b->depth] = anchor ? cfg_xstrdup((const char *)anchor) : NULL;
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
            return ydiag_fail(b->d, b->file, (int)ev->start_mark.line + 1,
                            (int)ev->start_mark.column + 1, "",
                            "only one YAML document is allowed (found a second '---')");
        }
        return 0;
    case YAML_SCALAR_EVENT: {
        const char *value = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        if (memchr(value, '\0', len)) {
            return ydiag_fail(b->d, b->file, (int)ev->start_mark.line + 1,
                            (int)ev->start_mark.column + 1, "", "string contains a NUL character");
        }
        struct ynode *n = builder_new_node(b, YNODE_SCALAR, ev->start_mark);
        n->text = cfg_xstrndup(value, len);
        b->text_bytes += len;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (ev->data.scalar.anchor) {
            builder_add_anchor(b, cfg_xstrdup((const char *)ev->data.scalar.anchor), n);
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
            return ydiag_fail(b->d, b->file, (int)ev->start_mark.line + 1,
                            (int)ev->start_mark.column + 1, "", "unknown alias *%s", name);
        }
        struct ynode *copy = builder_copy(b, target);
        if (!copy) {
            return ydiag_fail(b->d, b->file, (int)ev->start_mark.line + 1,
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
        return ydiag_fail(b->d, b->file, line, col, "", "YAML syntax error: %s (%s at line %d, column %d)",
                        problem, parser->context, (int)parser->context_mark.line + 1,
                        (int)parser->context_mark.column + 1);
    }
    return ydiag_fail(b->d, b->file, line, col, "", "YAML syntax error: %s", problem);
}

static int read_file(const struct ydiag *d, const char *file, char **data, size_t *len)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        return ydiag_fail(d, file, 0, 0, "", "cannot read: %s", strerror(errno));
    }
    struct cfg_text buf = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        cfg_text_append(&buf, chunk, n);
    }
    if (ferror(f)) {
        int saved = errno;
        fclose(f);
        free(buf.s);
        return ydiag_fail(d, file, 0, 0, "", "cannot read: %s", strerror(saved));
    }
    fclose(f);
    *len = buf.len;
    *data = cfg_text_take(&buf);
    return 0;
}

/* Parses YAML text into a tree, messages naming `file`; *root is NULL for an empty text. */
static int parse_text(const struct ydiag *d, const char *file, const char *data, size_t len, struct ynode **root)
{
    *root = NULL;
    struct tree_builder b = {.d = d, .file = file, .src = data, .src_len = len};
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
    if (rc < 0) {
        ytree_free(b.root);
        return -1;
    }
    *root = b.root;
    return 0;
}

/* libyaml accepts duplicate and non-scalar keys; a config must not silently keep one of two. */
static int check_keys(const struct ydiag *d, const char *file, const struct ynode *n,
                      const char *key_path)
{
    char child[KEY_PATH_MAX];
    if (n->kind == YNODE_SEQ) {
        for (size_t i = 0; i < n->kid_count; i++) {
            key_path_item(child, key_path, i);
            if (check_keys(d, file, n->kids[i], child) < 0) {
                return -1;
            }
        }
    } else if (n->kind == YNODE_MAP) {
        for (size_t i = 0; i < ynode_pairs(n); i++) {
            const struct ynode *key = n->kids[2 * i];
            if (key->kind != YNODE_SCALAR) {
                return ydiag_fail(d, file, key->line, key->col, key_path, "map keys must be scalars, got %s",
                               ynode_kind_name(key));
            }
            key_path_child(child, key_path, key->text);
            for (size_t j = 0; j < i; j++) {
                const struct ynode *earlier = n->kids[2 * j];
                if (strcmp(earlier->text, key->text) == 0) {
                    return ydiag_fail(d, file, key->line, key->col, child, "duplicate key (first defined at line %d)",
                                   earlier->line);
                }
            }
            if (check_keys(d, file, n->kids[2 * i + 1], child) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* Parses `file` into a tree; *root is NULL for an empty file. */
static int parse_file(const struct ydiag *d, const char *file, struct ynode **root)
{
    *root = NULL;
    char *data = NULL;
    size_t len = 0;
    if (read_file(d, file, &data, &len) < 0) {
        return -1;
    }
    int rc = parse_text(d, file, data, len, root);
    free(data);
    return rc;
}

int ytree_parse_text(const struct ydiag *d, const char *file, const char *text, size_t len, struct ynode **root)
{
    if (parse_text(d, file, text, len, root) < 0) {
        return -1;
    }
    if (*root && check_keys(d, file, *root, "") < 0) {
        ytree_free(*root);
        *root = NULL;
        return -1;
    }
    return 0;
}

int ytree_parse_file(const struct ydiag *d, const char *file, struct ynode **root)
{
    if (parse_file(d, file, root) < 0) {
        return -1;
    }
    if (*root && check_keys(d, file, *root, "") < 0) {
        ytree_free(*root);
        *root = NULL;
        return -1;
    }
    return 0;
}
