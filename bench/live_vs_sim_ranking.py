#!/usr/bin/env python3
"""Does the live router confirm cluster-sim's ranking? (issue 14's last goal)

Reads the per-router `eta bench` reports a `make demo` run wrote (demo-out/POLICY.json: live
`eta route --policy POLICY` in front of four `eta vllm-sim`, bursty-mix at 0.85 of the sustained
capacity, the warm-up left out), runs `eta cluster-sim` on the same workload, cluster, lengths,
seed, load and capacity for the same policies, and prints both rankings of p99 TTFT and p99 E2E
with their Spearman rank correlation, and eta's ratios to the 2026 routers in both.

Usage: bench/live_vs_sim_ranking.py [DEMO_OUT] [ETA]   (default demo-out build/eta)
Standard library only.
"""
import json
import os
import subprocess
import sys
import tempfile

OUT = sys.argv[1] if len(sys.argv) > 1 else "demo-out"
ETA = sys.argv[2] if len(sys.argv) > 2 else "build/eta"
POLICIES = ["round-robin", "least-request", "llm-d", "cache-aware", "llm-d-latency",
            "least-load", "eta"]
CLUSTER, ARCH = "2xh100,2xa100", "llama-3.1-8b"  # scripts/demo.py's replicas


def ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    r = [0] * len(values)
    for rank, i in enumerate(order):
        r[i] = rank + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    d2 = sum((x - y) ** 2 for x, y in zip(ra, rb))
    return 1 - 6 * d2 / (n * (n * n - 1))


live = {}
for p in POLICIES:
    path = os.path.join(OUT, p + ".json")
    if os.path.exists(path):
        with open(path) as f:
            live[p] = json.load(f)
if len(live) < 3:
    sys.exit("need the demo's reports of at least three policies in %s" % OUT)
pols = [p for p in POLICIES if p in live]
run = next(iter(live.values()))["run"]
with tempfile.TemporaryDirectory() as tmp:
    jpath = os.path.join(tmp, "sim.json")
    cmd = [ETA, "cluster-sim", "--replicas", CLUSTER, "--arch", ARCH, "--workload",
           run["workload"], "--lengths", run["lengths"], "--seed", str(run["seed"]),
           "--load", repr(run["load"]), "--load-basis", "sustained", "--capacity-rps",
           repr(run["capacity_rps"]), "--policy", ",".join(pols), "--json", jpath]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(jpath) as f:
        sim = {r["policy"]: r for r in json.load(f)["runs"]}
print("Same workload (%s, lengths %s, seed %s, load %g of %.2f req/s) live and in cluster-sim:"
      % (run["workload"], run["lengths"], run["seed"], run["load"], run["capacity_rps"]))
print("`%s`\n" % " ".join(cmd))
for metric in ("ttft_ms", "e2e_ms"):
    lv = [live[p][metric]["p99"] for p in pols]
    sv = [sim[p][metric]["p99"] for p in pols]
    lr, sr = ranks(lv), ranks(sv)
    print("| policy | live p99 %s | live rank | cluster-sim p99 %s | cluster-sim rank |"
          % (metric, metric))
    print("|---|---:|---:|---:|---:|")
    for i, p in enumerate(pols):
        print("| %s | %.0f | %d | %.0f | %d |" % (p, lv[i], lr[i], sv[i], sr[i]))
    print("\nSpearman rank correlation (%s p99): %.2f" % (metric, spearman(lv, sv)))
    for other in ("llm-d-latency", "least-load"):
        if other in pols and "eta" in pols:
            print("eta / %s: live %.2f, cluster-sim %.2f" % (
                other, live["eta"][metric]["p99"] / live[other][metric]["p99"],
                sim["eta"][metric]["p99"] / sim[other][metric]["p99"]))
    print()
