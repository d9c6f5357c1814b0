"""`eta route`'s logs and metrics end to end: the access log (one JSON line per request, to a
file or stdout, never an API key), --log-format json, bad logging flags (one line, exit 2),
/metrics validated by Prometheus' own `promtool check metrics`, and the series for failovers,
admission rejections and prediction error."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import etatest
import test_route
from test_route import (BrokenReplica, RouterProcess, assert_error, completion, raw_stream,
                        start_router, start_sim)

KEY = "sk-secret-do-not-log"
ACCESS_KEYS = ["time", "request_id", "replica", "policy", "model", "prompt_tokens",
               "output_tokens", "predicted_ttft_ms", "ttft_ms", "predicted_e2e_ms", "e2e_ms",
               "dispatch_ms", "status", "retries", "stream", "error"]


def read_lines(path, n, timeout=10):
    """The file's lines once it has at least n of them (the writer is asynchronous)."""
    def lines():
        with open(path) as f:
            got = f.read().splitlines()
        return got if len(got) >= n else None
    return etatest.wait_until(lines, timeout=timeout, interval=0.05) or open(path).read()


class AccessLogTest(unittest.TestCase):
    def test_one_json_line_per_request_without_secrets(self):
        tmp = tempfile.mkdtemp(prefix="eta-access-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = os.path.join(tmp, "access.log")
        sim = start_sim(self)
        router = start_router(self, [sim], "--access-log", path, "--api-key", KEY,
                              "--log-format", "json")
        c = router.client()
        auth = {"Authorization": "Bearer " + KEY}
        r = c.request("POST", "/v1/completions", completion("plain words", max_tokens=7),
                      headers=auth)
        self.assertEqual(r.status, 200, r.body)
        s, _ = raw_stream(c, "/v1/completions",
                          completion("streamed words", max_tokens=5, stream=True), headers=auth)
        self.assertEqual(s.response.status, 200)
        unauth_r = c.request("POST", "/v1/completions", completion("x"),
                             headers={"Authorization": "Bearer sk-wrong"})
        assert_error(self, unauth_r, 401, "UnauthorizedError")
        assert_error(self, c.request("POST", "/v1/completions", {"model": "no-such", "prompt": "a"},
                                     headers=auth), 404, "NotFoundError")
        lines = read_lines(path, 4)
        self.assertIsInstance(lines, list, lines)
        self.assertEqual(len(lines), 4, lines)
        self.assertNotIn(KEY, "\n".join(lines))
        self.assertNotIn("sk-wrong", "\n".join(lines))
        recs = [json.loads(line) for line in lines]
        for rec in recs:
            self.assertEqual(list(rec), ACCESS_KEYS)
            self.assertEqual(rec["policy"], "eta")
            self.assertRegex(rec["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        plain, stream, unauth, unknown = recs
        self.assertEqual(plain["request_id"], int(r.headers["x-eta-request-id"]))
        self.assertEqual((plain["status"], plain["stream"], plain["error"]), (200, False, None))
        self.assertEqual(plain["replica"], sim.url)
        self.assertEqual(plain["model"], "sim-model")
        self.assertEqual(plain["output_tokens"], 7)
        self.assertGreater(plain["prompt_tokens"], 0)
        self.assertIsNone(plain["ttft_ms"])  # not streamed: no first token seen
        self.assertAlmostEqual(plain["predicted_ttft_ms"],
                               float(r.headers["x-eta-predicted-ttft-ms"]), places=2)
        self.assertAlmostEqual(plain["predicted_e2e_ms"],
                               float(r.headers["x-eta-predicted-e2e-ms"]), places=2)
        self.assertGreater(plain["e2e_ms"], 0)
        self.assertGreaterEqual(plain["dispatch_ms"], 0)
        self.assertLessEqual(plain["dispatch_ms"], plain["e2e_ms"])
        self.assertEqual((stream["status"], stream["stream"], stream["output_tokens"]),
                         (200, True, 5))
        self.assertGreater(stream["ttft_ms"], 0)
        self.assertLessEqual(stream["ttft_ms"], stream["e2e_ms"])
        self.assertEqual((unauth["status"], unauth["error"], unauth["replica"]),
                         (401, "unauthorized", None))
        self.assertEqual(unauth["request_id"], int(unauth_r.headers["x-eta-request-id"]))
        self.assertEqual((unknown["status"], unknown["error"], unknown["model"]),
                         (404, "unknown_model", "no-such"))
        # --log-format json: every line the router logged is a JSON object.
        logged = [json.loads(line) for line in router.stderr_lines if line.strip()]
        self.assertTrue(any("is healthy" in rec["msg"] for rec in logged), logged)
        for rec in logged:
            self.assertEqual(set(rec), {"time", "level", "msg"})

    def test_retries_and_failover_are_logged_and_counted(self):
        broken = BrokenReplica()
        self.addCleanup(broken.stop)
        sim = start_sim(self)
        router = RouterProcess(["--port", "0", "--admin-port", "0", "--policy", "round-robin",
                                "--replica", broken.url, "--replica", sim.url,
                                "--access-log", "-"])
        self.addCleanup(router.stop)
        c = router.client()
        for i in range(4):
            self.assertEqual(c.post("/v1/completions", completion("f%d" % i)).status, 200)
        # "-": stdout, after the two address lines, one line per request.
        lines = etatest.wait_until(lambda: router.stdout_lines[1:] if
                                   len(router.stdout_lines) >= 5 else None, timeout=10)
        self.assertTrue(router.stdout_lines[0].startswith("admin on "), router.stdout_lines)
        self.assertIsNotNone(lines, router.stdout_lines)
        recs = [json.loads(line) for line in lines]
        self.assertEqual([r["status"] for r in recs], [200] * 4)
        retried = [r for r in recs if r["retries"] > 0]
        self.assertTrue(retried, recs)
        for r in retried:
            self.assertEqual(r["replica"], sim.url)
            self.assertIsNone(r["error"])  # the retry succeeded: the client saw no error
        m = c.metrics()
        self.assertEqual(m.get("eta_failovers_total", replica=sim.url), len(retried))
        self.assertEqual(m.get("eta_retries_total", replica=broken.url), len(retried))

    def test_a_failure_with_nowhere_to_retry_counts_no_retry(self):
        # The only replica never sends a head: one attempt, 504 at its first-byte timeout. No
        # attempt moved to another replica, so there is no retry to log or count.
        from test_hostile import StubReplica
        stuck = StubReplica(mode="slow_head")
        self.addCleanup(stuck.stop)
        tmp = tempfile.mkdtemp(prefix="eta-access-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = os.path.join(tmp, "access.log")
        cfg = os.path.join(tmp, "eta.yaml")
        with open(cfg, "w") as f:
            f.write("timeouts: {first_byte_s: 0.3}\n")
        router = start_router(self, [stuck.url], "--config", cfg, "--access-log", path)
        c = router.client()
        assert_error(self, c.post("/v1/completions", completion("stuck")), 504,
                     "GatewayTimeoutError")
        lines = read_lines(path, 1)
        self.assertIsInstance(lines, list, lines)
        rec = json.loads(lines[0])
        self.assertEqual((rec["status"], rec["error"], rec["retries"]),
                         (504, "upstream_timeout", 0))
        m = c.metrics()
        self.assertEqual(m.get("eta_retries_total", replica=stuck.url) or 0, 0)

    def test_rejections_and_prediction_error_series(self):
        sim = start_sim(self)
        strict = start_router(self, [sim], "--ttft-slo-s", "0.000001")
        c = strict.client()
        for _ in range(3):
            assert_error(self, c.post("/v1/completions", completion("x")), 429,
                         "TooManyRequestsError")
        m = c.metrics()
        self.assertEqual(m.get("eta_admission_rejections_total", reason="shed_slo"), 3)
        self.assertEqual(m.get("eta_requests_total", replica="none", policy="eta", status="429"), 3)

        router = start_router(self, [sim])
        c = router.client()
        for i in range(3):
            s, _ = raw_stream(c, "/v1/completions", completion("p%d" % i, stream=True))
            self.assertEqual(s.response.status, 200)
        c.post("/v1/completions", completion("q"))
        m = c.metrics()
        self.assertEqual(m.value("eta_ttft_prediction_error_ratio_count", policy="eta"), 3)
        self.assertEqual(m.value("eta_e2e_prediction_error_ratio_count", policy="eta"), 4)
        self.assertEqual(m.types["eta_e2e_prediction_error_ratio"], "histogram")
        self.assertEqual(m.buckets("eta_e2e_prediction_error_ratio", policy="eta")[0], -0.9)
        self.assertEqual(m.buckets("eta_ttft_seconds", replica=sim.url)[-1], 60)

    def test_promtool_accepts_the_metrics(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool missing: run scripts/install-deps.sh")
        sim = start_sim(self)
        router = start_router(self, [sim])
        c = router.client()
        s, _ = raw_stream(c, "/v1/completions", completion("a", stream=True))
        self.assertEqual(s.response.status, 200)
        self.assertEqual(c.post("/v1/completions", completion("b")).status, 200)
        c.post("/v1/completions", {"model": "sim-model"})  # 400: the error series too
        text = c.get("/metrics").text()
        p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout + p.stderr, "")
        # promtool does fail on a metric that breaks the conventions.
        p = subprocess.run([promtool, "check", "metrics"],
                           input="# HELP eta_x_ms x\n# TYPE eta_x_ms counter\neta_x_ms 1\n",
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)


class LogFlagErrorTest(test_route.ConfigErrorTest):
    def test_errors(self):
        self.expect_exit_2(["--log-level", "loud"], "log level must be one of")
        self.expect_exit_2(["--log-format", "xml"], "log format must be text or json; got 'xml'")
        self.expect_exit_2([], "log format must be text or json", config="log_format: yaml\n")
        self.expect_exit_2(["--access-log", "/nonexistent-eta-dir/access.log"],
                           "cannot open access log /nonexistent-eta-dir/access.log")
        self.expect_exit_2(["--access-log", ""], "access log must be a file path")
        self.assertFalse(os.path.exists("/nonexistent-eta-dir"))


if __name__ == "__main__":
    unittest.main()
