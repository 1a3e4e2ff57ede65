/* interp: $(env.NAME) and $(var.a.b) in config values (see interp.h). One pass: text that
 * comes from a variable is never scanned again. */
#include "config/interp.h"

#include <stdlib.h>
#include <string.h>

#include "config/cfgalloc.h"

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
char *interp_expand(const struct interp *in, const struct ydiag *d, const struct ynode *n,
                    const char *key_path)
{
    const char *s = n->text;
    struct cfg_text out = {0};
    size_t i = 0;
    while (s[i]) {
        size_t ref_len, ns_len, path_len;
        if (!match_ref(s + i, &ref_len, &ns_len, &path_len)) {
            size_t run = 1;
            while (s[i + run] && s[i + run] != '$') {
                run++;
            }
            cfg_text_append(&out, s + i, run);
            i += run;
            continue;
        }
        const char *ns = s + i + 2;
        const char *path = ns + ns_len + 1;
        const char *value = NULL; /* the text the reference stands for; NULL: undefined */
        const char *undefined_hint = "";
        bool known = true;
        if (ns_len == 3 && memcmp(ns, "env", 3) == 0) {
            char *name = cfg_xstrndup(path, path_len);
            value = getenv(name);
            if (!value && in->env_fallback)
                value = in->env_fallback(in->env_ctx, name);
            free(name);
        } else if (ns_len == 3 && memcmp(ns, "var", 3) == 0) {
            const struct ynode *var = in->vars ? vars_lookup(in->vars, path, path_len) : NULL;
            if (var && var->kind != YNODE_SCALAR) {
                free(out.s);
                ydiag_fail(d, in->file, n->line, n->col, key_path, "%.*s is %s in %s, but only a scalar can be interpolated",
                     (int)ref_len, s + i, ynode_kind_name(var), in->vars_arg);
                return NULL;
            }
            value = var ? var->text : NULL;
            undefined_hint = in->vars_arg ? "" : " (no vars file was given)";
        } else {
            known = false;
        }
        if (!value && known && !in->keep_unresolved) {
            free(out.s);
            ydiag_fail(d, in->file, n->line, n->col, key_path, "undefined variable %.*s%s", (int)ref_len, s + i,
                       undefined_hint);
            return NULL;
        }
        if (value)
            cfg_text_append(&out, value, strlen(value));
        else /* another namespace, or kept unresolved: as written */
            cfg_text_append(&out, s + i, ref_len);
        i += ref_len;
    }
    return cfg_text_take(&out);
}


int interp_read_vars(struct interp *in, const struct ydiag *d, const char *vars_path, struct ynode **vars)
{
    if (ytree_parse_file(d, vars_path, vars) < 0) {
        return -1;
    }
    if (!*vars || ynode_is_null(*vars)) {
        return 0;
    }
    if ((*vars)->kind != YNODE_MAP) {
        return ydiag_fail(d, vars_path, (*vars)->line, (*vars)->col, "",
                          "a vars file must be a map of names to values, got %s", ynode_kind_name(*vars));
    }
    in->vars = *vars;
    return 0;
}
