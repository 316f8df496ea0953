#!/usr/bin/env bash
# A program outside the tree, built against an installed ballot with only
# `pkg-config --cflags --libs ballot` (and once with the CMake package),
# embeds a node that joins a running ballotd cluster and reads what was
# written there. Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
# shellcheck source=../lib/scratch.sh
. "$(dirname "$0")/../lib/scratch.sh"
scratch_init install
p1=$base p2=$((base + 3))

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
pkg-config --exists ballot || { echo "ballot.pc not installed"; exit 1; }
[ -f "$tmp/prefix/include/ballot.h" ] && [ -f "$tmp/prefix/include/ballot/uv.h" ]
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/joiner" "$src/tests/embed/outside/joiner.c" \
    $(pkg-config --cflags --libs ballot) -Wl,-rpath,"$tmp/prefix/lib"
# The CMake package finds the same library.
mkdir -p "$tmp/cm"
cat >"$tmp/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.18)
project(joiner C)
find_package(ballot 0.1 REQUIRED)
add_executable(joiner_cmake $src/tests/embed/outside/joiner.c)
target_link_libraries(joiner_cmake PRIVATE ballot::ballot)
CM
cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cm/build" >/dev/null

bin="$tmp/prefix/bin"
"$bin/ballotd" secret "$tmp/cluster.secret"
export JOINER_SECRET_FILE="$tmp/cluster.secret"
"$bin/ballotd" --id 1 --data "$tmp/n1" --member "1=127.0.0.1:$p1:$((p1 + 1))" \
    --cluster_secret_file "$tmp/cluster.secret" \
    --metrics_port 0 --bootstrap >"$tmp/n1.log" 2>&1 &
pids+=($!)
ep="127.0.0.1:$p1"
for _ in $(seq 100); do
    "$bin/ballot" --endpoints "$ep" put greeting "hello from ballotd" >/dev/null 2>&1 && break
    sleep 0.1
done
"$bin/ballot" --endpoints "$ep" get greeting >/dev/null

"$tmp/joiner" "$tmp/n2" 2 "127.0.0.1:$p2:$((p2 + 1))" \
    "1=127.0.0.1:$p1:$((p1 + 1))" greeting >"$tmp/joiner.out" 2>"$tmp/joiner.err" &
joiner=$!
pids+=($joiner)
"$bin/ballot" --endpoints "$ep" member add 2 --addr "127.0.0.1:$p2:$((p2 + 1))" >/dev/null
if ! wait "$joiner"; then
    echo "joiner failed:"; cat "$tmp/joiner.err"; cat "$tmp/n1.log"; exit 1
fi
grep -qx "hello from ballotd" "$tmp/joiner.out" || { cat "$tmp/joiner.out"; exit 1; }
grep -q "^members 2 leader 1$" "$tmp/joiner.out" || { cat "$tmp/joiner.out"; exit 1; }
[ -x "$tmp/cm/build/joiner_cmake" ]
echo "an outside program built with pkg-config joined the cluster and read its data"
