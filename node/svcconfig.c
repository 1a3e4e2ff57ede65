/* svcconfig: services added, removed and re-configured on a running supervisor (reload).
 * Everything that needs an instance's lifecycle goes through supervisor_scale, so the
 * supervisor's own paths start and stop processes; this file only sets up service structs.
 * It frees a struct service only once it is removed and nothing points to it (no instance,
 * no change), and only while arranging, which moves every pointer to a service anyway. */
#include "node/svcconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "node/startorder.h"

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
    /* The next arm of each instance's readiness and liveness checks reads the new ones: */
    for (size_t i = 0; i < svc->instance_cap; i++)
        if (svc->instances[i])
        {
            svc->instances[i]->check.cfg = &cfg->ready;
            svc->instances[i]->live.cfg = &cfg->live;
        }
    return 0;
}

/* One more slot in sup->services. The array moves, so every pointer to a service (its
 * instances', the changes') is moved with it while the old array is still there. `from[s]`
 * is the index in the old array of the service that goes to slot s (SIZE_MAX: none). */
static void services_move(struct supervisor *sup, size_t count, const size_t *from)
{
    struct service *moved = xcalloc(count ? count : 1, sizeof *moved);
    for (size_t s = 0; s < count; s++) {
        if (from[s] == SIZE_MAX)
            continue;
        moved[s] = sup->services[from[s]];
        for (size_t i = 0; i < moved[s].instance_cap; i++)
            if (moved[s].instances[i])
                moved[s].instances[i]->service = &moved[s];
        change_service_moved(sup, &sup->services[from[s]], &moved[s]);
    }
    free(sup->services);
    sup->services = moved;
    sup->service_count = count;
}

static struct service *services_grow(struct supervisor *sup)
{
    size_t count = sup->service_count;
    size_t *from = xcalloc(count + 1, sizeof *from);
    for (size_t s = 0; s < count; s++)
        from[s] = s;
    from[count] = SIZE_MAX;
    services_move(sup, count + 1, from);
    free(from);
    return &sup->services[count];
}

/* A removed service nothing points to any more: no instance left (each one's handles are
 * closed without it), no change waiting on it. */
static int service_done(const struct supervisor *sup, const struct service *svc)
{
    return svc->removed && svc->instance_cap == 0 && !change_waits_on(sup, svc);
}

static void service_free(struct service *svc)
{
    free(svc->instances);
    free(svc->command);
    if (svc->has_ready_re)
        regfree(&svc->ready_re);
    config_service_free(svc->own_cfg);
    free(svc->own_cfg);
}

void svcconfig_arrange(struct supervisor *sup, const struct config *cfg, int want_new)
{
    size_t count = sup->service_count, placed = 0;
    size_t *from = xcalloc(count ? count : 1, sizeof *from);
    char *taken = xcalloc(count ? count : 1, 1);
    for (size_t c = 0; c < cfg->service_count; c++) {
        struct service *svc = supervisor_find_service(sup, cfg->services[c].name);
        if (!svc)
            continue; /* it could not be added: the reload said so */
        from[placed++] = (size_t)(svc - sup->services);
        taken[svc - sup->services] = 1;
    }
    /* Removed services still stopping go last; those that are done are freed here, so
     * renames and removals do not pile up over many reloads. */
    for (size_t s = 0; s < count; s++) {
        if (taken[s])
            continue;
        if (service_done(sup, &sup->services[s]))
            service_free(&sup->services[s]);
        else
            from[placed++] = s;
    }
    /* The start order's entries are by the old index: what each slot was before. */
    size_t *old_index = xcalloc(placed ? placed : 1, sizeof *old_index);
    for (size_t s = 0; s < placed; s++)
        old_index[s] = from[s] < sup->order.count ? from[s] : SIZE_MAX;
    services_move(sup, placed, from);
    startorder_rearranged(sup, old_index, want_new);
    free(old_index);
    free(taken);
    free(from);
}

struct service *svcconfig_add(struct supervisor *sup, const struct config_service *cfg, char *err, size_t errlen)
{
    struct service probe = {0};
    if (service_configure(sup, &probe, cfg, err, errlen) < 0)
        return NULL;
    struct service *svc = services_grow(sup);
    *svc = probe;
    svc->desired = cfg->numprocesses;
    char warning[1024];
    if (sockets_listen_pid_warning(sup->cfg, cfg, warning, sizeof warning))
        loghub_node_line(sup->hub, getpid(), LOG_LEVEL_WARNING, "%s", warning);
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
    if (service_configure(sup, svc, cfg, err, errlen) < 0)
        return -1;
    if (svc->own_cfg && svc->own_cfg != cfg) { /* nothing points to it any more */
        config_service_free(svc->own_cfg);
        free(svc->own_cfg);
        svc->own_cfg = NULL;
    }
    return 0;
}

void svcconfig_release(struct supervisor *sup, struct config *old)
{
    for (size_t s = 0; s < sup->service_count; s++) {
        struct service *svc = &sup->services[s];
        struct config_service *slot = NULL;
        for (size_t k = 0; k < old->service_count && !slot; k++)
            if (svc->cfg == &old->services[k])
                slot = &old->services[k];
        if (!slot)
            continue;
        /* Moved, not copied: what the old config held is the service's now, and config_free
         * finds an empty slot. */
        struct config_service *own = xmalloc(sizeof *own);
        *own = *slot;
        memset(slot, 0, sizeof *slot);
        svc->own_cfg = own;
        svc->cfg = own;
        for (size_t i = 0; i < svc->instance_cap; i++) {
            if (!svc->instances[i])
                continue;
            svc->instances[i]->check.cfg = &own->ready;
            svc->instances[i]->live.cfg = &own->live;
        }
    }
}
