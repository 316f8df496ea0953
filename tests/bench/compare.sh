#!/usr/bin/env bash
# ballot vs etcd vs Redis: the same workloads, on this machine, one system
# after the other (never two at once), plus the physical floor of a durable
# write measured in the same run.
#
#   bash tests/bench/compare.sh            # install, build, run, print the table
#
# Systems:
#   ballot  3 nodes on 127.0.0.1-3 (client port $BALLOT_PORT, peer +1),
#           fsync on (always), driven by `ballot bench`
#   etcd    3.4 (Debian etcd-server), 3 members on 127.0.0.1 with distinct
#           ports ($ETCD_PORT.. for clients, +10.. for peers), fsync on (the
#           default), driven by etcd's own tools/benchmark, built here from
#           Debian's source package into a private GOPATH under the work dir
#   redis   one redis-server, appendonly yes + appendfsync always, driven by
#           redis-benchmark (single-node reference, no replication)
#
# Workloads (256-byte values, key space 1,000,000, sequential keys for puts):
#   put, 1 client; put, 100 clients / 10 conns; put, 500 clients / 50 conns;
#   then, after those writes, get with 100 clients / 10 conns, linearizable
#   and stale (etcd: serializable; Redis has one kind of read).
#
# Environment (all optional):
#   COMPARE_WORK   work dir (data, logs, etcd source and GOPATH)  [out/compare-work]
#   COMPARE_OUT    where the table goes                           [out]
#   BUILD          ballot build dir                               [build]
#   N1 N100 N500 NREAD   requests per workload        [5000 50000 100000 50000]
#   CMAX           clients of the biggest write run               [500]
#   SYSTEMS        which systems to run                           ["ballot etcd redis"]
#   SKIP_INSTALL=1 do not run apt-get / build etcd's benchmark (already done)
#   BALLOT_ARGS    extra ballotd flags for experiments (e.g. "--snapshot_every
#                  1000000"); the published table uses none
#   TLS_MODE=1     only ballot, TLS on vs off in alternating rounds, driven
#                  by redis-benchmark (section 5b); its own table
#   TLS_ROUNDS TLS_C   rounds and clients of TLS_MODE                [3 50]
#
# If etcd's benchmark cannot be fetched or built, the log says why and the
# etcd columns stay empty; ballot, Redis and the floor still run.
# The table goes to $COMPARE_OUT/compare-<date>.md (out/ is git-ignored).
#
# Every process started here is stopped by pid on exit; every bench run is
# bounded by `timeout`; every port is on 127.0.0.x.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${COMPARE_WORK:-$REPO/out/compare-work}
OUT=${COMPARE_OUT:-$REPO/out}
BUILD=${BUILD:-$REPO/build}
N1=${N1:-5000}
N100=${N100:-50000}
N500=${N500:-100000}
NREAD=${NREAD:-50000}
CMAX=${CMAX:-500}
SYSTEMS=${SYSTEMS:-"ballot etcd redis"}
BALLOT_PORT=${BALLOT_PORT:-27379}
ETCD_PORT=${ETCD_PORT:-23791}
REDIS_PORT=${REDIS_PORT:-26379}
VAL=256
KEYSPACE=1000000
RUN_TIMEOUT=${RUN_TIMEOUT:-180}
CONNS_MAX=$(( CMAX / 10 > 0 ? CMAX / 10 : 1 ))
TLS_ROUNDS=${TLS_ROUNDS:-3}
TLS_C=${TLS_C:-50}

STAMP=$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$WORK" "$OUT"
RES=$WORK/results-$STAMP.tsv     # system  workload  req/s  p50_ms  p99_ms  note
LOG=$WORK/log-$STAMP.txt
: >"$RES"

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }
die() { log "FATAL: $*"; exit 1; }

# --- process bookkeeping ------------------------------------------------------
PIDS=()
stop_pid() {
    local pid=$1
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    PIDS=()
}
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

port_free() { ! ss -ltnH "( sport = :$2 )" 2>/dev/null | grep -q "$1:$2 "; }

# --- 1. install ---------------------------------------------------------------
ETCD_BENCH=$WORK/gopath/src/go.etcd.io/etcd/tools/benchmark/benchmark
install_all() {
    local apt="apt-get"
    [ "$(id -u)" = 0 ] || apt="sudo apt-get"
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get update + install"
    $apt update -qq >>"$LOG" 2>&1 || die "apt-get update failed"
    $apt install -y -qq etcd-server etcd-client golang-go \
        golang-etcd-server-dev redis-server redis-tools >>"$LOG" 2>&1 ||
        die "apt-get install failed (see $LOG)"
    [ -x "$ETCD_BENCH" ] && return 0
    # etcd's tools/benchmark is only in the Debian source package.
    if ! apt-get indextargets 2>/dev/null | grep -q 'Identifier: Sources'; then
        log "adding deb-src entries"
        local s="sudo"; [ "$(id -u)" = 0 ] && s=""
        if [ -f /etc/apt/sources.list.d/debian.sources ]; then
            sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
                $s tee /etc/apt/sources.list.d/debian-src.sources >/dev/null
        else
            grep -h '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' |
                $s tee /etc/apt/sources.list.d/debian-src.list >/dev/null
        fi
        $apt update -qq >>"$LOG" 2>&1 || { log "no etcd benchmark: apt-get update (deb-src) failed"; return 0; }
    fi
    local v
    v=$(dpkg-query -W -f='${Version}' golang-etcd-server-dev) || { log "no etcd benchmark: golang-etcd-server-dev not installed"; return 0; }
    mkdir -p "$WORK/src"
    log "apt-get source etcd=$v; building tools/benchmark"
    (cd "$WORK/src" && apt-get source --download-only "etcd=$v") >>"$LOG" 2>&1 ||
        { log "no etcd benchmark: apt-get source etcd=$v failed (see $LOG)"; return 0; }
    local tgz
    tgz=$(ls "$WORK"/src/etcd_*.orig.tar.gz | head -1)
    local top
    top=$(tar -tzf "$tgz" | head -1 | cut -d/ -f1)
    rm -rf "$WORK/src/$top"
    tar -xzf "$tgz" -C "$WORK/src" "$top/tools/benchmark" || { log "no etcd benchmark: no tools/benchmark in $tgz"; return 0; }
    mkdir -p "$WORK/gopath/src/go.etcd.io/etcd/tools"
    rm -rf "$WORK/gopath/src/go.etcd.io/etcd/tools/benchmark"
    mv "$WORK/src/$top/tools/benchmark" "$WORK/gopath/src/go.etcd.io/etcd/tools/"
    (cd "$WORK/gopath/src/go.etcd.io/etcd/tools/benchmark" &&
        GO111MODULE=off GOPATH="$WORK/gopath:/usr/share/gocode" \
        GOCACHE="$WORK/gocache" GOFLAGS= timeout 600 go build -o benchmark .) >>"$LOG" 2>&1 ||
        { log "no etcd benchmark: go build failed (see $LOG); ballot and Redis still run"; return 0; }
}

build_ballot() {
    if [ ! -x "$BUILD/net/ballotd" ] || [ ! -x "$BUILD/cli/ballot" ]; then
        log "building ballot (RelWithDebInfo)"
        cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >>"$LOG" 2>&1 &&
            cmake --build "$BUILD" -j2 >>"$LOG" 2>&1 || die "ballot build failed"
    fi
}

# --- 2. the floor: one fdatasync of a small record, one loopback round trip ---
floor() {
    cat >"$WORK/floor.c" <<'EOF'
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static void report(const char *what, double *v, int n, double total) {
    qsort(v, n, sizeof *v, cmp);
    printf("%s %d %.0f %.1f %.1f\n", what, n, n / (total / 1e6), v[(n * 50 + 99) / 100 - 1], v[(n * 99 + 99) / 100 - 1]);
}
int main(int argc, char **argv) {
    int n = 3000, m = 20000; char buf[256]; memset(buf, 'x', sizeof buf);
    double *v = malloc(sizeof(double) * m);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 1; }
    double t0 = now();
    for (int i = 0; i < n; i++) {
        double a = now();
        if (write(fd, buf, sizeof buf) != sizeof buf || fdatasync(fd) != 0) { perror("sync"); return 1; }
        v[i] = now() - a;
    }
    report("fdatasync", v, n, now() - t0);
    close(fd); unlink(argv[1]);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t sl = sizeof sa;
    if (bind(ls, (void *)&sa, sizeof sa) || listen(ls, 1) || getsockname(ls, (void *)&sa, &sl)) { perror("listen"); return 1; }
    pid_t pid = fork();
    if (pid == 0) {
        int c = accept(ls, NULL, NULL); setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char b[64]; ssize_t r;
        while ((r = read(c, b, sizeof b)) > 0) if (write(c, b, r) != r) break;
        _exit(0);
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (void *)&sa, sizeof sa)) { perror("connect"); return 1; }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b[32] = "*1\r\n$4\r\nPING\r\n";
    t0 = now();
    for (int i = 0; i < m; i++) {
        double a = now();
        if (write(s, b, 14) != 14 || read(s, b, sizeof b) <= 0) { perror("pingpong"); return 1; }
        v[i] = now() - a;
    }
    report("rtt", v, m, now() - t0);
    close(s); waitpid(pid, NULL, 0);
    return 0;
}
EOF
    cc -O2 -o "$WORK/floor" "$WORK/floor.c" || die "cannot compile floor.c"
    log "floor ($1): 3000 x (256 B append + fdatasync) in $WORK, 20000 loopback TCP round trips"
    timeout 120 "$WORK/floor" "$WORK/floor.dat" | tee -a "$LOG" >"$WORK/floor-$1.txt" ||
        die "floor measurement failed"
    # one line per measurement: when  fsync_p50 fsync_p99 syncs/s rtt_p50 rtt_p99 (µs)
    echo "$1 $(awk '$1=="fdatasync"{printf "%s %s %s ", $4, $5, $3} $1=="rtt"{printf "%s %s", $4, $5}' \
        "$WORK/floor-$1.txt")" >>"$FLOOR"
}

record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; }

# --- 3. ballot ----------------------------------------------------------------
ballot_run() { # workload-name, then ballot bench arguments
    local name=$1; shift
    local j
    j=$(timeout "$RUN_TIMEOUT" "$BUILD/cli/ballot" --json --timeout 10000 \
        --endpoints "127.0.0.1:$BALLOT_PORT,127.0.0.2:$BALLOT_PORT,127.0.0.3:$BALLOT_PORT" \
        "$@" 2>>"$LOG" | tail -1)
    echo "ballot $name: $j" >>"$LOG"
    python3 - "$j" "$name" <<'EOF' >>"$RES" || record ballot "$name" - - - "failed"
import json, sys
d = json.loads(sys.argv[1]); l = d["latency_ms"]
note = "bench cpu %.0f%%" % d["cpu"]["percent_of_one_core"]
if d["failed"]: note += ", %d failed %s" % (d["failed"], d["errors"])
print("ballot\t%s\t%.0f\t%.3f\t%.3f\t%s" % (sys.argv[2], d["throughput"], l["p50"], l["p99"], note))
EOF
    tail -1 "$RES" >&2
}

# Starts the 3-node cluster in $WORK/$1; the rest are extra ballotd flags
# (TLS_MODE's certificates). Waits for a leader.
start_ballot() {
    local dir=$WORK/$1 i
    shift
    rm -rf "$dir"; mkdir -p "$dir"
    for i in 1 2 3; do
        port_free "127.0.0.$i" "$BALLOT_PORT" || die "127.0.0.$i:$BALLOT_PORT is in use"
    done
    local members=(--member "1=127.0.0.1:$BALLOT_PORT:$((BALLOT_PORT + 1))"
                   --member "2=127.0.0.2:$BALLOT_PORT:$((BALLOT_PORT + 1))"
                   --member "3=127.0.0.3:$BALLOT_PORT:$((BALLOT_PORT + 1))")
    # Peers authenticate with a shared secret, as in production.
    "$BUILD/net/ballotd" secret "$dir/cluster.secret" || die "cannot make a cluster secret"
    for i in 1 2 3; do
        # shellcheck disable=SC2086 # BALLOT_ARGS is a list of flags
        "$BUILD/net/ballotd" --id "$i" --data "$dir/n$i" "${members[@]}" --bootstrap \
            --cluster_secret_file "$dir/cluster.secret" "${@//@ID@/$i}" \
            ${BALLOT_ARGS:-} >>"$dir/n$i.log" 2>&1 &
        PIDS+=($!)
    done
    local ok=""
    for _ in $(seq 1 100); do
        if timeout 5 "$BUILD/cli/ballot" --endpoints "127.0.0.1:$BALLOT_PORT" \
            "${CLI_TLS[@]}" put compare:ready 1 >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.1
    done
    [ -n "$ok" ] || die "ballot cluster has no leader after 10 s (logs in $dir)"
    log "ballot: cluster up (pids ${PIDS[*]}), load $(cut -d' ' -f1-3 /proc/loadavg)"
}

run_ballot() {
    CLI_TLS=()
    start_ballot ballot
    local common=(--value-size $VAL --key-space $KEYSPACE --key-dist sequential --key-prefix key:)
    ballot_run put1   bench put --clients 1 --conns 1 --total "$N1" "${common[@]}"
    ballot_run put100 bench put --clients 100 --conns 10 --total "$N100" "${common[@]}"
    ballot_run putmax bench put --clients "$CMAX" --conns "$CONNS_MAX" --total "$N500" "${common[@]}"
    # reads: uniform over the keys the writes left (key:000000 .. key:0NNNNN)
    local written=$(( N500 > N100 ? N500 : N100 ))
    local rcommon=(--clients 100 --conns 10 --total "$NREAD" --value-size $VAL
                   --key-space "$written" --key-dist uniform --key-prefix key:0)
    [ "$written" -le 100000 ] || rcommon=(--clients 100 --conns 10 --total "$NREAD"
        --value-size $VAL --key-space "$written" --key-dist uniform --key-prefix key:)
    ballot_run getl --consistency l bench get "${rcommon[@]}"
    ballot_run gets --consistency s bench get "${rcommon[@]}"
    stop_all
}

# --- 4. etcd ------------------------------------------------------------------
etcd_run() { # workload-name, then benchmark arguments
    local name=$1; shift
    local o=$WORK/etcd-$name.txt
    timeout "$RUN_TIMEOUT" "$ETCD_BENCH" --endpoints "$ETCD_EPS" --precise "$@" \
        >"$o" 2>&1
    local rc=$?
    cat "$o" | grep -v '^ *[0-9]* / [0-9]* ' >>"$LOG"
    local rps p50 p99 errs
    rps=$(awk '/Requests\/sec:/{print $2}' "$o")
    p50=$(awk '$1=="50%"{printf "%.3f", $3*1000}' "$o")
    p99=$(awk '$1=="99%"{printf "%.3f", $3*1000}' "$o")
    errs=$(awk '/Error distribution/{f=1;next} f&&NF{print}' "$o" | head -3 | tr '\n' ' ')
    if [ -z "$rps" ]; then
        record etcd "$name" - - - "failed (rc $rc; see $o)"
    else
        record etcd "$name" "$(printf '%.0f' "$rps")" "$p50" "$p99" "${errs:+errors: $errs}"
    fi
    tail -1 "$RES" >&2
}

run_etcd() {
    [ -x "$ETCD_BENCH" ] || { record etcd all - - - "etcd benchmark not built"; return; }
    local dir=$WORK/etcd i cluster=""
    rm -rf "$dir"; mkdir -p "$dir"
    for i in 1 2 3; do
        port_free 127.0.0.1 $((ETCD_PORT + i - 1)) || die "127.0.0.1:$((ETCD_PORT + i - 1)) in use"
        port_free 127.0.0.1 $((ETCD_PORT + 10 + i - 1)) || die "127.0.0.1:$((ETCD_PORT + 10 + i - 1)) in use"
        cluster+="${cluster:+,}e$i=http://127.0.0.1:$((ETCD_PORT + 10 + i - 1))"
    done
    ETCD_EPS=""
    for i in 1 2 3; do
        local cp=$((ETCD_PORT + i - 1)) pp=$((ETCD_PORT + 10 + i - 1))
        ETCD_EPS+="${ETCD_EPS:+,}127.0.0.1:$cp"
        etcd --name "e$i" --data-dir "$dir/e$i" \
            --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
            --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token "compare-$STAMP" >>"$dir/e$i.log" 2>&1 &
        PIDS+=($!)
    done
    local ok=""
    for _ in $(seq 1 100); do
        if ETCDCTL_API=3 timeout 5 etcdctl --endpoints "$ETCD_EPS" put compare:ready 1 >/dev/null 2>&1; then
            ok=1; break
        fi
        sleep 0.1
    done
    [ -n "$ok" ] || die "etcd cluster not ready after 10 s (logs in $dir)"
    log "etcd: cluster up (pids ${PIDS[*]}), load $(cut -d' ' -f1-3 /proc/loadavg)"
    local common=(--key-size 8 --val-size $VAL --key-space-size $KEYSPACE --sequential-keys)
    etcd_run put1   --target-leader --conns 1 --clients 1 put --total "$N1" "${common[@]}"
    etcd_run put100 --target-leader --conns 10 --clients 100 put --total "$N100" "${common[@]}"
    etcd_run putmax --target-leader --conns "$CONNS_MAX" --clients "$CMAX" put --total "$N500" "${common[@]}"
    # etcd's range benchmark reads one key: give it a printable one with a 256 B value
    ETCDCTL_API=3 timeout 10 etcdctl --endpoints "$ETCD_EPS" put key:042042 \
        "$(head -c $VAL /dev/zero | tr '\0' x)" >/dev/null 2>&1 || log "etcdctl put failed"
    etcd_run getl --conns 10 --clients 100 range key:042042 --consistency l --total "$NREAD"
    etcd_run gets --conns 10 --clients 100 range key:042042 --consistency s --total "$NREAD"
    stop_all
}

# --- 5. Redis -----------------------------------------------------------------
# One redis-benchmark run recorded as system $1, workload $2, against
# host $3 port $4; the rest are redis-benchmark arguments.
rb_run() {
    local sys=$1 name=$2 host=$3 port=$4; shift 4
    local o=$WORK/$sys-$name.txt
    timeout "$RUN_TIMEOUT" redis-benchmark -h "$host" -p "$port" --csv "$@" >"$o" 2>&1
    cat "$o" >>"$LOG"
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    local line
    line=$(grep -E '^"(SET|GET)"' "$o" | tail -1 | tr -d '"')
    if [ -z "$line" ]; then
        record "$sys" "$name" - - - "failed (see $o)"
    else
        echo "$line" | awk -F, -v s="$sys" -v n="$name" '{printf "%s\t%s\t%.0f\t%.3f\t%.3f\t\n", s, n, $2, $5, $7}' >>"$RES"
    fi
    tail -1 "$RES" >&2
}

redis_run() { # workload-name, then redis-benchmark arguments
    local name=$1; shift
    rb_run redis "$name" 127.0.0.1 "$REDIS_PORT" "$@"
}

run_redis() {
    local dir=$WORK/redis
    rm -rf "$dir"; mkdir -p "$dir"
    port_free 127.0.0.1 "$REDIS_PORT" || die "127.0.0.1:$REDIS_PORT in use"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$dir" --save "" \
        --appendonly yes --appendfsync always --daemonize no --maxclients 2000 \
        >>"$dir/redis.log" 2>&1 &
    PIDS+=($!)
    local ok=""
    for _ in $(seq 1 100); do
        if timeout 2 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then ok=1; break; fi
        sleep 0.1
    done
    [ -n "$ok" ] || die "redis-server did not start (log in $dir)"
    log "redis: up (pid ${PIDS[*]}), load $(cut -d' ' -f1-3 /proc/loadavg)"
    local common=(-d $VAL -r $KEYSPACE)
    redis_run put1   -t set -c 1 -n "$N1" "${common[@]}"
    redis_run put100 -t set -c 100 -n "$N100" "${common[@]}"
    redis_run putmax -t set -c "$CMAX" -n "$N500" "${common[@]}"
    redis_run getl   -t get -c 100 -n "$NREAD" "${common[@]}"
    redis_run gets   -t get -c 100 -n "$NREAD" "${common[@]}"
    stop_all
}

# --- 5b. TLS_MODE: the cost of TLS ---------------------------------------------
# TLS_MODE=1 runs only ballot, with TLS on every port (client, peer,
# metrics; certificates from scripts/tls-certs.sh) and without, in
# TLS_ROUNDS rounds that alternate off and on, so that the noise of a
# shared machine falls on both alike. The client is redis-benchmark for
# both (its --tls is OpenSSL in C; `ballot bench` relays TLS through a
# thread per connection, which would measure the relay), against the
# leader: puts with 1 and TLS_C clients, then linearizable gets.
leader_host() {
    local i
    for i in 1 2 3; do
        if timeout 5 redis-cli -h "127.0.0.$i" -p "$BALLOT_PORT" "${RB_TLS[@]}" \
            INFO raft 2>/dev/null | grep -q '^role:leader'; then
            echo "127.0.0.$i"; return 0
        fi
    done
    return 1
}

run_tls_mode() {
    local certs=$WORK/certs round mode host
    rm -rf "$certs"
    bash "$REPO/scripts/tls-certs.sh" --san "IP:127.0.0.2,IP:127.0.0.3" "$certs" 1 2 3 client ||
        die "cannot make certificates"
    local tls_cli=(--tls --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key")
    local tls_node=(--tls_cert_file "$certs/node-@ID@.crt" --tls_key_file "$certs/node-@ID@.key"
                    --tls_ca_file "$certs/ca.crt")
    local common=(-d $VAL -r $KEYSPACE)
    for round in $(seq 1 "$TLS_ROUNDS"); do
        for mode in off on; do
            if [ "$mode" = on ]; then
                CLI_TLS=("${tls_cli[@]}"); RB_TLS=("${tls_cli[@]}")
                start_ballot ballot-tls "${tls_node[@]}"
            else
                CLI_TLS=(); RB_TLS=()
                start_ballot ballot
            fi
            host=$(leader_host) || die "no leader for redis-benchmark"
            log "TLS $mode, round $round: leader $host"
            rb_run "tls-$mode" "put1-r$round" "$host" "$BALLOT_PORT" "${RB_TLS[@]}" -t set -c 1 -n "$N1" "${common[@]}"
            rb_run "tls-$mode" "putc-r$round" "$host" "$BALLOT_PORT" "${RB_TLS[@]}" -t set -c "$TLS_C" -n "$N100" "${common[@]}"
            rb_run "tls-$mode" "getc-r$round" "$host" "$BALLOT_PORT" "${RB_TLS[@]}" -t get -c "$TLS_C" -n "$NREAD" "${common[@]}"
            stop_all
        done
    done
}

tls_table() {
    python3 - "$RES" "$STAMP" "$TLS_C" "$TLS_ROUNDS" <<'EOF'
import sys, statistics
res, stamp, c, rounds = sys.argv[1:]
d = {}
for line in open(res):
    s, w, r, p50, p99 = (line.rstrip("\n").split("\t") + [""] * 6)[:5]
    if r in ("-", ""): continue
    d.setdefault((s, w.rsplit("-r", 1)[0]), []).append((float(r), float(p50), float(p99)))
print("## ballot with and without TLS, %s UTC (%s interleaved rounds, medians)" % (stamp, rounds))
print()
print("| workload | off req/s | on req/s | on/off req/s | off p50 ms | on p50 ms | off p99 ms | on p99 ms |")
print("|---|---|---|---|---|---|---|---|")
for w, name in (("put1", "put, 1 client"), ("putc", "put, %s clients" % c), ("getc", "get, linearizable, %s clients" % c)):
    off, on = d.get(("tls-off", w)), d.get(("tls-on", w))
    if not off or not on:
        print("| %s | — | — | — | — | — | — | — |" % name); continue
    m = lambda xs, i: statistics.median(x[i] for x in xs)
    print("| %s | %s | %s | %.2f× | %.2f | %.2f | %.2f | %.2f |" % (name, format(int(m(off, 0)), ","),
          format(int(m(on, 0)), ","), m(on, 0) / m(off, 0), m(off, 1), m(on, 1), m(off, 2), m(on, 2)))
print()
print("Every round's numbers (req/s, p50, p99):")
for (s, w), xs in sorted(d.items()):
    print("- %s %s: %s" % (s, w, "; ".join("%.0f, %.2f, %.2f" % x for x in xs)))
EOF
}

# --- 6. the table -------------------------------------------------------------
table() {
    python3 - "$RES" "$FLOOR" "$CMAX" "$CONNS_MAX" "$STAMP" "$LOADS" <<'EOF'
import sys
res, floorf, cmax, cm, stamp, loads = sys.argv[1:]
floors = [l.split() for l in open(floorf) if len(l.split()) == 6]
d = {}
notes = []
for line in open(res):
    s, w, r, p50, p99, note = (line.rstrip("\n").split("\t") + [""] * 6)[:6]
    f = lambda x: None if x in ("-", "") else float(x)
    d[(s, w)] = (f(r), f(p50), f(p99))
    if note: notes.append("%s %s: %s" % (s, w, note))
W = [("put1", "put, 1 client"), ("put100", "put, 100 clients / 10 conns"),
     ("putmax", "put, %s clients / %s conns" % (cmax, cm)),
     ("getl", "get, linearizable, 100 / 10"), ("gets", "get, stale, 100 / 10")]
def cell(s, w):
    r, a, b = d.get((s, w), (None,) * 3)
    if r is None: return "— | — | —"
    return "%s | %.2f | %.2f" % (format(int(r), ","), a, b)
def ratio(x, y, fmt="%.2f×"):
    return fmt % (x / y) if x and y else "—"
print("## ballot vs etcd vs Redis, %s UTC" % stamp)
print()
print("| workload | ballot req/s | p50 ms | p99 ms | etcd req/s | p50 ms | p99 ms | Redis req/s | p50 ms | p99 ms | ballot/etcd req/s | ballot/etcd p99 | ballot/Redis req/s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for w, name in W:
    b, e, r = d.get(("ballot", w), (None,) * 3), d.get(("etcd", w), (None,) * 3), d.get(("redis", w), (None,) * 3)
    print("| %s | %s | %s | %s | %s | %s | %s |" % (name, cell("ballot", w), cell("etcd", w), cell("redis", w),
          ratio(b[0], e[0]), ratio(b[2], e[2]), ratio(b[0], r[0])))
print()
floor = None
for when, fs50, fs99, fsr, rt50, rt99 in floors:
    fs50, fs99, fsr, rt50, rt99 = map(float, (fs50, fs99, fsr, rt50, rt99))
    f = fs50 + rt50
    floor = f if floor is None else min(floor, f)
    print("Floor %s the runs (same disk): 256 B append + fdatasync p50 %.0f µs, p99 %.0f µs (%s syncs/s); "
          "loopback TCP round trip p50 %.0f µs, p99 %.0f µs; fsync + round trip = %.0f µs "
          "(fsync + 2 round trips = %.0f µs)." % (when, fs50, fs99, format(int(fsr), ","), rt50, rt99, f, fs50 + 2 * rt50))
    print()
floor = floor or float("nan")
print("Load average (1/5/15 min) when each system started: %s." % loads)
print()
print("Targets (issue 5):")
def t(ok): return "MET" if ok else "NOT MET"
for w in ("put100", "putmax"):
    b, e = d.get(("ballot", w)), d.get(("etcd", w))
    if b and e and None not in b + e:
        print("- %s: throughput %.2f× etcd (target ≥ 2×): %s; p99 %.2f× etcd's (target ≤ 0.5×): %s"
              % (w, b[0] / e[0], t(b[0] >= 2 * e[0]), b[2] / e[2], t(b[2] <= 0.5 * e[2])))
b = d.get(("ballot", "put1"))
if b and b[1] is not None:
    print("- put1: p50 %.0f µs = %.2f× the fsync + round-trip floor of %.0f µs (target ≤ 1.3×): %s"
          % (b[1] * 1000, b[1] * 1000 / floor, floor, t(b[1] * 1000 <= 1.3 * floor)))
b, e = d.get(("ballot", "getl")), d.get(("etcd", "getl"))
if b and e and None not in b + e:
    print("- getl: throughput %.2f× etcd (target ≥ 2×): %s" % (b[0] / e[0], t(b[0] >= 2 * e[0])))
print()
print("Redis is one node (no replication), driven by redis-benchmark: one connection per client, "
      "random keys `key:__rand_int__` (16 B) over the 1,000,000-key space, so its GETs mostly miss "
      "(~14% of the keys exist); its two get rows are the same command run twice. etcd's range "
      "benchmark reads one key (key:042042, 256 B value); ballot's gets are uniform over the keys the "
      "puts wrote. ballot and etcd pipeline clients over the connections (clients / conns).")
print("Target verdicts use the lower of the two floors.")
if notes:
    print()
    print("Notes: " + "; ".join(notes) + ".")
EOF
}

# --- main ---------------------------------------------------------------------
T0=$(date +%s)
CLI_TLS=()
RB_TLS=()
if [ -n "${TLS_MODE:-}" ]; then
    build_ballot
    log "TLS mode: work dir $WORK; N1=$N1 N100=$N100 NREAD=$NREAD TLS_C=$TLS_C TLS_ROUNDS=$TLS_ROUNDS"
    run_tls_mode
    TABLE=$OUT/compare-tls-$STAMP.md
    {
        tls_table
        echo
        echo "Machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at the end; ballot $(git -C "$REPO" rev-parse --short HEAD); $(openssl version)."
        echo "Raw results: $RES; log: $LOG. Took $(( $(date +%s) - T0 )) s."
    } | tee "$TABLE"
    exit 0
fi
[ -n "${SKIP_INSTALL:-}" ] || install_all
build_ballot
command -v etcd >/dev/null || die "etcd not installed"
command -v redis-server >/dev/null || die "redis-server not installed"
log "work dir $WORK; N1=$N1 N100=$N100 N500=$N500 NREAD=$NREAD CMAX=$CMAX"
FLOOR=$WORK/floor-$STAMP.txt
: >"$FLOOR"
floor before
LOADS=""
for s in $SYSTEMS; do
    LOADS+="${LOADS:+; }$s $(cut -d' ' -f1-3 /proc/loadavg)"
    "run_$s"
done
floor after
TABLE=$OUT/compare-$STAMP.md
table | tee "$TABLE"
{
    echo
    echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/{print $2}') GiB; $(. /etc/os-release; echo "$PRETTY_NAME"); kernel $(uname -r); ballot $(git -C "$REPO" rev-parse --short HEAD); etcd $(etcd --version | head -1 | awk '{print $3}'); $(redis-server --version | awk '{print $1, $3}')."
    echo "Raw results: $RES; log: $LOG. Took $(( $(date +%s) - T0 )) s."
} | tee -a "$TABLE"
log "table written to $TABLE"
