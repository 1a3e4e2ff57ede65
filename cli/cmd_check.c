/* cmd_check: `devnode check`: validates .lymph.yml (and what it names on this machine: cwd
 * directories, programs) and shows what `up` would run, without starting anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/envfile.h"
#include "config/depends.h"
#include "node/preflight.h"
#include "node/pyclient.h"
#include "sockets/sockets.h"

static const char *restart_name(enum restart_policy p)
{
    return p == RESTART_ALWAYS ? "always" : p == RESTART_ON_FAILURE ? "on-failure" : "never";
}

/* "GET http://127.0.0.1:$PORT/healthz passes (2xx or 3xx)", as the node will probe it. */
static void probe_text(const struct config_probe *p, char *buf, size_t cap)
{
    char port[16] = "$PORT";
    if (p->port)
        snprintf(port, sizeof port, "%d", p->port);
    int v6 = p->host && strchr(p->host, ':');
    if (p->kind == PROBE_HTTP)
        snprintf(buf, cap, "GET http://%s%s%s:%s%s passes (2xx or 3xx)", v6 ? "[" : "", p->host, v6 ? "]" : "",
                 port, p->path);
    else if (p->kind == PROBE_TCP)
        snprintf(buf, cap, "tcp connect to %s%s%s:%s", v6 ? "[" : "", p->host, v6 ? "]" : "", port);
    else
        snprintf(buf, cap, "`%s` exits 0", p->command);
}

/* The liveness probe: what it probes, how often, and when it restarts the worker. */
static void print_live(const struct config_live *l)
{
    if (l->probe.kind == PROBE_NONE)
        return;
    char probe[600];
    probe_text(&l->probe, probe, sizeof probe);
    printf("      live: %s, every %gs, timeout %gs; restarted after %d miss%s in a row\n", probe,
           l->interval_ms / 1000.0, l->timeout_ms / 1000.0, l->failures, l->failures == 1 ? "" : "es");
}

/* The readiness check as `up` will run it, so a wrong guess shows before anything starts. */
static void print_ready(const struct config_ready *r)
{
    switch (r->kind) {
    case READY_NOTIFY:
        printf("      ready: notify (sd_notify READY=1), timeout %.1fs\n", r->timeout_ms / 1000.0);
        break;
    case READY_LOG:
        printf("      ready: a line matching /%s/, timeout %.1fs\n", r->log_pattern, r->timeout_ms / 1000.0);
        break;
    case READY_TCP:
        printf("      ready: tcp connect to %s:%d, timeout %.1fs\n", r->tcp_host, r->tcp_port,
               r->timeout_ms / 1000.0);
        break;
    case READY_DELAY:
        printf("      ready: up for %.1fs\n", r->delay_ms / 1000.0);
        break;
    case READY_HTTP:
    case READY_EXEC: {
        char probe[600];
        probe_text(&r->probe, probe, sizeof probe);
        printf("      ready: %s, timeout %.1fs\n", probe, r->timeout_ms / 1000.0);
        break;
    }
    default:
        printf("      ready: when started\n");
        break;
    }
}

/* Which PORT the service's instances get and why (docs/config.md "PORT"). */
static void print_port(const struct config *cfg, const struct config_service *s)
{
    const struct config_socket *sock = NULL;
    int first = config_block_port(s, 0), n = s->numprocesses;
    int last_index = (n < CONFIG_PORT_BLOCK ? n : CONFIG_PORT_BLOCK) - 1;
    switch (config_service_port(cfg, s, &sock)) {
    case PORT_FROM_ENV:
        printf("      PORT %s (its env: PORT)\n", config_service_env(s, "PORT"));
        break;
    case PORT_FROM_SOCKET:
        if (sock->port)
            printf("      PORT %d (the port of socket %s)\n", sock->port, sock->name);
        else
            printf("      PORT the port of socket %s (picked at start)\n", sock->name);
        break;
    case PORT_FROM_NONE:
        printf("      PORT none (its sockets are unix sockets)\n");
        break;
    case PORT_FROM_BLOCK: {
        int block_last = s->port_first + CONFIG_PORT_BLOCK - 1 > 65535 ? 65535 : s->port_first + CONFIG_PORT_BLOCK - 1;
        if (n == 0)
            printf("      PORT none while scaled to 0 (block %d-%d)\n", s->port_first, block_last);
        else if (last_index == 0)
            printf("      PORT %d (block %d-%d)\n", first, s->port_first, block_last);
        else
            printf("      PORT %d-%d (block %d-%d)%s\n", first, config_block_port(s, last_index), s->port_first,
                   block_last, n > CONFIG_PORT_BLOCK ? "; instances past the block get none" : "");
        break;
    }
    }
}

/* A value on one line: as it is when plain, else C-escaped in double quotes; a secret's masked. */
static void print_value(const char *name, const char *value)
{
    if (value[0] && envfile_name_is_secret(name)) {
        fputs("********", stdout);
        return;
    }
    int plain = 1;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        plain &= *p >= 0x20 && *p != 0x7f && *p != '"' && *p != '\\';
    if (plain) {
        fputs(value, stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p == '\t')
            fputs("\\t", stdout);
        else if (*p == '\r')
            fputs("\\r", stdout);
        else if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* An env file's line, named from the project dir when it is inside it. */
static void print_origin(const struct config *cfg, const struct config_env_var *v)
{
    if (!v->file) {
        printf("env:, line %d", v->line);
        return;
    }
    size_t dir_len = strlen(cfg->dir);
    const char *file = v->file;
    if (strncmp(file, cfg->dir, dir_len) == 0 && file[dir_len] == '/')
        file += dir_len + 1;
    printf("%s:%d", file, v->line);
}

/* Whether a .env line after index i sets the same name (the last one is the one that counts). */
static int find_later(const struct config *cfg, size_t i)
{
    for (size_t k = i + 1; k < cfg->dotenv_count; k++)
        if (strcmp(cfg->dotenv[k].name, cfg->dotenv[i].name) == 0)
            return 1;
    return 0;
}

/* Each variable the config gives the workers, with its final value and where it comes from
 * (docs/config.md "Environment files"), and the .env lines that lost to the shell. */
static void print_env(const struct config *cfg, const struct config_service *s)
{
    for (size_t e = 0; e < s->env_count; e++) {
        const struct config_env_var *v = &s->env[e];
        printf("      %s=", v->name);
        print_value(v->name, v->value);
        fputs("  (", stdout);
        print_origin(cfg, v);
        puts(")");
    }
    for (size_t e = 0; e < cfg->dotenv_count; e++) {
        const struct config_env_var *v = &cfg->dotenv[e];
        const char *shell = getenv(v->name);
        if (config_service_env(s, v->name) || find_later(cfg, e))
            continue; /* a higher layer or a later .env line has it */
        int port = strcmp(v->name, "PORT") == 0; /* envlayers leaves it out, as the shell's */
        if (!port && !shell)
            continue;
        printf("      %s=", v->name);
        print_value(v->name, port ? v->value : shell);
        fputs(port ? "  (" : "  (the shell, over ", stdout);
        print_origin(cfg, v);
        puts(port ? ", not used: each instance gets its own PORT, below)" : ")");
    }
}

/* What the service waits for before it starts (docs/dependencies.md). */
static void print_depends(const struct config_service *s)
{
    if (s->disabled)
        printf("      disabled: kept down unless named or needed (`up` does not act on it yet)\n");
    if (!s->dep_count)
        return;
    printf("      depends_on:");
    for (size_t k = 0; k < s->dep_count; k++)
        printf("%s %s (%s%s)", k ? "," : "", s->deps[k].name, config_dep_condition_name(s->deps[k].condition),
               s->deps[k].restart ? ", restart: true" : "");
    printf("\n");
}

/* The layers of the graph: each line may start in parallel once the lines above are up. */
static void print_start_order(const struct config *cfg)
{
    size_t n = cfg->service_count;
    struct depgraph g;
    config_depgraph(cfg, &g);
    size_t *layer = calloc(n, sizeof *layer), *order = calloc(n, sizeof *order);
    if (layer && order && depgraph_layers(&g, layer) > 1) {
        depgraph_start_order(&g, layer, order);
        printf("start order (one line starts in parallel once the lines above are up; stop runs bottom up):\n");
        for (size_t i = 0; i < n; i++) {
            size_t l = layer[order[i]];
            if (i == 0 || layer[order[i - 1]] != l)
                printf("%s  %zu. ", i ? "\n" : "", l + 1);
            else
                printf(", ");
            printf("%s", cfg->services[order[i]].name);
        }
        printf("\n");
    }
    free(order);
    free(layer);
    depgraph_free(&g);
}

static const struct cli_option options[] = {
    {"vars", 0, 1, 'V'},
    {"port-base", 0, 1, 'P'},
    {"no-dotenv", 0, 0, CLI_OPT_NO_DOTENV},
    CLI_OPTION_FORMATION,
    {0},
};

static int cmd_check(struct cli_args *args)
{
    const char *vars = cli_arg(args, 'V') ? cli_arg(args, 'V') : getenv("LYMPH_VARS");
    const char *port_base = cli_arg(args, 'P');
    if (args->argc) {
        cli_error("check: unexpected argument '%s'", args->argv[0]);
        return CLI_USAGE;
    }
    struct config cfg;
    struct preflight pf;
    /* What `up` would refuse on this machine, refused here too. */
    if (cli_load_config(args, vars, port_base, &cfg, &pf) < 0)
        return CLI_USAGE;
    int instances = 0;
    for (size_t i = 0; i < cfg.service_count; i++)
        instances += cfg.services[i].numprocesses;
    printf("%s: ok, %zu service%s, %d instance%s, %zu socket%s\n", cfg.path, cfg.service_count,
           cfg.service_count == 1 ? "" : "s", instances, instances == 1 ? "" : "s", cfg.socket_count,
           cfg.socket_count == 1 ? "" : "s");
    for (size_t i = 0; i < cfg.service_count; i++) {
        const struct config_service *s = &cfg.services[i];
        printf("  %s x%d  restart=%s stop=%s/%.1fs cwd=%s\n", s->name, s->numprocesses,
               restart_name(s->restart), config_signal_name(s->stop_signal), s->stop_timeout_ms / 1000.0,
               s->cwd);
        printf("      $ %s\n", s->command);
        print_env(&cfg, s);
        print_ready(&s->ready);
        print_live(&s->live);
        if (s->max_restarts)
            printf("      max_restarts=%d within %gs, then failed\n", s->max_restarts, s->restart_window_ms / 1000.0);
        print_port(&cfg, s);
        print_depends(s);
    }
    print_start_order(&cfg);
    if (cfg.socket_count) {
        printf("sockets:\n");
        for (size_t i = 0; i < cfg.socket_count; i++) {
            const struct config_socket *k = &cfg.sockets[i];
            if (k->path)
                printf("  %s  unix:%s\n", k->name, k->path);
            else
                printf("  %s  %s:%d%s\n", k->name, k->host, k->port, k->port == 0 ? " (any free port)" : "");
        }
    }
    if (cfg.stream_count) {
        printf("streams:\n");
        for (size_t i = 0; i < cfg.stream_count; i++)
            printf("  %s  retain_events=%llu\n", cfg.streams[i].pattern,
                   (unsigned long long)cfg.streams[i].retain_events);
    }
    int warned = 0;
    for (size_t i = 0; i < cfg.service_count; i++) {
        char warning[1024];
        if (!sockets_listen_pid_warning(&cfg, &cfg.services[i], warning, sizeof warning))
            continue;
        if (!warned++)
            printf("warnings:\n");
        printf("  %s\n", warning);
    }
    for (size_t i = 0; i < cfg.service_count; i++) { /* the Python interpreter trap (node/pyclient.c) */
        char warning[8192];
        if (!pyclient_check_interpreter(&cfg, &cfg.services[i], warning, sizeof warning))
            continue;
        if (!warned++)
            printf("warnings:\n");
        printf("  %s\n", warning);
    }
    for (size_t i = 0; i < cfg.service_count; i++)
        for (size_t k = 0; k < cfg.services[i].dep_count; k++) {
            const struct config_service *dep = config_find_service(&cfg, cfg.services[i].deps[k].name);
            if (dep->numprocesses > 0)
                continue;
            if (!warned++)
                printf("warnings:\n");
            printf("  %s depends on %s, which has numprocesses: 0, so there is nothing to wait for\n",
                   cfg.services[i].name, dep->name);
        }
    for (size_t i = 0; i < pf.warning_count; i++) {
        if (!warned++)
            printf("warnings:\n");
        printf("  %s\n", pf.warnings[i]);
    }
    if (cfg.note_count) {
        printf("notes:\n");
        for (size_t i = 0; i < cfg.note_count; i++)
            printf("  %s\n", cfg.notes[i]);
    }
    preflight_free(&pf);
    config_free(&cfg);
    return CLI_OK;
}

const struct cli_command cmd_check_entry = {
    .name = "check",
    .usage = "[-c PATH] [--vars FILE] [--port-base N] [--no-dotenv] [-m NAME=N,...]",
    .summary = "validate .lymph.yml and show what would run",
    .flags = CLI_NEEDS_PROJECT,
    .options = options,
    .run = cmd_check,
};
