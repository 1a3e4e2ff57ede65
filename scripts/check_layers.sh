#!/bin/sh
# check_layers: the folders of the tree depend one way. Every `#include "dir/..."` of a C file
# in a layered folder must name a folder that folder may use; `make layers` (the first step of
# `make test`) runs this and fails with one line per forbidden include.
#
#   common  <-  proto  <-  config  <-  sockets  <-  node
#                                          <-  export  (systemd units from the config)
#                      <-  tail    <-  tui
#                      <-  lib
#   cli on top: it composes the node, the dashboard and the clients; nothing includes cli/.
#
# Usage: scripts/check_layers.sh [ROOT]   (ROOT defaults to the repository this script is in)
set -eu

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# folder: the folders its files may include from (itself included). A folder not listed here
# is not checked; an include of a folder not listed for the includer is forbidden, so a new
# folder needs its row here first.
rules='
common:  common
proto:   common proto
config:  common proto config
sockets: common proto config sockets
node:    common proto config sockets node
export:  common proto config sockets export
lib:     common proto lib
tail:    common proto tail
tui:     common proto tail tui
cli:     common proto config sockets node lib tail tui export cli
'

# Headers a folder may not include although their folder is allowed:
#   FOLDER  HEADER
deny='
lib    common/xalloc.h
proto  common/xalloc.h
'
# xalloc aborts on out-of-memory; libdevnode (and proto/, which it links) returns errors.

# Known violations that moves under way remove (issue 16); delete an entry once its move has
# landed (the check says when an entry no longer matches anything).
#   FILE-GLOB  INCLUDE-GLOB
allow='
'

status=0
used=''
tab=$(printf '\t')
for dir in $(printf '%s\n' "$rules" | sed -n 's/^\([a-z]*\):.*/\1/p'); do
    [ -d "$dir" ] || continue
    allowed=$(printf '%s\n' "$rules" | sed -n "s/^$dir:[[:space:]]*//p")
    allowed_list=$(printf '%s/, ' $allowed)
    allowed_list=${allowed_list%, }
    found=$(find "$dir" -type f \( -name '*.c' -o -name '*.h' \) | sort)
    [ -n "$found" ] || continue
    # file<TAB>line<TAB>included path, for every quoted include naming a folder.
    incs=$(printf '%s\n' "$found" | xargs awk '
        match($0, /^[ \t]*#[ \t]*include[ \t]*"[^"]+"/) {
            s = substr($0, RSTART, RLENGTH); sub(/^[^"]*"/, "", s); sub(/"$/, "", s)
            print FILENAME "\t" FNR "\t" s
        }')
    [ -n "$incs" ] || continue
    while IFS="$tab" read -r file line inc; do
        case $inc in
        ./* | ../*) # relative: resolve it against the including file's folder
            inc=$(realpath -m --relative-to=. "$(dirname "$file")/$inc") ;;
        */*) ;;
        *) continue ;; # a header beside the file
        esac
        top=${inc%%/*}
        ok=0
        for a in $allowed; do
            [ "$top" = "$a" ] && ok=1 && break
        done
        denied=$(printf '%s\n' "$deny" | awk -v d="$dir" -v h="$inc" '$1 == d && $2 == h')
        if [ -n "$denied" ]; then
            echo "check_layers: $file:$line: includes $inc, which $dir/ may not use"
            status=1
            continue
        fi
        [ $ok = 1 ] && continue
        listed=0
        while read -r fpat ipat; do
            [ -n "$fpat" ] || continue
            # shellcheck disable=SC2254
            case $file in $fpat) case $inc in $ipat) listed=1; used="$used|$fpat $ipat|" ;; esac ;; esac
            [ $listed = 1 ] && break
        done <<EOF
$allow
EOF
        [ $listed = 1 ] && continue
        echo "check_layers: $file:$line: includes $inc, but $dir/ may include only $allowed_list"
        status=1
    done <<EOF
$incs
EOF
done

while read -r fpat ipat; do
    [ -n "$fpat" ] || continue
    case $used in
    *"|$fpat $ipat|"*) ;;
    *) echo "note: scripts/check_layers.sh: the allowlist entry '$fpat -> $ipat' matches nothing any more; delete it" ;;
    esac
done <<EOF
$allow
EOF

[ $status = 0 ] && echo "layers: ok"
exit $status
