#!/usr/bin/env python3
"""KV-cache events in cluster-sim (issue 15): prefix hit rate and p99 TTFT with the routers' own
prefix index vs the replicas' events (delivered after a delay), with 1 and 4 routers.

usage: bench/kv_events/cluster_sim.py [--eta build/eta] [--seeds 0,1,2] [--requests 2000]
Prints one markdown table per workload (means over the seeds; per-seed values in brackets)."""

import argparse
import json
import os
import statistics
import subprocess
import tempfile


def run(eta, workload, policy, routers, kv_ms, seed, requests, replicas, load):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        args = [eta, "cluster-sim", "--replicas", replicas, "--workload", workload,
                "--policy", policy, "--load", str(load), "--num-requests", str(requests),
                "--seed", str(seed), "--routers", str(routers), "--json", f.name]
        if kv_ms is not None:
            args += ["--kv-events", str(kv_ms)]
        subprocess.run(args, check=True, capture_output=True)
        r = json.load(open(f.name))["runs"][0]
    return r["prefix_hit_rate"], r["ttft_ms"]["p99"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eta", default="build/eta")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--replicas", default="4xh100")
    ap.add_argument("--load", type=float, default=0.85)
    ap.add_argument("--workloads", default="shared-prefix,multi-turn")
    ap.add_argument("--policies", default="eta,cache-aware")
    ap.add_argument("--delays", default="0,10,50,200", help="event delays in ms")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    settings = [(1, None), (4, None)]
    for d in a.delays.split(","):
        settings += [(1, float(d)), (4, float(d))]
    for workload in a.workloads.split(","):
        print("\n%s, %s, load %.2f, %d requests, seeds %s: prefix hit rate / p99 TTFT ms\n"
              % (workload, a.replicas, a.load, a.requests, a.seeds))
        print("| routers | prefix knowledge | " + " | ".join(a.policies.split(",")) + " |")
        print("|---|---|" + "---|" * len(a.policies.split(",")))
        base = {}
        for routers, kv in settings:
            cells = []
            for policy in a.policies.split(","):
                res = [run(a.eta, workload, policy, routers, kv, s, a.requests, a.replicas, a.load)
                       for s in seeds]
                hit = statistics.mean(h for h, _ in res)
                ttft = statistics.mean(t for _, t in res)
                if routers == 1 and kv is None:
                    base[policy] = hit
                rel = " (%.0f %% of 1 router)" % (100 * hit / base[policy]) if base.get(policy) else ""
                cells.append("%.3f%s / %.0f [%s]" % (
                    hit, rel, ttft, ", ".join("%.3f/%.0f" % r for r in res)))
            what = "own index" if kv is None else "KV events, %g ms" % kv
            print("| %d | %s | %s |" % (routers, what, " | ".join(cells)))


if __name__ == "__main__":
    main()
