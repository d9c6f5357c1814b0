"""Shared pieces of the fault, lifecycle and overload tests (standard library only).

- Sim: an `eta vllm-sim` on a fixed port (picked once) that can be killed, stopped, continued and
  restarted on the same port, writing its `--request-log` to a file that survives restarts.
- Router: `eta route --config FILE` with the admin listener, started from a YAML text.
- Load: a bounded workload (a known number of requests, each with its own X-Request-Id) sent by
  a few threads, one fresh connection per request (so the client never resends anything), every
  answer classified: ok, error (an OpenAI error body), stream_error (an SSE error event then
  [DONE]) or broken (anything else: a lost request).
- check_run(): no request lost, none duplicated (the router's decision log and the replicas' own
  request logs agree: the client's bytes came from the last attempt, no replica saw a request
  twice, at most one replica completed it), failovers counted.
"""

import http.client
import json
import os
import signal
import tempfile
import threading
import time

import etatest

MODEL = "sim-model"
TIME_SCALE = "10"


def unix_now():
    return time.time()


class Sim:
    """An `eta vllm-sim` on a fixed port; restart() brings it back on the same port."""

    def __init__(self, test, *extra, log_dir):
        self.extra = [str(a) for a in extra]
        self.port = etatest.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = os.path.join(log_dir, "sim-%d.log" % self.port)
        self.proc = None
        self.start()
        test.addCleanup(self.stop)

    def start(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.proc = etatest.EtaProcess(
                    ["vllm-sim", "--port", str(self.port), "--model", MODEL, "--time-scale",
                     TIME_SCALE, "--request-log", self.log] + self.extra)
                self.changed_at = time.monotonic()  # listening
                return self
            except RuntimeError:
                # The port can be busy for a moment after a kill; try again.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def kill(self):
        self.proc.proc.send_signal(signal.SIGKILL)
        self.changed_at = time.monotonic()
        self.proc.proc.wait(5)
        self.proc.stop()

    def pause(self):
        self.proc.proc.send_signal(signal.SIGSTOP)
        self.changed_at = time.monotonic()

    def resume(self):
        self.proc.proc.send_signal(signal.SIGCONT)
        self.changed_at = time.monotonic()

    def restart(self):
        self.kill()
        return self.start()

    def stop(self):
        if self.proc is not None:
            try:
                self.proc.proc.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.proc.stop()

    def events(self):
        """[(unix time, event, request id)] from the request log."""
        out = []
        if not os.path.exists(self.log):
            return out
        with open(self.log) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    out.append((float(parts[0]), parts[1], parts[2]))
        return out


class Router(etatest.EtaRouter):
    """`eta route --config FILE --port 0 --admin-port 0 ...`."""

    def __init__(self, test, yaml_text, *extra, check_exit=True):
        fd, self.config_path = tempfile.mkstemp(prefix="eta-route-", suffix=".yaml")
        os.close(fd)
        test.addCleanup(os.unlink, self.config_path)
        self.write_config(yaml_text)
        super().__init__(["--config", self.config_path, "--port", "0", "--admin-port", "0"]
                         + [str(a) for a in extra])

        def cleanup():
            code = self.stop()
            if check_exit and code != 0:
                raise AssertionError("eta route exited with %r; stderr:\n%s"
                                     % (code, "".join(self.stderr_lines)))

        test.addCleanup(cleanup)

    def write_config(self, yaml_text):
        with open(self.config_path, "w") as f:
            f.write(yaml_text)

    def admin(self):
        return etatest.Client("127.0.0.1", self.admin_port)

    def replicas(self):
        c = self.admin()
        try:
            return {r["url"]: r for r in c.get_json("/admin/replicas")[1]["replicas"]}
        finally:
            c.close()

    def decisions(self):
        c = self.admin()
        try:
            return c.get_json("/admin/decisions?last=1000000")[1]["decisions"]
        finally:
            c.close()

    def metrics(self):
        c = etatest.Client(self.host, self.port)
        try:
            return c.metrics()
        finally:
            c.close()

    def get(self, path, timeout=10.0):
        """GET on a fresh connection: (status, body bytes, seconds)."""
        t0 = time.monotonic()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            return r.status, body, time.monotonic() - t0
        finally:
            conn.close()

    def stderr_text(self):
        return "".join(self.stderr_lines)


def router_yaml(replicas, policy="round-robin", extra="",
                timeouts="{connect_s: 1, first_byte_s: 1.5, idle_s: 1.5}"):
    lines = ["replicas:"] + ["  - %s" % (r if isinstance(r, str) else r.url) for r in replicas]
    if not replicas:
        lines = ["replicas: []"]
    lines += [
        "policy: %s" % policy,
        "decision_log_size: 1000000",
        "health: {interval_s: 0.2, timeout_s: 0.5, failure_threshold: 2, success_threshold: 1}",
        "models: {refresh_interval_s: 1}",
        "timeouts: %s" % timeouts,
    ]
    return "\n".join(lines) + "\n" + extra


# ---------------------------------------------------------------------------------------------
# Load


class Result:
    def __init__(self, rid, stream):
        self.id = rid  # X-Request-Id sent
        self.stream = stream
        self.status = None
        self.replica = None  # x-eta-replica
        self.router_id = None  # x-eta-request-id
        self.kind = "broken"
        self.detail = ""
        self.error_type = None
        self.retry_after = None
        self.t0 = 0.0  # unix time sent
        self.t1 = 0.0  # unix time answered completely

    def __repr__(self):
        return "<%s %s %s %s %s>" % (self.id, self.status, self.kind, self.replica, self.detail)


def _check_error_body(res, body):
    try:
        err = json.loads(body)["error"]
    except Exception:  # noqa: BLE001
        res.kind, res.detail = "broken", "not an OpenAI error body: %r" % body[:200]
        return
    if set(err) != {"message", "type", "param", "code"} or err["code"] != res.status \
            or not err["message"]:
        res.kind, res.detail = "broken", "bad error body %r" % body[:200]
        return
    res.kind, res.error_type, res.detail = "error", err["type"], err["message"]


def send_one(host, port, rid, stream, max_tokens, prompt, timeout=30.0, headers=None):
    res = Result(rid, stream)
    body = {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True,
            "stream": stream}
    hdrs = {"Content-Type": "application/json", "X-Request-Id": rid}
    hdrs.update(headers or {})
    res.t0 = unix_now()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/v1/completions", body=json.dumps(body).encode(), headers=hdrs)
        r = conn.getresponse()
        res.status = r.status
        res.replica = r.getheader("x-eta-replica")
        res.router_id = r.getheader("x-eta-request-id")
        res.retry_after = r.getheader("retry-after")
        data = r.read()
        res.t1 = unix_now()
        if r.status != 200:
            _check_error_body(res, data)
            return res
        if not stream:
            j = json.loads(data)
            got = j["usage"]["completion_tokens"]
            if got != max_tokens or not j["choices"][0]["text"]:
                res.kind, res.detail = "broken", "incomplete body: %d tokens" % got
            else:
                res.kind = "ok"
            return res
        events = [ln[6:] for ln in data.decode().split("\n") if ln.startswith("data: ")]
        if not events or events[-1] != "[DONE]":
            res.kind, res.detail = "broken", "stream without [DONE]: %r" % data[-200:]
            return res
        errors = [e for e in events[:-1] if '"error"' in e]
        if errors:
            err = json.loads(errors[0])["error"]
            res.kind, res.error_type, res.detail = "stream_error", err["type"], err["message"]
            return res
        tokens = sum(1 for e in events[:-1] if json.loads(e)["choices"][0]["text"])
        if tokens != max_tokens:
            res.kind, res.detail = "broken", "stream of %d tokens, want %d" % (tokens, max_tokens)
        else:
            res.kind = "ok"
        return res
    except Exception as e:  # noqa: BLE001 - a lost request, reported by check_run
        res.t1 = unix_now()
        res.kind, res.detail = "broken", "%s: %s" % (type(e).__name__, e)
        return res
    finally:
        conn.close()


class Load:
    """n requests (X-Request-Id TAG-i, every other one streamed) sent by `threads` threads.

    `rate` (requests/s), when set, paces the starts (open loop within the thread pool);
    on_progress(done) is called after each answer from the worker threads."""

    def __init__(self, router, n, tag, threads=6, max_tokens=24, rate=None, prompt_words=12,
                 stream_every=2):
        self.router = router
        self.n = n
        self.tag = tag
        self.threads = threads
        self.max_tokens = max_tokens
        self.rate = rate
        self.prompt_words = prompt_words
        self.stream_every = stream_every
        self.results = [None] * n
        self.done = 0
        self._next = 0
        self._lock = threading.Lock()
        self._workers = []
        self.started = None

    def _worker(self):
        while True:
            with self._lock:
                i = self._next
                self._next += 1
            if i >= self.n:
                return
            if self.rate:
                wait = self.started + i / self.rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            prompt = " ".join("w%d %s%d" % (k % 10, self.tag, i) for k in range(self.prompt_words))
            r = send_one(self.router.host, self.router.port, "%s-%d" % (self.tag, i),
                         self.stream_every > 0 and i % self.stream_every == 0, self.max_tokens,
                         prompt)
            with self._lock:
                self.results[i] = r
                self.done += 1

    def start(self):
        self.started = time.monotonic()
        self._workers = [threading.Thread(target=self._worker, daemon=True)
                         for _ in range(self.threads)]
        for t in self._workers:
            t.start()
        return self

    def wait_done(self, count, timeout=60.0):
        return etatest.wait_until(lambda: self.done >= count, timeout=timeout, interval=0.01)

    def join(self, timeout=120.0):
        deadline = time.monotonic() + timeout
        for t in self._workers:
            t.join(max(0.1, deadline - time.monotonic()))
        return [r for r in self.results if r is not None]

    def run(self):
        return self.start().join()


# ---------------------------------------------------------------------------------------------
# Checks


class Report:
    def __init__(self, name):
        self.name = name
        self.requests = 0
        self.ok = 0
        self.errors = {}  # cause -> count
        self.failovers = 0
        self.duplicates = 0
        self.lost = 0
        self.recovery_s = []
        self.notes = []

    def line(self):
        errs = ", ".join("%s %d" % kv for kv in sorted(self.errors.items())) or "none"
        rec = ", ".join("%.3f" % r for r in self.recovery_s) or "-"
        return ("FAULT %-22s requests %4d  ok %4d  errors: %s  failovers %d  duplicates %d  "
                "lost %d  recovery_s [%s]%s" % (self.name, self.requests, self.ok, errs,
                                                self.failovers, self.duplicates, self.lost, rec,
                                                ("  " + "; ".join(self.notes)) if self.notes
                                                else ""))


def check_run(test, name, results, sims, router, expected_n=None, allow_zombie_ok=()):
    """Asserts the run's invariants and returns a Report (printed to stderr).

    allow_zombie_ok: replicas (urls) that may have completed a request the router had already
    given up on (a SIGSTOPped replica that resumes): not a duplicate for the client, who got its
    bytes from the last attempt only."""
    rep = Report(name)
    if expected_n is not None:
        test.assertEqual(len(results), expected_n, "some requests never returned")
    rep.requests = len(results)
    broken = [r for r in results if r.kind == "broken"]
    rep.lost = len(broken)
    test.assertEqual(broken, [], "requests without a success or a clear error")
    decisions = router.decisions()
    attempts = {}
    for d in decisions:
        if d["chosen"]:
            attempts.setdefault(str(d["request_id"]), []).append((d["attempt"], d["chosen"]))
    logs = {}
    for s in sims:
        for t, ev, rid in s.events():
            logs.setdefault(rid, []).append((s.url, t, ev))
    for r in results:
        if r.kind == "ok":
            rep.ok += 1
        else:
            cause = "%s %s" % (r.status, r.error_type)
            if r.kind == "stream_error":
                cause = "mid-stream %s" % r.error_type
            rep.errors[cause] = rep.errors.get(cause, 0) + 1
        test.assertIsNotNone(r.router_id, r)
        chosen = [c for _, c in sorted(attempts.get(r.router_id, []))]
        rep.failovers += max(0, len(chosen) - 1)
        if r.replica is not None:
            # The client's bytes came from the last attempt: nothing was retried after them.
            test.assertTrue(chosen, r)
            test.assertEqual(chosen[-1], r.replica, (r, chosen))
        test.assertEqual(len(chosen), len(set(chosen)), (r, chosen))
        seen = logs.get(r.id, [])
        recv = [u for u, _, ev in seen if ev == "recv"]
        oks = [u for u, _, ev in seen if ev == "ok"]
        dup = len(recv) != len(set(recv)) or not set(recv) <= set(chosen)
        completed_by_others = [u for u in oks if u != r.replica and u not in allow_zombie_ok]
        if dup or completed_by_others or len(oks) > len(set(oks)):
            rep.duplicates += 1
        test.assertEqual(len(recv), len(set(recv)), ("a replica saw it twice", r, seen))
        test.assertTrue(set(recv) <= set(chosen), ("a replica the router never chose", r, seen,
                                                   chosen))
        test.assertEqual(completed_by_others, [], ("completed by another replica", r, seen))
        if r.kind == "ok":
            test.assertIn(r.replica, oks, (r, seen))
    test.assertEqual(rep.duplicates, 0)
    return rep


def emit(report):
    import sys
    sys.stderr.write(report.line() + "\n")
    sys.stderr.flush()
    out = os.environ.get("ETA_FAULT_REPORT")
    if out:
        with open(out, "a") as f:
            f.write(report.line() + "\n")


def wait_routable(router, url, want, timeout=10.0, since=None):
    """Seconds from `since` (time.monotonic(); default now) until the admin API reports `url`
    routable == want (None on timeout). Polled every 10 ms."""
    t0 = time.monotonic() if since is None else since

    def ok():
        try:
            r = router.replicas().get(url)
        except Exception:  # noqa: BLE001
            return False
        return r is not None and r["routable"] == want

    if etatest.wait_until(ok, timeout=timeout, interval=0.01):
        return time.monotonic() - t0
    return None
