"""Access control of `eta route`: API keys (from the YAML and from a file), per-key request and
token rate limits (429 + Retry-After with an OpenAI error body, nothing forwarded), keys never
logged, the admin listener's token (and the refusal to start off loopback without one), client
x-eta-* headers stripped, only the OpenAI routes reaching replicas, and TLS for clients with a
self-signed certificate made by the test."""

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import etatest
from test_hostile import StubReplica, assert_error
from test_route import RouterProcess

MODEL = "sim-model"
KEYS = {"limited": "sk-limited-5b1f0c", "tokens": "sk-tokens-9d2e77", "free": "sk-free-3a8c41",
        "admin": "adm-token-71c2e0"}


def completion(prompt="hello", max_tokens=4):
    return {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens}


def write(text, name="eta.yaml"):
    d = tempfile.mkdtemp(prefix="eta-access-")
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def bearer(key):
    return {"Authorization": "Bearer " + key}


class AccessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.replica = StubReplica()
        cls.addClassCleanup(cls.replica.stop)
        keys_file = write("# one key per line\n\n  %s  \n" % KEYS["free"], "keys.txt")
        cls.access_log = write("", "access.log")
        cfg = write("""
api_keys:
  - {key: %s, requests_per_minute: 2}
  - {key: %s, tokens_per_minute: 100}
api_keys_file: %s
rate_limit: {requests_per_minute: 600}
admin: {host: 127.0.0.1, port: 0, token: %s}
log_level: debug
access_log: %s
""" % (KEYS["limited"], KEYS["tokens"], keys_file, KEYS["admin"], cls.access_log))
        cls.router = RouterProcess(["--port", "0", "--config", cfg, "--policy", "round-robin",
                                    "--replica", cls.replica.url])
        cls.addClassCleanup(cls.router.stop)

    def client(self):
        c = etatest.Client(self.router.host, self.router.port)
        self.addCleanup(c.close)
        return c

    def post(self, key, body):
        return self.client().request("POST", "/v1/completions", body,
                                     headers=bearer(key) if key else {})

    def test_missing_and_wrong_key_get_401(self):
        before = len(self.replica.forwarded())
        r = self.post(None, completion())
        assert_error(self, r, 401, "UnauthorizedError")
        self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
        r = self.post("sk-not-a-key", completion())
        assert_error(self, r, 401, "UnauthorizedError")
        self.assertEqual(len(self.replica.forwarded()), before)

    def test_key_from_file_works(self):
        r = self.post(KEYS["free"], completion())
        self.assertEqual(r.status, 200, r.body)

    def test_request_rate_limit(self):
        statuses = []
        for i in range(2):
            r = self.post(KEYS["limited"], completion("r%d" % i))
            statuses.append(r.status)
        self.assertEqual(statuses, [200, 200])
        before = len(self.replica.forwarded())
        r = self.post(KEYS["limited"], completion("r3"))
        err = assert_error(self, r, 429, "TooManyRequestsError")
        self.assertIn("2 requests per minute", err["message"])
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assertLessEqual(int(r.headers["retry-after"]), 30)
        self.assertEqual(len(self.replica.forwarded()), before)  # refused: not forwarded
        # Another key is not affected.
        self.assertEqual(self.post(KEYS["free"], completion()).status, 200)
        m = self.client().metrics()
        self.assertGreaterEqual(m.get("eta_errors_total", reason="rate_limited"), 1)
        # The access log has the refusal, with its reason (lines go out within a second).
        rid = int(r.headers["x-eta-request-id"])

        def refused():
            with open(self.access_log) as f:
                for line in f:
                    rec = json.loads(line)
                    if rec["request_id"] == rid and rec["status"] == 429:
                        return rec
            return None
        rec = etatest.wait_until(refused, timeout=5)
        self.assertIsNotNone(rec)
        self.assertEqual(rec["error"], "rate_limited")

    def test_token_rate_limit(self):
        r = self.post(KEYS["tokens"], completion("t1", max_tokens=80))
        self.assertEqual(r.status, 200, r.body)
        before = len(self.replica.forwarded())
        r = self.post(KEYS["tokens"], completion("t2", max_tokens=80))
        err = assert_error(self, r, 429, "TooManyRequestsError")
        self.assertIn("100 tokens per minute", err["message"])
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assertEqual(len(self.replica.forwarded()), before)

    def test_keys_are_never_logged(self):
        self.post(KEYS["free"], completion())
        self.post("sk-wrong-key-0000", completion())
        self.client().request("GET", "/admin/replicas", headers=bearer("sk-admin-guess"))
        log = "".join(self.router.stderr_lines)
        self.assertIn("info", log)  # the log is there (debug level)...
        for secret in list(KEYS.values()) + ["sk-wrong-key-0000", "sk-admin-guess"]:
            self.assertNotIn(secret, log)  # ...without a key in it

    def test_admin_needs_the_token(self):
        admin = self.router.admin()
        self.addCleanup(admin.close)
        r = admin.request("GET", "/admin/replicas")
        assert_error(self, r, 401, "UnauthorizedError")
        r = admin.request("GET", "/admin/replicas", headers=bearer(KEYS["free"]))
        assert_error(self, r, 401, "UnauthorizedError")
        r = admin.request("POST", "/admin/replicas/drain", {"url": self.replica.url})
        assert_error(self, r, 401, "UnauthorizedError")
        r = admin.request("GET", "/admin/replicas", headers=bearer(KEYS["admin"]))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["replicas"][0]["url"], self.replica.url)
        # The API key is not an admin token and the admin token is not an API key.
        r = self.post(KEYS["admin"], completion())
        assert_error(self, r, 401, "UnauthorizedError")

    def test_dashboard_login_sets_a_cookie_for_the_page_and_its_stream(self):
        # A browser cannot send "Authorization: Bearer" with a page load or an EventSource:
        # /dashboard?token=T sets an HttpOnly cookie and redirects to /dashboard.
        admin = self.router.admin()
        self.addCleanup(admin.close)
        assert_error(self, admin.request("GET", "/dashboard"), 401, "UnauthorizedError")
        assert_error(self, admin.request("GET", "/dashboard?token=sk-admin-guess"), 401,
                     "UnauthorizedError")
        r = admin.request("GET", "/dashboard?token=" + KEYS["admin"])
        self.assertEqual(r.status, 303, r.body)
        self.assertEqual(r.headers["location"], "/dashboard")
        cookie = r.headers["set-cookie"]
        for attribute in ("HttpOnly", "SameSite=Strict", "Path=/"):
            self.assertIn(attribute, cookie)
        jar = {"Cookie": "theme=dark; " + cookie.split(";")[0]}
        r = admin.request("GET", "/dashboard", headers=jar)
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(b"<html", r.body.lower())
        r = admin.request("GET", "/admin/replicas", headers=jar)
        self.assertEqual(r.status, 200, r.body)
        assert_error(self, admin.request("GET", "/admin/replicas",
                                         headers={"Cookie": "eta_admin_token=sk-admin-guess"}),
                     401, "UnauthorizedError")
        # The query token only logs in on /dashboard; it opens nothing else.
        assert_error(self, admin.request("GET", "/admin/replicas?token=" + KEYS["admin"]), 401,
                     "UnauthorizedError")

    def test_client_x_eta_headers_are_stripped(self):
        before = len(self.replica.forwarded())
        headers = bearer(KEYS["free"])
        headers.update({"x-eta-replica": "http://evil:1", "X-ETA-Request-Id": "999999",
                        "x-eta-predicted-ttft-ms": "0", "x-eta-anything": "1",
                        "x-session-id": "s1"})
        r = self.client().request("POST", "/v1/completions", completion(), headers=headers)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["x-eta-replica"], self.replica.url)
        self.assertNotEqual(r.headers["x-eta-request-id"], "999999")
        log = self.replica.forwarded()
        self.assertEqual(len(log), before + 1)
        sent = log[-1][2]
        self.assertEqual([h for h in sent if h.startswith("x-eta-")], [], sent)
        self.assertEqual(sent.get("x-session-id"), "s1")  # not ours: forwarded

    def test_only_openai_routes_reach_replicas(self):
        c = self.client()
        before = len(self.replica.forwarded())
        # The router's own /metrics and /health: none of the replica's.
        r = c.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertIn(b"eta_requests_total", r.body)
        self.assertNotIn(b"vllm:", r.body)
        r = c.request("GET", "/health")
        self.assertEqual((r.status, r.body), (200, b""))
        # The router's own /version (issue 11: vLLM's routes are carried, its admin ones not).
        r = c.request("GET", "/version")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["server"], "eta route")
        # Not carried: vLLM's 404 body (type "Not Found", FastAPI's phrase).
        for method, path in [("GET", "/admin/replicas"), ("POST", "/admin/replicas/drain"),
                             ("GET", "/load"),
                             ("GET", "/v1/models/../../admin/replicas"), ("POST", "/reset_prefix_cache"),
                             ("POST", "/sleep")]:
            r = c.request(method, path, json.dumps({"url": self.replica.url}),
                          headers=bearer(KEYS["free"]))
            assert_error(self, r, 404, "Not Found")
        self.assertEqual(len(self.replica.forwarded()), before)
        # vLLM's own routes reach the replica (test_dropin checks each one's answer).
        for path in ("/tokenize", "/detokenize", "/v1/embeddings"):
            r = c.request("POST", path, json.dumps({"model": MODEL, "prompt": "x", "input": "x"}),
                          headers=bearer(KEYS["free"]))
            self.assertEqual(r.headers.get("x-eta-replica"), self.replica.url, path)
        self.assertEqual([p for _, p, _ in self.replica.forwarded()[before:]],
                         ["/tokenize", "/detokenize", "/v1/embeddings"])


class AdminBindTest(unittest.TestCase):
    def test_off_loopback_without_token_refuses_to_start(self):
        code, out, err = etatest.run_eta(["route", "--port", "0", "--admin-host", "0.0.0.0",
                                          "--admin-port", "0", "--replica", "http://127.0.0.1:9"])
        self.assertEqual(code, 2, err)
        self.assertEqual(out, "")
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn("admin.token", lines[0])

    def test_off_loopback_with_token_starts_and_checks_it(self):
        replica = StubReplica()
        self.addCleanup(replica.stop)
        cfg = write("admin: {host: 0.0.0.0, port: 0, token: %s}\n" % KEYS["admin"])
        router = RouterProcess(["--port", "0", "--config", cfg, "--replica", replica.url])
        self.addCleanup(router.stop)
        admin = etatest.Client("127.0.0.1", router.admin_port)
        self.addCleanup(admin.close)
        assert_error(self, admin.request("GET", "/admin/decisions"), 401, "UnauthorizedError")
        r = admin.request("GET", "/admin/decisions", headers=bearer(KEYS["admin"]))
        self.assertEqual(r.status, 200, r.body)

    def test_bad_keys_file_is_one_line_exit_2(self):
        code, _, err = etatest.run_eta(["route", "--port", "0", "--config",
                                        write("api_keys_file: /nonexistent/keys.txt\n"),
                                        "--replica", "http://127.0.0.1:9"])
        self.assertEqual(code, 2, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("api_keys_file", err)


class TlsTest(unittest.TestCase):
    """TLS for clients with a self-signed certificate made here with the openssl CLI."""

    @classmethod
    def setUpClass(cls):
        d = tempfile.mkdtemp(prefix="eta-tls-")
        cls.cert = os.path.join(d, "cert.pem")
        cls.key = os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-keyout", cls.key, "-out", cls.cert, "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        cls.replica = StubReplica()
        cls.addClassCleanup(cls.replica.stop)
        cfg = write("tls: {cert_file: %s, key_file: %s}\nclient: {request_timeout_s: 1}\n"
                    % (cls.cert, cls.key))
        cls.proc = subprocess.Popen(
            [etatest.eta_bin(), "route", "--port", "0", "--admin-port", "-1", "--config", cfg,
             "--replica", cls.replica.url],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        cls.addClassCleanup(cls._stop)
        line = cls.proc.stdout.readline()
        m = re.fullmatch(r"listening on https://127\.0\.0\.1:(\d+)", line.strip())
        if not m:
            raise AssertionError("no https listening line: %r" % line)
        cls.port = int(m.group(1))

    @classmethod
    def _stop(cls):
        cls.proc.terminate()
        try:
            cls.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            cls.proc.wait()
        cls.proc.stdout.close()

    def https(self):
        ctx = ssl.create_default_context(cafile=self.cert)  # verifies the certificate and IP
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        self.addCleanup(conn.close)
        return conn

    def test_requests_and_streams_over_tls(self):
        conn = self.https()
        for _ in range(2):  # keep-alive on one TLS connection
            conn.request("POST", "/v1/completions", json.dumps(completion()),
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read()
            self.assertEqual(r.status, 200, body)
            self.assertEqual(r.getheader("x-eta-replica"), self.replica.url)
            self.assertEqual(json.loads(body)["choices"][0]["text"], " ok")
        conn.request("POST", "/v1/completions", json.dumps(dict(completion(), stream=True)),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.read().rstrip().endswith(b"data: [DONE]"))
        # Errors come back over TLS too.
        conn.request("POST", "/v1/completions", "{", {"Content-Type": "application/json"})
        r = conn.getresponse()
        self.assertEqual(r.status, 400)
        self.assertEqual(json.loads(r.read())["error"]["code"], 400)

    def test_sigterm_lets_a_tls_stream_finish(self):
        # Graceful shutdown with the TLS front: the stream in flight ends whole over TLS (its last
        # bytes still pass the front after the router has nothing left in flight), the TLS port
        # stops accepting, and the router exits 0.
        sim = etatest.EtaProcess(["vllm-sim", "--port", "0", "--model", MODEL,
                                  "--time-scale", "1"])
        self.addCleanup(sim.stop)
        cfg = write("tls: {cert_file: %s, key_file: %s}\nshutdown_grace_s: 20\n"
                    % (self.cert, self.key))
        proc = subprocess.Popen(
            [etatest.eta_bin(), "route", "--port", "0", "--admin-port", "-1", "--config", cfg,
             "--replica", "http://%s:%d" % (sim.host, sim.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

        def stop():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
        self.addCleanup(stop)
        port = int(re.fullmatch(r"listening on https://127\.0\.0\.1:(\d+)",
                                proc.stdout.readline().strip()).group(1))
        ctx = ssl.create_default_context(cafile=self.cert)
        conns = []
        for stream in (True, False):
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
            self.addCleanup(conn.close)
            conn.request("POST", "/v1/completions", json.dumps(dict(
                completion(max_tokens=200), stream=stream, ignore_eos=True)),
                {"Content-Type": "application/json"})
            conns.append(conn)
        r = conns[0].getresponse()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.readline().startswith(b"data: "))  # the stream has begun
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        self.assertTrue(r.read().rstrip().endswith(b"data: [DONE]"))
        r2 = conns[1].getresponse()
        body = r2.read()
        self.assertEqual(r2.status, 200, body)
        self.assertEqual(json.loads(body)["usage"]["completion_tokens"], 200)
        self.assertEqual(proc.wait(20), 0)

    def test_plain_http_on_the_tls_port_gets_nothing(self):
        before = len(self.replica.forwarded())
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            try:
                while True:
                    c = s.recv(4096)
                    if not c:
                        break
                    data += c
            except (ConnectionResetError, socket.timeout):
                pass
        self.assertFalse(data.startswith(b"HTTP/"), data)
        self.assertEqual(len(self.replica.forwarded()), before)

    def test_silent_client_is_dropped_after_the_handshake_timeout(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            t0 = time.monotonic()
            try:
                self.assertEqual(s.recv(100), b"")
            except ConnectionResetError:
                pass
            self.assertLess(time.monotonic() - t0, 1 + 3)

    def test_untrusted_certificate_is_refused_by_the_client(self):
        ctx = ssl.create_default_context()  # system CAs only: the self-signed cert fails
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        self.addCleanup(conn.close)
        with self.assertRaises(ssl.SSLError):
            conn.request("GET", "/health")

    def test_bad_tls_config_is_one_line_exit_2(self):
        for text, needle in [("tls: {cert_file: %s}\n" % self.cert, "both"),
                             ("tls: {cert_file: /nonexistent.pem, key_file: %s}\n" % self.key,
                              "/nonexistent.pem"),
                             ("tls: {cert_file: %s, key_file: %s}\n" % (self.key, self.key),
                              "TLS certificate")]:
            code, _, err = etatest.run_eta(["route", "--port", "0", "--config", write(text),
                                            "--replica", "http://127.0.0.1:9"])
            self.assertEqual(code, 2, err)
            # One error line (a certificate that does not load is found when listening, after
            # the replicas' info lines).
            errors = [l for l in err.splitlines() if l.startswith("eta route:")]
            self.assertEqual(len(errors), 1, err)
            self.assertIn(needle, errors[0])


if __name__ == "__main__":
    unittest.main()
