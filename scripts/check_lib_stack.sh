#!/bin/sh
# check_lib_stack: inside lib/, the files form a stack, each calling only the layers below it:
#
#   loop.c                        start, the loop, stop, close (top)
#   client.h  <- client.c         calls (a waiting call serves requests, so it sits on server.h)
#   server.h  <- server.c         serving RPC, registering     events.h <- events.c
#   remote.h  <- remote.c         the remote registry (ZooKeeper) under register and discover
#   conn.h    <- conn.c           the connection to the node (bottom)
#   internal.h <- logging.c, backends.c   the state and the helpers every layer uses
#   zkregistry.h <- zkregistry.c  the ZooKeeper registry in lymph's layout, used by remote.c only
#   amqpevents.h <- amqpevents.c  RabbitMQ events, standalone, under events.h (issue 19)
#
# Each header includes only the one(s) below it and each .c file only its own header, so a
# call up or sideways has no declaration and fails the -Werror build. This checks those
# includes and names every one that breaks the stack. `make layers` runs it.
# Usage: scripts/check_lib_stack.sh [ROOT]
set -eu

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root/lib"

# file: the lib/ headers it may include
rules='
devnode.h:
internal.h: lib/devnode.h
logging.c:  lib/internal.h
backends.c: lib/internal.h
conn.h:     lib/internal.h
conn.c:     lib/conn.h
remote.h:   lib/conn.h lib/zkregistry.h
remote.c:   lib/remote.h
server.h:   lib/remote.h
server.c:   lib/server.h
events.h:   lib/conn.h lib/amqpevents.h
events.c:   lib/events.h
client.h:   lib/server.h
client.c:   lib/client.h
loop.c:     lib/client.h lib/events.h
zkregistry.h:
zkregistry.c: lib/zkregistry.h
amqpevents.h:
amqpevents.c: lib/amqpevents.h
'

status=0
for file in *.c *.h; do
    allowed=$(printf '%s\n' "$rules" | sed -n "s|^$file:[[:space:]]*||p")
    if ! printf '%s\n' "$rules" | grep -q "^$file:"; then
        echo "check_lib_stack: lib/$file has no row in scripts/check_lib_stack.sh: give it its layer"
        status=1
        continue
    fi
    # every lib/ include (quoted, with or without the folder) of the file
    for inc in $(sed -n 's/^[ \t]*#[ \t]*include[ \t]*"\(lib\/\)\{0,1\}\([a-z_]*\.h\)".*/lib\/\2/p' "$file"); do
        ok=0
        for a in $allowed; do
            [ "$inc" = "$a" ] && ok=1
        done
        if [ $ok = 0 ]; then
            echo "check_lib_stack: lib/$file includes $inc, but may include only: ${allowed:-nothing of lib/}"
            status=1
        fi
    done
done
[ $status = 0 ] && echo "lib stack: ok"
exit $status
