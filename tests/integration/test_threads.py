"""`eta route --threads 4` (issue 2.3 item 4) in front of `eta vllm-sim` replicas: many
concurrent clients, streaming and not, some going away mid-stream, requests queued by the
admission limit and dispatched from another worker; every complete response is whole and its
own (one id per stream, every token, [DONE] last), the ledger is back to zero in flight
(GET /admin/replicas) and the request counters add up. `make tsan` runs it against the
ThreadSanitizer build (ETA_TSAN=1: a lighter load; any report fails it, since the router runs
with halt_on_error and its stderr is checked)."""

import http.client
import json
import os
import random
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


def start_sim():
    return etalib.Server([SIM_BIN, "vllm-sim", "--port", "0", "--model", MODEL,
                          "--time-scale", "10", "--max-num-seqs", "64"], name="vllm-sim")


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

    @classmethod
    def tearDownClass(cls):
        code = cls.router.stop()
        for s in cls.sims:
            s.stop()
        stderr = "".join(cls.router.stderr_lines)
        assert "ThreadSanitizer" not in stderr, stderr[-20000:]
        assert code == 0, "router exited with %r; stderr:\n%s" % (code, stderr[-5000:])

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


if __name__ == "__main__":
    unittest.main()
