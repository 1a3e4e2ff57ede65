/* backends: the CLI follows the back ends the project's workers use (docs/backends.md): the
 * backends: key of .lymph.yml, over the shell's DEVNODE_REGISTRY / DEVNODE_IP, exactly as the
 * node hands them on, so `request`, `discover` and the other clients look where the services
 * register. It sets this process's environment (libdevnode reads it at open); nothing else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"

int cli_backends_apply(const struct cli_project *project, char *err, size_t errlen)
{
    if (!project)
        return 0;
    struct config cfg;
    char why[1024];
    /* The node resolved $(env.X) from its own environment; where ours lacks one, the value as
     * written is still good unless it is one of the keys we need. */
    if (config_load(project->config_path, NULL, &cfg, why, sizeof why) < 0 &&
        config_load_unresolved(project->config_path, &cfg, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    const struct {
        const char *key, *var, *value;
    } keys[] = {
        {"backends.registry", "DEVNODE_REGISTRY", cfg.backends.registry},
        {"backends.ip", "DEVNODE_IP", cfg.backends.ip},
        {"backends.events", "DEVNODE_EVENTS", cfg.backends.events},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && rc == 0; i++) {
        if (!keys[i].value)
            continue;
        if (strstr(keys[i].value, "$(")) {
            snprintf(err, errlen, "%s: %s is '%s', which this shell does not define", project->config_path,
                     keys[i].key, keys[i].value);
            rc = -1;
        } else {
            setenv(keys[i].var, keys[i].value, 1);
        }
    }
    config_free(&cfg);
    return rc;
}
