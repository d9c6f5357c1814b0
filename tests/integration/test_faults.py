"""Faults under a bounded workload through `eta route` in front of `eta vllm-sim` replicas: a
replica SIGKILLed, one SIGSTOPped (hung with open connections) and continued, one whose /metrics
hangs and one whose /metrics is garbage, one that answers 500 to some requests (--fail-rate),
one that flaps, one added and one drained during the run, every replica down and back; and
overload (429 + Retry-After, /health and /metrics answering).

For each: every request either succeeds or gets a clear error (an OpenAI error body, or an SSE
error event then [DONE]); none is duplicated (faultlib.check_run: the client's bytes came from
the router's last attempt, no replica saw a request twice or one the router did not send it, at
most one replica completed it); the router recovers within its health-check time (measured; the
bound asserted is generous, the figures are in docs/reliability.md). Each test prints a
`FAULT ...` line with its figures (and appends it to $ETA_FAULT_REPORT when set)."""

import http.client
import json
import socket
import tempfile
import threading
import time
import unittest

import etatest
import faultlib
from faultlib import Load, Router, Sim, check_run, emit, router_yaml, wait_routable

# health: interval 0.2 s, failure threshold 2, success threshold 1 (faultlib.router_yaml).
HEALTH_INTERVAL_S = 0.2
# Detection needs `failure_threshold` failed checks, each bounded by the check timeout (0.5 s);
# recovery one successful check plus the model list. Generous for a loaded 2-core machine.
DOWN_BOUND_S = 2 * (HEALTH_INTERVAL_S + 0.5) + 2.0
UP_BOUND_S = HEALTH_INTERVAL_S + 2.0


class FaultTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="eta-faults-")
        self.addCleanup(self.dir.cleanup)

    def sim(self, *extra):
        return Sim(self, *extra, log_dir=self.dir.name)

    def test_sigkill_under_load(self):
        sims = [self.sim() for _ in range(3)]
        router = Router(self, router_yaml(sims))
        victim = sims[1]
        load = Load(router, 150, "kill", threads=6, max_tokens=40).start()
        load.wait_done(40)
        victim.kill()
        down = wait_routable(router, victim.url, False, since=victim.changed_at)
        results = load.join()
        rep = check_run(self, "sigkill", results, sims, router, expected_n=150)
        self.assertIsNotNone(down)
        rep.recovery_s.append(down)
        self.assertLess(down, DOWN_BOUND_S)
        # Only streams that had started on the victim may fail (mid-stream error event); every
        # non-streamed request in flight there was retried elsewhere.
        for r in results:
            if r.kind != "ok":
                self.assertEqual(r.kind, "stream_error", r)
                self.assertEqual(r.replica, victim.url)
        # Nothing was sent to it once it was known down.
        known_down = time.time() - (time.monotonic() - victim.changed_at) + down + 0.05
        late = [d for d in router.decisions()
                if d["chosen"] == victim.url and d["time"] > known_down]
        self.assertEqual(late, [])
        m = router.metrics()
        self.assertEqual(m.get("eta_replica_routable", replica=victim.url), 0)
        rep.notes.append("victim down after %.3f s" % down)
        emit(rep)

    def test_sigstop_hangs_then_continues(self):
        sims = [self.sim() for _ in range(3)]
        router = Router(self, router_yaml(sims))
        victim = sims[0]
        load = Load(router, 150, "stop", threads=6, max_tokens=40).start()
        load.wait_done(30)
        victim.pause()
        down = wait_routable(router, victim.url, False, since=victim.changed_at)
        self.assertIsNotNone(down)
        load.wait_done(110)
        victim.resume()
        up = wait_routable(router, victim.url, True, since=victim.changed_at)
        results = load.join()
        # The stopped replica may finish, once continued, a request the router gave up on: the
        # client never sees those bytes (its answer came from the last attempt).
        rep = check_run(self, "sigstop", results, sims, router, expected_n=150,
                        allow_zombie_ok=(victim.url,))
        for r in results:
            if r.kind != "ok":
                self.assertEqual(r.kind, "stream_error", r)  # a stream the idle timeout ended
                self.assertEqual(r.error_type, "GatewayTimeoutError", r)
                self.assertEqual(r.replica, victim.url)
        self.assertIsNotNone(up)
        self.assertLess(down, DOWN_BOUND_S)
        self.assertLess(up, UP_BOUND_S)
        rep.recovery_s += [down, up]
        rep.notes.append("down after %.3f s, routable %.3f s after SIGCONT" % (down, up))
        # It serves again.
        after = Load(router, 12, "stop-after", threads=3).run()
        self.assertTrue(all(r.kind == "ok" for r in after), after)
        self.assertIn(victim.url, {r.replica for r in after})
        emit(rep)

    def test_unanswered_requests_leave_an_unhealthy_replica_at_once(self):
        # A first-byte timeout of a minute: the requests the stopped replica holds must not wait
        # for it. Once health checks mark it down, the router retries every request it has not
        # begun to answer on the other replica.
        sims = [self.sim() for _ in range(2)]
        router = Router(self, router_yaml(sims, timeouts="{connect_s: 1, first_byte_s: 60, "
                                                         "idle_s: 60}"))
        victim = sims[0]
        victim.pause()
        results = Load(router, 16, "unanswered", threads=16, stream_every=0).run()
        down = wait_routable(router, victim.url, False, since=victim.changed_at)
        victim.resume()
        rep = check_run(self, "unanswered on a stopped replica", results, sims, router,
                        expected_n=16, allow_zombie_ok=(victim.url,))
        self.assertEqual(rep.ok, 16, results)
        self.assertIsNotNone(down)
        # Round-robin gave the victim about half of them; all were answered by the other one.
        self.assertEqual({r.replica for r in results}, {sims[1].url})
        moved = [d for d in router.decisions() if d["chosen"] == sims[1].url and d["attempt"] > 1]
        self.assertGreater(len(moved), 0)
        slowest = max(r.t1 - r.t0 for r in results)
        self.assertLess(slowest, 20.0)  # a third of the first-byte timeout: not waited out
        rep.notes.append("victim down after %.3f s; slowest answer %.2f s (first-byte timeout "
                         "60 s)" % (down, slowest))
        emit(rep)

    def test_unanswered_requests_wait_when_no_other_replica_can_take_them(self):
        # The only replica turns unhealthy while it holds requests: there is nowhere to retry
        # them, so they keep waiting for it (up to the first-byte timeout) instead of failing at
        # once, and are answered when it continues.
        sims = [self.sim()]
        router = Router(self, router_yaml(sims, timeouts="{connect_s: 1, first_byte_s: 60, "
                                                         "idle_s: 60}"))
        victim = sims[0]
        victim.pause()
        load = Load(router, 4, "lonely", threads=4, stream_every=0).start()
        down = wait_routable(router, victim.url, False, since=victim.changed_at)
        self.assertIsNotNone(down)
        time.sleep(0.5)  # the posted failover has run
        victim.resume()
        results = load.join()
        self.assertEqual([r.kind for r in results], ["ok"] * 4, results)
        self.assertEqual({r.replica for r in results}, {victim.url})

    def test_metrics_hang_or_garbage(self):
        hang = self.sim("--metrics-fault", "hang")
        garbage = self.sim("--metrics-fault", "garbage")
        good = self.sim()
        sims = [hang, garbage, good]
        router = Router(self, router_yaml(sims, policy="eta",
                                          extra="scrape: {interval_s: 0.05, timeout_s: 0.3}\n"))
        results = Load(router, 90, "metrics", threads=6).run()
        rep = check_run(self, "metrics hang/garbage", results, sims, router, expected_n=90)
        self.assertEqual(rep.ok, 90)
        # /v1 works on all three: they stay routable and get requests; the scrapes fail.
        # (A hung scrape fails at its 0.3 s timeout: the run may be shorter than that.)
        for s in (hang, garbage):
            self.assertTrue(etatest.wait_until(
                lambda: router.metrics().get("eta_scrape_failures_total", replica=s.url) > 0,
                timeout=5))
        reps = router.replicas()
        m = router.metrics()
        for s in sims:
            self.assertTrue(reps[s.url]["routable"], reps[s.url])
        for s in (hang, garbage):
            self.assertFalse(reps[s.url]["scrape"]["valid"], reps[s.url])
        self.assertEqual(m.get("eta_scrape_failures_total", replica=good.url), 0)
        served = {r.replica for r in results}
        self.assertIn(hang.url, served)
        self.assertIn(garbage.url, served)
        # The router itself stays responsive.
        status, _, secs = router.get("/metrics")
        self.assertEqual(status, 200)
        rep.notes.append("router /metrics %.1f ms" % (secs * 1e3))
        emit(rep)

    def test_500s_are_retried_elsewhere(self):
        flaky = self.sim("--fail-rate", "0.5", "--seed", "7")
        sims = [flaky, self.sim(), self.sim()]
        router = Router(self, router_yaml(sims))
        results = Load(router, 120, "fail", threads=6).run()
        rep = check_run(self, "500 (fail-rate 0.5)", results, sims, router, expected_n=120)
        self.assertEqual(rep.ok, 120)  # every 500 came before any byte: retried
        fails = sum(1 for _, ev, _ in flaky.events() if ev == "fail")
        self.assertGreater(fails, 5)
        self.assertEqual(rep.failovers, fails)
        m = router.metrics()
        self.assertEqual(m.get("eta_errors_total", reason="upstream_5xx"), fails)
        self.assertEqual(m.get("eta_retries_total", replica=flaky.url), fails)
        rep.notes.append("%d injected 500s, all retried" % fails)
        emit(rep)
        # Alone, its 500s reach the client as it sent them (an OpenAI error body).
        alone = Router(self, router_yaml([flaky]))
        res = Load(alone, 30, "fail-alone", threads=3).run()
        rep2 = check_run(self, "500 alone", res, [flaky], alone, expected_n=30)
        self.assertGreater(rep2.errors.get("500 InternalServerError", 0), 0)
        self.assertEqual(rep2.ok + rep2.errors["500 InternalServerError"], 30)
        emit(rep2)

    def test_flapping_replica(self):
        sims = [self.sim() for _ in range(3)]
        router = Router(self, router_yaml(sims))
        flapper = sims[2]
        load = Load(router, 240, "flap", threads=6, max_tokens=30, rate=60).start()
        rep_down, rep_up = [], []
        for _ in range(3):
            time.sleep(0.6)
            flapper.kill()
            d = wait_routable(router, flapper.url, False, since=flapper.changed_at)
            self.assertIsNotNone(d)
            rep_down.append(d)
            time.sleep(0.3)
            flapper.start()
            u = wait_routable(router, flapper.url, True, since=flapper.changed_at)
            self.assertIsNotNone(u)
            rep_up.append(u)
        results = load.join()
        rep = check_run(self, "flapping (3 cycles)", results, sims, router, expected_n=240)
        for r in results:
            if r.kind != "ok":
                self.assertEqual(r.kind, "stream_error", r)
                self.assertEqual(r.replica, flapper.url)
        for d in rep_down:
            self.assertLess(d, DOWN_BOUND_S)
        for u in rep_up:
            self.assertLess(u, UP_BOUND_S)
        rep.recovery_s = rep_up
        rep.notes.append("down after %s s, back after %s s" % (
            "/".join("%.3f" % x for x in rep_down), "/".join("%.3f" % x for x in rep_up)))
        # It was used between flaps.
        self.assertGreater(sum(1 for r in results if r.replica == flapper.url), 3)
        emit(rep)

    def test_add_and_drain_during_run(self):
        a, b, spare = self.sim(), self.sim(), self.sim()
        sims = [a, b, spare]
        router = Router(self, router_yaml([a, b]))
        admin = router.admin()
        load = Load(router, 160, "adm", threads=6, max_tokens=40, rate=80).start()
        load.wait_done(30)
        t_add = time.time()
        status, body = admin.post_json("/admin/replicas", {"url": spare.url})
        self.assertEqual(status, 201, body)
        up = wait_routable(router, spare.url, True, timeout=10)
        self.assertIsNotNone(up)
        load.wait_done(80)
        status, body = admin.post_json("/admin/replicas/drain", {"url": a.url})
        self.assertEqual(status, 200, body)
        t_drain = time.time()
        results = load.join()
        admin.close()
        rep = check_run(self, "add + drain", results, sims, router, expected_n=160)
        self.assertEqual(rep.ok, 160)  # a drain lets in-flight requests finish
        decisions = router.decisions()
        self.assertEqual([d for d in decisions if d["chosen"] == a.url and d["time"] > t_drain],
                         [])
        first_spare = min(d["time"] for d in decisions if d["chosen"] == spare.url)
        rep.recovery_s.append(up)
        rep.notes.append("added replica routable after %.3f s, first request %.3f s after the "
                         "add" % (up, first_spare - t_add))
        self.assertLess(up, UP_BOUND_S)
        emit(rep)

    def test_every_replica_down_then_back(self):
        sims = [self.sim(), self.sim()]
        router = Router(self, router_yaml(sims))
        before = Load(router, 20, "all-before", threads=4).run()
        self.assertTrue(all(r.kind == "ok" for r in before), before)
        for s in sims:
            s.kill()
        t_down = time.monotonic()
        down = etatest.wait_until(lambda: router.get("/health")[0] == 503, timeout=10)
        self.assertTrue(down)
        down_s = time.monotonic() - t_down
        status, body, _ = router.get("/health")
        self.assertEqual(status, 503)
        during = Load(router, 20, "all-down", threads=4).run()
        for r in during:
            self.assertEqual((r.kind, r.status, r.error_type),
                             ("error", 503, "ServiceUnavailableError"), r)
        for s in sims:
            s.start()
        t_up = time.monotonic()
        first_ok = None
        probe = 0
        while time.monotonic() - t_up < 15:
            r = faultlib.send_one(router.host, router.port, "all-probe-%d" % probe, False, 4,
                                  "probe")
            probe += 1
            if r.kind == "ok":
                first_ok = time.monotonic() - t_up
                break
            self.assertEqual((r.kind, r.status), ("error", 503), r)
            time.sleep(0.01)
        self.assertIsNotNone(first_ok)
        self.assertLess(first_ok, UP_BOUND_S)
        after = Load(router, 20, "all-after", threads=4).run()
        results = before + during + after
        rep = check_run(self, "all down, then back", results, sims, router, expected_n=60)
        self.assertEqual(rep.ok, 40)
        self.assertEqual(rep.errors, {"503 ServiceUnavailableError": 20})
        rep.recovery_s.append(first_ok)
        rep.notes.append("/health 503 after %.3f s; first 200 %.3f s after the restart"
                         % (down_s, first_ok))
        emit(rep)


class OverloadTest(unittest.TestCase):
    """Far above capacity the router sheds with 429 + Retry-After and stays responsive (the
    timed figures are bench/overload.py's, in docs/reliability.md)."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="eta-overload-")
        self.addCleanup(self.dir.cleanup)

    def test_sheds_with_retry_after_and_health_answers(self):
        sims = [Sim(self, "--max-num-seqs", "2", log_dir=self.dir.name) for _ in range(2)]
        router = Router(self, router_yaml(sims, policy="eta", extra=(
            "admission: {max_in_flight_per_replica: 2, retry_after_s: 2}\n")))
        probes = {"/health": [], "/metrics": []}
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                for path in probes:
                    status, _, secs = router.get(path)
                    probes[path].append((status, secs))
                stop.wait(0.02)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        # 4 slots of about 0.15 s each (200 tokens at time scale 10): about 27 requests/s;
        # sent at 80/s.
        results = Load(router, 150, "over", threads=16, max_tokens=200, rate=80).run()
        stop.set()
        poller.join(10)
        rep = check_run(self, "overload (~3x capacity)", results, sims, router, expected_n=150)
        shed = [r for r in results if r.kind == "error"]
        self.assertGreater(len(shed), 10)
        for r in shed:
            self.assertEqual((r.status, r.error_type, r.retry_after),
                             (429, "TooManyRequestsError", "2"), r)
        self.assertEqual(rep.ok + len(shed), 150)
        self.assertGreater(rep.ok, 10)
        m = router.metrics()
        self.assertEqual(m.get("eta_errors_total", reason="shed_capacity"), len(shed))
        # The replicas never held more than their slots: nothing queued inside them.
        for path, seen in probes.items():
            self.assertGreater(len(seen), 3, path)
            self.assertEqual({st for st, _ in seen}, {200}, path)
            self.assertLess(max(secs for _, secs in seen), 2.0, path)  # sanity bound only
        worst = {p: max(secs for _, secs in v) * 1e3 for p, v in probes.items()}
        rep.notes.append("/health max %.1f ms, /metrics max %.1f ms over %d probes"
                         % (worst["/health"], worst["/metrics"], len(probes["/health"])))
        emit(rep)

    def test_a_client_gone_from_the_queue_holds_no_place(self):
        # One in-flight slot and a queue of 2: A waits, B waits and goes away (its entry is behind
        # A, not at the head), then C comes. B holds no place: C is queued, not refused, and the
        # queue length counts A and C.
        sims = [Sim(self, log_dir=self.dir.name)]
        router = Router(self, router_yaml(sims, extra=(
            "admission: {max_in_flight: 1, queue_size: 2, queue_timeout_s: 60}\n")))
        holder = http.client.HTTPConnection(router.host, router.port, timeout=30)
        holder.request("POST", "/v1/completions", body=json.dumps(
            {"model": faultlib.MODEL, "prompt": "holder", "max_tokens": 3000, "ignore_eos": True,
             "stream": True}), headers={"Content-Type": "application/json"})
        self.assertEqual(holder.getresponse().status, 200)
        queued = {}

        def send(name):
            queued[name] = faultlib.send_one(router.host, router.port, name, False, 4, name)
        a = threading.Thread(target=send, args=("A",), daemon=True)
        a.start()
        self.assertTrue(etatest.wait_until(
            lambda: router.metrics().get("eta_queue_length") == 1, timeout=5))
        b = socket.create_connection((router.host, router.port), timeout=5)
        body = json.dumps({"model": faultlib.MODEL, "prompt": "B", "max_tokens": 4}).encode()
        b.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self.assertTrue(etatest.wait_until(
            lambda: router.metrics().get("eta_queue_length") == 2, timeout=5))
        b.close()
        self.assertTrue(etatest.wait_until(
            lambda: router.metrics().get("eta_errors_total", reason="client_disconnect") == 1,
            timeout=5))
        c = threading.Thread(target=send, args=("C",), daemon=True)
        c.start()
        time.sleep(0.3)
        m = router.metrics()
        self.assertEqual(m.get("eta_admission_rejections_total", reason="queue_full"), 0,
                         queued.get("C"))
        self.assertEqual(m.get("eta_queue_length"), 2)
        holder.close()  # frees the slot: A, then C
        a.join(20)
        c.join(20)
        self.assertEqual((queued["A"].kind, queued["C"].kind), ("ok", "ok"), queued)


if __name__ == "__main__":
    unittest.main()
