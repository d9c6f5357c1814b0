"""`eta vllm-sim` end to end: every endpoint's shape, every error, streaming, /metrics, prefix
caching, client disconnects, the time scale and the command line."""

import json
import re
import socket
import threading
import time
import unittest

import etatest

MODEL = "sim-model"
TOKEN_TEXT = re.compile(r"( [a-z]{1,4})+")

TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]
ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
               10.0, 20.0, 40.0, 80.0]
REQUEST_LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                           50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0]
ITERATION_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
TOKENS_1_2_5_4096 = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]

GAUGES = ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"]
COUNTERS = ["vllm:prefix_cache_queries", "vllm:prefix_cache_hits", "vllm:num_preemptions",
            "vllm:prompt_tokens", "vllm:generation_tokens", "vllm:request_success"]
HISTOGRAMS = {
    "vllm:request_prompt_tokens": TOKENS_1_2_5_4096,
    "vllm:request_generation_tokens": TOKENS_1_2_5_4096,
    "vllm:request_params_max_tokens": TOKENS_1_2_5_4096,
    "vllm:iteration_tokens_total": ITERATION_BUCKETS,
    "vllm:time_to_first_token_seconds": TTFT_BUCKETS,
    "vllm:inter_token_latency_seconds": ITL_BUCKETS,
    "vllm:request_time_per_output_token_seconds": ITL_BUCKETS,
    "vllm:e2e_request_latency_seconds": REQUEST_LATENCY_BUCKETS,
    "vllm:request_queue_time_seconds": REQUEST_LATENCY_BUCKETS,
    "vllm:request_inference_time_seconds": REQUEST_LATENCY_BUCKETS,
    "vllm:request_prefill_time_seconds": REQUEST_LATENCY_BUCKETS,
    "vllm:request_decode_time_seconds": REQUEST_LATENCY_BUCKETS,
}


def long_prompt(n_words, word="alpha"):
    # The toy tokenizer makes " " + up to 4 letters one token: "alph" + "a" per word.
    return " ".join(["w%d %s" % (i % 10, word) for i in range(n_words)])


def assert_error(test, result, status, err_type, message=None):
    test.assertEqual(result.status, status, result.body)
    body = result.json()
    test.assertEqual(set(body), {"error"}, body)
    err = body["error"]
    test.assertEqual(set(err), {"message", "type", "param", "code"}, err)
    test.assertEqual(err["type"], err_type)
    test.assertEqual(err["code"], status)
    if message is not None:
        test.assertEqual(err["message"], message)
    test.assertTrue(result.headers.get("content-type", "").startswith("application/json"))
    return err


def stream_events(client, path, body):
    s = client.stream(path, body)
    try:
        events = list(s)
    finally:
        s.close()
    return s, events


class SimTest(unittest.TestCase):
    """One simulator (time scale 20: fast) shared by the tests of this class."""

    sim = None

    @classmethod
    def setUpClass(cls):
        cls.sim = etatest.start_sim("--time-scale", "20", "--max-body-bytes", "65536",
                                    "--seed", "7")
        cls.client = cls.sim.client()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        code = cls.sim.stop()
        assert code == 0, "vllm-sim exited with %r; stderr:\n%s" % (
            code, "".join(cls.sim.stderr_lines))

    # ---- simple endpoints -------------------------------------------------------------------

    def test_health_and_ping(self):
        for method, path in [("GET", "/health"), ("GET", "/ping"), ("POST", "/ping")]:
            r = self.client.request(method, path)
            self.assertEqual(r.status, 200, path)
            self.assertEqual(r.body, b"", path)

    def test_version(self):
        status, body = self.client.get_json("/version")
        self.assertEqual(status, 200)
        self.assertEqual(set(body), {"version"})
        self.assertRegex(body["version"], r"^\d+\.\d+\.\d+")

    def test_load_idle(self):
        status, body = self.client.get_json("/load")
        self.assertEqual(status, 200)
        self.assertEqual(body, {"server_load": 0})

    def test_models(self):
        status, body = self.client.get_json("/v1/models")
        self.assertEqual(status, 200)
        self.assertEqual(body["object"], "list")
        self.assertEqual(len(body["data"]), 1)
        card = body["data"][0]
        for key in ["id", "object", "created", "owned_by", "root", "parent", "max_model_len",
                    "permission", "eta_time_scale"]:
            self.assertIn(key, card)
        self.assertEqual(card["id"], MODEL)
        self.assertEqual(card["object"], "model")
        self.assertEqual(card["owned_by"], "vllm")
        self.assertEqual(card["root"], MODEL)
        self.assertIsNone(card["parent"])
        self.assertEqual(card["max_model_len"], 4096)
        self.assertEqual(card["eta_time_scale"], 20)
        self.assertIsInstance(card["created"], int)
        perm = card["permission"][0]
        self.assertTrue(perm["id"].startswith("modelperm-"))
        self.assertEqual(perm["object"], "model_permission")

    def test_tokenize(self):
        status, body = self.client.post_json("/tokenize", {"model": MODEL, "prompt": "Hey you"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["count"], 2)
        self.assertEqual(body["max_model_len"], 4096)
        self.assertEqual(len(body["tokens"]), 2)
        self.assertTrue(all(isinstance(t, int) for t in body["tokens"]))
        status, chat = self.client.post_json(
            "/tokenize", {"messages": [{"role": "user", "content": "Hello world"}]})
        self.assertEqual(status, 200, chat)
        self.assertGreater(chat["count"], 2)
        # The same count as the chat request's prompt_tokens (same template).
        status, body = self.client.post_json("/v1/chat/completions", {
            "model": MODEL, "messages": [{"role": "user", "content": "Hello world"}],
            "max_tokens": 1})
        self.assertEqual(body["usage"]["prompt_tokens"], chat["count"])
        r = self.client.post("/tokenize", {"model": "nope", "prompt": "x"})
        assert_error(self, r, 404, "NotFoundError", "The model `nope` does not exist.")

    # ---- completions and chat ---------------------------------------------------------------

    def test_completion_shape(self):
        status, body = self.client.post_json("/v1/completions", {
            "model": MODEL, "prompt": "Hey you", "max_tokens": 5, "ignore_eos": True})
        self.assertEqual(status, 200, body)
        self.assertTrue(body["id"].startswith("cmpl-"))
        self.assertEqual(body["object"], "text_completion")
        self.assertIsInstance(body["created"], int)
        self.assertEqual(body["model"], MODEL)
        self.assertEqual(len(body["choices"]), 1)
        choice = body["choices"][0]
        self.assertEqual(set(choice), {"index", "text", "logprobs", "finish_reason", "stop_reason"})
        self.assertEqual(choice["index"], 0)
        self.assertIsNone(choice["logprobs"])
        self.assertEqual(choice["finish_reason"], "length")
        self.assertIsNone(choice["stop_reason"])
        self.assertRegex(choice["text"], TOKEN_TEXT)
        self.assertEqual(choice["text"].count(" "), 5)
        usage = body["usage"]
        self.assertEqual(usage["prompt_tokens"], 2)
        self.assertEqual(usage["completion_tokens"], 5)
        self.assertEqual(usage["total_tokens"], 7)
        self.assertIn("prompt_tokens_details", usage)

    def test_chat_shape(self):
        status, body = self.client.post_json("/v1/chat/completions", {
            "model": MODEL, "messages": [{"role": "user", "content": "Hi there"}],
            "max_completion_tokens": 4, "ignore_eos": True})
        self.assertEqual(status, 200, body)
        self.assertTrue(body["id"].startswith("chatcmpl-"))
        self.assertEqual(body["object"], "chat.completion")
        self.assertEqual(body["model"], MODEL)
        choice = body["choices"][0]
        self.assertEqual(choice["index"], 0)
        self.assertEqual(choice["message"]["role"], "assistant")
        self.assertRegex(choice["message"]["content"], TOKEN_TEXT)
        self.assertNotIn("tool_calls", choice["message"])  # vLLM 2026 drops an empty list
        self.assertIsNone(choice["logprobs"])
        self.assertEqual(choice["finish_reason"], "length")
        self.assertIn("stop_reason", choice)
        self.assertEqual(body["usage"]["completion_tokens"], 4)
        self.assertEqual(body["usage"]["total_tokens"],
                         body["usage"]["prompt_tokens"] + 4)

    def test_output_lengths(self):
        # Completions default max_tokens is 16.
        status, body = self.client.post_json("/v1/completions", {
            "model": MODEL, "prompt": "default length", "eta_sim": {"output_tokens": 100}})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["usage"]["completion_tokens"], 16)
        self.assertEqual(body["choices"][0]["finish_reason"], "length")
        # A natural length under max_tokens stops with "stop".
        status, body = self.client.post_json("/v1/completions", {
            "model": MODEL, "prompt": "short answer", "max_tokens": 50,
            "eta_sim": {"output_tokens": 3}})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["usage"]["completion_tokens"], 3)
        self.assertEqual(body["choices"][0]["finish_reason"], "stop")
        # Chat without max_tokens may run to the natural length.
        status, body = self.client.post_json("/v1/chat/completions", {
            "model": MODEL, "messages": [{"role": "user", "content": "x"}],
            "eta_sim": {"output_tokens": 40}})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["usage"]["completion_tokens"], 40)
        self.assertEqual(body["choices"][0]["finish_reason"], "stop")

    def test_stream_completion_equals_non_stream(self):
        req = {"model": MODEL, "prompt": "The same prompt twice", "max_tokens": 12,
               "ignore_eos": True}
        status, full = self.client.post_json("/v1/completions", req)
        self.assertEqual(status, 200, full)
        s, events = stream_events(self.client, "/v1/completions", dict(req, stream=True))
        self.assertEqual(s.status, 200)
        self.assertTrue(s.headers["content-type"].startswith("text/event-stream"))
        self.assertEqual(s.headers.get("transfer-encoding"), "chunked")
        self.assertTrue(events[-1].done)
        chunks = [e.json() for e in events[:-1]]
        self.assertEqual(len(chunks), 12)  # one event per generated token
        for c in chunks:
            self.assertTrue(c["id"].startswith("cmpl-"))
            self.assertEqual(c["object"], "text_completion")
            self.assertEqual(c["model"], MODEL)
            self.assertNotIn("usage", c)
            self.assertEqual(len(c["choices"]), 1)
        self.assertEqual(len({c["id"] for c in chunks}), 1)
        for c in chunks[:-1]:
            self.assertIsNone(c["choices"][0]["finish_reason"])
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "length")
        text = "".join(c["choices"][0]["text"] for c in chunks)
        self.assertEqual(text, full["choices"][0]["text"])

    def test_stream_chat_equals_non_stream(self):
        req = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me a story"}],
               "max_tokens": 9, "ignore_eos": True}
        status, full = self.client.post_json("/v1/chat/completions", req)
        self.assertEqual(status, 200, full)
        s, events = stream_events(self.client, "/v1/chat/completions", dict(req, stream=True))
        self.assertEqual(s.status, 200)
        self.assertTrue(events[-1].done)
        chunks = [e.json() for e in events[:-1]]
        self.assertEqual(len(chunks), 1 + 9)  # the role chunk, then one per token
        for c in chunks:
            self.assertTrue(c["id"].startswith("chatcmpl-"))
            self.assertEqual(c["object"], "chat.completion.chunk")
            self.assertNotIn("usage", c)
        first = chunks[0]["choices"][0]
        self.assertEqual(first["delta"], {"role": "assistant", "content": ""})
        self.assertIsNone(first["finish_reason"])
        for c in chunks[1:-1]:
            self.assertIsNone(c["choices"][0]["finish_reason"])
            self.assertEqual(set(c["choices"][0]["delta"]), {"content"})
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "length")
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        self.assertEqual(text, full["choices"][0]["message"]["content"])

    def test_stream_usage_chunk(self):
        base = {"model": MODEL, "prompt": "usage please", "max_tokens": 4, "ignore_eos": True,
                "stream": True}
        for path, body in [("/v1/completions", base),
                           ("/v1/chat/completions",
                            {"model": MODEL,
                             "messages": [{"role": "user", "content": "usage please"}],
                             "max_tokens": 4, "ignore_eos": True, "stream": True})]:
            for options, expect in [(None, False), ({"include_usage": True}, True),
                                    ({"include_usage": False}, False), ({}, True)]:
                req = dict(body)
                if options is not None:
                    req["stream_options"] = options
                _, events = stream_events(self.client, path, req)
                self.assertTrue(events[-1].done)
                chunks = [e.json() for e in events[:-1]]
                usage_chunks = [c for c in chunks if c.get("usage")]
                if expect:
                    self.assertEqual(len(usage_chunks), 1, (path, options))
                    last = chunks[-1]
                    self.assertEqual(last["choices"], [])
                    self.assertEqual(last["usage"]["completion_tokens"], 4)
                    self.assertEqual(last["usage"]["total_tokens"],
                                     last["usage"]["prompt_tokens"] + 4)
                else:
                    self.assertEqual(usage_chunks, [], (path, options))
                    self.assertTrue(all(c["choices"] for c in chunks))

    def test_continuous_usage_stats(self):
        _, events = stream_events(self.client, "/v1/completions", {
            "model": MODEL, "prompt": "Hey you", "max_tokens": 5, "ignore_eos": True,
            "stream": True, "stream_options": {"include_usage": True,
                                               "continuous_usage_stats": True}})
        chunks = [e.json() for e in events[:-1]]
        self.assertEqual(len(chunks), 6)
        self.assertEqual([c["usage"]["completion_tokens"] for c in chunks], [1, 2, 3, 4, 5, 5])
        self.assertTrue(all(c["usage"]["prompt_tokens"] == 2 for c in chunks))
        self.assertEqual(chunks[-1]["choices"], [])

    def test_token_id_prompt(self):
        status, body = self.client.post_json("/v1/completions", {
            "model": MODEL, "prompt": [11, 22, 33, 44, 55], "max_tokens": 2, "ignore_eos": True})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["usage"]["prompt_tokens"], 5)
        self.assertEqual(body["usage"]["completion_tokens"], 2)

    # ---- errors -------------------------------------------------------------------------------

    def test_malformed_json(self):
        # vLLM 2026: pydantic/FastAPI validation errors carry the HTTP phrase as their type.
        r = self.client.post("/v1/completions", "{not json")
        assert_error(self, r, 400, "Bad Request")
        r = self.client.post("/v1/chat/completions", "[1, 2")
        assert_error(self, r, 400, "Bad Request")

    def test_bad_field_types(self):
        for body in [{"model": MODEL, "prompt": "x", "max_tokens": "many"},
                     {"model": MODEL, "prompt": 5},
                     {"model": MODEL, "prompt": "x", "stream": "maybe"}]:
            r = self.client.post("/v1/completions", body)
            self.assertIsNone(assert_error(self, r, 400, "Bad Request")["param"])
        r = self.client.post("/v1/completions", {"model": MODEL})
        self.assertEqual(assert_error(self, r, 400, "Bad Request")["param"], "prompt")
        r = self.client.post("/v1/chat/completions", {"model": MODEL, "messages": "hello"})
        assert_error(self, r, 400, "Bad Request")

    def test_unknown_model(self):
        r = self.client.post("/v1/completions", {"model": "gpt-17", "prompt": "x"})
        err = assert_error(self, r, 404, "NotFoundError", "The model `gpt-17` does not exist.")
        self.assertEqual(err["param"], "model")
        r = self.client.post("/v1/chat/completions",
                             {"model": "gpt-17", "messages": [{"role": "user", "content": "x"}]})
        assert_error(self, r, 404, "NotFoundError", "The model `gpt-17` does not exist.")

    def test_prompt_too_long(self):
        prompt = long_prompt(2100)
        _, tok = self.client.post_json("/tokenize", {"prompt": prompt})
        p = tok["count"]
        self.assertGreaterEqual(p, 4096)
        r = self.client.post("/v1/completions", {"model": MODEL, "prompt": prompt})
        err = assert_error(
            self, r, 400, "BadRequestError",
            "You passed %d input tokens and requested 16 output tokens. However, the model's "
            "context length is only 4096 tokens, resulting in a maximum input length of 4080 "
            "tokens. Please reduce the length of the input prompt. (parameter=input_tokens, "
            "value=%d)" % (p, p))
        self.assertEqual(err["param"], "input_tokens")

    def test_max_tokens_too_large(self):
        prompt = long_prompt(100)
        _, tok = self.client.post_json("/tokenize", {"prompt": prompt})
        p = tok["count"]
        m = 4096 - p + 1
        r = self.client.post("/v1/completions", {"model": MODEL, "prompt": prompt, "max_tokens": m})
        err = assert_error(
            self, r, 400, "BadRequestError",
            "You passed %d input tokens and requested %d output tokens. However, the model's "
            "context length is only 4096 tokens, resulting in a maximum input length of %d "
            "tokens. Please reduce the length of the input prompt. (parameter=input_tokens, "
            "value=%d)" % (p, m, 4096 - m, p))
        self.assertEqual(err["param"], "input_tokens")
        r = self.client.post("/v1/completions", {"model": MODEL, "prompt": "x", "max_tokens": 5000})
        err = assert_error(self, r, 400, "BadRequestError",
                           "max_tokens=5000 cannot be greater than "
                           "max_model_len=max_total_tokens=4096.")
        self.assertEqual(err["param"], "max_tokens")
        # Exactly at the limit is fine.
        status, body = self.client.post_json("/v1/completions", {
            "model": MODEL, "prompt": prompt, "max_tokens": m - 1, "eta_sim": {"output_tokens": 1}})
        self.assertEqual(status, 200, body)

    def test_unknown_path_and_method(self):
        # vLLM 2026's HTTPException handler: the type is the HTTP phrase.
        r = self.client.get("/v1/nothing")
        assert_error(self, r, 404, "Not Found", "Not Found")
        r = self.client.get("/v1/completions")
        assert_error(self, r, 405, "Method Not Allowed")

    def test_body_over_limit(self):
        body = json.dumps({"model": MODEL, "prompt": "x" * 70000})
        c = self.sim.client()
        try:
            r = c.post("/v1/completions", body)
            assert_error(self, r, 413, "BadRequestError")
        finally:
            c.close()

    def test_header_over_limit(self):
        c = self.sim.client()
        try:
            r = c.request("GET", "/health", headers={"X-Big": "a" * 20000})
            self.assertEqual(r.status, 431)
            self.assertEqual(r.json()["error"]["code"], 431)
        finally:
            c.close()

    def test_keep_alive(self):
        c = self.sim.client()
        try:
            for _ in range(3):
                self.assertEqual(c.get("/health").status, 200)
            sock = c.conn.sock
            self.assertEqual(c.get("/load").status, 200)
            self.assertIs(c.conn.sock, sock)  # same connection
        finally:
            c.close()

    # ---- metrics ------------------------------------------------------------------------------

    def test_metrics_names_types_labels_buckets(self):
        self.client.post_json("/v1/completions", {"model": MODEL, "prompt": "warm up",
                                                  "max_tokens": 3, "ignore_eos": True})
        m = self.client.metrics()
        for name in GAUGES:
            self.assertEqual(m.types.get(name), "gauge", name)
            labels, _ = m.find(name)[0]
            self.assertEqual(labels, {"model_name": MODEL, "engine": "0"}, name)
        for name in COUNTERS:
            self.assertEqual(m.types.get(name + "_total", m.types.get(name)), "counter", name)
            self.assertTrue(m.find(name + "_total", model_name=MODEL, engine="0"), name)
        for reason in ["stop", "length", "abort", "error", "repetition"]:
            m.value("vllm:request_success_total", model_name=MODEL, engine="0",
                    finished_reason=reason)
        # 2026: removed in favour of request_time_per_output_token_seconds and ITL.
        self.assertNotIn("vllm:time_per_output_token_seconds", m.types)
        self.assertEqual(m.types.get("vllm:num_requests_waiting_by_reason"), "gauge")
        by_reason = {labels["reason"]: v for labels, v in
                     m.find("vllm:num_requests_waiting_by_reason")}
        self.assertEqual(set(by_reason), {"capacity", "deferred"})
        self.assertEqual(sum(by_reason.values()),
                         m.value("vllm:num_requests_waiting", model_name=MODEL, engine="0"))
        for name, bounds in HISTOGRAMS.items():
            self.assertEqual(m.types.get(name), "histogram", name)
            self.assertEqual(m.buckets(name, model_name=MODEL, engine="0"), bounds, name)
            self.assertTrue(m.find(name + "_bucket", le="+Inf"), name)
            m.value(name + "_sum", model_name=MODEL, engine="0")
            m.value(name + "_count", model_name=MODEL, engine="0")
        info = m.find("vllm:cache_config_info")
        self.assertEqual(len(info), 1)
        labels, value = info[0]
        self.assertEqual(value, 1)
        self.assertEqual(labels["block_size"], "16")
        self.assertGreater(int(labels["num_gpu_blocks"]), 1000)
        self.assertEqual(labels["gpu_memory_utilization"], "0.9")
        self.assertEqual(labels["cache_dtype"], "auto")
        self.assertEqual(labels["enable_prefix_caching"], "True")
        self.assertEqual(labels["num_cpu_blocks"], "0")
        self.assertNotIn("swap_space", labels)  # gone in 2026
        self.assertEqual(labels["kv_cache_size_tokens"], str(int(labels["num_gpu_blocks"]) * 16))
        self.assertAlmostEqual(float(labels["kv_cache_max_concurrency"]),
                               int(labels["kv_cache_size_tokens"]) / 4096, places=6)
        self.assertEqual(labels["engine"], "0")

    def test_metrics_move(self):
        before = self.client.metrics()
        status, body = self.client.post_json("/v1/completions", {
            "model": MODEL, "prompt": "count me please", "max_tokens": 7, "ignore_eos": True})
        self.assertEqual(status, 200)
        p = body["usage"]["prompt_tokens"]
        after = self.client.metrics()
        lbl = {"model_name": MODEL, "engine": "0"}

        def delta(name, **extra):
            return after.value(name, **lbl, **extra) - before.value(name, **lbl, **extra)

        self.assertGreaterEqual(delta("vllm:prompt_tokens_total"), p)
        self.assertGreaterEqual(delta("vllm:generation_tokens_total"), 7)
        self.assertGreaterEqual(delta("vllm:request_success_total", finished_reason="length"), 1)
        self.assertGreaterEqual(delta("vllm:time_to_first_token_seconds_count"), 1)
        self.assertGreaterEqual(delta("vllm:inter_token_latency_seconds_count"), 6)
        self.assertGreaterEqual(delta("vllm:e2e_request_latency_seconds_count"), 1)
        self.assertGreaterEqual(delta("vllm:request_generation_tokens_sum"), 7)
        self.assertGreaterEqual(delta("vllm:prefix_cache_queries_total"), p)
        self.assertGreater(delta("vllm:iteration_tokens_total_count"), 0)

    def test_prefix_cache_hits_on_repeated_prompt(self):
        prompt = long_prompt(400, word="prefixed")  # about 1200 tokens
        lbl = {"model_name": MODEL, "engine": "0"}
        req = {"model": MODEL, "prompt": prompt, "max_tokens": 2, "ignore_eos": True}
        self.assertEqual(self.client.post_json("/v1/completions", req)[0], 200)
        before = self.client.metrics().value("vllm:prefix_cache_hits_total", **lbl)
        status, body = self.client.post_json("/v1/completions", req)
        self.assertEqual(status, 200)
        after = self.client.metrics().value("vllm:prefix_cache_hits_total", **lbl)
        p = body["usage"]["prompt_tokens"]
        self.assertGreaterEqual(after - before, (p // 16 - 1) * 16)

    def test_disconnect_aborts_and_running_gauge(self):
        lbl = {"model_name": MODEL, "engine": "0"}
        before = self.client.metrics()
        aborts0 = before.value("vllm:request_success_total", finished_reason="abort", **lbl)
        # 3000 tokens at ~6 ms each and time scale 20: ~1 s of wall time.
        s = self.client.stream("/v1/completions", {
            "model": MODEL, "prompt": "a very long answer", "max_tokens": 3000,
            "ignore_eos": True, "stream": True})
        it = iter(s)
        for _ in range(5):
            next(it)
        m = self.client.metrics()
        self.assertEqual(m.value("vllm:num_requests_running", **lbl), 1)
        self.assertEqual(self.client.get_json("/load")[1]["server_load"], 1)
        s.close()
        closed_at = time.monotonic()

        def aborted():
            m = self.client.metrics()
            return (m.value("vllm:request_success_total", finished_reason="abort", **lbl)
                    == aborts0 + 1 and m.value("vllm:num_requests_running", **lbl) == 0)

        self.assertTrue(etatest.wait_until(aborted, timeout=2.0))
        self.assertLess(time.monotonic() - closed_at, 0.5)
        self.assertEqual(self.client.get_json("/load")[1]["server_load"], 0)

    def test_disconnect_non_streaming_aborts(self):
        lbl = {"model_name": MODEL, "engine": "0"}
        aborts0 = self.client.metrics().value("vllm:request_success_total",
                                              finished_reason="abort", **lbl)
        sock = socket.create_connection((self.sim.host, self.sim.port))
        body = json.dumps({"model": MODEL, "prompt": "slow", "max_tokens": 3000,
                           "ignore_eos": True}).encode()
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        running = etatest.wait_until(lambda: self.client.metrics().value(
            "vllm:num_requests_running", **lbl) == 1, timeout=2.0)
        self.assertTrue(running)
        sock.close()

        def aborted():
            m = self.client.metrics()
            return (m.value("vllm:request_success_total", finished_reason="abort", **lbl)
                    == aborts0 + 1 and m.value("vllm:num_requests_running", **lbl) == 0)

        self.assertTrue(etatest.wait_until(aborted, timeout=1.0))

    def test_concurrent_streams(self):
        results = [None] * 16
        errors = []

        def worker(i):
            try:
                c = self.sim.client()
                _, events = stream_events(c, "/v1/completions", {
                    "model": MODEL, "prompt": "concurrent %d" % (i % 4), "max_tokens": 20,
                    "ignore_eos": True, "stream": True})
                results[i] = "".join(e.json()["choices"][0]["text"] for e in events[:-1])
            except Exception as e:  # surfaced below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        for i in range(16):
            self.assertEqual(results[i], results[i % 4])
            self.assertEqual(results[i].count(" "), 20)


class TimeScaleTest(unittest.TestCase):
    def run_one(self, scale):
        with etatest.start_sim("--time-scale", scale) as sim:
            c = sim.client()
            req = {"model": MODEL, "prompt": "time me", "max_tokens": 250, "ignore_eos": True}
            c.post_json("/v1/completions", dict(req, max_tokens=1))  # warm the connection
            t0 = time.monotonic()
            status, body = c.post_json("/v1/completions", req)
            wall = time.monotonic() - t0
            self.assertEqual(status, 200)
            m = c.metrics()
            lbl = {"model_name": MODEL, "engine": "0"}
            ttft = m.value("vllm:time_to_first_token_seconds_sum", **lbl)
            e2e = m.value("vllm:e2e_request_latency_seconds_sum", **lbl)
            c.close()
            return wall, ttft, e2e

    def test_time_scale(self):
        wall1, ttft1, e2e1 = self.run_one(1)
        wall4, ttft4, e2e4 = self.run_one(4)
        ratio = wall1 / wall4
        self.assertGreater(ratio, 2.8, (wall1, wall4))
        self.assertLess(ratio, 5.5, (wall1, wall4))
        # The same simulated figures (steps chain exactly in simulated time).
        self.assertAlmostEqual(e2e1, e2e4, delta=0.05 * e2e1)
        self.assertAlmostEqual(ttft1, ttft4, delta=max(0.003, 0.2 * ttft1))
        # Simulated e2e tracks wall time at scale 1.
        self.assertAlmostEqual(e2e1, wall1, delta=0.2 * wall1)


class CommandLineTest(unittest.TestCase):
    def test_bad_flags_exit_2_with_one_line(self):
        bad = [
            ["vllm-sim", "--port", "0", "--model", "m", "--speed", "0"],
            ["vllm-sim", "--port", "0", "--model", "m", "--speed", "-1"],
            ["vllm-sim", "--port", "0", "--model", "m", "--time-scale", "0"],
            ["vllm-sim", "--port", "0", "--model", "m", "--gpu", "x100"],
            ["vllm-sim", "--port", "0", "--model", "m", "--arch", "gpt-9"],
            ["vllm-sim", "--port", "70000", "--model", "m"],
            ["vllm-sim", "--port", "0"],
            ["vllm-sim", "--port", "0", "--model", "m", "--no-such-flag"],
            ["vllm-sim", "--port", "0", "--model", "m", "--profile-file", "/nonexistent.yaml"],
        ]
        for args in bad:
            code, out, err = etatest.run_eta(args)
            self.assertEqual(code, 2, (args, out, err))
            self.assertEqual(len(err.strip().splitlines()), 1, (args, err))
            self.assertEqual(out, "", args)

    def test_sigint_exits_0(self):
        import signal
        sim = etatest.start_sim()
        try:
            c = sim.client()
            self.assertEqual(c.get("/health").status, 200)
            c.close()
            sim.proc.send_signal(signal.SIGINT)
            self.assertEqual(sim.proc.wait(timeout=5), 0)
        finally:
            sim.stop()


if __name__ == "__main__":
    unittest.main()
