"""A real Prometheus (Debian's `prometheus` package, /usr/bin/prometheus) scrapes `eta route` and
two `eta vllm-sim` replicas while `eta bench` sends traffic through the router; the test then
asks Prometheus' HTTP API for the router's `eta_` series (a prediction-error histogram with a
nonzero count among them) and the replicas' `vllm:` series. Prometheus runs with its own
configuration on a free loopback port and a temporary data directory, and is stopped (with
everything else) at the end, also on failure."""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

import etatest
from test_route import start_router, start_sim

MODEL = "sim-model"
PROMETHEUS = "/usr/bin/prometheus"


def host_port(url):
    return url.split("://", 1)[1].rstrip("/")


class PrometheusProcess:
    def __init__(self, targets, tmp):
        self.port = etatest.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\nscrape_configs:\n")
            for job, urls in targets.items():
                f.write("  - job_name: %s\n    static_configs:\n      - targets: [%s]\n"
                        % (job, ", ".join("'%s'" % host_port(u) for u in urls)))
        self.log = open(os.path.join(tmp, "prometheus.log"), "w+")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file", config, "--storage.tsdb.path",
             os.path.join(tmp, "data"), "--web.listen-address", "127.0.0.1:%d" % self.port],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def get(self, path, timeout=5):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return r.status, r.read().decode()

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited with %r:\n%s" % (self.proc.returncode,
                                                                     self.output()))
        try:
            return self.get("/-/ready")[0] == 200
        except OSError:
            return False

    def query(self, promql):
        """Instant query; returns the list of (labels, float value)."""
        status, text = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        body = json.loads(text)
        if status != 200 or body.get("status") != "success":
            raise AssertionError("query %r failed: %s" % (promql, text))
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


class PrometheusTest(unittest.TestCase):
    def test_prometheus_scrapes_router_and_replicas(self):
        self.assertTrue(os.access(PROMETHEUS, os.X_OK),
                        "%s missing: run scripts/install-deps.sh" % PROMETHEUS)
        tmp = tempfile.mkdtemp(prefix="eta-prometheus-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        sims = [start_sim(self), start_sim(self, "--gpu", "a100")]
        router = start_router(self, sims)
        prom = PrometheusProcess({"eta-router": [router.url],
                                  "vllm": [s.url for s in sims]}, tmp)
        self.addCleanup(prom.stop)
        self.assertTrue(etatest.wait_until(prom.ready, timeout=30, interval=0.2),
                        "prometheus not ready:\n" + prom.output())

        # Streamed bench traffic (bench streams, so TTFT is measured) for a few seconds.
        bench = subprocess.Popen(
            [etatest.eta_bin(), "bench", "--target", router.url, "--workload", "synthetic",
             "--rate", "8", "--duration", "40", "--model", MODEL, "--progress", "off",
             "--timeout", "60"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

        def stop_bench():
            if bench.poll() is None:
                bench.terminate()
                bench.wait(timeout=10)

        self.addCleanup(stop_bench)

        expected_up = {"eta-router " + host_port(router.url): 1.0,
                       "vllm " + host_port(sims[0].url): 1.0,
                       "vllm " + host_port(sims[1].url): 1.0}

        def up():
            return {r["job"] + " " + r["instance"]: v for r, v in prom.query("up")}

        def scraped():
            # Every target scraped (Prometheus spreads their scrapes over the interval) and the
            # router's prediction-error histograms filled by the traffic.
            n = prom.query("sum(eta_ttft_prediction_error_ratio_count)")
            e = prom.query("sum(eta_e2e_prediction_error_ratio_count)")
            return up() == expected_up and n and e and n[0][1] > 0 and e[0][1] > 0

        self.assertTrue(etatest.wait_until(scraped, timeout=60, interval=0.5),
                        "targets %r; no prediction-error samples in Prometheus:\n%s"
                        % (up(), prom.output()))

        # The router's series, with their labels.
        requests = prom.query('eta_requests_total{status="200"}')
        self.assertTrue(requests, "no eta_requests_total")
        for labels, value in requests:
            self.assertEqual(labels["policy"], "eta")
            self.assertIn(labels["replica"], [s.url for s in sims])
            self.assertEqual(labels["job"], "eta-router")
        self.assertGreater(sum(v for _, v in requests), 0)
        for name in ["eta_decision_seconds_count", "eta_e2e_seconds_count",
                     "eta_ttft_seconds_count", "eta_ttft_prediction_error_ratio_count",
                     "eta_e2e_prediction_error_ratio_count", "eta_output_tokens_total",
                     "eta_scrapes_total"]:
            found = prom.query("sum(%s)" % name)
            self.assertTrue(found and found[0][1] > 0, name)
        ages = prom.query("eta_scrape_age_seconds")
        self.assertEqual(sorted(l["replica"] for l, _ in ages), sorted(s.url for s in sims))
        for _, age in ages:
            self.assertGreaterEqual(age, 0)
            self.assertLess(age, 5)
        self.assertEqual(len(prom.query("eta_in_flight_requests")), 2)
        # The histogram is usable as one: a median relative error between its extreme buckets.
        median = prom.query("histogram_quantile(0.5, sum by (le) "
                            "(eta_e2e_prediction_error_ratio_bucket))")
        self.assertTrue(median and -0.9 <= median[0][1] <= 10, median)

        # The replicas' own vLLM series, one per replica.
        running = prom.query('vllm:num_requests_running{job="vllm"}')
        self.assertEqual(sorted(l["instance"] for l, _ in running),
                         sorted(host_port(s.url) for s in sims))
        ttft = prom.query('sum(vllm:time_to_first_token_seconds_count{job="vllm"})')
        self.assertTrue(ttft and ttft[0][1] > 0, ttft)
        kv = prom.query('vllm:kv_cache_usage_perc{job="vllm"}')
        self.assertEqual(len(kv), 2)

        stop_bench()


if __name__ == "__main__":
    unittest.main()
