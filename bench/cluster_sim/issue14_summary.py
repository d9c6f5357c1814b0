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
for cluster, wl in TAGS:
    doc = load("loads_%s_%s.json" % (cluster, wl))
    if not doc:
        continue
    for load_ in sorted({r["load"] for r in doc["runs"]}):
        runs = {r["policy"]: r for r in doc["runs"] if r["load"] == load_}
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

print("\nOutput-length median relative error (|predicted - actual| / actual), 2xh100+2xa100, "
      "least-request, load 0.7 of the isolated capacity:\n")
print("| workload | requests | point guess | capped mean (the ETA's) | best constant (tokens) | point / floor |")
print("|---|---:|---:|---:|---:|---:|")
for wl in ["azure-conv", "mooncake-conv", "synthetic", "shared-prefix", "multi-turn", "bursty-mix"]:
    doc = load("output_%s.json" % wl)
    if not doc:
        continue
    p = doc["runs"][0]["prediction"]
    floor = p["output_tokens_best_constant"]
    print("| %s | %d | %.3f | %.3f | %.3f (%.0f) | %.2f |" % (
        wl, p["output_tokens_abs_rel_error"]["count"], p["output_tokens_abs_rel_error"]["p50"],
        p["output_tokens_expected_abs_rel_error"]["p50"], floor["p50"], floor["tokens"],
        p["output_tokens_abs_rel_error"]["p50"] / floor["p50"] if floor["p50"] else 0))
