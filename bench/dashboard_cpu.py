#!/usr/bin/env python3
"""The router's CPU per request with the dashboard closed and open (docs/benchmarks.md §6).

Starts N `eta vllm-sim` replicas (fast: --time-scale), one `eta route` (policy eta) in front of
them, and for each number of dashboards K in --dashboards (default 0,1,3; repeated --rounds
times, interleaved) opens K SSE clients on /admin/stream?interval_ms=I (what the dashboard page
reads), runs `eta bench` at a fixed wall-clock rate through the router, and reads the router's
CPU time (utime + stime of /proc/PID/stat) over the bench run and then over as long again without
traffic (the dashboards still open). Prints one Markdown row per run: requests completed, router
CPU seconds with and without traffic, the added CPU per request ((traffic - idle) / requests), the
events each dashboard received per second and the longest gap between two of them.

usage: bench/dashboard_cpu.py ETA_BIN [--replicas 16] [--rate 200] [--duration 20]
                              [--time-scale 100] [--interval-ms 250] [--dashboards 0,1,3]
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def start(args, prefixes):
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    urls = []
    for prefix in prefixes:
        line = p.stdout.readline()
        m = re.match(prefix + r"(http://\S+)", line.strip())
        if not m:
            p.kill()
            raise RuntimeError("%s: unexpected line %r" % (args[1], line))
        urls.append(m.group(1))
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    return p, urls


class Dashboard(threading.Thread):
    """Reads /admin/stream like the page does; records when each event arrived."""

    def __init__(self, host, port, interval_ms):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.path = "/admin/stream?interval_ms=%d" % interval_ms
        self.times = []
        self.stop = False

    def run(self):
        self.conn.request("GET", self.path)
        r = self.conn.getresponse()
        try:
            while not self.stop:
                line = r.readline()
                if not line:
                    return
                if line.startswith(b"data: "):
                    json.loads(line[6:])  # the page parses every event too
                    self.times.append(time.monotonic())
        except OSError:
            pass

    def close(self):
        self.stop = True
        try:
            self.conn.sock and self.conn.sock.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("eta")
    ap.add_argument("--replicas", type=int, default=16)
    ap.add_argument("--rate", type=float, default=200, help="requests/s of wall time")
    ap.add_argument("--duration", type=float, default=20, help="seconds of traffic per run")
    ap.add_argument("--time-scale", type=float, default=100)
    ap.add_argument("--interval-ms", type=int, default=250)
    ap.add_argument("--dashboards", default="0,1,3")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()

    procs = []
    tmp = tempfile.TemporaryDirectory()
    try:
        sims = []
        for i in range(a.replicas):
            p, (url,) = start([a.eta, "vllm-sim", "--port", "0", "--model", "m", "--time-scale",
                               str(a.time_scale), "--seed", str(i)], ["listening on "])
            procs.append(p)
            sims.append(url)
        args = [a.eta, "route", "--port", "0", "--admin-port", "0", "--policy", "eta",
                "--log-level", "warn"]
        for u in sims:
            args += ["--replica", u]
        router, (url, admin) = start(args, ["listening on ", "admin on "])
        procs.append(router)
        host, port = admin[len("http://"):].rsplit(":", 1)
        print("| dashboards | requests | wall | router CPU s, traffic | router CPU s, same time "
              "idle | added CPU per request | events/s per dashboard (traffic) | longest gap |")
        print("|---|---|---|---|---|---|---|---|")
        n = int(a.rate * a.duration)
        for rnd in range(a.rounds):
            for k in [int(x) for x in a.dashboards.split(",")]:
                boards = [Dashboard(host, int(port), a.interval_ms) for _ in range(k)]
                for b in boards:
                    b.start()
                time.sleep(1.0)
                jpath = os.path.join(tmp.name, "run.json")
                c0 = cpu_seconds(router.pid)
                t0 = time.monotonic()
                b0 = [len(b.times) for b in boards]
                subprocess.run([a.eta, "bench", "--target", url, "--workload",
                                "synthetic:n=%d,in=200,out=20" % n, "--rate",
                                str(a.rate / a.time_scale), "--num-requests", str(n),
                                "--arrival", "poisson", "--seed", str(rnd), "--progress", "off",
                                "--json", jpath], check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                t1 = time.monotonic()
                c1 = cpu_seconds(router.pid)
                with open(jpath) as f:
                    done = json.load(f)["requests"]
                rates, gaps = [], []
                for b, start_count in zip(boards, b0):
                    ts = [t for t in b.times if t0 <= t <= t1]
                    rates.append((len(b.times) - start_count) / (t1 - t0))
                    gaps.append(max((y - x for x, y in zip(ts, ts[1:])), default=float("nan")))
                # The same time without traffic: polling the replicas and serving the dashboards.
                i0 = cpu_seconds(router.pid)
                time.sleep(t1 - t0)
                idle = cpu_seconds(router.pid) - i0
                for b in boards:
                    b.close()
                ev = ", ".join("%.2f" % r for r in rates) or "-"
                gap = "%.0f ms" % (max(gaps) * 1000) if gaps else "-"
                busy = c1 - c0
                print("| %d | %d | %.1f s | %.2f | %.2f | %.0f µs | %s | %s |"
                      % (k, done, t1 - t0, busy, idle, (busy - idle) / max(done, 1) * 1e6, ev,
                         gap))
                sys.stdout.flush()
                time.sleep(0.5)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        tmp.cleanup()


if __name__ == "__main__":
    main()
