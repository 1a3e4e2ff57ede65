/* subset: the SERVICE names of `up` and `run`, checked against the loaded config before the
 * node starts, so a typo is one usage line naming the services there are, and nothing runs. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config/depends.h"

static void list_services(const struct config *cfg, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < cfg->service_count && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? ", " : "", cfg->services[i].name);
}

int cli_check_subset(const char *command, const struct config *cfg, char *const *names, size_t count,
                     int one_shot)
{
    for (size_t i = 0; i < count; i++) {
        long s = config_service_index(cfg, names[i]);
        if (s < 0) {
            char known[1024];
            list_services(cfg, known, sizeof known);
            cli_error("%s: no service '%s' (known: %s)", command, names[i], known);
            return CLI_USAGE;
        }
        if (one_shot && cfg->services[s].restart == RESTART_ALWAYS) {
            cli_error("%s: %s restarts always (the default), so it never completes: name one-shot services "
                      "(restart: never or on-failure)", command, names[i]);
            return CLI_USAGE;
        }
    }
    return CLI_OK;
}
