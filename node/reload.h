/* reload: `devnode reload` and SIGHUP. Reads .lymph.yml and the env files again the way `up`
 * did (the node's own environment, the same --vars, --no-dotenv, --port-base and -m), runs
 * the checks of `devnode check`, and applies the difference (config/configdiff.h) to the
 * running node. A config that fails changes nothing. */
#ifndef DEVNODE_RELOAD_H
#define DEVNODE_RELOAD_H

#include <stddef.h>

struct node;

/* What a reload did, one line each ("Web: rolled (command changed)", "2 services unchanged"). */
struct reload_report {
    char **lines;
    size_t count;
};

/* `asked_by` names who asked in the log ("devnode reload", "SIGHUP"). Returns 0 with the
 * report filled (and logged), or -1 with err holding the one-line reason (the config's
 * "FILE:LINE:COL: KEY: ..." error, or what cannot change live), also logged; then nothing
 * changed. Free the report either way. */
int node_reload(struct node *node, const char *asked_by, struct reload_report *out, char *err, size_t errlen);
void reload_report_free(struct reload_report *r);

#endif
