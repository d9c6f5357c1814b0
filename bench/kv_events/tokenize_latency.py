#!/usr/bin/env python3
"""What exact prompt tokens (issue 15, item 3: a replica's POST /tokenize before routing) add
per request: `eta route --policy eta` in front of two `eta vllm-sim` replicas that publish
KV-cache events, sequential non-streamed requests with long prompts (each its own last words, so
the router's cache of recent prompts never answers), with /tokenize on (the defaults: at least
256 estimated tokens, at most 2 ms) and off (--tokenize-min-prompt-tokens 0), alternating.

Figures: `tokenize_s` of each request in /admin/decisions (the router's clock, from sending
/tokenize to its answer handled: what the request waited), `decision_s` (preparing the request,
twice when tokenized, and the pick's preparation), the prompt tokens' sources (tokenize,
timeout, error), and the client's own request latency through the router, on vs off.

usage: bench/kv_events/tokenize_latency.py [--eta build/eta] [--requests 500] [--words 1500]
                                            [--api completions|chat] [--runs 2]"""

import argparse
import collections
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import etatest  # noqa: E402
from test_route import RouterProcess  # noqa: E402


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def body(api, i, words):
    doc = " ".join("f%d w%d" % (i % 8, j) for j in range(words))
    if api == "chat":
        return "/v1/chat/completions", {"model": "m", "max_tokens": 2, "messages": [
            {"role": "system", "content": doc}, {"role": "user", "content": "q%d" % i}]}
    return "/v1/completions", {"model": "m", "prompt": doc + " q%d" % i, "max_tokens": 2}


def measure(on, requests, words, api, tmp):
    sims, specs = [], []
    for k in range(2):
        ep = "ipc://%s/t%d" % (tmp, k)
        sim = etatest.EtaProcess(["vllm-sim", "--port", "0", "--model", "m", "--time-scale", "50",
                                  "--kv-events-config",
                                  json.dumps({"enable_kv_cache_events": True, "endpoint": ep})])
        sims.append(sim)
        specs.append(sim.url + ",kv_events=" + ep)
    args = ["--port", "0", "--admin-port", "0", "--policy", "eta",
            "--replica", specs[0], "--replica", specs[1]]
    if not on:
        args += ["--tokenize-min-prompt-tokens", "0"]
    router = RouterProcess(args)
    try:
        etatest.wait_until(lambda: all(
            r["routable"] for r in router.admin().get("/admin/replicas").json()["replicas"]),
            timeout=10)
        c = router.client()
        # Until both replicas' first batches are in, nothing is tokenized: warm them up.
        for i in range(4):
            path, b = body(api, 1000 + i, 100)
            assert c.post(path, b).status == 200
        etatest.wait_until(lambda: all(
            (r["kv_events"] or {}).get("batches", 0) > 0
            for r in router.admin().get("/admin/replicas").json()["replicas"]), timeout=10)
        client_ms = []
        for i in range(requests):
            path, b = body(api, i, words)
            t0 = time.perf_counter()
            r = c.post(path, b)
            client_ms.append((time.perf_counter() - t0) * 1e3)
            assert r.status == 200, r.body
        d = router.admin().get("/admin/decisions?last=%d" % requests).json()["decisions"]
        d = d[-requests:]
        return d, client_ms
    finally:
        router.stop()
        for s in sims:
            s.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eta", default="build/eta")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--words", type=int, default=1500)
    ap.add_argument("--api", choices=["completions", "chat"], default="completions")
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    etatest.ETA_BIN = os.path.abspath(a.eta)
    tmp = tempfile.mkdtemp(prefix="eta-tok-bench-")
    for run in range(a.runs):
        for on in (True, False):
            d, client = measure(on, a.requests, a.words, a.api, tmp)
            sources = collections.Counter(x["prompt_tokens_source"] for x in d)
            waits = [x["tokenize_s"] * 1e3 for x in d if x["prompt_tokens_source"] != "estimate"]
            prompt = sum(x["prompt_tokens"] for x in d) / len(d)
            prep = [x["decision_s"] * 1e3 for x in d]
            line = ("run %d %-13s %s; prompt tokens %.0f; client ms p50 %.3f p99 %.3f; "
                    "prepare ms p50 %.3f p99 %.3f") % (
                run + 1, "tokenize on" if on else "tokenize off", dict(sources), prompt,
                quantile(client, 0.5), quantile(client, 0.99), quantile(prep, 0.5),
                quantile(prep, 0.99))
            if waits:
                line += "; wait ms p50 %.3f p90 %.3f p99 %.3f max %.3f" % (
                    quantile(waits, 0.5), quantile(waits, 0.9), quantile(waits, 0.99), max(waits))
            print(line, flush=True)


if __name__ == "__main__":
    main()
