#!/usr/bin/env bash
# Write latency with and without a history compaction running, in the same
# run on the same cluster (issue 10: "p99 write latency during a compaction
# stays within 2x of the p99 without it").
#
#   bash tests/bench/compaction.sh
#
# A 3-node cluster on 127.0.0.1 (client ports $PORT, $PORT+3, $PORT+6) with
# its history retention off, so the history only grows; a preload of
# $PRELOAD overwrites builds a backlog. Then three phases of `ballot bench
# put` ($CLIENTS clients, $SECS s each, 100-byte values over 1,000 keys):
#
#   before      no compaction
#   compacting  BCOMPACT to the current revision is sent 0.3 s in: every
#               node deletes the whole backlog in bounded steps meanwhile
#   after       no compaction
#
# and prints each phase's throughput and latency percentiles, how long the
# compaction ran (polled on the leader) and p99 compacting / before. Numbers,
# not a pass/fail test: the machine may be shared (a run repeated gives
# other figures; compare phases of one run).
#
# Environment: BUILD [build], PORT [29379], PRELOAD [500000], SECS [4],
# CLIENTS [64]. Every process started here is stopped by pid on exit.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$REPO/build}
PORT=${PORT:-29379}
PRELOAD=${PRELOAD:-500000}
SECS=${SECS:-4}
CLIENTS=${CLIENTS:-64}
BALLOTD=$BUILD/net/ballotd
BALLOT=$BUILD/cli/ballot
DIR=$(mktemp -d /tmp/ballot-bench-compaction.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [ -z "${KEEP:-}" ]; then rm -rf "$DIR"; else echo "kept $DIR"; fi
}
trap cleanup EXIT

"$BALLOTD" secret "$DIR/cluster.secret" >/dev/null
members=()
eps=""
for i in 1 2 3; do
    cp=$((PORT + (i - 1) * 3))
    members+=(--member "$i=127.0.0.1:$cp:$((cp + 1))")
    eps="$eps${eps:+,}127.0.0.1:$cp"
done
[ -f "$DIR/cluster.secret" ] || "$BALLOTD" secret "$DIR/cluster.secret"
for i in 1 2 3; do
    cp=$((PORT + (i - 1) * 3))
    "$BALLOTD" --id "$i" --data "$DIR/n$i" "${members[@]}" --bootstrap \
        --cluster_secret_file "$DIR/cluster.secret" \
        --metrics_port $((cp + 2)) --history_retention off \
        --cluster_secret_file "$DIR/cluster.secret" \
        >"$DIR/n$i.log" 2>&1 &
    PIDS+=($!)
done

field() { # field PORT NAME: an integer of BSTATUS
    redis-cli -p "$1" BSTATUS 2>/dev/null | tr -d '\r' |
        awk -v n="$2" 'prev == n { print; exit } { prev = $0 }'
}
leader_port() {
    for i in 1 2 3; do
        cp=$((PORT + (i - 1) * 3))
        if [ "$(redis-cli -p "$cp" INFO raft 2>/dev/null | tr -d '\r' |
            sed -n 's/^role://p')" = leader ]; then
            echo "$cp"
            return 0
        fi
    done
    return 1
}
for _ in $(seq 1 100); do
    LP=$(leader_port) && break
    sleep 0.1
done
[ -n "${LP:-}" ] || { echo "no leader" >&2; exit 1; }

bench() { # bench ARGS...: one JSON line
    timeout 600 "$BALLOT" --endpoints "$eps" --json bench put --target-leader \
        --clients "$CLIENTS" --conns 8 --key-space 1000 --value-size 100 \
        "$@" 2>/dev/null | head -1
}
summary() { # summary NAME JSON
    python3 -c '
import json, sys
j = json.loads(sys.argv[2]); l = j["latency_ms"]
print("%-11s %8.0f writes/s  p50 %7.2f ms  p99 %7.2f ms  p99.9 %7.2f ms  "
      "max %7.2f ms  failed %d" % (sys.argv[1], j["throughput"], l["p50"],
      l["p99"], l["p99_9"], l["max"], j["failed"]))' "$1" "$2"
}
p99() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["latency_ms"]["p99"])' "$1"; }

echo "preloading $PRELOAD overwrites (history grows, retention off)..."
summary preload "$(bench --total "$PRELOAD")"
LP=$(leader_port)
echo "history records on the leader: $(field "$LP" history_events)"

before=$(bench --duration "$SECS")

bench --duration "$SECS" >"$DIR/during.json" &
BPID=$!
sleep 0.3
LP=$(leader_port)
rev=$(field "$LP" revision)
t0=$(date +%s.%N)
redis-cli -p "$LP" BCOMPACT "$rev" >/dev/null
while [ "$(field "$LP" compaction_pending)" != 0 ]; do
    sleep 0.02
done
t1=$(date +%s.%N)
wait "$BPID"
during=$(cat "$DIR/during.json")
left=$(field "$LP" history_events)

after=$(bench --duration "$SECS")

echo
echo "3 nodes, $CLIENTS clients, $SECS s a phase; compaction of the backlog up to revision $rev"
summary before "$before"
summary compacting "$during"
summary after "$after"
python3 -c '
import sys
t0, t1, secs = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print("compaction ran %.2f s of the %.0f s phase (records left: %s)" %
      (t1 - t0, secs, sys.argv[4]))
print("p99 compacting / before = %.2f" % (float(sys.argv[6]) / float(sys.argv[5])))
' "$t0" "$t1" "$SECS" "$left" "$(p99 "$before")" "$(p99 "$during")"
