#!/usr/bin/env bash
# Live late binding: two `eta vllm-sim` h100 replicas at time scale TS (5), `eta route --policy
# POLICY --late-binding LB` in front, `eta bench --workload bursty-mix --rate RATE (85)
# --num-requests N (1052) --seed 2`; prints TTFT and E2E percentiles (ms).
#   for lb in false true; do bench/late_binding_live.sh $lb eta; done
set -euo pipefail
lb=${1:?usage: late_binding_live.sh true|false [POLICY]}
policy=${2:-eta}
eta=${ETA:-build/eta}
TS=${TS:-5} RATE=${RATE:-85} N=${N:-1052}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
wait_url() {
  for _ in $(seq 200); do grep -q listening "$1" 2>/dev/null && break; sleep 0.05; done
  grep -o 'http://[0-9.:]*' "$1" | head -1
}
replicas=()
for i in 1 2; do
  "$eta" vllm-sim --port 0 --time-scale "$TS" --model m >"$tmp/sim$i.out" 2>/dev/null &
  replicas+=(--replica "$(wait_url "$tmp/sim$i.out")")
done
"$eta" route --port 0 --admin-port -1 "${replicas[@]}" --policy "$policy" --late-binding "$lb" \
  --log-level warn >"$tmp/r.out" 2>/dev/null &
r=$(wait_url "$tmp/r.out")
"$eta" bench --target "$r" --workload bursty-mix --rate "$RATE" --num-requests "$N" --seed 2 \
  --json "$tmp/b.json" --progress off >/dev/null
python3 - "$tmp/b.json" "$lb" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("late_binding", sys.argv[2], "errors", d["errors"], "requests", d["requests"],
      "ttft p50/p99", round(d["ttft_ms"]["p50"]), round(d["ttft_ms"]["p99"]),
      "e2e p50/p99", round(d["e2e_ms"]["p50"]), round(d["e2e_ms"]["p99"]))
PY
