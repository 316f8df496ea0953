#!/usr/bin/env bash
# Instructions per request in the server, counted by callgrind: a number
# the machine's load cannot move, for comparing two builds on a shared or
# noisy machine where throughput and latency runs say more about the
# neighbours than about the code.
#
#   bash tests/bench/instructions.sh                 # this build (build/)
#   BASE=/path/to/old/build bash tests/bench/instructions.sh   # and a ratio
#
# For each build: a one-node cluster (ballotd under valgrind's callgrind,
# instrumentation off until the measured phase, the background scrub off
# since it runs by the clock), N_LOAD writes to fill it, then N requests
# of each workload (stale GET over the written keys; SET of 256-byte
# values) from `ballot bench` with 10 clients over 2 connections. Counts
# the server process's user-space instructions (Ir) of each phase and
# prints them per request, with the ratio to BASE when given. Kernel time
# (system calls, fsync) is not counted: this measures the CPU the code
# itself spends, the part a change to it can move.
#
# Environment: BUILD, BASE (build dirs), N (default 20000), N_LOAD (2000),
# INSTR_PORT (client port; peer port +1), INSTR_WORK (data and profiles).
# Every process started here is stopped by pid on exit.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$REPO/build}
BASE=${BASE:-}
N=${N:-20000}
N_LOAD=${N_LOAD:-2000}
PORT=${INSTR_PORT:-28479}
WORK=${INSTR_WORK:-$(mktemp -d /tmp/ballot-instr.XXXXXX)}

command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)"; exit 1; }

PID=""
stop() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    PID=""
}
trap stop EXIT

# measure BUILD LABEL WORKLOAD: prints instructions per request.
measure() {
    local b=$1 label=$2 wl=$3 dir=$WORK/$2-$3
    local ballot=$b/cli/ballot ep=127.0.0.1:$PORT
    rm -rf "$dir"
    mkdir -p "$dir"
    local extra=()
    if "$b/net/ballotd" secret "$dir/secret" >/dev/null 2>&1; then
        extra=(--cluster_secret_file "$dir/secret")
    fi
    # Builds from before the scrub have no such setting.
    if "$b/net/ballotd" --scrub_bytes_per_sec 0 --version >/dev/null 2>&1; then
        extra+=(--scrub_bytes_per_sec 0)
    fi
    valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$dir/callgrind.out" \
        "$b/net/ballotd" --id 1 --data "$dir/n1" \
        --member "1=127.0.0.1:$PORT:$((PORT + 1))" --bootstrap \
        "${extra[@]}" >"$dir/ballotd.log" 2>&1 &
    PID=$!
    local up=""
    for _ in $(seq 300); do
        if timeout 5 "$ballot" --endpoints "$ep" put ready 1 >/dev/null 2>&1; then
            up=1
            break
        fi
        sleep 0.2
    done
    [ -n "$up" ] || { echo "$label: the node did not start (see $dir)" >&2; stop; return 1; }
    local common=(--clients 10 --conns 2 --value-size 256 --key-prefix key:)
    timeout 600 "$ballot" --endpoints "$ep" bench put "${common[@]}" \
        --total "$N_LOAD" --key-space "$N_LOAD" --key-dist sequential >/dev/null 2>&1
    callgrind_control -i on "$PID" >/dev/null 2>&1
    case $wl in
    get) timeout 600 "$ballot" --endpoints "$ep" --consistency s bench get \
            "${common[@]}" --total "$N" --key-space "$N_LOAD" --key-dist uniform \
            >/dev/null 2>&1 ;;
    put) timeout 600 "$ballot" --endpoints "$ep" bench put "${common[@]}" \
            --total "$N" --key-space "$N_LOAD" --key-dist uniform >/dev/null 2>&1 ;;
    esac
    callgrind_control -i off "$PID" >/dev/null 2>&1
    callgrind_control -d "$PID" >/dev/null 2>&1
    sleep 1
    stop
    local f
    f=$(ls -t "$dir"/callgrind.out.* 2>/dev/null | head -1)
    [ -n "$f" ] || { echo "$label: no profile dumped" >&2; return 1; }
    callgrind_annotate --auto=no "$f" 2>/dev/null |
        awk -v n="$N" '/PROGRAM TOTALS/ {gsub(",", "", $1); printf "%.0f\n", $1 / n}'
}

printf '%-10s %-6s %14s %8s\n' build req instr/request ratio
for wl in get put; do
    new=$(measure "$BUILD" this "$wl") || exit 1
    if [ -n "$BASE" ]; then
        old=$(measure "$BASE" base "$wl") || exit 1
        printf '%-10s %-6s %14s\n' base "$wl" "$old"
        printf '%-10s %-6s %14s %7.2fx\n' this "$wl" "$new" \
            "$(python3 -c "print($new / $old)")"
    else
        printf '%-10s %-6s %14s\n' this "$wl" "$new"
    fi
done
echo "profiles and logs: $WORK"
