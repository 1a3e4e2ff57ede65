#!/bin/sh
# A stand-in for the seed demo's services until the registry and event bus exist:
# it logs in lymph's format so `devnode up` shows multiplexed, trace-keyed output.
# usage: service.sh ROLE   (ROLE: web, greeting or listen)
role=${1:-service}
n=0
trap 'echo "$role $DEVNODE_INSTANCE shutting down"; exit 0' TERM INT
echo "$role $DEVNODE_INSTANCE ready (pid $$, node $DEVNODE_ENDPOINT)"
while :; do
    n=$((n + 1))
    trace=$(printf '%08x%04x%04x' "$$" "$n" "$DEVNODE_INSTANCE")
    case "$role" in
        web) msg="GET /greet?name=joe" ;;
        greeting) msg="Saying hi to joe" ;;
        *) msg="Somebody greeted joe" ;;
    esac
    echo "$(date '+%Y-%m-%d %H:%M:%S,000') [INFO] $role: $msg - trace_id=\"$trace\""
    sleep 3 &
    wait $!
done
