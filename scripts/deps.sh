#!/usr/bin/env bash
# Installs what ballot needs to build and test, from Debian's packages.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
else
    sudo=
fi
packages=(build-essential cmake pkg-config clang-format
          libuv1-dev liblmdb-dev libxxhash-dev check libsubunit-dev
          libinih-dev libhiredis-dev libcjson-dev libedit-dev redis-tools
          python3-redis python3-matplotlib redis-server clang
          libclang-rt-14-dev iptables libfaketime libfuse3-dev fuse3
          libssl-dev openssl)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi
