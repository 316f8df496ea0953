#!/usr/bin/env bash
# Installs dependencies, builds ballot, and runs the main job: a local
# 3-node cluster on loopback (127.0.0.1-3, client port 7379), answering
# Redis clients. It keeps running after this script ends; stop it with
# `bash scripts/cluster.sh stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

bash scripts/cluster.sh start
leader=$(bash scripts/cluster.sh leader)
if [ "$leader" != 1 ]; then
    # Make 127.0.0.1:7379 the leader, so `redis-cli -p 7379` can write;
    # followers answer writes with the leader's address.
    redis-cli -h "127.0.0.$leader" -p 7379 BTRANSFER 1 >/dev/null || true
    for _ in $(seq 1 50); do
        [ "$(bash scripts/cluster.sh leader || true)" = 1 ] && break
        sleep 0.1
    done
fi

echo
echo "== write on the leader, read from every node (linearizable reads)"
echo "\$ redis-cli -p 7379 set greeting 'hello, ballot'"
redis-cli -p 7379 set greeting 'hello, ballot'
for i in 1 2 3; do
    echo "\$ redis-cli -h 127.0.0.$i -p 7379 get greeting"
    redis-cli -h "127.0.0.$i" -p 7379 get greeting
done
echo "\$ redis-cli -p 7379 incr visits"
redis-cli -p 7379 incr visits
echo
bash scripts/cluster.sh status
echo
echo "The cluster keeps running. Try: redis-cli -p 7379"
echo "Stop it with: bash scripts/cluster.sh stop"
