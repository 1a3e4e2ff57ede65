/* svcconfig: services added, removed and re-configured on a running supervisor (reload).
 * Everything that needs an instance's lifecycle goes through supervisor_scale, so the
 * supervisor's own paths start and stop processes; this file only sets up service structs.
 * It must never free a struct service: instances and changes point to them. */
#include "node/svcconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"

/* Everything derived from cfg, all-or-nothing: on failure svc is as it was. */
static int service_configure(struct supervisor *sup, struct service *svc, const struct config_service *cfg,
                             char *err, size_t errlen)
{
    const struct bound_socket *sockets[SERVICE_MAX_SOCKETS];
    int n = sockets_for_service(sup->sockets, cfg, sockets, SERVICE_MAX_SOCKETS, err, errlen);
    if (n < 0)
        return -1;
    if (cfg->ready.kind == READY_NOTIFY && supervisor_open_notify(sup, err, errlen) < 0)
        return -1;
    regex_t re;
    int has_re = ready_pattern_compile(&re, &cfg->ready) == 0;
    if (svc->has_ready_re)
        regfree(&svc->ready_re);
    svc->ready_re = re;
    svc->has_ready_re = has_re;
    memcpy(svc->sockets, sockets, (size_t)n * sizeof *sockets);
    svc->socket_count = (size_t)n;
    free(svc->command);
    svc->command = sockets_expand_command(cfg->command, svc->sockets, svc->socket_count);
    svc->cfg = cfg;
    /* The next arm of each instance's readiness check reads the new ready: */
    for (size_t i = 0; i < svc->instance_cap; i++)
        if (svc->instances[i])
            svc->instances[i]->check.cfg = &cfg->ready;
    return 0;
}

/* One more slot in sup->services. The array moves, so every pointer to a service (its
 * instances', the changes') is moved with it while the old array is still there. */
static struct service *services_grow(struct supervisor *sup)
{
    size_t count = sup->service_count;
    struct service *grown = xcalloc(count + 1, sizeof *grown);
    memcpy(grown, sup->services, count * sizeof *grown);
    for (size_t s = 0; s < count; s++) {
        for (size_t i = 0; i < grown[s].instance_cap; i++)
            if (grown[s].instances[i])
                grown[s].instances[i]->service = &grown[s];
        change_service_moved(sup, &sup->services[s], &grown[s]);
    }
    free(sup->services);
    sup->services = grown;
    sup->service_count = count + 1;
    return &grown[count];
}

struct service *svcconfig_add(struct supervisor *sup, const struct config_service *cfg, char *err, size_t errlen)
{
    struct service probe = {0};
    if (service_configure(sup, &probe, cfg, err, errlen) < 0)
        return NULL;
    struct service *svc = services_grow(sup);
    *svc = probe;
    char warning[1024];
    if (sockets_listen_pid_warning(sup->cfg, cfg, warning, sizeof warning))
        loghub_node_line(sup->hub, getpid(), LOG_LEVEL_WARNING, "%s", warning);
    if (cfg->numprocesses > 0 && supervisor_scale(sup, cfg->name, cfg->numprocesses, NULL, err, errlen) < 0)
        return NULL; /* only while the node stops: it is there, and stops with the rest */
    return svc;
}

int svcconfig_remove(struct supervisor *sup, const char *name)
{
    struct service *svc = supervisor_find_service(sup, name);
    if (!svc)
        return -1;
    char err[256];
    if (svc->desired > 0)
        supervisor_scale(sup, name, 0, NULL, err, sizeof err);
    svc->rolling = 0;
    svc->removed = 1;
    svc->socket_count = 0; /* a reload may close them: nothing of it may point there */
    return 0;
}

int svcconfig_set(struct supervisor *sup, struct service *svc, const struct config_service *cfg, char *err,
                  size_t errlen)
{
    return service_configure(sup, svc, cfg, err, errlen);
}
