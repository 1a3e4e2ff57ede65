/* keys: every key of .lymph.yml as one row of a table (keys.h), the generic loader that
 * walks a YAML map against a section of rows, and the loaders of the custom kinds. A new key
 * is one row here; messages, `devnode schema` and the docs check follow from the rows.
 * It never prints, spawns or binds: all it fills hangs off struct config. */
#include "config/keys.h"

#include <ctype.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <arpa/inet.h>

#include "common/pathglob.h"
#include "common/topic.h"
#include "common/zkurl.h"
#include "config/cfgalloc.h"
#include "config/probeaddr.h"

#define DEFAULT_HOST "127.0.0.1"

__attribute__((format(printf, 4, 5)))
static int fail(struct loader *ld, const struct ynode *at, const char *key_path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ydiag_vfail(&ld->diag, ld->file, at ? at->line : 0, at ? at->col : 0, key_path, fmt, ap);
    va_end(ap);
    return -1;
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
    return interp_expand(&ld->interp, &ld->diag, n, key_path);
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

/* Steps over a leading '-' or '+'; true when it was '-'. */
static bool skip_sign(const char **p)
{
    bool negative = **p == '-';
    if (**p == '-' || **p == '+') {
        (*p)++;
    }
    return negative;
}

static int value_int(struct loader *ld, const struct ynode *n, const char *key_path,
                     long long min, long long max, long long *out)
{
    char *t = value_text(ld, n, key_path, "an integer");
    if (!t) {
        return -1;
    }
    const char *p = t;
    bool negative = skip_sign(&p);
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
                             long long max_ms, unsigned *out)
{
    char *t = value_text(ld, n, key_path, "a duration (seconds, or like 500ms or 2s)");
    if (!t) {
        return -1;
    }
    const char *p = t;
    bool negative = skip_sign(&p);
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
    if ((negative && ms > 0) || ms > max_ms) {
        fail(ld, n, key_path, "must be between 0 and %lld seconds, got %.80s",
             max_ms / 1000, t);
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
    struct cfg_text joined = {0};
    if (rel[0] != '/') {
        cfg_text_append(&joined, base, strlen(base));
        cfg_text_append(&joined, "/", 1);
    }
    cfg_text_append(&joined, rel, strlen(rel));
    char *in = joined.s;
    char *out = cfg_xcalloc(joined.len + 2, 1);
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

/* A path value, resolved against the config's directory, replacing *out. */
static int value_path(struct loader *ld, const struct ynode *n, const char *key_path, char **out)
{
    char *rel = NULL;
    if (value_string(ld, n, key_path, &rel) < 0) {
        return -1;
    }
    free(*out);
    *out = path_resolve(ld->cfg->dir, rel);
    free(rel);
    return 0;
}


/* ---- the config's own helpers ---- */

static bool is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

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
    cfg->notes = cfg_xrealloc(cfg->notes, (cfg->note_count + 1) * sizeof(*cfg->notes));
    cfg->notes[cfg->note_count++] = note;
}

const struct config_socket *keys_find_socket(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->socket_count; i++) {
        if (strcmp(cfg->sockets[i].name, name) == 0) {
            return &cfg->sockets[i];
        }
    }
    return NULL;
}

/* ---- the table machinery: rows found, defaults set, values stored by kind ---- */

static const struct config_key *section_find(const struct config_section *sec, const char *name, bool list_form)
{
    for (size_t i = 0; i < sec->count; i++) {
        const struct config_key *row = &sec->keys[i];
        if (strcmp(row->name, name) == 0 && (list_form || !(row->flags & KEY_LIST_ONLY))) {
            return row;
        }
    }
    return NULL;
}

void keys_names(const struct config_section *sec, bool list_form, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sec->count && used < len; i++) {
        const struct config_key *row = &sec->keys[i];
        if (row->kind == KEY_IGNORED || (!list_form && (row->flags & KEY_LIST_ONLY))) {
            continue;
        }
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", row->name);
        used += n < 0 ? 0 : (size_t)n;
    }
}

/* "a, b or c" */
static void choices_text(const char *const *choices, char *buf, size_t len)
{
    size_t used = 0, count = 0;
    while (choices[count]) {
        count++;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < count && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i == 0 ? "" : i + 1 == count ? " or " : ", ", choices[i]);
        used += n < 0 ? 0 : (size_t)n;
    }
}

static void store_int(void *target, const struct config_key *row, long long v)
{
    char *field = (char *)target + row->offset;
    if (row->size == sizeof(int)) {
        int x = (int)v;
        memcpy(field, &x, sizeof x);
    } else {
        int64_t x = v;
        memcpy(field, &x, sizeof x);
    }
}

/* Every default a row declares, also in the fixed sub-maps (a service's ready:, the logs). */
static void apply_defaults(const struct config_section *sec, void *target)
{
    for (size_t i = 0; i < sec->count; i++) {
        const struct config_key *row = &sec->keys[i];
        if ((row->kind == KEY_INT || row->kind == KEY_DURATION || row->kind == KEY_ENUM) && row->default_text &&
            row->size) {
            store_int(target, row, row->def);
        } else if (row->kind == KEY_MAP && row->section && !(row->flags & KEY_NAMED) && row->size) {
            apply_defaults(row->section, (char *)target + row->offset);
        }
    }
}

static int fail_unknown(struct loader *ld, const struct config_section *sec, const struct ynode *key,
                        const char *key_path, bool list_form)
{
    char names[512];
    keys_names(sec, list_form, names, sizeof names);
    for (size_t i = 0; i < sec->count; i++) {
        if (sec->keys[i].kind == KEY_IGNORED) {
            return fail(ld, key, key_path, "unknown key (%s %s; lymph's service keys like %s are accepted and ignored)",
                        sec->takes, names, sec->keys[i].name);
        }
    }
    return fail(ld, key, key_path, "unknown key (%s %s)", sec->takes, names);
}

static int load_section(struct loader *ld, const struct config_section *sec, const struct ynode *map,
                        const char *key_path, void *target, bool list_form);

/* A map of sec's keys: "must be a map (a, b, c), got a list" when it is not one. */
static int load_fixed_map(struct loader *ld, const struct config_section *sec, const struct ynode *value,
                          const char *key_path, void *target)
{
    if (value->kind != YNODE_MAP) {
        char names[512];
        keys_names(sec, false, names, sizeof names);
        return fail(ld, value, key_path, "must be a map (%s), got %s", names, ynode_kind_name(value));
    }
    return load_section(ld, sec, value, key_path, target, false);
}

static int load_value(struct loader *ld, const struct config_key *row, const struct ynode *key,
                      const struct ynode *value, const char *key_path, void *target)
{
    if (row->load) {
        return row->load(ld, key, value, key_path, target);
    }
    switch (row->kind) {
    case KEY_INT: {
        long long v;
        if (value_int(ld, value, key_path, row->min, row->max, &v) < 0) {
            return -1;
        }
        store_int(target, row, v);
        return 0;
    }
    case KEY_DURATION: {
        unsigned ms;
        if (value_duration_ms(ld, value, key_path, row->max, &ms) < 0) {
            return -1;
        }
        store_int(target, row, ms);
        return 0;
    }
    case KEY_STRING:
        return value_string(ld, value, key_path, (char **)((char *)target + row->offset));
    case KEY_ENUM: {
        char *text = value_text(ld, value, key_path, "a string");
        if (!text) {
            return -1;
        }
        for (long long i = 0; row->choices[i]; i++) {
            if (strcmp(text, row->choices[i]) == 0) {
                free(text);
                store_int(target, row, i);
                return 0;
            }
        }
        char choices[256];
        choices_text(row->choices, choices, sizeof choices);
        fail(ld, value, key_path, "must be %s, got \"%.80s\"", choices, text);
        free(text);
        return -1;
    }
    case KEY_MAP:
        return load_fixed_map(ld, row->section, value, key_path, (char *)target + row->offset);
    default:
        return fail(ld, key, key_path, "internal error: key without a loader");
    }
}

int keys_load_map(struct loader *ld, const struct config_section *sec, const struct ynode *value,
                  const char *key_path, void *target)
{
    return load_fixed_map(ld, sec, value, key_path, target);
}

/* Loads map's keys into target in file order, so the first mistake in the file is the one
 * reported. An empty value keeps the default unless the row takes it as a value. */
static int load_section(struct loader *ld, const struct config_section *sec, const struct ynode *map,
                        const char *key_path, void *target, bool list_form)
{
    char child[KEY_PATH_MAX];
    for (size_t i = 0; i < ynode_pairs(map); i++) {
        const struct ynode *key = map->kids[2 * i];
        const struct ynode *value = map->kids[2 * i + 1];
        key_path_child(child, key_path, key->text);
        const struct config_key *row = section_find(sec, key->text, list_form);
        if (!row) {
            return fail_unknown(ld, sec, key, child, list_form);
        }
        if (ynode_is_null(value) && !(row->flags & KEY_NULL_IS_VALUE)) {
            continue;
        }
        if (load_value(ld, row, key, value, child, target) < 0) {
            return -1;
        }
    }
    return 0;
}

/* "missing required key" for the first KEY_REQUIRED row map lacks. */
static int check_required(struct loader *ld, const struct config_section *sec, const struct ynode *map,
                          const struct ynode *where, const char *key_path)
{
    for (size_t i = 0; i < sec->count; i++) {
        if (!(sec->keys[i].flags & KEY_REQUIRED)) {
            continue;
        }
        bool found = false;
        for (size_t k = 0; k < ynode_pairs(map) && !found; k++) {
            found = strcmp(map->kids[2 * k]->text, sec->keys[i].name) == 0;
        }
        if (!found) {
            return fail(ld, where, key_path, "missing required key \"%s\"", sec->keys[i].name);
        }
    }
    return 0;
}

/* The non-null value of `name` in map, or NULL. */
static const struct ynode *map_value(const struct ynode *map, const char *name, const struct ynode **key)
{
    for (size_t i = 0; i < ynode_pairs(map); i++) {
        if (strcmp(map->kids[2 * i]->text, name) == 0 && !ynode_is_null(map->kids[2 * i + 1])) {
            if (key) {
                *key = map->kids[2 * i];
            }
            return map->kids[2 * i + 1];
        }
    }
    return NULL;
}

/* ---- custom kinds: the keys whose value needs more than a type and a range ---- */

static const struct config_section service_section, socket_section, ready_section, stream_section, live_section;

/* The list form's `name:` is read by load_sockets before the rest. */
static int load_skip(struct loader *ld, const struct ynode *key, const struct ynode *value, const char *key_path,
                     void *target)
{
    return 0;
}

static int load_socket_path(struct loader *ld, const struct ynode *key, const struct ynode *value,
                            const char *key_path, void *target)
{
    struct config_socket *sock = target;
    if (value_path(ld, value, key_path, &sock->path) < 0) {
        return -1;
    }
    size_t limit = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    if (strlen(sock->path) > limit) {
        return fail(ld, value, key_path, "unix socket path %s is %zu bytes, the kernel allows %zu", sock->path,
                    strlen(sock->path), limit);
    }
    return 0;
}

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
        return fail(ld, body, key_path, "must be a map with port or path, got %s", ynode_kind_name(body));
    }
    if (load_section(ld, &socket_section, body, key_path, sock, list_form) < 0) {
        return -1;
    }
    const struct ynode *port_key = NULL, *path_key = NULL, *host_key = NULL;
    map_value(body, "port", &port_key);
    map_value(body, "path", &path_key);
    map_value(body, "host", &host_key);
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
        sock->host = cfg_xstrdup(DEFAULT_HOST);
    }
    return 0;
}

static int load_sockets(struct loader *ld, const struct ynode *key, const struct ynode *node,
                        const char *key_path, void *target)
{
    struct config *cfg = ld->cfg;
    char child[KEY_PATH_MAX];
    if (node->kind == YNODE_SCALAR) {
        return fail(ld, node, key_path,
                    "must be a map of NAME: {port or path} or a list of {port or path}, got a scalar");
    }
    bool list_form = node->kind == YNODE_SEQ;
    size_t count = list_form ? node->kid_count : ynode_pairs(node);
    cfg->sockets = cfg_xcalloc(count, sizeof(*cfg->sockets));
    for (size_t i = 0; i < count; i++) {
        struct config_socket *sock = &cfg->sockets[cfg->socket_count++];
        const struct ynode *where, *body;
        if (list_form) {
            where = body = node->kids[i];
            key_path_item(child, key_path, i);
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
                                "socket names may use only letters, digits, '_' and '-', got \"%s\"", sock->name);
                }
            } else if (asprintf(&sock->name, "socket%zu", i) < 0) {
                abort();
            }
        } else {
            where = node->kids[2 * i];
            body = node->kids[2 * i + 1];
            key_path_child(child, key_path, where->text);
            if (!is_valid_name(where->text)) {
                return fail(ld, where, child, "socket names may use only letters, digits, '_' and '-'");
            }
            sock->name = cfg_xstrdup(where->text);
        }
        if (load_socket(ld, where, body, child, list_form, sock) < 0) {
            return -1;
        }
        for (size_t j = 0; j + 1 < cfg->socket_count; j++) {
            if (strcmp(cfg->sockets[j].name, sock->name) == 0) {
                return fail(ld, where, child, "duplicate socket name \"%s\" (first defined at line %d)", sock->name,
                            cfg->sockets[j].line);
            }
        }
    }
    return 0;
}

static int load_env(struct loader *ld, const struct ynode *key_node, const struct ynode *node,
                    const char *key_path, void *target)
{
    struct config_service *svc = target;
    char child[KEY_PATH_MAX];
    if (node->kind != YNODE_MAP) {
        return fail(ld, node, key_path, "must be a map of NAME: value, got %s", ynode_kind_name(node));
    }
    svc->env = cfg_xcalloc(ynode_pairs(node), sizeof(*svc->env));
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
        var->name = cfg_xstrdup(key->text);
        var->value = text;
        var->line = value->line;
        var->col = value->col;
        var->layer = ENV_FROM_ENV;
    }
    return 0;
}

/* env_file: [a.env, b.env], at the top or in a service: each file read in order, a later
 * one winning; its ${VAR} see the layers below (envlayers.c). Only the names are kept when
 * the caller asked for no values (config_load_unresolved). */
static int load_env_files(struct loader *ld, const struct ynode *node, const char *key_path,
                          enum config_env_layer layer, struct envlist *into, char ***files, size_t *count)
{
    char child[KEY_PATH_MAX];
    if (node->kind != YNODE_SEQ) {
        return fail(ld, node, key_path, "must be a list of environment files ([.env.local, secrets.env]), got %s",
                    ynode_kind_name(node));
    }
    *files = cfg_xcalloc(node->kid_count, sizeof(**files));
    for (size_t i = 0; i < node->kid_count; i++) {
        const struct ynode *item = node->kids[i];
        key_path_item(child, key_path, i);
        char *name = NULL;
        if (value_string(ld, item, child, &name) < 0) {
            return -1;
        }
        if (ld->interp.keep_unresolved) {
            free(name);
            continue;
        }
        char *abs = NULL;
        int rc = envlayers_read_file(ld, item, child, name, layer, into,
                                     layer == ENV_FROM_SERVICE_FILE ? &ld->top_env : NULL, &abs);
        (*files)[(*count)++] = abs;
        free(name);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

static int load_top_env_file(struct loader *ld, const struct ynode *key, const struct ynode *value,
                             const char *key_path, void *target)
{
    return load_env_files(ld, value, key_path, ENV_FROM_FILE, &ld->top_env, &ld->cfg->env_files,
                          &ld->cfg->env_file_count);
}

static int load_service_env_file(struct loader *ld, const struct ynode *key, const struct ynode *value,
                                 const char *key_path, void *target)
{
    struct config_service *svc = target;
    return load_env_files(ld, value, key_path, ENV_FROM_SERVICE_FILE, &ld->service_env, &svc->env_files,
                          &svc->env_file_count);
}

static int load_service_sockets(struct loader *ld, const struct ynode *key, const struct ynode *node,
                                const char *key_path, void *target)
{
    struct config_service *svc = target;
    char child[KEY_PATH_MAX];
    if (node->kind != YNODE_SEQ) {
        return fail(ld, node, key_path, "must be a list of socket names, got %s", ynode_kind_name(node));
    }
    svc->sockets = cfg_xcalloc(node->kid_count, sizeof(*svc->sockets));
    for (size_t i = 0; i < node->kid_count; i++) {
        const struct ynode *item = node->kids[i];
        key_path_item(child, key_path, i);
        char *name = value_text(ld, item, child, "a socket name");
        if (!name) {
            return -1;
        }
        svc->sockets[svc->socket_count++] = name;
        if (!keys_find_socket(ld->cfg, name)) {
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

/* watch: and ignore: take a list of patterns, or one pattern as a plain string. */
static int load_patterns(struct loader *ld, const struct ynode *node, const char *key_path,
                         enum pathglob_rule rule, char ***out, size_t *count)
{
    char child[KEY_PATH_MAX];
    if (node->kind == YNODE_SCALAR) {
        *out = cfg_xcalloc(1, sizeof **out);
        char *text = value_text(ld, node, key_path, "a path pattern");
        if (!text) {
            return -1;
        }
        (*out)[(*count)++] = text;
    } else if (node->kind == YNODE_SEQ) {
        *out = cfg_xcalloc(node->kid_count ? node->kid_count : 1, sizeof **out);
        for (size_t i = 0; i < node->kid_count; i++) {
            key_path_item(child, key_path, i);
            char *text = value_text(ld, node->kids[i], child, "a path pattern");
            if (!text) {
                return -1;
            }
            (*out)[(*count)++] = text;
        }
    } else {
        return fail(ld, node, key_path, "must be a list of path patterns, got %s", ynode_kind_name(node));
    }
    for (size_t i = 0; i < *count; i++) {
        const struct ynode *at = node->kind == YNODE_SEQ ? node->kids[i] : node;
        if (node->kind == YNODE_SEQ) {
            key_path_item(child, key_path, i);
        } else {
            snprintf(child, sizeof child, "%s", key_path);
        }
        struct pathglob g;
        char why[256];
        if (pathglob_compile(&g, (*out)[i], rule, why, sizeof why) < 0) {
            return fail(ld, at, child, "%s", why);
        }
        pathglob_free(&g);
    }
    return 0;
}

static int load_watch(struct loader *ld, const struct ynode *key, const struct ynode *node,
                      const char *key_path, void *target)
{
    struct config_service *svc = target;
    return load_patterns(ld, node, key_path, PATHGLOB_ANCHORED, &svc->watch.paths, &svc->watch.path_count);
}

static int load_watch_ignore(struct loader *ld, const struct ynode *key, const struct ynode *node,
                             const char *key_path, void *target)
{
    struct config_service *svc = target;
    return load_patterns(ld, node, key_path, PATHGLOB_GITIGNORE, &svc->watch.ignore, &svc->watch.ignore_count);
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

static int load_ready_notify(struct loader *ld, const struct ynode *key, const struct ynode *v,
                             const char *key_path, void *target)
{
    struct config_ready *r = target;
    char *text = value_text(ld, v, key_path, "true");
    if (!text)
        return -1;
    int yes = strcmp(text, "true") == 0 || strcmp(text, "yes") == 0;
    free(text);
    if (!yes)
        return fail(ld, v, key_path, "must be true (or leave the key out)");
    r->kind = READY_NOTIFY;
    return 0;
}

/* Whether `re` stacks one repetition on another (`a++`, `a*{2}`) outside brackets: POSIX leaves
 * it undefined, and glibc's regcomp takes memory exponential in the stack (a 100-deep `+` run
 * exhausted 2 GiB in the config fuzzer), so the loader refuses it. */
static int stacked_repetition(const char *re)
{
    int after_repeat = 0;
    for (const char *c = re; *c; c++) {
        if (*c == '\\') {
            after_repeat = 0;
            if (c[1])
                c++;
        } else if (*c == '[') {
            after_repeat = 0;
            c++;
            if (*c == '^')
                c++;
            if (*c == ']')
                c++;
            while (*c && *c != ']')
                c++;
            if (!*c)
                return 0; /* unterminated: regcomp says so */
        } else if (*c == '*' || *c == '+' || *c == '?' || *c == '{') {
            if (after_repeat)
                return 1;
            if (*c == '{')
                while (c[1] && *c != '}')
                    c++;
            after_repeat = 1;
        } else {
            after_repeat = 0;
        }
    }
    return 0;
}

static int load_ready_log(struct loader *ld, const struct ynode *key, const struct ynode *v, const char *key_path,
                          void *target)
{
    struct config_ready *r = target;
    char *pattern = NULL;
    if (value_string(ld, v, key_path, &pattern) < 0)
        return -1;
    if (stacked_repetition(pattern)) {
        free(pattern);
        return fail(ld, v, key_path, "not a valid regular expression: a repetition (*, +, ? or {n}) repeated");
    }
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[160];
        regerror(rc, &re, why, sizeof why);
        free(pattern);
        return fail(ld, v, key_path, "not a valid regular expression: %s", why);
    }
    regfree(&re);
    free(r->log_pattern);
    r->log_pattern = pattern;
    r->kind = READY_LOG;
    return 0;
}

static int load_ready_tcp(struct loader *ld, const struct ynode *key, const struct ynode *v, const char *key_path,
                          void *target)
{
    struct config_ready *r = target;
    char *text = value_text(ld, v, key_path, "a port or HOST:PORT");
    if (!text)
        return -1;
    char *colon = strrchr(text, ':');
    const char *port_text = colon ? colon + 1 : text;
    char *end;
    long port = strtol(port_text, &end, 10);
    if (*end || end == port_text || port < 1 || port > 65535) {
        int rc = fail(ld, v, key_path, "must be a port 1..65535 or HOST:PORT, got \"%.80s\"", text);
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
        r->tcp_host = cfg_xstrdup(host);
    } else {
        r->tcp_host = cfg_xstrdup("127.0.0.1");
    }
    free(text);
    r->tcp_port = (int)port;
    r->kind = READY_TCP;
    return check_ready_tcp(ld, v, key_path, r);
}

static int load_ready_delay(struct loader *ld, const struct ynode *key, const struct ynode *v,
                            const char *key_path, void *target)
{
    struct config_ready *r = target;
    if (value_duration_ms(ld, v, key_path, CONFIG_DURATION_MAX_MS, &r->delay_ms) < 0)
        return -1;
    r->kind = READY_DELAY;
    return 0;
}

/* ---- health probes (ready: {http, exec}, live:) ---- */

/* A probe of a port the node holds is answered by whichever worker accepts (by the node
 * itself before any runs, by the old process during a roll): it cannot judge the instance it
 * names, so it is refused, as `ready: {tcp:}` is. */
#define PROBE_OWN_ADDRESS_HINT                                                                              \
    "probe an address of the instance's own (a service without a shared socket gets its own $PORT) "      \
    "or use exec, notify or log (sockets.md#probes)"

static int check_probe_port(struct loader *ld, const struct ynode *at, const char *key_path,
                            const struct config_probe *p)
{
    for (size_t i = 0; p->port > 0 && i < ld->cfg->socket_count; i++) {
        const struct config_socket *sock = &ld->cfg->sockets[i];
        if (sock->path || sock->port != p->port || !host_reaches(sock->host, p->host))
            continue;
        return fail(ld, at, key_path,
                    "port %d is the node's shared socket %s: whichever worker accepts answers it, so the probe "
                    "cannot judge this instance; " PROBE_OWN_ADDRESS_HINT,
                    p->port, sock->name);
    }
    return 0;
}

/* An address probe (http or tcp): `what` names the forms in the type error, `parse` is
 * probeaddr's for the kind. */
static int load_probe_address(struct loader *ld, const struct ynode *v, const char *key_path, const char *what,
                              int (*parse)(const char *, struct config_probe *, char *, size_t),
                              struct config_probe *p)
{
    char *text = value_text(ld, v, key_path, what);
    if (!text)
        return -1;
    char why[300];
    int rc = parse(text, p, why, sizeof why);
    free(text);
    if (rc < 0)
        return fail(ld, v, key_path, "%s", why);
    p->line = v->line;
    p->col = v->col;
    return check_probe_port(ld, v, key_path, p);
}

static int load_probe_http(struct loader *ld, const struct ynode *v, const char *key_path, struct config_probe *p)
{
    return load_probe_address(ld, v, key_path, "a path or an http:// URL", probeaddr_parse_http, p);
}

static int load_probe_tcp(struct loader *ld, const struct ynode *v, const char *key_path, struct config_probe *p)
{
    return load_probe_address(ld, v, key_path, "a port, $PORT or HOST:PORT", probeaddr_parse_tcp, p);
}

static int load_probe_exec(struct loader *ld, const struct ynode *v, const char *key_path, struct config_probe *p)
{
    if (value_string(ld, v, key_path, &p->command) < 0)
        return -1;
    p->kind = PROBE_EXEC;
    p->line = v->line;
    p->col = v->col;
    return 0;
}

static int load_ready_http(struct loader *ld, const struct ynode *key, const struct ynode *v, const char *key_path,
                           void *target)
{
    struct config_ready *r = target;
    r->kind = READY_HTTP;
    return load_probe_http(ld, v, key_path, &r->probe);
}

static int load_ready_exec(struct loader *ld, const struct ynode *key, const struct ynode *v, const char *key_path,
                           void *target)
{
    struct config_ready *r = target;
    r->kind = READY_EXEC;
    return load_probe_exec(ld, v, key_path, &r->probe);
}

static int load_live_http(struct loader *ld, const struct ynode *key, const struct ynode *v, const char *key_path,
                          void *target)
{
    return load_probe_http(ld, v, key_path, &((struct config_live *)target)->probe);
}

static int load_live_tcp(struct loader *ld, const struct ynode *key, const struct ynode *v, const char *key_path,
                         void *target)
{
    return load_probe_tcp(ld, v, key_path, &((struct config_live *)target)->probe);
}

static int load_live_exec(struct loader *ld, const struct ynode *key, const struct ynode *v, const char *key_path,
                          void *target)
{
    return load_probe_exec(ld, v, key_path, &((struct config_live *)target)->probe);
}

/* live: {http|tcp|exec: ..., interval, timeout, failures}: exactly one probe. */
static int load_live(struct loader *ld, const struct ynode *key, const struct ynode *value, const char *key_path,
                     void *target)
{
    struct config_service *svc = target;
    if (load_fixed_map(ld, &live_section, value, key_path, &svc->live) < 0)
        return -1;
    int kinds = 0;
    for (size_t i = 0; i < ynode_pairs(value); i++) {
        const char *k = value->kids[2 * i]->text;
        kinds += !strcmp(k, "http") || !strcmp(k, "tcp") || !strcmp(k, "exec");
    }
    if (kinds == 0)
        return fail(ld, value, key_path, "needs a probe: one of http, tcp or exec");
    if (kinds > 1)
        return fail(ld, value, key_path, "give one of http, tcp or exec, not several");
    if (svc->live.timeout_ms == 0 || svc->live.interval_ms < 100)
        return fail(ld, value, key_path, "%s", svc->live.timeout_ms ? "interval must be at least 100ms"
                                                                    : "timeout must be above 0");
    return 0;
}

/* A probe of $PORT (an http path, or $PORT written out) on a service whose PORT is its shared
 * socket's port judges whichever worker accepts: refused like a shared port written out. */
static int check_probe_own_port(struct loader *ld, const struct config_service *svc, const char *service_path,
                                const char *key, const struct config_probe *p)
{
    if ((p->kind != PROBE_HTTP && p->kind != PROBE_TCP) || p->port != 0)
        return 0;
    char key_path[KEY_PATH_MAX];
    key_path_child(key_path, service_path, key);
    const struct config_socket *sock = NULL;
    enum config_port_source source = config_service_port(ld->cfg, svc, &sock);
    if (source == PORT_FROM_SOCKET)
        return ydiag_fail(&ld->diag, ld->file, p->line, p->col, key_path,
                          "$PORT of %s is the port of its shared socket %s: whichever worker accepts answers it, "
                          "so the probe cannot judge this instance; " PROBE_OWN_ADDRESS_HINT,
                          svc->name, sock ? sock->name : "?");
    if (source == PORT_FROM_NONE)
        return ydiag_fail(&ld->diag, ld->file, p->line, p->col, key_path,
                          "%s has no PORT to probe (it has only unix sockets): give HOST:PORT, or use exec",
                          svc->name);
    return 0;
}

/* ready: notify | start | {notify: true} | {log: RE} | {tcp: PORT | "HOST:PORT"} | {delay: 2s},
 * each map form optionally with timeout. */
static int load_ready(struct loader *ld, const struct ynode *key, const struct ynode *value, const char *key_path,
                      void *target)
{
    struct config_service *svc = target;
    struct config_ready *r = &svc->ready;
    if (value->kind == YNODE_SCALAR) {
        char *text = value_text(ld, value, key_path, "a string");
        if (!text)
            return -1;
        int rc = 0;
        if (strcmp(text, "notify") == 0)
            r->kind = READY_NOTIFY;
        else if (strcmp(text, "start") != 0)
            rc = fail(ld, value, key_path,
                      "must be notify, start, or a map with one of notify, log, tcp, http, exec, delay; got \"%.80s\"", text);
        free(text);
        return rc;
    }
    if (value->kind != YNODE_MAP) {
        char names[256];
        keys_names(&ready_section, false, names, sizeof names);
        return fail(ld, value, key_path, "must be notify or a map (%s), got %s", names, ynode_kind_name(value));
    }
    if (load_section(ld, &ready_section, value, key_path, r, false) < 0)
        return -1;
    int kinds = 0;
    for (size_t i = 0; i < ynode_pairs(value); i++)
        kinds += strcmp(value->kids[2 * i]->text, "timeout") != 0;
    if (kinds > 1)
        return fail(ld, value, key_path, "give one of notify, log, tcp, http, exec or delay, not several");
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
        struct cfg_text known = {0};
        for (size_t i = 0; i < cfg->socket_count; i++) {
            const char *sname = cfg->sockets[i].name;
            found |= strlen(sname) == name_len && !memcmp(sname, name, name_len);
            if (i > 0)
                cfg_text_append(&known, ", ", 2);
            cfg_text_append(&known, sname, strlen(sname));
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


static int load_command(struct loader *ld, const struct ynode *key, const struct ynode *value,
                        const char *key_path, void *target)
{
    struct config_service *svc = target;
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
    free(svc->command);
    svc->command = cfg_xstrndup(start, len);
    svc->command_line = value->line;
    svc->command_col = value->col;
    free(text);
    return check_socket_refs(ld, value, key_path, svc->command);
}

static int load_cwd(struct loader *ld, const struct ynode *key, const struct ynode *value, const char *key_path,
                    void *target)
{
    struct config_service *svc = target;
    if (value_path(ld, value, key_path, &svc->cwd) < 0) {
        return -1;
    }
    svc->cwd_line = value->line;
    svc->cwd_col = value->col;
    return 0;
}

static int load_stop_signal(struct loader *ld, const struct ynode *key, const struct ynode *value,
                            const char *key_path, void *target)
{
    struct config_service *svc = target;
    char *text = value_text(ld, value, key_path, "a signal name or number");
    if (!text) {
        return -1;
    }
    int sig = config_parse_signal(text);
    int rc = 0;
    if (sig < 0) {
        rc = fail(ld, value, key_path, "must be a signal name like TERM or SIGINT, or a number 1..64, got \"%.80s\"",
                  text);
    } else {
        svc->stop_signal = sig;
    }
    free(text);
    return rc;
}

static int load_service(struct loader *ld, const struct ynode *key, const struct ynode *body,
                        const char *parent_path, struct config_service *svc)
{
    char key_path[KEY_PATH_MAX];
    key_path_child(key_path, parent_path, key->text);
    svc->name = cfg_xstrdup(key->text);
    svc->line = key->line;
    svc->col = key->col;
    apply_defaults(&service_section, svc);
    svc->stop_signal = SIGTERM;
    svc->cwd = cfg_xstrdup(ld->cfg->dir);
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
    envlist_free(&ld->service_env);
    if (load_section(ld, &service_section, body, key_path, svc, false) < 0) {
        return -1;
    }
    /* Without watch: they would silently do nothing. */
    static const char *const watch_only[] = {"ignore", "watch_debounce"};
    for (size_t i = 0; i < sizeof watch_only / sizeof watch_only[0] && svc->watch.path_count == 0; i++) {
        const struct ynode *at = NULL;
        if (map_value(body, watch_only[i], &at) && at) {
            char child[KEY_PATH_MAX];
            key_path_child(child, key_path, watch_only[i]);
            return fail(ld, at, child, "applies only to a service with watch:");
        }
    }
    if (check_required(ld, &service_section, body, key, key_path) < 0) {
        return -1;
    }
    envlayers_finish_service(ld, svc, &ld->service_env);
    if (check_probe_own_port(ld, svc, key_path, "ready.http", &svc->ready.probe) < 0 ||
        check_probe_own_port(ld, svc, key_path, svc->live.probe.kind == PROBE_HTTP ? "live.http" : "live.tcp",
                             &svc->live.probe) < 0)
        return -1;
    return 0;
}

static int load_instances(struct loader *ld, const struct ynode *key, const struct ynode *node,
                          const char *key_path, void *target)
{
    struct config *cfg = ld->cfg;
    if (node->kind != YNODE_MAP) {
        return fail(ld, node, key_path, "must be a map of service name to settings, got %s", ynode_kind_name(node));
    }
    cfg->services = cfg_xcalloc(ynode_pairs(node), sizeof(*cfg->services));
    for (size_t i = 0; i < ynode_pairs(node); i++) {
        struct config_service *svc = &cfg->services[cfg->service_count++];
        if (load_service(ld, node->kids[2 * i], node->kids[2 * i + 1], key_path, svc) < 0) {
            return -1;
        }
    }
    return keys_check_depends(ld);
}

static int load_streams(struct loader *ld, const struct ynode *key_node, const struct ynode *node,
                        const char *parent_path, void *target)
{
    struct config *cfg = ld->cfg;
    char key_path[KEY_PATH_MAX];
    if (node->kind != YNODE_MAP) {
        return fail(ld, node, parent_path, "must be a map of event pattern to {retain_events}, got %s",
                    ynode_kind_name(node));
    }
    size_t n = ynode_pairs(node);
    cfg->streams = cfg_xcalloc(n ? n : 1, sizeof *cfg->streams);
    for (size_t i = 0; i < n; i++) {
        const struct ynode *key = node->kids[2 * i];
        const struct ynode *body = node->kids[2 * i + 1];
        key_path_child(key_path, parent_path, key->text);
        struct config_stream *st = &cfg->streams[cfg->stream_count++];
        st->pattern = cfg_xstrdup(key->text);
        st->line = key->line;
        apply_defaults(&stream_section, st);
        if (!topic_pattern_valid(key->text)) {
            return fail(ld, key, key_path, "not an event pattern (dot-separated words, * for one word, # for any)");
        }
        if (!ynode_is_null(body) && load_fixed_map(ld, &stream_section, body, key_path, st) < 0) {
            return -1;
        }
    }
    return 0;
}

static int load_port_base(struct loader *ld, const struct ynode *key, const struct ynode *value,
                          const char *key_path, void *target)
{
    long long base;
    if (value_int(ld, value, key_path, 1, 65535, &base) < 0) {
        return -1;
    }
    ld->cfg->port_base = (int)base;
    ld->cfg->port_base_line = value->line;
    ld->cfg->port_base_col = value->col;
    return 0;
}

/* backends: what would be read unresolved ($(env.X) kept as written) is not checked here. */
static int unresolved(struct loader *ld, const char *text)
{
    return ld->interp.keep_unresolved && strstr(text, "$(") != NULL;
}

static int load_backend_registry(struct loader *ld, const struct ynode *key, const struct ynode *value,
                                 const char *key_path, void *target)
{
    struct config_backends *b = target;
    if (value_string(ld, value, key_path, &b->registry) < 0) {
        return -1;
    }
    struct zkurl url;
    char why[256];
    if (!unresolved(ld, b->registry) && zkurl_parse(b->registry, &url, why, sizeof why) < 0) {
        return fail(ld, value, key_path, "%s", why);
    }
    return 0;
}

static int load_backend_events(struct loader *ld, const struct ynode *key, const struct ynode *value,
                               const char *key_path, void *target)
{
    struct config_backends *b = target;
    if (value_string(ld, value, key_path, &b->events) < 0) {
        return -1;
    }
    /* The full parse is libdevnode's (lib/amqpevents.c); here the shape, and never the value in
     * the message: the URL carries a password. */
    const char *url = b->events;
    if (unresolved(ld, url)) {
        return 0;
    }
    if (strncmp(url, "amqps://", 8) == 0) {
        return fail(ld, value, key_path, "amqps:// (TLS) is not supported: want amqp://user:pass@host:5672/vhost");
    }
    if (strncmp(url, "amqp://", 7) != 0 || url[7] == '\0' || url[7] == '/' || strchr(url, ' ')) {
        return fail(ld, value, key_path,
                    "not an AMQP URL: want amqp://user:pass@host:5672/vhost (the vhost percent-encoded: %%2F for /)");
    }
    return 0;
}

static int load_backend_ip(struct loader *ld, const struct ynode *key, const struct ynode *value,
                           const char *key_path, void *target)
{
    struct config_backends *b = target;
    if (value_string(ld, value, key_path, &b->ip) < 0) {
        return -1;
    }
    struct in_addr addr;
    if (!unresolved(ld, b->ip) && (inet_pton(AF_INET, b->ip, &addr) != 1 || addr.s_addr == htonl(INADDR_ANY))) {
        return fail(ld, value, key_path,
                    "'%s' is not an IPv4 address other machines can call (0.0.0.0 cannot be registered)", b->ip);
    }
    return 0;
}

/* ---- the table: one row per key ---- */

#define COUNT(rows) (sizeof(rows) / sizeof((rows)[0]))
/* The field a generic row stores into, in the struct its section fills. */
#define AT(type, field) .offset = offsetof(type, field), .size = sizeof(((type *)0)->field)

/* Stored as the index of the choice, so the order is enum restart_policy's. */
_Static_assert(RESTART_ALWAYS == 0 && RESTART_ON_FAILURE == 1 && RESTART_NEVER == 2, "restart_choices order");
static const char *const restart_choices[] = {"always", "on-failure", "never", NULL};
static const char *const ready_choices[] = {"notify", "start", NULL};
static const char *const notify_choices[] = {"true", "yes", NULL};
static const char *const bool_choices[] = {"false", "true", NULL}; /* stored as 0 / 1 */

static const struct config_key ready_keys[] = {
    {"notify", KEY_ENUM, KEY_NULL_IS_VALUE, .choices = notify_choices, .load = load_ready_notify,
     .doc = "ready once the worker sends READY=1 to $NOTIFY_SOCKET (sd_notify)"},
    {"log", KEY_STRING, KEY_NULL_IS_VALUE, .load = load_ready_log,
     .doc = "ready once one of its lines matches this POSIX extended regular expression"},
    {"tcp", KEY_STRING, KEY_NULL_IS_VALUE, .load = load_ready_tcp,
     .doc = "ready once a TCP connect to PORT or \"HOST:PORT\" succeeds"},
    {"delay", KEY_DURATION, KEY_NULL_IS_VALUE, .max = CONFIG_DURATION_MAX_MS, .load = load_ready_delay,
     .doc = "ready once it stayed up this long"},
    {"http", KEY_STRING, KEY_NULL_IS_VALUE, .load = load_ready_http,
     .doc = "ready once GET of this path on the instance's PORT (or http://HOST:PORT/path) answers 2xx or 3xx"},
    {"exec", KEY_STRING, KEY_NULL_IS_VALUE, .load = load_ready_exec,
     .doc = "ready once this shell command, run in the instance's environment, exits 0"},
    {"timeout", KEY_DURATION, KEY_NULL_IS_VALUE, .max = CONFIG_DURATION_MAX_MS, .def = 30000, .default_text = "30s",
     AT(struct config_ready, timeout_ms), .doc = "a worker not ready by then is killed and counted as a failed start"},
};
static const struct config_section ready_section = {"ready takes", ready_keys, COUNT(ready_keys)};

static const struct config_key live_keys[] = {
    {"http", KEY_STRING, KEY_NULL_IS_VALUE, .load = load_live_http,
     .doc = "GET of this path on the instance's PORT (or http://HOST:PORT/path); 2xx or 3xx is alive"},
    {"tcp", KEY_STRING, KEY_NULL_IS_VALUE, .load = load_live_tcp,
     .doc = "a TCP connect to PORT, $PORT or HOST:PORT; accepted is alive"},
    {"exec", KEY_STRING, KEY_NULL_IS_VALUE, .load = load_live_exec,
     .doc = "a shell command run in the instance's environment; exit 0 is alive"},
    {"interval", KEY_DURATION, 0, .max = CONFIG_DURATION_MAX_MS, .def = 5000, .default_text = "5s",
     AT(struct config_live, interval_ms), .doc = "time between two probes"},
    {"timeout", KEY_DURATION, 0, .max = CONFIG_DURATION_MAX_MS, .def = 1000, .default_text = "1s",
     AT(struct config_live, timeout_ms), .doc = "a probe not answered by then is a miss"},
    {"failures", KEY_INT, 0, .min = 1, .max = 1000, .def = 3, .default_text = "3",
     AT(struct config_live, failures), .doc = "misses in a row after which the worker is restarted"},
};
static const struct config_section live_section = {"live takes", live_keys, COUNT(live_keys)};

static const struct config_key service_keys[] = {
    {"command", KEY_STRING, KEY_REQUIRED | KEY_NULL_IS_VALUE, .load = load_command,
     .doc = "shell command of each worker, run with /bin/sh -c"},
    {"numprocesses", KEY_INT, 0, .min = 0, .max = 1000, .def = 1, .default_text = "1",
     AT(struct config_service, numprocesses), .doc = "number of workers"},
    {"env", KEY_MAP, KEY_NAMED, .load = load_env, .doc = "extra environment variables of the workers, in file order"},
    {"env_file", KEY_LIST, 0, .load = load_service_env_file,
     .doc = "environment files of this service's workers, in order, over the top-level ones (env: wins)"},
    {"cwd", KEY_STRING, 0, .load = load_cwd, .default_text = "the config file's directory",
     .doc = "working directory of the workers, relative to the config file's directory"},
    {"restart", KEY_ENUM, 0, .choices = restart_choices, .def = RESTART_ALWAYS, .default_text = "always",
     AT(struct config_service, restart), .doc = "when to start a worker again after it exits"},
    {"max_restarts", KEY_INT, 0, .min = 0, .max = 1000000, .def = 0, .default_text = "0",
     AT(struct config_service, max_restarts),
     .doc = "restarts allowed within restart_window; one more and the worker is failed until `devnode restart` "
            "(0: no limit)"},
    {"restart_window", KEY_DURATION, 0, .max = CONFIG_DURATION_MAX_MS, .def = 60000, .default_text = "60s",
     AT(struct config_service, restart_window_ms), .doc = "the time in which max_restarts counts restarts"},
    {"stop_signal", KEY_STRING, 0, .load = load_stop_signal, .default_text = "TERM",
     .doc = "signal that asks a worker to stop: a name (TERM, SIGINT) or a number 1..64"},
    {"stop_timeout", KEY_DURATION, 0, .max = CONFIG_DURATION_MAX_MS, .def = 10000, .default_text = "10s",
     AT(struct config_service, stop_timeout_ms), .doc = "how long after stop_signal a worker is killed"},
    {"sockets", KEY_LIST, 0, .load = load_service_sockets,
     .doc = "names of top-level sockets passed to this service's workers"},
    {"ready", KEY_MAP, 0, .choices = ready_choices, .load = load_ready, AT(struct config_service, ready),
     .section = &ready_section,
     .doc = "when a new worker counts as ready: notify, start, or one of log, tcp, http, exec, delay"},
    {"depends_on", KEY_MAP, KEY_NAMED | KEY_OR_NAMES, .choices = keys_dep_condition_choices,
     .load = keys_load_depends_on, .section = &keys_dep_section,
     .doc = "services started before this one: a list of names, or NAME: ready | started | completed"},
    {"disabled", KEY_ENUM, 0, .choices = bool_choices, .def = 0, .default_text = "false",
     AT(struct config_service, disabled), .doc = "true: kept down unless named or needed by a named service"},
    {"watch", KEY_LIST, 0, .load = load_watch,
     .doc = "paths (globs relative to the config file's folder) whose changes restart this service"},
    {"ignore", KEY_LIST, 0, .load = load_watch_ignore,
     .doc = "paths under watch: whose changes do not count, on top of the default ones (.gitignore's rules)"},
    {"watch_debounce", KEY_DURATION, 0, .max = CONFIG_DURATION_MAX_MS, .def = 200, .default_text = "200ms",
     AT(struct config_service, watch.debounce_ms), .doc = "how long changes must pause before the restart"},
    {"stdin", KEY_ENUM, 0, .choices = bool_choices, .def = 0, .default_text = "false",
     AT(struct config_service, stdin_pipe),
     .doc = "give each worker a pipe for stdin, written by `devnode attach` (default: /dev/null)"},
    {"tty", KEY_ENUM, 0, .choices = bool_choices, .def = 0, .default_text = "false",
     AT(struct config_service, tty),
     .doc = "run each worker on a pseudo-terminal (stdin, stdout and stderr) for `devnode attach`: pdb, REPLs"},
    {"live", KEY_MAP, 0, .load = load_live, AT(struct config_service, live), .section = &live_section,
     .doc = "liveness probe: a worker that misses `failures` probes in a row is restarted"},
};
static const struct config_section service_section = {"a service takes", service_keys, COUNT(service_keys)};

static const struct config_key socket_keys[] = {
    {"host", KEY_STRING, 0, .default_text = DEFAULT_HOST, AT(struct config_socket, host),
     .doc = "address to bind (TCP only)"},
    {"port", KEY_INT, 0, .min = 0, .max = 65535, AT(struct config_socket, port),
     .doc = "TCP port; 0 picks a free port at bind time"},
    {"path", KEY_STRING, 0, .load = load_socket_path,
     .doc = "unix socket path, relative to the config file's directory"},
    {"name", KEY_STRING, KEY_LIST_ONLY, .load = load_skip, .default_text = "socket<index>",
     .doc = "the socket's name (list form only)"},
};
static const struct config_section socket_section = {"a socket takes", socket_keys, COUNT(socket_keys)};

static const struct config_key logs_keys[] = {
    {"buffer_lines", KEY_INT, 0, .min = 1000, .max = 100000000, .def = 200000, .default_text = "200000",
     AT(struct config_logs, buffer_lines), .doc = "size of the in-memory log ring, in lines"},
    {"file_max_mb", KEY_INT, 0, .min = 1, .max = 100000, .def = 64, .default_text = "64",
     AT(struct config_logs, file_max_mb), .doc = "size in MiB at which a log file is rotated"},
    {"keep_files", KEY_INT, 0, .min = 0, .max = 1000, .def = 5, .default_text = "5",
     AT(struct config_logs, keep_files), .doc = "rotated files kept for each log"},
    {"per_service", KEY_ENUM, 0, .choices = bool_choices, .def = 0, .default_text = "false",
     AT(struct config_logs, per_service),
     .doc = "also write logs/<Service>.log per service: plain prefixed lines, rotated like the main log"},
};
static const struct config_section logs_section = {"logs takes", logs_keys, COUNT(logs_keys)};

static const struct config_key stream_keys[] = {
    {"retain_events", KEY_INT, KEY_NULL_IS_VALUE, .min = 1, .max = 1000000000, .def = 100000,
     .default_text = "100000", AT(struct config_stream, retain_events),
     .doc = "at least this many of the newest events are kept"},
};
static const struct config_section stream_section = {"a stream takes", stream_keys, COUNT(stream_keys)};

static const struct config_key backends_keys[] = {
    {"registry", KEY_STRING, 0, .load = load_backend_registry, .default_text = "the node's embedded registry",
     .doc = "a ZooKeeper registry in lymph's layout, zookeeper://host:port[,host:port...][/chroot], handed to the "
            "workers as DEVNODE_REGISTRY"},
    {"events", KEY_STRING, 0, .load = load_backend_events, .default_text = "the node's embedded bus",
     .doc = "RabbitMQ events in lymph's layout, amqp://user:pass@host:5672/vhost, handed to the workers as "
            "DEVNODE_EVENTS (libdevnode's C services; not the Python client yet)"},
    {"ip", KEY_STRING, 0, .load = load_backend_ip, .default_text = "127.0.0.1",
     .doc = "the IPv4 address RPC endpoints bind and register with a remote registry, handed on as DEVNODE_IP "
            "(RPC has no authentication)"},
};
static const struct config_section backends_section = {"backends takes", backends_keys, COUNT(backends_keys)};

#define LYMPH_KEY(name) {name, KEY_IGNORED, 0, .doc = "read by lymph services, ignored by the node"}

/* Sockets load first: services refer to them by name, wherever they sit in the file. */
static const struct config_key top_keys[] = {
    {"instances", KEY_MAP, KEY_NAMED | KEY_LOAD_LAST, .load = load_instances, .section = &service_section,
     .doc = "the services to run, by name"},
    {"sockets", KEY_MAP, KEY_NAMED | KEY_OR_LIST | KEY_LOAD_FIRST, .load = load_sockets, .section = &socket_section,
     .doc = "listening sockets the node opens once and shares with the workers"},
    {"logs", KEY_MAP, 0, AT(struct config, logs), .section = &logs_section, .doc = "log buffering and rotation"},
    {"streams", KEY_MAP, KEY_NAMED | KEY_EMPTY_ITEMS, .load = load_streams, .section = &stream_section,
     .doc = "event patterns the bus keeps in a replayable journal"},
    {"port_base", KEY_INT, 0, .min = 1, .max = 65535, .def = CONFIG_PORT_BASE_DEFAULT, .default_text = "5000",
     AT(struct config, port_base), .load = load_port_base,
     .doc = "first PORT of the blocks of the services without sockets"},
    {"env_file", KEY_LIST, KEY_LOAD_FIRST, .load = load_top_env_file,
     .doc = "environment files of every service's workers, in order, over .env and the shell"},
    {"backends", KEY_MAP, 0, AT(struct config, backends), .section = &backends_section,
     .doc = "remote back ends the workers use instead of the node's (a ZooKeeper registry)"},
    LYMPH_KEY("container"), LYMPH_KEY("interfaces"), LYMPH_KEY("dependencies"), LYMPH_KEY("plugins"),
    LYMPH_KEY("logging"), LYMPH_KEY("debug"), LYMPH_KEY("registry"), LYMPH_KEY("event_system"),
    LYMPH_KEY("components"), LYMPH_KEY("name"),
};
const struct config_section config_top_section = {"the node reads", top_keys, COUNT(top_keys)};

/* The top level checks every key before loading any, then loads in the rows' order (with
 * KEY_LOAD_FIRST / KEY_LOAD_LAST), so what one key refers to is there when it is read. */
int keys_load_top(struct loader *ld, const struct ynode *root)
{
    const struct config_section *sec = &config_top_section;
    apply_defaults(sec, ld->cfg);
    if (!root || ynode_is_null(root)) {
        return 0;
    }
    if (root->kind != YNODE_MAP) {
        char names[512];
        keys_names(sec, false, names, sizeof names);
        return fail(ld, root, "", "the top level must be a map (%s), got %s", names, ynode_kind_name(root));
    }
    for (size_t i = 0; i < ynode_pairs(root); i++) {
        const struct ynode *key = root->kids[2 * i];
        const struct config_key *row = section_find(sec, key->text, false);
        if (!row) {
            return fail_unknown(ld, sec, key, key->text, false);
        }
        if (row->kind == KEY_IGNORED) {
            add_note(ld->cfg, "%s: read by lymph services, ignored by the node", key->text);
        }
    }
    static const unsigned phases[] = {KEY_LOAD_FIRST, 0, KEY_LOAD_LAST};
    for (size_t p = 0; p < COUNT(phases); p++) {
        for (size_t r = 0; r < sec->count; r++) {
            const struct config_key *row = &sec->keys[r];
            if (row->kind == KEY_IGNORED || (row->flags & (KEY_LOAD_FIRST | KEY_LOAD_LAST)) != phases[p]) {
                continue;
            }
            const struct ynode *key = NULL;
            const struct ynode *value = map_value(root, row->name, &key);
            if (value && load_value(ld, row, key, value, row->name, ld->cfg) < 0) {
                return -1;
            }
        }
    }
    return 0;
}
