/* node: start-up order matters here. The lock comes first (one node per project), the
 * guardian is forked before ZeroMQ starts threads, and the log path is open before the
 * first child so no line is lost. Shutdown runs the same path backwards. */
#include "node/node.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "node/reload.h"

static void node_on_flush(uv_check_t *check)
{
    struct node *node = check->data;
    printer_flush(&node->printer);
    int failed = logfile_flush(&node->logfile) < 0;
    uint64_t lost;
    int last_errno;
    logfile_health(&node->logfile, &lost, &last_errno);
    if (failed && !node->log_error_reported) {
        node->log_error_reported = 1;
        /* The printer still shows it; the file will get it once writing works again. */
        loghub_node_line(&node->hub, getpid(), LOG_LEVEL_ERROR,
                         "cannot write %s: %s; supervising goes on, lines are kept in memory up to 32 MiB",
                         node->logfile.path, strerror(last_errno));
    } else if (node->log_error_reported && last_errno == 0) {
        node->log_error_reported = 0;
        loghub_node_line(&node->hub, getpid(), LOG_LEVEL_INFO, "log file writable again (%llu lines lost)",
                         (unsigned long long)lost);
    }
}

/* Orphans adopted as subreaper (daemons a worker forked into another session) would
 * outlive the node otherwise. */
static void node_kill_adopted(struct node *node)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    pid_t self = getpid();
    struct dirent *e;
    int killed = 0;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == node->guardian.pid)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        char state = 0;
        int ppid = 0;
        if (!p || sscanf(p + 2, "%c %d", &state, &ppid) != 2 || ppid != self)
            continue;
        /* A zombie is a group member already killed with its worker: it only needs reaping. */
        if (state != 'Z') {
            kill((pid_t)pid, SIGKILL);
            killed++;
        }
        waitpid((pid_t)pid, NULL, 0);
    }
    closedir(d);
    if (killed)
        loghub_node_line(&node->hub, self, LOG_LEVEL_WARNING,
                         "killed %d leftover process%s that workers had detached", killed,
                         killed == 1 ? "" : "es");
}

static void node_on_all_stopped(void *ctx)
{
    struct node *node = ctx;
    if (node->opts->on_all_stopped)
        node->opts->on_all_stopped(node->opts->hook_ctx); /* the terminal is the shell's again */
    node_kill_adopted(node);
    /* The last line of the run, on the terminal and in the log; `devnode stop` prints it too. */
    supervisor_stop_summary(&node->sup, node->stop_summary, sizeof node->stop_summary);
    loghub_node_line(&node->hub, getpid(), LOG_LEVEL_INFO, "%s", node->stop_summary);
    watch_close(node->watch);
    configwatch_close(node->configwatch);
    tailserver_close(&node->tail); /* followers get their last lines and `end` */
    registry_close(&node->registry);
    bus_close(&node->bus);
    control_close(&node->control);
    for (int i = 0; i < NODE_SIGNAL_COUNT; i++)
        uv_close((uv_handle_t *)&node->signals[i], NULL);
    uv_close((uv_handle_t *)&node->flush_check, NULL);
    supervisor_close(&node->sup);
    logfile_flush(&node->logfile);
    printer_close(&node->printer);
}

/* How much worker output to hold back for a printer in this state. While stopping, workers
 * must be able to log their last words and exit, so only a printer past its hard cap holds. */
static enum output_hold node_output_hold(const struct node *node, enum printer_event backlog)
{
    if (backlog == PRINTER_FULL)
        return OUTPUT_HOLD_ALL;
    if (backlog == PRINTER_BEHIND && !node->interrupts)
        return OUTPUT_HOLD;
    return OUTPUT_READ_ALL;
}

static void node_on_printer(void *ctx, enum printer_event event)
{
    struct node *node = ctx;
    switch (event) {
    case PRINTER_CAUGHT_UP:
    case PRINTER_BEHIND:
    case PRINTER_FULL:
        supervisor_hold_output(&node->sup, node_output_hold(node, event));
        return;
    case PRINTER_OUTPUT_FAILED:
        loghub_node_line(&node->hub, getpid(), LOG_LEVEL_WARNING,
                         "stdout failed (%s): no more lines are printed; the log file has them all, "
                         "supervising goes on", strerror(node->printer.output_errno));
        return;
    case PRINTER_CLOSED:
        if (node->printer.unprinted_lines && !node->printer.output_errno)
            loghub_node_line(&node->hub, getpid(), LOG_LEVEL_WARNING,
                             "%llu lines did not reach stdout: nobody read it for %.0fs after the stop; "
                             "the log file has them all", (unsigned long long)node->printer.unprinted_lines,
                             (node->printer.lossless ? PRINTER_LOSSLESS_CLOSE_DEADLINE_MS
                                                     : PRINTER_CLOSE_DEADLINE_MS) / 1000.0);
        return;
    }
}

void node_request_stop(struct node *node, const char *why)
{
    node->interrupts++;
    if (!node->printer.closing) /* it closes once everything stopped */
        supervisor_hold_output(&node->sup, node_output_hold(node, node->printer.backlog));
    if (node->interrupts == 1) {
        loghub_node_line(&node->hub, getpid(), LOG_LEVEL_INFO,
                         "%s: stopping all instances (again to force)", why);
        supervisor_stop_all(&node->sup, 0);
    } else if (node->interrupts == 2) {
        loghub_node_line(&node->hub, getpid(), LOG_LEVEL_WARNING, "%s again: killing all instances", why);
        supervisor_stop_all(&node->sup, 1);
    }
}

/* `devnode run` is over: its exit code is the node's. */
static void node_on_run_done(void *ctx, int code, const char *why)
{
    struct node *node = ctx;
    node->exit_code = code;
    node_request_stop(node, why);
}

static void node_on_process_exit(void *ctx, pid_t pid)
{
    struct node *node = ctx;
    registry_on_process_exit(&node->registry, pid);
    bus_on_process_exit(&node->bus, pid);
}

/* Every signal whose default would end the node without its stop (lock, endpoint and
 * workers left behind) has a handler. USR2 is handled to be ignored: an ignored disposition
 * would be inherited by the workers; a handler is reset by exec. */
static const int node_signals[NODE_SIGNAL_COUNT] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD};

/* SIGHUP reloads, as daemons do; but the kernel sends it too when the node's terminal
 * hangs up (the window closed), and then the node stops as it always did. A hung-up
 * terminal answers every ioctl with EIO. */
static void node_on_sighup(struct node *node)
{
    struct termios t;
    if (node->tty_fd >= 0 && tcgetattr(node->tty_fd, &t) < 0 && errno == EIO) {
        node_request_stop(node, "SIGHUP: the terminal is gone");
        return;
    }
    struct reload_report report;
    char err[1024];
    node_reload(node, "SIGHUP", &report, err, sizeof err); /* it logs what it did, or why not */
    reload_report_free(&report);
}

/* --watch-config: a reload per burst of writes; the files to watch may have changed with it. */
static void node_on_config_change(void *ctx, const char *path)
{
    struct node *node = ctx;
    if (node->sup.stopping)
        return;
    const char *shown = path;
    size_t dirlen = strlen(node->cfg.dir);
    if (strncmp(path, node->cfg.dir, dirlen) == 0 && path[dirlen] == '/')
        shown = path + dirlen + 1;
    loghub_node_line(&node->hub, getpid(), LOG_LEVEL_INFO, "%s changed: reloading", shown);
    struct reload_report report;
    char err[1024];
    node_reload(node, "--watch-config", &report, err, sizeof err); /* it logs what it did, or why not */
    reload_report_free(&report);
    configwatch_close(node->configwatch);
    node->configwatch = configwatch_start(&node->loop, &node->cfg, !(node->opts->config_flags & CONFIG_NO_DOTENV),
                                          node_on_config_change, node);
}

static void node_on_signal(uv_signal_t *handle, int signum)
{
    struct node *node = handle->data;
    switch (signum) {
    case SIGCHLD:
        supervisor_reap(&node->sup);
        return;
    case SIGUSR1:
        logfile_reopen(&node->logfile);
        loghub_node_line(&node->hub, getpid(), LOG_LEVEL_INFO, "SIGUSR1: reopened %s", node->logfile.path);
        return;
    case SIGUSR2:
        return;
    case SIGINT:
        node_request_stop(node, "interrupted");
        return;
    case SIGHUP:
        node_on_sighup(node);
        return;
    default:
        node_request_stop(node, signum == SIGTERM ? "SIGTERM" : "SIGQUIT");
        return;
    }
}

static void node_watch_signals(struct node *node)
{
    for (int i = 0; i < NODE_SIGNAL_COUNT; i++) {
        uv_signal_init(&node->loop, &node->signals[i]);
        node->signals[i].data = node;
        uv_signal_start(&node->signals[i], node_on_signal, node_signals[i]);
    }
}

/* `devnode stop` waits for the lock to go and then prints this, so it is written first. */
static void node_write_stop_summary(struct node *node)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", node->rundir.dir, RUNDIR_STOP_SUMMARY);
    FILE *f = fopen(path, "we");
    if (!f)
        return;
    fprintf(f, "%d\n%s\n", (int)getpid(), node->stop_summary);
    fclose(f);
}

static size_t node_name_width(const struct config *cfg)
{
    size_t width = strlen("devnode");
    for (size_t i = 0; i < cfg->service_count; i++) {
        int n = cfg->services[i].numprocesses > 0 ? cfg->services[i].numprocesses - 1 : 0;
        size_t digits = 1;
        while (n >= 10) {
            n /= 10;
            digits++;
        }
        size_t w = strlen(cfg->services[i].name) + 1 + digits;
        if (w > width)
            width = w;
    }
    return width;
}

static void node_restore_stdout(struct node *node)
{
    if (node->printer.kind == PRINTER_TTY)
        uv_tty_reset_mode();
    /* libuv made our stdout non-blocking; whoever shares it after us expects blocking. */
    int flags = fcntl(1, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK))
        fcntl(1, F_SETFL, flags & ~O_NONBLOCK);
}

int node_run(struct config *cfg, const struct node_options *opts)
{
    struct node *node = xcalloc(1, sizeof *node);
    node->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    node->devnull_fd = -1;
    node->tty_fd = isatty(0) ? 0 : isatty(1) ? 1 : isatty(2) ? 2 : -1;
    node->opts = opts;
    char err[512];
    int rc = NODE_EXIT_FAILURE;
    pid_t other = 0;

    /* Each step below undoes the ones before it on failure (the labels at the end, in
     * reverse order), so a failed start leaves nothing running and ends at once. */
    if (rundir_open(&node->rundir, node->cfg.dir, &other, err, sizeof err) < 0) {
        fprintf(stderr, "devnode: %s\n", err);
        goto out_config;
    }
    /* Bound before anything runs; a busy port is a configuration problem: exit 2. */
    if (sockets_bind_all(&node->sockets, &node->cfg, err, sizeof err) < 0) {
        fprintf(stderr, "devnode: %s\n", err);
        rc = NODE_EXIT_USAGE;
        goto out_rundir;
    }
    /* Orphaned grandchildren come to us, so nothing a worker forks escapes supervision. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    if (guardian_start(&node->guardian, node->rundir.dir, err, sizeof err) < 0) {
        fprintf(stderr, "devnode: %s\n", err);
        goto out_sockets;
    }
    signal(SIGPIPE, SIG_IGN);
    /* A log file past RLIMIT_FSIZE must be a write error the node reports, not its death. */
    signal(SIGXFSZ, SIG_IGN);
    uv_loop_init(&node->loop);
    loghub_init(&node->hub);
    uint64_t max_bytes = (uint64_t)node->cfg.logs.file_max_mb << 20;
    if (logfile_open(&node->logfile, node->rundir.logs_dir, max_bytes, node->cfg.logs.keep_files,
                     err, sizeof err) < 0) {
        fprintf(stderr, "devnode: %s\n", err);
        goto out_loop;
    }
    if (node->cfg.logs.per_service)
        logfile_per_service(&node->logfile, node->rundir.logs_dir);
    if (opts->front_end)
        node->devnull_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (printer_open(&node->printer, &node->loop, node->devnull_fd >= 0 ? node->devnull_fd : 1, opts->color,
                     opts->output_mode, node_on_printer, node, err, sizeof err) < 0) {
        fprintf(stderr, "devnode: %s\n", err);
        goto out_logfile;
    }
    printer_set_name_width(&node->printer, node_name_width(&node->cfg));
    loghub_subscribe(&node->hub, logfile_on_line, &node->logfile);
    loghub_subscribe(&node->hub, printer_on_line, &node->printer);

    if (control_open(&node->control, &node->loop, node->rundir.endpoint, err, sizeof err) < 0) {
        fprintf(stderr, "devnode: %s\n", err);
        goto out_printer;
    }
    int sup_rc = supervisor_init(&node->sup, &node->loop, &node->cfg, &node->sockets, &node->hub,
                                 &node->guardian, node->rundir.endpoint, node->rundir.dir,
                                 node->rundir.sock_dir, err, sizeof err);
    if (sup_rc < 0) {
        if (sup_rc == -EINVAL) {
            fprintf(stderr, "devnode: %s: %s\n", node->cfg.path, err);
            rc = NODE_EXIT_USAGE;
        } else {
            fprintf(stderr, "devnode: %s\n", err);
        }
        goto out_control;
    }
    node->sup.on_all_stopped = node_on_all_stopped;
    node->sup.on_all_stopped_ctx = node;
    node->sup.on_process_exit = node_on_process_exit;
    node->sup.on_process_exit_ctx = node;
    registry_init(&node->registry, &node->loop, &node->hub, &node->control);
    int streams_failed = bus_init(&node->bus, &node->loop, &node->hub, &node->control, &node->cfg,
                                  node->rundir.dir, err, sizeof err) < 0;
    node_register_requests(node);
    attach_server_init(&node->attach, &node->control, &node->sup);
    /* before the first line ("node up") so the ring holds every line of this run */
    if (tailserver_init(&node->tail, &node->loop, &node->hub, &node->control, node->cfg.logs.buffer_lines,
                        err, sizeof err) < 0)
        fprintf(stderr, "devnode: %s; `devnode tail` reads the log files only\n", err);

    node_watch_signals(node);
    uv_check_init(&node->loop, &node->flush_check);
    node->flush_check.data = node;
    uv_check_start(&node->flush_check, node_on_flush);

    /* Without /dev/null the plain output has the terminal, so no front end may take it. */
    if (opts->on_ready && (!opts->front_end || node->devnull_fd >= 0))
        opts->on_ready(opts->hook_ctx, node, &node->loop, node->rundir.endpoint);

    uv_update_time(&node->loop);
    node->started_ms = uv_now(&node->loop);
    size_t instances = 0;
    for (size_t i = 0; i < node->cfg.service_count; i++)
        instances += (size_t)node->cfg.services[i].numprocesses;
    loghub_node_line(&node->hub, getpid(), LOG_LEVEL_INFO,
                     "node %d up for %s: %zu service%s, %zu instance%s; control at %s", (int)getpid(),
                     node->cfg.path, node->cfg.service_count, node->cfg.service_count == 1 ? "" : "s",
                     instances, instances == 1 ? "" : "s", node->rundir.endpoint);
    if (streams_failed) {
        /* Nothing has started: say why and take the normal way out. */
        loghub_node_line(&node->hub, getpid(), LOG_LEVEL_ERROR, "%s", err);
        fprintf(stderr, "devnode: %s\n", err);
        node->exit_code = NODE_EXIT_FAILURE;
        node_request_stop(node, "cannot open the retained streams");
    } else {
        startorder_select(&node->sup, opts->services, opts->service_count, opts->no_deps, err, sizeof err);
        if (opts->run) {
            node->sup.order.run.on_done = node_on_run_done;
            node->sup.order.run.on_done_ctx = node;
            startorder_run(&node->sup, opts->services, opts->service_count, opts->abort_on_failure);
        }
        supervisor_start_all(&node->sup);
        node->watch = watch_start(&node->loop, &node->cfg, &node->sup, &node->hub);
        if (opts->watch_config)
            node->configwatch = configwatch_start(&node->loop, &node->cfg, !(opts->config_flags & CONFIG_NO_DOTENV),
                                                  node_on_config_change, node);
        if (node->cfg.service_count == 0)
            node_request_stop(node, "nothing to run");
    }

    uv_run(&node->loop, UV_RUN_DEFAULT);
    rc = node->exit_code;
    if (opts->run && !node->sup.order.run.done && rc == NODE_EXIT_OK)
        rc = 130; /* `devnode run` stopped before its services completed: as a Ctrl-C */
    tailserver_free(&node->tail);
    supervisor_free(&node->sup);
    /* node_on_all_stopped closed every handle opened above. */
    goto out_closed;

out_control:
    control_close(&node->control);
out_printer:
    printer_close(&node->printer);
    uv_run(&node->loop, UV_RUN_DEFAULT); /* the close callbacks of what was started */
out_closed:
    node_restore_stdout(node);
out_logfile:
    logfile_close(&node->logfile);
out_loop:
    if (node->devnull_fd >= 0)
        close(node->devnull_fd);
    uv_loop_close(&node->loop);
    guardian_stop(&node->guardian);
    waitpid(node->guardian.pid, NULL, 0);
out_sockets:
    sockets_close_all(&node->sockets);
out_rundir:
    if (node->stop_summary[0]) {
        node_write_stop_summary(node);
        /* The dashboard had the terminal; the plain output went nowhere. */
        if (opts->front_end)
            fprintf(stderr, "devnode: %s\n", node->stop_summary);
    }
    rundir_close(&node->rundir);
out_config:
    config_free(&node->cfg);
    free(node);
    return rc;
}
