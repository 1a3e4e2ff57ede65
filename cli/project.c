/* project: finds the .lymph.yml a command is about, the way git finds its repository:
 * an explicit -c wins, then $LYMPH_CONFIG (lymph's variable), then the nearest parent. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "node/preflight.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("devnode: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int project_from_file(const char *path, struct cli_project *out, char *err, size_t errlen)
{
    if (!realpath(path, out->config_path)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    snprintf(out->dir, sizeof out->dir, "%s", out->config_path);
    char *slash = strrchr(out->dir, '/');
    if (slash == out->dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    return 0;
}

int cli_find_project(const char *given, struct cli_project *out, char *err, size_t errlen)
{
    if (given)
        return project_from_file(given, out, err, errlen);
    const char *env = getenv("LYMPH_CONFIG");
    if (env && *env)
        return project_from_file(env, out, err, errlen);
    char dir[PATH_MAX];
    if (!getcwd(dir, sizeof dir)) {
        snprintf(err, errlen, "cannot read the current directory: %s", strerror(errno));
        return -1;
    }
    char start[PATH_MAX];
    snprintf(start, sizeof start, "%s", dir);
    for (;;) {
        char candidate[PATH_MAX + 16];
        snprintf(candidate, sizeof candidate, "%s/.lymph.yml", dir);
        if (access(candidate, F_OK) == 0)
            return project_from_file(candidate, out, err, errlen);
        snprintf(candidate, sizeof candidate, "%s/Procfile", dir);
        if (access(candidate, F_OK) == 0)
            return project_from_file(candidate, out, err, errlen);
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) {
            if (strcmp(dir, "/") == 0 || !slash)
                break;
            dir[1] = '\0';
            continue;
        }
        *slash = '\0';
    }
    snprintf(err, errlen, "no .lymph.yml or Procfile in %s or any parent directory (use -c PATH)", start);
    return -1;
}

int cli_open_project(const char *given, struct cli_project *out)
{
    char err[1024];
    if (cli_find_project(given, out, err, sizeof err) < 0) {
        cli_error("%s", err);
        return -1;
    }
    return 0;
}

int cli_call(const struct cli_project *project, const char *type, struct wire_body *body,
             struct wire_msg *reply, const char *prefix)
{
    char err[1024];
    int rc = cli_request(project, type, body, 5000, reply, err, sizeof err);
    wire_body_free(body);
    if (rc < 0) {
        if (prefix)
            cli_error("%s: %s", prefix, err);
        else
            cli_error("%s", err);
        return -1;
    }
    return 0;
}

int cli_call_status(const struct cli_project *project, const char *prefix, struct wire_msg *reply,
                    struct proto_status *st)
{
    struct wire_body body;
    wire_body_init(&body);
    proto_pack_request_id(&body.pk, 1);
    if (cli_call(project, PROTO_STATUS, &body, reply, prefix) < 0)
        return -1;
    return proto_unpack_status(reply->body, st) == 0 ? 0 : 1;
}

int cli_color_mode(const char *mode, int *on)
{
    if (!mode || !strcmp(mode, "auto")) {
        const char *no_color = getenv("NO_COLOR");
        const char *term = getenv("TERM");
        *on = isatty(1) && !(no_color && *no_color) && !(term && !strcmp(term, "dumb"));
        return 0;
    }
    if (!strcmp(mode, "always") || !strcmp(mode, "never")) {
        *on = !strcmp(mode, "always");
        return 0;
    }
    return -1;
}

int cli_check_ports(struct config *cfg, const char *file, const char *port_base)
{
    char *end, err[1024];
    long base = 0;
    if (port_base) {
        errno = 0;
        base = strtol(port_base, &end, 10);
        if (errno || end == port_base || *end || base < 1 || base > 65535) {
            cli_error("--port-base takes a port, 1..65535, not '%s'", port_base);
            return -1;
        }
    }
    if (config_check_ports(cfg, file, (int)base, err, sizeof err) < 0) {
        cli_error("%s", err);
        return -1;
    }
    return 0;
}

int cli_load_config(const struct cli_args *args, const char *vars, const char *port_base, struct config *cfg,
                    struct preflight *pf)
{
    char err[1024];
    /* As given, so errors name the file the way the user wrote it. */
    const char *path = args->config ? args->config : args->project.config_path;
    unsigned flags = cli_arg(args, CLI_OPT_NO_DOTENV) ? CONFIG_NO_DOTENV : 0;
    if (config_load_flags(path, vars, flags, cfg, err, sizeof err) < 0) {
        cli_error("%s", err);
        return -1;
    }
    const char *formation = cli_arg(args, 'm');
    if (formation && cli_apply_formation(cfg, path, formation) < 0) {
        config_free(cfg);
        return -1;
    }
    if (cli_check_ports(cfg, path, port_base) < 0) {
        config_free(cfg);
        return -1;
    }
    if (preflight_run(cfg, path, pf, err, sizeof err) < 0) {
        cli_error("%s", err);
        preflight_free(pf);
        config_free(cfg);
        return -1;
    }
    return 0;
}

int cli_timeout_ms(const char *command, const char *text, int *ms)
{
    if (!text)
        return 0;
    char *end;
    double s = strtod(text, &end);
    if (*end || end == text || s <= 0 || s > 86400) {
        cli_error("%s: --timeout takes a number of seconds, not '%s'", command, text);
        return -1;
    }
    *ms = (int)(s * 1000);
    return 0;
}
