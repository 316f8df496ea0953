#!/usr/bin/env bash
# Lease rates (issue 15, item 10), in one run on this machine:
#   - ballot: `bench put` (the baseline: one replicated, fsynced write per
#     request), `bench lease-grant`, and `bench lease-keepalive` over
#     100,000 leases, on a fresh 3-node cluster on 127.0.0.1-3; with the
#     log entries the keep-alives cost (last index before and after) and
#     the leader's resident memory with the 100,000 leases;
#   - etcd 3.4 (Debian etcd-server), if its tools/benchmark was built by
#     tests/bench/compare.sh: `benchmark put` and `benchmark
#     lease-keepalive` with the same clients, after ballot has stopped.
# Numbers, not pass/fail.
#
#   bash tests/bench/lease.sh        # BUILD=build, N=20000 requests per run
#
# Environment: BUILD, N, CLIENTS (100), LEASES (100000), LEASE_PORT (client
# port, peer port +1), LEASE_WORK (data and logs), ETCD_BENCH (etcd's
# benchmark binary; default: compare.sh's), ETCD_PORT. Every process
# started here is stopped by pid on exit.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$REPO/build}
N=${N:-20000}
CLIENTS=${CLIENTS:-100}
LEASES=${LEASES:-100000}
PORT=${LEASE_PORT:-31379}
ETCD_PORT=${ETCD_PORT:-31579}
WORK=${LEASE_WORK:-$(mktemp -d /tmp/ballot-lease.XXXXXX)}
ETCD_BENCH=${ETCD_BENCH:-$REPO/out/compare-work/gopath/src/go.etcd.io/etcd/tools/benchmark/benchmark}
[ -x "$ETCD_BENCH" ] || ETCD_BENCH=/work/main/out/compare-work/gopath/src/go.etcd.io/etcd/tools/benchmark/benchmark
BALLOT=$BUILD/cli/ballot
EPS="127.0.0.1:$PORT,127.0.0.2:$PORT,127.0.0.3:$PORT"
CONNS=$((CLIENTS / 10 > 0 ? CLIENTS / 10 : 1))

PIDS=()
stop_all() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap stop_all EXIT

RES=$WORK/results.tsv
: >"$RES"
echo "work dir $WORK; load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# --- ballot --------------------------------------------------------------------
members=(--member "1=127.0.0.1:$PORT:$((PORT + 1))"
         --member "2=127.0.0.2:$PORT:$((PORT + 1))"
         --member "3=127.0.0.3:$PORT:$((PORT + 1))")
"$BUILD/net/ballotd" secret "$WORK/cluster.secret"
for i in 1 2 3; do
    mkdir -p "$WORK/n$i"
    "$BUILD/net/ballotd" --id "$i" --data "$WORK/n$i" "${members[@]}" \
        --cluster_secret_file "$WORK/cluster.secret" \
        --bootstrap >>"$WORK/n$i.log" 2>&1 &
    PIDS+=($!)
done
ok=""
for _ in $(seq 1 100); do
    if timeout 5 "$BALLOT" --endpoints "$EPS" put lease:ready 1 \
        >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
done
[ -n "$ok" ] || { echo "no leader after 10 s (logs in $WORK)" >&2; exit 1; }

leader_field() { # INFO raft field of the leader
    "$BALLOT" --endpoints "$EPS" --json status 2>/dev/null | python3 -c '
import json, sys
rows = json.load(sys.stdin)
rows = rows if isinstance(rows, list) else rows.get("endpoints", rows.get("members", []))
for r in rows:
    if r.get("role") == "leader":
        print(r.get(sys.argv[1], "")); break' "$1"
}
leader_pid() {
    local id
    id=$(leader_field id)
    [ -n "$id" ] && echo "${PIDS[$((id - 1))]}"
}
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null; }
last_index() { "$BALLOT" --endpoints "$EPS" --json status 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); d=d if isinstance(d,list) else d.get("endpoints",[]); print(max(int(r.get("commit",0)) for r in d))'; }

run() { # system, name, bench arguments
    local sys=$1 name=$2; shift 2
    local j
    j=$(timeout 600 "$BALLOT" --json --timeout 10000 --endpoints "$EPS" \
        bench "$@" 2>>"$WORK/bench.log" | tail -1)
    python3 - "$j" "$sys" "$name" >>"$RES" <<'PY'
import json, sys
try:
    d = json.loads(sys.argv[1]); l = d["latency_ms"]
    print("%s\t%s\t%.0f\t%.3f\t%.3f\t%s" % (sys.argv[2], sys.argv[3], d["throughput"],
          l["p50"], l["p99"], "%d failed" % d["failed"] if d["failed"] else ""))
except Exception as e:
    print("%s\t%s\t-\t-\t-\tfailed (%s)" % (sys.argv[2], sys.argv[3], e))
PY
    tail -1 "$RES" >&2
}

common=(--clients "$CLIENTS" --conns "$CONNS" --total "$N")
run ballot put put "${common[@]}" --value-size 16 --key-space 1000000 \
    --key-dist sequential --key-prefix lput:
run ballot lease-grant lease-grant "${common[@]}"
lpid=$(leader_pid)
rss0=$(rss_kib "$lpid")
# The first run grants the $LEASES leases (pipelined) before it starts.
run ballot lease-keepalive-1 lease-keepalive "${common[@]}" \
    --key-space "$LEASES" --key-dist uniform
rss1=$(rss_kib "$lpid")
before=$(last_index)
run ballot lease-keepalive lease-keepalive "${common[@]}" \
    --key-space "$LEASES" --key-dist uniform
after=$(last_index)
rss2=$(rss_kib "$lpid")
leases=$("$BALLOT" --endpoints "$EPS" lease list 2>/dev/null | wc -l)
echo "ballot: $leases leases in the store; leader RSS ${rss0:-?} KiB before \
the $LEASES keep-alive leases were granted, ${rss1:-?} KiB after, \
${rss2:-?} KiB after $N more keep-alives; log entries for those $N \
keep-alives: $((after - before)) (clock checkpoints included)" |
    tee -a "$RES.notes" >&2
stop_all

# --- etcd ----------------------------------------------------------------------
if [ -x "$ETCD_BENCH" ] && command -v etcd >/dev/null; then
    cluster=""
    eps=""
    for i in 1 2 3; do
        cluster+="${cluster:+,}e$i=http://127.0.0.1:$((ETCD_PORT + 10 + i))"
        eps+="${eps:+,}127.0.0.1:$((ETCD_PORT + i))"
    done
    for i in 1 2 3; do
        etcd --name "e$i" --data-dir "$WORK/e$i" \
            --listen-client-urls "http://127.0.0.1:$((ETCD_PORT + i))" \
            --advertise-client-urls "http://127.0.0.1:$((ETCD_PORT + i))" \
            --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10 + i))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10 + i))" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token "lease-$$" >>"$WORK/e$i.log" 2>&1 &
        PIDS+=($!)
    done
    ok=""
    for _ in $(seq 1 100); do
        if ETCDCTL_API=3 timeout 5 etcdctl --endpoints "$eps" put lease:ready 1 \
            >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.1
    done
    erun() { # name, benchmark arguments
        local name=$1; shift
        local o=$WORK/etcd-$name.txt
        timeout 600 "$ETCD_BENCH" --endpoints "$eps" --precise --target-leader \
            --conns "$CONNS" --clients "$CLIENTS" "$@" >"$o" 2>&1
        local rps p50 p99
        rps=$(awk '/Requests\/sec:/{print $2}' "$o")
        p50=$(awk '$1=="50%"{printf "%.3f", $3*1000}' "$o")
        p99=$(awk '$1=="99%"{printf "%.3f", $3*1000}' "$o")
        local note=""
        [ -n "$rps" ] || note="failed (see $o)"
        printf 'etcd\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(printf '%.0f' "${rps:-0}")" \
            "${p50:--}" "${p99:--}" "$note" >>"$RES"
        tail -1 "$RES" >&2
    }
    if [ -n "$ok" ]; then
        erun put put --total "$N" --key-size 8 --val-size 16 \
            --key-space-size 1000000 --sequential-keys
        erun lease-keepalive lease-keepalive --total "$N"
    else
        printf 'etcd\tall\t-\t-\t-\tcluster not ready\n' >>"$RES"
    fi
    stop_all
else
    printf 'etcd\tall\t-\t-\t-\tno etcd benchmark (run tests/bench/compare.sh once)\n' >>"$RES"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

echo "| system | workload | req/s | p50 ms | p99 ms | note |"
echo "|---|---|---|---|---|---|"
awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6}' "$RES"
cat "$RES.notes" 2>/dev/null
