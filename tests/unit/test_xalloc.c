/* Unit tests for xalloc: the abort-on-OOM allocators of the node and the tools return memory
 * for every size (0 included), copy strings up to their end, and refuse an array size that
 * overflows instead of allocating less than asked. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/xalloc.h"

static void test_zero_sizes_give_memory(void **state)
{
    void *a = xmalloc(0), *b = xcalloc(0, 8), *c = xcalloc(8, 0), *d = xrealloc(NULL, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(d);
    free(a);
    free(b);
    free(c);
    free(d);
}

static void test_calloc_zeroes_and_realloc_keeps(void **state)
{
    unsigned char *p = xcalloc(64, 1);
    for (int i = 0; i < 64; i++)
        assert_int_equal(p[i], 0);
    memset(p, 7, 64);
    p = xrealloc(p, 4096);
    for (int i = 0; i < 64; i++)
        assert_int_equal(p[i], 7);
    free(p);
}

static void test_strdup_and_strndup(void **state)
{
    char *a = xstrdup("hello");
    assert_string_equal(a, "hello");
    char *b = xstrndup("hello", 3);
    assert_string_equal(b, "hel");
    char *c = xstrndup("hi\0there", 8); /* stops at the string's end, as strndup */
    assert_string_equal(c, "hi");
    char *d = xstrndup("", 0);
    assert_string_equal(d, "");
    free(a);
    free(b);
    free(c);
    free(d);
}

/* An overflowing count * size must abort with its line, never allocate the wrapped size. */
static void test_overflowing_array_aborts(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        signal(SIGABRT, SIG_DFL);
        xreallocarray(NULL, SIZE_MAX / 2, 4);
        _exit(0);
    }
    close(fds[1]);
    char buf[256] = {0};
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "devnode: out of memory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_sizes_give_memory),
        cmocka_unit_test(test_calloc_zeroes_and_realloc_keeps),
        cmocka_unit_test(test_strdup_and_strndup),
        cmocka_unit_test(test_overflowing_array_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
