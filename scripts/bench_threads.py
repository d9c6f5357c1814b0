#!/usr/bin/env python3
"""Thread scaling of `eta route` (issue 2.3 item 4): requests/s (wrk, POST /v1/completions with
max_tokens 1, 32 connections) and SSE chunks/s (wrk, 500-token streams with ignore_eos, 16
connections: completed streams x 500 / duration) directly against one fast replica (`eta vllm-sim
--time-scale 10000`: it answers at once) and through `eta route --threads T` for each T.
Nothing is pinned: wrk, the replica and the router share the machine's cores.

Usage: scripts/bench_threads.py --eta build/eta [--threads 1,2] [--seconds 10]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etalib  # noqa: E402

MODEL = "m"
POST = ('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        'wrk.body = \'{"model":"%s","prompt":"hello hello hello hello","max_tokens":%d%s}\'\n')


def wrk(url, lua, conns, seconds):
    out = subprocess.run([shutil.which("wrk"), "-t1", "-c%d" % conns, "-d%ds" % seconds,
                          "--timeout", "30s", "-s", lua, url + "/v1/completions"],
                         capture_output=True, text=True, check=True).stdout
    n = int(re.search(r"^\s*(\d+) requests in", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    return n, out, errors


def measure(url, tmp, seconds):
    n, _, err = wrk(url, os.path.join(tmp, "post.lua"), 32, seconds)
    s, _, err2 = wrk(url, os.path.join(tmp, "stream.lua"), 16, seconds)
    return n / seconds, s * 500 / seconds, (err.group(0) if err else "") + (err2.group(0) if err2 else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eta", default="build/eta")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "post.lua"), "w") as f:
        f.write(POST % (MODEL, 1, ""))
    with open(os.path.join(tmp, "stream.lua"), "w") as f:
        f.write(POST % (MODEL, 500, ',"ignore_eos":true,"stream":true'))
    sim = etalib.Server([a.eta, "vllm-sim", "--port", "0", "--model", MODEL,
                         "--time-scale", "10000", "--max-num-seqs", "256"], name="vllm-sim")
    try:
        rps, cps, err = measure(sim.url, tmp, a.seconds)
        print("%-12s %10.0f req/s %12.0f chunks/s %s" % ("direct", rps, cps, err), flush=True)
        for t in [int(x) for x in a.threads.split(",")]:
            router = etalib.Server([a.eta, "route", "--port", "0", "--admin-port", "-1",
                                    "--threads", str(t), "--policy", "round-robin",
                                    "--replica", sim.url, "--log-level", "warn"], name="eta")
            try:
                rps, cps, err = measure(router.url, tmp, a.seconds)
                print("%-12s %10.0f req/s %12.0f chunks/s %s"
                      % ("threads %d" % t, rps, cps, err), flush=True)
            finally:
                router.stop()
    finally:
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
