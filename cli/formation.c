/* formation: foreman's `-m web=2,worker=1` for `up` and `check`: how many instances each
 * service starts with, over numprocesses, before the PORT blocks are checked. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/procfile.h"

int cli_apply_formation(struct config *cfg, const char *file, const char *spec)
{
    struct procfile_formation f;
    char err[512];
    if (procfile_formation_parse(spec, &f, err, sizeof err) < 0) {
        cli_error("-m: %s", err);
        return -1;
    }
    for (size_t i = 0; i < f.count; i++) {
        if (config_find_service(cfg, f.names[i]))
            continue;
        char known[512] = "";
        size_t used = 0;
        for (size_t s = 0; s < cfg->service_count && used < sizeof known; s++)
            used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", s ? ", " : "", cfg->services[s].name);
        cli_error("-m: %s has no service '%s' (known: %s)", file, f.names[i], known);
        procfile_formation_free(&f);
        return -1;
    }
    for (size_t s = 0; s < cfg->service_count; s++)
        cfg->services[s].numprocesses = procfile_formation_count(&f, cfg->services[s].name);
    procfile_formation_free(&f);
    return 0;
}
