#!/usr/bin/env python3
"""eta demo: the same bursty workload through nine routers in front of the same four replicas.

Starts four simulated vLLM replicas (`eta vllm-sim`: two H100, two A100, llama-3.1-8b) on free
loopback ports and, for each router in turn -- `eta route` with the policies round-robin,
least-request, llm-d, cache-aware, llm-d-latency, least-load and eta, then real nginx
(least_conn) and real HAProxy (leastconn) -- restarts the replicas cold, starts the router in
front of them, and replays the same workload through it with `eta bench` (bursty-mix, lengths
hidden, its own arrival process scaled to 85 % of the cluster's *sustained* capacity: the highest
rate least-request sustains under that process, completions keeping up with arrivals, as
measured by `eta cluster-sim --find-capacity`). The run lasts SPAN simulated seconds of sending
(quick: 10, full: 120); the first WARMUP of them are excluded from the table, which reports
the offered and the completed rate of the rest beside the latencies (steady state: they agree).

Prints one table (offered and done rates, TTFT, TPOT, E2E, goodput, errors, ratios to nginx:
`eta bench compare --by-report` of the runs' reports, which `eta bench --warmup` writes without
the warm-up) and writes demo-out/:
report.md (table, SVG plots, CPU use), cdf_e2e.svg, cdf_ttft.svg, load_<router>.svg, and per
run <router>.json (bench's report), <router>.csv (per request), <router>.log (stderr of what ran).

Everything it starts runs in its own process group and is stopped on exit, on Ctrl-C, on
SIGTERM and on failure (scripts/etalib.py's Procs). Python 3 standard library only.

Usage: scripts/demo.py --eta build/eta [--quick] [--requests N] [--out DIR] [--routers a,b,...]
"""

import argparse
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import etalib
from etalib import Procs, group_cpu_seconds, machine_cpu, read_listening

POLICIES = ["round-robin", "least-request", "llm-d", "cache-aware", "llm-d-latency", "least-load",
            "eta"]
ROUTERS = POLICIES + ["nginx", "haproxy"]
REPLICAS = [("h100", "r0"), ("h100", "r1"), ("a100", "r2"), ("a100", "r3")]
ARCH = "llama-3.1-8b"  # bursty-mix's documents are 8192 tokens: beyond llama-2-7b's 4096
MODEL = "demo-model"
LOAD = 0.85  # of the sustained capacity
NATURAL_RATE = 8.6  # bursty-mix's requests per second of its own clock (8 short/s, 12 docs / 20 s)
WARMUP = 0.2  # the first fifth of the sending span is excluded from the table
CAPACITY_WORKLOAD = "bursty-mix:duration=120"
SLO = "ttft=1000,tpot=100"  # cluster-sim's default SLOs, for goodput
# The table's columns: `eta bench compare --metrics` (NAME=TITLE) and the ratios to nginx.
TABLE_METRICS = ["extra.offered_rps=offered req/s", "extra.completed_rps=done req/s",
                 "ttft_ms.p50=p50 TTFT ms", "ttft_ms.p99=p99 TTFT ms", "tpot_ms.p99=p99 TPOT ms",
                 "e2e_ms.p99=p99 E2E ms", "goodput_rps=goodput req/s", "errors"]
TABLE_RATIOS = ["ttft_ms.p99=p99 TTFT", "e2e_ms.p99=p99 E2E"]

# ---------------------------------------------------------------------------------------------
# Progress


class Progress:
    def __init__(self):
        self.tty = sys.stdout.isatty()
        self.label = None
        self.t0 = time.time()
        self.start = time.time()
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def set(self, label):
        with self.lock:
            self.label = label
            self.start = time.time()
        self._print(force=True)

    def clear(self):
        with self.lock:
            self.label = None
        if self.tty:
            sys.stdout.write("\r\033[K")
            sys.stdout.flush()

    def say(self, text):
        with self.lock:
            if self.tty:
                sys.stdout.write("\r\033[K")
            print(text, flush=True)
        self._print(force=True)

    def _print(self, force=False):
        with self.lock:
            if self.label is None:
                return
            now = time.time()
            line = "  ... %s: %.0f s (demo %.0f s)" % (self.label, now - self.start, now - self.t0)
            if self.tty:
                sys.stdout.write("\r\033[K" + line)
                sys.stdout.flush()
            elif not force:
                print(line, flush=True)

    def _run(self):
        n = 0
        while not self.stop_ev.wait(1.0):
            n += 1
            if self.tty or n % 10 == 0:
                self._print()

    def close(self):
        self.stop_ev.set()
        self.clear()


# ---------------------------------------------------------------------------------------------
# The demo


class Demo:
    def __init__(self, args):
        self.a = args
        self.eta = os.path.abspath(args.eta)
        self.out = os.path.abspath(args.out)
        self.tmp = tempfile.mkdtemp(prefix="eta-demo-")
        self.procs = Procs(pid_log=os.path.join(self.out, "pids.txt"))
        self.progress = None
        self.results = {}  # router -> dict
        self.skipped = {}  # router -> reason
        self.cpu = []  # per run: {router, wall_s, cpu: {name: seconds}}

    def log(self, text):
        if self.progress:
            self.progress.say(text)
        else:
            print(text, flush=True)

    # replicas ---------------------------------------------------------------------------------
    def start_replicas(self, tag):
        urls, procs = [], []
        for gpu, name in REPLICAS:
            outp = os.path.join(self.tmp, "%s-%s.out" % (tag, name))
            with open(outp, "w") as o, open(os.path.join(self.tmp, "%s-%s.err" % (tag, name)), "w") as e:
                p = self.procs.start("replica-" + name, [
                    self.eta, "vllm-sim", "--port", "0", "--model", MODEL, "--gpu", gpu,
                    "--arch", ARCH, "--time-scale", str(self.a.time_scale),
                    "--seed", str(len(procs))], o, e)
            procs.append(p)
        for (gpu, name), p in zip(REPLICAS, procs):
            got = read_listening(os.path.join(self.tmp, "%s-%s.out" % (tag, name)), p)
            if not got:
                raise RuntimeError("replica %s did not start: %s" % (name, open(
                    os.path.join(self.tmp, "%s-%s.err" % (tag, name))).read().strip()))
            urls.append(got[0])
        return urls, procs

    # routers ----------------------------------------------------------------------------------
    def start_router(self, router, urls, log):
        """Returns (url, proc, admin_url or None), or raises."""
        if router in POLICIES:
            outp = os.path.join(self.tmp, router + ".out")
            specs = ["%s,gpu=%s,arch=%s" % (u, gpu, ARCH) for u, (gpu, _) in zip(urls, REPLICAS)]
            args = [self.eta, "route", "--port", "0", "--policy", router, "--log-level", "warn"]
            for s in specs:
                args += ["--replica", s]
            with open(outp, "w") as o:
                p = self.procs.start("router-" + router, args, o, log)
            got = read_listening(outp, p, prefix=["listening on ", "admin on "])
            if not got:
                raise RuntimeError("eta route did not start (see %s.log)" % router)
            return got[0], p, got[1]
        port = etalib.free_port()
        os.chmod(self.tmp, 0o755)
        args = etalib.proxy_command(router, os.path.join(self.tmp, router), port, urls)
        p = self.procs.start("router-" + router, args, log, log)
        if not etalib.wait_port(port, p):
            raise RuntimeError("%s did not start (see %s.log)" % (router, router))
        return "http://127.0.0.1:%d" % port, p, None

    # capacity ---------------------------------------------------------------------------------
    def measure_capacity(self):
        """least-request's sustained capacity under bursty-mix's own arrivals (and the isolated
        one, for reference)."""
        jpath = os.path.join(self.tmp, "capacity.json")
        cmd = [self.eta, "cluster-sim", "--replicas", "2xh100,2xa100", "--arch", ARCH,
               "--workload", CAPACITY_WORKLOAD, "--lengths", "hidden", "--find-capacity",
               "--policy", "least-request", "--slo", SLO.replace("=", ":")]
        r = subprocess.run(cmd + ["--json", jpath], capture_output=True, text=True, timeout=300)
        if r.returncode != 0 or not os.path.exists(jpath):
            raise RuntimeError("cluster-sim --find-capacity failed: %s" % (r.stderr or r.stdout))
        with open(jpath) as f:
            cap = json.load(f)["capacity"]
        sustained = cap["policies"][0]["sustained_rps"]
        if not sustained > 0:
            raise RuntimeError("cluster-sim --find-capacity: nothing sustained")
        shown = [os.path.relpath(cmd[0])] + cmd[1:]
        self.isolated = cap["requests_per_s"]
        return sustained, " ".join(shown)

    # one run ----------------------------------------------------------------------------------
    def run_one(self, router):
        log_path = os.path.join(self.out, router + ".log")
        log = open(log_path, "w")
        try:
            urls, replicas = self.start_replicas(router)
            url, rproc, admin = self.start_router(router, urls, log)
            if admin:
                self.log("  %-13s listening on %s; admin: GET %s/admin/replicas" % (router, url, admin))
                if router == "eta":
                    self.log("  eta router in progress -- its state: curl %s/admin/replicas"
                             % admin)
                    self.log("dashboard: %s/dashboard" % admin)
            jpath = os.path.join(self.out, router + ".json")
            cpath = os.path.join(self.out, router + ".csv")
            cmd = [self.eta, "bench", "--target", url, "--workload", self.workload,
                   "--lengths", "hidden", "--load", str(LOAD), "--capacity", "%.4f" % self.capacity,
                   "--slo", SLO, "--json", jpath, "--csv", cpath, "--label", router,
                   "--model", MODEL, "--time-scale", str(self.a.time_scale), "--progress", "off",
                   "--seed", "0", "--timeout", "600", "--warmup", str(WARMUP)]
            if self.a.requests:
                cmd += ["--num-requests", str(self.a.requests)]
            groups = {"replicas": [p.pid for p in replicas], "router": [rproc.pid]}
            c0 = {k: sum(group_cpu_seconds(g) for g in v) for k, v in groups.items()}
            m0 = machine_cpu()
            t0 = time.time()
            bench = self.procs.start("bench-" + router, cmd, log, log)
            groups["bench"] = [bench.pid]
            c0["bench"] = 0.0
            last = {}
            bench_cpu = None
            while bench_cpu is None:
                # Sample the others while bench runs; bench's own CPU from wait4's rusage.
                last = {k: sum(group_cpu_seconds(g) for g in v) for k, v in groups.items()
                        if k != "bench"}
                pid, status, ru = os.wait4(bench.pid, os.WNOHANG)
                if pid == bench.pid:
                    bench.returncode = os.waitstatus_to_exitcode(status)
                    bench_cpu = ru.ru_utime + ru.ru_stime
                else:
                    time.sleep(0.2)
            wall = time.time() - t0
            m1 = machine_cpu()
            last["bench"] = bench_cpu
            cpu = {k: max(0.0, last.get(k, 0.0) - c0.get(k, 0.0)) for k in groups}
            busy = (m1[0] - m0[0]) / max(1e-9, m1[1] - m0[1])
            self.cpu.append({"router": router, "wall_s": wall, "cpu_s": cpu,
                             "machine_busy": busy})
            if bench.returncode != 0:
                raise RuntimeError("eta bench exited %d (see %s)" % (bench.returncode, log_path))
            self.procs.stop(bench)
            with open(jpath) as f:
                rep = json.load(f)
            names = {u.rsplit(":", 1)[1]: "%s %s" % (n, g) for u, (g, n) in zip(urls, REPLICAS)}
            self.results[router] = {"report": rep, "json": jpath, "csv": cpath, "wall_s": wall,
                                    "names": names}
        finally:
            for _, p in list(self.procs.live):
                self.procs.stop(p, timeout=3)
            log.close()

    def run(self):
        os.makedirs(self.out, exist_ok=True)
        for f in os.listdir(self.out):
            if f.endswith((".json", ".csv", ".log", ".svg", ".md")) or f == "pids.txt":
                os.remove(os.path.join(self.out, f))
        quick = self.a.quick
        routers = self.a.routers.split(",") if self.a.routers else ROUTERS
        t_start = time.time()
        self.capacity, self.capacity_cmd = self.measure_capacity()
        # bursty-mix: 8 short requests/s plus a burst of 12 long-document requests every 20 s of
        # its own clock, scaled to the rate; its duration is chosen so that sending lasts SPAN
        # simulated seconds at that rate.
        self.span = 10.0 if quick else 120.0
        rate = LOAD * self.capacity
        self.workload = "bursty-mix:duration=%d" % max(20, math.ceil(self.span * rate / NATURAL_RATE))
        print("eta demo: %s, 4 replicas (2 x h100, 2 x a100, %s) at time scale %g; routers: %s"
              % (self.workload, ARCH, self.a.time_scale, ", ".join(routers)), flush=True)
        print("sustained capacity (least-request, bursty-mix's own arrivals; eta cluster-sim "
              "--find-capacity): %.1f requests/s (isolated replicas: %.1f); sending at %.0f %%: "
              "%.1f requests/s for ~%.0f s (simulated), the first %.0f %% excluded as warm-up"
              % (self.capacity, self.isolated, 100 * LOAD, rate, self.span, 100 * WARMUP),
              flush=True)
        self.progress = Progress()
        try:
            for i, router in enumerate(routers):
                if router in ("nginx", "haproxy") and not shutil.which(router):
                    self.skipped[router] = "%s is not installed (scripts/install-deps.sh)" % router
                    self.log("  %-13s SKIPPED: %s" % (router, self.skipped[router]))
                    continue
                self.progress.set("[%d/%d] %s" % (i + 1, len(routers), router))
                self.run_one(router)
                r = self.results[router]
                rep = r["report"]
                self.log("  %-13s done in %.1f s wall: %d requests sent, %d errors after the "
                         "warm-up, p99 E2E %.0f ms" % (router, r["wall_s"],
                                                      rep["extra"]["sent_requests"],
                                                      rep["errors"], rep["e2e_ms"]["p99"]))
        finally:
            self.progress.close()
        self.total_wall = time.time() - t_start
        table = self.table()
        print()
        print(table)
        print()
        print(self.cpu_text())
        self.write_report(table)
        print("\nreport: %s (plots, every run's JSON and CSV); total %.0f s"
              % (os.path.join(self.out, "report.md"), self.total_wall))

    def cleanup(self):
        self.procs.stop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # output -----------------------------------------------------------------------------------
    def table(self):
        """`eta bench compare` of the runs' reports (bench --warmup: without the warm-up), one
        row per router, ratios to nginx; a row for each router skipped."""
        routers = [r for r in ROUTERS if r in self.results]
        cmd = [self.eta, "bench", "compare", "--by-report", "--first-column", "router",
               "--metrics", ",".join(TABLE_METRICS)]
        if "nginx" in self.results:
            cmd += ["--baseline", "nginx", "--ratios", ",".join(TABLE_RATIOS)]
        r = subprocess.run(cmd + [self.results[x]["json"] for x in routers], capture_output=True,
                           text=True, timeout=60) if routers else None
        if r is not None and r.returncode != 0:
            raise RuntimeError("eta bench compare failed: %s" % r.stderr.strip())
        lines = r.stdout.rstrip("\n").splitlines() if r else [
            "| router |", "|---|"]
        cells = lines[0].count("|") - 1
        for router in ROUTERS:
            if router in self.skipped:
                lines.append("| %s | skipped: %s |%s" % (router, self.skipped[router],
                                                         " |" * (cells - 2)))
        return "\n".join(lines)

    def cpu_text(self):
        lines = ["CPU use during each run (from /proc/PID/stat utime+stime, %% of one core; "
                 "the machine has %d):" % os.cpu_count(),
                 "| router | wall s | replicas (4) | router | bench | total | machine (all cores, "
                 "other work included) |",
                 "|---|---:|---:|---:|---:|---:|---:|"]
        for c in self.cpu:
            w = max(c["wall_s"], 1e-9)
            cs = c["cpu_s"]
            tot = sum(cs.values())
            lines.append("| %s | %.1f | %.0f %% | %.0f %% | %.0f %% | %.0f %% | %.0f %% busy |" % (
                c["router"], c["wall_s"], 100 * cs["replicas"] / w, 100 * cs["router"] / w,
                100 * cs["bench"] / w, 100 * tot / w, 100 * c["machine_busy"]))
        return "\n".join(lines)

    def write_report(self, table):
        rows = {}
        for router, r in self.results.items():
            rows[router] = read_csv(r["csv"])
        svgs = []
        if rows:
            for key, title in (("e2e_ms", "E2E latency"), ("ttft_ms", "TTFT")):
                name = "cdf_%s.svg" % key.split("_")[0]
                with open(os.path.join(self.out, name), "w") as f:
                    f.write(cdf_svg(title + " CDF (simulated ms, log scale)", {
                        router: [float(x[key]) for x in rs if not x["error"] and x[key]]
                        for router, rs in rows.items()}))
                svgs.append((title + " CDF", name))
            for router, rs in rows.items():
                name = "load_%s.svg" % router
                with open(os.path.join(self.out, name), "w") as f:
                    f.write(load_svg("%s: requests in flight per replica" % router, rs,
                                     self.results[router]["names"]))
                svgs.append(("%s: per-replica load" % router, name))
        md = ["# eta demo", "",
              "Workload `%s` (its own bursty arrival process), lengths hidden, %d requests per "
              "run, at %.0f %% of the sustained capacity (%.1f of %.1f requests/s, simulated "
              "time; the isolated replicas' sum is %.1f). Figures exclude the first %.0f %% of "
              "the sending span (warm-up); offered and done are the rates of the rest. "
              "Replicas: 2 x h100 + 2 x a100 `eta vllm-sim --arch %s --time-scale %g`, "
              "restarted cold before every run. SLOs for goodput: %s ms." % (
                  self.workload,
                  next(iter(self.results.values()))["report"]["extra"]["sent_requests"]
                  if self.results else 0, 100 * LOAD, LOAD * self.capacity, self.capacity,
                  self.isolated, 100 * WARMUP, ARCH, self.a.time_scale, SLO), "",
              "Sustained capacity measured once with `%s`." % self.capacity_cmd, "",
              "nginx: `least_conn`, keep-alive upstream connections, `proxy_buffering off`. "
              "HAProxy: `balance leastconn`, `mode http`. eta route: one run per policy.", "",
              table, "", self.cpu_text(), "",
              "Total demo wall time: %.0f s." % self.total_wall, ""]
        for title, name in svgs:
            md += ["## " + title, "", "![%s](%s)" % (title, name), ""]
        md += ["## Runs (eta bench JSON reports)", ""]
        for router, r in self.results.items():
            md += ["### " + router, "", "`%s.json`, `%s.csv`" % (router, router), "",
                   "```json", json.dumps(r["report"], indent=1), "```", ""]
        with open(os.path.join(self.out, "report.md"), "w") as f:
            f.write("\n".join(md))
        with open(os.path.join(self.out, "cpu.json"), "w") as f:
            json.dump(self.cpu, f, indent=1)


# ---------------------------------------------------------------------------------------------
# SVG (no plotting libraries)

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f"]


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _frame(title, w, h, x0, y0, x1, y1, xticks, yticks, xlabel, ylabel):
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="11">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="16" font-size="13" font-weight="bold">%s</text>' % (x0, _esc(title)),
           '<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>'
           % (x0, y1, x1 - x0, y0 - y1)]
    for px, lab in xticks:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (px, y0, px, y1))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (px, y0 + 14, _esc(lab)))
    for py, lab in yticks:
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (x0, py, x1, py))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (x0 - 4, py + 4, _esc(lab)))
    out.append('<text x="%d" y="%d" text-anchor="middle">%s</text>' % ((x0 + x1) / 2, y0 + 30,
                                                                       _esc(xlabel)))
    out.append('<text x="12" y="%d" transform="rotate(-90 12 %d)" text-anchor="middle">%s</text>'
               % ((y0 + y1) / 2, (y0 + y1) / 2, _esc(ylabel)))
    return out


def _legend(out, names, x, y):
    for i, n in enumerate(names):
        c = COLORS[i % len(COLORS)]
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>'
                   % (x, y + 14 * i, x + 18, y + 14 * i, c))
        out.append('<text x="%d" y="%d">%s</text>' % (x + 22, y + 14 * i + 4, _esc(n)))


def cdf_svg(title, series):
    w, h = 760, 380
    x0, y0, x1, y1 = 60, h - 45, w - 130, 28
    vals = [v for vs in series.values() for v in vs if v > 0]
    if not vals:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    lo = 10 ** math.floor(math.log10(min(vals)))
    hi = 10 ** math.ceil(math.log10(max(vals)))
    if hi <= lo:
        hi = lo * 10

    def X(v):
        return x0 + (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (x1 - x0)

    def Y(p):
        return y0 - p * (y0 - y1)
    xt, v = [], lo
    while v <= hi * 1.001:
        xt.append((X(v), ("%g" % v)))
        v *= 10
    yt = [(Y(p), "%g" % p) for p in (0, 0.25, 0.5, 0.75, 0.9, 1.0)]
    out = _frame(title, w, h, x0, y0, x1, y1, xt, yt, "milliseconds", "fraction of requests")
    for i, (name, vs) in enumerate(series.items()):
        vs = sorted(vs)
        n = len(vs)
        if not n:
            continue
        step = max(1, n // 400)
        pts = ["%.1f,%.1f" % (X(vs[0]), Y(0))]
        for k in list(range(0, n, step)) + [n - 1]:
            pts.append("%.1f,%.1f" % (X(vs[k]), Y((k + 1) / n)))
        out.append('<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>'
                   % (COLORS[i % len(COLORS)], " ".join(pts)))
    _legend(out, list(series), x1 + 10, y1 + 10)
    out.append("</svg>")
    return "\n".join(out)


def _replica_key(s):
    m = re.search(r":(\d+)", s or "")
    return m.group(1) if m else (s or "?")


def load_svg(title, rows, labels):
    """Requests in flight per replica over (simulated) time, from sent_s and e2e_ms."""
    w, h = 760, 300
    x0, y0, x1, y1 = 60, h - 45, w - 150, 28
    ivals = {}
    names = {}
    for r in rows:
        if r["error"] or not r["e2e_ms"]:
            continue
        k = _replica_key(r["replica"])
        names.setdefault(k, labels.get(k, r["replica"] or "?"))
        s = float(r["sent_s"])
        ivals.setdefault(k, []).append((s, s + float(r["e2e_ms"]) / 1000))
    if not ivals:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    tmax = max(e for iv in ivals.values() for _, e in iv)
    nb = 300
    dt = tmax / nb if tmax > 0 else 1
    curves = {}
    for k, iv in ivals.items():
        c = [0] * (nb + 1)
        for s, e in iv:
            for b in range(int(s / dt), min(nb, int(e / dt)) + 1):
                c[b] += 1
        curves[k] = c
    ymax = max(max(c) for c in curves.values()) or 1
    ytop = ymax * 1.1

    def X(t):
        return x0 + t / (tmax or 1) * (x1 - x0)

    def Y(v):
        return y0 - v / ytop * (y0 - y1)
    xt = [(X(tmax * f), "%.0f" % (tmax * f)) for f in (0, 0.25, 0.5, 0.75, 1)]
    yt = [(Y(ymax * f), "%.0f" % (ymax * f)) for f in (0, 0.5, 1)]
    out = _frame(title, w, h, x0, y0, x1, y1, xt, yt, "seconds (simulated)", "in flight")
    keys = sorted(curves, key=lambda k: names[k])
    for i, k in enumerate(keys):
        pts = " ".join("%.1f,%.1f" % (X(b * dt), Y(v)) for b, v in enumerate(curves[k]))
        out.append('<polyline fill="none" stroke="%s" stroke-width="1.2" points="%s"/>'
                   % (COLORS[i % len(COLORS)], pts))
    _legend(out, ["%s: %d req" % (names[k], len(ivals[k])) for k in keys],
            x1 + 10, y1 + 10)
    out.append("</svg>")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eta", default="build/eta", help="the eta binary")
    ap.add_argument("--quick", action="store_true", help="fewer requests, higher time scale")
    ap.add_argument("--requests", type=int, default=0, help="send only the first N requests")
    ap.add_argument("--time-scale", type=float, default=0.0,
                    help="replicas' simulated seconds per wall second (default: 2)")
    ap.add_argument("--out", default="demo-out", help="output directory (default demo-out)")
    ap.add_argument("--routers", default="", help="comma-separated subset of: " + ",".join(ROUTERS))
    a = ap.parse_args()
    if not a.time_scale:
        a.time_scale = 2.0
    if not os.access(a.eta, os.X_OK):
        print("demo: %s is not an executable (make build)" % a.eta, file=sys.stderr)
        return 2
    if a.routers:
        bad = [r for r in a.routers.split(",") if r not in ROUTERS]
        if bad:
            print("demo: unknown router(s) %s" % ",".join(bad), file=sys.stderr)
            return 2
    demo = Demo(a)

    def body():
        demo.run()
        return 1 if any(x["report"]["errors"] for x in demo.results.values()) else 0
    return etalib.run_stoppable("demo", body, demo.cleanup, report_failures=True)

if __name__ == "__main__":
    sys.exit(main())
