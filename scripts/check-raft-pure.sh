#!/usr/bin/env bash
# The consensus core must stay a pure state machine: no system headers
# beyond the C library's basic ones, no I/O, clocks, global randomness or
# printing. Fails listing every offending line.
set -u
cd "$(dirname "$0")/.."
bad=0
allowed=':[0-9]+:#include <(assert|stdbool|stddef|stdint|stdlib|string)\.h>'
while IFS= read -r line; do
    echo "raft/ includes a forbidden header: $line"
    bad=1
done < <(grep -nH '^#include <' raft/*.c raft/*.h | grep -vE "$allowed")
calls='\b(time|rand|srand|random|clock_gettime|gettimeofday|printf|fprintf|puts|fopen|open|read|write|fsync|fdatasync|sleep|usleep|getenv|pthread_[a-z_]+|uv_[a-z_]+|mdb_[a-z_]+)\s*\('
while IFS= read -r line; do
    echo "raft/ calls something impure: $line"
    bad=1
done < <(grep -nHE "$calls" raft/*.c raft/*.h | grep -vE ':[0-9]+:\s*(/\*|\*)')
if grep -nH 'static [^(]*=' raft/*.c | grep -v 'static const' | grep -v '(' ; then
    echo "raft/ has mutable static (global) state"
    bad=1
fi
[ $bad -eq 0 ] && echo "raft/ is pure"
exit $bad
