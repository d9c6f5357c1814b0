#!/usr/bin/env python3
"""Live peer-sync measurement (issue 13): one `eta route` vs 4 without peer sync vs 4 with it,
in front of the demo's four `eta vllm-sim` replicas (2 x h100 + 2 x a100, llama-3.1-8b), one
`nats-server`, `eta bench` spreading one workload over the routers (--target x4, round robin),
at fractions of the capacity `eta cluster-sim --find-capacity` measures. Everything on
127.0.0.1, bounded (--requests per run). Replicas are restarted cold for every run.

  python3 bench/peers/live_peer_sync.py --eta build/eta [--requests 800] [--loads 0.7,0.85]

Prints a markdown table (p50/p99 TTFT, E2E in simulated ms) and the bytes each router
published per request."""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPLICAS = [("h100", 0), ("h100", 1), ("a100", 2), ("a100", 3)]
ARCH = "llama-3.1-8b"
MODEL = "demo-model"
WORKLOAD = "azure-conv"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, tmp, name):
    out = open(os.path.join(tmp, name + ".out"), "w")
    err = open(os.path.join(tmp, name + ".err"), "w")
    return subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)


def wait_line(tmp, name, prefix, proc, timeout=20):
    path = os.path.join(tmp, name + ".out")
    end = time.time() + timeout
    while time.time() < end:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line[len(prefix):].strip()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError("%s did not start: %s" % (name, open(os.path.join(tmp, name + ".err")).read()))


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eta", default="build/eta")
    ap.add_argument("--requests", type=int, default=800)
    ap.add_argument("--loads", default="0.7,0.85")
    ap.add_argument("--time-scale", default="1")
    a = ap.parse_args()
    eta = os.path.abspath(a.eta)
    tmp = tempfile.mkdtemp(prefix="eta-peers-")
    cap_cmd = [eta, "cluster-sim", "--replicas", "2xh100,2xa100", "--arch", ARCH, "--workload",
               WORKLOAD, "--lengths", "hidden", "--find-capacity", "--num-requests",
               str(a.requests)]
    r = subprocess.run(cap_cmd, capture_output=True, text=True, check=True)
    capacity = float(re.search(r"capacity on .*?: ([0-9.]+) requests/s", r.stdout + r.stderr).group(1))
    print("capacity: %.2f requests/s (%s)" % (capacity, " ".join(cap_cmd[1:])))
    nats_port = free_port()
    nats = subprocess.Popen([shutil.which("nats-server") or "/usr/sbin/nats-server", "-a",
                             "127.0.0.1", "-p", str(nats_port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    rows = []
    try:
        for load in [float(x) for x in a.loads.split(",")]:
            for label, n_routers, sync in [("1 router", 1, False), ("4 routers", 4, False),
                                           ("4 routers + peer sync", 4, True)]:
                tag = "%s-%g" % (label.replace(" ", "").replace("+", "_"), load)
                procs = []
                try:
                    urls = []
                    for gpu, i in REPLICAS:
                        name = "%s-r%d" % (tag, i)
                        procs.append(start([eta, "vllm-sim", "--port", "0", "--model", MODEL,
                                            "--gpu", gpu, "--arch", ARCH, "--time-scale",
                                            a.time_scale, "--seed", str(i)], tmp, name))
                        urls.append(wait_line(tmp, name, "listening on ", procs[-1]))
                    routers, admins = [], []
                    for k in range(n_routers):
                        name = "%s-router%d" % (tag, k)
                        cmd = [eta, "route", "--port", "0", "--policy", "eta", "--log-level", "warn"]
                        for u, (gpu, _) in zip(urls, REPLICAS):
                            cmd += ["--replica", "%s,gpu=%s,arch=%s" % (u, gpu, ARCH)]
                        if sync:
                            cmd += ["--peer-sync", "nats://127.0.0.1:%d" % nats_port]
                        procs.append(start(cmd, tmp, name))
                        routers.append(wait_line(tmp, name, "listening on ", procs[-1]))
                        admins.append(wait_line(tmp, name, "admin on ", procs[-1]))
                    if sync:  # every router has heard the others
                        end = time.time() + 10
                        while time.time() < end:
                            peers = [json.load(urllib.request.urlopen(u + "/admin/peers"))
                                     for u in admins]
                            if all(len(p["peers"]) == n_routers - 1 for p in peers):
                                break
                            time.sleep(0.1)
                    out = os.path.join(tmp, tag + ".json")
                    cmd = [eta, "bench", "--workload", WORKLOAD, "--lengths", "hidden",
                           "--num-requests", str(a.requests), "--load", str(load), "--capacity",
                           "%.4f" % capacity, "--progress", "off", "--json", out, "--label", label]
                    for u in routers:
                        cmd += ["--target", u]
                    t0 = time.time()
                    subprocess.run(cmd, check=True, capture_output=True)
                    wall = time.time() - t0
                    rep = json.load(open(out))
                    row = {"label": label, "load": load, "wall_s": wall,
                           "ttft_p50": rep["ttft_ms"]["p50"], "ttft_p99": rep["ttft_ms"]["p99"],
                           "e2e_p99": rep["e2e_ms"]["p99"], "errors": rep.get("errors", 0)}
                    if sync:
                        st = [json.load(urllib.request.urlopen(u + "/admin/peers"))["stats"]
                              for u in admins]
                        row["bytes_per_request"] = sum(s["bytes_out"] for s in st) / a.requests
                        row["lost"] = sum(s["lost"] for s in st)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                finally:
                    stop(procs)
    finally:
        stop([nats])
    print()
    print("| load | routers | p50 TTFT ms | p99 TTFT ms | p99 vs 1 router | p99 E2E ms | errors | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        base = next(r for r in rows if r["load"] == row["load"] and r["label"] == "1 router")
        print("| %.2f | %s | %.0f | %.0f | %.2fx | %.0f | %d | %.0f |" % (
            row["load"], row["label"], row["ttft_p50"], row["ttft_p99"],
            row["ttft_p99"] / base["ttft_p99"], row["e2e_p99"], row["errors"], row["wall_s"]))
    for row in rows:
        if "bytes_per_request" in row:
            print("peer sync at %.2f: %.0f bytes published per request (all routers), %d frames lost"
                  % (row["load"], row["bytes_per_request"], row["lost"]))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
