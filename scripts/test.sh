#!/usr/bin/env bash
# Runs every test: a release build and an AddressSanitizer + UBSan build,
# each under ctest, then the fuzz targets (clang, libFuzzer) replaying their
# seed corpora. Ends with one summary line over all of them.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh || exit 1

jobs=$(nproc)
# Check's own per-test timeouts (4 s by default) catch hangs, not slowness:
# under the sanitizers on a loaded 2-core machine a sound test can take
# longer. ctest's timeouts still bound every test.
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4}
status=0
passed=0
failed=0
for flavour in release asan fuzz; do
    dir=build-ci-$flavour
    targets=()
    select=()
    case $flavour in
    release) opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
    asan) opts=(-DCMAKE_BUILD_TYPE=Debug -DBALLOT_SANITIZE=ON) ;;
    fuzz)
        # Open-ended fuzzing is for developers (docs/); CI replays the
        # kept corpora, so a fixed crash can never come back unnoticed.
        opts=(-DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug
              -DBALLOT_FUZZ=ON)
        targets=(--target fuzz_resp fuzz_codec fuzz_handshake fuzz_kv_cmd
                 fuzz_kv_acl fuzz_wal fuzz_snapshot fuzz_config fuzz_tls_member)
        select=(-R '^fuzz\.')
        ;;
    esac
    echo "=== $flavour build"
    t0=$SECONDS
    cmake -S . -B "$dir" "${opts[@]}" >/dev/null || exit 1
    cmake --build "$dir" -j"$jobs" "${targets[@]}" || exit 1
    echo "=== $flavour tests (built in $((SECONDS - t0)) s)"
    t0=$SECONDS
    log=$(mktemp)
    (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900 \
        "${select[@]}") | tee "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    # "100% tests passed, 0 tests failed out of 42"
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
    bad=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    passed=$((passed + ${total:-0} - ${bad:-0}))
    failed=$((failed + ${bad:-0}))
    [ -n "$line" ] || { status=1; failed=$((failed + 1)); }
    rm -f "$log"
    # CI's budget is per run: each flavour's share shows where it goes.
    echo "=== $flavour tests took $((SECONDS - t0)) s"
done
echo "summary: $passed passed, $failed failed"
exit $status
