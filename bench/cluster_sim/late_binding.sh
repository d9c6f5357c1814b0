#!/bin/sh
# Late binding (issue 14 item 5; docs/benchmarks.md §4 "Late binding"): eta, eta+late (the default
# rule, wait: the pooled queue) and the early-binding oracle at 0.9 of least-request's sustained
# capacity on issue14.sh's four cluster x trace pairs and the demo workload (bursty-mix,
# llama-3.1-8b, 2xh100,2xa100); 2,000 requests (bursty-mix has about 1,050), hidden lengths, the
# workloads' own arrivals; then eta+late with the old rule (--late-binding-rule busy) into
# busy_*.json. Also each pair's idle floor (eta at load 0.02: every request nearly alone; the
# p99 TTFT no router that sends each request to one replica can go below).
# Capacities: bench/cluster_sim/results/issue14/capacity_*.json where present (issue14.sh),
# else measured here (--find-capacity --policy least-request) into OUT.
# Usage: bench/cluster_sim/late_binding.sh build/eta [OUT]
#   SEED (0), N (2000), LOAD (0.9), POLICIES (eta,eta+late,oracle), EXTRA (more cluster-sim
#   flags, e.g. "--late-binding-fraction 0.5"), FLOOR (1: also the idle floor run), BUSY (1: also
#   the busy rule's run)
# Summary: python3 bench/cluster_sim/late_binding_summary.py OUT
set -eu
ETA=${1:-build/eta}
OUT=${2:-bench/cluster_sim/results/late_binding}
SEED=${SEED:-0}
N=${N:-2000}
LOAD=${LOAD:-0.9}
POLICIES=${POLICIES:-eta,eta+late,oracle}
EXTRA=${EXTRA:-}
FLOOR=${FLOOR:-1}
BUSY=${BUSY:-1}
CAPS=bench/cluster_sim/results/issue14
mkdir -p "$OUT"
for pair in 2xh100,2xa100:azure-conv 2xh100,2xa100:mooncake-conv 4xh100:azure-conv \
  4xh100:mooncake-conv 2xh100,2xa100:bursty-mix; do
  cluster=${pair%%:*}
  wl=${pair#*:}
  arch=llama-2-7b
  case "$wl" in mooncake-conv | bursty-mix) arch=llama-3.1-8b ;; esac
  tag="$(echo "$cluster" | tr ',' '+')_$wl"
  common="--replicas $cluster --arch $arch --workload $wl --lengths hidden --num-requests $N"
  cap="$CAPS/capacity_$tag.json"
  if [ ! -f "$cap" ]; then
    cap="$OUT/capacity_$tag.json"
    # shellcheck disable=SC2086
    [ -f "$cap" ] || "$ETA" cluster-sim $common --find-capacity --policy least-request \
      --json "$cap" > "$OUT/capacity_$tag.md"
  fi
  basis=$(python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['capacity']; \
print([p['sustained_rps'] for p in c['policies'] if p['policy']=='least-request'][0])" "$cap")
  # shellcheck disable=SC2086
  "$ETA" cluster-sim $common --seed "$SEED" --load "$LOAD" --capacity-rps "$basis" \
    --policy "$POLICIES" $EXTRA --json "$OUT/run_${tag}_s$SEED.json" > "$OUT/run_${tag}_s$SEED.md"
  if [ "$BUSY" = 1 ]; then
    # shellcheck disable=SC2086
    "$ETA" cluster-sim $common --seed "$SEED" --load "$LOAD" --capacity-rps "$basis" \
      --policy eta+late --late-binding-rule busy $EXTRA --json "$OUT/busy_${tag}_s$SEED.json" \
      > "$OUT/busy_${tag}_s$SEED.md"
  fi
  if [ "$FLOOR" = 1 ] && [ ! -f "$OUT/floor_${tag}_s$SEED.json" ]; then
    # shellcheck disable=SC2086
    "$ETA" cluster-sim $common --seed "$SEED" --load 0.02 --capacity-rps "$basis" --policy eta \
      --json "$OUT/floor_${tag}_s$SEED.json" > "$OUT/floor_${tag}_s$SEED.md"
  fi
done
