/* Unit tests for the accept-queue rule of sockets/sockets.c: connections that wait with no
 * worker accepting are reported once after SOCKETS_STALL_MS, and once when they move again;
 * a queue that ever shrinks (a worker accepted) or drains starts over. No kernel involved. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "sockets/sockets.h"

/* Feeds samples one second apart from t=1000 ms; returns the event of the last. */
static enum socket_queue_event feed(struct socket_queue *q, uint64_t *now, const int *waiting, size_t n)
{
    enum socket_queue_event ev = SOCKET_QUEUE_NO_CHANGE;
    for (size_t i = 0; i < n; i++) {
        *now += 1000;
        ev = socket_queue_update(q, waiting[i], *now);
        if (i + 1 < n)
            assert_int_equal(ev, SOCKET_QUEUE_NO_CHANGE);
    }
    return ev;
}

static void test_waiting_that_never_shrinks_is_reported_once(void **state)
{
    (void)state;
    struct socket_queue q = {0};
    uint64_t now = 0;
    /* 5 s after the first non-empty sample, not before. */
    assert_int_equal(feed(&q, &now, (const int[]){0, 3, 3, 5, 5, 12}, 6), SOCKET_QUEUE_NO_CHANGE);
    assert_int_equal(socket_queue_update(&q, 12, now += 1000), SOCKET_QUEUE_STALLED);
    assert_true(q.stalled);
    assert_int_equal(q.waiting, 12);
    assert_int_equal(socket_queue_update(&q, 12, now += 1000), SOCKET_QUEUE_NO_CHANGE);
    assert_int_equal(socket_queue_update(&q, 13, now += 1000), SOCKET_QUEUE_NO_CHANGE);
    /* A worker took some: moving again, said once. */
    assert_int_equal(socket_queue_update(&q, 4, now += 1000), SOCKET_QUEUE_MOVING);
    assert_false(q.stalled);
    assert_int_equal(socket_queue_update(&q, 4, now += 1000), SOCKET_QUEUE_NO_CHANGE);
}

static void test_a_busy_queue_that_shrinks_is_not_reported(void **state)
{
    (void)state;
    struct socket_queue q = {0};
    uint64_t now = 0;
    /* Under load the queue is often non-empty, but it shrinks: workers accept. */
    const int busy[] = {2, 5, 3, 7, 7, 4, 9, 9, 9, 1, 6, 6, 6, 6, 2, 0, 8};
    assert_int_equal(feed(&q, &now, busy, sizeof busy / sizeof busy[0]), SOCKET_QUEUE_NO_CHANGE);
    assert_false(q.stalled);
}

static void test_a_drained_queue_recovers(void **state)
{
    (void)state;
    struct socket_queue q = {0};
    uint64_t now = 0;
    assert_int_equal(feed(&q, &now, (const int[]){1, 1, 1, 1, 1, 1}, 6), SOCKET_QUEUE_STALLED);
    assert_int_equal(socket_queue_update(&q, 0, now += 1000), SOCKET_QUEUE_MOVING);
    assert_int_equal(socket_queue_update(&q, 0, now += 1000), SOCKET_QUEUE_NO_CHANGE);
    /* A new run needs its own 5 s. */
    assert_int_equal(feed(&q, &now, (const int[]){2, 2, 2, 2, 2}, 5), SOCKET_QUEUE_NO_CHANGE);
    assert_int_equal(socket_queue_update(&q, 2, now += 1000), SOCKET_QUEUE_STALLED);
}

static void test_description(void **state)
{
    (void)state;
    struct bound_socket bs;
    memset(&bs, 0, sizeof bs);
    strcpy(bs.address, "127.0.0.1:4080");
    char buf[200];
    assert_int_equal(sockets_describe_stall(&bs, 0, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    uint64_t now = 0;
    feed(&bs.queue, &now, (const int[]){12, 12, 12, 12, 12, 12}, 6);
    assert_int_equal(sockets_describe_stall(&bs, now + 1500, buf, sizeof buf), 1);
    assert_string_equal(buf, "12 connections waiting on 127.0.0.1:4080, none accepted for 6 s");
}

/* A command that names $(socket.X.fd) has picked its socket: no LISTEN_* for it. */
static void test_a_command_naming_an_fd_has_picked_its_socket(void **state)
{
    (void)state;
    assert_true(sockets_command_names_fd("gunicorn --bind fd://$(socket.Web.fd) app:app"));
    assert_true(sockets_command_names_fd("./srv --port $(socket.Api.port) --fd $(socket.Api.fd)"));
    assert_false(sockets_command_names_fd("./srv --port $(socket.Api.port)"));
    assert_false(sockets_command_names_fd("gunicorn app:app"));
    assert_false(sockets_command_names_fd("echo $(socket.fd)"));
}

/* The LISTEN_PID warning: only for a service that gets sockets by LISTEN_FDS and whose
 * command leaves the shell in place. */
static void test_listen_pid_warning(void **state)
{
    (void)state;
    struct config_socket sock = {.name = "Web", .host = "127.0.0.1", .port = 4080};
    char *api[] = {"Web"};
    struct config_service svc = {.name = "Web", .line = 3};
    struct config cfg = {.path = "/p/.lymph.yml", .sockets = &sock, .socket_count = 1,
                         .services = &svc, .service_count = 1};
    char out[1024];
    static const char *const quiet[] = {
        "gunicorn app:app", "cd app && gunicorn app:app", "cd app; exec ./srv",
        "./srv --fd $(socket.Web.fd) | tee log", "cd app && ./srv --port $(socket.Web.port)",
    };
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++) {
        svc.command = (char *)quiet[i];
        if (sockets_listen_pid_warning(&cfg, &svc, out, sizeof out))
            fail_msg("warned about %s: %s", quiet[i], out);
    }
    svc.command = "cd app && gunicorn app:app | tee log";
    assert_true(sockets_listen_pid_warning(&cfg, &svc, out, sizeof out));
    assert_non_null(strstr(out, "/p/.lymph.yml:3: instances.Web.command: LISTEN_PID will name the shell"));
    assert_non_null(strstr(out, "pass $(socket.Web.fd)"));
    svc.command = "cd app && exec ./srv | cat"; /* the pipe keeps the shell */
    assert_true(sockets_listen_pid_warning(&cfg, &svc, out, sizeof out));
    /* no socket named like it, none listed, none named: nothing passed, nothing to say */
    svc.name = "Other";
    assert_false(sockets_listen_pid_warning(&cfg, &svc, out, sizeof out));
    svc.sockets = api;
    svc.socket_count = 1;
    assert_true(sockets_listen_pid_warning(&cfg, &svc, out, sizeof out));
    assert_non_null(strstr(out, "instances.Other.command"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waiting_that_never_shrinks_is_reported_once),
        cmocka_unit_test(test_a_busy_queue_that_shrinks_is_not_reported),
        cmocka_unit_test(test_a_drained_queue_recovers),
        cmocka_unit_test(test_description),
        cmocka_unit_test(test_a_command_naming_an_fd_has_picked_its_socket),
        cmocka_unit_test(test_listen_pid_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
