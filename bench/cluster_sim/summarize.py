#!/usr/bin/env python3
"""Prints a compact comparison from one or more `eta cluster-sim --json` files:
one line per (file, load, policy) with p50/p99 TTFT, p99 E2E (ms), goodput, share, and the
prediction errors. Usage: summarize.py RESULT.json [RESULT.json ...]"""

import json
import sys


def main(paths):
    print("%-28s %5s %-14s %8s %8s %8s %8s %7s %6s %6s  %s" % (
        "file", "load", "policy", "ttft50", "ttft99", "e2e50", "e2e99", "goodput", "e2eErr",
        "outErr", "share%"))
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        for r in doc["runs"]:
            share = "/".join("%.0f" % (100 * v) for v in r["replica_share"].values())
            pred = r["prediction"]
            e2e_err = pred["e2e_abs_rel_error"]
            out_err = pred["output_tokens_abs_rel_error"]
            print("%-28s %5.2f %-14s %8.0f %8.0f %8.0f %8.0f %7.2f %6s %6s  %s" % (
                path[-28:], r["load"], r["policy"], r["ttft_ms"]["p50"], r["ttft_ms"]["p99"],
                r["e2e_ms"]["p50"], r["e2e_ms"]["p99"], r["goodput_rps"] or 0,
                "%.2f" % e2e_err["p50"] if e2e_err["count"] else "-",
                "%.2f" % out_err["p50"] if out_err["count"] else "-", share))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
