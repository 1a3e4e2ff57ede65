/* Unit tests for the watch/ignore path patterns: `*`, `?`, classes, `**`, folder patterns,
 * gitignore's any-depth rule for ignore, and which folders are worth watching. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/pathglob.h"

static int matches(const char *pattern, enum pathglob_rule rule, const char *path)
{
    struct pathglob g;
    char err[256];
    assert_int_equal(pathglob_compile(&g, pattern, rule, err, sizeof err), 0);
    int m = pathglob_match(&g, path);
    pathglob_free(&g);
    return m;
}

static int watch_match(const char *pattern, const char *path)
{
    return matches(pattern, PATHGLOB_ANCHORED, path);
}

static int ignore_match(const char *pattern, const char *path)
{
    return matches(pattern, PATHGLOB_GITIGNORE, path);
}

static int under(const char *pattern, const char *folder)
{
    struct pathglob g;
    char err[256];
    assert_int_equal(pathglob_compile(&g, pattern, PATHGLOB_ANCHORED, err, sizeof err), 0);
    int m = pathglob_may_match_under(&g, folder);
    pathglob_free(&g);
    return m;
}

static void test_star_and_question_stay_in_one_name(void **state)
{
    (void)state;
    assert_true(watch_match("*.py", "app.py"));
    assert_false(watch_match("*.py", "src/app.py")); /* anchored: the config's folder only */
    assert_true(watch_match("src/*.py", "src/app.py"));
    assert_false(watch_match("src/*.py", "src/sub/app.py"));
    assert_true(watch_match("src/?.py", "src/a.py"));
    assert_false(watch_match("src/?.py", "src/ab.py"));
    assert_true(watch_match("src/[ab].py", "src/b.py"));
    assert_false(watch_match("src/[!ab].py", "src/b.py"));
    assert_true(watch_match("src/*", "src/.hidden")); /* like .gitignore, * takes a leading dot */
    assert_false(watch_match("src/*.py", "src/app.pyc"));
}

static void test_globstar_spans_any_number_of_folders(void **state)
{
    (void)state;
    assert_true(watch_match("src/**/*.py", "src/app.py"));
    assert_true(watch_match("src/**/*.py", "src/a/b/c/app.py"));
    assert_false(watch_match("src/**/*.py", "lib/app.py"));
    assert_false(watch_match("src/**/*.py", "src/a/b/app.txt"));
    assert_true(watch_match("**/*.py", "app.py"));
    assert_true(watch_match("**/*.py", "x/y/app.py"));
    assert_true(watch_match("src/**/test/*.py", "src/test/a.py"));
    assert_true(watch_match("src/**/test/*.py", "src/x/y/test/a.py"));
    assert_false(watch_match("src/**/test/*.py", "src/x/y/test/z/a.py"));
    assert_true(watch_match("src/**/**/x", "src/x")); /* repeated ** collapse */
    assert_true(watch_match("**", "anything/at/all"));
    /* ** inside a name is just a star */
    assert_true(watch_match("src/**.py", "src/a.py"));
    assert_false(watch_match("src/**.py", "src/a/b.py"));
}

/* Many globstars against a deep path that almost matches: linear backing up, not a search
 * of every split (which would take longer than the test run). */
static void test_globstars_never_blow_up(void **state)
{
    (void)state;
    char path[512] = "";
    for (int i = 0; i < 100; i++)
        strcat(path, i ? "/a" : "a");
    assert_false(watch_match("**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/b", path));
    assert_true(watch_match("**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/a", path));
}

static void test_folder_patterns_match_what_lies_under(void **state)
{
    (void)state;
    assert_true(watch_match("templates/", "templates/index.html"));
    assert_true(watch_match("templates/", "templates/a/b/c.html"));
    assert_false(watch_match("templates/", "templates")); /* the folder entry itself */
    assert_false(watch_match("templates/", "templates.html"));
    /* without the slash: the path itself or anything under it */
    assert_true(watch_match("templates", "templates"));
    assert_true(watch_match("templates", "templates/x.html"));
    assert_true(watch_match("conf/app.yml", "conf/app.yml"));
    assert_false(watch_match("conf/app.yml", "conf/app.yml.bak"));
    assert_true(watch_match("./src/", "src/a.py"));
}

static void test_ignore_follows_gitignore(void **state)
{
    (void)state;
    /* no slash inside: at any depth */
    assert_true(ignore_match(".git", ".git/HEAD"));
    assert_true(ignore_match("__pycache__", "src/a/__pycache__/x.cpython-311.pyc"));
    assert_true(ignore_match("*.swp", "src/.app.py.swp"));
    assert_true(ignore_match("*~", "src/app.py~"));
    assert_true(ignore_match(".#*", "src/.#app.py"));
    assert_true(ignore_match("4913", "src/4913"));
    assert_false(ignore_match("4913", "src/49130"));
    assert_true(ignore_match("build/", "a/build/x.o"));
    assert_false(ignore_match("build/", "a/build")); /* a file named build is not a folder */
    struct pathglob g;
    char err[256];
    assert_int_equal(pathglob_compile(&g, "build/", PATHGLOB_GITIGNORE, err, sizeof err), 0);
    assert_true(pathglob_match_folder(&g, "a/build")); /* ... but a folder named build is */
    assert_false(pathglob_match_folder(&g, "a/builds"));
    pathglob_free(&g);
    struct pathglob two[2];
    assert_int_equal(pathglob_compile(&two[0], "*.log", PATHGLOB_GITIGNORE, err, sizeof err), 0);
    assert_int_equal(pathglob_compile(&two[1], "tmp/", PATHGLOB_GITIGNORE, err, sizeof err), 0);
    assert_true(pathglob_match_any(two, 2, "a/x.log", 0));
    assert_true(pathglob_match_any(two, 2, "a/tmp", 1));
    assert_false(pathglob_match_any(two, 2, "a/tmp", 0));
    assert_false(pathglob_match_any(two, 0, "a/x.log", 0));
    pathglob_free(&two[0]);
    pathglob_free(&two[1]);
    /* a slash inside or in front: from the config's folder */
    assert_true(ignore_match("src/gen", "src/gen/x.py"));
    assert_false(ignore_match("src/gen", "lib/src/gen/x.py"));
    assert_true(ignore_match("/gen", "gen/x.py"));
    assert_false(ignore_match("/gen", "src/gen/x.py"));
}

static void test_folders_worth_watching(void **state)
{
    (void)state;
    assert_true(under("src/**/*.py", ""));
    assert_true(under("src/**/*.py", "src"));
    assert_true(under("src/**/*.py", "src/a/b"));
    assert_false(under("src/**/*.py", "docs"));
    assert_false(under("src/**/*.py", "docs/src"));
    /* a fixed depth stops the walk */
    assert_true(under("*.py", ""));
    assert_false(under("*.py", "src"));
    assert_true(under("src/*.py", "src"));
    assert_false(under("src/*.py", "src/sub"));
    /* under a matched folder, everything is wanted */
    assert_true(under("templates/", "templates"));
    assert_true(under("templates/", "templates/a/b"));
    assert_true(under("templates", "templates/a"));
    assert_false(under("templates/", "static"));
    assert_true(under("s*/x/*.py", "src"));
    assert_true(under("s*/x/*.py", "src/x"));
    assert_false(under("s*/x/*.py", "src/y"));
}

static void test_bad_patterns_are_refused(void **state)
{
    (void)state;
    struct pathglob g;
    char err[256];
    assert_int_equal(pathglob_compile(&g, "", PATHGLOB_ANCHORED, err, sizeof err), -1);
    assert_string_equal(err, "a pattern must not be empty");
    assert_int_equal(pathglob_compile(&g, "/etc/*.conf", PATHGLOB_ANCHORED, err, sizeof err), -1);
    assert_string_equal(err, "\"/etc/*.conf\" must be relative to the folder of the config file (no leading /)");
    assert_int_equal(pathglob_compile(&g, "../lib/**", PATHGLOB_ANCHORED, err, sizeof err), -1);
    assert_string_equal(err, "\"../lib/**\" must stay inside the folder of the config file (no ..)");
    assert_int_equal(pathglob_compile(&g, "src/../../x", PATHGLOB_GITIGNORE, err, sizeof err), -1);
    assert_int_equal(pathglob_compile(&g, "/", PATHGLOB_GITIGNORE, err, sizeof err), -1);
    assert_string_equal(err, "\"/\" names no file or folder");
    assert_int_equal(pathglob_compile(&g, "./", PATHGLOB_ANCHORED, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_star_and_question_stay_in_one_name),
        cmocka_unit_test(test_globstar_spans_any_number_of_folders),
        cmocka_unit_test(test_globstars_never_blow_up),
        cmocka_unit_test(test_folder_patterns_match_what_lies_under),
        cmocka_unit_test(test_ignore_follows_gitignore),
        cmocka_unit_test(test_folders_worth_watching),
        cmocka_unit_test(test_bad_patterns_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
