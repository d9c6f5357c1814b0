"""`eta route` end to end against `eta vllm-sim` replicas: byte-identical relay (streaming and
not), headers, /v1/models union, errors, the eta policy's choices (fast replica, prefix holder),
failover when a replica is SIGKILLed, 429 shedding and the admission queue, drain and removal
through the admin API, client disconnects aborting upstream, /health, API keys, and the
configuration errors that exit with code 2."""

import http.server
import json
import os
import re
import signal
import tempfile
import threading
import time
import unittest

import etatest

MODEL = "sim-model"
OTHER_MODEL = "other-model"
TIME_SCALE = "10"


class Client(etatest.Client):
    """etatest.Client that closes its connection when dropped."""

    def __del__(self):
        self.close()


def client(proc):
    return Client(proc.host, proc.port)


class RouterProcess(etatest.EtaRouter):
    """`eta route ...`: prints `listening on URL` then `admin on URL`."""


def start_router(test_or_cls, replicas, *extra, policy="eta"):
    args = ["--port", "0", "--admin-port", "0", "--policy", policy]
    for r in replicas:
        args += ["--replica", r if isinstance(r, str) else r.url]
    args += list(extra)
    router = RouterProcess(args)
    _cleanup(test_or_cls, router, check_exit=True)
    return router


def start_sim(test_or_cls, *extra, model=MODEL):
    sim = etatest.start_sim("--time-scale", TIME_SCALE, *extra, model=model)
    _cleanup(test_or_cls, sim)
    return sim


def _cleanup(test_or_cls, proc, check_exit=False):
    def stop():
        code = proc.stop()
        if check_exit and code != 0:
            raise AssertionError("%s exited with %r; stderr:\n%s"
                                 % (" ".join(proc.args), code, "".join(proc.stderr_lines)))

    if isinstance(test_or_cls, type):
        test_or_cls.addClassCleanup(stop)
    else:
        test_or_cls.addCleanup(stop)


def normalize(body):
    """Removes what differs between two responses to the same request: id and created."""
    body = re.sub(rb'"id":"(cmpl|chatcmpl)-[0-9a-f]{32}"', b'"id":"ID"', body)
    return re.sub(rb'"created":\d+', b'"created":0', body)


def words(n, word="alpha"):
    return " ".join("w%d %s" % (i % 10, word) for i in range(n))


def completion(prompt, max_tokens=16, **kw):
    body = {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens}
    body.update(kw)
    return body


def raw_stream(client, path, body, headers=None):
    s = client.stream(path, body, headers=headers)
    try:
        data = s.body()
    finally:
        s.close()
    return s, data


def metric(client, name, **labels):
    return client.metrics().get(name, 0.0, **labels)


def assert_error(test, result, status, err_type):
    test.assertEqual(result.status, status, result.body)
    body = result.json()
    test.assertEqual(set(body), {"error"}, body)
    test.assertEqual(set(body["error"]), {"message", "type", "param", "code"})
    test.assertEqual(body["error"]["type"], err_type, body)
    test.assertEqual(body["error"]["code"], status)
    return body["error"]


def parallel(n_threads, jobs, fn):
    """Runs fn(job) for every job on n_threads threads; returns the results in job order."""
    results = [None] * len(jobs)
    lock = threading.Lock()
    nxt = [0]

    def worker():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(jobs):
                return
            try:
                results[i] = fn(jobs[i])
            except Exception as e:  # noqa: BLE001 - reported by the caller's asserts
                results[i] = e

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


class RouteTest(unittest.TestCase):
    """A fast and a slow replica of MODEL and one replica of OTHER_MODEL behind an eta router."""

    @classmethod
    def setUpClass(cls):
        cls.fast = start_sim(cls)
        cls.slow = start_sim(cls, "--speed", "0.5")
        cls.other = start_sim(cls, model=OTHER_MODEL)
        cls.sims = {s.url: s for s in (cls.fast, cls.slow, cls.other)}
        cls.router = start_router(cls, [cls.fast, cls.slow, cls.other])
        cls.client = cls.router.client()

    def direct(self, url):
        return client(self.sims[url])

    # ---- relay ------------------------------------------------------------------------------

    def test_non_streaming_relay_is_byte_identical(self):
        cases = [
            ("/v1/completions", completion(words(30), max_tokens=12)),
            ("/v1/chat/completions",
             {"model": MODEL, "messages": [{"role": "user", "content": words(20)}],
              "max_tokens": 9}),
        ]
        for path, body in cases:
            via = self.client.post(path, body)
            self.assertEqual(via.status, 200, via.body)
            replica = via.headers["x-eta-replica"]
            self.assertIn(replica, (self.fast.url, self.slow.url))
            direct = self.direct(replica).post(path, body)
            self.assertEqual(direct.status, 200)
            self.assertEqual(via.headers["content-type"], direct.headers["content-type"])
            self.assertEqual(normalize(via.body), normalize(direct.body), path)
            self.assertNotEqual(normalize(via.body), via.body)  # the ids were there

    def test_streaming_relay_is_byte_identical_and_incremental(self):
        for path, body in [
            ("/v1/completions",
             completion(words(20), max_tokens=40, stream=True,
                        stream_options={"include_usage": True})),
            ("/v1/chat/completions",
             {"model": MODEL, "messages": [{"role": "user", "content": words(10)}],
              "max_tokens": 30, "stream": True}),
        ]:
            s, via = raw_stream(self.client, path, body)
            self.assertEqual(s.status, 200)
            self.assertTrue(s.headers["content-type"].startswith("text/event-stream"))
            self.assertEqual(s.headers.get("transfer-encoding"), "chunked")
            replica = s.headers["x-eta-replica"]
            d, direct = raw_stream(self.direct(replica), path, body)
            self.assertEqual(normalize(via), normalize(direct), path)
            self.assertTrue(via.endswith(b"data: [DONE]\n\n"))
        # Chunk by chunk: a long generation's events arrive spread over its duration.
        s = self.client.stream("/v1/completions",
                               completion("go", max_tokens=300, ignore_eos=True, stream=True))
        try:
            events = list(s)
        finally:
            s.close()
        self.assertEqual(len(events), 301)
        self.assertTrue(events[-1].done)
        self.assertGreater(events[-2].time - events[0].time, 0.05)

    def test_headers(self):
        r = self.client.request("POST", "/v1/completions", completion("hi"),
                                headers={"x-eta-replica": "http://forged:1",
                                         "X-Eta-Predicted-Ttft-Ms": "0"})
        self.assertEqual(r.status, 200)
        self.assertIn(r.headers["x-eta-replica"], (self.fast.url, self.slow.url))
        self.assertGreater(float(r.headers["x-eta-predicted-ttft-ms"]), 0)
        self.assertGreaterEqual(float(r.headers["x-eta-predicted-e2e-ms"]),
                                float(r.headers["x-eta-predicted-ttft-ms"]))

    # ---- models -----------------------------------------------------------------------------

    def test_models_union_and_model_routing(self):
        status, body = self.client.get_json("/v1/models")
        self.assertEqual(status, 200)
        self.assertEqual(body["object"], "list")
        self.assertEqual(sorted(c["id"] for c in body["data"]), [OTHER_MODEL, MODEL])
        for card in body["data"]:
            self.assertEqual(card["object"], "model")
        for _ in range(4):
            r = self.client.post("/v1/completions", dict(completion("x"), model=OTHER_MODEL))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["x-eta-replica"], self.other.url)

    def test_unknown_model_and_bad_body(self):
        r = self.client.post("/v1/completions", dict(completion("x"), model="nope"))
        err = assert_error(self, r, 404, "NotFoundError")
        self.assertEqual(err["message"], "The model `nope` does not exist.")
        direct = client(self.fast).post("/v1/completions", dict(completion("x"), model="nope"))
        self.assertEqual(r.body, direct.body)
        # vLLM 2026: a body its pydantic model refuses gets type "Bad Request".
        r = self.client.post("/v1/completions", "{not json")
        assert_error(self, r, 400, "Bad Request")
        r = self.client.post("/v1/chat/completions", {"model": MODEL})
        assert_error(self, r, 400, "Bad Request")
        r = self.client.get("/v1/nothing")
        self.assertEqual(r.status, 404)

    # ---- policy -----------------------------------------------------------------------------

    def test_eta_sends_more_work_to_the_fast_replica(self):
        def one(i):
            s = self.router.client().stream(
                "/v1/completions",
                completion(words(40, "q%d" % i), max_tokens=64, ignore_eos=True, stream=True))
            try:
                events = list(s)
            finally:
                s.close()
            assert events and events[-1].done, "stream %d did not finish" % i
            return s.headers["x-eta-replica"]

        replicas = parallel(6, list(range(60)), one)
        for r in replicas:
            self.assertIsInstance(r, str, r)
        fast_share = sum(1 for r in replicas if r == self.fast.url) / len(replicas)
        # (least-request gets about 0.65 here, round-robin 0.5; eta close to 1)
        self.assertGreater(fast_share, 0.7, replicas)

        # Learned speed: the slow replica's decode factor is below the fast one's.
        status, body = self.router.admin().get_json("/admin/replicas")
        self.assertEqual(status, 200)
        speeds = {r["url"]: r["speed"]["decode_factor"] for r in body["replicas"]}
        self.assertLess(speeds[self.slow.url], speeds[self.fast.url])

    # ---- observability ----------------------------------------------------------------------

    def test_metrics_admin_and_decisions(self):
        self.assertEqual(self.client.post("/v1/completions", completion("m")).status, 200)
        m = self.client.metrics()
        total = sum(v for _, v in m.find("eta_requests_total"))
        self.assertGreater(total, 0)
        for name in ["eta_requests_total", "eta_errors_total", "eta_retries_total",
                     "eta_in_flight_requests", "eta_decision_seconds",
                     "eta_ttft_seconds", "eta_e2e_seconds", "eta_scrape_age_seconds",
                     "eta_scrape_failures_total", "eta_replica_routable"]:
            self.assertIn(name.replace("_total", ""), " ".join(m.types) + " " + m.text, name)
        self.assertGreater(m.get("eta_scrapes_total", replica=self.fast.url), 0)
        self.assertEqual(m.get("eta_replica_routable", replica=self.slow.url), 1)
        self.assertLess(m.get("eta_scrape_age_seconds", replica=self.fast.url), 2)

        admin = self.router.admin()
        status, body = admin.get_json("/admin/replicas")
        self.assertEqual(status, 200)
        urls = sorted(r["url"] for r in body["replicas"])
        self.assertEqual(urls, sorted(self.sims))
        for r in body["replicas"]:
            self.assertTrue(r["healthy"] and r["routable"])
            self.assertTrue(r["scrape"]["fresh"])
            self.assertGreater(r["limits"]["num_gpu_blocks"], 0)
            self.assertGreater(r["predicted_typical"]["e2e_s"], 0)
            for key in ["ledger", "speed", "models", "draining"]:
                self.assertIn(key, r)
        status, body = admin.get_json("/admin/decisions?last=3")
        self.assertEqual(status, 200)
        self.assertEqual(len(body["decisions"]), 3)
        d = body["decisions"][-1]
        for key in ["time", "request_id", "model", "prompt_tokens", "predicted_output_tokens",
                    "chosen", "reason", "candidates"]:
            self.assertIn(key, d)
        self.assertTrue(d["reason"].startswith("eta:"), d)
        for c in d["candidates"]:
            self.assertGreater(c["predicted_ttft_s"], 0)
            self.assertGreaterEqual(c["predicted_e2e_s"], c["predicted_ttft_s"])
        status, _ = admin.get_json("/admin/decisions?last=x")
        self.assertEqual(status, 400)

    def test_health_ok(self):
        r = self.client.get("/health")
        self.assertEqual(r.status, 200)


class PrefixTest(unittest.TestCase):
    def test_eta_follows_the_prefix(self):
        a = start_sim(self)
        b = start_sim(self)
        router = start_router(self, [a, b])
        client = router.client()
        system = words(700, "sys")  # ~1400 tokens shared by every request
        first = client.post("/v1/completions", completion(system + " first", max_tokens=4))
        self.assertEqual(first.status, 200)
        holder = first.headers["x-eta-replica"]
        for i in range(6):
            r = client.post("/v1/completions", completion(system + " q%d" % i, max_tokens=4))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["x-eta-replica"], holder, i)
        # Another prompt without that prefix is free to go to either; the decision log shows
        # the prefix hit on the holder.
        status, body = router.admin().get_json("/admin/decisions?last=1")
        self.assertGreater(body["decisions"][0]["cached_tokens"], 1000)


class FailoverTest(unittest.TestCase):
    def test_sigkill_mid_run(self):
        sims = [start_sim(self) for _ in range(3)]
        router = start_router(self, sims, policy="round-robin")
        victim = sims[1]
        results = []
        lock = threading.Lock()
        stop = threading.Event()
        killed_at = [None]

        def loop(k):
            client = router.client()
            i = 0
            while not stop.is_set():
                t = time.monotonic()
                r = client.post("/v1/completions",
                                completion(words(10, "k%d" % k), max_tokens=24, ignore_eos=True))
                with lock:
                    results.append((t, r.status, r.headers.get("x-eta-replica"), r.body))
                i += 1

        threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.6)
        killed_at[0] = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(30)
        for t, status, replica, body in results:  # in flight on the victim: retried
            self.assertEqual(status, 200, body)
        before = [r for r in results if r[0] < killed_at[0]]
        after = [r for r in results if r[0] >= killed_at[0]]
        self.assertTrue(any(r[2] == victim.url for r in before), "victim got no traffic")
        self.assertGreater(len(after), 20)
        for t, status, replica, body in after:
            self.assertEqual(status, 200, body)
            self.assertNotEqual(replica, None)
        late = [r for r in after if r[0] > killed_at[0] + 0.5]
        self.assertTrue(late)
        for r in late:
            self.assertNotEqual(r[2], victim.url)
        m = router.client().metrics()
        self.assertEqual(m.get("eta_replica_routable", replica=victim.url), 0)
        # The requests in flight on it when it died were retried elsewhere.
        self.assertGreater(m.get("eta_retries_total", replica=victim.url), 0)

    def test_mid_stream_failure_ends_with_an_error_event(self):
        sim = start_sim(self)
        spare = start_sim(self)
        router = start_router(self, [sim, spare], policy="round-robin")
        client = router.client()
        # Round-robin: find a stream on `sim`.
        for _ in range(2):
            s = client.stream("/v1/completions",
                              completion("long", max_tokens=3000, ignore_eos=True, stream=True))
            if s.headers["x-eta-replica"] == sim.url:
                break
            s.close()
        self.assertEqual(s.headers["x-eta-replica"], sim.url)
        events = []
        try:
            it = iter(s)
            for _ in range(3):
                events.append(next(it))
            sim.proc.send_signal(signal.SIGKILL)
            for ev in it:
                events.append(ev)
        finally:
            s.close()
        self.assertTrue(events[-1].done)
        err = events[-2].json()
        self.assertIn("error", err)
        self.assertIn("message", err["error"])
        # The next requests go to the live replica.
        for _ in range(3):
            r = client.post("/v1/completions", completion("x"))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["x-eta-replica"], spare.url)


class BrokenReplica:
    """A stub replica: healthy, serves MODEL, answers every generation with a 500."""

    BODY = json.dumps({"error": {"message": "engine dead", "type": "InternalServerError",
                                 "param": None, "code": 500}})

    def __init__(self):
        outer = self
        self.posts = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send(self, status, body, ctype="application/json"):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/health":
                    self.send(200, "")
                elif self.path == "/v1/models":
                    self.send(200, json.dumps({"object": "list",
                                               "data": [{"id": MODEL, "object": "model"}]}))
                elif self.path == "/metrics":
                    self.send(200, "vllm:num_requests_running 0\nvllm:num_requests_waiting 0\n",
                              "text/plain")
                else:
                    self.send(404, "{}")

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.posts += 1
                self.send(500, BrokenReplica.BODY)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class RetryTest(unittest.TestCase):
    def test_5xx_before_the_body_is_retried_elsewhere(self):
        broken = BrokenReplica()
        self.addCleanup(broken.stop)
        sim = start_sim(self)
        router = start_router(self, [broken.url, sim], policy="round-robin")
        c = router.client()
        for i in range(6):
            r = c.post("/v1/completions", completion("r%d" % i))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.headers["x-eta-replica"], sim.url)
        self.assertGreater(broken.posts, 0)
        m = c.metrics()
        self.assertGreater(m.get("eta_errors_total", reason="upstream_5xx"), 0)
        self.assertGreater(m.get("eta_retries_total", replica=broken.url), 0)
        # Out of replicas to retry on: the replica's 5xx is relayed as it was sent.
        alone = start_router(self, [broken.url])
        r = alone.client().post("/v1/completions", completion("x"))
        self.assertEqual(r.status, 500)
        self.assertEqual(r.body, BrokenReplica.BODY.encode())
        self.assertEqual(r.headers["x-eta-replica"], broken.url)

    def test_unreachable_replica_is_never_routable(self):
        sim = start_sim(self)
        # Nothing listens on the first URL: it is never healthy, so nothing is sent there...
        dead = "http://127.0.0.1:9"
        router = start_router(self, [dead, sim], policy="round-robin")
        for i in range(4):
            r = router.client().post("/v1/completions", completion("d%d" % i))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["x-eta-replica"], sim.url)
        status, body = router.admin().get_json("/admin/replicas")
        dead_report = [x for x in body["replicas"] if x["url"] == dead][0]
        self.assertFalse(dead_report["healthy"])
        self.assertIn("refused", dead_report["last_error"] or "")


class AdmissionTest(unittest.TestCase):
    def long_request(self, router, max_tokens=400):
        return router.client().post(
            "/v1/completions", completion("hold", max_tokens=max_tokens, ignore_eos=True))

    def test_429_when_over_the_in_flight_bound(self):
        sim = start_sim(self)
        router = start_router(self, [sim], "--max-in-flight", "2")
        results = parallel(8, list(range(8)), lambda _: self.long_request(router))
        statuses = sorted(r.status for r in results)
        self.assertIn(200, statuses)
        self.assertIn(429, statuses)
        for r in results:
            if r.status == 429:
                assert_error(self, r, 429, "TooManyRequestsError")
                self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assertGreater(
            metric(router.client(), "eta_errors_total", reason="shed_capacity"), 0)

    def test_ttft_slo_shedding(self):
        sim = start_sim(self)
        strict = start_router(self, [sim], "--ttft-slo-s", "0.000001")
        r = strict.client().post("/v1/completions", completion("x"))
        err = assert_error(self, r, 429, "TooManyRequestsError")
        self.assertIn("TTFT objective", err["message"])
        self.assertEqual(r.headers["retry-after"], "1")
        status, body = strict.admin().get_json("/admin/decisions?last=1")
        self.assertIsNone(body["decisions"][0]["chosen"])
        self.assertIn("shed", body["decisions"][0]["reason"])
        lenient = start_router(self, [sim], "--ttft-slo-s", "100", policy="least-request")
        self.assertEqual(lenient.client().post("/v1/completions", completion("x")).status, 200)

    def test_queue_holds_then_times_out(self):
        sim = start_sim(self)
        router = start_router(self, [sim], "--max-in-flight-per-replica", "1",
                              "--queue-size", "8", "--queue-timeout-s", "20")
        # Short requests queue behind each other and all succeed, in order.
        results = parallel(4, list(range(4)), lambda i: router.client().post(
            "/v1/completions", completion("q%d" % i, max_tokens=8)))
        for r in results:
            self.assertEqual(r.status, 200, r.body)

        router2 = start_router(self, [sim], "--max-in-flight", "1", "--queue-size", "1",
                               "--queue-timeout-s", "0.3")
        slow = threading.Thread(target=lambda: self.long_request(router2, 2500), daemon=True)
        slow.start()
        time.sleep(0.2)  # the long request holds the only slot
        t0 = time.monotonic()
        results = parallel(2, [0, 1], lambda i: (time.sleep(0.05 * i), router2.client().post(
            "/v1/completions", completion("x")))[1])
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses, [429, 429])
        messages = sorted(r.json()["error"]["message"] for r in results)
        self.assertTrue(any("queue is full" in m for m in messages), messages)
        self.assertTrue(any("waited" in m for m in messages), messages)
        self.assertGreater(time.monotonic() - t0, 0.25)
        slow.join(30)


class AdminTest(unittest.TestCase):
    def test_drain_add_remove(self):
        a = start_sim(self)
        b = start_sim(self)
        router = start_router(self, [a, b], policy="round-robin")
        admin = router.admin()
        client = router.client()
        # A long stream in flight on `a` when it is drained.
        for _ in range(2):
            s = client.stream("/v1/completions",
                              completion("drain", max_tokens=200, ignore_eos=True, stream=True))
            if s.headers["x-eta-replica"] == a.url:
                break
            s.close()
        self.assertEqual(s.headers["x-eta-replica"], a.url)
        status, body = admin.post_json("/admin/replicas/drain", {"url": a.url})
        self.assertEqual(status, 200, body)
        self.assertTrue(body["draining"])
        self.assertFalse(body["routable"])
        for _ in range(8):
            r = client.post("/v1/completions", completion("x"))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["x-eta-replica"], b.url)
        events = list(s)
        s.close()
        self.assertTrue(events[-1].done)
        self.assertEqual(len(events), 201)  # the in-flight request finished

        # Remove it (nothing in flight: at once), then add it back.
        r = admin.request("DELETE", "/admin/replicas", {"url": a.url})
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.json()["removed"])
        status, body = admin.get_json("/admin/replicas")
        self.assertEqual([x["url"] for x in body["replicas"]], [b.url])
        status, body = admin.post_json("/admin/replicas", {"url": a.url, "gpu": "a100"})
        self.assertEqual(status, 201, body)
        self.assertEqual(body["gpu"], "a100")
        status, body = admin.post_json("/admin/replicas", {"url": a.url})
        self.assertEqual(status, 409)
        ok = etatest.wait_until(
            lambda: any(x["url"] == a.url and x["routable"]
                        for x in admin.get_json("/admin/replicas")[1]["replicas"]), timeout=5)
        self.assertTrue(ok)
        seen = {client.post("/v1/completions", completion("y")).headers["x-eta-replica"]
                for _ in range(4)}
        self.assertEqual(seen, {a.url, b.url})
        status, body = admin.post_json("/admin/replicas/drain", {"url": "http://127.0.0.1:1"})
        self.assertEqual(status, 404)
        status, body = admin.post_json("/admin/replicas", {"url": "ftp://x"})
        self.assertEqual(status, 400)


class DisconnectTest(unittest.TestCase):
    def test_client_disconnect_aborts_upstream(self):
        sim = start_sim(self)
        router = start_router(self, [sim])
        direct = client(sim)
        before = direct.metrics().get("vllm:request_success_total", 0.0, finished_reason="abort")
        s = router.client().stream(
            "/v1/completions", completion("bye", max_tokens=3000, ignore_eos=True, stream=True))
        it = iter(s)
        next(it)
        next(it)
        s.close()
        aborted = etatest.wait_until(
            lambda: direct.metrics().get("vllm:request_success_total", 0.0,
                                         finished_reason="abort") > before, timeout=5)
        self.assertTrue(aborted)
        self.assertEqual(direct.get_json("/load")[1]["server_load"], 0)
        m = etatest.wait_until(
            lambda: metric(router.client(), "eta_errors_total", reason="client_disconnect"),
            timeout=2)
        self.assertTrue(m)


class HealthTest(unittest.TestCase):
    def test_503_when_every_replica_is_down(self):
        sim = start_sim(self)
        router = start_router(self, [sim], "--health-interval-s", "0.2")
        client = router.client()
        self.assertEqual(client.get("/health").status, 200)
        sim.proc.send_signal(signal.SIGKILL)
        sim.proc.wait(5)
        down = etatest.wait_until(lambda: client.get("/health").status == 503, timeout=5)
        self.assertTrue(down)
        assert_error(self, client.get("/health"), 503, "ServiceUnavailableError")
        r = client.post("/v1/completions", completion("x"))
        assert_error(self, r, 503, "ServiceUnavailableError")

    def test_api_keys(self):
        sim = start_sim(self)
        router = start_router(self, [sim], "--api-key", "sk-one", "--api-key", "sk-two")
        client = router.client()
        r = client.post("/v1/completions", completion("x"))
        assert_error(self, r, 401, "UnauthorizedError")
        r = client.request("POST", "/v1/completions", completion("x"),
                           headers={"Authorization": "Bearer sk-wrong"})
        assert_error(self, r, 401, "UnauthorizedError")
        r = client.request("POST", "/v1/completions", completion("x"),
                           headers={"Authorization": "Bearer sk-two"})
        self.assertEqual(r.status, 200)
        self.assertEqual(client.get("/health").status, 200)  # not behind the key


class ConfigErrorTest(unittest.TestCase):
    def expect_exit_2(self, args, needle, config=None):
        path = None
        if config is not None:
            fd, path = tempfile.mkstemp(suffix=".yaml")
            with os.fdopen(fd, "w") as f:
                f.write(config)
            args = args + ["--config", path]
        try:
            code, out, err = etatest.run_eta(["route", "--port", "0"] + args)
        finally:
            if path:
                os.unlink(path)
        self.assertEqual(code, 2, (out, err))
        self.assertEqual(out, "")
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("eta route: "), err)
        self.assertIn(needle, lines[0])

    def test_errors(self):
        self.expect_exit_2([], "unknown key 'polcy'", config="polcy: eta\n")
        self.expect_exit_2(["--replica", "ftp://127.0.0.1:1"], "bad URL 'ftp://127.0.0.1:1'")
        self.expect_exit_2(["--replica", "http://127.0.0.1:1", "--replica", "http://127.0.0.1:1/"],
                           "duplicate replica http://127.0.0.1:1")
        self.expect_exit_2(["--replica", "http://127.0.0.1:1", "--policy", "fastest"],
                           "unknown policy 'fastest'")
        self.expect_exit_2(["--policy", "eta", "--policy-params", "objective=soon"],
                           "objective must be one of")
        self.expect_exit_2([], "replicas[0].gpu must be a string",
                           config="replicas: [{url: 'http://a:1', gpu: [1]}]\n")
        # upstream auth (issue 11): a key file that cannot be read; an unknown replica key
        self.expect_exit_2(["--upstream-api-key-file", "/nonexistent/eta-key"],
                           "cannot read upstream_api_key_file /nonexistent/eta-key")
        self.expect_exit_2([], "unknown key 'apikey' in replicas[0]",
                           config="replicas: [{url: 'http://a:1', apikey: x}]\n")
        # flags have the file's types and ranges (one table: src/router/core/settings.cpp)
        self.expect_exit_2(["--admin-port", "70000"],
                           "--admin-port must be in [-1, 65535], got 70000")
        self.expect_exit_2(["--scrape-interval-s", "0"],
                           "--scrape-interval-s must be in [0.001, 3600], got 0")
        self.expect_exit_2(["--max-in-flight", "1.5"], "--max-in-flight must be an integer")
        self.expect_exit_2([], "scrape.interval_s must be in [0.001, 3600], got 0",
                           config="scrape: {interval_s: 0}\n")


if __name__ == "__main__":
    unittest.main()
