#!/usr/bin/env bash
# The 14 `eta cluster-sim --policy all --json` runs that a change of the engine, the policies or
# the router core must leave byte-identical (docs/benchmarks.md, "Identical results"). Writes one
# JSON per configuration into OUT_DIR; compare two directories with `cmp` (or diff -r).
#   bench/cluster_sim/identity.sh ETA_BINARY OUT_DIR
set -euo pipefail
eta=${1:?usage: identity.sh ETA_BINARY OUT_DIR}
out=${2:?usage: identity.sh ETA_BINARY OUT_DIR}
mkdir -p "$out"
run() {
  local name=$1
  shift
  "$eta" cluster-sim --policy all --json "$out/$name.json" "$@" >/dev/null 2>&1
}
arch=(--arch llama-3.1-8b)
for w in azure-conv mooncake-conv shared-prefix bursty-mix; do
  run "$w-mixed" --replicas 2xh100,2xa100 --workload "$w" "${arch[@]}" --lengths hidden \
    --num-requests 600 --load 0.85
  run "$w-8xh100" --replicas 8xh100 --workload "$w" "${arch[@]}" --lengths exact \
    --num-requests 800 --load 0.5,0.95
done
run mooncake-overload --replicas 2xh100,2xa100 --workload mooncake-conv "${arch[@]}" \
  --lengths hidden --num-requests 600 --load 1.3
run azure-seed3 --replicas 2xh100,2xa100 --workload azure-conv "${arch[@]}" --lengths hidden \
  --num-requests 600 --load 0.7 --seed 3
# Small KV caches that preempt and evict: llama-2-7b (4,096-token context fits 400 blocks).
run small-kv --replicas h100:num_gpu_blocks=400,a100:num_gpu_blocks=500 --workload azure-conv \
  --lengths hidden --num-requests 600 --load 0.9
run small-kv-prefix --replicas h100:num_gpu_blocks=600,h100:num_gpu_blocks=600,a100 \
  --workload shared-prefix --lengths hidden --num-requests 600 --load 0.9,1.2
run small-kv-routers --replicas h100:num_gpu_blocks=300,a100:max_num_seqs=8,h100 \
  --workload azure-conv --lengths hidden --num-requests 600 --load 0.85 --routers 2
run full-state --replicas 8xh100 --workload azure-conv "${arch[@]}" --lengths hidden \
  --num-requests 800 --load 0.85 --full-router-state
