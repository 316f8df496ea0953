#!/usr/bin/env bash
# A soak run: a 3-node ballot cluster with default settings under its
# maximum sustained load (mixed reads, overwrites, new keys, deletes) for a
# given time, sampled every 10 s into a CSV and a PNG plot, ending with a
# verdict line (no node halted, memory and disk bounded, every acknowledged
# write present). docs/performance.md, "Soak".
#
#   scripts/soak.sh                      # 30 minutes, results in out/soak/
#   scripts/soak.sh --duration 120 --ci  # the CI version: a small map and
#                                        # quota, so the store fills,
#                                        # compacts and takes writes again
#
# Flags: --duration S (1800), --interval S (10), --clients N (64),
# --value-size B (100), --build DIR (build), --out DIR (out/soak), --ci,
# --sanitized (ASan build), --keep (keep the data directories); any other
# --flag VALUE is passed to every ballotd. Needs /usr/bin/python3 with
# python3-matplotlib (scripts/deps.sh). Exit code 0 when the verdict passes.
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 scripts/soak.py "$@"
