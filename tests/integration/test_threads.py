"""`eta route --threads 4` (issue 2.3 item 4) in front of `eta vllm-sim` replicas: many
concurrent clients, streaming and not, some going away mid-stream, requests queued by the
admission limit and dispatched from another worker; every complete response is whole and its
own (one id per stream, every token, [DONE] last), the ledger is back to zero in flight
(GET /admin/replicas) and the request counters add up. Then the paths where the main thread
answers a worker's client: queue timeouts (the queue timer), a forced removal ending open
streams (the admin API), and SIGTERM's grace running out (the shutdown timer). `make tsan` runs it against the
ThreadSanitizer build (ETA_TSAN=1: a lighter load; any report fails it, since the router runs
with halt_on_error and its stderr is checked)."""

import http.client
import json
import os
import random
import signal
import threading
import traceback
import unittest

import etatest
from etatest import etalib

MODEL = "sim-model"
TSAN = os.environ.get("ETA_TSAN") == "1"
CLIENTS = 32
PER_CLIENT = 8 if TSAN else 16
THREADS = 4
SIM_BIN = os.environ.get("ETA_SIM_BIN") or etatest.ETA_BIN


def start_sim(time_scale=10):
    return etalib.Server([SIM_BIN, "vllm-sim", "--port", "0", "--model", MODEL,
                          "--time-scale", str(time_scale), "--max-num-seqs", "64"],
                         name="vllm-sim")


def start_router(sims, *extra):
    args = ["--port", "0", "--admin-port", "0", "--threads", str(THREADS),
            "--log-level", "warn"] + [str(a) for a in extra]
    for s in sims:
        args += ["--replica", s.url]
    return etatest.EtaRouter(args, ready_timeout=60)


def open_stream(router, max_tokens=2000):
    """A streaming completion whose first event has arrived: (connection, response)."""
    conn = http.client.HTTPConnection(router.host, router.port, timeout=60)
    body = {"model": MODEL, "prompt": "a long story", "max_tokens": max_tokens,
            "ignore_eos": True, "stream": True}
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    first, _ = read_sse(resp, limit=1)
    assert first, "no first event"
    return conn, resp


def ended_with_error(resp, error_type):
    """Reads the rest of a stream: it ends with an error event of `error_type`, then [DONE]."""
    events, rest = read_sse(resp)
    assert events[-1] == "[DONE]" and rest.strip() == b"", (events[-3:], rest)
    err = json.loads(events[-2])
    assert err["error"]["type"] == error_type, err
    return len(events)


def check_tsan(proc):
    stderr = "".join(proc.stderr_lines)
    assert "ThreadSanitizer" not in stderr, stderr[-20000:]


def read_sse(resp, limit=None):
    """The `data:` payloads of an SSE body (at most `limit` of them)."""
    events = []
    buf = b""
    while limit is None or len(events) < limit:
        chunk = resp.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    events.append(line[6:].decode())
    return events, buf


class ThreadsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sims = [start_sim() for _ in range(3)]
        args = ["route", "--port", "0", "--admin-port", "0", "--threads", str(THREADS),
                "--policy", "least-request", "--max-in-flight", "24", "--queue-size", "1000",
                "--queue-timeout-s", "120", "--log-level", "warn"]
        for s in cls.sims:
            args += ["--replica", s.url]
        cls.router = etatest.EtaRouter(args[1:], ready_timeout=60)
        cls.slow = start_sim(time_scale=1)

    @classmethod
    def tearDownClass(cls):
        code = cls.router.stop()
        for s in cls.sims + [cls.slow]:
            s.stop()
        check_tsan(cls.router)
        assert code == 0, "router exited with %r; stderr:\n%s" % (
            code, "".join(cls.router.stderr_lines)[-5000:])

    def one(self, conn, kind, max_tokens, give_up):
        """One request; returns what was checked ('ok', 'gone')."""
        chat = kind != 0
        stream = kind != 2
        body = {"model": MODEL, "max_tokens": max_tokens, "stream": stream}
        if chat:
            body["messages"] = [{"role": "user", "content": "tell me %d things" % max_tokens}]
        else:
            body["prompt"] = "count to %d" % max_tokens
        if kind == 1:
            body["stream_options"] = {"include_usage": True}
        path = "/v1/chat/completions" if chat else "/v1/completions"
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            self.fail("status %d: %r" % (resp.status, resp.read()[:500]))
        if not stream:
            doc = json.loads(resp.read())
            self.assertEqual(doc["model"], MODEL)
            n = doc["usage"]["completion_tokens"]  # the simulated model may stop early
            self.assertTrue(0 < n <= max_tokens, doc)
            self.assertEqual(doc["choices"][0]["finish_reason"],
                             "length" if n == max_tokens else "stop")
            return "ok"
        if give_up:
            events, _ = read_sse(resp, limit=2)
            conn.close()  # the client goes away mid-stream
            return "gone"
        events, rest = read_sse(resp)
        self.assertEqual(rest.strip(), b"")
        self.assertEqual(events[-1], "[DONE]")
        docs = [json.loads(e) for e in events[:-1]]
        ids = {d["id"] for d in docs}
        self.assertEqual(len(ids), 1, "chunks of several responses in one stream: %r" % ids)
        tokens = [d for d in docs if d["choices"]][1 if chat else 0:]  # chat: the role first
        self.assertTrue(0 < len(tokens) <= max_tokens)
        self.assertTrue(all(d["choices"][0]["finish_reason"] is None for d in tokens[:-1]))
        self.assertEqual(tokens[-1]["choices"][0]["finish_reason"],
                         "length" if len(tokens) == max_tokens else "stop")
        self.assertTrue(all(d["model"] == MODEL for d in docs))
        usage = [d for d in docs if d.get("usage")]
        if kind == 1:
            self.assertEqual(len(usage), 1)  # the client's own stream_options, once, at the end
            self.assertEqual(usage[0]["usage"]["completion_tokens"], len(tokens))
        else:
            self.assertEqual(usage, [])  # the router's continuous usage is not relayed
        self.ids.append((resp.getheader("x-eta-replica"), next(iter(ids))))
        return "ok"

    def client(self, n, results, errors):
        rng = random.Random(n)
        conn = http.client.HTTPConnection(self.router.host, self.router.port, timeout=120)
        try:
            for i in range(PER_CLIENT):
                kind = (n + i) % 3
                give_up = kind != 2 and rng.random() < 0.1
                results.append(self.one(conn, kind, rng.randint(4, 120), give_up))
                if give_up:
                    conn = http.client.HTTPConnection(self.router.host, self.router.port,
                                                      timeout=120)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append("client %d: %r\n%s" % (n, e, traceback.format_exc()))
        finally:
            conn.close()

    def test_concurrent_streams(self):
        tasks = len(os.listdir("/proc/%d/task" % self.router.proc.pid))
        self.assertGreaterEqual(tasks, THREADS)  # the main thread and the other workers
        self.ids = []
        results, errors = [], []
        threads = [threading.Thread(target=self.client, args=(n, results, errors))
                   for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(results), CLIENTS * PER_CLIENT)
        # Every stream its own response (ids are per replica).
        self.assertEqual(len(set(self.ids)), len(self.ids))
        admin = self.router.admin()

        def idle():
            status, body = admin.get_json("/admin/replicas")
            return status == 200 and all(r["ledger"]["in_flight"] == 0 for r in body["replicas"])
        etatest.wait_until(idle, timeout=30)
        status, body = admin.get_json("/admin/replicas")
        self.assertEqual([r["ledger"]["in_flight"] for r in body["replicas"]], [0, 0, 0], body)
        m = self.router.client().metrics()
        by_status = {}
        for labels, v in m.find("eta_requests_total"):
            by_status[labels.get("status")] = by_status.get(labels.get("status"), 0) + v
        self.assertEqual(sum(by_status.values()), CLIENTS * PER_CLIENT, by_status)
        # A client that went away after a short stream had ended got its 200.
        self.assertEqual(set(by_status), {"200", "499"} if by_status.get("499") else {"200"})
        self.assertGreaterEqual(by_status["200"], results.count("ok"), by_status)
        self.assertLessEqual(by_status.get("499", 0), results.count("gone"), by_status)

    def test_queue_timeouts_answered_by_the_main_thread(self):
        # Two long streams fill the limit; the requests behind them time out in the queue (the
        # queue timer, on the main thread, answers each client on its worker).
        with start_router([self.slow], "--max-in-flight", "2", "--queue-size", "100",
                          "--queue-timeout-s", "0.3") as r:
            streams = [open_stream(r) for _ in range(2)]
            results = []

            def queued():
                c = etatest.Client(r.host, r.port, timeout=30)
                res = c.post_json("/v1/completions", {"model": MODEL, "prompt": "x",
                                                      "max_tokens": 4})
                results.append(res[0])
                c.close()
            threads = [threading.Thread(target=queued) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(results, [429] * 8)
            for conn, _ in streams:
                conn.close()  # clients gone: 499, the replica sees the disconnect
            admin = r.admin()
            etatest.wait_until(lambda: all(x["ledger"]["in_flight"] == 0 for x in
                                           admin.get_json("/admin/replicas")[1]["replicas"]),
                               timeout=10)
            m = r.client().metrics()
            self.assertEqual(sum(v for _, v in m.find("eta_requests_total", status="429")), 8)
            self.assertEqual(m.get("eta_errors_total", reason="queue_timeout"), 8)
        check_tsan(r)

    def test_forced_removal_ends_streams_of_every_worker(self):
        other = start_sim(time_scale=1)
        try:
            # Round robin: both replicas get streams whatever their speeds (the default policy
            # may send all twelve to the faster one).
            with start_router([other, self.slow], "--policy", "round-robin") as r:
                streams = [open_stream(r) for _ in range(12)]
                status, body = r.admin().post_json("/admin/replicas/remove",
                                                   {"url": other.url, "force": True})
                self.assertEqual(status, 200, body)
                ended = kept = 0
                for conn, resp in streams:
                    if resp.getheader("x-eta-replica") == other.url:
                        ended_with_error(resp, "BadGatewayError")
                        ended += 1
                    else:
                        kept += 1
                    conn.close()
                self.assertGreater(ended, 0)
                self.assertGreater(kept, 0)
            check_tsan(r)
        finally:
            other.stop()

    def test_shutdown_grace_over_ends_streams_and_queue(self):
        r = start_router([self.slow], "--shutdown-grace-s", "0.5", "--max-in-flight", "8",
                         "--queue-size", "100", "--queue-timeout-s", "30")
        try:
            streams = [open_stream(r) for _ in range(8)]
            answers = []

            def queued():
                c = etatest.Client(r.host, r.port, timeout=30)
                answers.append(c.post_json("/v1/completions", {"model": MODEL, "prompt": "x",
                                                               "max_tokens": 4})[0])
                c.close()
            threads = [threading.Thread(target=queued) for _ in range(4)]
            for t in threads:
                t.start()
            self.assertTrue(etatest.wait_until(
                lambda: r.client().metrics().get("eta_queue_length") == 4, timeout=10))
            r.proc.send_signal(signal.SIGTERM)
            for conn, resp in streams:
                ended_with_error(resp, "ServiceUnavailableError")
                conn.close()
            for t in threads:
                t.join()
            self.assertEqual(answers, [503] * 4)
            self.assertEqual(r.proc.wait(timeout=30), 0)
        finally:
            r.stop()
        check_tsan(r)


if __name__ == "__main__":
    unittest.main()
