#!/usr/bin/env python3
"""eta bench-proxy: the data-path cost of `eta route` against nginx and HAProxy (issue 5/7).

In front of the same fast replica (`eta vllm-sim --time-scale 10000`: it answers at once), and in
the same run, for `eta route` (policies eta and round-robin), nginx and HAProxy:

1. added latency: `eta bench --rate 1000 --lengths exact --time-scale 1` with a tiny synthetic
   workload (16-token prompt, 1 output token) through each proxy and directly against the replica;
   added latency = proxy E2E percentile - direct E2E percentile (wall clock, see docs);
2. maximum requests/s through each proxy pinned to core 0 (`taskset -c 0`), `wrk` (POST
   /v1/completions, max_tokens 1) and the replica on core 1;
3. SSE chunks/s relayed by each proxy on core 0: streaming requests of 500 tokens (ignore_eos),
   driven by `eta bench`, chunks = its extra.stream_chunks / extra.wall_duration_s;
4. proxy memory per in-flight stream: RSS (/proc/PID/status, summed over the process group) before
   and with N streaming requests open (N = 1,000 and 10,000) against a replica at time scale 1;
5. optionally `perf record` of `eta route` under wrk load: the top symbols.

Prints a table and writes bench-proxy-out/: results.json (every figure), per-run bench JSON, wrk
output and logs. Every process runs in its own process group and is stopped on exit.
Process handling, /proc sampling and the nginx/HAProxy configurations: scripts/etalib.py.

Usage: scripts/bench_proxy.py --eta build/eta [--out DIR] [--quick]
"""

import argparse
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etalib  # noqa: E402
from etalib import group_fds, group_rss_kb  # noqa: E402

PROXIES = ["eta", "round-robin", "nginx", "haproxy"]
MODEL = "bench-model"
LABEL = {"direct": "direct (no proxy)", "eta": "eta route, eta", "round-robin": "eta route, round-robin",
         "nginx": "nginx", "haproxy": "HAProxy"}


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (max(n, hard), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, want), want))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class Bench:
    def __init__(self, a):
        self.a = a
        self.eta = os.path.abspath(a.eta)
        self.out = os.path.abspath(a.out)
        os.makedirs(self.out, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="eta-bench-proxy-")
        os.chmod(self.tmp, 0o755)
        self.procs = etalib.Procs(pid_log=os.path.join(self.out, "pids.txt"))
        self.res = {"machine": {}, "latency": {}, "rps": {}, "sse": {}, "memory": {}, "profile": None,
                    "notes": []}
        self.n = 0

    def log(self, s):
        print(s, flush=True)

    def logf(self, name):
        return open(os.path.join(self.out, name + ".log"), "a")

    # processes --------------------------------------------------------------------------------
    def start_replica(self, time_scale, core=None, extra=()):
        self.n += 1
        outp = os.path.join(self.tmp, "replica-%d.out" % self.n)
        args = [self.eta, "vllm-sim", "--port", "0", "--model", MODEL, "--time-scale", str(time_scale)]
        args += list(extra)
        if core is not None:
            args = ["taskset", "-c", str(core)] + args
        with open(outp, "w") as o, self.logf("replica") as e:
            p = self.procs.start("replica", args, o, e)
        got = etalib.read_listening(outp, p)
        if not got:
            raise RuntimeError("vllm-sim did not start (see replica.log)")
        return got[0], p

    def start_proxy(self, proxy, url, core=None, big=False):
        pre = ["taskset", "-c", str(core)] if core is not None else []
        log = self.logf(proxy)
        if proxy in ("eta", "round-robin"):
            self.n += 1
            outp = os.path.join(self.tmp, "route-%d.out" % self.n)
            args = pre + [self.eta, "route", "--port", "0", "--admin-port", "-1", "--policy", proxy,
                          "--log-level", "warn", "--replica", url]
            with open(outp, "w") as o:
                p = self.procs.start(proxy, args, o, log)
            got = etalib.read_listening(outp, p)
            if not got:
                raise RuntimeError("eta route did not start (see %s.log)" % proxy)
            return got[0], p
        port = etalib.free_port()
        self.n += 1

        def edit(conf):
            if proxy == "nginx":  # worker_processes 1, least_conn, keepalive 64
                conf = conf.replace("access_log %s/access.log;" % d, "access_log off;")
                if big:
                    conf = conf.replace("worker_connections 4096;", "worker_connections 30000;")
                    conf = conf.replace("worker_processes 1;",
                                        "worker_processes 1;\nworker_rlimit_nofile 65536;")
                return conf
            conf = conf.replace("global\n", "global\n  nbthread 1\n")
            return conf.replace("maxconn 4096", "maxconn %d" % self.max_streams) if big else conf
        d = os.path.join(self.tmp, "%s-%d" % (proxy, self.n))
        args = pre + etalib.proxy_command(proxy, d, port, [url], edit)
        p = self.procs.start(proxy, args, log, log)
        if not etalib.wait_port(port, p):
            raise RuntimeError("%s did not start (see %s.log)" % (proxy, proxy))
        return "http://127.0.0.1:%d" % port, p

    def run_bench(self, name, target, workload, extra=(), core=None, timeout=120):
        jp = os.path.join(self.out, name + ".json")
        cmd = [self.eta, "bench", "--target", target, "--workload", workload, "--lengths", "exact",
               "--time-scale", "1", "--model", MODEL, "--progress", "off", "--json", jp,
               "--label", name, "--timeout", "60"] + list(extra)
        if core is not None:
            cmd = ["taskset", "-c", str(core)] + cmd
        with self.logf("bench") as log:
            log.write("$ %s\n" % " ".join(cmd))
            log.flush()
            p = self.procs.start("bench", cmd, log, log)
            try:
                p.wait(timeout=timeout)
            finally:
                self.procs.stop(p)
        with open(jp) as f:
            return json.load(f)

    def targets(self, url, core=None, big=False):
        """Yields (name, target URL) for direct and each proxy, stopping each proxy after use."""
        yield "direct", url
        for proxy in self.a.proxies:
            try:
                purl, p = self.start_proxy(proxy, url, core=core, big=big)
            except RuntimeError as e:
                self.res["notes"].append("%s: %s" % (proxy, e))
                self.log("  %s: %s" % (proxy, e))
                continue
            try:
                yield proxy, purl
            finally:
                self.procs.stop(p)

    def wrk(self, name, target, lua, conns, extra=()):
        """wrk on core 1 for --wrk-seconds with CONNS connections, its output in OUT/NAME.txt."""
        cmd = ["taskset", "-c", "1", shutil.which("wrk"), "-t1", "-c%d" % conns,
               "-d%ds" % self.a.wrk_seconds] + list(extra) + ["-s", lua,
                                                              target + "/v1/completions"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=self.a.wrk_seconds + 30)
        with open(os.path.join(self.out, name + ".txt"), "w") as f:
            f.write("$ %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
        return r

    # 1. added latency ---------------------------------------------------------------------------
    def latency(self):
        n = self.a.lat_requests
        wl = "synthetic:n=%d,rate=1000,in=16,in_dist=fixed,out=1,out_dist=fixed" % n
        url, rep = self.start_replica(10000)
        try:
            self.run_bench("warmup", url, "synthetic:n=200,rate=1000,in=16,in_dist=fixed,out=1,out_dist=fixed",
                           ["--rate", "1000"])
            for name, target in self.targets(url):
                r = self.run_bench("latency-" + name, target, wl, ["--rate", "1000"])
                e = r["e2e_ms"]
                ex = r.get("extra", {})
                self.res["latency"][name] = {
                    "e2e_p50_ms": e["p50"], "e2e_p99_ms": e["p99"], "e2e_mean_ms": e["mean"],
                    "errors": r.get("errors"), "requests": e.get("count"),
                    "send_lateness_p99_ms": ex.get("send_lateness_wall_ms_p99"),
                    "connections_opened": ex.get("connections_opened")}
                self.log("  latency %-12s p50 %.3f ms  p99 %.3f ms  errors %s" % (name, e["p50"], e["p99"], r.get("errors")))
        finally:
            self.procs.stop(rep)
        d = self.res["latency"].get("direct")
        for name, x in self.res["latency"].items():
            if d and name != "direct":
                x["added_p50_us"] = (x["e2e_p50_ms"] - d["e2e_p50_ms"]) * 1000
                x["added_p99_us"] = (x["e2e_p99_ms"] - d["e2e_p99_ms"]) * 1000

    # 2. requests/s ------------------------------------------------------------------------------
    def rps(self):
        lua = os.path.join(self.tmp, "post.lua")
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    'wrk.body = \'{"model":"%s","prompt":"hello hello hello hello","max_tokens":1}\'\n' % MODEL)
        url, rep = self.start_replica(10000, core=1)
        try:
            for name, target in self.targets(url, core=0):
                r = self.wrk("wrk-" + name, target, lua, self.a.wrk_conns, ["--latency"])
                m = re.search(r"Requests/sec:\s*([0-9.]+)", r.stdout)
                errs = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", r.stdout)
                sock = re.search(r"Socket errors:.*", r.stdout)
                lat = {}
                for q in ("50", "99"):
                    mm = re.search(r"^\s+%s%%\s+([0-9.]+)(us|ms|s)" % q, r.stdout, re.M)
                    if mm:
                        lat["p" + q + "_ms"] = float(mm.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[mm.group(2)]
                self.res["rps"][name] = {"rps": float(m.group(1)) if m else None,
                                         "non_2xx": int(errs.group(1)) if errs else 0,
                                         "socket_errors": sock.group(0) if sock else None, **lat}
                self.log("  req/s   %-12s %s" % (name, m.group(1) if m else "?"))
        finally:
            self.procs.stop(rep)

    # 3. SSE chunks/s ----------------------------------------------------------------------------
    def sse(self):
        n = self.a.sse_requests
        wl = "synthetic:n=%d,rate=inf,in=16,in_dist=fixed,out=500,out_dist=fixed" % n
        url, rep = self.start_replica(10000, core=1)
        try:
            for name, target in self.targets(url, core=0):
                r = self.run_bench("sse-" + name, target, wl,
                                   ["--max-concurrency", str(self.a.sse_conc)], core=1)
                ex = r.get("extra", {})
                dur = ex.get("wall_duration_s") or 0
                ch = ex.get("stream_chunks") or 0
                self.res["sse"].setdefault(name, {}).update({"stream_chunks": ch, "wall_duration_s": dur,
                                         "chunks_per_s": ch / dur if dur else None,
                                         "errors": r.get("errors")})
                self.log("  SSE     %-12s %.0f chunks/s (%d chunks in %.2f s, errors %s)"
                         % (name, ch / dur if dur else 0, ch, dur, r.get("errors")))
        finally:
            self.procs.stop(rep)

    def sse_wrk(self):
        """SSE chunks/s measured with wrk (a lighter client than bench): completed streams x 500."""
        lua = os.path.join(self.tmp, "stream.lua")
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    'wrk.body = \'{"model":"%s","prompt":"hello hello hello hello","max_tokens":500,'
                    '"ignore_eos":true,"stream":true}\'\n' % MODEL)
        url, rep = self.start_replica(10000, core=1)
        try:
            for name, target in self.targets(url, core=0):
                r = self.wrk("wrk-sse-" + name, target, lua, self.a.sse_conc)
                m = re.search(r"Requests/sec:\s*([0-9.]+)", r.stdout)
                t = re.search(r"Transfer/sec:\s*([0-9.]+)(B|KB|MB|GB)", r.stdout)
                errs = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", r.stdout)
                x = self.res["sse"].setdefault(name, {})
                x["wrk_streams_per_s"] = float(m.group(1)) if m else None
                x["wrk_chunks_per_s"] = float(m.group(1)) * 500 if m else None
                x["wrk_mb_per_s"] = (float(t.group(1)) * {"B": 1e-6, "KB": 1 / 1024, "MB": 1, "GB": 1024}[t.group(2)]
                                     if t else None)
                x["wrk_non_2xx"] = int(errs.group(1)) if errs else 0
                self.log("  SSE/wrk %-12s %s chunks/s" % (name, "%.0f" % x["wrk_chunks_per_s"] if m else "?"))
        finally:
            self.procs.stop(rep)

    # 4. memory per stream -----------------------------------------------------------------------
    def memory(self):
        body = json.dumps({"model": MODEL, "prompt": "hello " * 8, "max_tokens": 3000,
                           "ignore_eos": True, "stream": True})
        for proxy in self.a.mem_proxies:
            self.res["memory"][proxy] = {}
            for n_asked in self.a.streams:
                n = min(n_asked, self.max_streams)
                if n < n_asked and proxy == self.a.mem_proxies[0]:
                    self.res["notes"].append("memory: %d streams asked, %d opened: the file descriptor "
                                             "hard limit is %d (2 per stream in the proxy)"
                                             % (n_asked, n, self.res["nofile"][1]))
                url, rep = self.start_replica(1, extra=[
                    "--max-num-seqs", "20000", "--num-gpu-blocks", "400000",
                    "--max-num-batched-tokens", "400000"])
                socks = []
                try:
                    purl, p = self.start_proxy(proxy, url, big=True)
                    try:
                        host, port = purl.split("://", 1)[1].split(":")
                        req = ("POST /v1/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                               "Content-Length: %d\r\n\r\n%s" % (host, len(body), body)).encode()
                        # warm up: a few short requests so the baseline includes the steady state
                        self.run_bench("mem-warm", purl, "synthetic:n=20,rate=inf,in=16,in_dist=fixed,out=2,out_dist=fixed")
                        time.sleep(0.3)
                        base = group_rss_kb(p.pid)
                        fds0 = group_fds(p.pid)
                        err = None
                        for i in range(n):
                            try:
                                s = socket.create_connection((host, int(port)), timeout=5)
                                s.sendall(req)
                                s.setblocking(False)
                                socks.append(s)
                            except OSError as e:
                                err = "opened %d of %d: %s" % (i, n, e)
                                break
                        # wait until the proxy holds both sides of every stream (or it stops growing)
                        deadline = time.time() + 20
                        last, stable = -1, 0
                        while time.time() < deadline:
                            f = group_fds(p.pid)
                            if f >= fds0 + 2 * len(socks):
                                break
                            stable = stable + 1 if f == last else 0
                            if stable >= 10:
                                break
                            last = f
                            time.sleep(0.2)
                        time.sleep(0.5)
                        # drain what has arrived so far, so the proxy is not blocked on a full socket
                        for s in socks:
                            try:
                                s.recv(65536)
                            except OSError:
                                pass
                        time.sleep(0.3)
                        rss = group_rss_kb(p.pid)
                        fds = group_fds(p.pid)
                        alive = p.poll() is None
                        x = {"streams_opened": len(socks), "rss_before_kb": base, "rss_with_kb": rss,
                             "fds_before": fds0, "fds_with": fds,
                             "per_stream_kb": (rss - base) / len(socks) if socks else None,
                             "proxy_alive": alive, "error": err}
                        self.res["memory"][proxy][str(n_asked)] = x
                        self.log("  memory  %-12s %5d streams: RSS %d -> %d kB, %.1f kB/stream, fds %d -> %d%s"
                                 % (proxy, len(socks), base, rss, x["per_stream_kb"] or 0, fds0, fds,
                                    "" if not err else " (" + err + ")"))
                    finally:
                        for s in socks:
                            s.close()
                        self.procs.stop(p)
                except RuntimeError as e:
                    self.res["memory"][proxy][str(n_asked)] = {"error": str(e)}
                finally:
                    self.procs.stop(rep)

    # 5. profile --------------------------------------------------------------------------------
    def profile(self):
        perf = shutil.which("perf")
        if not perf or subprocess.run([perf, "stat", "-e", "instructions", "true"],
                                      capture_output=True).returncode != 0:
            self.res["profile"] = {"error": "perf unavailable"}
            return
        lua = os.path.join(self.tmp, "post.lua")
        url, rep = self.start_replica(10000, core=1)
        try:
            purl, p = self.start_proxy("eta", url, core=0)
            try:
                data = os.path.join(self.tmp, "perf.data")
                wrk = self.procs.start("wrk", ["taskset", "-c", "1", shutil.which("wrk"), "-t1", "-c8",
                                               "-d4s", "-s", lua, purl + "/v1/completions"],
                                       subprocess.DEVNULL, subprocess.DEVNULL)
                time.sleep(0.5)
                subprocess.run([perf, "record", "-F", "999", "-g", "-o", data, "-p", str(p.pid), "--",
                                "sleep", "2.5"], capture_output=True, timeout=30)
                wrk.wait(timeout=30)
                self.procs.stop(wrk)
                rep_txt = subprocess.run([perf, "report", "-i", data, "--no-children", "--stdio",
                                          "--sort", "dso,symbol", "-g", "none", "--percent-limit", "1"],
                                         capture_output=True, text=True, timeout=60).stdout
                with open(os.path.join(self.out, "perf-eta-route.txt"), "w") as f:
                    f.write(rep_txt)
                top = []
                for line in rep_txt.splitlines():
                    m = re.match(r"\s+([0-9.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
                    if m:
                        top.append({"percent": float(m.group(1)), "dso": m.group(2), "symbol": m.group(3).strip()[:120]})
                dso_txt = subprocess.run([perf, "report", "-i", data, "--no-children", "--stdio",
                                          "--sort", "dso", "-g", "none"],
                                         capture_output=True, text=True, timeout=60).stdout
                by_dso = {}
                for line in dso_txt.splitlines():
                    m = re.match(r"\s+([0-9.]+)%\s+(\S+)", line)
                    if m:
                        by_dso[m.group(2)] = float(m.group(1))
                self.res["profile"] = {"top": top[:25], "by_dso": by_dso, "report": "perf-eta-route.txt"}
            finally:
                self.procs.stop(p)
        finally:
            self.procs.stop(rep)

    # ------------------------------------------------------------------------------------------
    def machine(self):
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        c0 = etalib.machine_cpu()
        time.sleep(1)
        c1 = etalib.machine_cpu()
        busy = (c1[0] - c0[0]) / max(1, c1[1] - c0[1])
        return {"nproc": os.cpu_count(), "loadavg": load, "busy_before_start": round(busy, 3),
                "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}

    def run(self):
        self.res["machine"] = self.machine()
        self.res["nofile"] = raise_nofile(65536)
        # a stream holds two descriptors in the proxy (client and upstream): the hard limit caps N
        self.max_streams = max(100, (self.res["nofile"][1] - 200) // 2)
        self.log("bench-proxy: %d cores, load %s, %.0f %% busy before start; nofile %s"
                 % (self.res["machine"]["nproc"], " ".join(self.res["machine"]["loadavg"]),
                    100 * self.res["machine"]["busy_before_start"], self.res["nofile"]))
        steps = [("latency", self.latency), ("rps", self.rps), ("sse", self.sse), ("sse-wrk", self.sse_wrk), ("memory", self.memory)]
        if not self.a.no_profile:
            steps.append(("profile", self.profile))
        for name, fn in steps:
            self.log("[%s]" % name)
            try:
                fn()
            except Exception as e:  # noqa: BLE001  a failed step is reported, the others still run
                self.res["notes"].append("%s failed: %s" % (name, e))
                self.log("  %s failed: %s" % (name, e))
        self.res["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(self.res, f, indent=2)
        self.table()

    def table(self):
        r = self.res
        f = lambda v, fmt: "-" if v is None else fmt % v  # noqa: E731
        rows = ["| target | E2E p50 ms | E2E p99 ms | added p50 µs | added p99 µs | max req/s (1 core) "
                "| ×nginx | SSE chunks/s, bench | ×nginx | SSE chunks/s, wrk | ×nginx |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        ng_rps = r["rps"].get("nginx", {}).get("rps")
        ng_sse = r["sse"].get("nginx", {}).get("chunks_per_s")
        ng_wsse = r["sse"].get("nginx", {}).get("wrk_chunks_per_s")
        for name in ["direct"] + self.a.proxies:
            l, q, s = r["latency"].get(name, {}), r["rps"].get(name, {}), r["sse"].get(name, {})
            rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                LABEL[name], f(l.get("e2e_p50_ms"), "%.3f"), f(l.get("e2e_p99_ms"), "%.3f"),
                f(l.get("added_p50_us"), "%.0f"), f(l.get("added_p99_us"), "%.0f"),
                f(q.get("rps"), "%.0f"),
                f(q["rps"] / ng_rps if q.get("rps") and ng_rps and name != "direct" else None, "%.2f×"),
                f(s.get("chunks_per_s"), "%.0f"),
                f(s["chunks_per_s"] / ng_sse if s.get("chunks_per_s") and ng_sse and name != "direct" else None, "%.2f×"),
                f(s.get("wrk_chunks_per_s"), "%.0f"),
                f(s["wrk_chunks_per_s"] / ng_wsse if s.get("wrk_chunks_per_s") and ng_wsse and name != "direct" else None, "%.2f×")))
        print("\n" + "\n".join(rows))
        if r["memory"]:
            print("\n| proxy | streams | RSS before MB | RSS with MB | kB per stream |\n|---|---:|---:|---:|---:|")
            for proxy, by in r["memory"].items():
                for n, x in by.items():
                    if "rss_with_kb" in x:
                        print("| %s | %s | %.1f | %.1f | %.1f |" % (LABEL[proxy], x["streams_opened"],
                              x["rss_before_kb"] / 1024, x["rss_with_kb"] / 1024, x["per_stream_kb"] or 0))
                    else:
                        print("| %s | %s | - | - | %s |" % (LABEL[proxy], n, x.get("error")))
        if r.get("profile") and r["profile"].get("top"):
            print("\nperf, eta route under wrk: self time by object: " + ", ".join(
                "%s %.1f %%" % (k, v) for k, v in list(r["profile"].get("by_dso", {}).items())[:6]))
            print("top symbols:")
            for t in r["profile"]["top"][:12]:
                print("  %5.1f %%  %s  %s" % (t["percent"], t["dso"], t["symbol"].split("  ")[0]))
        for n in r["notes"]:
            print("note: " + n)
        print("\nwritten: %s/results.json" % os.path.relpath(self.out))

    def cleanup(self):
        self.procs.stop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eta", default="build/eta")
    ap.add_argument("--out", default="bench-proxy-out")
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--lat-requests", type=int, default=3000, help="requests per latency run (at 1,000/s)")
    ap.add_argument("--wrk-seconds", type=int, default=5)
    ap.add_argument("--wrk-conns", type=int, default=8)
    ap.add_argument("--sse-requests", type=int, default=400)
    ap.add_argument("--sse-conc", type=int, default=16)
    ap.add_argument("--streams", default="1000,10000")
    ap.add_argument("--mem-proxies", default="eta,nginx,haproxy")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    a = ap.parse_args()
    a.proxies = [p for p in a.proxies.split(",") if p]
    a.mem_proxies = [p for p in a.mem_proxies.split(",") if p]
    a.streams = [int(x) for x in a.streams.split(",") if x]
    if a.quick:
        a.lat_requests, a.wrk_seconds, a.sse_requests, a.streams = 1000, 2, 100, [1000]
    bad = [p for p in a.proxies + a.mem_proxies if p not in PROXIES]
    if bad or not os.access(a.eta, os.X_OK) or not shutil.which("wrk"):
        print("bench-proxy: unknown proxy %s, or %s / wrk missing (make deps build)" % (bad, a.eta),
              file=sys.stderr)
        return 2
    b = Bench(a)

    def body():
        b.run()
        return 0
    return etalib.run_stoppable("bench-proxy", body, b.cleanup)

if __name__ == "__main__":
    sys.exit(main())
