"""Live peer sync (issue 13): several `eta route` instances sharing `eta vllm-sim` replicas tell
each other their work over a real `nats-server` (started here on a free loopback port).

- each router's dispatches reach the others as foreign work (GET /admin/peers,
  eta_peer_sync_foreign_requests) and leave with their finish;
- a SIGKILLed router's requests leave the others' ledgers within the 3 s bound;
- nats-server stopped mid-run: every router keeps routing (no request lost), says so once in the
  log and in eta_peer_sync_connected, and after a restart reconnects and re-syncs (work begun
  while NATS was down is known to the peers afterwards);
- a peer publishing garbage or replaying captured packets changes nothing (counted);
- one key's rate limit across routers, also through a NATS outage (the share while cut off, the
  outage's charges told afterwards).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

import etatest
from test_route import RouterProcess

MODEL = "sim-model"
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
CLUSTER = "t%d" % os.getpid()
SUBJECT = "eta.peer." + CLUSTER


class NatsServer:
    def __init__(self, port=None):
        self.port = port or etatest.free_port()
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = etatest.wait_until(lambda: self._accepts(), timeout=10)
        if not ok:
            self.stop()
            raise RuntimeError("nats-server did not start on %d" % self.port)

    def _accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class RawNats:
    """A minimal NATS client (the text protocol over a socket): publish bytes, capture a subject."""

    def __init__(self, port, subscribe=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.messages = []
        self._readline()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
        if subscribe:
            self.sock.sendall(b"SUB %s 1\r\n" % subscribe.encode())
        self.sock.sendall(b"PING\r\n")
        while self._readline() != b"PONG":
            pass
        self.stopping = False
        self.thread = None
        if subscribe:
            self.thread = threading.Thread(target=self._read_loop, daemon=True)
            self.thread.start()

    def _readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_loop(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                line = self._readline()
            except socket.timeout:
                continue
            except (EOFError, OSError):
                return
            if line.startswith(b"PING"):
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG "):
                size = int(line.split()[-1])
                while len(self.buf) < size + 2:
                    self.buf += self.sock.recv(65536)
                self.messages.append(self.buf[:size])
                self.buf = self.buf[size + 2:]

    def publish(self, subject, payload):
        self.sock.sendall(b"PUB %s %d\r\n" % (subject.encode(), len(payload)) + payload + b"\r\n")
        self.sock.sendall(b"PING\r\n")

    def close(self):
        self.stopping = True
        if self.thread:
            self.thread.join(timeout=2)
        self.sock.close()


def completion(max_tokens, stream=False):
    body = {"model": MODEL, "prompt": "peer sync " * 20, "max_tokens": max_tokens,
            "ignore_eos": True}
    if stream:
        body["stream"] = True
    return body


class PeerSyncTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nats = NatsServer()
        # time scale 1: a 300-token stream takes a few seconds, long enough to watch it
        cls.sims = [etatest.start_sim("--time-scale", "1", model=MODEL) for _ in range(2)]
        cls.routers = [cls.start_router() for _ in range(3)]
        ok = etatest.wait_until(lambda: all(cls.peers(r)["connected"] and
                                            len(cls.peers(r)["peers"]) == 2
                                            for r in cls.routers), timeout=10)
        if not ok:
            raise RuntimeError("routers did not find each other: %r"
                               % [cls.peers(r) for r in cls.routers])

    @classmethod
    def tearDownClass(cls):
        for p in cls.routers + cls.sims:
            p.stop()
        cls.nats.stop()

    @classmethod
    def start_router(cls, *extra, reverse=False, sync=True):
        args = ["--port", "0", "--admin-port", "0"]
        if sync:
            args += ["--peer-sync", cls.nats.url]
        for s in (cls.sims[::-1] if reverse else cls.sims):
            args += ["--replica", s.url]
        cfg = os.path.join(os.environ.get("TMPDIR", "/tmp"), "peer-%s.yaml" % CLUSTER)
        with open(cfg, "w") as f:
            f.write("peer_sync: {cluster: %s}\n" % CLUSTER)
        return RouterProcess(["--config", cfg] + args + list(extra))

    @staticmethod
    def peers(router):
        c = router.admin()
        try:
            status, body = c.get_json("/admin/peers")
            assert status == 200, (status, body)
            return body
        finally:
            c.close()

    @staticmethod
    def metric(router, name, **labels):
        c = router.client()
        try:
            return c.metrics().get(name, **labels)
        finally:
            c.close()

    def stream_in_background(self, router, max_tokens=300):
        result = {}

        def run():
            c = router.client(timeout=60)
            try:
                s = c.stream("/v1/completions", completion(max_tokens, stream=True))
                events = list(s)
                s.close()
                result["status"] = s.status
                result["done"] = bool(events) and events[-1].done
            except Exception as e:  # noqa: BLE001 - reported by the assertion
                result["error"] = repr(e)
            finally:
                c.close()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, result

    def foreign(self, router):
        return self.peers(router)["foreign_in_flight"]

    def test_dispatches_are_foreign_work_at_the_peers_until_they_finish(self):
        a, b, c = self.routers
        t, result = self.stream_in_background(a)
        self.assertTrue(etatest.wait_until(lambda: self.foreign(b) == 1 and self.foreign(c) == 1,
                                           timeout=3), (self.peers(b), self.peers(c)))
        self.assertEqual(self.metric(b, "eta_peer_sync_foreign_requests"), 1)
        self.assertEqual(self.metric(b, "eta_peer_sync_connected"), 1)
        self.assertEqual(self.foreign(a), 0)  # its own request is not foreign to itself
        t.join(timeout=60)
        self.assertEqual(result.get("status"), 200, result)
        self.assertTrue(result.get("done"), result)
        self.assertTrue(etatest.wait_until(lambda: self.foreign(b) == 0 and self.foreign(c) == 0,
                                           timeout=3))
        st = self.peers(b)["stats"]
        self.assertEqual(st["garbage"], 0)
        self.assertGreaterEqual(st["frames_in"], 3)  # dispatch, first token, finish (+ heartbeats)

    def replicas_idle(self):
        for sim in self.sims:
            c = sim.client()
            try:
                m = c.metrics()
            finally:
                c.close()
            if m.get("vllm:num_requests_running") or m.get("vllm:num_requests_waiting"):
                return False
        return True

    def check_prompts_follow(self, a, e, prefix):
        """For six long prompts: the replica a sent it to, and the one e then sent it to."""
        ca, ce = a.client(), e.client()
        pairs = []
        try:
            for i in range(6):
                body = {"model": MODEL, "prompt": ("%s %d " % (prefix, i)) +
                        "lorem ipsum dolor " * 300, "max_tokens": 1}
                ra = ca.request("POST", "/v1/completions", body)
                self.assertEqual(ra.status, 200)
                time.sleep(0.1)  # its finish reaches e
                re_ = ce.request("POST", "/v1/completions", body)
                self.assertEqual(re_.status, 200)
                pairs.append((ra.headers["x-eta-replica"], re_.headers["x-eta-replica"]))
        finally:
            ca.close()
            ce.close()
        return pairs

    def test_a_peers_prompt_blocks_count_as_cached_on_its_replica(self):
        # A long prompt sent through a lands on some replica X; the same prompt through e (its
        # replicas listed in the other order, so its own tie-breaks differ) then goes to X too:
        # e knows X holds the prompt's blocks only from a's dispatch. Without peer sync e does
        # not follow a (checked first, with a router that is not synced).
        a = self.routers[0]
        # Both replicas idle first: a stream left running by an earlier test (slow to end under
        # ASan) makes both routers avoid that replica, and the unsynced one would follow a.
        self.assertTrue(etatest.wait_until(self.replicas_idle, timeout=30))
        lone = self.start_router(reverse=True, sync=False)
        try:
            pairs = self.check_prompts_follow(a, lone, "unsynced")
        finally:
            lone.stop()
        self.assertNotEqual([x for x, _ in pairs], [y for _, y in pairs], pairs)
        e = self.start_router(reverse=True)
        try:
            self.assertTrue(etatest.wait_until(lambda: len(self.peers(e)["peers"]) == 3,
                                               timeout=5))
            pairs = self.check_prompts_follow(a, e, "synced")
        finally:
            e.stop()
        for x, y in pairs:
            self.assertEqual(x, y, pairs)

    def test_a_killed_routers_requests_leave_the_peers_within_3_s(self):
        d = self.start_router()
        try:
            b = self.routers[1]
            self.assertTrue(etatest.wait_until(lambda: len(self.peers(b)["peers"]) == 3,
                                               timeout=5))
            threads = [self.stream_in_background(d, max_tokens=2000) for _ in range(3)]
            self.assertTrue(etatest.wait_until(lambda: self.foreign(b) == 3, timeout=5),
                            self.peers(b))
            # Traffic through the survivors goes on while d dies.
            survivors = [self.stream_in_background(r, max_tokens=50) for r in self.routers]
            d.proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            self.assertTrue(etatest.wait_until(lambda: self.foreign(b) == 0, timeout=5,
                                               interval=0.05))
            gone_after = time.monotonic() - killed
            self.assertLess(gone_after, 3.0)
            for t, r in survivors:
                t.join(timeout=60)
                self.assertEqual(r.get("status"), 200, r)
                self.assertTrue(r.get("done"), r)
            for t, _ in threads:
                t.join(timeout=10)
            self.assertTrue(etatest.wait_until(lambda: len(self.peers(b)["peers"]) == 2,
                                               timeout=3))
            print("killed router's entries gone after %.2f s" % gone_after)
        finally:
            d.stop()

    def test_garbage_and_replayed_packets_change_nothing(self):
        a, b, c = self.routers
        capture = RawNats(self.nats.port, subscribe=SUBJECT)
        try:
            c1 = a.client()
            status, _ = c1.post_json("/v1/completions", completion(20))
            c1.close()
            self.assertEqual(status, 200)
            self.assertTrue(etatest.wait_until(lambda: len(capture.messages) >= 2, timeout=3))
            time.sleep(0.3)
            captured = list(capture.messages)
            before = self.peers(b)["stats"]
            pub = RawNats(self.nats.port)
            pub.publish(SUBJECT, b"\x00\xffnot a peer packet")
            pub.publish(SUBJECT, b"EP\x01" + b"\x07" * 40)
            for m in captured:  # old sequence numbers of a live peer
                pub.publish(SUBJECT, m)
            pub.close()
            self.assertTrue(etatest.wait_until(
                lambda: self.peers(b)["stats"]["garbage"] >= before["garbage"] + 2, timeout=3))
            after = self.peers(b)["stats"]
            own = int(self.peers(b)["router"], 16)
            others = [m for m in captured
                      if len(m) >= 11 and int.from_bytes(m[3:11], "little") != own]
            self.assertGreater(len(others), 0)
            # Every frame of every replayed packet of another router: a duplicate.
            self.assertGreaterEqual(after["duplicates"], before["duplicates"] + len(others))
            self.assertEqual(self.foreign(b), 0)
            c2 = b.client()
            status, _ = c2.post_json("/v1/completions", completion(5))
            c2.close()
            self.assertEqual(status, 200)
        finally:
            capture.close()

    def test_zz_nats_stopped_and_restarted(self):
        a, b, c = self.routers
        self.nats.stop()
        self.assertTrue(etatest.wait_until(
            lambda: all(self.metric(r, "eta_peer_sync_connected") == 0 for r in self.routers),
            timeout=5))
        # Routing goes on: every request answered.
        for r in self.routers:
            cl = r.client()
            status, _ = cl.post_json("/v1/completions", completion(5))
            cl.close()
            self.assertEqual(status, 200)
        # Work begun while NATS is down ...
        t, result = self.stream_in_background(a, max_tokens=1500)
        time.sleep(0.5)
        self.nats = NatsServer(self.nats.port)
        type(self).nats = self.nats
        self.assertTrue(etatest.wait_until(
            lambda: all(self.peers(r)["connected"] for r in self.routers), timeout=8))
        # ... is known to the peers after the re-sync (a's snapshot).
        self.assertTrue(etatest.wait_until(lambda: self.foreign(b) == 1, timeout=3),
                        self.peers(b))
        t.join(timeout=60)
        self.assertEqual(result.get("status"), 200, result)
        self.assertTrue(etatest.wait_until(lambda: self.foreign(b) == 0, timeout=3))
        log = "".join(a.stderr_lines)
        self.assertEqual(log.count("unreachable"), 1, log)


class NatsLaterTest(unittest.TestCase):
    def test_a_router_started_before_nats_routes_then_connects(self):
        port = etatest.free_port()
        sim = etatest.start_sim("--time-scale", "100", model=MODEL)
        self.addCleanup(sim.stop)
        r = RouterProcess(["--port", "0", "--admin-port", "0", "--replica", sim.url,
                           "--peer-sync", "nats://127.0.0.1:%d" % port])
        self.addCleanup(r.stop)
        self.assertEqual(PeerSyncTest.metric(r, "eta_peer_sync_connected"), 0)
        c = r.client()
        status, _ = c.post_json("/v1/completions", completion(5))
        c.close()
        self.assertEqual(status, 200)  # routing does not wait for NATS
        nats = NatsServer(port)
        self.addCleanup(nats.stop)
        self.assertTrue(etatest.wait_until(
            lambda: PeerSyncTest.metric(r, "eta_peer_sync_connected") == 1, timeout=8))
        log = "".join(r.stderr_lines)
        self.assertEqual(log.count("unreachable"), 1, log)
        self.assertEqual(log.count("connected to NATS"), 1, log)


class RateLimitAcrossRoutersTest(unittest.TestCase):
    """One API key limited to 6000 tokens per minute (100/s, a burst of 6000), a client sending as
    fast as it can through three routers in turn: together they admit the key's rate (within
    10 %), not three times it."""

    TPM = 6000

    def test_three_routers_admit_one_keys_rate_together(self):
        nats = NatsServer()
        self.addCleanup(nats.stop)
        sim = etatest.start_sim("--time-scale", "100", model=MODEL)
        self.addCleanup(sim.stop)
        cluster = CLUSTER + "rl"
        cfg = os.path.join(os.environ.get("TMPDIR", "/tmp"), "peer-%s.yaml" % cluster)
        with open(cfg, "w") as f:
            f.write("peer_sync: {url: %s, cluster: %s}\n" % (nats.url, cluster))
            f.write("api_keys: [{key: sk-one, tokens_per_minute: %d}]\n" % self.TPM)
        routers = []
        for _ in range(3):
            r = RouterProcess(["--config", cfg, "--port", "0", "--admin-port", "0",
                               "--replica", sim.url])
            self.addCleanup(r.stop)
            routers.append(r)
        self.assertTrue(etatest.wait_until(
            lambda: all(len(PeerSyncTest.peers(r)["peers"]) == 2 for r in routers), timeout=10))
        body = {"model": MODEL, "prompt": "hi", "max_tokens": 98}
        clients = [r.client() for r in routers]
        headers = {"Authorization": "Bearer sk-one"}
        admitted = refused = 0
        start = time.monotonic()
        duration = 8.0
        i = 0
        while time.monotonic() - start < duration:
            c = clients[i % 3]
            i += 1
            resp = c.request("POST", "/v1/completions", json.dumps(body).encode(), headers)
            if resp.status == 200:
                admitted += 1
            else:
                self.assertEqual(resp.status, 429, resp.text())
                refused += 1
        elapsed = time.monotonic() - start
        for c in clients:
            c.close()
        # Each request is charged its prompt ("hi": 1 toy token) + max_tokens = 99 tokens; the key
        # may use the burst plus the refill over `elapsed`.
        self.assertEqual(PeerSyncTest.metric(routers[0], "eta_peer_sync_connected"), 1)
        allowed_tokens = self.TPM + elapsed * self.TPM / 60.0
        self.assertLess(abs(admitted * 99 - allowed_tokens), 0.1 * allowed_tokens,
                        "admitted %d requests (%d refused) in %.1f s; the key allows %.0f tokens"
                        % (admitted, refused, elapsed, allowed_tokens))
        self.assertGreater(refused, 0)
        print("rate limit across 3 routers: admitted %d (%.0f tokens allowed), refused %d"
              % (admitted, allowed_tokens, refused))


class RateLimitOutageTest(unittest.TestCase):
    """Two routers, one key limited to 12 requests per minute (a burst of 12, one more every
    5 s). NATS stopped: router a admits only its share (12 / 2 routers last seen) and keeps what it
    admitted; NATS restarted: a tells b, whose bucket then holds what is left of the key's
    minute (b answers 429 sooner), and the two together admit the key's limit, not 1.5x or 2x."""

    RPM = 12

    def send(self, router, n):
        c = router.client()
        body = json.dumps({"model": MODEL, "prompt": "hi", "max_tokens": 1}).encode()
        admitted = refused = 0
        try:
            for _ in range(n):
                resp = c.request("POST", "/v1/completions", body,
                                 {"Authorization": "Bearer sk-one"})
                if resp.status == 200:
                    admitted += 1
                else:
                    self.assertEqual(resp.status, 429, resp.text())
                    refused += 1
        finally:
            c.close()
        return admitted, refused

    def test_charges_admitted_while_nats_is_down_reach_the_peer_afterwards(self):
        nats = NatsServer()
        self.addCleanup(lambda: nats.stop())
        sim = etatest.start_sim("--time-scale", "100", model=MODEL)
        self.addCleanup(sim.stop)
        cluster = CLUSTER + "out"
        cfg = os.path.join(os.environ.get("TMPDIR", "/tmp"), "peer-%s.yaml" % cluster)
        with open(cfg, "w") as f:
            f.write("peer_sync: {url: %s, cluster: %s}\n" % (nats.url, cluster))
            f.write("api_keys: [{key: sk-one, requests_per_minute: %d}]\n" % self.RPM)
        a, b = [RouterProcess(["--config", cfg, "--port", "0", "--admin-port", "0",
                               "--replica", sim.url]) for _ in range(2)]
        self.addCleanup(a.stop)
        self.addCleanup(b.stop)
        both = (a, b)
        self.assertTrue(etatest.wait_until(
            lambda: all(len(PeerSyncTest.peers(r)["peers"]) == 1 for r in both), timeout=10))
        nats.stop()
        self.assertTrue(etatest.wait_until(
            lambda: all(PeerSyncTest.metric(r, "eta_peer_sync_connected") == 0 for r in both),
            timeout=5))
        start = time.monotonic()
        # Cut off, a admits its share: each admission stands for both routers (costs 2 of 12).
        admitted_a, refused_a = self.send(a, 20)
        self.assertGreaterEqual(admitted_a, self.RPM // 2, (admitted_a, refused_a))
        self.assertLessEqual(admitted_a, self.RPM // 2 + 1, (admitted_a, refused_a))
        nats = NatsServer(nats.port)
        self.assertTrue(etatest.wait_until(
            lambda: all(PeerSyncTest.peers(r)["connected"] and
                        len(PeerSyncTest.peers(r)["peers"]) == 1 for r in both), timeout=10))
        # b consumes a's outage charges (once, whichever router reconnected first).
        self.assertTrue(etatest.wait_until(
            lambda: PeerSyncTest.peers(b)["stats"]["outage_charges_applied"] == 1, timeout=5),
            PeerSyncTest.peers(b))
        admitted_b, refused_b = self.send(b, 20)
        elapsed = time.monotonic() - start
        refill = elapsed * self.RPM / 60.0
        # Without the outage charges b would admit the whole burst (12): it admits what is left.
        left = self.RPM - admitted_a
        self.assertLessEqual(admitted_b, left + refill + 1,
                             (admitted_a, admitted_b, elapsed))
        self.assertGreaterEqual(admitted_b, left - 1, (admitted_a, admitted_b, elapsed))
        self.assertEqual(PeerSyncTest.metric(b, "eta_errors_total", reason="rate_limited"),
                         refused_b)
        # a got its share's stand-in charges back and pays for b's: little or nothing left.
        admitted_a2, _ = self.send(a, 10)
        total = admitted_a + admitted_b + admitted_a2
        allowed = self.RPM + (time.monotonic() - start) * self.RPM / 60.0
        self.assertLessEqual(total, allowed + 1, (admitted_a, admitted_b, admitted_a2))
        self.assertEqual(PeerSyncTest.peers(b)["stats"]["outage_charges_applied"], 1)
        self.assertIn("rate-limit charges of 1 key(s) admitted while NATS was unreachable",
                      "".join(a.stderr_lines))
        print("outage: a admitted %d of %d (its share), b then %d of %d (left: %d), a %d more; "
              "%d in %.1f s (%.1f allowed)" % (admitted_a, admitted_a + refused_a, admitted_b,
                                               admitted_b + refused_b, left, admitted_a2, total,
                                               time.monotonic() - start, allowed))


if __name__ == "__main__":
    unittest.main()
