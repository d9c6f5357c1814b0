#!/usr/bin/env python3
"""Router CPU per request with and without the access log (docs/benchmarks.md).

wrk (POST /v1/completions, max_tokens 1, 8 connections, 3 s warm-up then 10 s) through
`eta route --policy eta` in front of one `eta vllm-sim --time-scale 10000` (answers at once),
alternating --access-log off and --access-log FILE for ROUNDS rounds; router CPU is
utime+stime of the router process (every thread, the access log's writer included) from
/proc/PID/stat, divided by the requests wrk completed.

Usage: scripts/bench_access_log.py build/eta [ROUNDS]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etalib  # noqa: E402


def start(args, live):
    s = etalib.Server(args, capture_stderr=False)
    live.append(s)
    return s, s.url


def wrk(lua, url, seconds):
    return subprocess.run(["wrk", "-t1", "-c8", "-d%ds" % seconds, "-s", lua,
                           url + "/v1/completions"], capture_output=True, text=True).stdout


def main():
    eta = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    tmp = tempfile.mkdtemp(prefix="eta-access-bench-")
    live = []
    try:
        lua = os.path.join(tmp, "post.lua")
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    'wrk.body = \'{"model":"m","prompt":"hello hello hello hello",'
                    '"max_tokens":1}\'\n')
        _, sim_url = start([eta, "vllm-sim", "--port", "0", "--model", "m", "--time-scale",
                            "10000"], live)
        res = {}
        for rnd in range(rounds):
            for key in ["off", "file"]:
                target = "off" if key == "off" else os.path.join(tmp, "access.log")
                r, url = start([eta, "route", "--port", "0", "--admin-port", "-1", "--replica",
                                sim_url, "--log-level", "warn", "--access-log", target], live)
                wrk(lua, url, 3)
                c0 = etalib.cpu_seconds(r.proc.pid)
                out = wrk(lua, url, 10)
                c1 = etalib.cpu_seconds(r.proc.pid)
                r.stop()
                n = int(re.search(r"(\d+) requests in", out).group(1))
                rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
                us = (c1 - c0) / n * 1e6
                res.setdefault(key, []).append((us, rps))
                extra = ""
                if key == "file":
                    with open(target) as f:
                        extra = ", %d lines logged (warm-up included)" % sum(1 for _ in f)
                    os.remove(target)
                print("round %d access log %-4s: %d requests, %.0f req/s, router CPU %.1f "
                      "us/request%s" % (rnd, key, n, rps, us, extra), flush=True)
        for key, v in res.items():
            print("%-4s: mean router CPU %.1f us/request, mean %.0f req/s"
                  % (key, sum(x for x, _ in v) / len(v), sum(y for _, y in v) / len(v)))
    finally:
        for p in live:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
