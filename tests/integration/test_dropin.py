"""`eta route` as a drop-in in front of vLLM (issue 11), against `eta vllm-sim` processes:
every route vLLM serves reaches the replica the router chose and gives the replica's answer,
requests vLLM accepts are never refused by the router, a replica's `--api-key` is sent on
forwarded requests and /v1/models polls (and a replica that refuses the polls is unroutable with
the reason), stored responses are retrieved from the replica that created them, and streams whose
events carry several tokens (`--stream-interval 4`) give the ledger and the speed model the same
counts as one token per event."""

import json
import os
import re
import tempfile
import unittest
import uuid

import etatest
from test_route import (MODEL, OTHER_MODEL, assert_error, completion, normalize, raw_stream,
                        start_router, start_sim, words)


def request_log_ids(path):
    """{request id: [events]} of a simulator's --request-log."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                out.setdefault(parts[2], []).append(parts[1])
    return out


def norm(body):
    body = normalize(body)
    return re.sub(rb'"(id|created_at)":("[a-z]+[-_][0-9a-zA-Z]+"|\d+(\.\d+)?)', b'"\\1":X', body)


class RoutesTest(unittest.TestCase):
    """Two replicas of MODEL, each with a request log, behind an eta router."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="eta-dropin-")
        cls.logs = {}
        cls.sims = []
        for i in range(2):
            log = os.path.join(cls.tmp, "sim%d.log" % i)
            sim = start_sim(cls, "--request-log", log)
            cls.logs[sim.url] = log
            cls.sims.append(sim)
        cls.by_url = {s.url: s for s in cls.sims}
        cls.router = start_router(cls, cls.sims, "--access-log",
                                  os.path.join(cls.tmp, "access.log"))
        cls.client = cls.router.client()

    def via_and_direct(self, path, body, method="POST"):
        """The router's answer and the answer of the replica it chose to the same request."""
        rid = uuid.uuid4().hex
        via = self.client.request(method, path, body, headers={"X-Request-Id": rid})
        replica = via.headers.get("x-eta-replica")
        self.assertIn(replica, self.by_url, (path, via.status, via.body))
        c = self.by_url[replica].client()
        direct = c.request(method, path, body)
        c.close()
        return via, direct, replica, rid

    def test_unknown_paths_get_vllms_404_and_405(self):
        for path in ("/v1/nothing", "/invocations", "/admin/replicas", "/v1/responses/"):
            r = self.client.post(path, {})
            self.assertEqual(r.status, 404, path)
            self.assertEqual(r.json(), {"error": {"message": "Not Found", "type": "Not Found",
                                                  "param": None, "code": 404}})
        r = self.client.get("/v1/completions")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers["allow"], "POST")
        self.assertEqual(r.json()["error"]["type"], "Method Not Allowed")

    def test_own_routes(self):
        r = self.client.get("/version")
        self.assertEqual(r.status, 200)
        self.assertRegex(r.json()["version"], r"^\d+\.\d+\.\d+$")
        self.assertEqual(self.client.get("/ping").status, 200)
        self.assertEqual(self.client.request("POST", "/ping", {}).status, 200)
        self.assertEqual(self.client.get("/health").status, 200)
        status, body = self.client.get_json("/v1/models")
        self.assertEqual([c["id"] for c in body["data"]], [MODEL])

    def test_vllm_accepted_requests_reach_a_replica_and_get_its_answer(self):
        # Each of these was refused with 400 by the router before issue 11.
        cases = [
            ("/v1/completions", completion("hello there", n=2)),
            ("/v1/completions", completion(["one two", "three four five"], max_tokens=5)),
            ("/v1/completions", completion([[1, 2, 3], [4, 5]], max_tokens=5)),
            ("/v1/completions", completion("x", max_tokens="16")),
            ("/v1/completions", completion("x", max_tokens=None)),
            ("/v1/completions", completion("x", max_tokens=0, echo=True)),
            ("/v1/completions", completion("x", best_of=3, n=1)),
            ("/v1/completions", {"prompt": "no model named", "max_tokens": 4}),
            ("/v1/chat/completions",
             {"model": MODEL, "max_completion_tokens": 6, "session_id": "s-1",
              "messages": [{"role": "user", "content": [
                  {"type": "text", "text": "what is this"},
                  {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}),
            ("/v1/chat/completions",
             {"messages": [{"role": "user", "content": "no model"}], "max_tokens": 3}),
        ]
        for path, body in cases:
            with self.subTest(body=json.dumps(body)[:80]):
                via, direct, replica, _ = self.via_and_direct(path, body)
                self.assertEqual(via.status, direct.status, (via.body, direct.body))
                if via.status == 400:
                    # the replica's own refusal, relayed (it is vLLM's to give)
                    self.assertEqual(via.body, direct.body)
                else:
                    self.assertEqual(norm(via.body), norm(direct.body))

    def test_every_route_reaches_the_chosen_replica(self):
        routes = [
            ("/v1/completions", completion("abc", max_tokens=3)),
            ("/v1/chat/completions",
             {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}),
            ("/v1/responses", {"model": MODEL, "input": "hi", "max_output_tokens": 3}),
            ("/v1/messages", {"model": MODEL, "max_tokens": 3,
                              "messages": [{"role": "user", "content": "hi"}]}),
            ("/v1/messages/count_tokens",
             {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
            ("/v1/completions/render", {"model": MODEL, "prompt": "hi"}),
            ("/v1/chat/completions/render",
             {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
            ("/v1/embeddings", {"model": MODEL, "input": ["a b", "c d"]}),
            ("/pooling", {"model": MODEL, "input": "a b"}),
            ("/classify", {"model": MODEL, "input": ["a b"]}),
            ("/score", {"model": MODEL, "text_1": "q", "text_2": ["a", "b"]}),
            ("/v1/score", {"model": MODEL, "text_1": "q", "text_2": "a"}),
            ("/rerank", {"model": MODEL, "query": "q", "documents": ["a", "b"]}),
            ("/v1/rerank", {"model": MODEL, "query": "q", "documents": ["a", "b"]}),
            ("/v2/rerank", {"model": MODEL, "query": "q", "documents": ["a", "b"]}),
            ("/tokenize", {"model": MODEL, "prompt": "hello world"}),
            ("/detokenize", {"model": MODEL, "tokens": [1, 2, 3]}),
        ]
        for path, body in routes:
            with self.subTest(path):
                via, direct, replica, rid = self.via_and_direct(path, body)
                # The replica's answer, whatever it is (a simulator without a route answers
                # vLLM's 404 itself: the request still went there).
                self.assertEqual(via.status, direct.status, (path, via.body, direct.body))
                self.assertEqual(norm(via.body), norm(direct.body), path)
                # The replica the router named saw this very request, and only it (the
                # simulator logs every request it serves; generation ones at least).
                other = [u for u in self.logs if u != replica][0]
                self.assertNotIn(rid, request_log_ids(self.logs[other]), path)
                # Every route the engine serves is in the simulator's request log.
                if path not in ("/tokenize", "/detokenize", "/v1/messages/count_tokens",
                                "/v1/completions/render", "/v1/chat/completions/render"):
                    self.assertEqual(via.status, 200, (path, via.body))
                    self.assertIn(rid, request_log_ids(self.logs[replica]), path)

    def test_audio_multipart_is_relayed_byte_for_byte(self):
        boundary = "etaBoundary7MA4YWxk"
        audio = bytes(range(256)) * 8
        body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
                 "Content-Type: audio/wav\r\n\r\n" % boundary).encode() + audio +
                ("\r\n--%s\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n%s\r\n--%s--"
                 "\r\n" % (boundary, MODEL, boundary)).encode())
        rid = uuid.uuid4().hex
        headers = {"Content-Type": "multipart/form-data; boundary=" + boundary}
        via = self.client.request("POST", "/v1/audio/transcriptions", body,
                                  headers=dict(headers, **{"X-Request-Id": rid}))
        replica = via.headers.get("x-eta-replica")
        self.assertIn(replica, self.by_url, via.body)
        self.assertEqual(via.status, 200, via.body)
        self.assertIn(rid, request_log_ids(self.logs[replica]))
        c = self.by_url[replica].client()
        direct = c.request("POST", "/v1/audio/transcriptions", body, headers=headers)
        c.close()
        self.assertEqual(via.status, direct.status)
        self.assertEqual(norm(via.body), norm(direct.body))

    def test_stream_the_router_counts_exactly_is_the_clients_own(self):
        # The router asks for continuous usage; the client sees what it asked for, and the
        # ledger counts the exact tokens.
        before = self.client.metrics()
        total = 0
        for opts in (None, {"include_usage": True}, {"include_usage": True,
                                                     "continuous_usage_stats": True}):
            for path, body in (
                    ("/v1/completions", completion(words(8), max_tokens=20, ignore_eos=True,
                                                   stream=True)),
                    ("/v1/chat/completions",
                     {"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                      "max_tokens": 20, "ignore_eos": True, "stream": True})):
                if opts:
                    body = dict(body, stream_options=opts)
                s, via = raw_stream(self.client, path, body)
                replica = s.headers["x-eta-replica"]
                c = self.by_url[replica].client()
                _, direct = raw_stream(c, path, body)
                c.close()
                self.assertEqual(normalize(via), normalize(direct), (path, opts))
                self.assertEqual(b'"usage"' in via, opts is not None, (path, opts))
                total += 20
        after = self.client.metrics()

        def tokens(m):
            return sum(v for _, v in m.find("eta_output_tokens_total"))

        self.assertEqual(tokens(after) - tokens(before), total)


class SeveralModelsTest(unittest.TestCase):
    def test_no_model_with_several_gets_vllms_400(self):
        a = start_sim(self)
        b = start_sim(self, model=OTHER_MODEL)
        router = start_router(self, [a, b])
        c = router.client()
        r = c.post("/v1/completions", {"prompt": "x"})
        err = assert_error(self, r, 400, "BadRequestError")
        self.assertEqual(err["param"], "model")
        r = c.post("/v1/completions", dict(completion("x"), model="nope"))
        assert_error(self, r, 404, "NotFoundError")
        c.close()


class UpstreamAuthRulesTest(unittest.TestCase):
    """The header rules, seen by a replica that logs what it receives and, with a key, answers
    vLLM's 401 on /v1 without it (test_hostile.StubReplica)."""

    UP = "sk-upstream-4a7d"

    def stub(self, api_key=None):
        from test_hostile import StubReplica
        s = StubReplica(api_key=api_key)
        self.addCleanup(s.stop)
        return s

    def key_file(self, key):
        fd, path = tempfile.mkstemp()
        with os.fdopen(fd, "w") as f:
            f.write("# the replicas' key\n\n%s\n" % key)
        self.addCleanup(os.unlink, path)
        return path

    def post(self, router, key=None):
        c = router.client()
        headers = {"Authorization": "Bearer " + key} if key else {}
        r = c.request("POST", "/v1/completions", completion("hi"), headers=headers)
        c.close()
        return r

    def test_upstream_key_replaces_the_clients_on_requests_and_polls(self):
        s = self.stub(api_key=self.UP)
        router = start_router(self, [s.url], "--upstream-api-key-file", self.key_file(self.UP),
                              "--api-key", "sk-client")
        r = self.post(router, "sk-client")
        self.assertEqual(r.status, 200, r.body)
        sent = s.forwarded()[-1][2]
        self.assertEqual(sent.get("authorization"), "Bearer " + self.UP)
        self.assertTrue(s.polls)
        self.assertEqual(set(s.polls), {"Bearer " + self.UP})

    def test_router_keys_are_never_forwarded(self):
        s = self.stub()
        router = start_router(self, [s.url], "--api-key", "sk-client")
        self.assertEqual(self.post(router, "sk-client").status, 200)
        self.assertNotIn("authorization", s.forwarded()[-1][2])

    def test_without_router_keys_the_clients_key_goes_through(self):
        s = self.stub()
        router = start_router(self, [s.url])
        self.assertEqual(self.post(router, "sk-for-the-replica").status, 200)
        self.assertEqual(s.forwarded()[-1][2].get("authorization"), "Bearer sk-for-the-replica")
        # ...unless an upstream key is set
        s2 = self.stub()
        router2 = start_router(self, [s2.url], "--upstream-api-key-file", self.key_file(self.UP))
        self.assertEqual(self.post(router2, "sk-for-the-replica").status, 200)
        self.assertEqual(s2.forwarded()[-1][2].get("authorization"), "Bearer " + self.UP)

    def test_a_replica_refusing_the_polls_is_unroutable_with_the_reason(self):
        s = self.stub(api_key=self.UP)
        router = start_router(self, [s.url])
        admin = router.admin()
        rep = etatest.wait_until(
            lambda: [r for r in admin.get_json("/admin/replicas")[1]["replicas"]
                     if r["unroutable_reason"]], timeout=5)
        self.assertTrue(rep)
        self.assertFalse(rep[0]["routable"])
        self.assertIn("unauthorized: /v1/models answered 401", rep[0]["unroutable_reason"])
        c = router.client()
        self.assertGreater(c.metrics().get("eta_scrape_failures_total", replica=s.url,
                                           reason="unauthorized"), 0)
        r = c.post("/v1/completions", completion("hi"))
        assert_error(self, r, 503, "ServiceUnavailableError")
        self.assertEqual(s.forwarded(), [])
        # reported once in the log however many polls fail (the models refresh polls again)
        n = len(s.polls)
        etatest.wait_until(lambda: len(s.polls) > n, timeout=8)
        self.assertGreater(len(s.polls), n)
        warned = [line for line in router.stderr_lines if "unauthorized" in line]
        self.assertEqual(len(warned), 1, warned)
        c.close()
        admin.close()

    def test_per_replica_keys_never_in_logs_admin_or_metrics(self):
        a = self.stub(api_key="sk-a-111")
        b = self.stub(api_key="sk-b-222")
        fd, cfg = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write("replicas:\n  - {url: %s, api_key: sk-a-111}\n  - {url: %s, api_key: sk-b-222}\n"
                    % (a.url, b.url))
        self.addCleanup(os.unlink, cfg)
        router = start_router(self, [], "--config", cfg, "--log-level", "debug",
                              "--access-log", "-", policy="round-robin")
        for i in range(4):
            self.assertEqual(self.post(router).status, 200)
        self.assertEqual(a.forwarded()[-1][2]["authorization"], "Bearer sk-a-111")
        self.assertEqual(b.forwarded()[-1][2]["authorization"], "Bearer sk-b-222")
        admin = router.admin()
        c = router.client()
        everything = (admin.get("/admin/replicas").body + admin.get("/admin/decisions").body +
                      c.metrics().text.encode() + "".join(router.stderr_lines).encode() +
                      "".join(router.stdout_lines).encode())
        for key in (b"sk-a-111", b"sk-b-222"):
            self.assertNotIn(key, everything)
        admin.close()
        c.close()


class UpstreamAuthTest(unittest.TestCase):
    KEY = "sk-upstream-9f3c"

    def key_file(self, key):
        fd, path = tempfile.mkstemp()
        with os.fdopen(fd, "w") as f:
            f.write("# the replicas' key\n%s\n" % key)
        self.addCleanup(os.unlink, path)
        return path

    def test_upstream_key_reaches_polls_and_requests(self):
        sim = start_sim(self, "--api-key", self.KEY)
        router = start_router(self, [sim], "--upstream-api-key-file", self.key_file(self.KEY),
                              "--api-key", "sk-client")
        c = router.client()
        auth = {"Authorization": "Bearer sk-client"}
        r = c.request("GET", "/v1/models", headers=auth)
        self.assertEqual([m["id"] for m in r.json()["data"]], [MODEL])
        r = c.request("POST", "/v1/completions", completion("hi"), headers=auth)
        self.assertEqual(r.status, 200, r.body)
        s = c.stream("/v1/chat/completions",
                     {"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                      "max_tokens": 5, "stream": True}, headers=auth)
        self.assertEqual(s.status, 200)
        self.assertTrue(list(s)[-1].done)
        s.close()
        # the client's own key never reaches the replica: the replica refuses it directly
        d = sim.client()
        self.assertEqual(d.request("POST", "/v1/completions", completion("hi"),
                                   headers=auth).status, 401)
        d.close()
        c.close()


class StreamIntervalTest(unittest.TestCase):
    # At time scale 1 a decode step takes ~10 ms of wall time. (At 10, ~1 ms steps, one-token
    # events reach the router in bunches and the gaps they give make the replica look about
    # twice as fast as it is: a limit of learning from wall-clock gaps, not of the counting.)
    def run_load(self, interval):
        sim = etatest.start_sim("--time-scale", "1", "--stream-interval", interval)
        self.addCleanup(sim.stop)
        router = start_router(self, [sim])
        c = router.client()
        for i in range(12):
            s = c.stream("/v1/completions", completion(words(20) + " %d" % i, max_tokens=64,
                                                       ignore_eos=True, stream=True))
            events = list(s)
            s.close()
            self.assertTrue(events[-1].done)
        m = c.metrics()
        tokens = sum(v for _, v in m.find("eta_output_tokens_total"))
        decode = m.value("eta_speed_factor", replica=sim.url, phase="decode")
        c.close()
        return tokens, decode, len(events)

    def test_four_token_events_count_as_four_tokens(self):
        t1, d1, e1 = self.run_load(1)
        t4, d4, e4 = self.run_load(4)
        self.assertLess(e4, e1)  # the events do carry several tokens
        self.assertEqual(t1, 12 * 64)
        self.assertEqual(t4, t1)
        # the same learned decode speed (not a 4x slower one)
        self.assertAlmostEqual(d4 / d1, 1.0, delta=0.1)
        # and the right one: the simulator runs its profile at time scale 1
        self.assertAlmostEqual(d1, 1.0, delta=0.2)
        self.assertAlmostEqual(d4, 1.0, delta=0.2)


class StoredResponsesTest(unittest.TestCase):
    def test_retrieval_reaches_the_creating_replica(self):
        sims = [start_sim(self) for _ in range(3)]
        router = start_router(self, sims, policy="round-robin")
        c = router.client()
        r = c.post("/v1/responses", {"model": MODEL, "input": "remember me",
                                     "max_output_tokens": 8, "store": True})
        self.assertEqual(r.status, 200, r.body)
        rid = r.json()["id"]
        creator = r.headers["x-eta-replica"]
        elsewhere = 0
        for i in range(20):
            x = c.post("/v1/completions", completion("other %d" % i))
            elsewhere += x.headers["x-eta-replica"] != creator
        self.assertGreaterEqual(elsewhere, 12)
        got = c.get("/v1/responses/" + rid)
        self.assertEqual(got.status, 200, got.body)
        self.assertEqual(got.headers["x-eta-replica"], creator)
        self.assertEqual(got.json()["id"], rid)
        cancel = c.post("/v1/responses/%s/cancel" % rid, {})
        self.assertEqual(cancel.headers["x-eta-replica"], creator)
        # A drained replica takes no new work but still answers for what it holds.
        admin = router.admin()
        status, _ = admin.post_json("/admin/replicas/drain", {"url": creator})
        self.assertEqual(status, 200)
        got = c.get("/v1/responses/" + rid)
        self.assertEqual((got.status, got.headers["x-eta-replica"]), (200, creator))
        self.assertNotEqual(c.post("/v1/completions", completion("new")).headers["x-eta-replica"],
                            creator)
        admin.post_json("/admin/replicas/undrain", {"url": creator})
        admin.close()
        # A streamed one: its id is learned from the stream's response.created event.
        s = c.stream("/v1/responses", {"model": MODEL, "input": "stream me", "stream": True,
                                       "max_output_tokens": 8})
        body = s.body()
        s.close()
        m = re.search(rb'"id":"(resp[-_][0-9a-zA-Z]+)"', body)
        self.assertIsNotNone(m, body[:300])
        got = c.get("/v1/responses/" + m.group(1).decode())
        self.assertEqual(got.headers["x-eta-replica"], s.headers["x-eta-replica"])
        c.close()


class FullQueueTest(unittest.TestCase):
    def test_a_full_queue_is_retried_elsewhere_not_a_health_failure(self):
        full = start_sim(self, "--max-num-seqs", "1", "--max-num-queued-reqs", "1")
        free = start_sim(self)
        router = start_router(self, [full, free], policy="round-robin")

        def one(i):
            c = router.client()
            s = c.stream("/v1/completions", completion("q %d" % i, max_tokens=200,
                                                       ignore_eos=True, stream=True))
            events = list(s)
            s.close()
            c.close()
            return s.status, events[-1].done if events else False

        from test_route import parallel
        results = parallel(6, list(range(6)), one)
        self.assertEqual(results, [(200, True)] * 6)
        c = router.client()
        m = c.metrics()
        self.assertGreaterEqual(m.get("eta_errors_total", reason="upstream_overloaded"), 1)
        self.assertEqual(m.get("eta_replica_healthy", replica=full.url), 1)
        self.assertEqual(m.get("eta_replica_routable", replica=full.url), 1)
        c.close()


class NoStatsTest(unittest.TestCase):
    def test_a_replica_without_vllm_metrics_routes_on_the_ledger(self):
        quiet = start_sim(self, "--disable-log-stats")
        router = start_router(self, [quiet])
        c = router.client()
        for i in range(3):
            self.assertEqual(c.post("/v1/completions", completion("x %d" % i)).status, 200)
        m = c.metrics()
        self.assertGreater(m.get("eta_scrape_failures_total", replica=quiet.url,
                                 reason="no_vllm_metrics"), 0)
        self.assertEqual(m.get("eta_replica_routable", replica=quiet.url), 1)
        c.close()


if __name__ == "__main__":
    unittest.main()
