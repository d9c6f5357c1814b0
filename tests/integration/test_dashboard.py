"""`eta route`'s live dashboard end to end: two `eta vllm-sim` replicas, `eta bench` traffic
through the router, the SSE stream (/admin/stream) read directly, and /dashboard loaded in
Debian's Chromium through playwright-core (tests/browser/dashboard.mjs): the replica rows appear,
their numbers change while traffic flows, a decision with its winner appears, and a screenshot is
saved to build/test-output/dashboard.png (its path is printed)."""

import http.client
import json
import os
import shutil
import subprocess
import time
import unittest

import etatest

MODEL = "sim-model"
TIME_SCALE = "10"
HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.normpath(os.path.join(HERE, "..", "browser"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def output_dir():
    d = os.environ.get("ETA_TEST_OUTPUT") or os.path.join(
        os.path.dirname(os.path.abspath(etatest.eta_bin())), "test-output")
    os.makedirs(d, exist_ok=True)
    return d


def ensure_playwright():
    etatest.npm_ci(BROWSER_DIR, "playwright-core")


class RouterProcess(etatest.EtaRouter):
    """`eta route ...`: `listening on URL`, then `admin on URL`."""


def read_events(host, port, path, n, timeout=10.0):
    """Opens the SSE stream and returns (status, headers, [(monotonic time, parsed JSON)])."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "text/event-stream"})
        resp = conn.getresponse()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        if resp.status != 200:
            return resp.status, headers, resp.read()
        stream = etatest.Stream(conn, resp, time.monotonic())
        events = []
        for ev in stream:
            events.append((ev.time, ev.json()))
            if len(events) >= n:
                break
        return resp.status, headers, events
    finally:
        conn.close()


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.procs = []
        cls.bench = None
        try:
            cls.sims = [etatest.start_sim("--time-scale", TIME_SCALE, "--seed", str(i), model=MODEL)
                        for i in range(2)]
            cls.procs += cls.sims
            args = ["--port", "0", "--admin-port", "0", "--policy", "eta"]
            for s in cls.sims:
                args += ["--replica", s.url]
            cls.router = RouterProcess(args)
            cls.procs.append(cls.router)
            # Traffic for the whole class: --rate is in simulated time, so 40 requests/s of wall time
            # at time scale 10 (for up to 30 s; stopped in tearDownClass).
            cls.bench = subprocess.Popen(
                [etatest.eta_bin(), "bench", "--target", cls.router.url, "--workload",
                 "synthetic:n=1200,in=200,out=60", "--rate", "4",
                 "--seed", "1", "--progress", "off"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            # Wait until the router has completed some requests.
            c = etatest.Client(cls.router.admin_host, cls.router.admin_port)
            ok = etatest.wait_until(
                lambda: sum(r["window"]["ttft_samples"]
                            for r in c.get_json("/admin/replicas")[1]["replicas"]) >= 10,
                timeout=20, interval=0.2)
            c.close()
            if not ok:
                raise RuntimeError("no completed request through the router")
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.bench is not None and cls.bench.poll() is None:
            cls.bench.terminate()
            try:
                cls.bench.wait(timeout=10)
            except subprocess.TimeoutExpired:
                cls.bench.kill()
                cls.bench.wait()
        if cls.bench is not None:
            cls.bench.stderr.close()
        for p in reversed(cls.procs):
            p.stop()

    def admin(self):
        c = etatest.Client(self.router.admin_host, self.router.admin_port)
        self.addCleanup(c.close)
        return c

    def test_replicas_json_has_the_dashboard_fields(self):
        status, body = self.admin().get_json("/admin/replicas")
        self.assertEqual(status, 200)
        replicas = body["replicas"]
        self.assertEqual(sorted(r["url"] for r in replicas), sorted(s.url for s in self.sims))
        for r in replicas:
            w = r["window"]
            self.assertGreater(w["ttft_samples"], 0)
            self.assertGreater(w["requests_per_s"], 0)
            self.assertGreater(w["tokens_per_s"], w["requests_per_s"])
            self.assertGreater(w["ttft_p50_s"], 0)
            self.assertGreaterEqual(w["ttft_p99_s"], w["ttft_p50_s"])
            # At time scale 10 a first token takes well under a second of wall time.
            self.assertLess(w["ttft_p50_s"], 1.0)
            self.assertTrue(r["scrape"]["fresh"])
            self.assertIsNotNone(r["predicted_typical"]["ttft_s"])

    def test_stream_pushes_snapshots_at_least_twice_a_second(self):
        status, headers, events = read_events(
            self.router.admin_host, self.router.admin_port, "/admin/stream?interval_ms=250", 9)
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"))
        self.assertEqual(len(events), 9)
        # 8 intervals after the first (immediate) event: about 2 s at 4 Hz; >= 2 Hz required.
        span = events[-1][0] - events[1][0]
        self.assertLess(span, 7 * 0.5, "events too slow: %.2f s for 7 intervals" % span)
        self.assertEqual(events[-1][1]["interval_s"], 0.25)
        first, last = events[0][1], events[-1][1]
        self.assertEqual(sorted(r["url"] for r in last["replicas"]),
                         sorted(s.url for s in self.sims))
        self.assertEqual(last["policy"], "eta")
        # Traffic flows: decisions arrive, only new ones, each with every candidate's prediction.
        self.assertGreater(last["decisions_total"], first["decisions_total"])
        ids = [d["request_id"] for _, e in events for d in e["decisions"]]
        self.assertGreater(len(ids), 0)
        self.assertEqual(len(ids), len(set(ids)), "a decision was sent twice")
        d = events[-1][1]["decisions"] or [d for _, e in events for d in e["decisions"]]
        dec = d[-1]
        self.assertIn(dec["chosen"], [s.url for s in self.sims])
        self.assertEqual(len(dec["candidates"]), 2)
        for c in dec["candidates"]:
            self.assertIsNotNone(c["predicted_ttft_s"])
        # Predicted vs actual of the completed requests.
        completed = sum(e["completions_new"] for _, e in events[1:])
        self.assertGreater(completed, 0)
        recent = last["accuracy"]["recent"]
        self.assertGreater(recent["ttft"]["n"], 0)
        self.assertGreater(recent["ttft"]["actual_median_s"], 0)
        self.assertGreater(recent["e2e"]["predicted_median_s"], 0)

    def test_stream_rejects_bad_parameters(self):
        for q in ["interval_ms=10", "interval_ms=x", "decisions=1000", "colour=red"]:
            status, headers, body = read_events(
                self.router.admin_host, self.router.admin_port, "/admin/stream?" + q, 1)
            self.assertEqual(status, 400, q)
            err = json.loads(body)["error"]
            self.assertEqual(err["type"], "BadRequestError")
            self.assertTrue(err["message"], q)

    def test_assets_are_served_from_the_binary(self):
        c = self.admin()
        for path, ctype in [("/dashboard", "text/html"), ("/dashboard/dashboard.js", "text/javascript"),
                            ("/dashboard/dashboard.css", "text/css")]:
            r = c.get(path)
            self.assertEqual(r.status, 200, path)
            self.assertTrue(r.headers["content-type"].startswith(ctype), r.headers)
            self.assertGreater(len(r.body), 500)
        self.assertEqual(c.get("/dashboard/missing.js").status, 404)
        # Nothing from elsewhere: every script/stylesheet reference is to this router.
        html = c.get("/dashboard").body.decode()
        self.assertNotRegex(html, r"(src|href)=\"(https?:)?//")

    def test_browser_shows_live_replicas_and_decisions(self):
        if not os.path.exists(CHROMIUM):
            self.fail("%s is missing: run scripts/install-deps.sh" % CHROMIUM)
        node = shutil.which("node")
        if not node:
            self.fail("node is missing: run scripts/install-deps.sh")
        ensure_playwright()
        shot = os.path.join(output_dir(), "dashboard.png")
        if os.path.exists(shot):
            os.remove(shot)
        url = self.router.admin_url + "/dashboard"
        p = subprocess.run([node, os.path.join(BROWSER_DIR, "dashboard.mjs"), url, shot, "3000"],
                           cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        seen = json.loads(p.stdout.strip().splitlines()[-1])
        print("dashboard screenshot:", shot)
        self.assertEqual(seen["status"], 200)
        self.assertEqual(seen["errors"], [])
        self.assertEqual(seen["live"], "live")
        # Only the router was asked for anything.
        for u in seen["requests"]:
            self.assertTrue(u.startswith(self.router.admin_url + "/"), u)
        # Both replicas have a row, with numbers.
        sims = sorted(s.url for s in self.sims)
        self.assertEqual(sorted(r["url"] for r in seen["first"]), sims)
        self.assertEqual(sorted(r["url"] for r in seen["second"]), sims)
        for r in seen["second"]:
            self.assertRegex(r["ttft"], r"\d+(\.\d+)? ms / \d")
            self.assertNotEqual(r["rps"], "–")
            # Where its prefix-cache estimate comes from (no KV events here: the router's own).
            self.assertIn("prefix: router index", r["text"])
        # Updated at least twice a second while watched, and the numbers moved.
        secs = (seen["t_second"] - seen["t_first"]) / 1000
        self.assertGreaterEqual(seen["updates_second"] - seen["updates_first"], int(2 * secs) - 1)
        before = {r["url"]: (r["rps"], r["tps"], r["ttft"], r["inflight"]) for r in seen["first"]}
        after = {r["url"]: (r["rps"], r["tps"], r["ttft"], r["inflight"]) for r in seen["second"]}
        self.assertNotEqual(before, after, "no replica number changed in %.1f s" % secs)
        # A decision with its winner.
        self.assertGreater(len(seen["decisions"]), 0)
        self.assertGreater(len(seen["winners"]), 0)
        self.assertIn(seen["winners"][0].strip(), [u.replace("http://", "") for u in sims])
        self.assertRegex(seen["ttft_error"], r"\d+\.\d %")
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(shot), 10000)


if __name__ == "__main__":
    unittest.main()
