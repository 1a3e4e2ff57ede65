/* cmd_complete: `devnode __complete -- CWORD WORD...`, what the shell scripts of
 * `devnode completion` call on each Tab: prints the candidates for WORD[CWORD], one a line.
 * Everything it knows comes from the command table (names, aliases, options, and the
 * operands each usage line names: SERVICE, SERVICE[.N], a|b|c) and from the project: its running
 * node's status when one answers within COMPLETE_NODE_TIMEOUT_MS (the instances a `scale` made),
 * else its config read at that moment. No candidate means "complete file names".
 * It never prints an error: a shell is waiting on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"

struct completion {
    const char *prefix;  /* what the current word holds so far */
    const char *lead;    /* printed before each candidate ("--color=" for zsh and fish), or "" */
    const char *config;  /* -c/--config given on the line, or NULL */
};

static void offer(const struct completion *c, const char *candidate, size_t len)
{
    size_t plen = strlen(c->prefix);
    if (len >= plen && strncmp(candidate, c->prefix, plen) == 0)
        printf("%s%.*s\n", c->lead, (int)len, candidate);
}

/* "a|b|c" or "a" (lower-case words, digits, '-': keywords) as candidates; 0 when text is not
 * such a list (SERVICE, PATH: a placeholder). */
static int offer_alternatives(const struct completion *c, const char *text, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= '0' && text[i] <= '9') || text[i] == '-' ||
              text[i] == '|'))
            return 0;
    for (size_t start = 0; start < len;) {
        const char *bar = memchr(text + start, '|', len - start);
        size_t end = bar ? (size_t)(bar - text) : len;
        offer(c, text + start, end - start);
        start = end + 1;
    }
    return 1;
}

/* ---- what the command table says ---- */

static const struct cli_option global_options[] = {
    {"config", 'c', 1, 0},
    {"help", 'h', 0, 0},
};

static const struct cli_command *find_command(const char *name)
{
    size_t count;
    const struct cli_command *const *table = cli_command_table(&count);
    for (size_t i = 0; i < count; i++) {
        if (!strcmp(table[i]->name, name))
            return table[i];
        for (const char *const *alias = table[i]->aliases; *alias; alias++)
            if (!strcmp(*alias, name))
                return table[i];
    }
    return NULL;
}

/* The option a word names (-c, --config, --conf=x, -cFILE), NULL for none. A cmd of NULL
 * means before the command: the global ones only. */
static const struct cli_option *find_option(const struct cli_command *cmd, const char *word)
{
    static const struct cli_option json = {"json", 0, 0, 0}, color = {"color", 0, 1, 0};
    const struct cli_option *extra[] = {
        !cmd || (cmd->flags & CLI_JSON) ? &json : NULL,
        !cmd || (cmd->flags & CLI_COLOR) ? &color : NULL,
    };
    if (word[0] != '-' || word[1] == '\0')
        return NULL;
    for (size_t pass = 0; pass < 3; pass++) {
        const struct cli_option *list = pass == 0 ? (cmd ? cmd->options : NULL) : pass == 1 ? global_options : NULL;
        size_t n = pass == 0 ? 0 : pass == 1 ? 2 : 2;
        if (pass == 0)
            while (list && (list[n].name || list[n].letter))
                n++;
        for (size_t i = 0; i < n; i++) {
            const struct cli_option *o = pass == 2 ? extra[i] : &list[i];
            if (!o)
                continue;
            if (word[1] == '-') {
                size_t len = strcspn(word + 2, "=");
                if (o->name && strlen(o->name) == len && !strncmp(o->name, word + 2, len))
                    return o;
            } else if (o->letter && word[1] == o->letter) {
                return o;
            }
        }
    }
    return NULL;
}

/* Whether `word` is an option that takes the next word as its value (-c PATH, not -cPATH). */
static int takes_next(const struct cli_command *cmd, const char *word)
{
    const struct cli_option *o = find_option(cmd, word);
    if (!o || !o->has_value)
        return 0;
    return word[1] == '-' ? !strchr(word, '=') : word[2] == '\0';
}

/* Offers the values of `--NAME` that its usage line lists ("--color=auto|always|never"). */
static void offer_option_values(const struct completion *c, const struct cli_command *cmd, const char *name)
{
    char pattern[64];
    const char *usage = cmd ? cmd->usage : "--color=auto|always|never";
    for (int sep = 0; sep < 2; sep++) {
        snprintf(pattern, sizeof pattern, "--%s%c", name, sep ? ' ' : '=');
        const char *at = strstr(usage, pattern);
        if (at) {
            const char *v = at + strlen(pattern);
            offer_alternatives(c, v, strcspn(v, " ]"));
            return;
        }
    }
}

/* ---- the project's services ---- */

/* How long a Tab waits for the running node (a stopped or busy one) before the config answers. */
#define COMPLETE_NODE_TIMEOUT_MS 300

static void offer_instance(const struct completion *c, const char *service, size_t len, long long index)
{
    char name[256];
    int n = snprintf(name, sizeof name, "%.*s.%lld", (int)len, service, index);
    if (n > 0 && (size_t)n < sizeof name)
        offer(c, name, (size_t)n);
}

/* The running node's services and the instances it has now. 0 when it answered; -1 when no
 * node runs or it did not answer in time (the config answers then). */
static int offer_node_services(const struct completion *c, const struct cli_project *project, int instances)
{
    struct wire_body body;
    wire_body_init(&body);
    proto_pack_request_id(&body.pk, 1);
    struct wire_msg reply;
    char err[512];
    int rc = cli_request(project, PROTO_STATUS, &body, COMPLETE_NODE_TIMEOUT_MS, &reply, err, sizeof err);
    wire_body_free(&body);
    if (rc < 0)
        return -1;
    struct proto_status st;
    rc = proto_unpack_status(reply.body, &st);
    for (size_t i = 0; rc == 0 && i < st.service_count; i++) {
        const struct proto_status_service_view *svc = &st.services[i];
        if (!svc->name.ptr)
            continue;
        offer(c, svc->name.ptr, svc->name.len);
        for (size_t k = 0; instances && k < svc->instance_count; k++)
            offer_instance(c, svc->name.ptr, svc->name.len, (long long)svc->instances[k].index);
    }
    proto_status_free(&st);
    wire_msg_free(&reply);
    return rc == 0 ? 0 : -1;
}

static void offer_services(const struct completion *c, int instances)
{
    struct cli_project project;
    struct config cfg;
    char err[1024];
    if (cli_find_project(c->config, &project, err, sizeof err) < 0)
        return;
    if (offer_node_services(c, &project, instances) == 0)
        return;
    if (config_load_unresolved(c->config ? c->config : project.config_path, &cfg, err, sizeof err) < 0)
        return;
    for (size_t i = 0; i < cfg.service_count; i++) {
        const struct config_service *s = &cfg.services[i];
        offer(c, s->name, strlen(s->name));
        for (int n = 0; instances && n < s->numprocesses; n++)
            offer_instance(c, s->name, strlen(s->name), n);
    }
    config_free(&cfg);
}

/* The operand at `index` of the usage line: SERVICE, SERVICE[.N], a|b|c, or something
 * else (files). A last operand written with "..." repeats. */
static void offer_operand(const struct completion *c, const struct cli_command *cmd, int index)
{
    struct {
        const char *text;
        size_t len;
    } ops[16];
    int count = 0, repeats = 0;
    for (const char *u = cmd->usage; *u && count < 16;) {
        while (*u == ' ')
            u++;
        const char *tok = u;
        int depth = 0;
        while (*u && (depth > 0 || *u != ' ')) {
            depth += *u == '[' ? 1 : *u == ']' ? -1 : 0;
            u++;
        }
        size_t len = (size_t)(u - tok);
        if (len == 0 || tok[0] == '-' || (tok[0] == '[' && len > 1 && tok[1] == '-'))
            continue; /* options, and what follows `--` in __complete's own usage */
        if (len == 3 && !strncmp(tok, "...", 3)) {
            repeats = 1;
            continue;
        }
        if (tok[0] == '[' && tok[len - 1] == ']') {
            tok++;
            len -= 2;
        }
        repeats = len >= 3 && !strncmp(tok + len - 3, "...", 3);
        ops[count].text = tok;
        ops[count++].len = len;
    }
    if (count == 0 || (index >= count && !repeats))
        return;
    char text[128];
    int i = index < count ? index : count - 1;
    snprintf(text, sizeof text, "%.*s", (int)ops[i].len, ops[i].text);
    if (strstr(text, "SERVICE"))
        offer_services(c, strstr(text, ".N") != NULL);
    else
        offer_alternatives(c, text, strcspn(text, " ["));
}

static void offer_commands(const struct completion *c)
{
    size_t count;
    const struct cli_command *const *table = cli_command_table(&count);
    for (size_t i = 0; i < count; i++) {
        if (table[i]->flags & CLI_HIDDEN)
            continue;
        offer(c, table[i]->name, strlen(table[i]->name));
        for (const char *const *alias = table[i]->aliases; *alias; alias++)
            offer(c, *alias, strlen(*alias));
    }
    offer(c, "help", 4);
    offer(c, "version", 7);
}

static void offer_long_options(const struct completion *c, const struct cli_command *cmd)
{
    char name[64];
    for (size_t i = 0; cmd && cmd->options && (cmd->options[i].name || cmd->options[i].letter); i++) {
        if (!cmd->options[i].name)
            continue;
        int len = snprintf(name, sizeof name, "--%s", cmd->options[i].name);
        offer(c, name, (size_t)len);
    }
    offer(c, "--config", 8);
    offer(c, "--help", 6);
    if (!cmd || (cmd->flags & CLI_JSON))
        offer(c, "--json", 6);
    if (!cmd || (cmd->flags & CLI_COLOR))
        offer(c, "--color=", 8);
    if (!cmd)
        offer(c, "--version", 9);
}

static void complete(char **words, int nwords, int cword)
{
    const char *cur = cword < nwords ? words[cword] : "";
    struct completion c = {.prefix = cur, .lead = ""};
    const struct cli_command *cmd = NULL;
    int is_help = 0, operand = 0, command_at = -1;
    /* Walk the words before the current one: global options, the command, its operands. */
    for (int i = 1; i < cword && i < nwords; i++) {
        const char *w = words[i];
        if (!strcmp(w, "=") || (i > 1 && !strcmp(words[i - 1], "=")))
            continue; /* bash splits --color=x into three words */
        const struct cli_option *o = find_option(cmd, w);
        if (o) {
            const char *value = NULL;
            if (takes_next(cmd, w) && i + 1 < cword)
                value = words[++i];
            else if (o->has_value && w[1] == '-' && strchr(w, '='))
                value = strchr(w, '=') + 1;
            else if (o->has_value && w[1] != '-')
                value = w + 2;
            if (o->letter == 'c' && o == &global_options[0])
                c.config = value;
            continue;
        }
        if (command_at < 0) {
            command_at = i;
            is_help = !strcmp(w, "help");
            cmd = is_help ? NULL : find_command(w);
            if (!cmd && !is_help)
                return;
        } else {
            operand++;
        }
    }
    /* The value of an option: `-c <TAB>`, `--color=<TAB>` (zsh, fish), `--color = <TAB>` (bash). */
    const char *option_word = NULL;
    if (!strcmp(cur, "=") && cword >= 2) {
        option_word = words[cword - 1];
        c.prefix = "";
    } else if (cword >= 3 && !strcmp(words[cword - 1], "=")) {
        option_word = words[cword - 2];
    } else if (!strncmp(cur, "--", 2) && strchr(cur, '=')) {
        option_word = cur;
        c.prefix = strchr(cur, '=') + 1;
        static char lead[64];
        snprintf(lead, sizeof lead, "%.*s", (int)(c.prefix - cur), cur);
        c.lead = lead;
    } else if (cword >= 2 && takes_next(cmd, words[cword - 1])) {
        option_word = words[cword - 1];
    }
    if (option_word) {
        const struct cli_option *o = find_option(cmd, option_word);
        if (o && o->name)
            offer_option_values(&c, cmd, o->name);
        return;
    }
    if (cur[0] == '-') {
        offer_long_options(&c, cmd);
        return;
    }
    if (command_at < 0)
        offer_commands(&c);
    else if (is_help)
        operand == 0 ? offer_commands(&c) : (void)0;
    else
        offer_operand(&c, cmd, operand);
}

static int cmd_complete(struct cli_args *args)
{
    if (args->argc < 2)
        return CLI_USAGE;
    char *end;
    long cword = strtol(args->argv[0], &end, 10);
    if (*end || cword < 0 || cword > 10000)
        return CLI_USAGE;
    complete(args->argv + 1, args->argc - 1, (int)cword);
    return fflush(stdout) == 0 ? CLI_OK : CLI_FAILURE;
}

const struct cli_command cmd_complete_entry = {
    .name = "__complete",
    .usage = "-- CWORD WORD...",
    .summary = "the candidates for WORD[CWORD], for the scripts of `devnode completion`",
    .flags = CLI_HIDDEN,
    .run = cmd_complete,
};
