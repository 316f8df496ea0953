#!/usr/bin/env bash
# Runs a local 3-node ballot cluster on loopback:
#   node 1: 127.0.0.1:7379 (clients), 127.0.0.1:7380 (peers)
#   node 2: 127.0.0.2:7379, 127.0.0.2:7380
#   node 3: 127.0.0.3:7379, 127.0.0.3:7380
#
#   scripts/cluster.sh start    start the nodes (bootstraps on first start)
#   scripts/cluster.sh status   role, term and commit index of each node
#   scripts/cluster.sh stop     stop them (SIGTERM, by pid)
#
# Data and logs live in $BALLOT_DEMO_DIR (default: ./ballot-demo), and so
# does the cluster secret the nodes authenticate each other with
# (cluster.secret, made on first start; docs/security.md).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BALLOT_DEMO_DIR:-$PWD/ballot-demo}
ballotd=${BALLOTD:-build/net/ballotd}
members=(--member 1=127.0.0.1:7379:7380 --member 2=127.0.0.2:7379:7380
         --member 3=127.0.0.3:7379:7380)

role_of() {
    redis-cli -h "127.0.0.$1" -p 7379 INFO raft 2>/dev/null |
        tr -d '\r' | sed -n 's/^role://p'
}

leader() {
    for i in 1 2 3; do
        if [ "$(role_of "$i")" = leader ]; then
            echo "$i"
            return 0
        fi
    done
    return 1
}

start() {
    mkdir -p "$dir"
    if [ ! -f "$dir/cluster.secret" ]; then
        "$ballotd" secret "$dir/cluster.secret"
    fi
    for i in 1 2 3; do
        pidfile=$dir/n$i.pid
        if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "node $i already running (pid $(cat "$pidfile"))"
            continue
        fi
        nohup "$ballotd" --id "$i" --data "$dir/n$i" "${members[@]}" \
            --cluster_secret_file "$dir/cluster.secret" \
            --bootstrap >>"$dir/n$i.log" 2>&1 &
        echo $! >"$pidfile"
        echo "node $i started (pid $!, log $dir/n$i.log)"
    done
    for _ in $(seq 1 100); do
        if l=$(leader); then
            echo "leader: node $l (127.0.0.$l:7379)"
            return 0
        fi
        sleep 0.1
    done
    echo "no leader after 10 s; see the logs in $dir" >&2
    return 1
}

status() {
    for i in 1 2 3; do
        info=$(redis-cli -h "127.0.0.$i" -p 7379 INFO raft 2>/dev/null |
            tr -d '\r' | grep -E '^(role|term|commit|applied):' |
            tr '\n' ' ' || true)
        echo "node $i 127.0.0.$i:7379 ${info:-down}"
    done
}

stop() {
    for i in 1 2 3; do
        pidfile=$dir/n$i.pid
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
            echo "node $i stopped"
        fi
        rm -f "$pidfile"
    done
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
leader) leader ;;
*)
    echo "usage: $0 start|status|stop|leader" >&2
    exit 2
    ;;
esac
