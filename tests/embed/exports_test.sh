#!/usr/bin/env bash
# libballot.so exports the public API (include/ballot.h) and nothing else.
# Usage: exports_test.sh LIBRARY HEADER_DIR
set -euo pipefail
lib=$1
inc=$2
syms=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort)
bad=$(grep -v '^ballot_' <<<"$syms" || true)
if [ -n "$bad" ]; then
    echo "exported beyond the public API:"; echo "$bad"; exit 1
fi
# Every function the headers declare is exported, and nothing they do not.
declared=$(grep -ho '^BALLOT_API [^(]*(' "$inc/ballot.h" "$inc/ballot/uv.h" |
    sed -E 's/.*[ *](ballot_[a-z_]+)\($/\1/' | sort)
if [ "$declared" != "$syms" ]; then
    echo "declared and exported differ:"; diff <(echo "$declared") <(echo "$syms"); exit 1
fi
echo "$(wc -l <<<"$syms") symbols exported, all ballot_* and all declared"
