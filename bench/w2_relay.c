/* w2_relay: the least any node could do with W2's burst, for bench_node.py's relay floor.
 *
 * It starts the 8 burst writers on pipes itself, reads the pipes on one thread, frames lines
 * with memchr and appends each as devnode's JSON log line (logformat_json, the node's own
 * encoder and cache) to a file in 256 KiB writes. No ring, no trace index, no level parsing,
 * no printer, no supervision and no second thread: what is left is the work the issue's
 * figure cannot avoid (read the pipes, write the JSON). Its time against the plain writers'
 * is the best ratio this machine allows for this log format.
 *
 * usage: w2_relay BURST LINES WIDTH WRITERS OUT_FILE
 * prints: "<ms> <cpu_s>": wall time from the first spawn until every line is written and
 * every writer reaped, and the relay's own CPU seconds (user + system). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/logformat.h"

#define MAX_WRITERS 64
#define READ_CHUNK (64 * 1024)
#define WRITE_THRESHOLD (256 * 1024)

struct source {
    int fd;
    pid_t pid;
    char buf[READ_CHUNK * 2];
    size_t have;
};

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int64_t wall_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void write_all(int fd, struct strbuf *out)
{
    size_t done = 0;
    while (done < out->len) {
        ssize_t n = write(fd, out->data + done, out->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            perror("w2_relay: write");
            exit(1);
        }
        done += (size_t)n;
    }
    strbuf_reset(out);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: w2_relay BURST LINES WIDTH WRITERS OUT_FILE\n");
        return 2;
    }
    int writers = atoi(argv[4]);
    if (writers < 1 || writers > MAX_WRITERS) {
        fprintf(stderr, "w2_relay: WRITERS must be 1..%d\n", MAX_WRITERS);
        return 2;
    }
    static struct source src[MAX_WRITERS];
    struct pollfd pfd[MAX_WRITERS];
    double t0 = mono();
    int out = open(argv[5], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (out < 0) {
        perror(argv[5]);
        return 1;
    }
    for (int i = 0; i < writers; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
            perror("w2_relay: pipe");
            return 1;
        }
        char tag[16];
        snprintf(tag, sizeof tag, "%d", i);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(p[1], 1);
            execl(argv[1], argv[1], argv[2], tag, argv[3], (char *)NULL);
            _exit(127);
        }
        close(p[1]);
        src[i].fd = p[0];
        src[i].pid = pid;
        pfd[i].fd = p[0];
        pfd[i].events = POLLIN;
    }
    struct strbuf json;
    strbuf_init(&json);
    struct logformat_cache cache;
    logformat_cache_init(&cache);
    uint64_t seq = 0;
    for (int open_pipes = writers; open_pipes > 0;) {
        if (poll(pfd, (nfds_t)writers, -1) < 0 && errno != EINTR) {
            perror("w2_relay: poll");
            return 1;
        }
        for (int i = 0; i < writers; i++) {
            if (pfd[i].fd < 0 || !pfd[i].revents)
                continue;
            struct source *s = &src[i];
            ssize_t n = read(s->fd, s->buf + s->have, sizeof s->buf - s->have);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(s->fd);
                pfd[i].fd = -1;
                open_pipes--;
                continue;
            }
            s->have += (size_t)n;
            struct log_line line = {.wall_ns = wall_ns(), .service = "Burst", .instance = i, .pid = s->pid,
                                    .stream = LOG_STREAM_STDOUT};
            char *p = s->buf, *end = s->buf + s->have, *nl;
            while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
                line.seq = ++seq;
                line.text = p;
                line.len = (size_t)(nl - p);
                logformat_json(&json, &line, &cache);
                p = nl + 1;
            }
            s->have = (size_t)(end - p);
            memmove(s->buf, p, s->have);
            if (json.len >= WRITE_THRESHOLD)
                write_all(out, &json);
        }
    }
    write_all(out, &json);
    close(out);
    for (int i = 0; i < writers; i++)
        waitpid(src[i].pid, NULL, 0);
    double ms = (mono() - t0) * 1000;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("%.1f %.3f\n", ms, cpu);
    strbuf_free(&json);
    return 0;
}
