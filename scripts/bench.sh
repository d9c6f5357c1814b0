#!/usr/bin/env bash
# `make bench`: microbenchmarks, the simulator fidelity table, and the simulator's CPU cost.
# Results are recorded by hand in docs/benchmarks.md together with the machine they ran on.
set -euo pipefail
build=${1:-build}
echo "## machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
echo "## microbenchmarks (Google Benchmark)"
"$build/bench/eta_micro_bench" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
echo
echo "## upstream HTTP client overhead"
"$build/bench/eta_client_perf" | grep -vE "^\[" || true
echo
"$build/bench/eta_engine_fidelity"
echo
echo "## eta vllm-sim CPU while streaming to 256 clients"
echo "| GPU | clients | tokens each | time scale | wall s | sim CPU s | CPU % of one core | SSE events | CPU µs per event |"
echo "|---|---|---|---|---|---|---|---|---|"
python3 bench/sim_cpu.py "$build/eta" --clients 256 --tokens 500 --time-scale 1 --gpu h100
python3 bench/sim_cpu.py "$build/eta" --clients 256 --tokens 500 --time-scale 1 --gpu a100
echo
echo "## eta route CPU per request with the dashboard closed and open (docs/benchmarks.md §6)"
python3 bench/dashboard_cpu.py "$build/eta" --duration 20 --rounds 2
