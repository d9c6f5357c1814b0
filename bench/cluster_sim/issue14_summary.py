#!/usr/bin/env python3
"""Tables for docs/benchmarks.md from bench/cluster_sim/issue14.sh's JSON (standard library).

Usage: bench/cluster_sim/issue14_summary.py [DIR]   (default bench/cluster_sim/results/issue14)
"""
import json
import os
import sys

DIR = sys.argv[1] if len(sys.argv) > 1 else "bench/cluster_sim/results/issue14"
TAGS = [("2xh100+2xa100", "azure-conv"), ("2xh100+2xa100", "mooncake-conv"),
        ("4xh100", "azure-conv"), ("4xh100", "mooncake-conv")]
OTHERS = ["llm-d-latency", "least-load", "least-request"]


def load(name):
    path = os.path.join(DIR, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def loads_runs():
    """(cluster, workload, load, {policy: run}) of every loads_*.json, in TAGS and load order."""
    for cluster, wl in TAGS:
        doc = load("loads_%s_%s.json" % (cluster, wl))
        if not doc:
            continue
        for load_ in sorted({r["load"] for r in doc["runs"]}):
            yield cluster, wl, load_, {r["policy"]: r for r in doc["runs"] if r["load"] == load_}


print("Capacity (requests/s; sustained = goodput capacity wherever both are shown equal):\n")
print("| cluster | workload | isolated | policy | sustained | goodput capacity | / least-request's goodput |")
print("|---|---|---:|---|---:|---:|---:|")
for cluster, wl in TAGS:
    doc = load("capacity_%s_%s.json" % (cluster, wl))
    if not doc:
        continue
    cap = doc["capacity"]
    pols = {p["policy"]: p for p in cap["policies"]}
    base = pols["least-request"]["goodput_rps"] or 0
    for name, p in pols.items():
        print("| %s | %s | %.2f | %s | %.2f | %.2f | %s |" % (
            cluster, wl, cap["requests_per_s"], name, p["sustained_rps"], p["goodput_rps"] or 0,
            "%.2f" % (p["goodput_rps"] / base) if base else "-"))

print("\np99 TTFT / p99 E2E (ms) at 0.7 and 0.9 of least-request's sustained capacity; ratios are "
      "eta's over the other's:\n")
print("| cluster | workload | load | eta | llm-d-latency | least-load | least-request | oracle | "
      "TTFT eta/llm-d-latency | eta/least-load | E2E eta/llm-d-latency | eta/least-load | "
      "done/offered (eta) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for cluster, wl, load_, runs in loads_runs():
    cell = {k: "%.0f / %.0f" % (r["ttft_ms"]["p99"], r["e2e_ms"]["p99"]) for k, r in runs.items()}
    eta = runs["eta"]

    def ratio(metric, other):
        o = runs.get(other)
        return "%.2f" % (eta[metric]["p99"] / o[metric]["p99"]) if o and o[metric]["p99"] else "-"
    print("| %s | %s | %g | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f |" % (
        cluster, wl, load_, cell.get("eta"), cell.get("llm-d-latency"), cell.get("least-load"),
        cell.get("least-request"), cell.get("oracle"), ratio("ttft_ms", "llm-d-latency"),
        ratio("ttft_ms", "least-load"), ratio("e2e_ms", "llm-d-latency"),
        ratio("e2e_ms", "least-load"), eta["request_throughput_rps"] / eta["rate_rps"]))

print("\nLate binding against the early-binding oracle (same runs): p99 TTFT and completed "
      "throughput of eta+late over the oracle's:\n")
print("| cluster | workload | load | eta | eta+late | oracle | TTFT eta+late/oracle | "
      "throughput eta+late/oracle | held |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for cluster, wl, load_, runs in loads_runs():
    late, oracle = runs.get("eta+late"), runs.get("oracle")
    if not late or not oracle:
        continue
    print("| %s | %s | %g | %.0f | %.0f | %.0f | %.2f | %.3f | %s |" % (
        cluster, wl, load_, runs["eta"]["ttft_ms"]["p99"], late["ttft_ms"]["p99"],
        oracle["ttft_ms"]["p99"], late["ttft_ms"]["p99"] / oracle["ttft_ms"]["p99"],
        late["request_throughput_rps"] / oracle["request_throughput_rps"],
        late.get("late_held", "-")))

print("\nOutput-length median relative error (|predicted - actual| / actual), 2xh100+2xa100, "
      "least-request, load 0.7 of the isolated capacity. Hindsight floor: the best constant "
      "chosen on the same requests; online floor: the best constant of the lengths finished "
      "before each request:\n")
print("| workload | seed | requests | point guess | capped mean (the ETA's) | hindsight floor (tokens) | "
      "online floor | point / hindsight | point / online |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for seed, sfx in [(0, ""), (1, "_s1")]:
    for wl in ["azure-conv", "mooncake-conv", "synthetic", "shared-prefix", "multi-turn",
               "bursty-mix"]:
        doc = load("output_%s%s.json" % (wl, sfx))
        if not doc:
            continue
        p = doc["runs"][0]["prediction"]
        floor = p["output_tokens_best_constant"]
        online = p.get("output_tokens_online_constant", {}).get("p50", 0)
        point = p["output_tokens_abs_rel_error"]["p50"]
        print("| %s | %d | %d | %.3f | %.3f | %.3f (%.0f) | %.3f | %.2f | %s |" % (
            wl, seed, p["output_tokens_abs_rel_error"]["count"], point,
            p["output_tokens_expected_abs_rel_error"]["p50"], floor["p50"], floor["tokens"],
            online, point / floor["p50"] if floor["p50"] else 0,
            "%.2f" % (point / online) if online else "-"))

print("\nGoodput capacity under SLOs from tight to loose, 2xh100+2xa100 azure-conv (requests/s):\n")
print("| SLO | least-request sustained | least-request goodput | eta sustained | eta goodput | "
      "eta / least-request goodput |")
print("|---|---:|---:|---:|---:|---:|")
for ttft in [250, 500, 1000]:
    doc = load("slo_%d.json" % ttft)
    if not doc:
        continue
    pols = {p["policy"]: p for p in doc["capacity"]["policies"]}
    lr, eta = pols["least-request"], pols["eta"]
    g = lambda p: p["goodput_rps"] or 0
    print("| TTFT %d ms, TPOT 100 ms | %.2f | %.2f | %.2f | %.2f | %s |" % (
        ttft, lr["sustained_rps"], g(lr), eta["sustained_rps"], g(eta),
        "%.2f" % (g(eta) / g(lr)) if g(lr) else "-"))
