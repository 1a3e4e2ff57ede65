/* configwatch: `up --watch-config`: tells the node when .lymph.yml or one of its env files
 * (.env, env_file:) is written, debounced, so it reloads. It watches the folders holding
 * them (editors replace a file by renaming another over it) and only reports; the reload
 * is node/reload.c's. */
#ifndef DEVNODE_CONFIGWATCH_H
#define DEVNODE_CONFIGWATCH_H

#include <uv.h>

#include "config/config.h"

#define CONFIGWATCH_DEBOUNCE_MS 200

struct configwatch;

/* Watches cfg's files (with_dotenv: also the .env beside it, even before it exists).
 * on_change(ctx, path) comes once per burst of writes, CONFIGWATCH_DEBOUNCE_MS after the
 * last, naming one of the changed files; it may close the watch. A folder that cannot be
 * watched is skipped. */
struct configwatch *configwatch_start(uv_loop_t *loop, const struct config *cfg, int with_dotenv,
                                      void (*on_change)(void *ctx, const char *path), void *ctx);
/* Stops it; memory goes once the loop ran the close callbacks. NULL is fine. */
void configwatch_close(struct configwatch *cw);

#endif
