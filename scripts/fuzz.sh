#!/usr/bin/env bash
# Runs every libFuzzer target (docs/fuzzing.md): builds them with clang in
# $FUZZ_BUILD (build-fuzz), then runs each in turn, at low priority, for
# SECONDS (or until FUZZ_RUNS executions, whichever comes first), growing a
# working corpus beside the build from the seeds kept in the tree. Prints
# one line per target: executions, executions per second, coverage (edges
# and features) and crashes; the inputs of any crash are left in the
# target's work directory. Exits 1 if a target crashed. The build is
# optimized (CI replays the corpora from its own Debug build).
#
#   bash scripts/fuzz.sh 60                        # every target, 60 s each
#   FUZZ_RUNS=10000000 bash scripts/fuzz.sh 3600   # 10 million runs each
#   bash scripts/fuzz.sh 30 fuzz_wal fuzz_config   # some targets only
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
build=${FUZZ_BUILD:-build-fuzz}
all=(fuzz_resp fuzz_codec fuzz_handshake fuzz_wal fuzz_snapshot fuzz_config
     fuzz_kv_cmd fuzz_tls_member)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DBALLOT_FUZZ=ON >/dev/null || exit 1
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >/dev/null ||
    exit 1

seeds_of() {
    case $1 in
    fuzz_kv_cmd) echo tests/kv/corpus/cmd ;;
    *) echo "tests/fuzz/corpus/${1#fuzz_}" ;;
    esac
}

status=0
printf '%-15s %12s %9s %7s %7s %s\n' target executions exec/s cov ft crashes
for t in "${targets[@]}"; do
    bin=$(find "$build/tests" -name "$t" -type f -perm -u+x | head -1)
    [ -n "$bin" ] || { echo "$t: not built"; status=1; continue; }
    work=$build/fuzz-work/$t
    mkdir -p "$work/corpus"
    runs=()
    [ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
    # A config file's interesting structure fits in a few lines; longer
    # inputs only slow every run down.
    [ "$t" = fuzz_config ] && runs+=(-max_len=512)
    # The RESP target feeds each input again in reads of 1-8 bytes, copying
    # what is pending each time: its cost grows with the square of the
    # length, and every limit path is reached within 1 KiB (the first byte
    # can shrink the limits to a few bytes).
    [ "$t" = fuzz_resp ] && runs+=(-max_len=1024)
    nice -n 19 "$bin" -max_total_time="$secs" "${runs[@]}" \
        -print_final_stats=1 -artifact_prefix="$work/" \
        "$work/corpus" "$(seeds_of "$t")" >"$work/log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
    cov=$(grep -oE 'cov: [0-9]+' "$work/log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -oE 'ft: [0-9]+' "$work/log" | tail -1 | cut -d' ' -f2)
    crashes=$(find "$work" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 \
              -name 'leak-*' -o -maxdepth 1 -name 'timeout-*' | wc -l)
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        status=1
        crashes="$crashes (exit $rc, see $work/log)"
    fi
    printf '%-15s %12s %9s %7s %7s %s\n' "$t" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "$crashes"
done
exit $status
