#!/usr/bin/env bash
# The policy study matrix: {2xh100,2xa100; 4xh100} x {azure-conv (llama-2-7b), mooncake-conv
# (llama-3.1-8b: its prompts are long), shared-prefix (llama-2-7b)} at loads 0.5, 0.7, 0.85 and
# 0.95 of each cluster's capacity, hidden output lengths, the first 2000 requests, seed 0;
# policies round-robin, least-request, llm-d, cache-aware, eta and the oracle. One cluster-sim
# run per cluster x workload (two at a time); then matrix_summary.py writes the tables of
# ratios. About 3 minutes of CPU (the oracle is most of it). Writes
#   results/matrix_<cluster>_<workload>.{md,json,svg}  one run each
#   results/floor_<cluster>_<workload>.json  the oracle at 0.02 load: each request all but
#     alone on the replica best for it, so its p99 TTFT is about the floor no router goes below
#   results/matrix.md, results/matrix.json, results/matrix.svg   the summary
#   bench/cluster_sim/study_matrix.sh [path/to/eta] [extra cluster-sim flags...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
eta="${1:-$repo/build/eta}"
shift || true
out="$here/results"
mkdir -p "$out"
policies=round-robin,least-request,llm-d,cache-aware,eta,oracle
run() {
  local cluster=$1 workload=$2 arch=$3
  local name="matrix_${cluster//,/_}_${workload}"
  "$eta" cluster-sim --replicas "$cluster" --arch "$arch" --workload "$workload" \
    --policy "$policies" --load 0.5,0.7,0.85,0.95 --lengths hidden --num-requests 2000 \
    --seed 0 --json "$out/$name.json" --svg "$out/$name.svg" "${@:4}" >"$out/$name.md"
  "$eta" cluster-sim --replicas "$cluster" --arch "$arch" --workload "$workload" \
    --policy oracle --load 0.02 --lengths hidden --num-requests 2000 --seed 0 \
    --json "$out/floor_${cluster//,/_}_${workload}.json" "${@:4}" >/dev/null
}
for cluster in 2xh100,2xa100 4xh100; do
  run "$cluster" azure-conv llama-2-7b "$@" &
  run "$cluster" mooncake-conv llama-3.1-8b "$@" &
  wait
  run "$cluster" shared-prefix llama-2-7b "$@"
done
python3 "$here/matrix_summary.py" "$out"/matrix_*_*.json --floor "$out"/floor_*.json \
  --md "$out/matrix.md" \
  --json "$out/matrix.json" --svg "$out/matrix.svg"
