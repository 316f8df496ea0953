#!/usr/bin/env bash
# Installs dependencies, builds ballot, and runs the main job. Until the
# server exists the main job is the consensus core at work: whole 3- and
# 5-node clusters in the deterministic simulator, under crashes, partitions,
# message loss and membership changes, with every safety property checked
# after every event.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo
echo "== One simulated 3-node cluster (seed 1); replay any seed the same way:"
build/tests/sim/sim --seed 1 --nodes 3
echo
echo "== 200 more seeds, 3 and 5 nodes, each with its own mix of faults:"
build/tests/sim/sim --seeds 200 --from 2 --quiet
