/* export/systemd: one .lymph.yml to systemd units, keeping what devnode gives a worker (the
 * shared sockets in the same fd order, the exec'd command, its environment, restart and stop
 * settings) and naming what systemd has no equivalent for, in the units and to the caller.
 * It never touches the file system: the caller writes the files and looks programs up. */
#include "export/systemd.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/shellcmd.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "export/sdquote.h"
#include "sockets/sockets.h"

#define MAX_PASSED 64

/* Every key of config/keys.c, decided: exported (how) or not (why). '*' is a name the user
 * picks. tests/unit/test_export.c walks the key table and fails on a key missing here. */
static const struct key_decision {
    const char *path;
    int exported;
    const char *how;
} decisions[] = {
    {"instances", 1, "a template unit PROJECT-NAME@.service per service"},
    {"instances.*.command", 1, "ExecStart= (directly, or through /bin/sh -c with exec on its last command)"},
    {"instances.*.numprocesses", 1, "the target wants instances 0..N-1"},
    {"instances.*.env", 1, "EnvironmentFile=%Y/PROJECT-NAME.env, a file of mode 0600 beside the units"},
    {"instances.*.env_file", 1, "EnvironmentFile=%Y/PROJECT-NAME.env, the files' values as devnode read and expanded "
                                "them at export (systemd's own reading has no ${VAR}, `export ` or layers)"},
    {"instances.*.cwd", 1, "WorkingDirectory="},
    {"instances.*.restart", 1, "Restart="},
    {"instances.*.max_restarts", 1, "StartLimitBurst= (one more: systemd counts the first start too)"},
    {"instances.*.restart_window", 1, "StartLimitIntervalSec="},
    {"instances.*.stop_signal", 1, "KillSignal="},
    {"instances.*.stop_timeout", 1, "TimeoutStopSec="},
    {"instances.*.sockets", 1, "Sockets="},
    {"instances.*.ready", 1, "Type="},
    {"instances.*.ready.notify", 1, "Type=notify"},
    {"instances.*.ready.log", 0,
     "systemd has no readiness by log line: the unit counts as started once its program runs (Type=exec)"},
    {"instances.*.ready.tcp", 0,
     "systemd has no readiness by TCP connect: the unit counts as started once its program runs (Type=exec)"},
    {"instances.*.ready.delay", 1, "ExecStartPost=/bin/sleep"},
    {"instances.*.ready.http", 0,
     "systemd has no readiness by HTTP: the unit counts as started once its program runs (Type=exec); an "
     "exec probe such as `curl -fsS http://127.0.0.1:$PORT/healthz` is exported"},
    {"instances.*.ready.exec", 1, "ExecStartPost=/bin/sh -c 'until COMMAND; do sleep 0.2; done' within "
                                  "TimeoutStartSec="},
    {"instances.*.live", 0, "systemd has no liveness probe (WatchdogSec= needs the program to send WATCHDOG=1 "
                            "itself): the unit is restarted when it exits, not when a probe fails"},
    {"instances.*.live.http", 0, "systemd has no liveness probe"},
    {"instances.*.live.tcp", 0, "systemd has no liveness probe"},
    {"instances.*.live.exec", 0, "systemd has no liveness probe"},
    {"instances.*.live.interval", 0, "systemd has no liveness probe"},
    {"instances.*.live.timeout", 0, "systemd has no liveness probe"},
    {"instances.*.live.failures", 0, "systemd has no liveness probe"},
    {"instances.*.ready.timeout", 1, "TimeoutStartSec="},
    {"instances.*.watch", 0, "systemd restarts nothing when files change (a .path unit could, but not one instance "
                             "after the other, ready before the next); restart it by hand"},
    {"instances.*.ignore", 0, "part of watch:, which is not exported"},
    {"instances.*.watch_debounce", 0, "part of watch:, which is not exported"},
    {"instances.*.stdin", 0, "systemd has no attach: a unit's stdin stays /dev/null (StandardInput=null); "
                             "debug a unit with `systemd-run --pty` instead"},
    {"instances.*.tty", 0, "StandardInput=tty would take over the real terminal named by TTYPath=, not a pty "
                           "`devnode attach` could reach; the unit's output goes to the journal as without tty"},
    {"sockets", 1, "a socket unit PROJECT-NAME.socket per socket"},
    {"sockets.*.host", 1, "ListenStream="},
    {"sockets.*.port", 1, "ListenStream="},
    {"sockets.*.path", 1, "ListenStream="},
    {"sockets.*.name", 1, "FileDescriptorName="},
    {"logs", 0, "the output goes to the journal (journalctl -u 'PROJECT-*'); devnode's log ring, trace index and "
                "log files are not exported"},
    {"logs.buffer_lines", 0, "the journal keeps the output; its size is journald's setting"},
    {"logs.file_max_mb", 0, "the journal keeps the output; its size is journald's setting"},
    {"logs.keep_files", 0, "the journal keeps the output; its size is journald's setting"},
    {"logs.per_service", 0, "the journal keeps each unit's output apart: journalctl -u 'PROJECT-NAME@*'"},
    {"streams", 0, "retained streams live in the node's event bus, and no node runs under systemd"},
    {"streams.*.retain_events", 0, "retained streams live in the node's event bus"},
    {"port_base", 1, "Environment=PORT in a drop-in per instance (PROJECT-NAME@N.service.d/port.conf)"},
    {"env_file", 1, "EnvironmentFile=%Y/PROJECT-NAME.env, the files' values as devnode read and expanded them at "
                    "export"},
    {"instances.*.depends_on", 1, "After= on every instance of the dependency, with Requires= (ready, completed) "
                                  "or Wants= (started); systemd stops in the reverse order"},
    {"instances.*.depends_on.*.condition", 1,
     "ready: Requires=; started: Wants=; completed: Requires= and the dependency becomes Type=oneshot with "
     "RemainAfterExit=yes, so systemd waits for its exit and a failure stops its dependents from starting"},
    {"instances.*.depends_on.*.restart", 1,
     "PartOf=: a systemctl stop or restart of the dependency does the same to the dependent; systemd does not "
     "pass on a restart after a crash (Restart=)"},
    {"instances.*.disabled", 1, "the target does not want its instances; a dependent's Requires= or Wants= "
                                "still starts them"},
    {"backends", 1, "lines of every service's environment file, as the node hands them to its workers"},
    {"backends.registry", 1, "DEVNODE_REGISTRY= in the environment file"},
    {"backends.events", 1, "DEVNODE_EVENTS= in the environment file"},
    {"backends.ip", 1, "DEVNODE_IP= in the environment file"},
};

/* What devnode does that no key names, and systemd does not do: said in every export. */
static const char *const not_exported_always[] = {
    "restart backoff: devnode waits 100 ms doubling to 30 s between restarts; the units restart after "
    "RestartSec=1s every time, without a start limit",
    "rolling restarts: `systemctl restart` stops an instance before starting it again; restart the instances "
    "one at a time (systemctl restart PROJECT-NAME@0.service, then @1, ...)",
    "the node's registry and event bus: no node runs under systemd, so workers get no DEVNODE_ENDPOINT, "
    "DEVNODE_RUN_DIR or LYMPH_NODE; services that call or emit need back ends of their own",
};

int export_key_decision(const char *path, const char **how)
{
    for (size_t i = 0; i < sizeof decisions / sizeof decisions[0]; i++) {
        if (strcmp(decisions[i].path, path) == 0) {
            *how = decisions[i].how;
            return decisions[i].exported;
        }
    }
    return -1;
}

static const char *why_not(const char *path)
{
    const char *how = "";
    export_key_decision(path, &how);
    return how;
}

/* ---- names ---- */

static int is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

int export_project_name(const char *given, const char *dir, char *out, size_t cap, char *err, size_t errlen)
{
    const size_t max = cap - 1 < 64 ? cap - 1 : 64;
    if (given) {
        size_t len = strlen(given);
        int ok = len > 0 && len <= max && given[0] != '.' && given[0] != '-';
        for (const char *p = given; ok && *p; p++)
            ok = is_name_char(*p);
        if (!ok) {
            snprintf(err, errlen,
                     "--name '%s': a project name is 1 to %zu letters, digits, '_', '-' or '.', not starting "
                     "with '.' or '-'",
                     given, max);
            return -1;
        }
        snprintf(out, cap, "%s", given);
        return 0;
    }
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    size_t n = 0;
    for (const char *p = base; *p && n < max; p++) {
        char c = is_name_char(*p) ? *p : '-';
        if (n == 0 && (c == '-' || c == '.'))
            continue;
        if (c == '-' && n > 0 && out[n - 1] == '-')
            continue;
        out[n++] = c;
    }
    while (n > 0 && (out[n - 1] == '-' || out[n - 1] == '.'))
        n--;
    out[n] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "the directory name '%s' leaves no project name: give one with --name", base);
        return -1;
    }
    return 0;
}

/* ---- the result ---- */

static void add_file(struct export_result *r, char *name, struct strbuf *text)
{
    r->files = xreallocarray(r->files, r->file_count + 1, sizeof *r->files);
    r->files[r->file_count++] = (struct export_file){name, xstrdup(strbuf_cstr(text)), 0, NULL};
}

/* Adds "LINE" to the result once; returns it. */
__attribute__((format(printf, 2, 3))) static const char *add_not_exported(struct export_result *r,
                                                                           const char *fmt, ...)
{
    char *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0)
        abort();
    va_end(ap);
    for (size_t i = 0; i < r->not_exported_count; i++) {
        if (strcmp(r->not_exported[i], line) == 0) {
            free(line);
            return r->not_exported[i];
        }
    }
    r->not_exported = xreallocarray(r->not_exported, r->not_exported_count + 1, sizeof *r->not_exported);
    r->not_exported[r->not_exported_count++] = line;
    return line;
}

void export_result_free(struct export_result *r)
{
    for (size_t i = 0; i < r->file_count; i++) {
        free(r->files[i].name);
        free(r->files[i].text);
        free(r->files[i].shown);
    }
    free(r->files);
    for (size_t i = 0; i < r->not_exported_count; i++)
        free(r->not_exported[i]);
    free(r->not_exported);
    *r = (struct export_result){0};
}

/* "PROJECT" in a line of the table above, replaced by the project's name. */
static void put_with_project(struct strbuf *sb, const char *text, const char *project)
{
    for (const char *p = text; *p;) {
        const char *at = strstr(p, "PROJECT");
        if (!at) {
            strbuf_puts(sb, p);
            break;
        }
        strbuf_append(sb, p, (size_t)(at - p));
        strbuf_puts(sb, project);
        p = at + strlen("PROJECT");
    }
}

/* A comment line per not-exported item; `%` need not be escaped in comments. */
static void comment(struct strbuf *sb, const char *text)
{
    strbuf_puts(sb, "# not exported: ");
    for (const char *p = text; *p; p++)
        strbuf_putc(sb, *p == '\n' ? ' ' : *p);
    strbuf_putc(sb, '\n');
}

/* ---- values ---- */

static void put_duration(struct strbuf *sb, unsigned ms)
{
    if (ms == 0)
        ms = 1; /* 0 means "no timeout" to systemd, and "at once" to devnode */
    if (ms % 1000 == 0)
        strbuf_printf(sb, "%us", ms / 1000);
    else
        strbuf_printf(sb, "%ums", ms);
}

/* Lexically joins a relative program path to the service's cwd (both as devnode's shell sees
 * them: it runs in cwd). */
static char *join_path(const char *dir, const char *rel)
{
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, dir);
    while (rel[0] == '.' && rel[1] == '/') {
        rel += 2;
        while (*rel == '/')
            rel++;
    }
    if (sb.len == 0 || sb.data[sb.len - 1] != '/')
        strbuf_putc(&sb, '/');
    strbuf_puts(&sb, rel);
    char *out = xstrdup(strbuf_cstr(&sb));
    strbuf_free(&sb);
    return out;
}

struct unit_ctx {
    const struct config *cfg;
    const struct export_options *opt;
    struct export_result *res;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct unit_ctx *u, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->err, u->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ExecStart= of svc, given its command with the socket references already filled in.
 * *shell_stays is set when /bin/sh remains the main process (NotifyAccess=all then). */
static void put_exec_start(struct unit_ctx *u, struct strbuf *sb, const struct config_service *svc,
                           const char *command, int *shell_stays)
{
    struct sdword *words = NULL;
    int n = shellcmd_is_simple(command) ? sdquote_split_simple(command, &words) : -1;
    const char *program = n > 0 ? words[0].literal : NULL;
    *shell_stays = 0;
    if (program && !strchr("@-:+!", program[0])) {
        char *resolved = NULL;
        if (program[0] != '/' && strchr(program, '/'))
            resolved = join_path(svc->cwd, program);
        else if (program[0] != '/' && u->opt->which)
            resolved = u->opt->which(u->opt->which_ctx, program);
        strbuf_puts(sb, "ExecStart=");
        sdquote_word(sb, resolved ? resolved : program, 1);
        for (int i = 1; i < n; i++) {
            strbuf_putc(sb, ' ');
            strbuf_puts(sb, words[i].systemd);
        }
        strbuf_putc(sb, '\n');
        free(resolved);
        sdquote_words_free(words, n);
        return;
    }
    if (n > 0)
        sdquote_words_free(words, n);
    char *script = shellcmd_for_sh(command);
    *shell_stays = !shellcmd_replaces_shell(command);
    strbuf_puts(sb, "ExecStart=/bin/sh -c ");
    sdquote_word(sb, script, 1);
    strbuf_putc(sb, '\n');
    free(script);
}

static int put_env(struct unit_ctx *u, struct strbuf *sb, const struct config_service *svc, const char *name,
                   const char *value)
{
    struct strbuf arg;
    strbuf_init(&arg);
    int rc = sdquote_env(&arg, name, value);
    if (rc == 0)
        strbuf_printf(sb, "Environment=%s\n", strbuf_cstr(&arg));
    else
        comment(sb, add_not_exported(u->res,
                                     "instances.%s.env.%s: systemd takes only variable names of letters, digits "
                                     "and '_', not starting with a digit",
                                     svc->name, name));
    strbuf_free(&arg);
    return rc;
}

/* Names devnode sets over the project's values (node/workerenv.c): in the file they would win
 * over devnode's own Environment= lines, so they are left out, as devnode overwrites them. */
static int set_after_project(const char *name, int n_passed)
{
    return !strcmp(name, "DEVNODE_SERVICE") || !strcmp(name, "DEVNODE_INSTANCE") ||
           !strcmp(name, "LYMPH_SERVICE_NAME") || (n_passed > 0 && !strcmp(name, "LYMPH_SHARED_SOCKET_FDS"));
}

static int put_env_file_var(struct unit_ctx *u, struct strbuf *unit, struct strbuf *sb, struct strbuf *shown,
                            const struct config_service *svc, const struct config_env_var *var, const char *name,
                            const char *value)
{
    const char *why = NULL;
    int rc = sdquote_envfile(sb, name, value, &why);
    if (rc == 0)
        strbuf_printf(shown, "%s=(%zu bytes, not shown)\n", name, strlen(value));
    if (rc == -1) {
        comment(unit, add_not_exported(u->res, "instances.%s.env.%s: systemd takes only variable names of letters, "
                                       "digits and '_', not starting with a digit", svc->name, name));
        return 0;
    }
    if (rc == -2 && var)
        return fail(u, "%s:%d: instances.%s: %s: its value %s", var->file ? var->file : u->cfg->path, var->line,
                    svc->name, name, why);
    if (rc == -2)
        return fail(u, "%s: backends: %s: its value %s", u->cfg->path, name, why);
    return 1;
}

/* svc's environment file: the backends and the merged .env, env_file and env: (one line per
 * name, its final value, in devnode's order; a name systemd refuses is a comment in unit).
 * The count of lines, or -1 with u->err. */
static int put_env_file(struct unit_ctx *u, struct strbuf *unit, struct strbuf *sb, struct strbuf *shown,
                        const struct config_service *svc, int n_passed)
{
    strbuf_printf(sb, "# Environment of %s's %s instances: backends:, .env, env_file and env: as devnode merged\n"
                      "# and expanded them. Generated by `devnode export systemd` from %s.\n"
                      "# It may hold secrets: keep it mode 0600. Export again after editing .env.\n",
                  u->opt->project, svc->name, u->cfg->path);
    strbuf_append(shown, sb->data, sb->len);
    const struct config_backends *b = &u->cfg->backends;
    const char *backends[][2] = {{"DEVNODE_REGISTRY", b->registry}, {"DEVNODE_IP", b->ip},
                                 {"DEVNODE_EVENTS", b->events}};
    int count = 0;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        if (!backends[i][1] || config_service_env(svc, backends[i][0]))
            continue; /* the service's own value wins */
        int rc = put_env_file_var(u, unit, sb, shown, svc, NULL, backends[i][0], backends[i][1]);
        if (rc < 0)
            return -1;
        count += rc;
    }
    for (size_t i = 0; i < svc->env_count; i++) {
        const struct config_env_var *var = &svc->env[i];
        if (set_after_project(var->name, n_passed))
            continue;
        int rc = put_env_file_var(u, unit, sb, shown, svc, var, var->name, var->value);
        if (rc < 0)
            return -1;
        count += rc;
    }
    return count;
}

/* ListenStream= of a socket some service takes. */
static int put_listen(struct unit_ctx *u, struct strbuf *sb, const struct config_socket *s)
{
    if (s->path) {
        strbuf_puts(sb, "ListenStream=");
        if (sdquote_plain(sb, s->path) < 0)
            return fail(u, "%s:%d: sockets.%s.path: '%s' cannot be written into a unit file (a control character, "
                        "a space at an end or a trailing backslash)", u->cfg->path, s->line, s->name, s->path);
        strbuf_putc(sb, '\n');
        return 0;
    }
    if (s->port == 0)
        return fail(u,
                    "%s:%d: sockets.%s.port: 0 (a free port picked when the node binds) cannot be exported: "
                    "systemd listens on a fixed port; give one",
                    u->cfg->path, s->line, s->name);
    unsigned char addr[16];
    if (inet_pton(AF_INET, s->host, addr) == 1)
        strbuf_printf(sb, "ListenStream=%s:%d\n", s->host, s->port);
    else if (inet_pton(AF_INET6, s->host, addr) == 1)
        strbuf_printf(sb, "ListenStream=[%s]:%d\n", s->host, s->port);
    else
        return fail(u,
                    "%s:%d: sockets.%s.host: '%s' is a name, and systemd's ListenStream= takes an address "
                    "(127.0.0.1, ::1, 0.0.0.0)",
                    u->cfg->path, s->line, s->name, s->host);
    return 0;
}

static void header(struct strbuf *sb, const struct config *cfg, const char *what)
{
    strbuf_printf(sb, "# %s\n# Generated by `devnode export systemd` from %s: export again rather than edit.\n",
                  what, cfg->path);
}

/* The sockets bound as devnode would (no fd: only names and ports are read), so the passing
 * order and $(socket.X.fd|port) come from the one rule in sockets/. */
struct fake_sockets {
    struct socket_set set;
    struct bound_socket *items;
};

static void fake_sockets_init(struct fake_sockets *fs, const struct config *cfg)
{
    fs->items = xcalloc(cfg->socket_count ? cfg->socket_count : 1, sizeof *fs->items);
    for (size_t i = 0; i < cfg->socket_count; i++) {
        const struct config_socket *s = &cfg->sockets[i];
        fs->items[i] = (struct bound_socket){.cfg = s, .config_path = cfg->path, .fd = -1,
                                             .family = s->path ? AF_UNIX : AF_INET, .port = s->path ? -1 : s->port,
                                             .queue = {.waiting = -1}};
    }
    fs->set = (struct socket_set){fs->items, cfg->socket_count};
}

/* Whether a dependent waits for svc to complete: then its unit is Type=oneshot. */
static int waited_to_complete(const struct config *cfg, const struct config_service *svc)
{
    for (size_t i = 0; i < cfg->service_count; i++)
        for (size_t k = 0; k < cfg->services[i].dep_count; k++)
            if (cfg->services[i].deps[k].condition == DEP_COMPLETED &&
                strcmp(cfg->services[i].deps[k].name, svc->name) == 0)
                return 1;
    return 0;
}

/* "DIRECTIVE=P-D@0.service P-D@1.service\n": every instance of the dependency. */
static void put_instances(struct strbuf *sb, const char *directive, const char *project,
                          const struct config_service *dep)
{
    strbuf_printf(sb, "%s=", directive);
    for (int k = 0; k < dep->numprocesses; k++)
        strbuf_printf(sb, "%s%s-%s@%d.service", k ? " " : "", project, dep->name, k);
    strbuf_putc(sb, '\n');
}

/* depends_on: ready and started mean every instance, so each one is named. */
static void put_depends(struct unit_ctx *u, struct strbuf *sb, const struct config_service *svc)
{
    for (size_t k = 0; k < svc->dep_count; k++) {
        const struct config_dep *d = &svc->deps[k];
        const struct config_service *dep = config_find_service(u->cfg, d->name);
        strbuf_printf(sb, "# depends_on %s: %s%s\n", d->name, config_dep_condition_name(d->condition),
                      d->restart ? ", restart: true" : "");
        if (dep->numprocesses == 0) {
            strbuf_printf(sb, "# (%s has numprocesses: 0, so there is no instance to wait for)\n", dep->name);
            continue;
        }
        put_instances(sb, d->condition == DEP_STARTED ? "Wants" : "Requires", u->opt->project, dep);
        put_instances(sb, "After", u->opt->project, dep);
        if (d->restart)
            put_instances(sb, "PartOf", u->opt->project, dep);
    }
}

static int service_unit(struct unit_ctx *u, const struct config_service *svc,
                        const struct bound_socket *const *passed, int n_passed)
{
    const char *project = u->opt->project;
    struct strbuf sb;
    strbuf_init(&sb);
    char what[256];
    if (svc->numprocesses > 0)
        snprintf(what, sizeof what, "Service %s of %s: instance %%i (%s.target starts 0..%d).", svc->name, project,
                 project, svc->numprocesses - 1);
    else
        snprintf(what, sizeof what, "Service %s of %s: instance %%i (numprocesses: 0, so %s.target starts none).",
                 svc->name, project, project);
    header(&sb, u->cfg, what);
    strbuf_printf(&sb, "[Unit]\nDescription=%s %s instance %%i (devnode export)\nPartOf=%s.target\n", project,
                  svc->name, project);
    if (svc->restart != RESTART_NEVER && svc->max_restarts > 0) {
        strbuf_printf(&sb, "# max_restarts: %d within restart_window: systemd counts the first start too.\n"
                           "StartLimitIntervalSec=", svc->max_restarts);
        put_duration(&sb, svc->restart_window_ms);
        strbuf_printf(&sb, "\nStartLimitBurst=%d\n", svc->max_restarts + 1);
    } else if (svc->restart != RESTART_NEVER) {
        strbuf_puts(&sb, "StartLimitIntervalSec=0\n");
    }
    put_depends(u, &sb, svc);
    strbuf_puts(&sb, "\n[Service]\n");

    char *command = sockets_expand_command(svc->command, passed, (size_t)n_passed);
    struct strbuf exec;
    strbuf_init(&exec);
    int shell_stays = 0;
    put_exec_start(u, &exec, svc, command, &shell_stays);
    free(command);

    const struct config_ready *r = &svc->ready;
    int oneshot = waited_to_complete(u->cfg, svc);
    if (oneshot) {
        /* systemd orders a dependent After= a oneshot's exit, and a failed one fails its Requires=. */
        strbuf_puts(&sb, "# A dependent waits for it to complete (depends_on: completed).\n"
                         "Type=oneshot\nRemainAfterExit=yes\n");
    } else if (r->kind == READY_NOTIFY) {
        strbuf_puts(&sb, "Type=notify\n");
        if (shell_stays)
            strbuf_puts(&sb, "NotifyAccess=all\n");
        strbuf_puts(&sb, "TimeoutStartSec=");
        put_duration(&sb, r->timeout_ms);
        strbuf_putc(&sb, '\n');
    } else {
        strbuf_puts(&sb, "Type=exec\n");
    }
    strbuf_append(&sb, exec.data, exec.len);
    strbuf_free(&exec);
    if (oneshot && r->kind != READY_AT_START) {
        comment(&sb, add_not_exported(u->res, "instances.%s.ready: a dependent waits for %s to complete, so its "
                                      "unit is Type=oneshot and its ready: check does not apply",
                                      svc->name, svc->name));
    } else if (r->kind == READY_DELAY) {
        strbuf_printf(&sb, "ExecStartPost=/bin/sleep %u.%03u\n", r->delay_ms / 1000, r->delay_ms % 1000);
        strbuf_puts(&sb, "TimeoutStartSec=");
        put_duration(&sb, r->delay_ms + r->timeout_ms);
        strbuf_putc(&sb, '\n');
    } else if (r->kind == READY_LOG) {
        comment(&sb, add_not_exported(u->res, "instances.%s.ready.log: %s", svc->name,
                                      why_not("instances.*.ready.log")));
    } else if (r->kind == READY_TCP) {
        comment(&sb, add_not_exported(u->res, "instances.%s.ready.tcp: %s", svc->name,
                                      why_not("instances.*.ready.tcp")));
    } else if (r->kind == READY_HTTP) {
        comment(&sb, add_not_exported(u->res, "instances.%s.ready.http: %s", svc->name,
                                      why_not("instances.*.ready.http")));
    } else if (r->kind == READY_EXEC) {
        /* The unit stays "activating" until the probe passes, as the instance stays starting. */
        char *script = NULL;
        if (asprintf(&script, "until %s; do sleep 0.2; done", r->probe.command) < 0)
            abort();
        strbuf_puts(&sb, "ExecStartPost=/bin/sh -c ");
        sdquote_word(&sb, script, 1);
        free(script);
        strbuf_puts(&sb, "\nTimeoutStartSec=");
        put_duration(&sb, r->timeout_ms);
        strbuf_putc(&sb, '\n');
    }
    if (svc->watch.path_count)
        comment(&sb, add_not_exported(u->res, "instances.%s.watch: %s", svc->name, why_not("instances.*.watch")));
    if (svc->tty)
        comment(&sb, add_not_exported(u->res, "instances.%s.tty: %s", svc->name, why_not("instances.*.tty")));
    else if (svc->stdin_pipe)
        comment(&sb, add_not_exported(u->res, "instances.%s.stdin: %s", svc->name, why_not("instances.*.stdin")));
    if (svc->live.probe.kind != PROBE_NONE)
        comment(&sb, add_not_exported(u->res, "instances.%s.live: %s", svc->name, why_not("instances.*.live")));

    strbuf_puts(&sb, "WorkingDirectory=");
    if (sdquote_plain(&sb, svc->cwd) < 0) {
        strbuf_free(&sb);
        return fail(u, "%s:%d: instances.%s.cwd: '%s' cannot be written into a unit file (a control character, "
                    "a space at an end or a trailing backslash)", u->cfg->path, svc->line, svc->name, svc->cwd);
    }
    strbuf_putc(&sb, '\n');
    if (n_passed > 0) {
        strbuf_puts(&sb, "Sockets=");
        for (int i = 0; i < n_passed; i++)
            strbuf_printf(&sb, "%s%s-%s.socket", i ? " " : "", project, passed[i]->cfg->name);
        strbuf_putc(&sb, '\n');
    }
    if (!u->opt->user && u->opt->run_as)
        strbuf_printf(&sb, "User=%s\n", u->opt->run_as);

    /* The environment devnode gives a worker. The project's values (backends, .env, env_file,
     * env:) go to a file of mode 0600, so no secret sits in a world-readable unit; what devnode
     * itself sets stays here. EnvironmentFile= wins over Environment=, as the project's values
     * win over PYTHONUNBUFFERED under devnode. */
    put_env(u, &sb, svc, "PYTHONUNBUFFERED", "1");
    struct strbuf envfile, shown;
    strbuf_init(&envfile);
    strbuf_init(&shown);
    int vars = put_env_file(u, &sb, &envfile, &shown, svc, n_passed);
    if (vars < 0) {
        strbuf_free(&envfile);
        strbuf_free(&shown);
        strbuf_free(&sb);
        return -1;
    }
    char *envfile_name = NULL;
    if (asprintf(&envfile_name, "%s-%s.env", project, svc->name) < 0)
        abort();
    if (vars > 0)
        strbuf_printf(&sb, "# .env, env_file, env: and backends: (mode 0600, beside this unit; needs systemd 249 for %%Y).\n"
                           "EnvironmentFile=%%Y/%s\n", envfile_name);
    put_env(u, &sb, svc, "DEVNODE_SERVICE", svc->name);
    strbuf_puts(&sb, "Environment=\"DEVNODE_INSTANCE=%i\"\n");
    put_env(u, &sb, svc, "LYMPH_SERVICE_NAME", svc->name);
    char lymph[1024] = "{";
    int port = -1;
    for (int i = 0; i < n_passed; i++) {
        if (passed[i]->port < 0)
            continue;
        size_t used = strlen(lymph);
        snprintf(lymph + used, sizeof lymph - used, "%s\"%d\": %d", lymph[1] ? ", " : "", passed[i]->port, 3 + i);
        if (port < 0)
            port = passed[i]->port;
    }
    if (n_passed > 0) {
        strncat(lymph, "}", sizeof lymph - strlen(lymph) - 1);
        put_env(u, &sb, svc, "LYMPH_SHARED_SOCKET_FDS", lymph);
    }
    int own_port = config_service_env(svc, "PORT") != NULL;
    if (!own_port && n_passed > 0 && port >= 0) {
        char text[16];
        snprintf(text, sizeof text, "%d", port);
        put_env(u, &sb, svc, "PORT", text);
    }
    if (n_passed > 0 && sockets_command_names_fd(svc->command))
        strbuf_puts(&sb, "# It names its socket as $(socket.NAME.fd): not offered again by LISTEN_FDS (docs/sockets.md).\n"
                         "UnsetEnvironment=LISTEN_FDS LISTEN_PID LISTEN_FDNAMES\n");

    switch (svc->restart) {
    case RESTART_ALWAYS: strbuf_puts(&sb, "Restart=always\n"); break;
    case RESTART_ON_FAILURE: strbuf_puts(&sb, "Restart=on-failure\n"); break;
    case RESTART_NEVER: strbuf_puts(&sb, "Restart=no\n"); break;
    }
    if (svc->restart != RESTART_NEVER) {
        strbuf_puts(&sb, "RestartSec=1s\n");
        strbuf_puts(&sb, "# devnode does not restart a program that cannot run (exit 126 or 127).\n"
                         "RestartPreventExitStatus=126 127\n");
    }
    const char *sig = config_signal_name(svc->stop_signal);
    if (strcmp(sig, "?") == 0)
        strbuf_printf(&sb, "KillSignal=%d\n", svc->stop_signal);
    else
        strbuf_printf(&sb, "KillSignal=SIG%s\n", sig);
    strbuf_puts(&sb, "TimeoutStopSec=");
    put_duration(&sb, svc->stop_timeout_ms);
    strbuf_putc(&sb, '\n');
    /* The backoff (when it restarts at all) and rolling restarts; the bus is the target's. */
    for (size_t i = svc->restart == RESTART_NEVER ? 1 : 0; i < 2; i++) {
        struct strbuf line;
        strbuf_init(&line);
        put_with_project(&line, not_exported_always[i], project);
        comment(&sb, strbuf_cstr(&line));
        strbuf_free(&line);
    }

    char *name = NULL;
    if (asprintf(&name, "%s-%s@.service", project, svc->name) < 0)
        abort();
    add_file(u->res, name, &sb);
    strbuf_free(&sb);
    if (vars > 0) {
        add_file(u->res, envfile_name, &envfile);
        u->res->files[u->res->file_count - 1].secret = 1;
        u->res->files[u->res->file_count - 1].shown = xstrdup(strbuf_cstr(&shown));
    } else {
        free(envfile_name);
    }
    strbuf_free(&envfile);
    strbuf_free(&shown);

    /* PORT of a service without sockets: instance N gets its block's port + N. */
    enum config_port_source src = config_service_port(u->cfg, svc, NULL);
    for (int i = 0; src == PORT_FROM_BLOCK && !own_port && n_passed == 0 && i < svc->numprocesses; i++) {
        int block_port = config_block_port(svc, i);
        if (block_port < 0)
            continue;
        strbuf_init(&sb);
        char what_port[160];
        snprintf(what_port, sizeof what_port, "PORT of %s.%d: its block from port_base (docs/config.md).", svc->name, i);
        header(&sb, u->cfg, what_port);
        strbuf_printf(&sb, "[Service]\nEnvironment=\"PORT=%d\"\n", block_port);
        if (asprintf(&name, "%s-%s@%d.service.d/port.conf", project, svc->name, i) < 0)
            abort();
        add_file(u->res, name, &sb);
        strbuf_free(&sb);
    }
    return 0;
}

static int socket_unit(struct unit_ctx *u, const struct config_socket *s, const struct config_service *taker)
{
    const char *project = u->opt->project;
    struct strbuf sb;
    strbuf_init(&sb);
    char what[256];
    snprintf(what, sizeof what, "Socket %s of %s, shared by every instance that lists it in Sockets=.", s->name,
             project);
    header(&sb, u->cfg, what);
    strbuf_printf(&sb, "[Unit]\nDescription=%s socket %s (devnode export)\nPartOf=%s.target\n\n[Socket]\n", project,
                  s->name, project);
    if (put_listen(u, &sb, s) < 0) {
        strbuf_free(&sb);
        return -1;
    }
    strbuf_printf(&sb, "FileDescriptorName=%s\n", s->name);
    strbuf_printf(&sb,
                  "# Traffic before the target started the instances starts instance 0; all of them get the\n"
                  "# socket through Sockets= (a template cannot be named here).\n"
                  "Service=%s-%s@0.service\n",
                  project, taker->name);
    strbuf_printf(&sb, "Backlog=%d\n", SOCKETS_BACKLOG);
    /* systemd sets SO_REUSEADDR on TCP listeners itself, as the node does. */
    if (s->path)
        strbuf_puts(&sb, "RemoveOnStop=yes\n");
    char *name = NULL;
    if (asprintf(&name, "%s-%s.socket", project, s->name) < 0)
        abort();
    add_file(u->res, name, &sb);
    strbuf_free(&sb);
    return 0;
}

int export_systemd(const struct config *cfg, const struct export_options *opt, struct export_result *out,
                   char *err, size_t errlen)
{
    *out = (struct export_result){0};
    struct unit_ctx u = {cfg, opt, out, err, errlen};
    struct fake_sockets fs;
    fake_sockets_init(&fs, cfg);
    /* Which sockets some service takes, and the first service taking each (its Service=). */
    const struct config_service **taker = xcalloc(cfg->socket_count ? cfg->socket_count : 1, sizeof *taker);
    struct strbuf target;
    strbuf_init(&target);
    int rc = 0;
    header(&target, cfg, "Every instance and socket of the project.");
    strbuf_printf(&target, "[Unit]\nDescription=%s (devnode export)\n", opt->project);

    for (size_t i = 0; i < cfg->service_count && rc == 0; i++) {
        const struct config_service *svc = &cfg->services[i];
        const struct bound_socket *passed[MAX_PASSED];
        int n = sockets_for_service(&fs.set, svc, passed, MAX_PASSED, err, errlen);
        if (n < 0) {
            rc = -1;
            break;
        }
        for (int k = 0; k < n; k++) {
            size_t at = (size_t)(passed[k] - fs.items);
            if (!taker[at])
                taker[at] = svc;
        }
        rc = service_unit(&u, svc, passed, n);
        if (rc == 0 && svc->disabled)
            strbuf_printf(&target, "# %s is disabled: not started here; a dependent's Requires= or Wants= starts it\n",
                          svc->name);
        for (int k = 0; rc == 0 && !svc->disabled && k < svc->numprocesses; k++)
            strbuf_printf(&target, "Wants=%s-%s@%d.service\n", opt->project, svc->name, k);
    }
    for (size_t i = 0; i < cfg->socket_count && rc == 0; i++) {
        const struct config_socket *s = &cfg->sockets[i];
        if (!taker[i]) {
            comment(&target, add_not_exported(out, "sockets.%s: no service takes it, so no unit listens on it",
                                              s->name));
            continue;
        }
        rc = socket_unit(&u, s, taker[i]);
        strbuf_printf(&target, "Wants=%s-%s.socket\n", opt->project, s->name);
    }
    if (rc == 0) {
        if (cfg->stream_count)
            comment(&target, add_not_exported(out, "streams: %s", why_not("streams")));
        /* lymph's own keys: the node ignores them too ("interfaces: read by lymph services, ...") */
        for (size_t i = 0; i < cfg->note_count; i++)
            comment(&target, add_not_exported(out, "%s", cfg->notes[i]));
        struct strbuf line;
        strbuf_init(&line);
        put_with_project(&line, why_not("logs"), opt->project);
        comment(&target, add_not_exported(out, "logs: %s", strbuf_cstr(&line)));
        for (size_t i = 0; i < sizeof not_exported_always / sizeof not_exported_always[0]; i++) {
            strbuf_reset(&line);
            put_with_project(&line, not_exported_always[i], opt->project);
            comment(&target, add_not_exported(out, "%s", strbuf_cstr(&line)));
        }
        strbuf_free(&line);
        strbuf_printf(&target, "\n[Install]\nWantedBy=%s\n", opt->user ? "default.target" : "multi-user.target");
        char *name = NULL;
        if (asprintf(&name, "%s.target", opt->project) < 0)
            abort();
        add_file(out, name, &target);
    }
    strbuf_free(&target);
    free(taker);
    free(fs.items);
    if (rc < 0)
        export_result_free(out);
    return rc;
}
