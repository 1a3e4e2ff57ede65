/* attach: the node's side of `devnode attach` (docs/protocol.md, "Attach"): the attach,
 * attach_input, attach_resize and detach requests on the control socket, and the one session
 * per worker terminal (node/term.h) that gets the worker's output as attach_output. Sessions
 * never block the node: output goes out with ZMQ_DONTWAIT and a full attacher loses output
 * (the log keeps it), a vanished one ends its session. */
#ifndef DEVNODE_ATTACH_H
#define DEVNODE_ATTACH_H

#include <stddef.h>
#include <sys/types.h>

#include "node/control.h"

struct supervisor;
struct attach_session;

struct attach_server {
    struct control *ctl;
    struct supervisor *sup;
    struct attach_session *sessions; /* every open session, a list through next/prev */
};

/* Registers the requests. The sessions are owned by their terms and end with them. */
void attach_server_init(struct attach_server *srv, struct control *ctl, struct supervisor *sup);

/* From term.c: a copy of the worker's output for the attacher. */
void attach_session_output(struct attach_session *s, const char *data, size_t len);
/* From term.c: the process `pid` of instance `name` ("Web.1") is gone ("exited with status 1");
 * the attacher is told and the session freed. */
void attach_session_end_exited(struct attach_session *s, const char *name, pid_t pid, const char *how);

#endif
