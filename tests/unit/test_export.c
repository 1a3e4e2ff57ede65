/* Unit tests for export/: systemd quoting (sdquote), the strict reading of simple shell
 * commands, the project name, the units of a small config, and that every key of the key
 * table is either exported or named as not exported. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/strbuf.h"
#include "config/config.h"
#include "config/keys.h"
#include "export/sdquote.h"
#include "export/systemd.h"

static char *quoted_word(const char *text, int literal_dollars)
{
    struct strbuf sb;
    strbuf_init(&sb);
    sdquote_word(&sb, text, literal_dollars);
    char *out = strdup(strbuf_cstr(&sb));
    strbuf_free(&sb);
    return out;
}

static void expect_word(const char *text, int literal_dollars, const char *want)
{
    char *got = quoted_word(text, literal_dollars);
    if (strcmp(got, want) != 0)
        fail_msg("sdquote_word(%s): got [%s], want [%s]", text, got, want);
    free(got);
}

static void test_words_are_quoted_for_systemd(void **state)
{
    (void)state;
    expect_word("/usr/bin/gunicorn", 1, "/usr/bin/gunicorn");
    expect_word("app:app", 1, "app:app");
    expect_word("--bind=fd://3", 1, "--bind=fd://3");
    expect_word("", 1, "\"\"");
    expect_word("a b", 1, "\"a b\"");
    expect_word("100%", 1, "100%%");
    expect_word("50% off", 1, "\"50%% off\"");
    expect_word("$HOME", 1, "$$HOME");
    expect_word("cost $5 now", 1, "\"cost $$5 now\"");
    expect_word("say \"hi\"", 1, "\"say \\\"hi\\\"\"");
    expect_word("back\\slash", 1, "\"back\\\\slash\"");
    expect_word("it's", 1, "\"it's\"");
    expect_word("tab\there", 1, "\"tab\\there\"");
    expect_word("line\nbreak", 1, "\"line\\nbreak\"");
    expect_word("bell\a", 1, "\"bell\\x07\"");
    expect_word(";", 1, "\";\"");
    expect_word("exec x; y", 1, "\"exec x; y\"");
    /* already-encoded text keeps its references */
    expect_word("${PORT}", 0, "${PORT}");
    expect_word("127.0.0.1:${PORT}", 0, "127.0.0.1:${PORT}");
    expect_word("a ${X}", 0, "\"a ${X}\"");
}

static void test_environment_values(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb);
    assert_int_equal(sdquote_env(&sb, "GREETING", "Hi, \"joe\" 100% $5\n"), 0);
    assert_string_equal(strbuf_cstr(&sb), "\"GREETING=Hi, \\\"joe\\\" 100%% $5\\n\"");
    strbuf_reset(&sb);
    assert_int_equal(sdquote_env(&sb, "JSON", "{\"4080\": 3}"), 0);
    assert_string_equal(strbuf_cstr(&sb), "\"JSON={\\\"4080\\\": 3}\"");
    strbuf_reset(&sb);
    assert_int_equal(sdquote_env(&sb, "my-var", "x"), -1);
    assert_int_equal(sdquote_env(&sb, "1X", "x"), -1);
    assert_int_equal(sb.len, 0);
    assert_int_equal(sdquote_plain(&sb, "/srv/my app/100%"), 0);
    assert_string_equal(strbuf_cstr(&sb), "/srv/my app/100%%");
    strbuf_reset(&sb);
    assert_int_equal(sdquote_plain(&sb, "/srv/a\nb"), -1);
    assert_int_equal(sdquote_plain(&sb, "/srv/a\\"), -1);
    assert_int_equal(sdquote_plain(&sb, "/srv/a "), -1);
    assert_int_equal(sb.len, 0);
    strbuf_free(&sb);
}

static void test_environment_file_lines(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb);
    const char *why = NULL;
    /* Inside double quotes systemd unescapes \\ \" \` \$ and keeps everything else as it is:
     * newlines, tabs, '#', '%', quotes of the other kind (src/basic/env-file.c). */
    assert_int_equal(sdquote_envfile(&sb, "PW", "a \"b\" 'c' $D ${E} \\f `g` #h %i\nj\tk\r", &why), 0);
    assert_string_equal(strbuf_cstr(&sb), "PW=\"a \\\"b\\\" 'c' \\$D \\${E} \\\\f \\`g\\` #h %i\nj\tk\r\"\n");
    strbuf_reset(&sb);
    assert_int_equal(sdquote_envfile(&sb, "EMPTY", "", &why), 0);
    assert_string_equal(strbuf_cstr(&sb), "EMPTY=\"\"\n");
    strbuf_reset(&sb);
    assert_int_equal(sdquote_envfile(&sb, "UTF8", "gr\xc3\xbc\xc3\x9f \xf0\x9f\x94\x91", &why), 0);
    strbuf_reset(&sb);
    assert_int_equal(sdquote_envfile(&sb, "my-var", "x", &why), -1);
    const char *bad[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xef\xbf\xbe",
                         "\xef\xb7\x90", "\xef\xbb\xbf"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_int_equal(sdquote_envfile(&sb, "X", bad[i], &why), -2);
        assert_non_null(why);
    }
    assert_int_equal(sb.len, 0);
    strbuf_free(&sb);
}

/* "W1|W2|..." of systemd words, or NULL when the command needs a shell. */
static char *split(const char *command)
{
    struct sdword *words;
    int n = sdquote_split_simple(command, &words);
    if (n < 0)
        return NULL;
    struct strbuf sb;
    strbuf_init(&sb);
    for (int i = 0; i < n; i++) {
        if (i)
            strbuf_putc(&sb, '|');
        strbuf_puts(&sb, words[i].systemd);
    }
    char *out = strdup(strbuf_cstr(&sb));
    strbuf_free(&sb);
    sdquote_words_free(words, n);
    return out;
}

static void expect_split(const char *command, const char *want)
{
    char *got = split(command);
    if (!want && got)
        fail_msg("%s: expected a shell, got [%s]", command, got);
    if (want && (!got || strcmp(got, want) != 0))
        fail_msg("%s: got [%s], want [%s]", command, got ? got : "(shell)", want);
    free(got);
}

static void test_simple_commands_split_like_the_shell(void **state)
{
    (void)state;
    expect_split("gunicorn app:app", "gunicorn|app:app");
    expect_split("  ./server   3  ", "./server|3");
    expect_split("python3 -c 'import x; x.run()'", "python3|-c|\"import x; x.run()\"");
    expect_split("node \"server.js\" --port=4080", "node|server.js|--port=4080");
    expect_split("echo a\\ b", "echo|\"a b\"");
    expect_split("printf '%s\\n' x", "printf|\"%%s\\\\n\"|x");
    expect_split("run ''", "run|\"\"");
    expect_split("run 'a'\"b\"c", "run|abc");
    expect_split("run \"a\\\"b\\\\c\\d\"", "run|\"a\\\"b\\\\c\\\\d\"");
    expect_split("run 'cost $5'", "run|\"cost $$5\"");
    expect_split("run a$", "run|a$$");
    /* variables: a whole unquoted one splits in both; inside quotes it is one argument */
    expect_split("gunicorn --workers $N app", "gunicorn|--workers|$N|app");
    expect_split("gunicorn --workers ${N} app", "gunicorn|--workers|$N|app");
    expect_split("run \"$GREETING\"", "run|${GREETING}");
    expect_split("run \"--bind=127.0.0.1:$PORT\"", "run|--bind=127.0.0.1:${PORT}");
    expect_split("run \"a $X b\"", "run|\"a ${X} b\"");
    /* only a shell gets these right */
    expect_split("gunicorn --bind 127.0.0.1:$PORT app", NULL); /* unquoted inside a word: the shell splits */
    expect_split("run $1", NULL);
    expect_split("run \"$@\"", NULL);
    expect_split("run $$", NULL);
    expect_split("run ${X:-y}", NULL);
    expect_split("run $(date)", NULL);
    expect_split("run `date`", NULL);
    expect_split("run *.py", NULL);
    expect_split("run ~/x", NULL);
    expect_split("run > log", NULL);
    expect_split("a | b", NULL);
    expect_split("a && b", NULL);
    expect_split("a; b", NULL);
    expect_split("FOO=1 ./run", NULL);
    expect_split("$PROG x", NULL);
    expect_split("run 'open", NULL);
    expect_split("run \"open", NULL);
    expect_split("run x\\", NULL);
    expect_split("", NULL);
}

static void test_project_names(void **state)
{
    (void)state;
    char name[128], err[256];
    assert_int_equal(export_project_name(NULL, "/home/me/my app (v2)", name, sizeof name, err, sizeof err), 0);
    assert_string_equal(name, "my-app-v2");
    assert_int_equal(export_project_name(NULL, "/srv/.hidden", name, sizeof name, err, sizeof err), 0);
    assert_string_equal(name, "hidden");
    assert_int_equal(export_project_name(NULL, "/srv/üï", name, sizeof name, err, sizeof err), -1);
    assert_non_null(strstr(err, "--name"));
    assert_int_equal(export_project_name("shop.v2", "/srv/x", name, sizeof name, err, sizeof err), 0);
    assert_string_equal(name, "shop.v2");
    assert_int_equal(export_project_name("a b", "/srv/x", name, sizeof name, err, sizeof err), -1);
    assert_int_equal(export_project_name("-x", "/srv/x", name, sizeof name, err, sizeof err), -1);
    assert_int_equal(export_project_name("", "/srv/x", name, sizeof name, err, sizeof err), -1);
}

/* Every row of the key table, with "*" for the names the user picks, must be decided. */
static void walk(const struct config_section *sec, const char *prefix, int *undecided)
{
    for (size_t i = 0; i < sec->count; i++) {
        const struct config_key *row = &sec->keys[i];
        if (row->kind == KEY_IGNORED)
            continue; /* lymph's keys: the node ignores them, so there is nothing to export */
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", row->name);
        const char *how = NULL;
        if (export_key_decision(path, &how) < 0) {
            print_error("config key %s is neither exported nor named as not exported in export/systemd.c\n", path);
            (*undecided)++;
        } else {
            assert_non_null(how);
            assert_true(how[0] != '\0');
        }
        if (row->kind == KEY_MAP && row->section) {
            char child[256];
            snprintf(child, sizeof child, "%s%s", path, (row->flags & KEY_NAMED) ? ".*" : "");
            walk(row->section, child, undecided);
        }
    }
}

static void test_every_config_key_is_decided(void **state)
{
    (void)state;
    int undecided = 0;
    walk(&config_top_section, "", &undecided);
    assert_int_equal(undecided, 0);
    const char *how;
    assert_int_equal(export_key_decision("instances.*.command", &how), 1);
    assert_int_equal(export_key_decision("instances.*.ready.log", &how), 0);
    assert_int_equal(export_key_decision("no.such.key", &how), -1);
}

/* ---- units of a small config ---- */

struct fixture {
    char dir[64];
    char path[128];
    struct config cfg;
};

static int load(struct fixture *fx, const char *yaml)
{
    snprintf(fx->dir, sizeof fx->dir, "/tmp/devnode-test-export-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/.lymph.yml", fx->dir);
    FILE *f = fopen(fx->path, "w");
    assert_non_null(f);
    fputs(yaml, f);
    fclose(f);
    char err[512];
    int rc = config_load(fx->path, NULL, &fx->cfg, err, sizeof err);
    if (rc < 0)
        fail_msg("config_load: %s", err);
    return rc;
}

static void unload(struct fixture *fx)
{
    config_free(&fx->cfg);
    unlink(fx->path);
    rmdir(fx->dir);
}

static const char *file_text(const struct export_result *r, const char *name)
{
    for (size_t i = 0; i < r->file_count; i++)
        if (strcmp(r->files[i].name, name) == 0)
            return r->files[i].text;
    fail_msg("no file %s", name);
    return NULL;
}

static int has_line(const struct export_result *r, const char *needle)
{
    for (size_t i = 0; i < r->not_exported_count; i++)
        if (strstr(r->not_exported[i], needle))
            return 1;
    return 0;
}

static char *fake_which(void *ctx, const char *program)
{
    (void)ctx;
    char *out = NULL;
    if (asprintf(&out, "/opt/venv/bin/%s", program) < 0)
        abort();
    return out;
}

static void test_units_of_a_project(void **state)
{
    (void)state;
    struct fixture fx;
    load(&fx, "sockets:\n"
              "    Web: {port: 4080}\n"
              "    Admin: {path: run/admin.sock}\n"
              "    Spare: {port: 4090}\n"
              "instances:\n"
              "    Web:\n"
              "        command: gunicorn --bind fd://$(socket.Web.fd) --bind fd://$(socket.Admin.fd) app:app\n"
              "        numprocesses: 2\n"
              "        ready: notify\n"
              "        stop_signal: INT\n"
              "        stop_timeout: 2.5\n"
              "        env: {GREETING: 'Hi %u', my-var: x}\n"
              "    Worker:\n"
              "        command: cd jobs && ./worker --port $PORT | tee log\n"
              "        numprocesses: 2\n"
              "        restart: on-failure\n"
              "        ready: {log: started}\n"
              "    Api:\n"
              "        command: cd api && python3 -m api\n"
              "        cwd: srv\n"
              "        restart: never\n"
              "        sockets: [Web]\n"
              "        ready: {notify: true, timeout: 5s}\n"
              "streams:\n"
              "    book.#:\n");
    struct export_options opt = {.project = "shop", .which = fake_which};
    struct export_result r;
    char err[512];
    assert_int_equal(export_systemd(&fx.cfg, &opt, &r, err, sizeof err), 0);

    const char *web = file_text(&r, "shop-Web@.service");
    assert_non_null(strstr(web, "\nExecStart=/opt/venv/bin/gunicorn --bind fd://3 --bind fd://4 app:app\n"));
    assert_non_null(strstr(web, "\nSockets=shop-Web.socket shop-Admin.socket\n"));
    assert_non_null(strstr(web, "\nType=notify\nTimeoutStartSec=30s\n"));
    assert_null(strstr(web, "NotifyAccess"));
    assert_non_null(strstr(web, "\nUnsetEnvironment=LISTEN_FDS LISTEN_PID LISTEN_FDNAMES\n"));
    /* The project's values go to a file of mode 0600 beside the unit, verbatim (no %% there). */
    assert_null(strstr(web, "GREETING"));
    assert_non_null(strstr(web, "\nEnvironmentFile=%Y/shop-Web.env\n"));
    const char *env = file_text(&r, "shop-Web.env");
    assert_non_null(strstr(env, "\nGREETING=\"Hi %u\"\n"));
    assert_null(strstr(env, "my-var"));
    for (size_t i = 0; i < r.file_count; i++)
        assert_int_equal(r.files[i].secret, strcmp(r.files[i].name, "shop-Web.env") == 0);
    assert_null(strstr(file_text(&r, "shop-Worker@.service"), "EnvironmentFile="));
    assert_non_null(strstr(web, "\nEnvironment=\"DEVNODE_INSTANCE=%i\"\n"));
    assert_non_null(strstr(web, "\nEnvironment=\"LYMPH_SHARED_SOCKET_FDS={\\\"4080\\\": 3}\"\n"));
    assert_non_null(strstr(web, "\nEnvironment=\"PORT=4080\"\n"));
    assert_non_null(strstr(web, "\nKillSignal=SIGINT\nTimeoutStopSec=2500ms\n"));
    assert_non_null(strstr(web, "\nRestart=always\n"));
    assert_non_null(strstr(web, "# not exported: instances.Web.env.my-var"));
    assert_true(has_line(&r, "instances.Web.env.my-var"));

    const char *worker = file_text(&r, "shop-Worker@.service");
    assert_non_null(strstr(worker, "\nExecStart=/bin/sh -c \"cd jobs && ./worker --port $$PORT | tee log\"\n"));
    assert_non_null(strstr(worker, "\nType=exec\n"));
    assert_non_null(strstr(worker, "\nRestart=on-failure\n"));
    assert_non_null(strstr(worker, "# not exported: instances.Worker.ready.log"));
    assert_true(has_line(&r, "instances.Worker.ready.log"));
    assert_null(strstr(worker, "Sockets="));
    assert_null(strstr(worker, "PORT=")); /* from its block, per instance: */
    assert_non_null(strstr(file_text(&r, "shop-Worker@0.service.d/port.conf"), "Environment=\"PORT=5100\""));
    assert_non_null(strstr(file_text(&r, "shop-Worker@1.service.d/port.conf"), "Environment=\"PORT=5101\""));

    const char *api = file_text(&r, "shop-Api@.service");
    assert_non_null(strstr(api, "\nExecStart=/bin/sh -c \"cd api && exec python3 -m api\"\n"));
    assert_non_null(strstr(api, "\nWorkingDirectory="));
    assert_non_null(strstr(api, "/srv\n"));
    assert_non_null(strstr(api, "\nTimeoutStartSec=5s\n"));
    assert_non_null(strstr(api, "\nRestart=no\n"));
    assert_null(strstr(api, "RestartSec"));
    assert_null(strstr(api, "UnsetEnvironment")); /* it takes its socket by LISTEN_FDS */
    assert_non_null(strstr(api, "\nSockets=shop-Web.socket\n"));

    const char *sock = file_text(&r, "shop-Web.socket");
    assert_non_null(strstr(sock, "\nListenStream=127.0.0.1:4080\nFileDescriptorName=Web\n"));
    assert_non_null(strstr(sock, "\nService=shop-Web@0.service\n"));
    const char *admin = file_text(&r, "shop-Admin.socket");
    assert_non_null(strstr(admin, "/run/admin.sock\n"));
    assert_non_null(strstr(admin, "\nRemoveOnStop=yes\n"));
    assert_true(has_line(&r, "sockets.Spare: no service takes it"));
    for (size_t i = 0; i < r.file_count; i++)
        assert_null(strstr(r.files[i].name, "Spare"));

    const char *target = file_text(&r, "shop.target");
    assert_non_null(strstr(target, "\nWants=shop-Web@0.service\nWants=shop-Web@1.service\n"));
    assert_non_null(strstr(target, "\nWants=shop-Worker@1.service\nWants=shop-Api@0.service\n"));
    assert_non_null(strstr(target, "\nWants=shop-Web.socket\nWants=shop-Admin.socket\n"));
    assert_non_null(strstr(target, "\nWantedBy=multi-user.target\n"));
    assert_true(has_line(&r, "streams:"));
    assert_true(has_line(&r, "restart backoff"));
    assert_true(has_line(&r, "rolling restarts"));
    export_result_free(&r);

    opt.user = 1;
    opt.run_as = "joe";
    assert_int_equal(export_systemd(&fx.cfg, &opt, &r, err, sizeof err), 0);
    assert_non_null(strstr(file_text(&r, "shop.target"), "\nWantedBy=default.target\n"));
    assert_null(strstr(file_text(&r, "shop-Web@.service"), "User="));
    export_result_free(&r);
    opt.user = 0;
    assert_int_equal(export_systemd(&fx.cfg, &opt, &r, err, sizeof err), 0);
    assert_non_null(strstr(file_text(&r, "shop-Web@.service"), "\nUser=joe\n"));
    export_result_free(&r);
    unload(&fx);
}

static void test_a_shell_that_stays_gets_notify_access_all(void **state)
{
    (void)state;
    struct fixture fx;
    load(&fx, "instances:\n"
              "    Web:\n"
              "        command: ./web | cat\n"
              "        ready: notify\n"
              "    Slow:\n"
              "        command: build/slow --x\n"
              "        ready: {delay: 1500ms}\n"
              "    Idle:\n"
              "        command: ./idle\n"
              "        numprocesses: 0\n");
    struct export_options opt = {.project = "p"};
    struct export_result r;
    char err[512];
    assert_int_equal(export_systemd(&fx.cfg, &opt, &r, err, sizeof err), 0);
    const char *web = file_text(&r, "p-Web@.service");
    assert_non_null(strstr(web, "\nType=notify\nNotifyAccess=all\n"));
    assert_non_null(strstr(web, "\nExecStart=/bin/sh -c \"./web | cat\"\n"));
    const char *slow = file_text(&r, "p-Slow@.service");
    char want[256];
    snprintf(want, sizeof want, "\nExecStart=%s/build/slow --x\nExecStartPost=/bin/sleep 1.500\n", fx.dir);
    assert_non_null(strstr(slow, want));
    assert_non_null(strstr(file_text(&r, "p-Idle@.service"), "(numprocesses: 0, so p.target starts none)"));
    assert_null(strstr(file_text(&r, "p.target"), "p-Idle@"));
    export_result_free(&r);
    unload(&fx);
}

/* ready exec becomes an ExecStartPost= poll within the ready timeout; http readiness and
 * liveness have no systemd equivalent and are named. */
static void test_probes(void **state)
{
    (void)state;
    struct fixture fx;
    load(&fx, "instances:\n"
              "    Db:\n"
              "        command: ./db\n"
              "        ready: {exec: 'pg_isready -p $PORT', timeout: 20s}\n"
              "        live: {exec: 'pg_isready -p $PORT'}\n"
              "    Api:\n"
              "        command: ./api\n"
              "        ready: {http: /healthz}\n");
    struct export_options opt = {.project = "p"};
    struct export_result r;
    char err[512];
    assert_int_equal(export_systemd(&fx.cfg, &opt, &r, err, sizeof err), 0);
    const char *db = file_text(&r, "p-Db@.service");
    assert_non_null(strstr(db, "\nType=exec\n"));
    assert_non_null(strstr(db, "\nExecStartPost=/bin/sh -c \"until pg_isready -p $$PORT; do sleep 0.2; done\"\n"
                               "TimeoutStartSec=20s\n"));
    assert_non_null(strstr(db, "# not exported: instances.Db.live: systemd has no liveness probe"));
    assert_true(has_line(&r, "instances.Db.live"));
    const char *api = file_text(&r, "p-Api@.service");
    assert_non_null(strstr(api, "# not exported: instances.Api.ready.http: systemd has no readiness by HTTP"));
    assert_null(strstr(api, "ExecStartPost"));
    export_result_free(&r);
    unload(&fx);
}

static void test_a_value_systemd_cannot_hold_is_refused_by_name(void **state)
{
    (void)state;
    struct fixture fx;
    struct export_options opt = {.project = "p"};
    struct export_result r;
    char err[512];
    load(&fx, "instances:\n    Web:\n        command: ./web\n        env: {OK: 1, API_KEY: \"s3cr\\uFDD0et\"}\n");
    assert_int_equal(export_systemd(&fx.cfg, &opt, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, ":4: instances.Web: API_KEY: its value holds a Unicode noncharacter"));
    assert_null(strstr(err, "s3cr"));
    assert_int_equal(r.file_count, 0);
    unload(&fx);
}

static void test_what_systemd_cannot_listen_on_is_refused(void **state)
{
    (void)state;
    struct fixture fx;
    struct export_options opt = {.project = "p"};
    struct export_result r;
    char err[512];
    load(&fx, "sockets:\n    Web: {port: 0}\ninstances:\n    Web: {command: ./web}\n");
    assert_int_equal(export_systemd(&fx.cfg, &opt, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, ":2: sockets.Web.port: 0"));
    assert_int_equal(r.file_count, 0);
    unload(&fx);
    load(&fx, "sockets:\n    Web: {host: localhost, port: 4080}\ninstances:\n    Web: {command: ./web}\n");
    assert_int_equal(export_systemd(&fx.cfg, &opt, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "sockets.Web.host: 'localhost' is a name"));
    unload(&fx);
    load(&fx, "sockets:\n    Web: {host: '::1', port: 4080}\ninstances:\n    Web: {command: ./web}\n");
    assert_int_equal(export_systemd(&fx.cfg, &opt, &r, err, sizeof err), 0);
    assert_non_null(strstr(file_text(&r, "p-Web.socket"), "\nListenStream=[::1]:4080\n"));
    export_result_free(&r);
    unload(&fx);
}

/* depends_on: After= on every instance, Requires= or Wants= by condition, PartOf= for
 * restart: true; a dependency waited for to complete is a oneshot; disabled is not wanted. */
static void test_dependencies_and_disabled(void **state)
{
    (void)state;
    struct fixture fx;
    load(&fx, "instances:\n"
              "    Web:\n"
              "        command: ./web\n"
              "        depends_on: {Db: {condition: ready, restart: true}, Cache: started, Migrate: completed,"
              " Idle: ready}\n"
              "    Db: {command: ./db, numprocesses: 2, ready: notify}\n"
              "    Cache: {command: ./cache, disabled: true}\n"
              "    Migrate: {command: ./migrate, restart: never, ready: {delay: 1s}}\n"
              "    Idle: {command: ./idle, numprocesses: 0}\n");
    struct export_options opt = {.project = "p"};
    struct export_result r;
    char err[512];
    assert_int_equal(export_systemd(&fx.cfg, &opt, &r, err, sizeof err), 0);
    const char *web = file_text(&r, "p-Web@.service");
    assert_non_null(strstr(web, "\n# depends_on Db: ready, restart: true\nRequires=p-Db@0.service p-Db@1.service\n"
                                "After=p-Db@0.service p-Db@1.service\nPartOf=p-Db@0.service p-Db@1.service\n"));
    assert_non_null(strstr(web, "\nWants=p-Cache@0.service\nAfter=p-Cache@0.service\n"));
    assert_non_null(strstr(web, "\nRequires=p-Migrate@0.service\nAfter=p-Migrate@0.service\n"));
    assert_non_null(strstr(web, "(Idle has numprocesses: 0, so there is no instance to wait for)"));
    assert_null(strstr(web, "p-Idle@"));
    const char *migrate = file_text(&r, "p-Migrate@.service");
    assert_non_null(strstr(migrate, "\nType=oneshot\nRemainAfterExit=yes\n"));
    assert_null(strstr(migrate, "ExecStartPost"));
    assert_true(has_line(&r, "instances.Migrate.ready: a dependent waits for Migrate to complete"));
    assert_non_null(strstr(file_text(&r, "p-Db@.service"), "\nType=notify\n"));
    const char *target = file_text(&r, "p.target");
    assert_null(strstr(target, "Wants=p-Cache@"));
    assert_non_null(strstr(target, "# Cache is disabled"));
    assert_non_null(strstr(target, "\nWants=p-Db@1.service\n"));
    export_result_free(&r);
    unload(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words_are_quoted_for_systemd),
        cmocka_unit_test(test_environment_values),
        cmocka_unit_test(test_environment_file_lines),
        cmocka_unit_test(test_a_value_systemd_cannot_hold_is_refused_by_name),
        cmocka_unit_test(test_simple_commands_split_like_the_shell),
        cmocka_unit_test(test_project_names),
        cmocka_unit_test(test_every_config_key_is_decided),
        cmocka_unit_test(test_units_of_a_project),
        cmocka_unit_test(test_a_shell_that_stays_gets_notify_access_all),
        cmocka_unit_test(test_what_systemd_cannot_listen_on_is_refused),
        cmocka_unit_test(test_dependencies_and_disabled),
        cmocka_unit_test(test_probes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
