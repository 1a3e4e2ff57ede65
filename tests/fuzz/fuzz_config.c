/* fuzz_config: config/ end to end (libyaml parse, tree building with anchors and
 * aliases, interpolation, validation) on files written to a scratch directory in RAM.
 * Input: the .lymph.yml; when it holds a NUL byte (never valid in a config), what follows
 * the first NUL is the --vars file. $(env.FUZZ_*) names below resolve. Checks: a load either
 * fails with a message or yields values inside their documented ranges; config_free frees all. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/depends.h"
#include "tests/fuzz/fuzz_util.h"

static char dir[256], config_path[300], vars_path[300];

static void cleanup(void)
{
    unlink(config_path);
    unlink(vars_path);
    rmdir(dir);
}

static void setup(void)
{
    fuzz_scratch_dir(dir, sizeof dir, "config");
    snprintf(config_path, sizeof config_path, "%s/.lymph.yml", dir);
    snprintf(vars_path, sizeof vars_path, "%s/vars.yml", dir);
    atexit(cleanup);
    setenv("FUZZ_NAME", "Greeting", 1);
    setenv("FUZZ_PORT", "4080", 1);
    setenv("FUZZ_EMPTY", "", 1);
    setenv("FUZZ_REF", "$(env.FUZZ_NAME)", 1); /* interpolation is one pass: stays literal */
    unsetenv("FUZZ_UNSET");
}

FUZZ_NO_COVERAGE static void check_loaded(const struct config *cfg)
{
    FUZZ_CHECK(cfg->path && cfg->dir && cfg->path[0] == '/' && cfg->dir[0] == '/', "path or dir not absolute");
    for (size_t i = 0; i < cfg->service_count; i++) {
        const struct config_service *s = &cfg->services[i];
        FUZZ_CHECK(s->name && s->name[0] && s->command && s->command[0], "service %zu lacks name or command", i);
        for (const char *p = s->name; *p; p++)
            FUZZ_CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                           *p == '_' || *p == '-',
                       "service name '%s'", s->name);
        FUZZ_CHECK(config_find_service(cfg, s->name) != NULL, "service '%s' not found by name", s->name);
        FUZZ_CHECK(s->numprocesses >= 0 && s->numprocesses <= 1000, "numprocesses %d", s->numprocesses);
        FUZZ_CHECK(s->stop_signal >= 1 && s->stop_signal <= 64, "stop_signal %d", s->stop_signal);
        FUZZ_CHECK(s->stop_timeout_ms <= 3600000u, "stop_timeout_ms %u", s->stop_timeout_ms);
        FUZZ_CHECK(s->cwd && s->cwd[0] == '/', "cwd not absolute");
        FUZZ_CHECK(s->command[0] != ' ' && s->command[strlen(s->command) - 1] != ' ', "command not trimmed");
        for (size_t k = 0; k < s->env_count; k++) {
            FUZZ_CHECK(s->env[k].name && s->env[k].value, "env %zu of '%s' incomplete", k, s->name);
            FUZZ_CHECK((s->env[k].file == NULL) == (s->env[k].layer == ENV_FROM_ENV), "env %s of '%s': origin",
                       s->env[k].name, s->name);
            for (size_t j = 0; j < k; j++) /* merged: one entry per name */
                FUZZ_CHECK(strcmp(s->env[j].name, s->env[k].name) != 0, "env %s of '%s' twice", s->env[k].name,
                           s->name);
        }
        if (s->ready.kind == READY_LOG)
            FUZZ_CHECK(s->ready.log_pattern != NULL, "ready log without a pattern");
        if (s->ready.kind == READY_TCP)
            FUZZ_CHECK(s->ready.tcp_host && s->ready.tcp_port >= 1 && s->ready.tcp_port <= 65535, "ready tcp");
        for (size_t k = 0; k < s->socket_count; k++)
            FUZZ_CHECK(s->sockets[k] != NULL, "socket ref %zu of '%s'", k, s->name);
        FUZZ_CHECK(s->disabled == 0 || s->disabled == 1, "disabled %d", s->disabled);
        for (size_t k = 0; k < s->dep_count; k++) {
            const struct config_dep *d = &s->deps[k];
            const struct config_service *dep = config_find_service(cfg, d->name);
            FUZZ_CHECK(dep && dep != s, "dependency %s of '%s' unknown or itself", d->name, s->name);
            FUZZ_CHECK(d->condition <= DEP_COMPLETED && (d->restart == 0 || d->restart == 1), "dependency %s", d->name);
            FUZZ_CHECK(d->condition != DEP_COMPLETED || dep->restart != RESTART_ALWAYS, "completed of %s", d->name);
        }
    }
    /* A loaded config's graph has no cycle: layers exist and every edge goes down a layer. */
    struct depgraph g;
    config_depgraph(cfg, &g);
    size_t *layer = calloc(cfg->service_count ? cfg->service_count : 1, sizeof *layer);
    FUZZ_CHECK(layer && depgraph_layers(&g, layer) >= 0, "a loaded config has a cycle");
    for (size_t i = 0; i < g.count; i++)
        for (size_t k = 0; k < g.nodes[i].dep_count; k++)
            FUZZ_CHECK(layer[g.nodes[i].deps[k]] < layer[i], "edge %zu -> %zu not down a layer", i, g.nodes[i].deps[k]);
    free(layer);
    depgraph_free(&g);
    for (size_t i = 0; i < cfg->socket_count; i++) {
        const struct config_socket *so = &cfg->sockets[i];
        FUZZ_CHECK(so->name != NULL, "socket %zu has no name", i);
        FUZZ_CHECK((so->path && !so->host && so->port == -1) || (!so->path && so->host && so->port >= 0 &&
                                                                   so->port <= 65535),
                   "socket '%s': host %p port %d path %p", so->name, (void *)so->host, so->port, (void *)so->path);
    }
    for (size_t i = 0; i < cfg->stream_count; i++)
        FUZZ_CHECK(cfg->streams[i].pattern && cfg->streams[i].retain_events > 0, "stream %zu", i);
    for (size_t i = 0; i < cfg->note_count; i++)
        FUZZ_CHECK(cfg->notes[i] != NULL, "note %zu", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0])
        setup();
    const uint8_t *nul = memchr(data, '\0', size);
    size_t config_len = nul ? (size_t)(nul - data) : size;
    fuzz_write_file(config_path, data, config_len);
    if (nul)
        fuzz_write_file(vars_path, nul + 1, size - config_len - 1);

    struct config cfg;
    char err[512];
    memset(err, 'X', sizeof err);
    int rc = config_load(config_path, nul ? vars_path : NULL, &cfg, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == -1, "config_load returned %d", rc);
    FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL, "error message not terminated");
    if (rc < 0) {
        FUZZ_CHECK(err[0] != '\0', "failed without a message");
        FUZZ_CHECK(cfg.services == NULL && cfg.sockets == NULL && cfg.path == NULL,
                   "failed load left something to free");
    } else {
        check_loaded(&cfg);
        config_free(&cfg);
    }

    /* The signal parser the CLI also uses, on the input's first line. */
    char sig[24];
    size_t sl = 0;
    while (sl < size && sl < sizeof sig - 1 && data[sl] != '\n')
        sl++;
    memcpy(sig, data, sl);
    sig[sl] = '\0';
    int s = config_parse_signal(sig);
    FUZZ_CHECK(s == -1 || (s >= 1 && s <= 64), "config_parse_signal('%s') = %d", sig, s);
    if (s > 0) {
        const char *name = config_signal_name(s);
        FUZZ_CHECK(name != NULL, "no name for signal %d", s);
        if (strcmp(name, "?") != 0)
            FUZZ_CHECK(config_parse_signal(name) == s, "signal name %s does not round-trip", name);
    }
    return 0;
}
