#!/usr/bin/env python3
"""`make soak`: eta route in front of 3 eta vllm-sim replicas at a steady 0.8 of their measured
capacity (eta bench, Poisson arrivals) for SECONDS (default 600), with one replica restarted
every RESTART_EVERY seconds (default 60; at most a quarter of the run when it is shorter), in
turn. A restart is what an operator does: drain it through the admin API, wait until nothing is
in flight there (at most 60 s), stop it (SIGTERM), start it again on the same port, undrain.
`--restart kill` SIGKILLs it instead, without draining.

Asserts (exit 1 otherwise): every planned request was sent and answered; with drain restarts
none failed, with kill restarts only those streaming from the killed replica failed, with an
error event; the router's RSS at the end is within 1.5x + 4 MiB of its RSS after warm-up (memory
flat). Prints the figures (docs/reliability.md "Soak") and writes OUT/soak.json.

  python3 scripts/soak.py [--eta build/eta] [--seconds 600] [--restart-every 60]
                          [--restart drain|kill] [--load 0.8] [--out soak-out]
"""

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import etalib  # noqa: E402  (overload puts scripts/ on sys.path)
import overload  # noqa: E402  (bench runs, capacity)

MODEL = overload.MODEL


def start_sim(eta, port, seqs):
    deadline = time.monotonic() + 20
    while True:
        try:
            return overload.Proc([eta, "vllm-sim", "--port", str(port), "--model", MODEL,
                                  "--max-num-seqs", str(seqs)], "vllm-sim")
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eta", default="build/eta")
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    ap.add_argument("--restart-every", type=float, default=60)
    ap.add_argument("--restart", choices=("drain", "kill"), default="drain")
    ap.add_argument("--load", type=float, default=0.8)
    ap.add_argument("--max-num-seqs", type=int, default=4)
    ap.add_argument("--out", default="soak-out")
    a = ap.parse_args()
    a.seconds = min(a.seconds, 600)  # bounded to 10 minutes
    every = min(a.restart_every, a.seconds / 4)
    os.makedirs(a.out, exist_ok=True)
    procs = []
    sims = {}
    failures = []
    res = {"seconds": a.seconds, "restart_every_s": every, "restart": a.restart,
           "load": a.load, "workload": overload.WORKLOAD, "replicas": 3,
           "max_num_seqs": a.max_num_seqs,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        with tempfile.TemporaryDirectory(prefix="eta-soak-") as tmp:
            for _ in range(3):
                port = etalib.free_port()
                sims[port] = start_sim(a.eta, port, a.max_num_seqs)
            cap = overload.measure_capacity(a.eta, list(sims.values()), a.max_num_seqs, tmp,
                                            procs)
            rate = a.load * cap["request_throughput_rps"]
            n = int(rate * a.seconds)
            res.update(capacity_rps=cap["request_throughput_rps"], rate_rps=rate, planned=n)
            path = os.path.join(tmp, "route.yaml")
            with open(path, "w") as f:
                f.write("replicas:\n" + "".join("  - %s\n" % s.url for s in sims.values()))
                f.write("policy: eta\nlog_level: warn\n"
                        "health: {interval_s: 0.5, timeout_s: 1}\n")
            router = overload.Proc([a.eta, "route", "--config", path, "--port", "0"],
                                   "eta route")
            procs.append(router)
            admin = router.wait_line("admin on ")
            print("soak: capacity %.2f req/s; %.2f req/s for %g s (%d requests); a replica "
                  "restarted (%s) every %g s" % (cap["request_throughput_rps"], rate, a.seconds,
                                                  n, a.restart, every), file=sys.stderr)
            report = os.path.join(a.out, "bench.json")
            rows = os.path.join(a.out, "bench.csv")
            load = subprocess.Popen(
                [a.eta, "bench", "--target", router.url, "--workload", overload.workload(n),
                 "--lengths", "exact", "--rate", str(rate), "--num-requests", str(n),
                 "--arrival", "poisson", "--progress", "off", "--json", report, "--csv", rows,
                 "--timeout", "600"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t0 = time.monotonic()
            rss = []  # (seconds, kB)
            restarts = []
            ports = list(sims)
            k = 0
            next_restart = t0 + every
            next_rss = t0 + 10  # after warm-up
            while load.poll() is None:
                now = time.monotonic()
                if now >= next_rss:
                    rss.append((round(now - t0, 1), etalib.rss_kb(router.proc.pid)))
                    next_rss += 10
                if now >= next_restart and now - t0 < a.seconds - 5:
                    port = ports[k % len(ports)]
                    k += 1
                    restarts.append(restart(a, admin, sims, port, t0))
                    next_restart += every
                time.sleep(0.1)
            rss.append((round(time.monotonic() - t0, 1), etalib.rss_kb(router.proc.pid)))
            with open(report) as f:
                rep = json.load(f)
            with open(rows) as f:
                errors = [r for r in csv.DictReader(f) if r.get("error")]
            metrics = scrape(router.url)
    finally:
        for p in procs + list(sims.values()):
            p.stop()

    sent = rep["extra"].get("sent_requests")
    res.update(sent=sent, ok=rep["requests"], errors=rep["errors"],
               errors_by_kind=rep["errors_by_kind"], ttft_ms=rep["ttft_ms"],
               e2e_ms=rep["e2e_ms"], restarts=restarts, router_rss_kb=rss,
               router_retries=sum(v for k_, v in metrics.items()
                                  if k_.startswith("eta_retries_total")),
               router_errors={k_: v for k_, v in metrics.items()
                              if k_.startswith("eta_errors_total")})
    if sent != n or rep["requests"] + rep["errors"] != n:
        failures.append("lost requests: planned %d, sent %s, answered %d"
                        % (n, sent, rep["requests"] + rep["errors"]))
    if a.restart == "drain" and rep["errors"]:
        failures.append("%d requests failed: %s" % (rep["errors"], rep["errors_by_kind"]))
    if a.restart == "kill":
        bad = [e for e in errors if e.get("error") != "stream"]
        if bad:
            failures.append("errors other than mid-stream: %s" % bad[:5])
    start_kb, end_kb = rss[0][1], rss[-1][1]
    if end_kb > 1.5 * start_kb + 4096:
        failures.append("router RSS grew from %d kB to %d kB" % (start_kb, end_kb))
    res["failures"] = failures
    with open(os.path.join(a.out, "soak.json"), "w") as f:
        json.dump(res, f, indent=2)
    print("soak %g s at %.2f req/s (%.1fx capacity %.2f): planned %d, sent %s, ok %d, errors %d "
          "%s; %d restarts (%s; longest drain %.1f s); router retries %d; router RSS %d kB after "
          "warm-up -> %d kB at the end; TTFT p50 %.0f ms p99 %.0f ms"
          % (a.seconds, rate, a.load, res["capacity_rps"], n, sent, rep["requests"],
             rep["errors"], rep["errors_by_kind"] or "", len(restarts), a.restart,
             max([r["drain_s"] for r in restarts] or [0]), res["router_retries"], start_kb,
             end_kb, rep["ttft_ms"]["p50"], rep["ttft_ms"]["p99"]))
    for f_ in failures:
        print("soak: FAILED: " + f_, file=sys.stderr)
    return 1 if failures else 0


def restart(a, admin, sims, port, t0):
    url = sims[port].url
    t = time.monotonic()
    drain_s = 0.0
    if a.restart == "drain":
        etalib.http_json(admin, "POST", "/admin/replicas/drain", {"url": url})
        while time.monotonic() - t < 60:
            _, body = etalib.http_json(admin, "GET", "/admin/replicas")
            r = [x for x in body["replicas"] if x["url"] == url][0]
            if r["ledger"]["in_flight"] == 0:
                break
            time.sleep(0.05)
        drain_s = time.monotonic() - t
        sims[port].stop()
    else:
        os.killpg(sims[port].proc.pid, signal.SIGKILL)
        sims[port].proc.wait(5)
    sims[port] = start_sim(a.eta, port, a.max_num_seqs)
    if a.restart == "drain":
        etalib.http_json(admin, "POST", "/admin/replicas/undrain", {"url": url})
    return {"replica": url, "at_s": round(t - t0, 1), "drain_s": round(drain_s, 2),
            "down_s": round(time.monotonic() - t - drain_s, 2)}


def scrape(url):
    """The router's /metrics as {name{labels}: value}."""
    return {n + ("{%s}" % ",".join('%s="%s"' % kv for kv in sorted(l.items())) if l else ""): v
            for n, l, v in etalib.scrape_metrics(url)}


if __name__ == "__main__":
    sys.exit(main())
