"""`eta vllm-sim` speaks vLLM's 2026 interface: --api-key, the request rules (n > 1, batch
prompts, content parts, lax types, echo), --stream-interval, --max-num-queued-reqs, and every
route a router carries (responses, messages, pooling, audio, render, detokenize)."""

import io
import json
import os
import struct
import threading
import time
import unittest
import wave

import etatest

MODEL = "sim-model"
KEY = "sekrit-key"


def sse_events(stream):
    """(event name or None, parsed data) per SSE event of an open Stream (raw lines)."""
    out = []
    name = None
    data = []
    while True:
        line = stream.response.readline()
        if not line:
            break
        line = line.decode().rstrip("\r\n")
        if line == "":
            if data:
                text = "\n".join(data)
                out.append((name, None if text == "[DONE]" else json.loads(text)))
            name, data = None, []
            continue
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    stream.close()
    return out


def wav_bytes(seconds, rate=16000):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buf.getvalue()


def multipart(fields, boundary="etaBoundary42"):
    out = b""
    for name, value, filename in fields:
        out += b"--" + boundary.encode() + b"\r\n"
        disp = 'form-data; name="%s"' % name
        if filename:
            disp += '; filename="%s"' % filename
        out += b"Content-Disposition: " + disp.encode() + b"\r\n\r\n"
        out += value if isinstance(value, bytes) else value.encode()
        out += b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return out, "multipart/form-data; boundary=" + boundary


class AuthTest(unittest.TestCase):
    def check(self, sim):
        c = sim.client()
        try:
            for path in ["/v1/models"]:
                r = c.get(path)
                self.assertEqual(r.status, 401)
                self.assertEqual(r.json(), {"error": "Unauthorized"})
            r = c.post("/v1/completions", {"prompt": "x", "max_tokens": 1})
            self.assertEqual(r.status, 401)
            r = c.request("GET", "/v1/models", headers={"Authorization": "Bearer wrong"})
            self.assertEqual(r.status, 401)
            r = c.request("GET", "/v1/models", headers={"Authorization": "Basic " + KEY})
            self.assertEqual(r.status, 401)
            for scheme in ["Bearer", "bearer"]:
                r = c.request("GET", "/v1/models", headers={"Authorization": scheme + " " + KEY})
                self.assertEqual(r.status, 200, r.body)
            r = c.request("POST", "/v1/completions",
                          body={"prompt": "x", "max_tokens": 2},
                          headers={"Authorization": "Bearer " + KEY})
            self.assertEqual(r.status, 200, r.body)
            # Paths outside /v1 stay open.
            self.assertEqual(c.get("/health").status, 200)
            self.assertEqual(c.get("/metrics").status, 200)
            self.assertEqual(c.get("/version").status, 200)
            self.assertEqual(c.get("/ping").status, 200)
            self.assertEqual(c.post("/tokenize", {"prompt": "hi"}).status, 200)
        finally:
            c.close()

    def test_api_key_flag(self):
        with etatest.start_sim("--api-key", KEY, "--time-scale", "20") as sim:
            self.check(sim)

    def test_several_keys(self):
        with etatest.start_sim("--api-key", "first", "--api-key", KEY) as sim:
            self.check(sim)
            c = sim.client()
            r = c.request("GET", "/v1/models", headers={"Authorization": "Bearer first"})
            self.assertEqual(r.status, 200)
            c.close()

    def test_env_api_key(self):
        old = os.environ.get("VLLM_API_KEY")
        os.environ["VLLM_API_KEY"] = KEY
        try:
            sim = etatest.start_sim("--time-scale", "20")
        finally:
            if old is None:
                del os.environ["VLLM_API_KEY"]
            else:
                os.environ["VLLM_API_KEY"] = old
        with sim:
            self.check(sim)

    def test_without_key_everything_is_open(self):
        with etatest.start_sim("--time-scale", "20") as sim:
            c = sim.client()
            self.assertEqual(c.get("/v1/models").status, 200)
            c.close()


class RulesTest(unittest.TestCase):
    sim = None

    @classmethod
    def setUpClass(cls):
        cls.sim = etatest.start_sim("--time-scale", "20", "--seed", "3",
                                    "--media-part-tokens", "100")
        cls.client = cls.sim.client()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.sim.stop()

    def post(self, path, body):
        status, out = self.client.post_json(path, body)
        self.assertEqual(status, 200, out)
        return out

    def test_n_and_batch_prompts(self):
        body = self.post("/v1/completions", {"prompt": ["one two", "three"], "n": 3,
                                             "max_tokens": 4, "ignore_eos": True})
        self.assertEqual([c["index"] for c in body["choices"]], list(range(6)))
        p0 = self.post("/tokenize", {"prompt": "one two"})["count"]
        p1 = self.post("/tokenize", {"prompt": "three"})["count"]
        self.assertEqual(body["usage"]["prompt_tokens"], p0 + p1)  # each prompt once
        self.assertEqual(body["usage"]["completion_tokens"], 24)
        texts = [c["text"] for c in body["choices"]]
        self.assertEqual(len(set(texts[:3])), 3, texts)  # samples differ
        # Token-id batches, and the engine ran 6 sequences.
        before = self.client.metrics().value("vllm:request_success_total", model_name=MODEL,
                                             engine="0", finished_reason="length")
        body = self.post("/v1/completions", {"prompt": [[1, 2, 3], [4, 5]], "n": 2,
                                             "max_tokens": 2, "ignore_eos": True})
        self.assertEqual(len(body["choices"]), 4)
        self.assertEqual(body["usage"]["prompt_tokens"], 5)
        after = self.client.metrics().value("vllm:request_success_total", model_name=MODEL,
                                            engine="0", finished_reason="length")
        self.assertEqual(after - before, 4)

    def test_chat_n_stream(self):
        s = self.client.stream("/v1/chat/completions", {
            "messages": [{"role": "user", "content": "hi"}], "n": 2, "max_tokens": 3,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}})
        events = sse_events(s)
        self.assertIsNone(events[-1][1])  # [DONE]
        chunks = [d for _, d in events[:-1]]
        roles = [c for c in chunks if c["choices"] and "role" in c["choices"][0]["delta"]]
        self.assertEqual(sorted(c["choices"][0]["index"] for c in roles), [0, 1])
        text = {0: "", 1: ""}
        finishes = {}
        for c in chunks:
            for ch in c["choices"]:
                text[ch["index"]] += ch["delta"].get("content", "")
                if ch["finish_reason"]:
                    finishes[ch["index"]] = ch["finish_reason"]
        self.assertEqual(finishes, {0: "length", 1: "length"})
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 6)
        self.assertTrue(text[0] and text[1])

    def test_content_parts_count_tokens(self):
        plain = self.post("/v1/chat/completions", {
            "messages": [{"role": "user", "content": [{"type": "text", "text": "look"}]}],
            "max_tokens": 1})
        media = self.post("/v1/chat/completions", {
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}],
            "max_tokens": 1})
        self.assertEqual(media["usage"]["prompt_tokens"], plain["usage"]["prompt_tokens"] + 200)

    def test_lax_types_optional_model_and_defaults(self):
        body = self.post("/v1/completions", {"prompt": "x", "max_tokens": "3",
                                             "ignore_eos": "true", "session_id": "abc"})
        self.assertEqual(body["model"], MODEL)
        self.assertEqual(body["usage"]["completion_tokens"], 3)
        body = self.post("/v1/completions", {"prompt": "x", "max_tokens": None,
                                             "ignore_eos": True})
        self.assertEqual(body["usage"]["completion_tokens"], 16)  # null -> 16
        body = self.post("/v1/completions", {"model": "", "prompt": "x", "max_tokens": 1})
        self.assertEqual(body["model"], MODEL)
        # stream_options {} without stream passes (only a truthy one is refused).
        self.post("/v1/completions", {"prompt": "x", "max_tokens": 1, "stream_options": {}})
        r = self.client.post("/v1/completions", {"prompt": "x", "stream_options":
                                                 {"include_usage": True}})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["type"], "Bad Request")
        self.assertEqual(r.json()["error"]["param"], "stream_options")
        r = self.client.post("/v1/completions", {"prompt": "x", "n": 0})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["type"], "BadRequestError")
        self.assertEqual(r.json()["error"]["param"], "n")

    def test_sequence_bound(self):
        r = self.client.post("/v1/completions", {"prompt": "x", "n": 100000})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["param"], "n")
        r = self.client.post("/v1/completions", {"prompt": ["x"] * 2000, "n": 3})
        self.assertEqual(r.status, 400)

    def test_echo(self):
        body = self.post("/v1/completions", {"prompt": "echo this", "echo": True,
                                             "max_tokens": 0})
        self.assertEqual(body["choices"][0]["text"], "echo this")
        body = self.post("/v1/completions", {"prompt": "echo this", "echo": True,
                                             "max_tokens": 2, "ignore_eos": True})
        self.assertTrue(body["choices"][0]["text"].startswith("echo this "))
        self.assertEqual(body["usage"]["completion_tokens"], 2)


class StreamIntervalTest(unittest.TestCase):
    def token_counts(self, sim, extra=None):
        c = sim.client()
        body = {"prompt": "stream me", "max_tokens": 10, "ignore_eos": True, "stream": True,
                "stream_options": {"include_usage": True, "continuous_usage_stats": True}}
        body.update(extra or {})
        events = sse_events(c.stream("/v1/completions", body))
        chunks = [d for _, d in events if d and d["choices"]]
        usage = [d for _, d in events if d and not d["choices"]][0]["usage"]
        c.close()
        return [c["usage"]["completion_tokens"] for c in chunks], usage

    def test_server_interval(self):
        with etatest.start_sim("--time-scale", "20", "--stream-interval", "4") as sim:
            counts, usage = self.token_counts(sim)
            # The first token at once, then 4 per event, the rest with the finish.
            self.assertEqual(counts, [1, 5, 9, 10])
            self.assertEqual(usage["completion_tokens"], 10)
            # A request may raise it, not lower it.
            counts, _ = self.token_counts(sim, {"stream_interval": 6})
            self.assertEqual(counts, [1, 7, 10])
            counts, _ = self.token_counts(sim, {"stream_interval": 2})
            self.assertEqual(counts, [1, 5, 9, 10])

    def test_request_interval(self):
        with etatest.start_sim("--time-scale", "20") as sim:
            counts, usage = self.token_counts(sim)
            self.assertEqual(counts, list(range(1, 11)))
            counts, usage = self.token_counts(sim, {"stream_interval": 3})
            self.assertEqual(counts, [1, 4, 7, 10])
            self.assertEqual(usage["completion_tokens"], 10)


class QueueFullTest(unittest.TestCase):
    def test_max_num_queued_reqs(self):
        with etatest.start_sim("--time-scale", "1", "--max-num-queued-reqs", "3") as sim:
            c = sim.client()
            long = {"prompt": "hold", "max_tokens": 400, "ignore_eos": True, "stream": True}
            s1 = c.stream("/v1/completions", long)
            s2 = c.stream("/v1/completions", dict(long, n=2))  # n counts n
            etatest.wait_until(lambda: c.metrics().value(
                "vllm:num_requests_running", model_name=MODEL, engine="0") >= 3)
            r = c.post("/v1/completions", {"prompt": "x", "max_tokens": 1})
            self.assertEqual(r.status, 503, r.body)
            err = r.json()["error"]
            self.assertEqual(err["code"], 503)
            self.assertIn("max_num_queued_reqs=3", err["message"])
            s1.close()
            s2.close()
            etatest.wait_until(lambda: c.metrics().value(
                "vllm:num_requests_running", model_name=MODEL, engine="0") == 0)
            r = c.post("/v1/completions", {"prompt": "x", "max_tokens": 1})
            self.assertEqual(r.status, 200, r.body)
            c.close()


class RoutesTest(unittest.TestCase):
    sim = None

    @classmethod
    def setUpClass(cls):
        cls.sim = etatest.start_sim("--time-scale", "20", "--seed", "5")
        cls.client = cls.sim.client()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.sim.stop()

    def post(self, path, body, status=200):
        r = self.client.post(path, body)
        self.assertEqual(r.status, status, r.body)
        return r.json()

    def test_utilities(self):
        self.assertEqual(self.client.get("/version").json()["version"].count("."), 2)
        self.assertEqual(self.client.get("/ping").status, 200)
        self.assertEqual(self.client.post("/ping", "").status, 200)
        self.assertIn("server_load", self.client.get("/load").json())
        tok = self.post("/tokenize", {"prompt": "hello there"})
        text = self.post("/detokenize", {"tokens": tok["tokens"]})["prompt"]
        self.assertEqual(self.post("/tokenize", {"prompt": text})["count"], tok["count"])
        self.assertEqual(self.post("/detokenize", {"tokens": [1, 2]}),
                         self.post("/detokenize", {"tokens": [1, 2]}))
        r = self.client.post("/detokenize", {"model": "nope", "tokens": [1]})
        self.assertEqual(r.status, 404)

    def test_render(self):
        out = self.post("/v1/completions/render", {"prompt": ["hello there", "x"]})
        self.assertEqual(out[0]["prompt_token_ids"],
                         self.post("/tokenize", {"prompt": "hello there"})["tokens"])
        self.assertEqual(len(out), 2)
        out = self.post("/v1/completions/render", {"prompt": [[5, 6], [7]]})
        self.assertEqual([o["prompt_token_ids"] for o in out], [[5, 6], [7]])
        msgs = [{"role": "user", "content": "hi"}]
        out = self.post("/v1/chat/completions/render", {"messages": msgs})
        self.assertEqual(out["prompt_token_ids"],
                         self.post("/tokenize", {"messages": msgs})["tokens"])

    def test_embeddings_are_deterministic_unit_vectors(self):
        before = self.client.metrics().value("vllm:generation_tokens_total", model_name=MODEL,
                                             engine="0")
        a = self.post("/v1/embeddings", {"model": MODEL, "input": ["a cat", "a dog"]})
        b = self.post("/v1/embeddings", {"input": "a cat"})
        self.assertEqual(a["object"], "list")
        self.assertTrue(a["id"].startswith("embd-"))
        self.assertEqual([d["index"] for d in a["data"]], [0, 1])
        v = a["data"][0]["embedding"]
        self.assertEqual(len(v), 256)
        self.assertAlmostEqual(sum(x * x for x in v), 1.0, places=6)
        self.assertEqual(v, b["data"][0]["embedding"])
        self.assertNotEqual(v, a["data"][1]["embedding"])
        self.assertEqual(a["usage"]["completion_tokens"], 0)
        self.assertEqual(a["usage"]["prompt_tokens"],
                         self.post("/tokenize", {"prompt": "a cat"})["count"] +
                         self.post("/tokenize", {"prompt": "a dog"})["count"])
        d = self.post("/v1/embeddings", {"input": [1, 2, 3], "dimensions": 8})
        self.assertEqual(len(d["data"][0]["embedding"]), 8)
        # Prefill only: one sampled token per input (the prefill step's), no decode steps.
        after = self.client.metrics().value("vllm:generation_tokens_total", model_name=MODEL,
                                            engine="0")
        self.assertEqual(after - before, 4)
        r = self.client.post("/v1/embeddings", {"model": MODEL})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["type"], "Bad Request")

    def test_pooling_classify_score_rerank(self):
        p = self.post("/pooling", {"input": "x y"})
        self.assertEqual(p["data"][0]["object"], "pooling")
        c = self.post("/classify", {"input": ["good", "bad"]})
        for d in c["data"]:
            self.assertAlmostEqual(sum(d["probs"]), 1.0)
            self.assertEqual(d["num_classes"], 2)
        for path in ["/score", "/v1/score"]:
            s = self.post(path, {"text_1": "query", "text_2": ["doc one", "doc two"]})
            self.assertEqual([d["index"] for d in s["data"]], [0, 1])
            self.assertTrue(all(0 < d["score"] < 1 for d in s["data"]))
        docs = ["alpha", "beta", "gamma"]
        results = []
        for path in ["/rerank", "/v1/rerank", "/v2/rerank"]:
            r = self.post(path, {"query": "q", "documents": docs})
            scores = [x["relevance_score"] for x in r["results"]]
            self.assertEqual(scores, sorted(scores, reverse=True))
            self.assertEqual(sorted(x["index"] for x in r["results"]), [0, 1, 2])
            results.append(r["results"])
        self.assertEqual(results[0], results[1])
        top = self.post("/rerank", {"query": "q", "documents": docs, "top_n": 1})
        self.assertEqual(top["results"], results[0][:1])

    def test_responses_create_retrieve_cancel(self):
        r = self.post("/v1/responses", {"input": "hello", "max_output_tokens": 5,
                                        "eta_sim": {"output_tokens": 3}})
        self.assertTrue(r["id"].startswith("resp_"))
        self.assertEqual(r["object"], "response")
        self.assertEqual(r["status"], "completed")
        text = r["output"][0]["content"][0]["text"]
        self.assertTrue(text)
        self.assertEqual(r["usage"]["output_tokens"], 3)
        got = self.client.get("/v1/responses/" + r["id"])
        self.assertEqual(got.status, 200)
        self.assertEqual(got.json(), r)
        r404 = self.client.get("/v1/responses/resp_nope")
        self.assertEqual(r404.status, 404)
        self.assertEqual(r404.json()["error"]["message"], "Response with id 'resp_nope' not found.")
        # A finished response cannot be cancelled.
        self.assertEqual(self.client.post("/v1/responses/%s/cancel" % r["id"], "").status, 400)
        # A background one can while it runs.
        bg = self.post("/v1/responses", {"input": "long", "background": True,
                                         "max_output_tokens": 3000, "eta_sim": {"output_tokens": 3000}})
        self.assertEqual(bg["status"], "queued")
        cancelled = self.post("/v1/responses/%s/cancel" % bg["id"], "")
        self.assertEqual(cancelled["status"], "cancelled")
        self.assertEqual(self.client.get("/v1/responses/" + bg["id"]).json()["status"],
                         "cancelled")
        # A background response completes and is retrieved by polling.
        bg = self.post("/v1/responses", {"input": "short", "background": True,
                                         "eta_sim": {"output_tokens": 2}})
        etatest.wait_until(lambda: self.client.get("/v1/responses/" + bg["id"]).json()["status"]
                           == "completed", timeout=10)

    def test_responses_stream(self):
        s = self.client.stream("/v1/responses", {"input": [{"role": "user", "content": [
            {"type": "input_text", "text": "hi"}]}], "stream": True,
            "eta_sim": {"output_tokens": 4}})
        events = sse_events(s)
        names = [n for n, _ in events]
        self.assertEqual(names[:4], ["response.created", "response.in_progress",
                                     "response.output_item.added",
                                     "response.content_part.added"])
        self.assertEqual(names[-1], "response.completed")
        deltas = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
        done = [d for n, d in events if n == "response.output_text.done"][0]
        self.assertEqual(done["text"], deltas)
        self.assertEqual([d["sequence_number"] for _, d in events], list(range(len(events))))
        final = events[-1][1]["response"]
        self.assertEqual(final["usage"]["output_tokens"], 4)
        self.assertEqual(self.client.get("/v1/responses/" + final["id"]).json()["status"],
                         "completed")

    def test_messages(self):
        m = self.post("/v1/messages", {"model": MODEL, "max_tokens": 4, "system": "be brief",
                                       "messages": [{"role": "user", "content": "hi"}],
                                       "eta_sim": {"output_tokens": 2}})
        self.assertEqual(m["type"], "message")
        self.assertEqual(m["role"], "assistant")
        self.assertEqual(m["stop_reason"], "end_turn")
        self.assertEqual(m["usage"]["output_tokens"], 2)
        count = self.post("/v1/messages/count_tokens", {
            "model": MODEL, "system": "be brief", "messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(count["input_tokens"], m["usage"]["input_tokens"])
        s = self.client.stream("/v1/messages", {"max_tokens": 3, "stream": True, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "eta_sim": {"output_tokens": 10}})
        events = sse_events(s)
        names = [n for n, _ in events]
        self.assertEqual(names[:2], ["message_start", "content_block_start"])
        self.assertEqual(names[-3:], ["content_block_stop", "message_delta", "message_stop"])
        self.assertEqual(events[-2][1]["usage"]["output_tokens"], 3)
        self.assertEqual(events[-2][1]["delta"]["stop_reason"], "max_tokens")
        r = self.client.post("/v1/messages", {"messages": []})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["type"], "error")
        self.assertEqual(r.json()["error"]["type"], "invalid_request_error")

    def test_audio_transcription(self):
        for path in ["/v1/audio/transcriptions", "/v1/audio/translations"]:
            body, ctype = multipart([("model", MODEL, None),
                                     ("file", wav_bytes(2.0), "a.wav")])
            r = self.client.request("POST", path, body=body, headers={"Content-Type": ctype})
            self.assertEqual(r.status, 200, r.body)
            out = r.json()
            self.assertEqual(out["usage"], {"type": "duration", "seconds": 2})
            # 3 output tokens per second of audio.
            self.assertEqual(self.post("/tokenize", {"prompt": out["text"]})["count"], 6)
        # stream=true: transcription.chunk events, the finish on the last, then [DONE].
        body, ctype = multipart([("file", wav_bytes(2.0), "a.wav"), ("stream", "true", None)])
        conn = etatest.http.client.HTTPConnection(self.sim.host, self.sim.port, timeout=30)
        conn.request("POST", "/v1/audio/transcriptions", body=body,
                     headers={"Content-Type": ctype})
        s = etatest.Stream(conn, conn.getresponse(), time.monotonic())
        self.assertEqual(s.status, 200)
        events = sse_events(s)
        self.assertIsNone(events[-1][1])
        chunks = [d for _, d in events[:-1]]
        self.assertTrue(all(c["object"] == "transcription.chunk" for c in chunks))
        self.assertTrue(chunks[0]["id"].startswith("trsc-"))
        self.assertIsNotNone(chunks[-1]["choices"][0]["finish_reason"])
        text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
        self.assertEqual(self.post("/tokenize", {"prompt": text})["count"], 6)
        body, ctype = multipart([("model", "nope", None), ("file", wav_bytes(1.0), "a.wav")])
        r = self.client.request("POST", "/v1/audio/transcriptions", body=body,
                                headers={"Content-Type": ctype})
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"]["param"], "model")
        r = self.client.post("/v1/audio/transcriptions", {"model": MODEL})
        self.assertEqual(r.status, 400)


class StoredResponsesTest(unittest.TestCase):
    def test_a_response_lives_on_the_replica_that_made_it(self):
        with etatest.start_sim("--time-scale", "20") as a, etatest.start_sim("--time-scale", "20") as b:
            ca, cb = a.client(), b.client()
            status, r = ca.post_json("/v1/responses", {"input": "hi", "eta_sim": {"output_tokens": 2}})
            self.assertEqual(status, 200, r)
            self.assertEqual(ca.get("/v1/responses/" + r["id"]).status, 200)
            other = cb.get("/v1/responses/" + r["id"])
            self.assertEqual(other.status, 404)
            self.assertEqual(other.json()["error"]["type"], "invalid_request_error")
            self.assertEqual(cb.post("/v1/responses/%s/cancel" % r["id"], "").status, 404)
            # store=false keeps nothing.
            status, r = ca.post_json("/v1/responses", {"input": "hi", "store": False,
                                                       "eta_sim": {"output_tokens": 1}})
            self.assertEqual(status, 200, r)
            self.assertEqual(ca.get("/v1/responses/" + r["id"]).status, 404)
            events = sse_events(ca.stream("/v1/responses", {
                "input": "hi", "store": False, "stream": True, "eta_sim": {"output_tokens": 3}}))
            item = events[2][1]["item"]["id"]
            self.assertRegex(item, r"^msg_[0-9a-f]{32}$")
            self.assertTrue(all(d["item_id"] == item for n, d in events
                                if n == "response.output_text.delta"))
            self.assertEqual(events[-1][1]["response"]["usage"]["output_tokens"], 3)
            ca.close()
            cb.close()


if __name__ == "__main__":
    unittest.main()
