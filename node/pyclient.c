/* pyclient: the Python client's folder on workers' PYTHONPATH, and check's interpreter warning.
 * It must never fail `up`: a folder that is not found leaves PYTHONPATH as the user set it. */
#include "node/pyclient.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/shellcmd.h"

extern char **environ;

/* The client's folder: one that holds devnode/__init__.py, next to the binary. */
static int client_dir(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    static const char *const relative[] = {"clients/python", "../share/devnode/python"};
    for (size_t i = 0; i < sizeof relative / sizeof relative[0]; i++) {
        char path[PATH_MAX], marker[PATH_MAX + 32], real[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", exe, relative[i]) >= sizeof path)
            continue;
        snprintf(marker, sizeof marker, "%s/devnode/__init__.py", path);
        if (access(marker, R_OK) != 0 || !realpath(path, real))
            continue;
        if ((size_t)snprintf(out, cap, "%s", real) < cap)
            return 1;
    }
    return 0;
}

const char *pyclient_pythonpath(char *const *envp, char out[PYCLIENT_PYTHONPATH_MAX])
{
    char dir[PATH_MAX];
    if (!client_dir(dir, sizeof dir))
        return NULL;
    const char *current = NULL;
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, "PYTHONPATH=", 11) == 0)
            current = *e + 11;
    if (!current || !*current) {
        snprintf(out, PYCLIENT_PYTHONPATH_MAX, "%s", dir);
        return out;
    }
    size_t dlen = strlen(dir);
    for (const char *p = current;; p++) { /* already on it: leave the user's order alone */
        size_t len = strcspn(p, ":");
        if (len == dlen && strncmp(p, dir, dlen) == 0)
            return NULL;
        p += len;
        if (!*p)
            break;
    }
    if ((size_t)snprintf(out, PYCLIENT_PYTHONPATH_MAX, "%s:%s", current, dir) >= PYCLIENT_PYTHONPATH_MAX)
        return NULL;
    return out;
}

/* 1 when `program`'s last part is python, python3, python3.11, ... */
static int is_python(const char *program)
{
    const char *name = strrchr(program, '/');
    name = name ? name + 1 : program;
    if (strncmp(name, "python", 6) != 0)
        return 0;
    for (const char *p = name + 6; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            return 0;
    return 1;
}

/* `program` found as the shell would: a path as given (from cwd), else PATH's first hit. */
static int resolve(const struct config_service *s, const char *program, char *out, size_t cap)
{
    if (strchr(program, '/')) {
        int n = program[0] == '/' ? snprintf(out, cap, "%s", program) : snprintf(out, cap, "%s/%s", s->cwd, program);
        return n > 0 && (size_t)n < cap && access(out, X_OK) == 0;
    }
    const char *path = config_service_env(s, "PATH");
    if (!path)
        path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *dir = path;; dir++) {
        size_t len = strcspn(dir, ":");
        int n = len == 0 ? snprintf(out, cap, "%s/%s", s->cwd, program)
                         : snprintf(out, cap, "%.*s/%s", (int)len, dir, program);
        if (n > 0 && (size_t)n < cap && access(out, X_OK) == 0)
            return 1;
        dir += len;
        if (!*dir)
            return 0;
    }
}

/* Runs `python -I -c CODE` and reads the first line it prints (the missing modules); -1 when it
 * could not tell (did not start, failed, took longer than 5 s). */
static int ask_interpreter(const char *python, const char *code, char *out, size_t cap)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *argv[] = {(char *)python, "-I", "-c", (char *)code, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, python, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    size_t used = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int ok = 1;
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = 5000 - (long)((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int r = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ok = 0;
            kill(pid, SIGKILL);
            break;
        }
        ssize_t n = read(fds[0], out + used, cap - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
        if (used >= cap - 1)
            break;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    out[used] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int pyclient_check_interpreter(const struct config *cfg, const struct config_service *s, char *out, size_t cap)
{
    char program[4096], python[8192];
    int in_list;
    if (!strstr(s->command, "-m devnode") || !shellcmd_program(s->command, program, sizeof program, &in_list) ||
        !is_python(program) || !resolve(s, program, python, sizeof python))
        return 0;
    /* A service with a shared socket of its name is a web service: devnode.web needs werkzeug. */
    int web = 0;
    for (size_t i = 0; i < cfg->socket_count; i++)
        web |= strcmp(cfg->sockets[i].name, s->name) == 0;
    const char *code = web ? "import importlib.util as u\n"
                             "print(' '.join(m for m in ('zmq', 'msgpack', 'yaml', 'werkzeug') if not u.find_spec(m)))"
                           : "import importlib.util as u\n"
                             "print(' '.join(m for m in ('zmq', 'msgpack', 'yaml') if not u.find_spec(m)))";
    char missing[256];
    if (ask_interpreter(python, code, missing, sizeof missing) < 0 || !missing[0])
        return 0;
    char debs[512] = "", modules[256];
    snprintf(modules, sizeof modules, "%s", missing);
    for (char *m = strtok(missing, " "); m; m = strtok(NULL, " ")) {
        size_t used = strlen(debs);
        snprintf(debs + used, sizeof debs - used, "%spython3-%s", used ? " " : "", m);
    }
    snprintf(out, cap,
             "%s:%d:%d: instances.%s.command: %s (%s) has no %s, which python3 -m devnode needs: the service will "
             "die with ModuleNotFoundError; run Debian's /usr/bin/python3 (apt-get install %s), or install them "
             "into that interpreter",
             cfg->path, s->command_line, s->command_col, s->name, python, program, modules, debs);
    return 1;
}
