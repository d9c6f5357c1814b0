#!/usr/bin/env bash
# The policy study at small scale: 2xh100 + 2xa100 serving llama-2-7b, the first 2000 requests of
# the Azure 2023 conversation trace (trace timing scaled to each load), hidden output lengths,
# every policy plus the oracle at 0.5 and 0.85 of the cluster's capacity. About 5 s on one core.
# Writes results/study_small.{md,json,svg}.
#   bench/cluster_sim/study.sh [path/to/eta] [extra cluster-sim flags...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
eta="${1:-$repo/build/eta}"
shift || true
out="$here/results"
mkdir -p "$out"
"$eta" cluster-sim --replicas 2xh100,2xa100 --workload azure-conv --policy all \
  --load 0.5,0.85 --lengths hidden --num-requests 2000 \
  --json "$out/study_small.json" --svg "$out/study_small.svg" "$@" | tee "$out/study_small.md"
