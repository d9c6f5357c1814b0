"""`eta route`'s lifecycle signals with real processes: SIGTERM stops accepting, lets in-flight
streams finish within the grace time (shutdown_grace_s) and exits 0; streams still open at the
deadline end with an SSE error event; SIGHUP reloads the configuration file (replicas added and
removed, the policy and its parameters) under load without failing a request, and a bad new file
is rejected with a log line while the old configuration keeps serving."""

import http.client
import json
import os
import signal
import socket
import tempfile
import threading
import time
import unittest

import etatest
import faultlib
from faultlib import MODEL, Load, Router, Sim, check_run, router_yaml


def open_stream(router, max_tokens, rid):
    conn = http.client.HTTPConnection(router.host, router.port, timeout=30)
    body = {"model": MODEL, "prompt": "lifecycle %s" % rid, "max_tokens": max_tokens,
            "ignore_eos": True, "stream": True}
    conn.request("POST", "/v1/completions", body=json.dumps(body).encode(),
                 headers={"Content-Type": "application/json", "X-Request-Id": rid})
    r = conn.getresponse()
    assert r.status == 200, r.status
    return conn, r


def read_events(resp):
    events = []
    for line in resp.read().decode().split("\n"):
        if line.startswith("data: "):
            events.append(line[6:])
    return events


def first_event(resp):
    """Reads up to the end of the first SSE event (so the stream has started)."""
    while True:
        line = resp.readline()
        if not line or line.startswith(b"data: "):
            return line


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="eta-lifecycle-")
        self.addCleanup(self.dir.cleanup)

    def sim(self, *extra):
        return Sim(self, *extra, log_dir=self.dir.name)

    def test_sigterm_lets_streams_finish_then_exits_0(self):
        sims = [self.sim(), self.sim()]
        access_log = self.dir.name + "/access.log"
        router = Router(self, router_yaml(sims, extra="shutdown_grace_s: 20\naccess_log: %s\n"
                                          % access_log))
        # A keep-alive connection opened before the signal.
        idle = http.client.HTTPConnection(router.host, router.port, timeout=10)
        idle.request("GET", "/health")
        self.assertEqual(idle.getresponse().read(), b"")
        streams = [open_stream(router, 600, "term-%d" % i) for i in range(4)]
        for _, resp in streams:
            first_event(resp)
        t0 = time.monotonic()
        router.proc.send_signal(signal.SIGTERM)
        self.assertTrue(etatest.wait_until(
            lambda: "shutting down" in router.stderr_text(), timeout=5))
        # No new connections...
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((router.host, router.port), timeout=2).close()
        # ... and a new request on an open one gets a 503 with an OpenAI error body, then close.
        idle.request("POST", "/v1/completions", body=json.dumps(
            {"model": MODEL, "prompt": "late", "max_tokens": 4}),
            headers={"Content-Type": "application/json"})
        r = idle.getresponse()
        body = json.loads(r.read())
        self.assertEqual(r.status, 503)
        self.assertEqual(body["error"]["type"], "ServiceUnavailableError")
        self.assertEqual(r.getheader("connection"), "close")
        late_id = r.getheader("x-eta-request-id")
        self.assertIsNotNone(late_id)
        idle.close()
        # The streams in flight finish whole.
        for conn, resp in streams:
            events = read_events(resp)
            conn.close()
            self.assertEqual(events[-1], "[DONE]")
            self.assertFalse(any('"error"' in e for e in events[:-1]))
            tokens = sum(1 for e in events[:-1] if json.loads(e)["choices"][0]["text"])
            self.assertEqual(tokens, 599)  # the first event was read before
        code = router.proc.wait(10)
        elapsed = time.monotonic() - t0
        self.assertEqual(code, 0, router.stderr_text())
        self.assertLess(elapsed, 20)
        self.assertIn("nothing left in flight", router.stderr_text())
        # Every request is in the access log, the refused one too.
        with open(access_log) as f:
            records = [json.loads(line) for line in f]
        self.assertEqual(sorted(r["status"] for r in records), [200] * 4 + [503])
        late = [r for r in records if r["status"] == 503][0]
        self.assertEqual(late["request_id"], int(late_id))
        self.assertEqual(late["error"], "shutting_down")

    def test_streams_open_at_the_deadline_get_an_error_event(self):
        sims = [self.sim()]
        router = Router(self, router_yaml(sims, extra="shutdown_grace_s: 0.5\n"))
        streams = [open_stream(router, 3000, "deadline-%d" % i) for i in range(2)]
        for _, resp in streams:
            first_event(resp)
        t0 = time.monotonic()
        router.proc.send_signal(signal.SIGTERM)
        for conn, resp in streams:
            events = read_events(resp)
            conn.close()
            self.assertEqual(events[-1], "[DONE]")
            err = json.loads(events[-2])["error"]
            self.assertEqual(err["type"], "ServiceUnavailableError")
            self.assertEqual(err["code"], 503)
            self.assertIn("shutting down", err["message"])
        self.assertEqual(router.proc.wait(10), 0, router.stderr_text())
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 0.4)
        self.assertLess(elapsed, 5)
        self.assertIn("grace of 0.5 s over: ending 2 requests", router.stderr_text())
        # The replica saw both requests aborted (the router closed their connections).
        self.assertTrue(etatest.wait_until(
            lambda: sum(1 for _, ev, _ in sims[0].events() if ev == "abort") == 2, timeout=5))

    def test_queued_requests_get_503_at_the_deadline(self):
        sims = [self.sim()]
        access_log = self.dir.name + "/access.log"
        router = Router(self, router_yaml(sims, extra=(
            "shutdown_grace_s: 0.5\n"
            "access_log: %s\n"
            "admission: {max_in_flight: 1, queue_size: 4, queue_timeout_s: 60}\n" % access_log)))
        conn, resp = open_stream(router, 3000, "holder")
        first_event(resp)
        box = []
        waiter = threading.Thread(target=lambda: box.append(faultlib.send_one(
            router.host, router.port, "queued", False, 4, "queued")), daemon=True)
        waiter.start()
        self.assertTrue(etatest.wait_until(
            lambda: router.metrics().get("eta_queue_length") == 1, timeout=5))
        router.proc.send_signal(signal.SIGTERM)
        waiter.join(10)
        events = read_events(resp)
        conn.close()
        self.assertEqual(json.loads(events[-2])["error"]["code"], 503)
        self.assertEqual((box[0].kind, box[0].status, box[0].error_type),
                         ("error", 503, "ServiceUnavailableError"), box[0])
        self.assertEqual(router.proc.wait(10), 0)
        # The queued request never reached the replica.
        self.assertNotIn("queued", {rid for _, _, rid in sims[0].events()})
        # Both are in the access log as the shutdown ended them (the stream with its 200 head).
        with open(access_log) as f:
            records = [json.loads(line) for line in f]
        self.assertEqual(sorted((r["status"], r["error"]) for r in records),
                         [(200, "shutting_down"), (503, "shutting_down")])

    def test_forced_removal_ends_a_stream_with_its_reason(self):
        # POST /admin/replicas/remove {"force": true} fails the replica's requests now: the stream
        # gets a 502 error event, and the failure is counted and logged with its reason.
        sims = [self.sim(), self.sim()]
        access_log = self.dir.name + "/access.log"
        router = Router(self, router_yaml(sims, extra="access_log: %s\n" % access_log))
        conn, resp = open_stream(router, 3000, "forced")
        first_event(resp)
        victim = resp.getheader("x-eta-replica")
        admin = router.admin()
        self.addCleanup(admin.close)
        status, body = admin.post_json("/admin/replicas/remove", {"url": victim, "force": True})
        self.assertEqual(status, 200, body)
        events = read_events(resp)
        conn.close()
        self.assertEqual(events[-1], "[DONE]")
        self.assertEqual(json.loads(events[-2])["error"]["code"], 502)
        self.assertEqual(router.metrics().get("eta_errors_total", reason="replica_removed"), 1)
        self.assertTrue(etatest.wait_until(
            lambda: open(access_log).read().strip(), timeout=5))
        rec = json.loads(open(access_log).read().splitlines()[0])
        self.assertEqual((rec["status"], rec["error"], rec["replica"]),
                         (200, "replica_removed", victim))

    def test_second_signal_stops_at_once(self):
        sims = [self.sim()]
        router = Router(self, router_yaml(sims, extra="shutdown_grace_s: 60\n"))
        conn, resp = open_stream(router, 3000, "twice")
        first_event(resp)
        router.proc.send_signal(signal.SIGTERM)
        self.assertTrue(etatest.wait_until(
            lambda: "shutting down" in router.stderr_text(), timeout=5))
        router.proc.send_signal(signal.SIGINT)
        self.assertEqual(router.proc.wait(5), 0)
        conn.close()

    def test_sighup_reloads_replicas_and_policy_under_load(self):
        a, b, c = self.sim(), self.sim(), self.sim()
        router = Router(self, router_yaml([a, b], policy="round-robin"))
        load = Load(router, 200, "hup", threads=6, max_tokens=30, rate=100).start()
        load.wait_done(50)
        router.write_config(router_yaml(
            [b, c], extra="admission: {max_in_flight_per_replica: 64}\n").replace(
            "policy: round-robin", "policy: {name: power-of-two, seed: 3}"))
        t_hup = time.time()
        router.proc.send_signal(signal.SIGHUP)
        self.assertTrue(etatest.wait_until(
            lambda: "configuration reloaded: 1 replicas added, 1 removed, policy power-of-two"
            in router.stderr_text(), timeout=5), router.stderr_text())
        results = load.join()
        rep = check_run(self, "SIGHUP reload", results, [a, b, c], router, expected_n=200)
        self.assertEqual(rep.ok, 200)  # nothing dropped
        self.assertEqual(set(router.replicas()), {b.url, c.url})
        decisions = router.decisions()
        reloaded = [d for d in decisions if d["time"] > t_hup + 0.2]
        self.assertTrue(reloaded)
        self.assertEqual({d["policy"] for d in reloaded}, {"power-of-two"})
        self.assertNotIn(a.url, {d["chosen"] for d in reloaded})
        self.assertIn(c.url, {d["chosen"] for d in reloaded})
        faultlib.emit(rep)

    def test_bad_reload_is_rejected_and_the_old_configuration_kept(self):
        a, b = self.sim(), self.sim()
        good = router_yaml([a, b])
        router = Router(self, good)
        for i, bad in enumerate([
                good + "polcy: eta\n",  # unknown key
                router_yaml([a, a]),  # duplicate replica
                router_yaml([a], policy="{name: eta, params: {objective: nonsense}}"),
                "replicas: [\n",  # not YAML
        ]):
            router.write_config(bad)
            router.proc.send_signal(signal.SIGHUP)
            self.assertTrue(etatest.wait_until(
                lambda: router.stderr_text().count("reload rejected:") == i + 1, timeout=5),
                router.stderr_text())
            results = Load(router, 10, "bad%d" % i, threads=2).run()
            self.assertTrue(all(r.kind == "ok" for r in results), results)
            self.assertEqual(set(router.replicas()), {a.url, b.url})
            self.assertEqual({r.replica for r in results}, {a.url, b.url})
        self.assertNotIn("configuration reloaded", router.stderr_text())
        lines = [ln for ln in router.stderr_text().splitlines() if "reload rejected" in ln]
        self.assertIn("unknown key 'polcy'", lines[0])
        self.assertIn("duplicate replica", lines[1])

    def test_reload_cannot_leave_an_open_admin_listener_without_its_token(self):
        # The admin listener's address needs a restart, its token does not: a new file that
        # moves the admin to loopback and drops the token must not leave the running non-loopback
        # listener without a token.
        sims = [self.sim()]
        token = "adm-lifecycle-5e1d"
        router = Router(self, router_yaml(sims, extra="admin: {host: 0.0.0.0, token: %s}\n"
                                          % token))
        admin = etatest.Client("127.0.0.1", router.admin_port)
        self.addCleanup(admin.close)
        self.assertEqual(admin.request("GET", "/admin/replicas").status, 401)
        router.write_config(router_yaml(sims, extra="admin: {host: 127.0.0.1}\n"))
        router.proc.send_signal(signal.SIGHUP)
        self.assertTrue(etatest.wait_until(
            lambda: "reload rejected" in router.stderr_text()
            or "configuration reloaded" in router.stderr_text(), timeout=5),
            router.stderr_text())
        self.assertEqual(admin.request("GET", "/admin/replicas").status, 401)
        r = admin.request("GET", "/admin/replicas", headers={"Authorization": "Bearer " + token})
        self.assertEqual(r.status, 200)
        self.assertIn("admin.token", router.stderr_text())

    def test_reload_says_which_logging_settings_need_a_restart(self):
        # The access log and the log format are opened at start: a reload that changes them keeps
        # the running ones and says so, like every other setting fixed at start.
        sims = [self.sim()]
        first = self.dir.name + "/first.log"
        router = Router(self, router_yaml(sims, extra="access_log: %s\n" % first))
        second = self.dir.name + "/second.log"
        router.write_config(router_yaml(sims, extra="access_log: %s\nlog_format: json\n"
                                        % second))
        router.proc.send_signal(signal.SIGHUP)
        self.assertTrue(etatest.wait_until(
            lambda: "configuration reloaded" in router.stderr_text(), timeout=5),
            router.stderr_text())
        self.assertIn("a change of access_log needs a restart", router.stderr_text())
        self.assertIn("a change of log_format needs a restart", router.stderr_text())
        results = Load(router, 2, "logs", threads=1).run()
        self.assertTrue(all(r.kind == "ok" for r in results), results)
        self.assertTrue(etatest.wait_until(
            lambda: os.path.exists(first) and len(open(first).read().splitlines()) == 2,
            timeout=5))
        self.assertFalse(os.path.exists(second))


if __name__ == "__main__":
    unittest.main()
