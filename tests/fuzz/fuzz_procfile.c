/* fuzz_procfile: config/procfile.c's parser of Procfiles, its .lymph.yml rendering and
 * foreman's formation. Input: the Procfile; after the first NUL (never valid in one), a
 * formation (`web=2,all=1`) up to the next NUL. Checks: a parse either fails with a message
 * naming the file or yields valid names and trimmed, NUL-free, non-empty commands; the
 * rendered YAML parses and reads back to exactly the entries and counts; the formation's
 * counts stay 0..1000; config_load of the same bytes as a file named Procfile agrees with the
 * parse (fails or succeeds alike, the same services) and names the file in its messages. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/procfile.h"
#include "config/yamltree.h"
#include "tests/fuzz/fuzz_util.h"

static char dir[256], procfile_path[300];

static void cleanup(void)
{
    unlink(procfile_path);
    rmdir(dir);
}

/* config_load of the same bytes, written to a file named Procfile: the parse decides. */
FUZZ_NO_COVERAGE static void check_config_load(const char *text, size_t len, const struct procfile *pf, int parsed)
{
    if (!dir[0]) {
        fuzz_scratch_dir(dir, sizeof dir, "procfile");
        snprintf(procfile_path, sizeof procfile_path, "%s/Procfile", dir);
        atexit(cleanup);
    }
    FILE *f = fopen(procfile_path, "wb");
    if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0)
        abort();
    struct config cfg;
    char err[512] = "";
    int rc = config_load_unresolved(procfile_path, &cfg, err, sizeof err);
    if (!parsed) {
        FUZZ_CHECK(rc < 0 && strncmp(err, procfile_path, strlen(procfile_path)) == 0, "load of a bad Procfile: '%s'",
                   err);
        return;
    }
    if (rc < 0) { /* only a value the key table refuses after interpolation, at the Procfile's place */
        FUZZ_CHECK(strncmp(err, procfile_path, strlen(procfile_path)) == 0, "message without the file: '%s'", err);
        return;
    }
    FUZZ_CHECK(cfg.service_count == pf->count, "%zu services for %zu entries", cfg.service_count, pf->count);
    for (size_t i = 0; i < pf->count; i++) {
        FUZZ_CHECK(strcmp(cfg.services[i].name, pf->entries[i].name) == 0, "service %zu is '%s'", i,
                   cfg.services[i].name);
        FUZZ_CHECK(cfg.services[i].numprocesses == 1, "numprocesses %d", cfg.services[i].numprocesses);
    }
    config_free(&cfg);
}

static int name_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
              s[n] == '_' || s[n] == '-'))
            return 0;
    return n > 0 && n <= PROCFILE_NAME_MAX;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t text_len = nul ? (size_t)(nul - text) : size;
    char *spec = NULL;
    if (nul) {
        size_t rest = size - text_len - 1;
        size_t spec_len = strnlen(nul + 1, rest);
        spec = malloc(spec_len + 1);
        if (!spec)
            abort();
        memcpy(spec, nul + 1, spec_len);
        spec[spec_len] = '\0';
    }

    struct procfile pf;
    char err[512] = "";
    if (procfile_parse("Procfile", text, text_len, &pf, err, sizeof err) < 0) {
        FUZZ_CHECK(strncmp(err, "Procfile:", 9) == 0, "error without the file: '%s'", err);
        FUZZ_CHECK(pf.entries == NULL && pf.count == 0, "failed parse left entries");
        check_config_load(text, text_len, &pf, 0);
        free(spec);
        return 0;
    }
    FUZZ_CHECK(pf.count > 0, "no entries but no error");
    struct procfile_formation f;
    int have_formation = spec && procfile_formation_parse(spec, &f, err, sizeof err) == 0;
    int *counts = malloc(pf.count * sizeof *counts);
    if (!counts)
        abort();
    for (size_t i = 0; i < pf.count; i++) {
        const struct procfile_entry *e = &pf.entries[i];
        FUZZ_CHECK(name_ok(e->name), "bad name '%s'", e->name);
        size_t len = strlen(e->command);
        FUZZ_CHECK(len > 0 && e->command[0] != ' ' && e->command[0] != '\t' && e->command[len - 1] != ' ' &&
                       e->command[len - 1] != '\t' && e->command[len - 1] != '\r',
                   "command of %s not trimmed: '%s'", e->name, e->command);
        FUZZ_CHECK(!strchr(e->command, '\n'), "command of %s spans lines", e->name);
        FUZZ_CHECK(e->line >= 1, "line %d", e->line);
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(strcmp(pf.entries[k].name, e->name) != 0, "duplicate %s", e->name);
        counts[i] = have_formation ? procfile_formation_count(&f, e->name) : 1;
        FUZZ_CHECK(counts[i] >= 0 && counts[i] <= 1000, "count %d", counts[i]);
    }

    char *yaml = procfile_to_yaml(&pf, counts, "Procfile");
    struct ydiag d = {err, sizeof err};
    struct ynode *root = NULL;
    FUZZ_CHECK(ytree_parse_text(&d, "gen", yaml, strlen(yaml), &root) == 0, "rendered YAML does not parse: %s", err);
    FUZZ_CHECK(root && root->kind == YNODE_MAP && ynode_pairs(root) == 1, "rendered root");
    const struct ynode *inst = root->kids[1];
    FUZZ_CHECK(inst->kind == YNODE_MAP && ynode_pairs(inst) == pf.count, "instances");
    for (size_t i = 0; i < pf.count; i++) {
        const struct ynode *svc = inst->kids[2 * i + 1];
        FUZZ_CHECK(strcmp(inst->kids[2 * i]->text, pf.entries[i].name) == 0, "name %zu reads back as '%s'", i,
                   inst->kids[2 * i]->text);
        FUZZ_CHECK(svc->kind == YNODE_MAP && ynode_pairs(svc) == 2, "service %zu", i);
        FUZZ_CHECK(strcmp(svc->kids[1]->text, pf.entries[i].command) == 0, "command %zu reads back as '%s'", i,
                   svc->kids[1]->text);
        char n[16];
        snprintf(n, sizeof n, "%d", counts[i]);
        FUZZ_CHECK(strcmp(svc->kids[3]->text, n) == 0, "count %zu", i);
    }
    ytree_free(root);
    free(yaml);
    free(counts);
    check_config_load(text, text_len, &pf, 1);
    if (have_formation)
        procfile_formation_free(&f);
    procfile_free(&pf);
    free(spec);
    return 0;
}
