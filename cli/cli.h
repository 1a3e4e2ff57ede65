/* cli: what every subcommand shares: the command table entry and its parsed command line,
 * locating the project's .lymph.yml, and talking to a running node. */
#ifndef DEVNODE_CLI_H
#define DEVNODE_CLI_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/proto.h"

#define CLI_VERSION "0.1.0" /* `devnode --version` and the man page */

enum cli_exit { CLI_OK = 0, CLI_FAILURE = 1, CLI_USAGE = 2, CLI_INTERRUPTED = 130 /* 128 + SIGINT */ };

/* The project a command is about. */
struct cli_project {
    char config_path[PATH_MAX];  /* absolute; .lymph.yml, or a Procfile */
    char dir[PATH_MAX];          /* the project dir: where .lymph.yml is */
};

/* ---- the command table: one entry per cmd_*.c, listed once in main.c */

enum cli_command_flags {
    CLI_NEEDS_PROJECT = 1 << 0, /* main finds .lymph.yml into args->project before run (none: exit 2) */
    CLI_NEEDS_NODE = 1 << 1,    /* talks to the project's running node: "no node running in DIR", exit 1 */
    CLI_JSON = 1 << 2,          /* takes --json (args->json) */
    CLI_COLOR = 1 << 3,         /* takes --color=auto|always|never (args->color, resolved by main) */
    CLI_HIDDEN = 1 << 4,        /* for scripts and the build (__complete, man): not in `devnode help` */
};

/* One option of a command. -c/--config and -h/--help are every command's, --json and --color
 * come with CLI_JSON / CLI_COLOR: a command's table lists only its own. */
struct cli_option {
    const char *name; /* --NAME (a unique prefix also does), or NULL */
    char letter;      /* -X, or 0 */
    int has_value;    /* 1: -X VALUE, -XVALUE, --NAME VALUE, --NAME=VALUE */
    int id;           /* what cli_arg() finds it by; rows sharing an id are one choice (the last given wins) */
};

#define CLI_MAX_OPTIONS 24 /* a command's own plus the global ones */

struct cli_command;

/* A command line parsed against one command's entry; what run() gets. */
struct cli_args {
    const struct cli_command *command;
    const char *name;           /* as typed: "top" runs tui */
    const char *config;         /* -c/--config PATH as given, or NULL */
    int json;                   /* --json given */
    const char *color_mode;     /* --color's value, or NULL */
    int color;                  /* colour on: --color resolved against the terminal and NO_COLOR */
    struct cli_project project; /* found by main for CLI_NEEDS_PROJECT commands */
    int argc;                   /* the operands, in order, options taken out */
    char **argv;
    /* the parser's: the last value given for each option row, and when */
    const char *values[CLI_MAX_OPTIONS];
    unsigned order[CLI_MAX_OPTIONS];
};

struct cli_command {
    const char *name;
    const char *aliases[3];            /* other names it answers to, NULL-terminated */
    const char *usage;                 /* after "devnode NAME " */
    const char *summary;               /* one line for `devnode help` and docs/cli.md's table */
    unsigned flags;                    /* enum cli_command_flags */
    const struct cli_option *options;  /* its own options, ending with {0}; NULL for none */
    int (*run)(struct cli_args *args); /* an exit code, enum cli_exit */
};

/* main.c's command table, in `devnode help`'s order (hidden commands included). */
const struct cli_command *const *cli_command_table(size_t *count);

/* The value last given for an option id (a flag's: its long name), or NULL when not given. */
const char *cli_arg(const struct cli_args *a, int id);

enum { CLI_ARGS_HELP = 1 };
/* Parses argv (argv[0] the command's name) against cmd's options and the global ones, moving
 * the operands to argv[1..] in their order. 0; CLI_ARGS_HELP when -h/--help came first; -1
 * with err set to one line ("unknown option '--x'") for a bad command line. */
int cli_args_parse(const struct cli_command *cmd, int argc, char **argv, struct cli_args *out, char *err,
                   size_t errlen);

/* Prints "usage: devnode NAME USAGE" (and with `full`, the summary, aliases and what the
 * command needs) to out. */
void cli_print_usage(FILE *out, const struct cli_command *cmd, const char *name, int full);

/* Finds the config: `given` (-c), else $LYMPH_CONFIG, else .lymph.yml in the current
 * directory or the nearest parent (a Procfile there when it has no .lymph.yml, read as the
 * .lymph.yml it stands for: docs/procfile.md). Returns 0, or -1 with err set. */
int cli_find_project(const char *given, struct cli_project *out, char *err, size_t errlen);

/* cli_find_project, printing the error: 0, or -1 (the caller exits CLI_USAGE). */
int cli_open_project(const char *given, struct cli_project *out);

/* cli_request with a 5 s timeout that also frees `body`. On failure prints "PREFIX: why"
 * (just "why" when prefix is NULL) and returns -1 (the caller exits CLI_FAILURE). */
int cli_call(const struct cli_project *project, const char *type, struct wire_body *body,
             struct wire_msg *reply, const char *prefix);

/* cli_call of `status`, its reply decoded into *st (views into *reply: free st, then reply).
 * 0; 1 when the reply is not a status reply (both to free still); -1 after printing why the
 * call failed (nothing to free). */
int cli_call_status(const struct cli_project *project, const char *prefix, struct wire_msg *reply,
                    struct proto_status *st);

/* One request to the node of the project; waits up to timeout_ms. On success *reply holds
 * the answer (free with wire_msg_free). An "error" reply, no node, or a timeout return -1
 * with err set to a line for the user. */
int cli_request(const struct cli_project *project, const char *type, const struct wire_body *body,
                int timeout_ms, struct wire_msg *reply, char *err, size_t errlen);

struct config;
/* config_check_ports with `--port-base N` (NULL: the file's port_base). Returns 0, or -1
 * after printing why (the caller exits CLI_USAGE). */
int cli_check_ports(struct config *cfg, const char *file, const char *port_base);

struct cli_args;
struct preflight;
/* The option id of `--no-dotenv`, which cli_load_config reads: out of the letters' range so
 * no command's own option meets it. */
#define CLI_OPT_NO_DOTENV 0x100
/* What `up` and `check` both do before they act: load the config (named as the user wrote
 * it; the .env beside it unless --no-dotenv), apply and check the PORT blocks, and run the
 * preflight checks of this machine.
 * 0 with *cfg and *pf to free, or -1 after printing the one-line error (exit CLI_USAGE). */
int cli_load_config(const struct cli_args *args, const char *vars, const char *port_base, struct config *cfg,
                    struct preflight *pf);

/* The SERVICE operands of `up` and `run` (cli/subset.c): each must name a service of cfg
 * (and with one_shot, one with restart: never or on-failure). CLI_OK, or CLI_USAGE after one
 * line saying why. */
int cli_check_subset(const char *command, const struct config *cfg, char *const *names, size_t count,
                     int one_shot);

/* The -m/--formation option of `up` and `check`; cli_load_config applies it. */
#define CLI_OPTION_FORMATION {"formation", 'm', 1, 'm'}
/* foreman's formation over cfg's numprocesses: "web=2,worker=1" (all=N for the others, else 0).
 * 0, or -1 after printing why (an unknown name lists the known ones; exit CLI_USAGE). */
int cli_apply_formation(struct config *cfg, const char *file, const char *spec);

/* --timeout SECONDS of a waiting command: *ms stays as it was when `text` is NULL. 0, or -1
 * after printing "COMMAND: --timeout takes a number of seconds, not 'X'". */
int cli_timeout_ms(const char *command, const char *text, int *ms);

/* After `start NAME` (up = 1) or `stop NAME` (up = 0): polls status until every instance of
 * the service runs and is ready (or completed), or has no process. CLI_OK, or CLI_FAILURE
 * after one line: an instance failed, a dependency keeps it down, or timeout_ms passed. */
int cli_service_wait(const struct cli_project *project, const char *command, const char *service, int up,
                     int timeout_ms);

/* How long the node has to answer a request at all. */
#define CLI_ANSWER_TIMEOUT_MS PROTO_ANSWER_TIMEOUT_MS

struct devnode;
/* A libdevnode client (named "cli", the source of its emits) of the project's running node,
 * or of no node when project is NULL (calls to a given address). NULL with err set. */
struct devnode *cli_devnode_open(const struct cli_project *project, char *err, size_t errlen);
/* cli/backends.c: sets DEVNODE_REGISTRY and DEVNODE_IP from the project's backends: key (over
 * the shell's), as the node hands them to its workers. NULL project: nothing. 0, or -1 with err. */
int cli_backends_apply(const struct cli_project *project, char *err, size_t errlen);
/* devnode_last_error as the CLI shows it: a refusal is the node's own message, which names
 * the request already ("subscribe: 'a..b' is not a valid pattern"). */
const char *cli_devnode_error(const struct devnode *dn);

enum cli_wait {
    CLI_WAIT_DONE,        /* *reply holds the `ok` that ended it */
    CLI_WAIT_REFUSED,     /* no node, or it refused the request: nothing started */
    CLI_WAIT_FAILED,      /* it started and failed: err holds the node's line */
    CLI_WAIT_TIMEOUT,     /* no outcome in time, or the node exited meanwhile */
    CLI_WAIT_INTERRUPTED, /* Ctrl-C (or TERM) while waiting; the node goes on */
};

/* A request the node answers `started` at once and `ok` or `error` once it is over (restart
 * and scale with `wait: true`, protocol.md). Waits CLI_ANSWER_TIMEOUT_MS for `started`, then
 * timeout_ms (<= 0: the node's timeout_ms plus CLI_ANSWER_TIMEOUT_MS) for the outcome, while
 * watching for Ctrl-C and the node's exit. Anything but DONE leaves a line in err. */
enum cli_wait cli_request_wait(const struct cli_project *project, const char *type, const struct wire_body *body,
                               int timeout_ms, struct wire_msg *reply, char *err, size_t errlen);

/* What a name given to a command may be, besides a service's name (cli_check_names). */
enum {
    CLI_NAMES_INSTANCES = 1, /* "Service.N": instance N, which must exist */
    CLI_NAMES_NODE = 2,      /* "devnode": the node's own lines */
    CLI_NAMES_REGISTRY = 4,  /* the names are of the registry ("no service 'X' in the registry") */
};

/* The services a name may be checked against, from whatever source knows them (the status
 * reply, the registry's discover reply, the config): no command reads those replies for it. */
struct cli_name {
    char *name;
    int64_t desired;       /* instances the service should have; -1: unknown (config only) */
    int64_t *indexes;      /* the instances present */
    size_t index_count;
};
struct cli_names {
    struct cli_name *items;
    size_t count;
};
/* Appends a copy of name[0..len) and of the indexes. */
void cli_names_add(struct cli_names *list, const char *name, size_t len, int64_t desired, const int64_t *indexes,
                   size_t index_count);
void cli_names_free(struct cli_names *list);

/* Checks names against services. 0, or -1 after printing "devnode: COMMAND: no service 'X'
 * (known: A, B)" or "devnode: COMMAND: Web has no instance 7 (known: Web.0, Web.1)". */
int cli_check_names(const char *command, const struct cli_names *services, char *const *names, size_t count,
                    unsigned flags);
/* cli_check_names against the running node's services (a `status` request): CLI_OK,
 * CLI_USAGE for an unknown name, or CLI_FAILURE when the node cannot be asked (all printed). */
int cli_check_targets(const struct cli_project *project, const char *command, char *const *names, size_t count,
                      unsigned flags);

/* Prints "devnode: MESSAGE" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --color=auto|always|never (NULL means auto: colour on a terminal unless NO_COLOR is set or
 * TERM is dumb). Returns 0 with *on set, or -1 for an unknown mode. */
int cli_color_mode(const char *mode, int *on);

#endif
