#!/bin/sh
# Installs the Debian packages devnode needs, and only those that are missing.
# Runs `apt-get update` only when something must be installed, so a second run is quick.
set -eu
PKGS="build-essential pkg-config libuv1-dev libyaml-dev libzmq3-dev libmsgpack-dev
libjansson-dev libhttp-parser-dev zlib1g-dev libncurses-dev libcmocka-dev tmux curl procps
python3 python3-pytest python3-zmq python3-msgpack python3-yaml python3-jsonschema wrk
python3-werkzeug python3-venv python3-pip python3-setuptools
gunicorn python3-uvicorn nodejs golang-go
clang libclang-rt-14-dev
zsh fish man-db
zookeeper rabbitmq-server libzookeeper-mt-dev librabbitmq-dev python3-kazoo python3-kombu"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
