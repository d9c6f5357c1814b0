#!/usr/bin/env bash
# How many requests/s and SSE chunks/s one `eta bench` process drives on one core before its own
# send lateness passes 1 ms at p99.
#
# The target is `eta vllm-sim` at a very high time scale (default 1000), so it answers almost at
# once; bench and simulator are pinned to different cores (taskset). Two ladders of wall-clock
# rates, each step a few seconds long, constant arrivals (no bursts, so lateness is the
# generator's own):
#   requests: 32-token prompts, 2-token answers  -> requests/s
#   chunks:   32-token prompts, 512-token answers -> token-bearing SSE chunks/s
# A step passes when p99 send lateness (wall) <= 1 ms and no request failed. Each ladder stops at
# the first step that fails. Rates given to bench are simulated (wall rate / time scale).
#
# Usage: bench/bench_capacity.sh [ETA_BIN]
#   env: BENCH_CPU (0), SIM_CPU (1), TIME_SCALE (1000), STEP_S (4),
#        REQUEST_RATES ("1000 2000 4000 8000 12000 16000 20000 24000"),
#        CHUNK_RATES ("50 100 150 200 250 300 400"), OUT_TOKENS (512),
#        RT_PRIO (unset; e.g. 10: run both under SCHED_FIFO with `chrt -f`, so that other work on
#        a shared machine, such as compilers, does not preempt them: needs root)
# Needs: taskset, /usr/bin/time, jq (and chrt with RT_PRIO).
set -euo pipefail

ETA_BIN=${1:-${ETA_BIN:-build/eta}}
BENCH_CPU=${BENCH_CPU:-0}
SIM_CPU=${SIM_CPU:-1}
TIME_SCALE=${TIME_SCALE:-1000}
STEP_S=${STEP_S:-4}
REQUEST_RATES=${REQUEST_RATES:-"1000 2000 4000 8000 12000 16000 20000 24000"}
CHUNK_RATES=${CHUNK_RATES:-"50 100 150 200 250 300 400"}
OUT_TOKENS=${OUT_TOKENS:-512}
RT_PRIO=${RT_PRIO:-}
rt=()
[ -n "$RT_PRIO" ] && rt=(chrt -f "$RT_PRIO")

for tool in taskset jq /usr/bin/time; do
  command -v "$tool" > /dev/null || { echo "bench_capacity.sh: needs $tool" >&2; exit 2; }
done
[ -x "$ETA_BIN" ] || { echo "bench_capacity.sh: no eta binary at $ETA_BIN" >&2; exit 2; }

work=$(mktemp -d)
sim_pid=""
cleanup() {
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2> /dev/null || true; wait "$sim_pid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The simulator: big batches so that it keeps up with many streams.
"${rt[@]}" taskset -c "$SIM_CPU" "$ETA_BIN" vllm-sim --port 0 --model cap --time-scale "$TIME_SCALE" \
  --max-num-seqs 1024 > "$work/sim.out" 2> "$work/sim.err" &
sim_pid=$!
for _ in $(seq 100); do
  url=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$work/sim.out" | head -1)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "${url:-}" ] || { echo "bench_capacity.sh: vllm-sim did not start" >&2; cat "$work/sim.err" >&2; exit 1; }

echo "# eta bench capacity: bench on CPU $BENCH_CPU, vllm-sim on CPU $SIM_CPU (time scale $TIME_SCALE)${RT_PRIO:+, SCHED_FIFO $RT_PRIO}, $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"

# run_step KIND WALL_RATE OUT -> prints one table row; returns 1 if the step fails.
run_step() {
  local kind=$1 wall_rate=$2 out=$3
  local n sim_rate json times
  n=$(awk -v r="$wall_rate" -v s="$STEP_S" 'BEGIN { printf "%d", r * s }')
  sim_rate=$(awk -v r="$wall_rate" -v t="$TIME_SCALE" 'BEGIN { printf "%.9g", r / t }')
  json="$work/$kind-$wall_rate.json"
  times="$work/$kind-$wall_rate.time"
  "${rt[@]}" taskset -c "$BENCH_CPU" /usr/bin/time -o "$times" -f "%U %S %e" "$ETA_BIN" bench \
    --target "$url" --workload "synthetic:n=$n,in=32,in_dist=fixed,out=$out,out_dist=fixed" \
    --rate "$sim_rate" --arrival constant --timeout 100000000 --progress off \
    --json "$json" > "$work/out.txt" 2> "$work/err.txt" || true
  if [ ! -s "$json" ]; then
    echo "| $kind | $wall_rate | (bench failed: $(head -c 200 "$work/err.txt")) |"
    return 1
  fi
  read -r user sys elapsed < "$times"
  jq -r --arg kind "$kind" --arg rate "$wall_rate" --arg user "$user" --arg sys "$sys" '
    (.run.wall_duration_s) as $w |
    "| \($kind) | \($rate) | \(.requests / $w | floor) | \(.run.stream_chunks / $w | floor) | " +
    "\(.run.send_lateness_wall_ms.p50 * 1000 | round / 1000) | " +
    "\(.run.send_lateness_wall_ms.p99 * 1000 | round / 1000) | " +
    "\(.run.send_lateness_wall_ms.max * 1000 | round / 1000) | \(.errors) | " +
    "\((($user | tonumber) + ($sys | tonumber)) / $w * 100 | round)% | \(.run.connections_opened) |"' \
    "$json"
  jq -e '.errors == 0 and .run.send_lateness_wall_ms.p99 <= 1.0' "$json" > /dev/null
}

# achieved KIND WALL_RATE FIELD -> requests/s or chunks/s actually achieved by that step.
achieved() {
  jq -r --arg f "$3" '(if $f == "requests" then .requests else .run.stream_chunks end)
    / .run.wall_duration_s | floor' "$work/$1-$2.json"
}

echo
echo "| ladder | wall rate (req/s) | achieved req/s | chunks/s | lateness p50 ms | p99 ms | max ms | errors | bench CPU | connections |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
best_requests=0
for r in $REQUEST_RATES; do
  if run_step requests "$r" 2; then best_requests=$(achieved requests "$r" requests); else break; fi
done
best_chunks=0
for r in $CHUNK_RATES; do
  if run_step chunks "$r" "$OUT_TOKENS"; then best_chunks=$(achieved chunks "$r" chunks); else break; fi
done
echo
echo "highest passing step (p99 send lateness <= 1 ms, no errors), as achieved:" \
  "$best_requests requests/s; $best_chunks chunks/s ($OUT_TOKENS-token streams)"
echo "(when achieved < the wall rate, the simulator, not bench, set the pace: see bench CPU)"
