#!/usr/bin/env bash
# cluster-sim's own speed: simulated seconds per wall second (and per CPU second) and peak RSS,
# for 8 h100 replicas on the whole Azure 2023 conversation trace (19,366 requests) at 0.85 load,
# every registered policy (the oracle excluded: it simulates every replica's future per request).
# The speed lines go to stderr; the tables to /dev/null.
#   bench/cluster_sim/speed.sh [path/to/eta] [exact|hidden]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
eta="${1:-$repo/build/eta}"
lengths="${2:-exact}"
"$eta" cluster-sim --replicas 8xh100 --workload azure-conv --load 0.85 --lengths "$lengths" \
  --policy round-robin,random,least-request,power-of-two,session,llm-d,cache-aware,eta \
  2>&1 >/dev/null | grep -v '^$'
