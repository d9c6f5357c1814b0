#!/usr/bin/env python3
"""What matching against KV-cache events adds to the router's per-request work (issue 15):
the request preparation time (`decision_s` in /admin/decisions: tokenizing the prompt, keying
its blocks, matching them on every replica, predicting the output; the pick is not in it) for
long prompts, through `eta route` with two
`eta vllm-sim` replicas that publish events, against the same replicas without them.

usage: bench/kv_events/router_overhead.py [--eta build/eta] [--requests 300] [--words 1500]"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import etatest  # noqa: E402
from test_route import RouterProcess  # noqa: E402


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def measure(eta, events, requests, words, tmp):
    sims, specs = [], []
    for k in range(2):
        args = ["vllm-sim", "--port", "0", "--model", "m", "--time-scale", "50"]
        if events:
            ep = "ipc://%s/p%d" % (tmp, k)
            args += ["--kv-events-config", json.dumps({"enable_kv_cache_events": True,
                                                       "endpoint": ep})]
        sim = etatest.EtaProcess(args)
        sims.append(sim)
        specs.append(sim.url + (",kv_events=%s" % ep if events else ""))
    router = RouterProcess(["--port", "0", "--admin-port", "0", "--policy", "eta",
                            "--replica", specs[0], "--replica", specs[1]])
    try:
        etatest.wait_until(lambda: all(
            r["routable"] for r in router.admin().get("/admin/replicas").json()["replicas"]),
            timeout=10)
        c = router.client()
        for i in range(requests):
            # 8 document families, each request its own question after the shared document
            doc = " ".join("f%d w%d" % (i % 8, j) for j in range(words))
            r = c.post("/v1/completions", {"model": "m", "prompt": doc + " q%d" % i,
                                           "max_tokens": 2})
            assert r.status == 200, r.body
        d = router.admin().get("/admin/decisions?last=%d" % requests).json()["decisions"]
        times = [x["decision_s"] * 1e3 for x in d][-requests:]
        sources = {x["prefix_source"] for x in d}
        cached = statistics.mean(x["cached_tokens"] for x in d[-requests:])
        return times, sources, cached
    finally:
        router.stop()
        for s in sims:
            s.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eta", default="build/eta")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--words", type=int, default=1500)
    a = ap.parse_args()
    etatest.ETA_BIN = os.path.abspath(a.eta)
    tmp = tempfile.mkdtemp(prefix="eta-kv-bench-")
    for events in (False, True, False, True):
        t, sources, cached = measure(a.eta, events, a.requests, a.words, tmp)
        print("%-9s decision ms p50 %.3f p90 %.3f p99 %.3f max %.3f; mean cached tokens %.0f; %s"
              % ("events" if events else "no events", quantile(t, 0.5), quantile(t, 0.9),
                 quantile(t, 0.99), max(t), cached, sorted(sources)))


if __name__ == "__main__":
    main()
