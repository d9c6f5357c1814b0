"""Model aliases in `eta route` against `eta vllm-sim` replicas that serve one model under
different names: a request for the public name reaches both replicas with the body's "model"
rewritten to each one's served name (the replicas answer 404 to any other name), and the answers
-- JSON bodies, every SSE event, errors, a retry's answer -- name the public model again;
/v1/models, the decision log and the access log use the public name; bad alias configurations
exit with code 2 and one line."""

import json
import os
import signal
import tempfile
import unittest

import etatest
from test_route import RouterProcess, _cleanup

PUBLIC = "llama-2-7b-chat"
SERVED = ["llama-2-7b-replica-1", "llama-2-7b-replica-2"]
TIME_SCALE = "10"


def write(text, name="eta.yaml"):
    d = tempfile.mkdtemp(prefix="eta-aliases-")
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def alias_yaml(served=SERVED, extra=""):
    return ("models:\n  - name: %s\n    served_names: [%s]\n" % (PUBLIC, ", ".join(served))
            + extra)


def received(log):
    """Requests a replica received (its --request-log)."""
    try:
        with open(log) as f:
            return sum(1 for line in f if line.split()[1:2] == ["recv"])
    except FileNotFoundError:
        return 0


def start_replica(test_or_cls, served, *extra):
    log = os.path.join(tempfile.mkdtemp(prefix="eta-aliases-log-"), "requests.log")
    sim = etatest.start_sim("--time-scale", TIME_SCALE, "--request-log", log, *extra,
                            model=served)
    _cleanup(test_or_cls, sim)
    sim.log = log
    return sim


def start_router(test_or_cls, sims, yaml, *extra, policy="round-robin"):
    args = ["--port", "0", "--admin-port", "0", "--policy", policy, "--config", write(yaml)]
    for s in sims:
        args += ["--replica", s.url]
    router = RouterProcess(args + list(extra))
    _cleanup(test_or_cls, router, check_exit=True)
    return router


class AliasTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sims = [start_replica(cls, name) for name in SERVED]
        cls.access_log = os.path.join(tempfile.mkdtemp(prefix="eta-aliases-"), "access.log")
        cls.router = start_router(cls, cls.sims, alias_yaml(), "--access-log", cls.access_log)
        cls.client = cls.router.client()

    def test_both_replicas_serve_the_public_name_and_answers_name_it(self):
        before = [received(s.log) for s in self.sims]
        replicas = set()
        for path, body in [
            ("/v1/completions", {"model": PUBLIC, "prompt": "The capital of France is",
                                 "max_tokens": 8}),
            ("/v1/chat/completions", {"model": PUBLIC, "max_tokens": 8, "messages": [
                {"role": "user", "content": "What is the capital of France?"}]}),
        ] * 2:
            r = self.client.post(path, body)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["model"], PUBLIC)
            for name in SERVED:
                self.assertNotIn(name.encode(), r.body)
            replicas.add(r.headers["x-eta-replica"])
        self.assertEqual(replicas, {s.url for s in self.sims})
        after = [received(s.log) for s in self.sims]
        self.assertEqual([a - b for a, b in zip(after, before)], [2, 2])

    def test_every_stream_event_names_the_public_model(self):
        for path, body in [
            ("/v1/completions", {"model": PUBLIC, "prompt": "one two three", "max_tokens": 12,
                                 "stream": True,
                                 "stream_options": {"include_usage": True}}),
            ("/v1/chat/completions", {"model": PUBLIC, "max_tokens": 12, "stream": True,
                                      "messages": [{"role": "user", "content": "hello"}]}),
        ] * 2:
            s = self.client.stream(path, body)
            self.assertEqual(s.status, 200)
            events = list(s)
            s.close()
            self.assertTrue(events[-1].done)
            chunks = [e.json() for e in events[:-1]]
            self.assertGreater(len(chunks), 3)
            for c in chunks:
                self.assertEqual(c["model"], PUBLIC, c)

    def test_models_lists_the_public_name_once(self):
        status, body = self.client.get_json("/v1/models")
        self.assertEqual(status, 200)
        self.assertEqual(body["object"], "list")
        ids = [m["id"] for m in body["data"]]
        self.assertEqual(ids, [PUBLIC])
        card = body["data"][0]
        # The rest of the card is the replica's (what OpenAI clients and vLLM tools read).
        self.assertEqual(card["object"], "model")
        for key in ("created", "owned_by", "max_model_len"):
            self.assertIn(key, card)

    def test_a_served_name_asked_directly_goes_to_its_replica_unchanged(self):
        for _ in range(3):
            r = self.client.post("/v1/completions",
                                 {"model": SERVED[1], "prompt": "x", "max_tokens": 2})
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["model"], SERVED[1])
            self.assertEqual(r.headers["x-eta-replica"], self.sims[1].url)

    def test_errors_pass_and_name_the_public_model(self):
        # The replica's own 400 (too long for its max_model_len) is relayed as it is.
        r = self.client.post("/v1/completions",
                             {"model": PUBLIC, "prompt": "x", "max_tokens": 10 ** 7})
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(r.json()["error"]["code"], 400)
        # An unknown model: the router's 404 names what the client asked for.
        r = self.client.post("/v1/completions", {"model": "nope", "prompt": "x"})
        self.assertEqual(r.status, 404)
        self.assertIn("`nope`", r.json()["error"]["message"])

    def test_decisions_and_access_log_use_the_public_name(self):
        r = self.client.post("/v1/completions", {"model": PUBLIC, "prompt": "log me",
                                                 "max_tokens": 2})
        self.assertEqual(r.status, 200)
        rid = int(r.headers["x-eta-request-id"])
        status, decisions = self.router.admin().get_json("/admin/decisions?last=50")
        self.assertEqual(status, 200)
        mine = [d for d in decisions["decisions"] if d["request_id"] == rid]
        self.assertEqual([d["model"] for d in mine], [PUBLIC])

        def logged():
            with open(self.access_log) as f:
                lines = [json.loads(line) for line in f if line.strip()]
            return [line for line in lines if line.get("request_id") == rid]

        lines = etatest.wait_until(logged, timeout=5)
        self.assertTrue(lines)
        self.assertEqual(lines[0]["model"], PUBLIC)


class AliasRetryTest(unittest.TestCase):
    def test_a_retry_is_rewritten_for_the_next_replica(self):
        # replica-1 answers every request with a 500: each request is retried on replica-2,
        # whose served name the retried body must carry (it answers 404 to any other name).
        failing = start_replica(self, SERVED[0], "--fail-rate", "1")
        good = start_replica(self, SERVED[1])
        router = start_router(self, [failing, good], alias_yaml())
        c = router.client()
        for stream in (False, True, False, True):
            body = {"model": PUBLIC, "prompt": "retry me", "max_tokens": 4, "stream": stream}
            if stream:
                s = c.stream("/v1/completions", body)
                self.assertEqual(s.status, 200)
                self.assertEqual(s.headers["x-eta-replica"], good.url)
                events = list(s)
                s.close()
                self.assertTrue(events[-1].done)
                self.assertTrue(all(e.json()["model"] == PUBLIC for e in events[:-1]))
            else:
                r = c.post("/v1/completions", body)
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.headers["x-eta-replica"], good.url)
                self.assertEqual(r.json()["model"], PUBLIC)
        self.assertEqual(received(good.log), 4)
        self.assertGreaterEqual(received(failing.log), 1)


class AliasReloadTest(unittest.TestCase):
    def test_sighup_takes_new_aliases(self):
        sims = [start_replica(self, name) for name in SERVED]
        path = write(alias_yaml(served=SERVED[:1]))
        args = ["--port", "0", "--admin-port", "0", "--policy", "round-robin", "--config", path]
        for s in sims:
            args += ["--replica", s.url]
        router = RouterProcess(args)
        _cleanup(self, router, check_exit=True)
        c = router.client()

        def replicas_used(n=4):
            used = set()
            for _ in range(n):
                r = c.post("/v1/completions", {"model": PUBLIC, "prompt": "x", "max_tokens": 2})
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.json()["model"], PUBLIC)
                used.add(r.headers["x-eta-replica"])
            return used

        self.assertEqual(replicas_used(), {sims[0].url})
        with open(path, "w") as f:
            f.write(alias_yaml())
        router.proc.send_signal(signal.SIGHUP)
        self.assertTrue(etatest.wait_until(
            lambda: any("configuration reloaded" in line for line in router.stderr_lines),
            timeout=5), router.stderr_lines)
        self.assertEqual(replicas_used(), {s.url for s in sims})


class AliasConfigTest(unittest.TestCase):
    def expect_exit_2(self, yaml, message):
        code, out, err = etatest.run_eta(["route", "--port", "0", "--config", write(yaml),
                                          "--replica", "http://127.0.0.1:1"])
        self.assertEqual(code, 2, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn(message, err)

    def test_bad_aliases_are_one_line_and_exit_2(self):
        self.expect_exit_2(alias_yaml() + "  - {name: other, served_names: [%s]}\n" % SERVED[0],
                           "served name %s appears twice in models" % SERVED[0])
        self.expect_exit_2("models:\n  - {name: a, served_names: []}\n",
                           "model a: served_names must list at least one name")
        self.expect_exit_2("models:\n  - {name: a}\n", "models[0] needs served_names")
        self.expect_exit_2("models:\n  - {name: a, served_names: [b]}\n"
                           "  - {name: b, served_names: [c]}\n",
                           "model b is also a served name of model a")


if __name__ == "__main__":
    unittest.main()
