/* Unit tests for config/: real files in a temp dir, loaded and checked field by field,
 * and every error class checked for its exact file:line:col and key path.
 * Must never leave files behind or leak (it runs under ASan with leak detection). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/strbuf.h"
#include "config/config.h"

struct fixture {
    char *dir;          /* realpath of the temp dir */
    char *config_path;  /* DIR/lymph.yml */
    char *vars_path;    /* DIR/vars.yml */
    char err[1024];
};

/* asprintf that cannot fail quietly; the caller frees. */
__attribute__((format(printf, 1, 2)))
static char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    return s;
}

/* Compares and frees `want`. */
static void assert_error(const char *err, char *want)
{
    assert_string_equal(err, want);
    free(want);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char tmpl[] = "/tmp/devnode-test-config-XXXXXX";
    if (!fx || !mkdtemp(tmpl)) {
        free(fx);
        return -1;
    }
    /* /tmp may itself be a symlink; the loader reports realpath'd locations. */
    fx->dir = realpath(tmpl, NULL);
    if (!fx->dir) {
        free(fx);
        return -1;
    }
    fx->config_path = format("%s/lymph.yml", fx->dir);
    fx->vars_path = format("%s/vars.yml", fx->dir);
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx->dir);
    free(fx->config_path);
    free(fx->vars_path);
    free(fx);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Loads `yaml` (and `vars` when non-NULL) and requires success. */
static void load_ok(struct fixture *fx, const char *yaml, const char *vars, struct config *cfg)
{
    write_file(fx->config_path, yaml);
    if (vars) {
        write_file(fx->vars_path, vars);
    }
    int rc = config_load(fx->config_path, vars ? fx->vars_path : NULL, cfg, fx->err,
                         sizeof(fx->err));
    if (rc != 0) {
        print_error("unexpected error: %s\n", fx->err);
    }
    assert_int_equal(rc, 0);
}

/* Loads `yaml` and requires the error "CONFIG_PATH:" + `expected`; also checks that a failed
 * load leaves nothing behind in the struct. */
static void load_fails(struct fixture *fx, const char *yaml, const char *vars, const char *expected)
{
    write_file(fx->config_path, yaml);
    if (vars) {
        write_file(fx->vars_path, vars);
    }
    struct config cfg;
    memset(&cfg, 0xA5, sizeof(cfg));
    int rc = config_load(fx->config_path, vars ? fx->vars_path : NULL, &cfg, fx->err,
                         sizeof(fx->err));
    assert_int_equal(rc, -1);
    assert_error(fx->err, format("%s:%s", fx->config_path, expected));
    assert_null(cfg.services);
    assert_null(cfg.sockets);
    assert_null(cfg.notes);
    assert_null(cfg.path);
    assert_int_equal(cfg.service_count, 0);
}

static char *join(const char *dir, const char *rel)
{
    return format("%s/%s", dir, rel);
}

/* ---- valid files ---- */

static const char full_yaml[] =
    "# every key the node reads\n"
    "container:\n"
    "  registry: {class: lymph.discovery.static:StaticServiceRegistryHub}\n"
    "instances:\n"
    "  Web:\n"
    "    command: lymph instance --config=conf/web.yml\n"
    "    numprocesses: 2\n"
    "    env:\n"
    "      APP_MODE: dev\n"
    "      DEBUG: yes\n"
    "      ZIP: 08\n"
    "      EMPTY:\n"
    "      FROM_ENV: \"$(env.DEVNODE_TEST_A)-x\"\n"
    "    cwd: services/./web/../web\n"
    "    restart: on-failure\n"
    "    stop_signal: SIGINT\n"
    "    stop_timeout: 500ms\n"
    "    sockets: [Web, admin]\n"
    "  Greeting:\n"
    "    command: '  python -m greeting && echo done  '\n"
    "    numprocesses: 0\n"
    "    cwd: /srv/greeting\n"
    "    restart: never\n"
    "    stop_signal: 9\n"
    "    stop_timeout: 1.5\n"
    "  Worker_2:\n"
    "    command: ./worker\n"
    "    restart: always\n"
    "    stop_signal: term\n"
    "    stop_timeout: 2s\n"
    "sockets:\n"
    "  Web:\n"
    "    port: 4080\n"
    "  admin:\n"
    "    host: 0.0.0.0\n"
    "    port: 0\n"
    "  ctl:\n"
    "    path: run/ctl.sock\n"
    "logs:\n"
    "  buffer_lines: 1000\n"
    "  file_max_mb: 8\n"
    "  keep_files: 0\n";

static void test_full_file(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    setenv("DEVNODE_TEST_A", "alpha", 1);
    load_ok(fx, full_yaml, NULL, &cfg);

    assert_string_equal(cfg.path, fx->config_path);
    assert_string_equal(cfg.dir, fx->dir);
    assert_int_equal(cfg.service_count, 3);

    const struct config_service *web = &cfg.services[0];
    assert_string_equal(web->name, "Web");
    assert_int_equal(web->line, 5);
    assert_string_equal(web->command, "lymph instance --config=conf/web.yml");
    assert_int_equal(web->numprocesses, 2);
    assert_int_equal(web->env_count, 5);
    assert_string_equal(web->env[0].name, "APP_MODE");
    assert_string_equal(web->env[0].value, "dev");
    assert_string_equal(web->env[1].name, "DEBUG");
    assert_string_equal(web->env[1].value, "yes");
    assert_string_equal(web->env[2].name, "ZIP");
    assert_string_equal(web->env[2].value, "08");
    assert_string_equal(web->env[3].name, "EMPTY");
    assert_string_equal(web->env[3].value, "");
    assert_string_equal(web->env[4].name, "FROM_ENV");
    assert_string_equal(web->env[4].value, "alpha-x");
    char *web_cwd = join(fx->dir, "services/web");
    assert_string_equal(web->cwd, web_cwd);
    free(web_cwd);
    assert_int_equal(web->restart, RESTART_ON_FAILURE);
    assert_int_equal(web->stop_signal, SIGINT);
    assert_int_equal(web->stop_timeout_ms, 500);
    assert_int_equal(web->socket_count, 2);
    assert_string_equal(web->sockets[0], "Web");
    assert_string_equal(web->sockets[1], "admin");

    const struct config_service *greeting = &cfg.services[1];
    assert_string_equal(greeting->name, "Greeting");
    assert_string_equal(greeting->command, "python -m greeting && echo done");
    assert_int_equal(greeting->numprocesses, 0);
    assert_int_equal(greeting->env_count, 0);
    assert_null(greeting->env);
    assert_string_equal(greeting->cwd, "/srv/greeting");
    assert_int_equal(greeting->restart, RESTART_NEVER);
    assert_int_equal(greeting->stop_signal, SIGKILL);
    assert_int_equal(greeting->stop_timeout_ms, 1500);
    assert_int_equal(greeting->socket_count, 0);

    const struct config_service *worker = &cfg.services[2];
    assert_string_equal(worker->name, "Worker_2");
    assert_int_equal(worker->restart, RESTART_ALWAYS);
    assert_int_equal(worker->stop_signal, SIGTERM);
    assert_int_equal(worker->stop_timeout_ms, 2000);

    assert_int_equal(cfg.socket_count, 3);
    assert_string_equal(cfg.sockets[0].name, "Web");
    assert_string_equal(cfg.sockets[0].host, "127.0.0.1");
    assert_int_equal(cfg.sockets[0].port, 4080);
    assert_null(cfg.sockets[0].path);
    assert_int_equal(cfg.sockets[0].line, 32);
    assert_string_equal(cfg.sockets[1].name, "admin");
    assert_string_equal(cfg.sockets[1].host, "0.0.0.0");
    assert_int_equal(cfg.sockets[1].port, 0);
    assert_string_equal(cfg.sockets[2].name, "ctl");
    assert_null(cfg.sockets[2].host);
    assert_int_equal(cfg.sockets[2].port, -1);
    char *ctl_path = join(fx->dir, "run/ctl.sock");
    assert_string_equal(cfg.sockets[2].path, ctl_path);
    free(ctl_path);

    assert_int_equal(cfg.logs.buffer_lines, 1000);
    assert_int_equal(cfg.logs.file_max_mb, 8);
    assert_int_equal(cfg.logs.keep_files, 0);

    assert_int_equal(cfg.note_count, 1);
    assert_string_equal(cfg.notes[0], "container: read by lymph services, ignored by the node");

    assert_ptr_equal(config_find_service(&cfg, "Greeting"), greeting);
    assert_null(config_find_service(&cfg, "greeting"));
    assert_null(config_find_service(&cfg, "Nope"));
    config_free(&cfg);
    assert_null(cfg.services);
    config_free(&cfg); /* a freed config is empty, freeing it again is harmless */
    unsetenv("DEVNODE_TEST_A");
}

static void test_defaults(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    load_ok(fx,
            "instances:\n"
            "  Greeting:\n"
            "    command: lymph instance --config=conf/greeting.yml\n"
            "    numprocesses:\n"
            "    env:\n",
            NULL, &cfg);
    assert_int_equal(cfg.service_count, 1);
    const struct config_service *svc = &cfg.services[0];
    assert_int_equal(svc->numprocesses, 1);
    assert_int_equal(svc->env_count, 0);
    assert_string_equal(svc->cwd, fx->dir);
    assert_int_equal(svc->restart, RESTART_ALWAYS);
    assert_int_equal(svc->stop_signal, SIGTERM);
    assert_int_equal(svc->stop_timeout_ms, 10000);
    assert_int_equal(svc->socket_count, 0);
    assert_int_equal(cfg.socket_count, 0);
    assert_int_equal(cfg.logs.buffer_lines, 200000);
    assert_int_equal(cfg.logs.file_max_mb, 64);
    assert_int_equal(cfg.logs.keep_files, 5);
    assert_int_equal(cfg.note_count, 0);
    config_free(&cfg);
}

static void test_empty_and_instance_free_files(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    const char *files[] = {"", "# only a comment\n", "---\n", "instances:\n",
                           "sockets:\n  Web: {port: 4080}\n", "instances: {}\nsockets: []\nlogs: {}\n"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        load_ok(fx, files[i], NULL, &cfg);
        assert_int_equal(cfg.service_count, 0);
        assert_null(cfg.services);
        assert_string_equal(cfg.path, fx->config_path);
        assert_int_equal(cfg.logs.buffer_lines, 200000);
        config_free(&cfg);
    }
}

static void test_sockets_list_form(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    load_ok(fx,
            "sockets:\n"
            "  - port: 4080\n"
            "  - host: 10.0.0.1\n"
            "    port: 4081\n"
            "  - name: api\n"
            "    path: ../api.sock\n"
            "instances:\n"
            "  Web:\n"
            "    command: web\n"
            "    sockets: [socket0, socket1, api]\n",
            NULL, &cfg);
    assert_int_equal(cfg.socket_count, 3);
    assert_string_equal(cfg.sockets[0].name, "socket0");
    assert_string_equal(cfg.sockets[0].host, "127.0.0.1");
    assert_int_equal(cfg.sockets[0].port, 4080);
    assert_int_equal(cfg.sockets[0].line, 2);
    assert_string_equal(cfg.sockets[1].name, "socket1");
    assert_string_equal(cfg.sockets[1].host, "10.0.0.1");
    assert_int_equal(cfg.sockets[1].port, 4081);
    assert_string_equal(cfg.sockets[2].name, "api");
    assert_int_equal(cfg.sockets[2].port, -1);
    assert_null(cfg.sockets[2].host);
    /* "../api.sock" is resolved against the config dir, so it lands in its parent */
    char *parent = format("%s", fx->dir);
    *strrchr(parent, '/') = '\0';
    char *want = join(parent, "api.sock");
    free(parent);
    assert_string_equal(cfg.sockets[2].path, want);
    free(want);
    assert_int_equal(cfg.services[0].socket_count, 3);
    config_free(&cfg);
}

static void test_stop_timeout_forms(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        const char *text;
        unsigned ms;
    } cases[] = {
        {"500ms", 500}, {"1.5", 1500}, {"2s", 2000}, {"0.5", 500}, {"0", 0},
        {"10", 10000},  {"0.25s", 250}, {"3600", 3600000}, {"\"750ms\"", 750}, {"0.0004", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml), "instances:\n  W:\n    command: x\n    stop_timeout: %s\n",
                 cases[i].text);
        struct config cfg;
        load_ok(fx, yaml, NULL, &cfg);
        assert_int_equal(cfg.services[0].stop_timeout_ms, cases[i].ms);
        config_free(&cfg);
    }
}

static void test_stop_signal_forms(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        const char *text;
        int sig;
    } cases[] = {
        {"TERM", SIGTERM}, {"SIGTERM", SIGTERM}, {"term", SIGTERM}, {"15", SIGTERM},
        {"INT", SIGINT},   {"HUP", SIGHUP},      {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
        {"USR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"40", 40},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml), "instances:\n  W:\n    command: x\n    stop_signal: %s\n",
                 cases[i].text);
        struct config cfg;
        load_ok(fx, yaml, NULL, &cfg);
        assert_int_equal(cfg.services[0].stop_signal, cases[i].sig);
        config_free(&cfg);
    }
}

static void test_parse_signal_and_name(void **state)
{
    assert_int_equal(config_parse_signal("TERM"), SIGTERM);
    assert_int_equal(config_parse_signal("SIGTERM"), SIGTERM);
    assert_int_equal(config_parse_signal("term"), SIGTERM);
    assert_int_equal(config_parse_signal("sigkill"), SIGKILL);
    assert_int_equal(config_parse_signal("15"), 15);
    assert_int_equal(config_parse_signal("1"), 1);
    assert_int_equal(config_parse_signal("64"), 64);
    assert_int_equal(config_parse_signal("0"), -1);
    assert_int_equal(config_parse_signal("65"), -1);
    assert_int_equal(config_parse_signal("99999999999"), -1);
    assert_int_equal(config_parse_signal("-15"), -1);
    assert_int_equal(config_parse_signal("15x"), -1);
    assert_int_equal(config_parse_signal(""), -1);
    assert_int_equal(config_parse_signal(NULL), -1);
    assert_int_equal(config_parse_signal("SIG"), -1);
    assert_int_equal(config_parse_signal("NOPE"), -1);
    assert_string_equal(config_signal_name(SIGTERM), "TERM");
    assert_string_equal(config_signal_name(SIGINT), "INT");
    assert_string_equal(config_signal_name(SIGKILL), "KILL");
    assert_string_equal(config_signal_name(SIGUSR2), "USR2");
    assert_string_equal(config_signal_name(0), "?");
    assert_string_equal(config_signal_name(200), "?");
}

static void test_lymph_keys_accepted_with_notes(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    load_ok(fx,
            "name: demo\n"
            "container:\n"
            "  registry:\n"
            "    class: lymph.discovery.zookeeper:ZookeeperServiceRegistry\n"
            "interfaces:\n"
            "  echo@1.5.0: {class: echo:Echo}\n"
            "dependencies: {kazoo: {class: kazoo.client:KazooClient}}\n"
            "plugins: {sentry: {class: lymph.plugins.sentry:SentryPlugin, dsn: $(env.DEVNODE_TEST_NOPE)}}\n"
            "logging: {version: 1}\n"
            "debug: {backdoor_ip: 127.0.0.1}\n"
            "registry: {class: x}\n"
            "event_system: {class: y}\n"
            "components: {SerialEventHandler: {zkclient: 'dep:kazoo'}}\n"
            "instances:\n"
            "  echo:\n"
            "    command: lymph instance --config=conf/echo.yml\n",
            NULL, &cfg);
    static const char *const keys[] = {"name", "container", "interfaces", "dependencies",
                                       "plugins", "logging", "debug", "registry",
                                       "event_system", "components"};
    assert_int_equal(cfg.note_count, 10);
    for (size_t i = 0; i < 10; i++) {
        char want[128];
        snprintf(want, sizeof(want), "%s: read by lymph services, ignored by the node", keys[i]);
        assert_string_equal(cfg.notes[i], want);
    }
    assert_int_equal(cfg.service_count, 1);
    config_free(&cfg);
}

static void test_other_namespaces_left_untouched(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    load_ok(fx,
            "instances:\n"
            "  Web:\n"
            "    command: serve --fd=$(socket.Web.fd) --port $(socket.Web.port) --at \"$(date)\" $(HOME) $env.HOME $(env.) $$\n"
            "    env:\n"
            "      FD: $(socket.Web.fd)\n"
            "sockets:\n"
            "  Web: {port: 4080}\n",
            NULL, &cfg);
    assert_string_equal(cfg.services[0].command,
                        "serve --fd=$(socket.Web.fd) --port $(socket.Web.port) --at \"$(date)\" "
                        "$(HOME) $env.HOME $(env.) $$");
    assert_string_equal(cfg.services[0].env[0].value, "$(socket.Web.fd)");
    config_free(&cfg);
}

static void test_interpolation(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    setenv("DEVNODE_TEST_A", "alpha", 1);
    setenv("DEVNODE_TEST_N", "3", 1);
    setenv("DEVNODE_TEST_EMPTY", "", 1);
    load_ok(fx,
            "instances:\n"
            "  Web:\n"
            "    command: x_$(env.DEVNODE_TEST_A)_$(var.db.primary.host)_y$(env.DEVNODE_TEST_EMPTY)\n"
            "    numprocesses: $(env.DEVNODE_TEST_N)\n"
            "    stop_timeout: $(var.timeouts.stop)\n"
            "    env:\n"
            "      DB_PORT: $(var.db.primary.port)\n"
            "      URL: \"http://$(var.db.primary.host):$(var.db.primary.port)/$(env.DEVNODE_TEST_A)\"\n"
            "      RAW: $(var.dashed-key)\n",
            "db:\n"
            "  primary:\n"
            "    host: db.local\n"
            "    port: 5432\n"
            "timeouts: {stop: 250ms}\n"
            "dashed-key: ok\n",
            &cfg);
    const struct config_service *svc = &cfg.services[0];
    assert_string_equal(svc->command, "x_alpha_db.local_y");
    assert_int_equal(svc->numprocesses, 3);
    assert_int_equal(svc->stop_timeout_ms, 250);
    assert_string_equal(svc->env[0].value, "5432");
    assert_string_equal(svc->env[1].value, "http://db.local:5432/alpha");
    assert_string_equal(svc->env[2].value, "ok");
    config_free(&cfg);
    unsetenv("DEVNODE_TEST_A");
    unsetenv("DEVNODE_TEST_N");
    unsetenv("DEVNODE_TEST_EMPTY");
}

static void test_relative_config_path(void **state)
{
    struct fixture *fx = *state;
    char old_cwd[PATH_MAX];
    assert_non_null(getcwd(old_cwd, sizeof(old_cwd)));
    write_file(fx->config_path, "instances:\n  W: {command: x, cwd: sub}\n");
    assert_int_equal(chdir(fx->dir), 0);
    struct config cfg;
    int rc = config_load("lymph.yml", NULL, &cfg, fx->err, sizeof(fx->err));
    assert_int_equal(chdir(old_cwd), 0);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.path, fx->config_path);
    assert_string_equal(cfg.dir, fx->dir);
    char *want = join(fx->dir, "sub");
    assert_string_equal(cfg.services[0].cwd, want);
    free(want);
    config_free(&cfg);
}

/* ---- errors: each names file:line:col, the key path and what is wrong ---- */

static void test_error_yaml_syntax(void **state)
{
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: [lymph\n",
               NULL,
               "4:1: YAML syntax error: did not find expected ',' or ']' "
               "(while parsing a flow sequence at line 3, column 14)");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "   numprocesses: 2\n",
               NULL,
               "4:4: YAML syntax error: did not find expected key "
               "(while parsing a block mapping at line 2, column 3)");
}

static void test_error_unknown_top_level_key(void **state)
{
    load_fails(*state,
               "instances:\n"
               "  Web: {command: x}\n"
               "instance:\n"
               "  Web: {command: y}\n",
               NULL,
               "3:1: instance: unknown key (the node reads instances, sockets, logs, streams, port_base, env_file, backends; "
               "lymph's service keys like container are accepted and ignored)");
}

/* backends: the registry URL is checked as zkurl reads it, an address must be one others can
 * call, events must be an amqp:// URL (and the message never repeats it: it holds a password). */
static void test_backends(void **state)
{
    struct config cfg;
    load_ok(*state,
            "backends:\n"
            "  registry: zookeeper://zk1,zk2:2182/devnode\n"
            "  ip: 10.0.0.5\n"
            "instances:\n"
            "  Web: {command: x}\n",
            NULL, &cfg);
    assert_string_equal(cfg.backends.registry, "zookeeper://zk1,zk2:2182/devnode");
    assert_string_equal(cfg.backends.ip, "10.0.0.5");
    assert_null(cfg.backends.events);
    config_free(&cfg);
    load_ok(*state, "backends:\n  events: amqp://g:secret@mq:5672/%2F\ninstances:\n  Web: {command: x}\n", NULL, &cfg);
    assert_string_equal(cfg.backends.events, "amqp://g:secret@mq:5672/%2F");
    config_free(&cfg);
    load_ok(*state, "instances:\n  Web: {command: x}\n", NULL, &cfg);
    assert_null(cfg.backends.registry);
    assert_null(cfg.backends.ip);
    config_free(&cfg);
    load_fails(*state, "backends:\n  registry: http://zk:2181\n", NULL,
               "2:13: backends.registry: registry URL column 1: the scheme must be zookeeper:// "
               "(expected zookeeper://host:port[,host:port...][/chroot])");
    load_fails(*state, "backends:\n  events: http://g:secret@h/v\n", NULL,
               "2:11: backends.events: not an AMQP URL: want amqp://user:pass@host:5672/vhost (the vhost "
               "percent-encoded: %2F for /)");
    load_fails(*state, "backends:\n  events: amqps://g:secret@h/v\n", NULL,
               "2:11: backends.events: amqps:// (TLS) is not supported: want amqp://user:pass@host:5672/vhost");
    load_fails(*state, "backends:\n  ip: 0.0.0.0\n", NULL,
               "2:7: backends.ip: '0.0.0.0' is not an IPv4 address other machines can call (0.0.0.0 cannot be "
               "registered)");
    load_fails(*state, "backends:\n  ip: zk.local\n", NULL,
               "2:7: backends.ip: 'zk.local' is not an IPv4 address other machines can call (0.0.0.0 cannot be "
               "registered)");
    load_fails(*state, "backends: zookeeper://zk\n", NULL,
               "1:11: backends: must be a map (registry, events, ip), got a scalar");
}

/* PORT: a block of 100 per service in config order, whatever the service; the first TCP
 * socket's port for a service with sockets; the user's env: PORT above both. */
static void test_port_blocks_and_sources(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    const struct config_socket *sock;
    load_ok(fx,
            "instances:\n"
            "  A: {command: a, numprocesses: 2}\n"
            "  Web: {command: w}\n"
            "  B: {command: b, env: {PORT: '8000'}}\n"
            "  C: {command: 'c --fd $(socket.Api.fd)'}\n"
            "  D: {command: d, sockets: [Ctl]}\n"
            "sockets:\n"
            "  Web: {port: 4080}\n"
            "  Api: {port: 4090}\n"
            "  Ctl: {path: /tmp/ctl.sock}\n",
            NULL, &cfg);
    assert_int_equal(cfg.port_base, 5000);
    assert_int_equal(config_service_port(&cfg, &cfg.services[0], &sock), PORT_FROM_BLOCK);
    assert_int_equal(config_block_port(&cfg.services[0], 0), 5000);
    assert_int_equal(config_block_port(&cfg.services[0], 1), 5001);
    assert_int_equal(config_block_port(&cfg.services[0], 99), 5099);
    assert_int_equal(config_block_port(&cfg.services[0], 100), -1);
    assert_int_equal(config_service_port(&cfg, &cfg.services[1], &sock), PORT_FROM_SOCKET);
    assert_string_equal(sock->name, "Web");
    assert_int_equal(config_service_port(&cfg, &cfg.services[2], &sock), PORT_FROM_ENV);
    assert_int_equal(config_block_port(&cfg.services[2], 0), 5200); /* kept, though unused */
    assert_int_equal(config_service_port(&cfg, &cfg.services[3], &sock), PORT_FROM_SOCKET);
    assert_string_equal(sock->name, "Api");
    assert_int_equal(config_service_port(&cfg, &cfg.services[4], &sock), PORT_FROM_NONE);
    assert_int_equal(config_check_ports(&cfg, fx->config_path, 0, fx->err, sizeof fx->err), 0);
    assert_int_equal(config_check_ports(&cfg, fx->config_path, 7000, fx->err, sizeof fx->err), 0);
    assert_int_equal(config_block_port(&cfg.services[0], 1), 7001);
    assert_int_equal(config_block_port(&cfg.services[2], 0), 7200);
    config_free(&cfg);

    load_ok(fx, "port_base: 6000\ninstances:\n  A: {command: a}\n", NULL, &cfg);
    assert_int_equal(config_block_port(&cfg.services[0], 0), 6000);
    config_free(&cfg);
}

static void test_error_ports(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    load_ok(fx,
            "instances:\n"
            "  A: {command: a}\n"
            "  B: {command: b, numprocesses: 3}\n"
            "sockets:\n"
            "  Web: {port: 5102}\n",
            NULL, &cfg);
    assert_int_equal(config_check_ports(&cfg, fx->config_path, 0, fx->err, sizeof fx->err), -1);
    assert_error(fx->err, format("%s:3:3: instances.B: PORT 5102 of B.2 is the port of sockets.Web (line 5), "
                                 "which the node holds: a worker that binds $PORT would fail with "
                                 "\"Address already in use\" (change port_base, or give B an env: PORT)",
                                 fx->config_path));
    assert_int_equal(config_check_ports(&cfg, fx->config_path, 6000, fx->err, sizeof fx->err), 0);
    config_free(&cfg);

    load_ok(fx,
            "instances:\n"
            "  A:\n"
            "    command: a\n"
            "    env: {PORT: 4080}\n"
            "sockets:\n"
            "  Web: {port: 4080}\n",
            NULL, &cfg);
    assert_int_equal(config_check_ports(&cfg, fx->config_path, 0, fx->err, sizeof fx->err), -1);
    assert_error(fx->err, format("%s:4:17: instances.A.env.PORT: PORT 4080 is the port of sockets.Web (line 6), "
                                 "which the node holds: a worker that binds $PORT would fail with "
                                 "\"Address already in use\"", fx->config_path));
    config_free(&cfg);

    load_ok(fx, "port_base: 65500\ninstances:\n  A: {command: a}\n  B: {command: b}\n", NULL, &cfg);
    assert_int_equal(config_check_ports(&cfg, fx->config_path, 0, fx->err, sizeof fx->err), -1);
    assert_error(fx->err, format("%s:1:12: port_base: B's PORT block would start at 65600, past 65535 "
                                 "(lower port_base, or give B an env: PORT)", fx->config_path));
    config_free(&cfg);
    load_fails(fx, "port_base: 0\n", NULL, "1:12: port_base: must be between 1 and 65535, got 0");
}

static void test_error_top_level_not_a_map(void **state)
{
    load_fails(*state, "- instances\n", NULL,
               "1:1: the top level must be a map (instances, sockets, logs, streams, port_base, env_file, backends), got a list");
}

static void test_error_unknown_service_key(void **state)
{
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    numprocess: 2\n",
               NULL,
               "4:5: instances.Web.numprocess: unknown key (a service takes command, "
               "numprocesses, env, env_file, cwd, restart, max_restarts, restart_window, stop_signal, stop_timeout, "
               "sockets, ready, depends_on, disabled, watch, ignore, watch_debounce, stdin, tty, live)");
}

static void test_error_wrong_types(void **state)
{
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command:\n"
               "      run: x\n",
               NULL, "4:7: instances.Web.command: must be a string, got a map");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    numprocesses: three\n",
               NULL, "4:19: instances.Web.numprocesses: must be an integer, got \"three\"");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    numprocesses: [1]\n",
               NULL, "4:19: instances.Web.numprocesses: must be an integer, got a list");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    env: [A=1]\n",
               NULL, "4:10: instances.Web.env: must be a map of NAME: value, got a list");
    load_fails(*state, "instances:\n  - Web\n", NULL,
               "2:3: instances: must be a map of service name to settings, got a list");
    load_fails(*state, "instances:\n  Web: run\n", NULL,
               "2:8: instances.Web: must be a map of service settings (command, ...), got a scalar");
}

static void test_error_negative_count(void **state)
{
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    numprocesses: -1\n",
               NULL, "4:19: instances.Web.numprocesses: must be a non-negative integer, got -1");
}

static void test_error_empty_and_missing_command(void **state)
{
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: \"   \"\n",
               NULL, "3:14: instances.Web.command: must not be empty: give the shell command to run");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command:\n"
               "    numprocesses: 2\n",
               NULL, "3:5: instances.Web.command: must not be empty: give the shell command to run");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    numprocesses: 2\n",
               NULL, "2:3: instances.Web: missing required key \"command\"");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "  Api: {command: x}\n",
               NULL, "2:3: instances.Web: missing required key \"command\"");
}

static void test_error_bad_service_name(void **state)
{
    load_fails(*state,
               "instances:\n"
               "  Web.1:\n"
               "    command: x\n",
               NULL,
               "2:3: instances.Web.1: service names may use only letters, digits, '_' and '-' "
               "(they are addressed as NAME.N)");
}

static void test_error_duplicate_service_and_key(void **state)
{
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: a\n"
               "  Api:\n"
               "    command: b\n"
               "  Web:\n"
               "    command: c\n",
               NULL, "6:3: instances.Web: duplicate key (first defined at line 2)");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: a\n"
               "    env:\n"
               "      A: 1\n"
               "      A: 2\n",
               NULL, "6:7: instances.Web.env.A: duplicate key (first defined at line 5)");
    /* also inside sections the node ignores */
    load_fails(*state,
               "container:\n"
               "  ip: 1.2.3.4\n"
               "  ip: 5.6.7.8\n",
               NULL, "3:3: container.ip: duplicate key (first defined at line 2)");
}

static void test_error_undefined_env_variable(void **state)
{
    unsetenv("DEVNODE_TEST_NOPE");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: run --token=$(env.DEVNODE_TEST_NOPE)\n",
               NULL, "3:14: instances.Web.command: undefined variable $(env.DEVNODE_TEST_NOPE)");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    env:\n"
               "      TOKEN: $(env.DEVNODE_TEST_NOPE)\n",
               NULL, "5:14: instances.Web.env.TOKEN: undefined variable $(env.DEVNODE_TEST_NOPE)");
}

/* Commands beside a node read names and streams: an undefined variable stays as written. */
static void test_unresolved_load_keeps_undefined_variables(void **state)
{
    struct fixture *fx = *state;
    unsetenv("DEVNODE_TEST_NOPE");
    setenv("DEVNODE_TEST_SET", "yes", 1);
    write_file(fx->config_path, "instances:\n"
                                "  Db:\n"
                                "    command: run $(env.DEVNODE_TEST_NOPE) $(var.db.host) $(env.DEVNODE_TEST_SET)\n"
                                "streams:\n"
                                "  book.#: {retain_events: 10}\n");
    struct config cfg;
    assert_int_equal(config_load_unresolved(fx->config_path, &cfg, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(cfg.service_count, 1);
    assert_string_equal(cfg.services[0].command, "run $(env.DEVNODE_TEST_NOPE) $(var.db.host) yes");
    assert_int_equal(cfg.stream_count, 1);
    config_free(&cfg);
    /* Everything else is still checked. */
    write_file(fx->config_path, "instances:\n  Db:\n    command: x\n    numprocesses: many\n");
    assert_int_equal(config_load_unresolved(fx->config_path, &cfg, fx->err, sizeof(fx->err)), -1);
    unsetenv("DEVNODE_TEST_SET");
}

/* .env < the shell < top-level env_file < service env_file < env:, merged into one entry per
 * name with its final value and origin; .env's PORT and the names the shell sets are left to
 * the node (docs/config.md "Environment files"). */
static void test_env_layers(void **state)
{
    struct fixture *fx = *state;
    setenv("DEVNODE_TEST_SHELL", "shell", 1);
    char *dotenv = join(fx->dir, ".env"), *common = join(fx->dir, "common.env"), *own = join(fx->dir, "own.env");
    write_file(dotenv, "A=dotenv\nDEVNODE_TEST_SHELL=dotenv\nPORT=3000\nB=dotenv\nURL=db\n");
    write_file(common, "B=common\nC=common\nSEEN=${DEVNODE_TEST_SHELL}/${A}\n");
    write_file(own, "C=own\nD=own\n");
    struct config cfg;
    load_ok(fx, "env_file: [common.env]\n"
                "instances:\n"
                "  Web:\n"
                "    command: x $(env.URL)\n"
                "    env: {D: env}\n"
                "    env_file: [own.env]\n"
                "  Plain:\n"
                "    command: y\n", NULL, &cfg);
    assert_string_equal(cfg.dotenv_path, dotenv);
    assert_int_equal(cfg.dotenv_count, 5);
    assert_int_equal(cfg.env_file_count, 1);
    assert_string_equal(cfg.env_files[0], common);
    const struct config_service *web = &cfg.services[0];
    assert_string_equal(web->command, "x db");
    assert_int_equal(web->env_file_count, 1);
    assert_string_equal(web->env_files[0], own);
    static const struct {
        const char *name, *value, *file;
        int line;
        enum config_env_layer layer;
    } want[] = {
        {"A", "dotenv", ".env", 1, ENV_FROM_DOTENV},
        {"B", "common", "common.env", 1, ENV_FROM_FILE},
        {"URL", "db", ".env", 5, ENV_FROM_DOTENV},
        {"C", "own", "own.env", 1, ENV_FROM_SERVICE_FILE},
        {"SEEN", "shell/dotenv", "common.env", 3, ENV_FROM_FILE},
        {"D", "env", NULL, 5, ENV_FROM_ENV},
    };
    assert_int_equal(web->env_count, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < web->env_count; i++) {
        const struct config_env_var *v = &web->env[i];
        assert_string_equal(v->name, want[i].name);
        assert_string_equal(v->value, want[i].value);
        assert_int_equal(v->line, want[i].line);
        assert_int_equal(v->layer, want[i].layer);
        if (want[i].file) {
            char *path = join(fx->dir, want[i].file);
            assert_string_equal(v->file, path);
            free(path);
        } else {
            assert_null(v->file);
        }
    }
    assert_null(config_service_env(web, "PORT"));
    assert_int_equal(config_service_port(&cfg, web, NULL), PORT_FROM_BLOCK);
    const struct config_service *plain = &cfg.services[1];
    assert_string_equal(config_service_env(plain, "C"), "common");
    assert_null(config_service_env(plain, "D"));
    assert_int_equal(plain->env_count, 5);
    config_free(&cfg);

    /* --no-dotenv: nothing of .env, and $(env.URL) is undefined again. */
    write_file(fx->config_path, "instances:\n  Web:\n    command: x\n");
    assert_int_equal(config_load_flags(fx->config_path, NULL, CONFIG_NO_DOTENV, &cfg, fx->err, sizeof fx->err), 0);
    assert_null(cfg.dotenv_path);
    assert_int_equal(cfg.services[0].env_count, 0);
    config_free(&cfg);
    unsetenv("DEVNODE_TEST_SHELL");
    free(dotenv);
    free(common);
    free(own);
}

static void test_error_env_files(void **state)
{
    struct fixture *fx = *state;
    char *dotenv = join(fx->dir, ".env"), *bad = join(fx->dir, "bad.env");
    write_file(dotenv, "A=1\nB='open\n");
    char *want = format("%s:2: the single quote of B's value is not closed", dotenv);
    write_file(fx->config_path, "instances:\n  Web:\n    command: x\n");
    struct config cfg;
    memset(&cfg, 0xA5, sizeof cfg);
    assert_int_equal(config_load(fx->config_path, NULL, &cfg, fx->err, sizeof fx->err), -1);
    assert_error(fx->err, want);
    assert_null(cfg.dotenv);
    /* Commands that want only the names read no env file at all. */
    assert_int_equal(config_load_unresolved(fx->config_path, &cfg, fx->err, sizeof fx->err), 0);
    config_free(&cfg);
    write_file(fx->config_path, "instances:\n  Web:\n    command: x\n    env_file: [bad.env, nope.env]\n");
    write_file(bad, "OK=1\n\n3RD=x\n");
    assert_int_equal(config_load_unresolved(fx->config_path, &cfg, fx->err, sizeof fx->err), 0);
    assert_int_equal(cfg.services[0].env_file_count, 0);
    config_free(&cfg);
    remove(dotenv);

    want = format("%s:3: expected a variable name (letters, digits and '_', not starting with a digit), got '3'", bad);
    assert_int_equal(config_load(fx->config_path, NULL, &cfg, fx->err, sizeof fx->err), -1);
    assert_error(fx->err, want);
    write_file(bad, "OK=1\n");
    load_fails(fx, "instances:\n  Web:\n    command: x\n    env_file: [bad.env, nope.env]\n", NULL,
               "4:25: instances.Web.env_file[1]: cannot read nope.env: No such file or directory");
    load_fails(fx, "env_file: common.env\n", NULL,
               "1:11: env_file: must be a list of environment files ([.env.local, secrets.env]), got a scalar");
    load_fails(fx, "env_file: [.]\n", NULL, "1:12: env_file[0]: cannot read .: Is a directory");
    load_fails(fx, "env_file: [/dev/null]\n", NULL, "1:12: env_file[0]: cannot read /dev/null: not a regular file");
    free(dotenv);
    free(bad);
}

static void test_error_undefined_var_variable(void **state)
{
    struct fixture *fx = *state;
    const char *yaml = "instances:\n"
                       "  Web:\n"
                       "    command: x\n"
                       "    cwd: /srv/$(var.db.replica.host)\n";
    load_fails(fx, yaml, "db:\n  primary:\n    host: a\n",
               "4:10: instances.Web.cwd: undefined variable $(var.db.replica.host)");
    load_fails(fx, yaml, NULL,
               "4:10: instances.Web.cwd: undefined variable $(var.db.replica.host) "
               "(no vars file was given)");
    char *want = format("4:10: instances.Web.cwd: $(var.db.replica.host) is a map in %s, "
                        "but only a scalar can be interpolated",
                        fx->vars_path);
    load_fails(fx, yaml, "db:\n  replica:\n    host: {a: 1}\n", want);
    free(want);
}

static void test_error_bad_vars_file(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->config_path, "instances:\n  Web: {command: $(var.a)}\n");
    write_file(fx->vars_path, "a: 1\nb: [2\n");
    struct config cfg;
    assert_int_equal(config_load(fx->config_path, fx->vars_path, &cfg, fx->err, sizeof(fx->err)), -1);
    assert_error(fx->err, format("%s:3:1: YAML syntax error: did not find expected ',' or ']' "
                                 "(while parsing a flow sequence at line 2, column 4)",
                                 fx->vars_path));

    write_file(fx->vars_path, "- a\n");
    assert_int_equal(config_load(fx->config_path, fx->vars_path, &cfg, fx->err, sizeof(fx->err)), -1);
    assert_error(fx->err, format("%s:1:1: a vars file must be a map of names to values, got a list",
                                 fx->vars_path));

    char *missing = format("%s/none.yml", fx->dir);
    assert_int_equal(config_load(fx->config_path, missing, &cfg, fx->err, sizeof(fx->err)), -1);
    assert_error(fx->err, format("%s: cannot read: No such file or directory", missing));
    free(missing);
}

static void test_error_cannot_read(void **state)
{
    struct fixture *fx = *state;
    char *missing = format("%s/none.yml", fx->dir);
    struct config cfg;
    assert_int_equal(config_load(missing, NULL, &cfg, fx->err, sizeof(fx->err)), -1);
    assert_error(fx->err, format("%s: cannot read: No such file or directory", missing));
    assert_null(cfg.path);
    free(missing);

    assert_int_equal(config_load(fx->dir, NULL, &cfg, fx->err, sizeof(fx->err)), -1);
    assert_error(fx->err, format("%s: cannot read: Is a directory", fx->dir));
}

static void test_error_unknown_socket_reference(void **state)
{
    load_fails(*state,
               "sockets:\n"
               "  Web: {port: 4080}\n"
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    sockets:\n"
               "      - Web\n"
               "      - Admin\n",
               NULL,
               "8:9: instances.Web.sockets[1]: no socket named \"Admin\" under the top-level sockets:");
}

/* A $(socket.X) that spawn could not expand is refused at load, where `check` sees it. */
static void test_error_unknown_socket_in_command(void **state)
{
    load_fails(*state,
               "sockets:\n"
               "  Web: {port: 4080}\n"
               "  Api: {port: 4081}\n"
               "instances:\n"
               "  Web:\n"
               "    command: serve --fd $(socket.Web.fd) --admin $(socket.Admin.port)\n",
               NULL,
               "6:14: instances.Web.command: $(socket.Admin.port) names no socket under the top-level sockets: "
               "(defined: Web, Api)");
    load_fails(*state, "instances:\n  Web:\n    command: serve $(socket.Web.fd)\n", NULL,
               "3:14: instances.Web.command: $(socket.Web.fd) names no socket under the top-level sockets: "
               "(none defined)");
    load_fails(*state, "sockets:\n  Web: {port: 0}\ninstances:\n  Web:\n    command: serve $(socket.Web.name)\n",
               NULL, "5:14: instances.Web.command: $(socket.Web.name): a socket has only .fd and .port");
}

static void test_error_socket_port_and_path(void **state)
{
    load_fails(*state,
               "sockets:\n"
               "  Web:\n"
               "    port: 4080\n"
               "    path: web.sock\n",
               NULL, "4:5: sockets.Web.path: give either port (TCP) or path (unix socket), not both");
    load_fails(*state,
               "sockets:\n"
               "  Web:\n"
               "    host: 0.0.0.0\n",
               NULL, "2:3: sockets.Web: needs a port (TCP) or a path (unix socket)");
    load_fails(*state,
               "sockets:\n"
               "  - port: 1\n"
               "  - host: 0.0.0.0\n",
               NULL, "3:5: sockets[1]: needs a port (TCP) or a path (unix socket)");
    load_fails(*state,
               "sockets:\n"
               "  Web:\n"
               "    port: 1\n"
               "    backlog: 5\n",
               NULL, "4:5: sockets.Web.backlog: unknown key (a socket takes host, port, path)");
}

static void test_error_socket_port_out_of_range(void **state)
{
    load_fails(*state,
               "sockets:\n"
               "  Web:\n"
               "    port: 70000\n",
               NULL, "3:11: sockets.Web.port: must be between 0 and 65535, got 70000");
    load_fails(*state,
               "sockets:\n"
               "  - port: -5\n",
               NULL, "2:11: sockets[0].port: must be a non-negative integer, got -5");
}

static void test_error_duplicate_socket_name(void **state)
{
    load_fails(*state,
               "sockets:\n"
               "  - port: 1\n"
               "  - name: socket0\n"
               "    port: 2\n",
               NULL, "3:5: sockets[1]: duplicate socket name \"socket0\" (first defined at line 2)");
}

static void test_error_bad_restart(void **state)
{
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    restart: sometimes\n",
               NULL, "4:14: instances.Web.restart: must be always, on-failure or never, got \"sometimes\"");
}

static void test_error_bad_stop_signal(void **state)
{
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    stop_signal: SIGFOO\n",
               NULL,
               "4:18: instances.Web.stop_signal: must be a signal name like TERM or SIGINT, "
               "or a number 1..64, got \"SIGFOO\"");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    stop_signal: 0\n",
               NULL,
               "4:18: instances.Web.stop_signal: must be a signal name like TERM or SIGINT, "
               "or a number 1..64, got \"0\"");
}

static void test_error_bad_stop_timeout(void **state)
{
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    stop_timeout: 5m\n",
               NULL,
               "4:19: instances.Web.stop_timeout: must be a duration in seconds (10, 0.5) "
               "or with a unit (500ms, 2s), got \"5m\"");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    stop_timeout: -1\n",
               NULL, "4:19: instances.Web.stop_timeout: must be between 0 and 3600 seconds, got -1");
    load_fails(*state,
               "instances:\n"
               "  Web:\n"
               "    command: x\n"
               "    stop_timeout: 3600001ms\n",
               NULL,
               "4:19: instances.Web.stop_timeout: must be between 0 and 3600 seconds, got 3600001ms");
}

/* The last service fails after sockets, notes, env and socket lists were built: all of it
 * must be released (LeakSanitizer checks). */
static void test_error_after_everything_else_loaded(void **state)
{
    char *yaml = format("%s", full_yaml);
    char *at = strstr(yaml, "stop_timeout: 2s");
    assert_non_null(at);
    at[strlen("stop_timeout: 2")] = 'h';
    setenv("DEVNODE_TEST_A", "alpha", 1);
    load_fails(*state, yaml, NULL,
               "30:19: instances.Worker_2.stop_timeout: must be a duration in seconds (10, 0.5) "
               "or with a unit (500ms, 2s), got \"2h\"");
    unsetenv("DEVNODE_TEST_A");
    free(yaml);
}

/* Found by tests/fuzz (fuzz_config): aliases of one long scalar were bounded in nodes only,
 * so a 3 KB file made the loader copy 3 GB of text before the node limit stopped it. */
static void test_error_alias_text_bomb(void **state)
{
    struct strbuf yaml;
    strbuf_init(&yaml);
    strbuf_puts(&yaml, "container:\n  s: &s ");
    for (int i = 0; i < 3000; i++)
        strbuf_putc(&yaml, 'x');
    strbuf_puts(&yaml, "\n");
    const char *names = "abcdef";
    for (int level = 0; level < 6; level++) {
        strbuf_printf(&yaml, "  %c: &%c [", names[level], names[level]);
        for (int k = 0; k < 10; k++)
            strbuf_printf(&yaml, "%s*%c", k ? ", " : "", level ? names[level - 1] : 's');
        strbuf_puts(&yaml, "]\n");
    }
    load_fails(*state, strbuf_cstr(&yaml), NULL,
               "6:26: more than 1000000 YAML nodes or 16 MiB of text (alias expansion?)");
    strbuf_free(&yaml);
}

static void test_error_logs(void **state)
{
    load_fails(*state, "logs:\n  buffer_lines: 5\n", NULL,
               "2:17: logs.buffer_lines: must be between 1000 and 100000000, got 5");
    load_fails(*state, "logs:\n  rotate: daily\n", NULL,
               "2:3: logs.rotate: unknown key (logs takes buffer_lines, file_max_mb, keep_files, per_service)");
}

static void test_ready_forms(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    load_ok(fx,
            "instances:\n"
            "  A: {command: a}\n"
            "  B: {command: b, ready: notify}\n"
            "  C: {command: c, ready: {log: 'listening on [0-9]+', timeout: 5s}}\n"
            "  D: {command: d, ready: {tcp: 8080}}\n"
            "  E: {command: e, ready: {tcp: '[::1]:9000'}}\n"
            "  F: {command: f, ready: {delay: 500ms}}\n",
            NULL, &cfg);
    assert_int_equal(cfg.services[0].ready.kind, READY_AT_START);
    assert_int_equal(cfg.services[0].ready.timeout_ms, 30000);
    assert_int_equal(cfg.services[1].ready.kind, READY_NOTIFY);
    assert_int_equal(cfg.services[2].ready.kind, READY_LOG);
    assert_string_equal(cfg.services[2].ready.log_pattern, "listening on [0-9]+");
    assert_int_equal(cfg.services[2].ready.timeout_ms, 5000);
    assert_int_equal(cfg.services[3].ready.kind, READY_TCP);
    assert_string_equal(cfg.services[3].ready.tcp_host, "127.0.0.1");
    assert_int_equal(cfg.services[3].ready.tcp_port, 8080);
    assert_string_equal(cfg.services[4].ready.tcp_host, "::1");
    assert_int_equal(cfg.services[4].ready.tcp_port, 9000);
    assert_int_equal(cfg.services[5].ready.kind, READY_DELAY);
    assert_int_equal(cfg.services[5].ready.delay_ms, 500);
    config_free(&cfg);
}

static void test_watch_forms(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    load_ok(fx,
            "instances:\n"
            "  A: {command: a}\n"
            "  B: {command: b, watch: src/}\n"
            "  C: {command: c, watch: ['src/**/*.py', templates/], ignore: ['*.log'], watch_debounce: 1.5}\n",
            NULL, &cfg);
    assert_int_equal(cfg.services[0].watch.path_count, 0);
    assert_int_equal(cfg.services[1].watch.path_count, 1);
    assert_string_equal(cfg.services[1].watch.paths[0], "src/");
    assert_int_equal(cfg.services[1].watch.debounce_ms, 200);
    assert_int_equal(cfg.services[2].watch.path_count, 2);
    assert_string_equal(cfg.services[2].watch.paths[1], "templates/");
    assert_int_equal(cfg.services[2].watch.ignore_count, 1);
    assert_string_equal(cfg.services[2].watch.ignore[0], "*.log");
    assert_int_equal(cfg.services[2].watch.debounce_ms, 1500);
    config_free(&cfg);
}

static void test_error_watch(void **state)
{
    load_fails(*state, "instances:\n  A:\n    command: a\n    watch: [src/, /etc/]\n", NULL,
               "4:19: instances.A.watch[1]: \"/etc/\" must be relative to the folder of the config file "
               "(no leading /)");
    load_fails(*state, "instances:\n  A:\n    command: a\n    watch: {src: 1}\n", NULL,
               "4:12: instances.A.watch: must be a list of path patterns, got a map");
    load_fails(*state, "instances:\n  A:\n    command: a\n    watch_debounce: 1s\n", NULL,
               "4:5: instances.A.watch_debounce: applies only to a service with watch:");
    load_fails(*state, "instances:\n  A:\n    command: a\n    watch: x\n    ignore: ../y\n", NULL,
               "5:13: instances.A.ignore: \"../y\" must stay inside the folder of the config file (no ..)");
}

static void test_error_ready(void **state)
{
    load_fails(*state, "instances:\n  A:\n    command: a\n    ready: soon\n", NULL,
               "4:12: instances.A.ready: must be notify, start, or a map with one of notify, log, tcp, "
               "http, exec, delay; got \"soon\"");
    load_fails(*state, "instances:\n  A:\n    command: a\n    ready: {log: '(unclosed'}\n", NULL,
               "4:18: instances.A.ready.log: not a valid regular expression: Unmatched ( or \\(");
    load_fails(*state, "instances:\n  A:\n    command: a\n    ready: {tcp: 70000}\n", NULL,
               "4:18: instances.A.ready.tcp: must be a port 1..65535 or HOST:PORT, got \"70000\"");
    load_fails(*state, "instances:\n  A:\n    command: a\n    ready: {tcp: 1, delay: 1}\n", NULL,
               "4:12: instances.A.ready: give one of notify, log, tcp, http, exec or delay, not several");
    load_fails(*state, "instances:\n  A:\n    command: a\n    ready: {grpc: /}\n", NULL,
               "4:13: instances.A.ready.grpc: unknown key (ready takes notify, log, tcp, delay, http, exec, timeout)");
}

static void test_probe_forms(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    load_ok(fx,
            "instances:\n"
            "  A: {command: a, ready: {http: /healthz}, live: {http: '/live?x=1'}}\n"
            "  B: {command: b, ready: {exec: 'test -f up'}, live: {tcp: $PORT, interval: 2s, timeout: 300ms, "
            "failures: 5}}\n"
            "  C: {command: c, live: {exec: ./check, interval: 0.5}}\n"
            "  D: {command: d, ready: {http: 'http://[::1]:9000/h'}, live: {tcp: 'db:5432'}}\n"
            "  E: {command: e}\n",
            NULL, &cfg);
    const struct config_service *a = &cfg.services[0], *b = &cfg.services[1], *c = &cfg.services[2];
    const struct config_service *d = &cfg.services[3], *e = &cfg.services[4];
    assert_int_equal(a->ready.kind, READY_HTTP);
    assert_int_equal(a->ready.probe.kind, PROBE_HTTP);
    assert_string_equal(a->ready.probe.host, "127.0.0.1");
    assert_int_equal(a->ready.probe.port, 0);
    assert_string_equal(a->ready.probe.path, "/healthz");
    assert_string_equal(a->live.probe.path, "/live?x=1");
    assert_int_equal(a->live.interval_ms, 5000);
    assert_int_equal(a->live.timeout_ms, 1000);
    assert_int_equal(a->live.failures, 3);
    assert_int_equal(b->ready.kind, READY_EXEC);
    assert_string_equal(b->ready.probe.command, "test -f up");
    assert_int_equal(b->live.probe.kind, PROBE_TCP);
    assert_int_equal(b->live.probe.port, 0);
    assert_int_equal(b->live.interval_ms, 2000);
    assert_int_equal(b->live.timeout_ms, 300);
    assert_int_equal(b->live.failures, 5);
    assert_int_equal(c->live.probe.kind, PROBE_EXEC);
    assert_int_equal(c->live.interval_ms, 500);
    assert_string_equal(d->ready.probe.host, "::1");
    assert_int_equal(d->ready.probe.port, 9000);
    assert_string_equal(d->live.probe.host, "db");
    assert_int_equal(d->live.probe.port, 5432);
    assert_int_equal(e->live.probe.kind, PROBE_NONE);
    config_free(&cfg);
}

static void test_error_probes(void **state)
{
    load_fails(*state, "instances:\n  A:\n    command: a\n    live: {interval: 1s}\n", NULL,
               "4:11: instances.A.live: needs a probe: one of http, tcp or exec");
    load_fails(*state, "instances:\n  A:\n    command: a\n    live: {http: /, exec: x}\n", NULL,
               "4:11: instances.A.live: give one of http, tcp or exec, not several");
    load_fails(*state, "instances:\n  A:\n    command: a\n    live: {http: 'https://x/'}\n", NULL,
               "4:18: instances.A.live.http: https is not probed (a probe of TLS tests the certificate, not the "
               "worker): give the plain-HTTP address, \"http://HOST:PORT/path\" or a path on PORT like \"/healthz\"");
    load_fails(*state, "instances:\n  A:\n    command: a\n    live: {tcp: 'x:y'}\n", NULL,
               "4:17: instances.A.live.tcp: must be a port 1..65535, $PORT (the instance's own), or HOST:PORT, "
               "got \"x:y\"");
    load_fails(*state, "instances:\n  A:\n    command: a\n    live: {exec: x, failures: 0}\n", NULL,
               "4:31: instances.A.live.failures: must be between 1 and 1000, got 0");
    load_fails(*state, "instances:\n  A:\n    command: a\n    live: {exec: x, interval: 10ms}\n", NULL,
               "4:11: instances.A.live: interval must be at least 100ms");
    /* A shared socket's port, written out or as the $PORT a socket service gets. */
    load_fails(*state, "sockets: {Web: {port: 4080}}\ninstances:\n  Web:\n    command: a\n"
               "    live: {http: 'http://localhost:4080/h'}\n", NULL,
               "5:18: instances.Web.live.http: port 4080 is the node's shared socket Web: whichever worker accepts "
               "answers it, so the probe cannot judge this instance; probe an address of the instance's own (a "
               "service without a shared socket gets its own $PORT) or use exec, notify or log "
               "(sockets.md#probes)");
    load_fails(*state, "sockets: {Web: {port: 4080}}\ninstances:\n  Web:\n    command: a\n"
               "    ready: {http: /healthz}\n", NULL,
               "5:19: instances.Web.ready.http: $PORT of Web is the port of its shared socket Web: whichever "
               "worker accepts answers it, so the probe cannot judge this instance; probe an address of the "
               "instance's own (a service without a shared socket gets its own $PORT) or use exec, notify or log "
               "(sockets.md#probes)");
}

static void test_streams(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    load_ok(fx, "streams:\n  book.#: {retain_events: 500}\n  audit.*:\n", NULL, &cfg);
    assert_int_equal(cfg.stream_count, 2);
    assert_string_equal(cfg.streams[0].pattern, "book.#");
    assert_int_equal(cfg.streams[0].retain_events, 500);
    assert_string_equal(cfg.streams[1].pattern, "audit.*");
    assert_int_equal(cfg.streams[1].retain_events, 100000);
    config_free(&cfg);
    load_fails(fx, "streams:\n  book..x: {}\n", NULL,
               "2:3: streams.book..x: not an event pattern (dot-separated words, * for one word, # for any)");
    load_fails(fx, "streams:\n  book.#: {retain_events: 0}\n", NULL,
               "2:27: streams.book.#.retain_events: must be between 1 and 1000000000, got 0");
    load_fails(fx, "streams:\n  book.#: {keep: 1}\n", NULL,
               "2:12: streams.book.#.keep: unknown key (a stream takes retain_events)");
}

static void test_depends_on(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    load_ok(fx,
            "instances:\n"
            "  Web: {command: w, depends_on: [Api, Cache]}\n"
            "  Api:\n    command: a\n    depends_on:\n      Db: {condition: ready, restart: true}\n"
            "      Migrate: service_completed_successfully\n      Cache: started\n      Queue:\n"
            "  Db: {command: d, disabled: false}\n"
            "  Migrate: {command: m, restart: never, depends_on: {Db: {restart: false}}}\n"
            "  Cache: {command: c, disabled: true}\n"
            "  Queue: {command: q, restart: on-failure}\n",
            NULL, &cfg);
    const struct config_service *web = config_find_service(&cfg, "Web"), *api = config_find_service(&cfg, "Api");
    assert_int_equal(web->dep_count, 2);
    assert_string_equal(web->deps[0].name, "Api");
    assert_int_equal(web->deps[0].condition, DEP_READY); /* the list form waits for ready */
    assert_int_equal(web->deps[0].line, 2);
    assert_int_equal(web->deps[0].col, 34);
    assert_string_equal(web->deps[1].name, "Cache");
    assert_int_equal(api->dep_count, 4);
    assert_int_equal(api->deps[0].condition, DEP_READY);
    assert_int_equal(api->deps[0].restart, 1);
    assert_int_equal(api->deps[1].condition, DEP_COMPLETED);
    assert_int_equal(api->deps[1].restart, 0);
    assert_int_equal(api->deps[2].condition, DEP_STARTED);
    assert_string_equal(api->deps[3].name, "Queue");
    assert_int_equal(api->deps[3].condition, DEP_READY); /* `Queue:` alone */
    assert_int_equal(config_find_service(&cfg, "Migrate")->deps[0].condition, DEP_READY);
    assert_int_equal(config_find_service(&cfg, "Db")->dep_count, 0);
    assert_null(config_find_service(&cfg, "Db")->deps);
    assert_int_equal(config_find_service(&cfg, "Db")->disabled, 0);
    assert_int_equal(config_find_service(&cfg, "Cache")->disabled, 1);
    assert_string_equal(config_dep_condition_name(DEP_COMPLETED), "completed");
    config_free(&cfg);
}

static void test_error_depends_on(void **state)
{
    load_fails(*state,
               "instances:\n  Web: {command: w, depends_on: [Api]}\n  Api: {command: a, depends_on: {Db: ready}}\n"
               "  Db: {command: d, depends_on: {Web: started}}\n",
               NULL, "2:34: instances.Web.depends_on: cycle Web \xe2\x86\x92 Api \xe2\x86\x92 Db \xe2\x86\x92 Web");
    /* The walk starts at the first service: one outside the cycle leads into it. */
    load_fails(*state,
               "instances:\n  Top: {command: t, depends_on: [B]}\n  A: {command: a, depends_on: [B]}\n"
               "  B: {command: b, depends_on: [C]}\n  C: {command: c, depends_on: [A]}\n",
               NULL, "4:32: instances.B.depends_on: cycle B \xe2\x86\x92 C \xe2\x86\x92 A \xe2\x86\x92 B");
    load_fails(*state, "instances:\n  Web: {command: w, depends_on: [Dbx]}\n  Db: {command: d}\n", NULL,
               "2:34: instances.Web.depends_on: no service named \"Dbx\" (services: Web, Db)");
    load_fails(*state, "instances:\n  Web: {command: w, depends_on: {Web: started}}\n", NULL,
               "2:34: instances.Web.depends_on: Web depends on itself");
    load_fails(*state, "instances:\n  Web: {command: w, depends_on: {Db: healthy}}\n  Db: {command: d}\n", NULL,
               "2:38: instances.Web.depends_on.Db: must be ready, started or completed (or compose's "
               "service_healthy, service_started, service_completed_successfully), got \"healthy\"");
    load_fails(*state, "instances:\n  Web: {command: w, depends_on: {Db: completed}}\n  Db: {command: d}\n", NULL,
               "2:34: instances.Web.depends_on: Web waits for Db to complete, but Db restarts always (the "
               "default), so it never stays completed: give Db restart: never or on-failure, or wait for ready "
               "or started");
    load_fails(*state, "instances:\n  Web: {command: w, depends_on: {Db: {when: ready}}}\n  Db: {command: d}\n",
               NULL, "2:39: instances.Web.depends_on.Db.when: unknown key (a dependency takes condition, restart)");
    load_fails(*state, "instances:\n  Web: {command: w, depends_on: [Db, Db]}\n  Db: {command: d}\n", NULL,
               "2:38: instances.Web.depends_on[1]: Db is listed twice (first at line 2)");
    load_fails(*state, "instances:\n  Web: {command: w, depends_on: [{Db: ready}]}\n  Db: {command: d}\n", NULL,
               "2:34: instances.Web.depends_on[0]: must be a service name, got a map (conditions go in the "
               "map form: depends_on: {NAME: ready})");
    load_fails(*state, "instances:\n  Web: {command: w, disabled: yes}\n", NULL,
               "2:31: instances.Web.disabled: must be false or true, got \"yes\"");
}


/* A reload frees the config it replaced after moving a removed service's part out of it
 * (node/svcconfig.c): the moved part outlives the config, and each is freed once. */
static void test_a_service_moved_out_outlives_its_config(void **state)
{
    struct fixture *fx = *state;
    struct config cfg;
    load_ok(fx,
            "instances:\n"
            "  Db: {command: db, env: {A: '1'}}\n"
            "  Web:\n"
            "    command: web\n"
            "    env: {B: '2'}\n"
            "    depends_on: [Db]\n"
            "    ready: {http: /healthz}\n"
            "    live: {exec: ./check}\n"
            "    watch: [src]\n"
            "    ignore: ['*.tmp']\n",
            NULL, &cfg);
    struct config_service moved = cfg.services[1];
    memset(&cfg.services[1], 0, sizeof cfg.services[1]);
    config_free(&cfg);
    assert_string_equal(moved.name, "Web");
    assert_string_equal(config_service_env(&moved, "B"), "2");
    assert_string_equal(moved.deps[0].name, "Db");
    config_service_free(&moved);
    assert_null(moved.name);
    config_service_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_instance_free_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sockets_list_form, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_timeout_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_signal_forms, setup, teardown),
        cmocka_unit_test(test_parse_signal_and_name),
        cmocka_unit_test_setup_teardown(test_lymph_keys_accepted_with_notes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_namespaces_left_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interpolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_config_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_yaml_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_unknown_top_level_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_top_level_not_a_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_unknown_service_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_negative_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_empty_and_missing_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_bad_service_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_duplicate_service_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_undefined_env_variable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_undefined_var_variable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unresolved_load_keeps_undefined_variables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_bad_vars_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_cannot_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_unknown_socket_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_unknown_socket_in_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_socket_port_and_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_socket_port_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_duplicate_socket_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_bad_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_bad_stop_signal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_bad_stop_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_alias_text_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_probes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_after_everything_else_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_layers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_env_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_blocks_and_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_ports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depends_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_depends_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_service_moved_out_outlives_its_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
