#!/usr/bin/env python3
"""Table of bench/cluster_sim/late_binding.sh's runs: per cluster x workload (x seed), each
policy's p50/p90/p99 TTFT and E2E, completed/offered, requests held, and the p99 TTFT and
completed-throughput ratios against the early-binding oracle; the idle floor (p99 TTFT at load
0.02) and what 0.8 x the oracle's p99 would need.
Usage: late_binding_summary.py OUT [OUT2 ...]  (runs of several OUT folders side by side: the
label gets the folder's name when more than one is given)"""
import glob
import json
import os
import re
import sys


def runs_of(path):
    with open(path) as f:
        return json.load(f)["runs"]


def fmt(x):
    return f"{x:,.0f}"


def main():
    dirs = sys.argv[1:] or ["bench/cluster_sim/results/late_binding"]
    rows = {}
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "run_*_s*.json"))):
            m = re.match(r"run_(.+)_s(\d+)\.json", os.path.basename(path))
            key = (m.group(1), int(m.group(2)))
            floor_path = os.path.join(d, f"floor_{m.group(1)}_s{m.group(2)}.json")
            entry = rows.setdefault(key, {"runs": [], "floor": None})
            if os.path.exists(floor_path) and entry["floor"] is None:
                entry["floor"] = runs_of(floor_path)[0]["ttft_ms"]["p99"]
            busy_path = os.path.join(d, f"busy_{m.group(1)}_s{m.group(2)}.json")
            busy = runs_of(busy_path) if os.path.exists(busy_path) else []
            for r in busy:
                r["policy"] += " (busy rule)"
            for r in runs_of(path) + busy:
                if len(dirs) > 1 and r["policy"] != "oracle":
                    r = dict(r, label_dir=os.path.basename(os.path.normpath(d)))
                if r["policy"] == "oracle" and any(x["policy"] == "oracle" for x in entry["runs"]):
                    continue
                entry["runs"].append(r)
    print("| cluster_workload | seed | policy | TTFT p50 / p90 / p99 (ms) | E2E p50 / p90 / p99 (ms)"
          " | done/offered | held | p99 TTFT / oracle | done / oracle's |")
    print("|---|---:|---|---|---|---:|---:|---:|---:|")
    verdicts = []
    for (tag, seed), entry in sorted(rows.items()):
        oracle = next((r for r in entry["runs"] if r["policy"] == "oracle"), None)
        for r in entry["runs"]:
            t, e = r["ttft_ms"], r["e2e_ms"]
            name = r["policy"]
            if "label_dir" in r:
                name += f" ({r['label_dir']})"
            held = r.get("late_held", "–") if "+late" in r["label"] else "–"
            ratio_t = t["p99"] / oracle["ttft_ms"]["p99"] if oracle else float("nan")
            ratio_d = (r["request_throughput_rps"] / oracle["request_throughput_rps"]
                       if oracle else float("nan"))
            print(f"| {tag} | {seed} | {name} | {fmt(t['p50'])} / {fmt(t['p90'])} / {fmt(t['p99'])}"
                  f" | {fmt(e['p50'])} / {fmt(e['p90'])} / {fmt(e['p99'])}"
                  f" | {r['request_throughput_rps'] / r['rate_rps']:.3f} | {held}"
                  f" | {ratio_t:.2f} | {ratio_d:.3f} |")
        if oracle and entry["floor"] is not None:
            o = oracle["ttft_ms"]["p99"]
            verdicts.append(f"- {tag} seed {seed}: oracle p99 TTFT {fmt(o)} ms, goal <= {fmt(0.8 * o)} ms,"
                            f" idle floor {fmt(entry['floor'])} ms"
                            f" ({entry['floor'] / o:.2f} x the oracle's)")
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
