/* config: loads .lymph.yml (lymph's node format plus devnode's keys) into plain structs.
 * Parses with libyaml (yamltree), interpolates $(env.X) / $(var.a.b) (interp), validates every
 * field against the key table (keys.c). It sits below node/ and uses nothing of it.
 * It never spawns, binds or prints: errors come back as one line naming file:line:col and key. */
#ifndef DEVNODE_CONFIG_H
#define DEVNODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum restart_policy { RESTART_ALWAYS, RESTART_ON_FAILURE, RESTART_NEVER };

/* Where a worker's variable comes from, lowest first: a later layer wins (docs/config.md
 * "Environment files"). The shell sits between .env and the files: it is not in the list,
 * the worker inherits it, and what beats it is listed. */
enum config_env_layer {
    ENV_FROM_DOTENV,        /* the .env beside the config, where the shell does not set it */
    ENV_FROM_FILE,          /* a top-level env_file */
    ENV_FROM_SERVICE_FILE,  /* the service's env_file */
    ENV_FROM_ENV,           /* the service's env: */
};

struct config_env_var {
    char *name;
    char *value;
    int line, col;  /* of the value, for messages (col 0 in an env file) */
    enum config_env_layer layer;
    char *file;     /* the env file as messages name it; NULL for env: (the config itself) */
};

/* How the node knows a new process is ready to serve (used by rolling restarts). */
enum ready_kind {
    READY_AT_START, /* as soon as it runs (default) */
    READY_NOTIFY,   /* it sends READY=1 to NOTIFY_SOCKET (systemd's sd_notify) */
    READY_LOG,      /* one of its lines matches a pattern */
    READY_TCP,      /* a TCP connect to host:port succeeds */
    READY_DELAY,    /* it stayed up for a grace period */
    READY_HTTP,     /* an HTTP GET answers 2xx or 3xx (probe) */
    READY_EXEC,     /* a command exits 0 (probe) */
};

/* A health probe's target (`ready: {http|exec}`, `live: {http|tcp|exec}`). `$PORT` in an
 * address, and the path form of http, mean the instance's own PORT, read when it probes. */
enum probe_kind { PROBE_NONE, PROBE_HTTP, PROBE_TCP, PROBE_EXEC };
struct config_probe {
    enum probe_kind kind;
    char *host;            /* HTTP, TCP; default 127.0.0.1 */
    int port;              /* HTTP, TCP; 0: the instance's PORT */
    char *path;            /* HTTP: "/healthz" (with any query) */
    char *command;         /* EXEC: run with /bin/sh -c in the instance's environment and cwd */
    int line, col;         /* of the value, for messages */
};

/* `live:`: after `failures` misses in a row the instance is restarted. */
struct config_live {
    struct config_probe probe;  /* kind PROBE_NONE: no liveness check */
    unsigned interval_ms;       /* between probes, default 5000 */
    unsigned timeout_ms;        /* one probe's time, default 1000 */
    int failures;               /* misses in a row that restart it, default 3 */
};

struct config_ready {
    enum ready_kind kind;
    char *log_pattern;     /* READY_LOG: POSIX extended regex (validated at load) */
    char *tcp_host;        /* READY_TCP, default "127.0.0.1" */
    int tcp_port;          /* READY_TCP */
    unsigned delay_ms;     /* READY_DELAY */
    unsigned timeout_ms;   /* give up waiting after this, default 30000 */
    struct config_probe probe; /* READY_HTTP, READY_EXEC */
};

/* What a dependent waits for in a dependency (depends_on, docs/dependencies.md). */
enum config_dep_condition {
    DEP_READY,     /* every instance ready (its ready: check; at start when it has none): the default */
    DEP_STARTED,   /* every instance running */
    DEP_COMPLETED, /* it exited 0: for one-shot services (restart: never or on-failure) */
};

struct config_dep {
    char *name;                          /* the service depended on; check_depends made sure it exists */
    enum config_dep_condition condition;
    int restart;                         /* 1: restart the dependent when this dependency restarts */
    int line, col;                       /* where the name is written, for messages */
};

/* watch: changes to these paths restart the service (docs/config.md#watch). */
struct config_watch {
    char **paths;                /* patterns relative to the config file's folder; none: not watched */
    size_t path_count;
    char **ignore;               /* ignore: patterns, on top of the default ones */
    size_t ignore_count;
    unsigned debounce_ms;        /* watch_debounce, default 200 */
};

struct config_service {
    char *name;                  /* key under instances: (e.g. "Greeting") */
    char *command;               /* run with /bin/sh -c; $(socket.*) refs are left for spawn time */
    int numprocesses;            /* >= 0, default 1 */
    struct config_env_var *env;  /* its final environment on top of the shell's: .env, env_file
                                  * and env: merged, one entry per name, in first-set order */
    size_t env_count;
    char **env_files;            /* env_file: as absolute paths, in order (empty unresolved) */
    size_t env_file_count;
    char *cwd;                   /* absolute; default: the config file's directory */
    enum restart_policy restart; /* default RESTART_ALWAYS */
    int max_restarts;            /* restarts allowed within restart_window; 0 (default): no limit */
    unsigned restart_window_ms;  /* default 60000 */
    int stop_signal;             /* signal number, default SIGTERM */
    unsigned stop_timeout_ms;    /* default 10000 */
    struct config_ready ready;   /* ready: notify | {log: RE} | {tcp: PORT} | {delay: 2s} */
    struct config_live live;     /* live: {http|tcp|exec: ..., interval, timeout, failures} */
    char **sockets;              /* extra socket names from `sockets: [A, B]` */
    size_t socket_count;
    int line;                    /* 1-based line of the service's key, for messages */
    int col;
    int port_first;              /* PORT of instance 0 from its block: port_base + 100 * position */
    int command_line, command_col; /* where the command's value is written */
    int cwd_line, cwd_col;       /* where cwd's value is written; 0 when it is the default */
    struct config_dep *deps;     /* depends_on, in file order; no cycles (config_load refuses them) */
    size_t dep_count;
    int disabled;                /* disabled: true, kept down unless named or needed (startorder.c) */
    struct config_watch watch;   /* watch:, ignore:, watch_debounce: */
    int stdin_pipe;              /* stdin: true: a pipe `devnode attach` writes (0/1, default 0) */
    int tty;                     /* tty: true: a pseudo-terminal for 0, 1 and 2 (0/1, default 0) */
};

struct config_socket {
    char *name;   /* map key; for lymph's list form "socket<index>" */
    char *host;   /* default "127.0.0.1"; NULL when path is set */
    int port;     /* 0..65535; 0 picks a free port at bind time; -1 when path is set */
    char *path;   /* unix socket path (absolute), or NULL */
    int line;
};

struct config_logs {
    size_t buffer_lines;    /* in-memory ring size, default 200000 */
    unsigned file_max_mb;   /* rotate the JSON-lines file past this size, default 64 */
    unsigned keep_files;    /* rotated files kept per log, default 5 */
    int per_service;        /* also logs/<Service>.log, plain lines (0/1, default 0) */
};

/* backends: {registry, events, ip} (docs/backends.md): what the node hands its workers as
 * DEVNODE_REGISTRY and DEVNODE_IP. NULL: not given (the embedded node's, loopback). */
struct config_backends {
    char *registry;   /* zookeeper://host:port[,...][/chroot], checked with zkurl_parse */
    char *events;     /* amqp://user:pass@host:port/vhost: RabbitMQ events, handed on as DEVNODE_EVENTS */
    char *ip;         /* the IPv4 address served RPC endpoints bind and register */
};

/* A retained event stream: events whose type matches `pattern` are kept in a journal. */
struct config_stream {
    char *pattern;           /* AMQP topic pattern, e.g. "book.#" */
    uint64_t retain_events;  /* keep at least the newest this many, default 100000 */
    int line;
};

struct config {
    char *path;   /* absolute path of the loaded file */
    char *dir;    /* absolute directory holding it */
    struct config_service *services;
    size_t service_count;
    struct config_socket *sockets;
    size_t socket_count;
    struct config_logs logs;
    struct config_backends backends;
    struct config_stream *streams;  /* streams: {PATTERN: {retain_events: N}} */
    size_t stream_count;
    char **notes;   /* informational lines for `devnode check` (ignored lymph keys, ...) */
    size_t note_count;
    int port_base;  /* first PORT of the blocks of services without sockets, default 5000 */
    int port_base_line, port_base_col;  /* where port_base: was written; 0 when not */
    char *dotenv_path;  /* the .env that was read (absolute), or NULL: none, or --no-dotenv */
    struct config_env_var *dotenv;  /* its assignments in file order (also those the shell beats) */
    size_t dotenv_count;
    char **env_files;   /* top-level env_file: as absolute paths, in order */
    size_t env_file_count;
};

/* PORT (docs/config.md): each service owns a block of CONFIG_PORT_BLOCK ports from
 * port_base, in config order, kept for the node's life; instance N gets block + N. */
#define CONFIG_PORT_BASE_DEFAULT 5000
#define CONFIG_PORT_BLOCK 100

enum config_port_source {
    PORT_FROM_BLOCK,   /* no sockets: its own port from its block */
    PORT_FROM_SOCKET,  /* the port of its first TCP socket */
    PORT_FROM_ENV,     /* its env: PORT, as written */
    PORT_FROM_NONE,    /* only unix sockets: no PORT */
};

/* Loads and validates `path`; `vars_path` (may be NULL) is the YAML file behind $(var.*).
 * A path named Procfile or Procfile.* is read as the .lymph.yml it stands for (procfile.h).
 * Returns 0, or -1 with a one-line message in err ("FILE:LINE:COL: KEY: what is wrong").
 * On failure *out holds nothing that needs freeing. */
int config_load(const char *path, const char *vars_path, struct config *out,
                char *err, size_t errlen);
enum config_load_flags {
    CONFIG_NO_DOTENV = 1,  /* do not read the .env beside the config (`--no-dotenv`) */
};
/* config_load with flags (enum config_load_flags). */
int config_load_flags(const char *path, const char *vars_path, unsigned flags, struct config *out,
                      char *err, size_t errlen);
/* config_load for commands beside a running node (events, offline tail), which need the
 * service names or the streams, never the values: an undefined $(env.X) or $(var.X) is kept
 * as written instead of failing, and no vars file is read. */
int config_load_unresolved(const char *path, struct config *out, char *err, size_t errlen);
void config_free(struct config *cfg);
/* Frees what one service's config holds (not svc itself) and zeroes it: a reload moves a
 * service's config out of a config it frees (node/svcconfig.c). NULL is fine. */
void config_service_free(struct config_service *svc);

/* Where svc's PORT comes from; for PORT_FROM_SOCKET *socket (may be NULL) is the socket. */
enum config_port_source config_service_port(const struct config *cfg, const struct config_service *svc,
                                            const struct config_socket **socket);
/* The PORT instance `index` of svc gets from its block, or -1 when the block has none for it
 * (index past the block, or a port past 65535). */
int config_block_port(const struct config_service *svc, int index);
void config_probe_free(struct config_probe *probe);
/* The value svc's environment list gives `name` (env:, env_file, .env), or NULL. */
const char *config_service_env(const struct config_service *svc, const char *name);
/* Refuses a PORT no worker could bind (one of a socket's ports, one past 65535), naming
 * `file` (the path as given to config_load). port_base > 0 first moves every block there
 * (`--port-base`). `up` and `check` call it after config_load. Returns 0, or -1 with err. */
int config_check_ports(struct config *cfg, const char *file, int port_base, char *err, size_t errlen);

/* Service by name, or NULL. */
const struct config_service *config_find_service(const struct config *cfg, const char *name);

/* "ready", "started", "completed". */
const char *config_dep_condition_name(enum config_dep_condition c);

/* "TERM", "SIGTERM", "15" -> 15; -1 when unknown. Also used by the CLI. */
int config_parse_signal(const char *text);
/* 15 -> "TERM" (static string), "?" when unknown. */
const char *config_signal_name(int sig);

#endif
