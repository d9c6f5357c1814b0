"""`make demo`'s machinery (scripts/demo.py) in its quick form on a tiny workload: one table row
per router (all seven when nginx and haproxy are installed, else a `skipped` row for a missing
one), no errors in any run, the report and plots written, and every process the demo started --
replicas, routers (nginx's workers included: whole process groups), bench -- gone afterwards,
also when the demo is interrupted with SIGINT in the middle of a run."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import etatest

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "..", "scripts", "demo.py")
ROUTERS = ["round-robin", "least-request", "llm-d", "cache-aware", "llm-d-latency", "least-load",
           "eta", "nginx", "haproxy"]


def started_pids(out):
    with open(os.path.join(out, "pids.txt")) as f:
        return [int(line.split()[0]) for line in f if line.strip()]


def survivors(pids):
    """Processes still alive that the demo started, or that are in one of their groups."""
    left = []
    groups = set(pids)
    for d in os.listdir("/proc"):
        fields = etatest.etalib.proc_stat(d) if d.isdigit() else None
        if fields and fields[0] != "Z" and (int(d) in groups or int(fields[2]) in groups):
            left.append((int(d), fields))
    return left


class DemoTest(unittest.TestCase):
    def setUp(self):
        self.eta = etatest.eta_bin()
        self.out = tempfile.mkdtemp(prefix="eta-test-demo-")

    def tearDown(self):
        shutil.rmtree(self.out, ignore_errors=True)

    def test_quick_tiny_all_routers(self):
        t0 = time.time()
        r = subprocess.run(
            [sys.executable, DEMO, "--eta", self.eta, "--quick", "--requests", "24",
             "--time-scale", "4", "--out", self.out],
            capture_output=True, text=True, timeout=240)
        wall = time.time() - t0
        self.assertEqual(r.returncode, 0, "demo failed:\n%s\n%s" % (r.stdout, r.stderr))
        rows = {}
        in_table = False
        for line in r.stdout.splitlines():  # the results table: from its header to a blank line
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[:3] == ["router", "offered req/s", "done req/s"]:
                in_table = True
            elif not line.strip():
                in_table = False
            if in_table and cells[0] in ROUTERS:
                rows[cells[0]] = cells
        for router in ROUTERS:
            self.assertIn(router, rows, "no table row for %s:\n%s" % (router, r.stdout))
            if router in ("nginx", "haproxy") and not shutil.which(router):
                self.assertTrue(rows[router][1].startswith("skipped"), rows[router])
                continue
            self.assertEqual(rows[router][8], "0", "errors through %s: %s" % (router, rows[router]))
            self.assertGreater(float(rows[router][1]), 0, rows[router])  # offered req/s
            self.assertGreaterEqual(float(rows[router][2]), 0, rows[router])  # done req/s
            with open(os.path.join(self.out, router + ".json")) as f:
                rep = json.load(f)
            self.assertEqual(rep["errors"], 0)
            self.assertEqual(rep["extra"]["sent_requests"], 24)
            # The report leaves the warm-up out (bench --warmup): the table's offered rate is its.
            self.assertLess(rep["requests"], 24)
            self.assertGreater(rep["requests"], 0)
            self.assertAlmostEqual(float(rows[router][1]), rep["extra"]["offered_rps"], places=2)
            # Every request records the replica that served it, whichever router it went through.
            self.assertEqual(sum(rep["replicas"].values()), rep["requests"], rep["replicas"])
            with open(os.path.join(self.out, router + ".csv")) as f:
                served = [row["replica"] for row in csv.DictReader(f)]
            self.assertEqual(len(served), 24)
            self.assertNotIn("", served)
            self.assertTrue(os.path.exists(os.path.join(self.out, "load_%s.svg" % router)))
        if shutil.which("nginx"):
            self.assertEqual(rows["nginx"][9], "1.00x")
        for name in ("report.md", "cdf_e2e.svg", "cdf_ttft.svg", "cpu.json"):
            self.assertTrue(os.path.exists(os.path.join(self.out, name)), name)
        self.assertIn("CPU use", r.stdout)
        self.assertIn("/admin/replicas", r.stdout)
        self.assertRegex(r.stdout, r"dashboard: http://127\.0\.0\.1:\d+/dashboard")
        pids = started_pids(self.out)
        self.assertGreaterEqual(len(pids), 4 + 1 + 1)
        self.assertEqual(survivors(pids), [])
        print("demo took %.1f s" % wall)

    def test_sigint_stops_everything(self):
        router = "nginx" if shutil.which("nginx") else "round-robin"
        p = subprocess.Popen(
            [sys.executable, DEMO, "--eta", self.eta, "--quick", "--requests", "200",
             "--time-scale", "1", "--routers", router, "--out", self.out],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            pidfile = os.path.join(self.out, "pids.txt")
            deadline = time.time() + 60
            while time.time() < deadline:
                if os.path.exists(pidfile):
                    with open(pidfile) as f:
                        if "bench-" in f.read():
                            break
                if p.poll() is not None:
                    self.fail("demo ended early: %s" % (p.communicate(),))
                time.sleep(0.1)
            time.sleep(1.0)  # in the middle of the run
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 130, out + err)
        self.assertIn("interrupted", err)
        self.assertEqual(survivors(started_pids(self.out)), [])


if __name__ == "__main__":
    unittest.main()
