#!/usr/bin/env bash
# Runs the programs of examples/ for real, as docs/embedding.md does.
# Usage: examples_test.sh BIN_DIR BALLOT_CLI NAME
#   leader_work: three processes elect a leader that does numbered work
#     items; the leader is killed with SIGKILL and another process takes
#     over within seconds, and no item is ever done twice;
#   config_watch: sets, changes and deletes made with the ballot CLI are
#     each reported;
#   locked_file: threads under the lock count to the exact total, with
#     fencing tokens that only grow.
set -euo pipefail
bin=$1
cli=$2
name=$3
# shellcheck source=../lib/scratch.sh
. "$(dirname "$0")/../lib/scratch.sh"
scratch_init examples
members=()
for i in 1 2 3; do
    port=$((base + (i - 1) * 3))
    members+=(--member "$i=127.0.0.1:$port:$((port + 1))")
done
# The cluster secret the nodes authenticate each other with (64 hex
# digits, owner-only, as `ballotd secret` makes it).
(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$tmp/cluster.secret")
node_flags() { # ID: the ballotd flags of node ID
    echo --id "$1" --data "$tmp/n$1" --metrics_port 0 --bootstrap "${members[@]}" \
        --cluster_secret_file "$tmp/cluster.secret"
}
# Waits until FILE has a line matching PATTERN, for at most SECONDS.
wait_line() {
    local file=$1 pattern=$2 secs=$3
    for _ in $(seq $((secs * 10))); do
        grep -qE "$pattern" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "no line /$pattern/ in $file after ${secs}s:"; cat "$file"; return 1
}

case $name in
leader_work)
    declare -A pid
    for i in 1 2 3; do
        # shellcheck disable=SC2046
        "$bin/leader_work" $(node_flags "$i") >"$tmp/out$i" 2>"$tmp/err$i" &
        pid[$i]=$!
        pids+=($!)
    done
    wait_line "$tmp/out1" '^item 5 by node' 20 ||
        wait_line "$tmp/out2" '^item 5 by node' 1 ||
        wait_line "$tmp/out3" '^item 5 by node' 1
    leader=$(cat "$tmp"/out? | grep -E '^item ' | tail -1 | awk '{print $5}')
    done_before=$(cat "$tmp"/out? | grep -c '^item ')
    kill -9 "${pid[$leader]}"
    killed_at=$(date +%s%N)
    # Another process picks the work up within seconds.
    took=
    for _ in $(seq 100); do
        if grep -hE '^item ' "$tmp"/out? | awk -v l="$leader" '$5 != l' |
            grep -q .; then
            took=$((($(date +%s%N) - killed_at) / 1000000))
            break
        fi
        sleep 0.1
    done
    [ -n "$took" ] || { echo "no other node took over"; cat "$tmp"/out? "$tmp"/err?; exit 1; }
    sleep 1
    dups=$(grep -hE '^item ' "$tmp"/out? | awk '{print $2}' | sort | uniq -d)
    [ -z "$dups" ] || { echo "items done twice: $dups"; exit 1; }
    after=$(grep -hE '^item ' "$tmp"/out? | grep -cv "by node $leader$" || true)
    echo "leader $leader killed after $done_before items; another node" \
         "worked again after ${took} ms ($after items since); no item twice"
    ;;
config_watch)
    port=$base
    # shellcheck disable=SC2046
    "$bin/config_watch" --id 1 --data "$tmp/n1" --metrics_port 0 --bootstrap \
        --member "1=127.0.0.1:$port:$((port + 1))" --until config/stop=yes \
        --cluster_secret_file "$tmp/cluster.secret" \
        >"$tmp/out" 2>"$tmp/err" &
    watcher=$!
    pids+=($watcher)
    wait_line "$tmp/out" '^watching config/' 10
    ep=(--endpoints "127.0.0.1:$port")
    for _ in $(seq 100); do
        "$cli" "${ep[@]}" put config/level info >/dev/null 2>&1 && break
        sleep 0.1
    done
    wait_line "$tmp/out" '^set config/level = info \(revision [0-9]+\)$' 10
    "$cli" "${ep[@]}" put config/level debug >/dev/null
    wait_line "$tmp/out" '^changed config/level = debug' 10
    "$cli" "${ep[@]}" put other/key ignored >/dev/null
    "$cli" "${ep[@]}" del config/level >/dev/null
    wait_line "$tmp/out" '^deleted config/level' 10
    "$cli" "${ep[@]}" put config/stop yes >/dev/null
    for _ in $(seq 100); do kill -0 "$watcher" 2>/dev/null || break; sleep 0.1; done
    wait "$watcher"
    if grep -q other/key "$tmp/out"; then echo "reported a key outside the prefix"; exit 1; fi
    echo "config_watch reported set, changed and deleted, and stopped"
    ;;
locked_file)
    port=$base
    "$bin/locked_file" --id 1 --data "$tmp/n1" --metrics_port 0 --bootstrap \
        --member "1=127.0.0.1:$port:$((port + 1))" --file "$tmp/counter" \
        --cluster_secret_file "$tmp/cluster.secret" \
        --threads 4 --rounds 25 >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
    grep -qx "count 100 of 100" "$tmp/out"
    # The tokens only grow, one per holder.
    tail -n +2 "$tmp/counter.tokens" | sort -n -c
    [ "$(tail -n +2 "$tmp/counter.tokens" | sort -u | wc -l)" -eq 100 ]
    echo "4 threads x 25 rounds under the lock: exact count, growing tokens"
    ;;
*)
    echo "unknown example $name"; exit 2 ;;
esac
