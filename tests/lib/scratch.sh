# Sourced by the shell tests that run real processes: a scratch folder
# removed at exit, every process they start (added to $pids) killed at
# exit, and a block of 20 loopback ports reserved the way the C harness
# (tests/cluster/harness.c) reserves them, so concurrent tests never
# collide. After sourcing: $tmp, $base (first port of the block), $pids.
# Usage: scratch_init NAME
scratch_init() {
    tmp=$(mktemp -d "/tmp/ballot-$1-XXXXXX")
    pids=()
    trap scratch_cleanup EXIT
    base=
    local k b
    for k in $(seq 0 599); do
        b=$((20000 + ((($$ + k) % 600) * 20)))
        exec {lockfd}>"/tmp/ballot-test-ports-$b.lock"
        if flock -n "$lockfd"; then base=$b; break; fi
        exec {lockfd}>&-
    done
    [ -n "$base" ] || { echo "no free port block"; exit 1; }
}

scratch_cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
