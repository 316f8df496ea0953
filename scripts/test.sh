#!/usr/bin/env bash
# Runs every test: a release build and an AddressSanitizer + UBSan build,
# each under ctest. Ends with one summary line over both.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh || exit 1

jobs=$(nproc)
status=0
passed=0
failed=0
for flavour in release asan; do
    dir=build-ci-$flavour
    opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
    [ "$flavour" = asan ] && opts=(-DCMAKE_BUILD_TYPE=Debug -DBALLOT_SANITIZE=ON)
    echo "=== $flavour build"
    cmake -S . -B "$dir" "${opts[@]}" >/dev/null || exit 1
    cmake --build "$dir" -j"$jobs" || exit 1
    echo "=== $flavour tests"
    log=$(mktemp)
    (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900) | tee "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    # "100% tests passed, 0 tests failed out of 42"
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
    bad=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    passed=$((passed + ${total:-0} - ${bad:-0}))
    failed=$((failed + ${bad:-0}))
    [ -n "$line" ] || { status=1; failed=$((failed + 1)); }
    rm -f "$log"
done
echo "summary: $passed passed, $failed failed"
exit $status
