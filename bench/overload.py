#!/usr/bin/env python3
"""Overload measurement: `eta route` in front of `eta vllm-sim` replicas at 2x their capacity.

1. capacity: the cluster's saturated throughput on the workload (eta bench, every request sent
   at t = 0 through a router without admission control): requests/s.
2. overload without admission: eta bench at LOAD x capacity (Poisson) for SECONDS; the router
   forwards everything and the replicas' queues grow.
3. overload with admission: the same, through a router with
   admission.max_in_flight_per_replica = the replicas' --max-num-seqs (no request waits inside
   a replica) and no router queue: the excess gets 429 + Retry-After at once.
During 2 and 3 a probe thread times GET /health and GET /metrics on fresh connections every
50 ms and sends one generation request every 250 ms to record the 429s' Retry-After.

Prints a markdown table (the figures of docs/reliability.md "Overload") and writes
OUT/overload.json. Standard library only; every process is stopped at the end.

  python3 bench/overload.py [--eta build/eta] [--replicas 2] [--max-num-seqs 4] [--load 2]
                            [--seconds 40] [--time-scale 1] [--out overload-out]
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import etalib  # noqa: E402

WORKLOAD = "synthetic:in=512,out=64"  # and n= the number of requests sent
MODEL = "sim-model"


class Proc(etalib.Server):
    """A program printing `listening on URL` first, in its own process group, stderr dropped."""

    def __init__(self, args, name):
        super().__init__(args, name, capture_stderr=False, new_session=True)


def start_router(eta, sims, yaml_extra, tmp):
    path = os.path.join(tmp, "route-%d.yaml" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write("replicas:\n" + "".join("  - %s\n" % s.url for s in sims))
        f.write("policy: eta\nadmin: {port: -1}\nlog_level: warn\n" + yaml_extra)
    return Proc([eta, "route", "--config", path, "--port", "0"], "eta route")


def workload(n):
    return WORKLOAD.replace("synthetic:", "synthetic:n=%d," % n)


def bench(eta, target, n, args, tmp, label):
    """eta bench of n requests of WORKLOAD; returns its JSON report."""
    out = os.path.join(tmp, label + ".json")
    cmd = [eta, "bench", "--target", target, "--workload", workload(n), "--num-requests",
           str(n), "--lengths", "exact",
           "--progress", "off", "--json", out, "--label", label, "--timeout", "600"] + args
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)


def measure_capacity(eta, sims, max_num_seqs, tmp, procs):
    """The cluster's saturated throughput: every request sent at t = 0 through a router without
    admission control; returns bench's report (request_throughput_rps: requests/s)."""
    r = start_router(eta, sims, "", tmp)
    procs.append(r)
    n = max(60, int(10 * len(sims) * max_num_seqs))
    try:
        return bench(eta, r.url, n, ["--rate", "inf"], tmp, "capacity")
    finally:
        r.stop()


def pct(values, q):
    return etalib.percentile(values, q, empty=float("nan"))


class Probe:
    """Times /health and /metrics every 50 ms; sends a generation request every 250 ms."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.lat = {"/health": [], "/metrics": []}
        self.status = {"/health": {}, "/metrics": {}}
        self.gen = []  # (status, retry-after)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._poll, daemon=True),
                        threading.Thread(target=self._gen, daemon=True)]

    def _get(self, path):
        t0 = time.monotonic()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            return r.status, time.monotonic() - t0
        except Exception:  # noqa: BLE001
            return -1, time.monotonic() - t0
        finally:
            conn.close()

    def _poll(self):
        while not self.stop.is_set():
            for path in ("/health", "/metrics"):
                status, secs = self._get(path)
                self.lat[path].append(secs * 1e3)
                self.status[path][status] = self.status[path].get(status, 0) + 1
            self.stop.wait(0.05)

    def _gen(self):
        body = json.dumps({"model": MODEL, "prompt": "probe", "max_tokens": 8}).encode()
        while not self.stop.is_set():
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                conn.request("POST", "/v1/completions", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                self.gen.append((r.status, r.getheader("retry-after")))
            except Exception:  # noqa: BLE001
                self.gen.append((-1, None))
            finally:
                conn.close()
            self.stop.wait(0.25)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        return False

    def summary(self):
        out = {}
        for path, v in self.lat.items():
            out[path] = {"n": len(v), "p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99),
                         "max_ms": max(v) if v else float("nan"),
                         "over_50ms": sum(1 for x in v if x > 50), "status": self.status[path]}
        shed = [ra for s, ra in self.gen if s == 429]
        out["probe_requests"] = {"n": len(self.gen), "429": len(shed),
                                 "200": sum(1 for s, _ in self.gen if s == 200),
                                 "retry_after": sorted(set(ra or "missing" for ra in shed))}
        return out


def rss_kb(pid):
    return etalib.rss_kb(pid) or 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eta", default="build/eta")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--max-num-seqs", type=int, default=4)
    ap.add_argument("--load", type=float, default=2.0)
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--time-scale", type=float, default=1.0)
    ap.add_argument("--out", default="overload-out")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    procs = []
    result = {"workload": WORKLOAD, "replicas": a.replicas, "max_num_seqs": a.max_num_seqs,
              "load": a.load, "seconds": a.seconds, "time_scale": a.time_scale,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        with tempfile.TemporaryDirectory(prefix="eta-overload-") as tmp:
            sims = []
            for _ in range(a.replicas):
                s = Proc([a.eta, "vllm-sim", "--port", "0", "--model", MODEL, "--time-scale",
                          str(a.time_scale), "--max-num-seqs", str(a.max_num_seqs)], "vllm-sim")
                procs.append(s)
                sims.append(s)

            # 1. capacity
            cap = measure_capacity(a.eta, sims, a.max_num_seqs, tmp, procs)
            capacity = cap["request_throughput_rps"]
            result["capacity_rps"] = capacity
            result["capacity_run"] = {"requests": cap["requests"], "errors": cap["errors"]}
            rate = a.load * capacity
            n = int(rate * a.seconds)
            print("capacity %.2f req/s (simulated); overload at %.2f req/s, %d requests"
                  % (capacity, rate, n), file=sys.stderr)

            # An unloaded run for the TTFT baseline (one request at a time).
            r = start_router(a.eta, sims, "", tmp)
            procs.append(r)
            base = bench(a.eta, r.url, 20, ["--rate", str(capacity * 0.1)], tmp, "unloaded")
            r.stop()
            result["unloaded_ttft_ms"] = base["ttft_ms"]

            for label, extra in (
                    ("no_admission", ""),
                    ("admission", "admission: {max_in_flight_per_replica: %d, retry_after_s: 1}\n"
                     % a.max_num_seqs)):
                r = start_router(a.eta, sims, extra, tmp)
                procs.append(r)
                host, port = r.url[len("http://"):].rsplit(":", 1)
                rss0 = rss_kb(r.proc.pid)
                with Probe(host, int(port)) as probe:
                    rep = bench(a.eta, r.url, n, ["--rate", str(rate), "--arrival", "poisson"],
                                tmp, label)
                rss1 = rss_kb(r.proc.pid)
                r.stop()
                result[label] = {
                    "sent": rep["extra"].get("sent_requests"), "ok": rep["requests"],
                    "errors_by_kind": rep["errors_by_kind"], "ttft_ms": rep["ttft_ms"],
                    "e2e_ms": rep["e2e_ms"], "throughput_rps": rep["request_throughput_rps"],
                    "peak_concurrency": rep["peak_concurrency"],
                    "send_lateness_wall_ms_p99": rep["extra"].get("send_lateness_wall_ms_p99"),
                    "probe": probe.summary(), "router_rss_kb": [rss0, rss1]}
    finally:
        for p in procs:
            p.stop()
    with open(os.path.join(a.out, "overload.json"), "w") as f:
        json.dump(result, f, indent=2)

    print("\ncapacity %.2f req/s (simulated s); load %.1fx = %.2f req/s for %g s; workload %s; "
          "%d replicas with --max-num-seqs %d; unloaded TTFT p50 %.0f ms p99 %.0f ms\n"
          % (result["capacity_rps"], a.load, a.load * result["capacity_rps"], a.seconds,
             WORKLOAD, a.replicas, a.max_num_seqs, result["unloaded_ttft_ms"]["p50"],
             result["unloaded_ttft_ms"]["p99"]))
    print("| router | sent | ok | 429 | other errors | TTFT p50 / p99 (ms) | E2E p99 (ms) | "
          "/health p50 / p99 / max (ms) | /metrics p50 / p99 / max (ms) | probe 429s (Retry-After) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label in ("no_admission", "admission"):
        x = result[label]
        errs = dict(x["errors_by_kind"])
        shed = errs.pop("http_429", 0)
        h, m, g = x["probe"]["/health"], x["probe"]["/metrics"], x["probe"]["probe_requests"]
        print("| %s | %d | %d | %d | %s | %.0f / %.0f | %.0f | %.1f / %.1f / %.1f | "
              "%.1f / %.1f / %.1f | %d of %d (%s) |"
              % (label.replace("_", " "), x["sent"], x["ok"], shed,
                 ", ".join("%s %d" % kv for kv in errs.items()) or "0",
                 x["ttft_ms"]["p50"], x["ttft_ms"]["p99"], x["e2e_ms"]["p99"],
                 h["p50_ms"], h["p99_ms"], h["max_ms"], m["p50_ms"], m["p99_ms"], m["max_ms"],
                 g["429"], g["n"], ",".join(g["retry_after"]) or "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
