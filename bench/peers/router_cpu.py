#!/usr/bin/env python3
"""Router CPU per request with and without peer sync (issue 13): two `eta route` in front of one
`eta vllm-sim --time-scale 1000`, `eta bench` sending N short streamed requests through both
(round robin), CPU (utime + stime from /proc, all threads) of each router / requests it routed.
With peer sync each router also applies the other's events. Bounded: N requests per round.

  python3 bench/peers/router_cpu.py --eta build/eta [--requests 2000] [--rounds 3]"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, path):
    out = open(path, "w")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def line(path, prefix, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        for l in open(path):
            if l.startswith(prefix):
                return l[len(prefix):].strip()
        time.sleep(0.05)
    raise RuntimeError("no %r in %s" % (prefix, path))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eta", default="build/eta")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    eta = os.path.abspath(a.eta)
    tmp = tempfile.mkdtemp()
    port = free_port()
    nats = subprocess.Popen([shutil.which("nats-server") or "/usr/sbin/nats-server", "-a",
                             "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    sim = start([eta, "vllm-sim", "--port", "0", "--model", "m", "--time-scale", "1000"],
                os.path.join(tmp, "sim"))
    url = line(os.path.join(tmp, "sim"), "listening on ")
    results = {False: [], True: []}
    try:
        for _ in range(a.rounds):
            for sync in (False, True):
                routers = []
                for k in range(2):
                    cmd = [eta, "route", "--port", "0", "--admin-port", "-1", "--replica", url,
                           "--log-level", "warn"]
                    if sync:
                        cmd += ["--peer-sync", "nats://127.0.0.1:%d" % port]
                    path = os.path.join(tmp, "r%d" % k)
                    routers.append((start(cmd, path), line(path, "listening on ")))
                time.sleep(1.0)
                c0 = [cpu_s(p.pid) for p, _ in routers]
                cmd = [eta, "bench", "--workload", "synthetic:n=%d,in=100,out=10" % a.requests,
                       "--rate", "inf", "--max-concurrency", "16", "--progress", "off"]
                for _, u in routers:
                    cmd += ["--target", u]
                subprocess.run(cmd, check=True, capture_output=True)
                c1 = [cpu_s(p.pid) for p, _ in routers]
                per = sum(c1[i] - c0[i] for i in range(2)) / a.requests * 1e6
                results[sync].append(per)
                for p, _ in routers:
                    p.send_signal(signal.SIGTERM)
                    p.wait(timeout=10)
                print("peer sync %s: %.1f us CPU per request (both routers)" %
                      ("on " if sync else "off", per), flush=True)
    finally:
        sim.send_signal(signal.SIGTERM)
        nats.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    for sync in (False, True):
        v = results[sync]
        print("peer sync %s: %s us per request, mean %.1f" %
              ("on " if sync else "off", ", ".join("%.1f" % x for x in v), sum(v) / len(v)))


if __name__ == "__main__":
    main()
