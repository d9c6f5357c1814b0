#!/usr/bin/env python3
"""Prediction error of the router from `eta bench --csv` output (docs/benchmarks.md §6).

For every 2xx request that carries the router's predictions (x-eta-predicted-ttft-ms and
x-eta-predicted-e2e-ms, recorded by bench as predicted_ttft_ms and predicted_e2e_ms), the
relative error |predicted - actual| / actual of TTFT and E2E; prints its median and p90 (nearest
rank), the median signed error (predicted - actual) / actual, and the same per workload tag with
--by-tag.

Usage: scripts/prediction_error.py RUN.csv [--by-tag]
"""
import csv
import sys


def quantile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p * (len(xs) - 1)))))]


def report(rows, indent=""):
    for k in ["ttft", "e2e"]:
        pairs = [(float(r["predicted_%s_ms" % k]), float(r["%s_ms" % k])) for r in rows
                 if r["predicted_%s_ms" % k] and r["%s_ms" % k] and float(r["%s_ms" % k]) > 0]
        if not pairs:
            print("%s%-4s: no predictions" % (indent, k))
            continue
        signed = [(p - a) / a for p, a in pairs]
        rel = [abs(x) for x in signed]
        print("%s%-4s: n=%d  median |err| %.1f %%  p90 |err| %.1f %%  median signed %+.1f %%"
              % (indent, k, len(rel), 100 * quantile(rel, 0.5), 100 * quantile(rel, 0.9),
                 100 * quantile(signed, 0.5)))


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        rows = [r for r in csv.DictReader(f) if r["status"].startswith("2")]
    report(rows)
    if "--by-tag" in sys.argv[2:]:
        for tag in sorted(set(r["tag"] for r in rows)):
            print("tag %s:" % (tag or "-"))
            report([r for r in rows if r["tag"] == tag], "  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
