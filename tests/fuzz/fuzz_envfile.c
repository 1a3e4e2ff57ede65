/* fuzz_envfile: config/envfile.c, the dialect of .env and env_file: files. Input: the file.
 * ${VAR} sees the file's own earlier assignments, then a small fixed environment. Checks: a
 * parse fails with one line "f.env:LINE: ..." naming a line of the input, or gives names of
 * the documented form, in line order, values within ENVFILE_VALUE_MAX; and every value
 * written back single-quoted and double-quoted (escaped) parses to itself. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfgalloc.h"
#include "config/envfile.h"
#include "tests/fuzz/fuzz_util.h"

/* What the harness keeps of the assignments: enough for ${VAR} to see them, bounded so that
 * `B1=${A}`, `B2=${A}`... of a 1 MiB A cannot take gigabytes. */
#define KEEP_BYTES_MAX (8u << 20)

struct var {
    char *name, *value;
};

struct state {
    struct var *vars;
    size_t count, cap, kept_bytes;
    size_t assignments;
    int last_line;
    int max_line;
    bool order_ok;
    /* The first assignment, for the round trips. */
    char *first_name, *first_value;
};

static const char *const shell[] = {"HOME", "/home/fuzz", "EMPTY", "", "PATH", "/usr/bin:/bin", NULL};

static const char *lookup(void *ctx, const char *name)
{
    struct state *st = ctx;
    for (size_t i = st->count; i-- > 0;)
        if (strcmp(st->vars[i].name, name) == 0)
            return st->vars[i].value;
    for (const char *const *s = shell; *s; s += 2)
        if (strcmp(s[0], name) == 0)
            return s[1];
    return NULL;
}

static bool name_ok(const char *n)
{
    if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || *n == '_'))
        return false;
    for (n++; *n; n++)
        if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') || *n == '_'))
            return false;
    return true;
}

static void assign(void *ctx, const char *name, const char *value, int line)
{
    struct state *st = ctx;
    FUZZ_CHECK(name_ok(name), "name '%s'", name);
    FUZZ_CHECK(strlen(value) <= ENVFILE_VALUE_MAX, "value of %s is %zu bytes", name, strlen(value));
    FUZZ_CHECK(line >= 1 && line <= st->max_line, "line %d of %d", line, st->max_line);
    st->order_ok &= line > st->last_line;
    st->last_line = line;
    if (st->assignments++ == 0) {
        st->first_name = cfg_xstrdup(name);
        st->first_value = cfg_xstrdup(value);
    }
    size_t len = strlen(value);
    if (st->kept_bytes + len > KEEP_BYTES_MAX)
        return;
    st->kept_bytes += len;
    st->vars = cfg_grow(st->vars, &st->cap, st->count + 1, sizeof *st->vars);
    st->vars[st->count++] = (struct var){cfg_xstrdup(name), cfg_xstrdup(value)};
}

static void state_free(struct state *st)
{
    for (size_t i = 0; i < st->count; i++) {
        free(st->vars[i].name);
        free(st->vars[i].value);
    }
    free(st->vars);
    free(st->first_name);
    free(st->first_value);
}

/* Parses `text` alone and checks it assigns `value` to `name` once. */
static void round_trip(const char *text, const char *name, const char *value, const char *how)
{
    struct state st = {.max_line = 1 << 30, .order_ok = true};
    struct envfile_reader r = {.lookup = lookup, .assign = assign, .ctx = &st};
    char err[512] = "";
    int rc = envfile_parse(text, strlen(text), "f.env", &r, err, sizeof err);
    FUZZ_CHECK(rc == 0, "%s value of %s does not parse back: %s", how, name, err);
    FUZZ_CHECK(st.assignments == 1 && strcmp(st.first_name, name) == 0, "%s: %zu assignments", how, st.assignments);
    FUZZ_CHECK(strcmp(st.first_value, value) == 0, "%s value of %s comes back different", how, name);
    state_free(&st);
}

FUZZ_NO_COVERAGE static void check_round_trips(const char *name, const char *value)
{
    size_t len = strlen(value);
    if (len > 4096)
        return;
    struct cfg_text t = {0};
    if (!strchr(value, '\'')) {
        cfg_text_append(&t, name, strlen(name));
        cfg_text_append(&t, "='", 2);
        cfg_text_append(&t, value, len);
        cfg_text_append(&t, "'\n", 2);
        round_trip(t.s, name, value, "single-quoted");
        t.len = 0;
    }
    cfg_text_append(&t, "export ", 7);
    cfg_text_append(&t, name, strlen(name));
    cfg_text_append(&t, "=\"", 2);
    for (const char *p = value; *p; p++) {
        if (*p == '"' || *p == '\\' || *p == '$')
            cfg_text_append(&t, "\\", 1);
        cfg_text_append(&t, p, 1);
    }
    cfg_text_append(&t, "\" # written back\n", 17);
    round_trip(t.s, name, value, "double-quoted");
    free(t.s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    struct state st = {.max_line = lines, .order_ok = true};
    struct envfile_reader r = {.lookup = lookup, .assign = assign, .ctx = &st};
    char err[512] = "";
    int rc = envfile_parse((const char *)data, size, "f.env", &r, err, sizeof err);
    if (rc < 0) {
        int line = 0, used = 0;
        FUZZ_CHECK(sscanf(err, "f.env:%d: %n", &line, &used) == 1 && used > 0, "error without f.env:LINE: '%s'", err);
        FUZZ_CHECK(line >= 1 && line <= lines, "error names line %d of %d: '%s'", line, lines, err);
        FUZZ_CHECK(!strchr(err, '\n') && strlen(err) < sizeof err - 1, "error not one whole line: '%s'", err);
    } else {
        FUZZ_CHECK(rc == 0, "rc %d", rc);
        FUZZ_CHECK(st.order_ok, "assignments out of line order");
        if (st.first_name)
            check_round_trips(st.first_name, st.first_value);
    }
    state_free(&st);
    return 0;
}
