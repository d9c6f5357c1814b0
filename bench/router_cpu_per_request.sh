#!/usr/bin/env bash
# The router's CPU for relaying 1,000 streamed requests (the synthetic workload, whole): one
# `eta vllm-sim --time-scale 50`,
# `ROUTER` (an eta binary: e.g. an older build to compare) as `eta route` in front of it with
# EXTRA flags (e.g. EXTRA="--threads 1"), and `eta bench --workload synthetic --rate inf
# --max-concurrency 8 --num-requests 1000` through it. Prints the router's utime+stime (/proc) in
# seconds after the run. Alternate two binaries a few times to compare them (a shared machine is
# noisy):   for i in 1 2 3; do bench/router_cpu_per_request.sh OLD/eta; \
#             EXTRA="--threads 1" bench/router_cpu_per_request.sh build/eta; done
set -euo pipefail
router=${1:?usage: router_cpu_per_request.sh ROUTER_BINARY}
eta=${ETA:-build/eta}  # the replica and the load generator
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
wait_url() {
  for _ in $(seq 200); do grep -q listening "$1" 2>/dev/null && break; sleep 0.05; done
  grep -o 'http://[0-9.:]*' "$1" | head -1
}
"$eta" vllm-sim --port 0 --time-scale 50 --model m >"$tmp/sim.out" 2>/dev/null &
sim=$(wait_url "$tmp/sim.out")
# shellcheck disable=SC2086
"$router" route --port 0 --admin-port -1 --replica "$sim" --log-level warn ${EXTRA:-} \
  >"$tmp/r.out" 2>/dev/null &
rpid=$!
r=$(wait_url "$tmp/r.out")
"$eta" bench --target "$r" --workload synthetic --rate inf --max-concurrency 8 \
  --num-requests 1000 --seed 1 --json "$tmp/b.json" --progress off >/dev/null
read -r ut st < <(awk '{print $14, $15}' "/proc/$rpid/stat")
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
print('router_cpu_s', ($ut+$st)/100, 'errors', d['errors'], 'requests', d['requests'])" "$tmp/b.json"
