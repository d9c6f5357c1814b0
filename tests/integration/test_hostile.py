"""Hostile and malformed input against `eta route`.

Client side: malformed JSON, wrong types, missing fields, invalid UTF-8, bodies over the limit
(413), oversized headers (431), slow clients (408), request smuggling (Content-Length with
Transfer-Encoding, duplicate Content-Length, bad chunk sizes; obs-fold is unfolded), unknown methods and
paths: each gets the right status and an OpenAI-style error body, and nothing reaches a replica
(a counting replica's request log, and a real `eta vllm-sim`'s `vllm:request_success_total`,
do not move; a valid request moves them by exactly one).

Replica side: a misbehaving upstream (truncated SSE, invalid chunk framing, a response that never
ends, a body that never stops, huge or malformed /metrics): the client gets a clear error within
the configured time, the router's memory stays bounded, and the healthy replica keeps serving.
"""

import json
import os
import socket
import socketserver
import tempfile
import threading
import time
import unittest

import etatest

MODEL = "sim-model"
BODY_LIMIT = 65536
HEADER_LIMIT = 8192
REQUEST_TIMEOUT_S = 1.0
WRITE_TIMEOUT_S = 1.0


def completion(prompt="hello", **kw):
    body = {"model": MODEL, "prompt": prompt, "max_tokens": 4}
    body.update(kw)
    return body


def rss_kib(pid):
    kb = etatest.etalib.rss_kb(pid)
    if kb is None:
        raise AssertionError("no VmRSS for %d" % pid)
    return kb


# ---------------------------------------------------------------------------------------------
# Raw HTTP on a socket


class RawResponse:
    def __init__(self, status, headers, body, closed):
        self.status = status
        self.headers = headers
        self.body = body
        self.closed = closed  # the server closed the connection after the response

    def json(self):
        return json.loads(self.body)


def _read_response(sock, timeout):
    """Reads one response (Content-Length or chunked or until close). Returns RawResponse or
    None if the server closed without answering."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            if not data:
                return None
            raise AssertionError("incomplete response head: %r" % data)
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    closed = False

    def more():
        nonlocal closed
        try:
            c = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            c = b""
        if not c:
            closed = True
        return c

    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            c = more()
            if not c:
                break
            rest += c
        body = rest[:n]
    elif headers.get("transfer-encoding") == "chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            c = more()
            if not c:
                break
            rest += c
        body = rest
    else:
        while True:
            c = more()
            if not c:
                break
            rest += c
        body = rest
    if not closed and headers.get("connection", "").lower() == "close":
        # The server said it closes: confirm.
        closed = more() == b""
    return RawResponse(status, headers, body, closed)


def raw_request(host, port, data, timeout=5.0, pause_after=None):
    """Sends `data` (bytes, or a list of byte pieces sent with pause_after seconds between
    them) on a fresh connection and reads one response."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        pieces = data if isinstance(data, list) else [data]
        for i, p in enumerate(pieces):
            try:
                s.sendall(p)
            except (BrokenPipeError, ConnectionResetError):
                break
            if pause_after and i + 1 < len(pieces):
                time.sleep(pause_after)
        return _read_response(s, timeout)


def post_bytes(path, body, extra_headers=b"", content_type=b"application/json"):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: " + content_type +
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + extra_headers +
            b"\r\n" + body)


# ---------------------------------------------------------------------------------------------
# Upstreams written here: a counting replica, and misbehaving ones.


class StubReplica:
    """A replica on a raw socket server: answers /health, /v1/models and /metrics like vLLM,
    logs every other request (method, path) and answers generations according to `mode`:

      ok           a valid completion (JSON, or SSE when "stream": true)
      truncated    SSE head, one event, then the connection closes (no terminating chunk)
      bad_chunk    SSE head, then a chunk whose size line is not hex
      never_ends   SSE head, one event, then nothing (the connection stays open)
      endless      SSE head, then events as fast as the socket takes them, forever
      slow_head    nothing at all (the response head never comes)
    metrics_mode: ok | huge (8 MiB of samples) | garbage (binary noise)
    api_key: as vLLM's --api-key, every /v1 path (GET /v1/models included) without
    "Authorization: Bearer <api_key>" gets vLLM's 401 ({"error": "Unauthorized"}); the
    Authorization header of each /v1/models poll is kept in `polls`.
    """

    def __init__(self, mode="ok", metrics_mode="ok", api_key=None):
        self.mode = mode
        self.metrics_mode = metrics_mode
        self.api_key = api_key
        self.polls = []  # the Authorization header of every GET /v1/models ("" if none)
        self.log = []  # (method, path) of every non-probe request
        self.lock = threading.Lock()
        self.disconnects = 0  # generation connections the router closed before we finished
        self.stop_event = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                outer._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def forwarded(self):
        with self.lock:
            return list(self.log)

    def stop(self):
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()

    # -- one connection: keep-alive requests with Content-Length bodies --
    def _serve(self, sock):
        sock.settimeout(30)
        buf = b""
        try:
            while not self.stop_event.is_set():
                while b"\r\n\r\n" not in buf:
                    c = sock.recv(65536)
                    if not c:
                        return
                    buf += c
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length", "0"))
                while len(buf) < n:
                    c = sock.recv(65536)
                    if not c:
                        return
                    buf += c
                body, buf = buf[:n], buf[n:]
                if not self._answer(sock, method, path, headers, body):
                    return
        except (OSError, ValueError):
            return

    @staticmethod
    def _send(sock, status, body, ctype="application/json"):
        if isinstance(body, str):
            body = body.encode()
        sock.sendall(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                     % (status, ctype.encode(), len(body)) + body)

    def _metrics(self):
        base = ("vllm:num_requests_running{engine=\"0\"} 0\n"
                "vllm:num_requests_waiting{engine=\"0\"} 0\n")
        if self.metrics_mode == "huge":
            line = "vllm:filler_total{engine=\"0\",x=\"%s\"} 1\n" % ("y" * 100)
            return base + line * (8 * 1024 * 1024 // len(line))
        if self.metrics_mode == "garbage":
            return bytes(range(256)) * 64 + b"{{{ \"\n vllm:num_requests_running{ 1e9999\n"
        return base

    def _answer(self, sock, method, path, headers, body):
        if method == "GET" and path == "/health":
            self._send(sock, 200, b"")
            return True
        if method == "GET" and path == "/v1/models":
            with self.lock:
                self.polls.append(headers.get("authorization", ""))
        if self.api_key and path.startswith("/v1") and \
                headers.get("authorization") != "Bearer " + self.api_key:
            if path != "/v1/models":
                with self.lock:
                    self.log.append((method, path, dict(headers)))
            self._send(sock, 401, json.dumps({"error": "Unauthorized"}))
            return True
        if method == "GET" and path == "/v1/models":
            self._send(sock, 200, json.dumps({"object": "list", "data": [
                {"id": MODEL, "object": "model", "owned_by": "vllm"}]}))
            return True
        if method == "GET" and path == "/metrics":
            self._send(sock, 200, self._metrics(), "text/plain")
            return True
        with self.lock:
            self.log.append((method, path, dict(headers)))
        try:
            req = json.loads(body or b"{}")
        except (ValueError, RecursionError):
            req = {}
        if not isinstance(req, dict):
            req = {}
        stream = bool(req.get("stream"))
        if self.mode == "ok" and not stream:
            self._send(sock, 200, json.dumps({
                "id": "cmpl-1", "object": "text_completion", "created": 0, "model": MODEL,
                "choices": [{"index": 0, "text": " ok", "logprobs": None,
                             "finish_reason": "length", "stop_reason": None}],
                "usage": {"prompt_tokens": 1, "total_tokens": 2, "completion_tokens": 1}}))
            return True
        if self.mode == "slow_head":
            self.stop_event.wait(30)
            return False
        event = (b"data: " + json.dumps({
            "id": "cmpl-1", "object": "text_completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "text": " ok", "logprobs": None, "finish_reason": None,
                         "stop_reason": None}]}).encode() + b"\n\n")

        def chunk(b):
            return b"%x\r\n" % len(b) + b + b"\r\n"

        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        if self.mode == "ok":
            sock.sendall(chunk(event) + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
            return True
        sock.sendall(chunk(event))
        if self.mode == "truncated":
            sock.sendall(chunk(event[:20]))
            return False  # closes: no terminating chunk
        if self.mode == "bad_chunk":
            sock.sendall(b"zz\r\n" + event + b"\r\n")
            self.stop_event.wait(5)
            return False
        if self.mode == "never_ends":
            # Nothing more; detect the router hanging up.
            sock.settimeout(None)
            try:
                while sock.recv(4096):
                    pass
            except OSError:
                pass
            with self.lock:
                self.disconnects += 1
            return False
        if self.mode == "endless":
            big = chunk(event * 64)
            try:
                while not self.stop_event.is_set():
                    sock.sendall(big)
            except OSError:
                with self.lock:
                    self.disconnects += 1
            return False
        return False


# ---------------------------------------------------------------------------------------------


def write_config(test_or_cls, text):
    d = tempfile.mkdtemp(prefix="eta-hostile-")
    path = os.path.join(d, "eta.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


CLIENT_LIMITS = """
max_body_bytes: %d
client: {max_header_bytes: %d, request_timeout_s: %s, idle_timeout_s: 5, write_timeout_s: %s,
         max_buffered_bytes: 1048576}
""" % (BODY_LIMIT, HEADER_LIMIT, REQUEST_TIMEOUT_S, WRITE_TIMEOUT_S)


def start_router(test_or_cls, replicas, extra_yaml="", *args):
    cfg = write_config(test_or_cls, CLIENT_LIMITS + extra_yaml)
    argv = ["route", "--port", "0", "--admin-port", "-1", "--policy", "round-robin",
            "--config", cfg, "--scrape-interval-s", "0.05"]
    for r in replicas:
        argv += ["--replica", r]
    argv += list(args)
    router = etatest.EtaProcess(argv)
    if isinstance(test_or_cls, type):
        test_or_cls.addClassCleanup(router.stop)
    else:
        test_or_cls.addCleanup(router.stop)
    return router


def assert_error(test, r, status, err_type=None):
    test.assertIsNotNone(r, "the server closed without answering (expected %d)" % status)
    test.assertEqual(r.status, status, r.body)
    body = r.json()
    test.assertEqual(set(body), {"error"}, body)
    test.assertEqual(set(body["error"]), {"message", "type", "param", "code"}, body)
    test.assertEqual(body["error"]["code"], status, body)
    test.assertTrue(body["error"]["message"], body)
    if err_type:
        test.assertEqual(body["error"]["type"], err_type, body)
    return body["error"]


def valid_post():
    return post_bytes("/v1/completions", json.dumps(completion()).encode())


# Bodies the router cannot read (or that vLLM refuses): since issue 11 the router refuses only
# what it cannot route, so these reach the one replica (a router serving one model routes a body
# without a readable model there) and the replica gives vLLM's answer. What vLLM accepts (a
# missing model, "16" for max_tokens, "yes" for stream) was here too and is accepted now
# (test_dropin). Each: (name, request bytes, the status of vLLM's (the simulator's) answer).
def body_inputs():
    ok = json.dumps(completion()).encode()
    cases = [
        ("malformed JSON", post_bytes("/v1/completions", b'{"model": "sim-model", "prompt": '),
         400),
        ("trailing garbage", post_bytes("/v1/completions", ok + b"}"), 400),
        ("empty body", post_bytes("/v1/completions", b""), 400),
        ("body is an array", post_bytes("/v1/completions", b"[]"), 400),
        ("body is null", post_bytes("/v1/completions", b"null"), 400),
        ("model is a number", post_bytes("/v1/completions",
                                         b'{"model": 5, "prompt": "x"}'), 400),
        # vLLM's lax types accept "16" and "yes"; these strings it refuses (iface).
        ("max_tokens is a string", post_bytes("/v1/completions", json.dumps(
            completion(max_tokens="many")).encode()), 400),
        ("stream is a string", post_bytes("/v1/completions", json.dumps(
            completion(stream="maybe")).encode()), 400),
        ("messages not a list", post_bytes("/v1/chat/completions",
                                           b'{"model": "sim-model", "messages": "hi"}'), 400),
        # `model` is optional in vLLM 2026 (iface); a list is refused.
        ("model is a list", post_bytes("/v1/completions", b'{"model": ["x"], "prompt": "x"}'), 400),
        ("missing prompt", post_bytes("/v1/completions", b'{"model": "sim-model"}'), 400),
        ("deep nesting", post_bytes("/v1/completions", b'{"model": "sim-model", "prompt": ' +
                                    b"[" * 20000 + b"]" * 20000 + b"}"), 400),
        ("invalid UTF-8 byte", post_bytes("/v1/completions",
                                          b'{"model": "sim-model", "prompt": "a\xff\xfeb"}'), 400),
        ("overlong UTF-8", post_bytes("/v1/completions",
                                      b'{"model": "sim-model", "prompt": "\xc0\xaf"}'), 400),
        ("UTF-8 surrogate", post_bytes("/v1/completions",
                                       b'{"model": "sim-model", "prompt": "\xed\xa0\x80"}'), 400),
        ("invalid UTF-8 in a key", post_bytes(
            "/v1/completions", b'{"model": "sim-model", "prompt": "x", "\xff": 1}'), 400),
        ("lone escaped surrogate", post_bytes(
            "/v1/completions", b'{"model": "sim-model", "prompt": "\\ud800"}'), 400),
        ("NUL in JSON", post_bytes("/v1/completions",
                                   b'{"model": "sim-model", "prompt": "a\x00b"}'), 400),
    ]
    return cases


# Each: (name, request bytes, expected status): limits, framing and paths, answered by the router
# itself without reaching a replica.
def hostile_inputs():
    big = json.dumps(completion("x" * (BODY_LIMIT + 10))).encode()
    ok = json.dumps(completion()).encode()
    cases = [
        ("body over the limit", post_bytes("/v1/completions", big), 413),
        ("Content-Length over the limit, no body", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: 99999999999\r\n\r\n", 413),
        ("chunked body over the limit", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(
             b"4000\r\n" + b"a" * 0x4000 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n", 413),
        ("header over the limit", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " +
         b"a" * (HEADER_LIMIT + 100) + b"\r\n\r\n", 431),
        ("many headers over the limit", b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" +
         b"".join(b"X-H%d: v\r\n" % i for i in range(2000)) + b"\r\n", 431),
        ("Content-Length and Transfer-Encoding", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % (len(ok) + 9) +
         b"%x\r\n" % len(ok) + ok + b"\r\n0\r\n\r\n", 400),
        ("Transfer-Encoding then Content-Length", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" +
         b"%x\r\n" % len(ok) + ok + b"\r\n0\r\n\r\n", 400),
        ("conflicting Content-Length", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: %d\r\nContent-Length: 5\r\n\r\n" % len(ok) + ok, 400),
        ("duplicate Content-Length", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(ok), len(ok)) + ok, 400),
        ("Content-Length list", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: %d, %d\r\n\r\n" % (len(ok), len(ok)) + ok, 400),
        ("negative Content-Length", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: -1\r\n\r\n" + ok, 400),
        ("Transfer-Encoding not chunked", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Transfer-Encoding: gzip\r\n\r\n" + ok, 400),
        ("chunked not last", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Transfer-Encoding: chunked, identity\r\n\r\n" + b"%x\r\n" % len(ok) + ok +
         b"\r\n0\r\n\r\n", 400),
        ("bad chunk size", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + ok + b"\r\n0\r\n\r\n", 400),
        ("chunk size overflow", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\n" + ok + b"\r\n0\r\n\r\n",
         400),
        ("space before colon", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length : %d\r\n\r\n" % len(ok) + ok, 400),
        ("bare CR in a header", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400),
        ("NUL in a header", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
        ("not HTTP (TLS hello)", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
         400),
        ("bad version", b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400),
        ("unknown method", b"BREW /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
         % len(ok) + ok, 405),
        ("GET a POST route", b"GET /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        ("DELETE a POST route", b"DELETE /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        ("unknown path", post_bytes("/v1/nothing", ok), 404),
        ("a vLLM path the router does not carry", post_bytes("/invocations", ok), 404),
        ("admin path on the client port", b"GET /admin/replicas HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        ("path traversal", post_bytes("/v1/../v1/completions", ok), 404),
        ("absolute-form target", post_bytes("http://evil.example/v1/completions", ok), 404),
        ("CONNECT", b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n", 404),
    ]
    return cases


class HostileClientTest(unittest.TestCase):
    """A router in front of a counting stub replica."""

    @classmethod
    def setUpClass(cls):
        cls.replica = StubReplica()
        cls.addClassCleanup(cls.replica.stop)
        cls.router = start_router(cls, [cls.replica.url])

    def raw(self, data, **kw):
        return raw_request(self.router.host, self.router.port, data, **kw)

    def test_control_valid_request_is_forwarded_once(self):
        before = len(self.replica.forwarded())
        r = self.raw(valid_post())
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(len(self.replica.forwarded()), before + 1)

    def test_each_hostile_input(self):
        for name, data, status in hostile_inputs():
            with self.subTest(name):
                before = len(self.replica.forwarded())
                r = self.raw(data)
                assert_error(self, r, status)
                self.assertEqual(len(self.replica.forwarded()), before,
                                 "%s reached the replica" % name)
        # Still serving.
        r = self.raw(valid_post())
        self.assertEqual(r.status, 200)

    def test_unreadable_bodies_reach_the_replica(self):
        # The rule of issue 11: what the router cannot read goes to the replica, which answers.
        for name, data, _ in body_inputs():
            with self.subTest(name):
                before = len(self.replica.forwarded())
                r = self.raw(data)
                self.assertIsNotNone(r, name)
                self.assertEqual(len(self.replica.forwarded()), before + 1,
                                 "%s did not reach the replica" % name)

    def test_framing_errors_close_the_connection(self):
        # A request smuggled behind a bad one is never read: the connection closes after the 400.
        ok = json.dumps(completion()).encode()
        smuggled = post_bytes("/v1/completions", ok)
        data = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled)
        before = len(self.replica.forwarded())
        r = self.raw(data)
        assert_error(self, r, 400)
        self.assertTrue(r.closed)
        time.sleep(0.2)
        self.assertEqual(len(self.replica.forwarded()), before)

    def test_obs_fold_is_unfolded_not_smuggled(self):
        # RFC 9112 5.2: a server either rejects obs-fold with 400 or replaces it with spaces.
        # Beast replaces it; what is forwarded is one header line, so a folded line cannot inject
        # a header upstream.
        ok = json.dumps(completion()).encode()
        data = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                b"X-Folded: a\r\n Transfer-Encoding: chunked\r\n\r\n" % len(ok) + ok)
        before = len(self.replica.forwarded())
        r = self.raw(data)
        self.assertEqual(r.status, 200, r.body)
        log = self.replica.forwarded()
        self.assertEqual(len(log), before + 1)
        headers = log[-1][2]
        self.assertEqual(headers.get("x-folded"), "a Transfer-Encoding: chunked")
        self.assertNotIn("transfer-encoding", headers)

    def test_slow_header_trickle_gets_408(self):
        head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
        pieces = [head[i:i + 1] for i in range(len(head))]
        before = len(self.replica.forwarded())
        t0 = time.monotonic()
        r = self.raw(pieces, pause_after=0.1, timeout=10)
        elapsed = time.monotonic() - t0
        assert_error(self, r, 408)
        self.assertTrue(r.closed)
        # Cut off at the request timeout, not after the whole trickle (~9 s).
        self.assertLess(elapsed, REQUEST_TIMEOUT_S + 3.0)
        self.assertEqual(len(self.replica.forwarded()), before)

    def test_slow_body_gets_408(self):
        ok = json.dumps(completion()).encode()
        data = post_bytes("/v1/completions", ok)
        before = len(self.replica.forwarded())
        with socket.create_connection((self.router.host, self.router.port), timeout=10) as s:
            s.sendall(data[:-10])  # the body never completes
            t0 = time.monotonic()
            r = _read_response(s, 10)
            elapsed = time.monotonic() - t0
        assert_error(self, r, 408)
        self.assertLess(elapsed, REQUEST_TIMEOUT_S + 3.0)
        self.assertEqual(len(self.replica.forwarded()), before)

    def test_idle_connection_is_closed_without_answer(self):
        with socket.create_connection((self.router.host, self.router.port), timeout=15) as s:
            t0 = time.monotonic()
            self.assertEqual(s.recv(100), b"")  # closed by the server, nothing sent
            self.assertLess(time.monotonic() - t0, 5 + 3.0)

    def test_many_slow_clients_do_not_block_others(self):
        socks = []
        try:
            for _ in range(50):
                s = socket.create_connection((self.router.host, self.router.port), timeout=10)
                s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
                socks.append(s)
            t0 = time.monotonic()
            r = self.raw(valid_post())
            self.assertEqual(r.status, 200)
            self.assertLess(time.monotonic() - t0, 1.0)
            # All of them are answered 408 and closed after the request timeout.
            for s in socks:
                r = _read_response(s, 10)
                assert_error(self, r, 408)
        finally:
            for s in socks:
                s.close()


class HostileAgainstSimTest(unittest.TestCase):
    """The same battery against a real vllm-sim: its request counter does not move."""

    def test_sim_counters_do_not_move(self):
        sim = etatest.start_sim("--time-scale", "50")
        self.addCleanup(sim.stop)
        router = start_router(self, [sim.url])
        sc = sim.client()
        self.addCleanup(sc.close)

        def served():
            m = sc.metrics()
            return (sum(v for _, v in m.find("vllm:request_success_total")),
                    m.get("vllm:prompt_tokens_total"))

        before = served()
        for name, data, status in hostile_inputs():
            r = raw_request(router.host, router.port, data)
            assert_error(self, r, status)
        # The bodies vLLM refuses reach the simulator, which refuses them (nothing is served).
        for name, data, status in body_inputs():
            with self.subTest(name):
                r = raw_request(router.host, router.port, data)
                assert_error(self, r, status)
                self.assertTrue(r.headers.get("x-eta-replica"), name)
        self.assertEqual(served(), before)
        r = raw_request(router.host, router.port, valid_post())
        self.assertEqual(r.status, 200, r.body)
        after = served()
        self.assertEqual(after[0], before[0] + 1)
        self.assertGreater(after[1], before[1])


class SlowReaderTest(unittest.TestCase):
    """A client that never reads its (endless) stream: dropped after the write timeout, the
    upstream request is cancelled, and the router's memory stays bounded."""

    def test_client_that_never_reads(self):
        endless = StubReplica(mode="endless")
        self.addCleanup(endless.stop)
        router = start_router(self, [endless.url])
        rss0 = rss_kib(router.proc.pid)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((router.host, router.port))
            s.sendall(post_bytes("/v1/completions",
                                 json.dumps(completion(stream=True)).encode()))
            # Never read. The router gives up on us and on the upstream.
            self.assertTrue(etatest.wait_until(lambda: endless.disconnects >= 1, timeout=15),
                            "the endless upstream was never cancelled")
            peak = rss_kib(router.proc.pid)
        # Bounded: the buffer limit is 1 MiB; allow generous slack for the allocator.
        self.assertLess(peak - rss0, 48 * 1024, (rss0, peak))
        self.assertTrue(router.alive())
        m = etatest.Client(router.host, router.port).metrics()
        self.assertGreaterEqual(m.get("eta_errors_total", reason="client_disconnect"), 1)


class HostileReplicaTest(unittest.TestCase):
    """A misbehaving replica next to a healthy one (round-robin)."""

    def check(self, mode, expect, metrics_mode="ok", yaml=""):
        bad = StubReplica(mode=mode, metrics_mode=metrics_mode)
        self.addCleanup(bad.stop)
        good = StubReplica()
        self.addCleanup(good.stop)
        router = start_router(self, [bad.url, good.url], yaml)
        c = etatest.Client(router.host, router.port, timeout=20)
        self.addCleanup(c.close)
        results = []
        t0 = time.monotonic()
        for i in range(4):
            s = c.stream("/v1/completions", completion("p%d" % i, stream=True))
            try:
                events = list(s)
                results.append((s.headers.get("x-eta-replica"), s.status, events))
            except Exception as e:  # noqa: BLE001 - an incomplete stream is an expected outcome
                results.append((s.headers.get("x-eta-replica"), s.status, e))
            finally:
                s.close()
        elapsed = time.monotonic() - t0
        good_results = [r for r in results if r[0] == good.url]
        bad_results = [r for r in results if r[0] == bad.url]
        self.assertTrue(good_results, results)
        for _, status, events in good_results:
            self.assertEqual(status, 200)
            self.assertTrue(events[-1].done)
        expect(self, bad_results)
        # The healthy replica is still served afterwards, and the router is alive.
        r = c.post("/v1/completions", completion("after"))
        self.assertEqual(r.status, 200)
        self.assertTrue(router.alive())
        return router, elapsed

    @staticmethod
    def _ends_with_error_event(test, bad_results, code=502):
        test.assertTrue(bad_results)
        for _, status, events in bad_results:
            test.assertEqual(status, 200)
            test.assertIsInstance(events, list, events)
            test.assertTrue(events[-1].done, events)
            err = events[-2].json()["error"]
            test.assertEqual(err["code"], code, err)

    def test_truncated_sse(self):
        self.check("truncated", self._ends_with_error_event)

    def test_invalid_chunk_framing(self):
        self.check("bad_chunk", self._ends_with_error_event)

    def test_response_that_never_ends(self):
        # timeouts.idle_s bounds the gap between upstream bytes; a stream it ends gets 504.
        _, elapsed = self.check("never_ends",
                                lambda t, bad: self._ends_with_error_event(t, bad, code=504),
                                yaml="timeouts: {idle_s: 1}\n")
        self.assertLess(elapsed, 15)

    def test_head_that_never_comes_fails_over(self):
        def expect(test, bad_results):
            test.assertEqual(bad_results, [])  # retried on the good replica before any byte

        self.check("slow_head", expect, yaml="timeouts: {first_byte_s: 0.5}\n")

    def test_huge_metrics(self):
        def expect(test, bad_results):
            for _, status, events in bad_results:
                test.assertEqual(status, 200)
                test.assertTrue(events[-1].done)

        bad = StubReplica(metrics_mode="huge")
        self.addCleanup(bad.stop)
        router = start_router(self, [bad.url], "scrape: {max_body_bytes: 1048576}\n")
        c = etatest.Client(router.host, router.port)
        self.addCleanup(c.close)
        self.assertTrue(etatest.wait_until(
            lambda: c.metrics().get("eta_scrape_failures_total", replica=bad.url) >= 3,
            timeout=10))
        rss = rss_kib(router.proc.pid)
        self.assertLess(rss, 256 * 1024)
        # Scrapes fail but requests still go through.
        r = c.post("/v1/completions", completion())
        self.assertEqual(r.status, 200)

    def test_garbage_metrics(self):
        bad = StubReplica(metrics_mode="garbage")
        self.addCleanup(bad.stop)
        router = start_router(self, [bad.url])
        c = etatest.Client(router.host, router.port)
        self.addCleanup(c.close)
        self.assertTrue(etatest.wait_until(
            lambda: c.metrics().get("eta_scrape_failures_total", replica=bad.url) >= 3,
            timeout=10))
        r = c.post("/v1/completions", completion())
        self.assertEqual(r.status, 200)


if __name__ == "__main__":
    unittest.main()
