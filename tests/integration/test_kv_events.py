"""KV-cache events (issue 15): `eta vllm-sim --kv-events-config` publishes its block pool's
stores and evictions as vLLM does, decoded here by a subscriber written from vLLM's documented
format (kvlib.py); `eta route` consumes them per replica."""

import contextlib
import json
import tempfile
import time
import unittest

import etatest
import kvlib
from test_route import RouterProcess

MODEL = "sim-model"


@contextlib.contextmanager
def connect(client):
    try:
        yield client
    finally:
        client.close()


def prompt(tag, words=60):
    return " ".join("%s%d w%d" % (tag, i % 7, i) for i in range(words))


def events_config(endpoint, replay=None, topic="kv"):
    c = {"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": endpoint, "topic": topic}
    if replay:
        c["replay_endpoint"] = replay
    return json.dumps(c)


class Ledger:
    """Replays a decoded stream: which hashes the engine holds, checking each event against it."""

    def __init__(self, test):
        self.test = test
        self.held = {}
        self.stored = 0
        self.removed = 0

    def apply(self, ev):
        t = self.test
        if ev["type"] == "BlockStored":
            n = len(ev["block_hashes"])
            t.assertEqual(ev["block_size"], 16)
            t.assertEqual(len(ev["token_ids"]), 16 * n, ev)
            parent = ev["parent_block_hash"]
            # A block's parent is in the cache when it is stored (its request holds it).
            t.assertTrue(parent is None or parent in self.held, ev)
            for i, h in enumerate(ev["block_hashes"]):
                t.assertNotIn(h, self.held, "stored twice without a removal")
                self.held[h] = ev["token_ids"][16 * i:16 * (i + 1)]
            self.stored += n
        elif ev["type"] == "BlockRemoved":
            for h in ev["block_hashes"]:
                t.assertIn(h, self.held, "removal of a block never stored")
                del self.held[h]
            self.removed += len(ev["block_hashes"])
        else:
            t.assertEqual(ev["type"], "AllBlocksCleared")
            self.held.clear()


class VllmSimPublishesTest(unittest.TestCase):
    def run_traffic(self, sim, prompts, max_tokens=8):
        with connect(sim.client()) as c:
            for p in prompts:
                r = c.post("/v1/completions", {"model": MODEL, "prompt": p,
                                                    "max_tokens": max_tokens, "ignore_eos": True})
                self.assertEqual(r.status, 200, r.body)

    def tokenize(self, sim, text):
        with connect(sim.client()) as c:
            r = c.post("/tokenize", {"model": MODEL, "prompt": text})
            self.assertEqual(r.status, 200, r.body)
            return r.json()["tokens"]

    def test_every_block_stored_and_removed_is_published_in_order_and_replay_fills_gaps(self):
        # An ipc:// endpoint is bound by the publisher (vLLM's rule; so is one with '*', which
        # would listen beyond 127.0.0.1); the replay socket is always bound.
        tmp = tempfile.mkdtemp(prefix="eta-kv-")
        endpoint = "ipc://%s/pub" % tmp
        replay_port = etatest.free_port()
        config = events_config(endpoint, "tcp://127.0.0.1:%d" % replay_port)
        sub = None
        try:
            with etatest.start_sim("--kv-events-config", config, "--num-gpu-blocks", "40",
                                   "--max-model-len", "512", "--time-scale", "20",
                                   "--kv-events-drop-every", "4") as sim:
                sub = kvlib.Subscriber(endpoint, topic=b"kv",
                                       replay="tcp://127.0.0.1:%d" % replay_port)
                time.sleep(0.5)  # our connection and subscription
                prompts = [prompt("a%d" % k) for k in range(8)]
                prompts.append(prompts[0])  # a cache hit (if still cached) stores nothing new
                self.run_traffic(sim, prompts)
                msgs = sub.receive()
                self.assertTrue(msgs)
                for topic, _, _ in msgs:
                    self.assertEqual(topic, b"kv")
                live = [s for _, s, _ in msgs]
                self.assertEqual(live, sorted(live))
                # Every 4th batch was withheld from the live stream: gaps at 3, 7, ...
                missing = sorted(set(range(max(live) + 1)) - set(live))
                self.assertTrue(missing, live)
                self.assertEqual(missing, [s for s in range(max(live) + 1) if (s + 1) % 4 == 0])
                # Replay from the first gap fills every one of them.
                replayed, ended = sub.replay(missing[0])
                self.assertTrue(ended, "no end marker from the replay socket")
                by_seq = {s: p for _, s, p in msgs}
                for s, p in replayed:
                    if s in by_seq:
                        self.assertEqual(by_seq[s], p, "replay differs from the live message")
                    by_seq[s] = p
                self.assertEqual(sorted(by_seq), list(range(max(by_seq) + 1)))

                ledger = Ledger(self)
                first_tokens = {}
                for s in sorted(by_seq):
                    ts, events, rank = kvlib.normalize_batch(kvlib.decode(by_seq[s]))
                    self.assertEqual(rank, 0)
                    self.assertLess(abs(ts - time.time()), 60)
                    self.assertTrue(events)
                    for raw in events:
                        self.assertIsInstance(raw, dict)  # the 2026 encoding: maps tagged by type
                        ev = kvlib.normalize_event(raw)
                        if ev["type"] == "BlockStored":
                            self.assertIsInstance(ev["block_hashes"][0], int)
                            self.assertEqual(ev["medium"], "GPU")
                            if ev["parent_block_hash"] is None:
                                first_tokens.setdefault(tuple(ev["token_ids"][:16]), ev)
                        ledger.apply(ev)
                self.assertGreater(ledger.removed, 0, "40 blocks: the cache must have evicted")
                self.assertLessEqual(len(ledger.held), 40)
                self.assertEqual(ledger.stored - ledger.removed, len(ledger.held))
                # The stored token ids are the prompts' own, as /tokenize gives them.
                for p in prompts[:8]:
                    toks = self.tokenize(sim, p)
                    self.assertIn(tuple(toks[:16]), first_tokens, p[:30])
        finally:
            if sub:
                sub.close()

    def test_older_arrays_byte_hashes_a_batch_map_and_a_data_parallel_rank(self):
        tmp = tempfile.mkdtemp(prefix="eta-kv-")
        endpoint = "ipc://%s/pub" % tmp
        base = etatest.free_port()
        # Rank 2 offsets the tcp ports by 2: the replay socket is on base + 2.
        config = events_config(endpoint, "tcp://127.0.0.1:%d" % (base - 2), topic="")
        sub = None
        try:
            with etatest.start_sim("--kv-events-config", config,
                                   "--kv-events-event-format", "array",
                                   "--kv-events-batch-format", "map",
                                   "--kv-events-hashes", "bytes", "--data-parallel-rank", "2",
                                   "--time-scale", "20") as sim:
                sub = kvlib.Subscriber(endpoint, replay="tcp://127.0.0.1:%d" % base)
                time.sleep(0.5)
                self.run_traffic(sim, [prompt("b")])
                msgs = sub.receive()
                self.assertTrue(msgs)
                self.assertEqual([s for _, s, _ in msgs], list(range(len(msgs))))
                replayed, ended = sub.replay(0)
                self.assertTrue(ended)
                self.assertEqual(replayed, [(s, p) for _, s, p in msgs])
                batch = kvlib.decode(msgs[0][2])
                self.assertIsInstance(batch, dict)
                self.assertEqual(set(batch), {"ts", "events", "data_parallel_rank"})
                self.assertEqual(batch["data_parallel_rank"], 2)
                ev = batch["events"][0]
                self.assertIsInstance(ev, list)
                self.assertEqual(ev[0], "BlockStored")
                stored = kvlib.normalize_event(ev)
                self.assertIsInstance(stored["block_hashes"][0], bytes)
                self.assertEqual(len(stored["block_hashes"][0]), 32)
                self.assertEqual(len(stored["token_ids"]), 16 * len(stored["block_hashes"]))
        finally:
            if sub:
                sub.close()

    def test_bad_configuration_is_one_line_and_exit_2(self):
        for config, words in [("{", "not a JSON object"),
                              ('{"enable_kv_cache_events": true, "publisher": "kafka"}',
                               "publisher"),
                              ('{"enable_kv_cache_events": true, "endpoint": "localhost"}',
                               "ZeroMQ address"),
                              ('{"enable_kv_cache_events": true, "buffer_steps": 0}',
                               "buffer_steps")]:
            code, out, err = etatest.run_eta(["vllm-sim", "--port", "0", "--model", MODEL,
                                              "--kv-events-config", config])
            self.assertEqual(code, 2, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(words, err)


class SimWithEvents:
    """`eta vllm-sim` on a fixed port with events on an ipc:// PUB socket (bound, by vLLM's
    rule) and a tcp replay socket on 127.0.0.1, so that a restart keeps its addresses."""

    def __init__(self, test, tmp, name):
        self.test = test
        self.port = etatest.free_port()
        self.replay_port = etatest.free_port()
        self.endpoint = "ipc://%s/%s.pub" % (tmp, name)
        self.replay = "tcp://127.0.0.1:%d" % self.replay_port
        self.proc = None
        self.start()
        test.addCleanup(self.stop)

    def start(self):
        config = json.dumps({"enable_kv_cache_events": True, "publisher": "zmq",
                             "endpoint": self.endpoint, "replay_endpoint": self.replay})
        self.proc = etatest.EtaProcess(["vllm-sim", "--port", str(self.port), "--model", MODEL,
                                        "--time-scale", "10", "--kv-events-config", config])
        self.url = self.proc.url

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def spec(self):
        return "%s,kv_events=%s,kv_replay=%s" % (self.url, self.endpoint, self.replay)

    def complete(self, text):
        with connect(self.proc.client()) as c:
            r = c.post("/v1/completions", {"model": MODEL, "prompt": text, "max_tokens": 4})
            self.test.assertEqual(r.status, 200, r.body)


def long_text(tag, words=700):
    return " ".join("%s%d x%d" % (tag, i % 9, i) for i in range(words))


class RouterConsumesTest(unittest.TestCase):
    def replicas(self, router):
        with connect(router.admin()) as a:
            return {r["url"]: r for r in a.get("/admin/replicas").json()["replicas"]}

    def route(self, router, text):
        with connect(router.client()) as c:
            r = c.post("/v1/completions", {"model": MODEL, "prompt": text, "max_tokens": 4})
            self.assertEqual(r.status, 200, r.body)
            return r.headers.get("x-eta-replica")

    def wait_blocks(self, router, url, pred, what):
        got = etatest.wait_until(
            lambda: (lambda r: r if pred(r["kv_events"]) else None)(self.replicas(router)[url]),
            timeout=10)
        self.assertIsNotNone(got, "%s: %s" % (what, self.replicas(router)[url]["kv_events"]))
        return got

    def test_traffic_that_reached_a_replica_directly_steers_the_router_until_it_restarts(self):
        tmp = tempfile.mkdtemp(prefix="eta-kv-")
        a = SimWithEvents(self, tmp, "a")
        b = SimWithEvents(self, tmp, "b")
        plain = etatest.start_sim("--time-scale", "10")  # no events: the router's own index
        self.addCleanup(plain.stop)
        router = RouterProcess(["--port", "0", "--admin-port", "0", "--policy", "cache-aware",
                                "--health-interval-s", "0.2", "--replica", a.spec(),
                                "--replica", b.spec(), "--replica", plain.url])
        self.addCleanup(router.stop)
        self.assertTrue(etatest.wait_until(
            lambda: all(r["routable"] for r in self.replicas(router).values()), timeout=10))
        reps = self.replicas(router)
        # No batch yet: the router's own index until the replica's events come.
        self.assertEqual(reps[a.url]["prefix_source"], "router_index")
        self.assertEqual(reps[b.url]["kv_events"]["endpoint"], b.endpoint)
        self.assertEqual(reps[b.url]["kv_events"]["batches"], 0)
        self.assertEqual(reps[plain.url]["prefix_source"], "router_index")
        self.assertIsNone(reps[plain.url]["kv_events"])

        doc = long_text("d")
        b.complete(doc)  # straight to b, not through the router
        self.wait_blocks(router, b.url, lambda k: k["cached_blocks"] >= 80, "b's events")
        self.assertEqual(self.replicas(router)[b.url]["prefix_source"], "kv_events")
        self.assertEqual(self.route(router, doc + " and a question"), b.url)
        with connect(router.admin()) as adm:
            d = adm.get("/admin/decisions").json()["decisions"][-1]
        self.assertEqual(d["chosen"], b.url)
        self.assertEqual(d["prefix_source"], "kv_events")
        self.assertGreater(d["cached_tokens"], 80 * 16)

        # b restarts with an empty cache; the same prefix reached a directly meanwhile.
        b.stop()
        self.assertTrue(etatest.wait_until(lambda: not self.replicas(router)[b.url]["healthy"],
                                           timeout=10))
        b.start()
        a.complete(doc)
        self.wait_blocks(router, a.url, lambda k: k["cached_blocks"] >= 80, "a's events")
        self.assertTrue(etatest.wait_until(lambda: self.replicas(router)[b.url]["routable"],
                                           timeout=10))
        kb = self.replicas(router)[b.url]["kv_events"]
        self.assertEqual(kb["cached_blocks"], 0, kb)
        self.assertGreaterEqual(kb["clears"], 1, kb)
        self.assertEqual(self.route(router, doc + " and another question"), a.url)

    def test_a_chat_prompt_is_matched_with_the_replicas_own_tokens(self):
        # Exact tokens (issue 15, item 3): a long chat prompt is tokenized by a replica
        # (POST /tokenize with its messages) before it is routed, and its blocks, keyed from
        # those token ids, match what a replica's events stored; a short one is not asked.
        tmp = tempfile.mkdtemp(prefix="eta-kv-")
        a = SimWithEvents(self, tmp, "a")
        b = SimWithEvents(self, tmp, "b")
        # A generous bound: this checks the path on a loaded machine, not the latency
        # (bench/kv_events/router_overhead.py --tokenize measures that).
        router = RouterProcess(["--port", "0", "--admin-port", "0", "--policy", "cache-aware",
                                "--health-interval-s", "0.2", "--tokenize-timeout-s", "1",
                                "--replica", a.spec(), "--replica", b.spec()])
        self.addCleanup(router.stop)
        self.assertTrue(etatest.wait_until(
            lambda: all(r["routable"] for r in self.replicas(router).values()), timeout=10))

        def chat(question):
            return [{"role": "system", "content": long_text("s", words=500)},
                    {"role": "user", "content": question}]

        # The conversation so far reached b directly, not through the router.
        with connect(b.proc.client()) as c:
            r = c.post("/v1/chat/completions", {"model": MODEL, "messages": chat("first?"),
                                                "max_tokens": 4})
            self.assertEqual(r.status, 200, r.body)
        self.wait_blocks(router, b.url, lambda k: k["cached_blocks"] >= 60, "b's events")
        # a publishes too (live), with nothing of this prompt.
        a.complete(long_text("other", words=50))
        self.wait_blocks(router, a.url, lambda k: k["batches"] >= 1, "a's events")

        messages = chat("and a second question?")
        with connect(router.client()) as c:
            r = c.post("/v1/chat/completions", {"model": MODEL, "messages": messages,
                                                "max_tokens": 4})
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.headers.get("x-eta-replica"), b.url)
            short = c.post("/v1/chat/completions", {"model": MODEL, "max_tokens": 4,
                                                    "messages": [{"role": "user",
                                                                  "content": "hi"}]})
            self.assertEqual(short.status, 200, short.body)
        with connect(b.proc.client()) as c:
            exact = c.post("/tokenize", {"model": MODEL, "messages": messages}).json()
        with connect(router.admin()) as adm:
            d = adm.get("/admin/decisions").json()["decisions"]
        long_d, short_d = d[-2], d[-1]
        self.assertEqual(long_d["chosen"], b.url)
        self.assertEqual(long_d["prefix_source"], "kv_events")
        self.assertEqual(long_d["prompt_tokens_source"], "tokenize")
        self.assertGreater(long_d["tokenize_s"], 0)
        self.assertLess(long_d["tokenize_s"], 1)
        self.assertEqual(long_d["prompt_tokens"], exact["count"])
        # The shared system prompt's blocks are matched (the new question's are not).
        self.assertGreaterEqual(long_d["cached_tokens"], 60 * 16, long_d)
        self.assertLess(long_d["cached_tokens"], exact["count"] - 1, long_d)
        self.assertEqual(short_d["prompt_tokens_source"], "estimate")
        self.assertEqual(short_d["tokenize_s"], 0)
        with connect(router.client()) as c:
            m = c.get("/metrics").text()
        self.assertIn('eta_prompt_tokens_source_total{source="tokenize"} 1', m)

    def test_a_gap_is_filled_from_replay(self):
        tmp = tempfile.mkdtemp(prefix="eta-kv-")
        port, replay_port = etatest.free_port(), etatest.free_port()
        endpoint = "ipc://%s/gap.pub" % tmp
        replay = "tcp://127.0.0.1:%d" % replay_port
        config = json.dumps({"enable_kv_cache_events": True, "endpoint": endpoint,
                             "replay_endpoint": replay})
        sim = etatest.EtaProcess(["vllm-sim", "--port", str(port), "--model", MODEL,
                                  "--time-scale", "10", "--kv-events-config", config,
                                  "--kv-events-drop-every", "3"])
        self.addCleanup(sim.stop)
        router = RouterProcess(["--port", "0", "--admin-port", "0", "--replica",
                                "%s,kv_events=%s,kv_replay=%s" % (sim.url, endpoint, replay)])
        self.addCleanup(router.stop)
        self.assertTrue(etatest.wait_until(lambda: self.replicas(router)[sim.url]["routable"],
                                           timeout=10))
        for k in range(10):
            self.route(router, long_text("g%d" % k, words=100))
        # Until every gap seen so far is settled: the last one's replay may still be on its way
        # (under ASan, and with several router threads, it came after last_seq reached 6).
        k = self.wait_blocks(router, sim.url,
                             lambda k: k["last_seq"] >= 6 and k["gaps"] >= 1 and
                             k["gaps_filled"] + k["gaps_lost"] == k["gaps"], "events")["kv_events"]
        self.assertGreaterEqual(k["gaps"], 1, k)
        self.assertEqual(k["gaps_filled"], k["gaps"], k)
        self.assertEqual(k["gaps_lost"], 0, k)
        self.assertEqual(k["removed_unknown"], 0, k)
        self.assertEqual(k["batches"], k["last_seq"] + 1, k)  # every batch, none twice


if __name__ == "__main__":
    unittest.main()
