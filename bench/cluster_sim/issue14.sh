#!/bin/sh
# Issue 14's cluster-sim measurements (docs/benchmarks.md §4, "The 2026 routers on the honest
# load axis"), bounded: the first N requests of each trace (default 2000), seed 0, hidden lengths.
#   1. per cluster x trace: --find-capacity for least-request, eta, llm-d-latency, least-load
#      (sustained and goodput capacity under the trace's own arrivals)
#   2. the same four policies and the oracle at 0.7 and 0.9 of least-request's sustained
#      capacity (--capacity-rps: the figure step 1 measured)
#   3. the output-length predictor's median relative error against the best constant, per
#      workload and seeds 0 and 1 (least-request, load 0.7 of the isolated capacity; the
#      predictor is the same for every policy)
#   4. goodput capacity of least-request and eta on 2xh100+2xa100 azure-conv under SLOs from
#      tight to loose (TTFT 250/500/1000 ms, TPOT 100 ms)
# LENGTHS=hidden-scaled reruns it with the leaky max_tokens of the figures before 2026-12-02.
# Usage: bench/cluster_sim/issue14.sh build/eta [OUT]
set -eu
ETA=${1:-build/eta}
OUT=${2:-bench/cluster_sim/results/issue14}
N=${N:-2000}
LENGTHS=${LENGTHS:-hidden}
POLICIES=least-request,eta,llm-d-latency,least-load
mkdir -p "$OUT"
for cluster in 2xh100,2xa100 4xh100; do
  for wl in azure-conv mooncake-conv; do
    arch=llama-2-7b
    [ "$wl" = mooncake-conv ] && arch=llama-3.1-8b
    tag="$(echo "$cluster" | tr ',' '+')_$wl"
    common="--replicas $cluster --arch $arch --workload $wl --lengths $LENGTHS --num-requests $N"
    # shellcheck disable=SC2086
    "$ETA" cluster-sim $common --find-capacity --policy "$POLICIES" \
      --json "$OUT/capacity_$tag.json" > "$OUT/capacity_$tag.md"
    basis=$(python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['capacity']; \
print([p['sustained_rps'] for p in c['policies'] if p['policy']=='least-request'][0])" \
      "$OUT/capacity_$tag.json")
    # shellcheck disable=SC2086
    "$ETA" cluster-sim $common --load 0.7,0.9 --capacity-rps "$basis" \
      --policy "$POLICIES,eta+late,oracle" --json "$OUT/loads_$tag.json" > "$OUT/loads_$tag.md"
  done
done
for seed in 0 1; do
  for wl in azure-conv mooncake-conv synthetic shared-prefix multi-turn bursty-mix; do
    arch=llama-2-7b
    case "$wl" in mooncake-conv | bursty-mix) arch=llama-3.1-8b ;; esac
    sfx=""
    [ "$seed" = 0 ] || sfx="_s$seed"
    "$ETA" cluster-sim --replicas 2xh100,2xa100 --arch "$arch" --workload "$wl" \
      --lengths "$LENGTHS" --num-requests "$N" --seed "$seed" --load 0.7 --load-basis isolated \
      --policy least-request --json "$OUT/output_$wl$sfx.json" > "$OUT/output_$wl$sfx.md"
  done
done
for ttft in 250 500 1000; do
  "$ETA" cluster-sim --replicas 2xh100,2xa100 --arch llama-2-7b --workload azure-conv \
    --lengths "$LENGTHS" --num-requests "$N" --find-capacity --policy least-request,eta \
    --slo "ttft:$ttft,tpot:100" --json "$OUT/slo_${ttft}.json" > "$OUT/slo_${ttft}.md"
done
