"""The official OpenAI client library (npm `openai`, tests/sdk/sdk.mjs) against `eta route` in
front of `eta vllm-sim --api-key`: models, completions (n > 1, batch prompts), chat (a stream with
usage, the stream helper, abort), responses (create, retrieve by id, cancel), embeddings, and the
typed errors the SDK raises (NotFoundError, BadRequestError, AuthenticationError, RateLimitError
with Retry-After). `npm ci` runs in tests/sdk when node_modules is missing (as tests/browser)."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import etatest
from test_route import MODEL, start_router, start_sim

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_DIR = os.path.normpath(os.path.join(HERE, "..", "sdk"))
UPSTREAM_KEY = "sk-replica-5b1e"
CLIENT_KEY = "sk-client-77"
LIMITED_KEY = "sk-limited-01"


def ensure_sdk():
    etatest.npm_ci(SDK_DIR, "openai")




class SdkTest(unittest.TestCase):
    # The replicas require a key (vLLM's --api-key): the router sends its upstream key.
    UPSTREAM = True

    @classmethod
    def setUpClass(cls):
        ensure_sdk()
        extra = ["--api-key", UPSTREAM_KEY] if cls.UPSTREAM else []
        cls.sims = [start_sim(cls, *extra) for _ in range(2)]
        fd, cls.config = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            if cls.UPSTREAM:
                f.write("upstream_api_key: %s\n" % UPSTREAM_KEY)
            f.write("api_keys:\n  - %s\n  - {key: %s, requests_per_minute: 1}\n"
                    % (CLIENT_KEY, LIMITED_KEY))
        cls.addClassCleanup(os.unlink, cls.config)
        cls.router = start_router(cls, cls.sims, "--config", cls.config)
        env = dict(os.environ, ETA_BASE_URL="http://%s:%d/v1" % (cls.router.host, cls.router.port),
                   ETA_API_KEY=CLIENT_KEY, ETA_LIMITED_KEY=LIMITED_KEY, ETA_MODEL=MODEL)
        p = subprocess.run([shutil.which("node"), os.path.join(SDK_DIR, "sdk.mjs")], env=env,
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise AssertionError("sdk.mjs failed:\n" + p.stdout + p.stderr)
        cls.out = json.loads(p.stdout.strip().splitlines()[-1])

    def result(self, name):
        r = self.out[name]
        self.assertNotIn("error", r, r.get("error"))
        return r

    def test_models(self):
        self.assertEqual(self.result("models")["ids"], [MODEL])

    def test_completions_n_and_batch(self):
        r = self.result("completion_n2")
        self.assertEqual(sorted(r["choices"]), [0, 1])
        self.assertIn(r["replica"], [s.url for s in self.sims])
        self.assertEqual(sorted(self.result("completion_batch")["choices"]), [0, 1])

    def test_chat_stream_with_usage(self):
        r = self.result("chat_stream_usage")
        self.assertGreater(r["chunks"], 1)
        self.assertTrue(r["text"])
        self.assertIsNotNone(r["usage"], r)
        self.assertTrue(1 <= r["usage"]["completion_tokens"] <= 12, r["usage"])

    def test_stream_helper(self):
        r = self.result("chat_stream_helper")
        self.assertGreater(r["deltas"], 0)
        self.assertIn(r["finish_reason"], ("stop", "length"))
        self.assertTrue(r["content"])

    def test_abort(self):
        r = self.result("chat_abort")
        self.assertTrue(r["aborted"], r)
        self.assertLess(r["seen"], 2000, r)  # it stopped long before the end
        c = self.router.client()
        self.assertTrue(etatest.wait_until(
            lambda: c.metrics().get("eta_errors_total", reason="client_disconnect") >= 1))
        c.close()

    def test_responses_create_retrieve_cancel(self):
        r = self.result("responses")
        self.assertTrue(r["id"])
        self.assertEqual(r["retrieved_id"], r["id"])
        self.assertEqual(r["retrieved_replica"], r["replica"])
        self.assertEqual(r["cancel_replica"], r["replica"])

    def test_embeddings(self):
        r = self.result("embeddings")
        self.assertEqual(r["n"], 2)
        self.assertGreater(r["dims"], 0)

    def test_typed_errors(self):
        nf = self.result("not_found")
        self.assertEqual((nf["raised"], nf["status"]), ("NotFoundError", 404))
        bad = self.result("bad_request")
        self.assertEqual((bad["raised"], bad["status"]), ("BadRequestError", 400))
        auth = self.result("authentication")
        self.assertEqual((auth["raised"], auth["status"]), ("AuthenticationError", 401))
        rl = self.result("rate_limit")
        self.assertTrue(rl["first_ok"])
        self.assertEqual((rl["second"]["raised"], rl["second"]["status"]),
                         ("RateLimitError", 429))
        self.assertGreaterEqual(int(rl["second"]["retryAfter"]), 1)


if __name__ == "__main__":
    unittest.main()
