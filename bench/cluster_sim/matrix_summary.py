#!/usr/bin/env python3
"""Summarises `eta cluster-sim --json` runs of the study matrix (study_matrix.sh): for each
cluster x workload x load, eta's p99 TTFT against round-robin, least-request and llm-d, and its
p99 E2E against the oracle, with the issue's targets marked; eta's prediction errors; its
replica shares and preemptions against the oracle's.

Targets (issue 4/7, at 0.85 load): p99 TTFT at least 3x lower than round-robin and
least-request and 1.5x lower than llm-d; p99 E2E within 10% of the oracle.

A floor run (--floor: the oracle at a load so low that each request is all but alone on the
replica best for it) gives about the p99 TTFT no router can go below: the p99 of the requests'
own prefill on their best replica.

Usage: matrix_summary.py RUN.json [RUN.json ...] [--floor FLOOR.json ...] [--md OUT.md]
       [--json OUT.json] [--svg OUT.svg]
"""

import argparse
import json
import math
import sys

TARGET_LOAD = 0.85
BASELINES = ["round-robin", "least-request", "llm-d", "cache-aware"]
TTFT_TARGETS = {"round-robin": 1 / 3, "least-request": 1 / 3, "llm-d": 1 / 1.5}
E2E_TARGET = 1.10


def cluster_name(config):
    counts = {}
    for r in config["replicas"]:
        counts[r["gpu"]] = counts.get(r["gpu"], 0) + 1
    return ",".join("%dx%s" % (n, g) for g, n in counts.items())


def load_floors(paths):
    floors = {}
    for path in paths or []:
        with open(path) as f:
            doc = json.load(f)
        floors[(cluster_name(doc["config"]), doc["config"]["workload"])] = min(
            r["ttft_ms"]["p99"] for r in doc["runs"])
    return floors


def load_rows(paths, floors):
    rows = []
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        cfg = doc["config"]
        by_load = {}
        for r in doc["runs"]:
            by_load.setdefault(r["load"], {})[r["policy"]] = r
        for load, runs in sorted(by_load.items()):
            if "eta" not in runs:
                continue
            eta = runs["eta"]
            row = {
                "cluster": cluster_name(cfg),
                "workload": cfg["workload"],
                "arch": cfg["arch"],
                "load": load,
                "requests": cfg["requests"],
                "idle_p99_ttft_ms": floors.get((cluster_name(cfg), cfg["workload"])),
                "p99_ttft_ms": {p: r["ttft_ms"]["p99"] for p, r in runs.items()},
                "p99_e2e_ms": {p: r["e2e_ms"]["p99"] for p, r in runs.items()},
                "share": {p: r["replica_share"] for p, r in runs.items()},
                "preemptions": {p: r["preemptions"] for p, r in runs.items()},
                "eta_prediction": eta["prediction"],
                "oracle_prediction": runs["oracle"]["prediction"] if "oracle" in runs else None,
                "eta_learned_speed": eta.get("learned_speed"),
            }
            ratios = {}
            for p in BASELINES + ["oracle"]:
                if p in runs and runs[p]["ttft_ms"]["p99"] > 0:
                    ratios["ttft_vs_" + p] = eta["ttft_ms"]["p99"] / runs[p]["ttft_ms"]["p99"]
                if p in runs and runs[p]["e2e_ms"]["p99"] > 0:
                    ratios["e2e_vs_" + p] = eta["e2e_ms"]["p99"] / runs[p]["e2e_ms"]["p99"]
            row["ratios"] = ratios
            met = {}
            for p, t in TTFT_TARGETS.items():
                if "ttft_vs_" + p in ratios:
                    met["ttft_vs_" + p] = ratios["ttft_vs_" + p] <= t
            if "e2e_vs_oracle" in ratios:
                met["e2e_vs_oracle"] = ratios["e2e_vs_oracle"] <= E2E_TARGET
            row["targets_met"] = met
            rows.append(row)
    rows.sort(key=lambda r: (r["cluster"], r["workload"], r["load"]))
    return rows


def cell(row, key, target=None):
    v = row["ratios"].get(key)
    if v is None:
        return "-"
    mark = ""
    if target is not None:
        mark = " ✓" if row["targets_met"].get(key) else " ✗"
    return "%.2f%s" % (v, mark)


def render_md(rows):
    out = []
    out.append("# Policy study matrix\n")
    out.append("Hidden output lengths, first %d requests of each workload, seed 0. Ratios are "
               "eta's p99 over the other policy's p99 (lower is better for eta). Targets at "
               "load %.2f: p99 TTFT <= 1/3 of round-robin's and least-request's, <= 1/1.5 of "
               "llm-d's; p99 E2E <= 1.10 x the oracle's (✓ met, ✗ missed). 'idle p99 TTFT': "
               "the oracle at 0.02 load, each request all but alone on the replica best for it: no "
               "router's p99 TTFT can be much lower, so a target below it cannot be met.\n"
               % (rows[0]["requests"] if rows else 0, TARGET_LOAD))
    for title, pick in [("## Targets at load %.2f" % TARGET_LOAD, lambda r: r["load"] == TARGET_LOAD),
                        ("## Every load", lambda r: True)]:
        out.append(title + "\n")
        out.append("| cluster | workload | load | idle p99 TTFT ms | eta p99 TTFT ms | /rr | /lr | "
                   "/llm-d | /cache-aware | /oracle | eta p99 E2E ms | E2E /oracle |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in filter(pick, rows):
            idle = r["idle_p99_ttft_ms"]
            out.append("| %s | %s | %.2f | %s | %.0f | %s | %s | %s | %s | %s | %.0f | %s |" % (
                r["cluster"], r["workload"], r["load"], "%.0f" % idle if idle else "-",
                r["p99_ttft_ms"]["eta"],
                cell(r, "ttft_vs_round-robin", 1), cell(r, "ttft_vs_least-request", 1),
                cell(r, "ttft_vs_llm-d", 1), cell(r, "ttft_vs_cache-aware"),
                cell(r, "ttft_vs_oracle"), r["p99_e2e_ms"]["eta"], cell(r, "e2e_vs_oracle", 1)))
        out.append("")
    out.append("## p99 TTFT and E2E of every policy (ms)\n")
    policies = BASELINES + ["eta", "oracle"]
    out.append("| cluster | workload | load | " + " | ".join("%s TTFT" % p for p in policies) +
               " | " + " | ".join("%s E2E" % p for p in policies) + " |")
    out.append("|---|---|---:|" + "---:|" * (2 * len(policies)))
    for r in rows:
        t = " | ".join("%.0f" % r["p99_ttft_ms"][p] if p in r["p99_ttft_ms"] else "-"
                       for p in policies)
        e = " | ".join("%.0f" % r["p99_e2e_ms"][p] if p in r["p99_e2e_ms"] else "-"
                       for p in policies)
        out.append("| %s | %s | %.2f | %s | %s |" % (r["cluster"], r["workload"], r["load"], t, e))
    out.append("")
    out.append("## eta's predictions: |predicted - actual| / actual\n")
    out.append("| cluster | workload | load | TTFT p50 | TTFT p90 | E2E p50 | E2E p90 | output "
               "p50 | output p90 | oracle E2E p50 | eta share % | oracle share % | eta / "
               "oracle preemptions |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
    for r in rows:
        p = r["eta_prediction"]
        share = lambda pol: "/".join("%.0f" % (100 * v) for v in r["share"].get(pol, {}).values())
        out.append("| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | "
                   "%s / %s |" % (
                       r["cluster"], r["workload"], r["load"], p["ttft_abs_rel_error"]["p50"],
                       p["ttft_abs_rel_error"]["p90"], p["e2e_abs_rel_error"]["p50"],
                       p["e2e_abs_rel_error"]["p90"], p["output_tokens_abs_rel_error"]["p50"],
                       p["output_tokens_abs_rel_error"]["p90"],
                       "%.2f" % r["oracle_prediction"]["e2e_abs_rel_error"]["p50"]
                       if r["oracle_prediction"] else "-", share("eta"),
                       share("oracle"), r["preemptions"].get("eta", "-"),
                       r["preemptions"].get("oracle", "-")))
    out.append("")
    return "\n".join(out)


def render_svg(rows):
    """Two panels at the target load: p99 TTFT and p99 E2E of each policy relative to the
    oracle's (log scale), one group of bars per cluster x workload."""
    at = [r for r in rows if r["load"] == TARGET_LOAD]
    policies = BASELINES + ["eta"]
    colors = {"round-robin": "#999999", "least-request": "#1f77b4", "llm-d": "#ff7f0e",
              "cache-aware": "#9467bd", "eta": "#d62728"}
    W, H, top, left, panel_h, gap = 900, 560, 40, 70, 200, 60
    group_w = (W - left - 20) / max(len(at), 1)
    bar_w = group_w * 0.8 / len(policies)
    lo, hi = math.log10(0.5), math.log10(200)

    def y(v, y0):
        v = min(max(v, 10 ** lo), 10 ** hi)
        return y0 + panel_h - (math.log10(v) - lo) / (hi - lo) * panel_h

    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
             'font-size="11">' % (W, H),
             '<rect width="100%" height="100%" fill="white"/>']
    for k, (metric, label) in enumerate([("p99_ttft_ms", "p99 TTFT / oracle"),
                                         ("p99_e2e_ms", "p99 E2E / oracle")]):
        y0 = top + k * (panel_h + gap)
        parts.append('<text x="%d" y="%d" font-size="13">%s at load %.2f (log scale)</text>'
                     % (left, y0 - 8, label, TARGET_LOAD))
        for v in [0.5, 1, 2, 5, 10, 20, 50, 100, 200]:
            yy = y(v, y0)
            parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s"/>'
                         % (left, W - 20, yy, yy, "#000" if v == 1 else "#ddd"))
            parts.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (left - 4, yy + 4, v))
        for g, r in enumerate(at):
            x0 = left + g * group_w + group_w * 0.1
            oracle = r[metric].get("oracle")
            for i, p in enumerate(policies):
                if not oracle or p not in r[metric]:
                    continue
                v = r[metric][p] / oracle
                yy = y(v, y0)
                base = y(1, y0)
                parts.append('<rect data-policy="%s" data-metric="%s" x="%.1f" y="%.1f" width="%.1f" '
                             'height="%.1f" fill="%s"><title>%s %s %s: %.2f</title></rect>'
                             % (p, metric, x0 + i * bar_w, min(yy, base), bar_w * 0.9,
                                abs(base - yy), colors[p], r["cluster"], r["workload"], p, v))
            if k == 1:
                parts.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                             % (x0 + group_w * 0.4, y0 + panel_h + 16, r["cluster"]))
                parts.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                             % (x0 + group_w * 0.4, y0 + panel_h + 30, r["workload"]))
    for i, p in enumerate(policies):
        parts.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>'
                     % (left + i * 120, H - 14, colors[p], left + i * 120 + 14, H - 5, p))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--floor", nargs="*")
    ap.add_argument("--md")
    ap.add_argument("--json")
    ap.add_argument("--svg")
    a = ap.parse_args()
    rows = load_rows(a.runs, load_floors(a.floor))
    md = render_md(rows)
    if a.md:
        with open(a.md, "w") as f:
            f.write(md)
    else:
        sys.stdout.write(md)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"targets": {"load": TARGET_LOAD, "ttft": TTFT_TARGETS, "e2e_vs_oracle": E2E_TARGET},
                       "rows": rows}, f, indent=1)
            f.write("\n")
    if a.svg:
        with open(a.svg, "w") as f:
            f.write(render_svg(rows))


if __name__ == "__main__":
    main()
