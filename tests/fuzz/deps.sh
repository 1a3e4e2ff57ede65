#!/bin/sh
# Installs what the fuzz targets need beyond scripts/deps.sh: Debian's clang and its
# libFuzzer runtime. Does nothing when both are there (the usual case after the first run).
set -eu
if command -v clang >/dev/null 2>&1 &&
    [ -f "$(clang -print-file-name="libclang_rt.fuzzer-$(uname -m).a")" ]; then
    exit 0
fi
pkgs="clang libclang-rt-14-dev"
echo "fuzz deps: installing $pkgs"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs
