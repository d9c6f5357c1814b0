"""Helpers for eta's integration tests (standard library only). Ports, processes, /proc
sampling, percentiles and the Prometheus parser are scripts/etalib.py's, shared with the scripts.

- EtaProcess / start_sim(): start `$ETA_BIN vllm-sim --port 0 ...`, read the first stdout line
  `listening on http://HOST:PORT`, and stop it at the end (SIGTERM, then SIGKILL): use it as a
  context manager or call stop(); an atexit hook kills anything still running. EtaRouter:
  `eta route`, with its admin address.
- Client: JSON requests over http.client (keep-alive), raw requests, and SSE streams that yield
  each event with its arrival time.
- parse_prometheus() / Metrics: the Prometheus text format, for /metrics assertions.
- run_eta(): run a short eta command and capture its exit code and output.
"""

import atexit
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import etalib  # noqa: E402
from etalib import free_port, parse_prometheus, wait_port  # noqa: E402,F401  (re-exported)

ETA_BIN = os.environ.get("ETA_BIN", "")
# The binary under test was built with a sanitizer (ctest sets ETA_SANITIZED in the ASan/UBSan
# tree, make tsan-run sets ETA_TSAN): timing allowances that measure the binary's own overhead
# scale with it.
SANITIZED = os.environ.get("ETA_SANITIZED") == "1" or os.environ.get("ETA_TSAN") == "1"

atexit.register(etalib.kill_live_servers)


def eta_bin():
    if not ETA_BIN or not os.path.exists(ETA_BIN):
        raise RuntimeError("set ETA_BIN to the eta binary (got %r)" % ETA_BIN)
    return ETA_BIN


class EtaProcess(etalib.Server):
    """A running `eta` subcommand that prints `listening on http://HOST:PORT` first (later
    stdout lines in .stdout_lines, stderr in .stderr_lines)."""

    def __init__(self, args, ready_timeout=20.0):
        super().__init__([eta_bin()] + list(args), name="eta", ready_timeout=ready_timeout)
        self.stdout_lines = self.lines

    def client(self, timeout=30.0):
        return Client(self.host, self.port, timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        code = self.stop()
        if exc_type is None and code != 0:
            raise AssertionError("%s exited with %r; stderr:\n%s"
                                 % (" ".join(self.args), code, "".join(self.stderr_lines)))
        return False


class EtaRouter(EtaProcess):
    """`eta route ARGS`: `listening on URL`, then `admin on URL` (admin_url, admin_host,
    admin_port; admin() is a Client for it)."""

    def __init__(self, args, **kwargs):
        super().__init__(["route"] + [str(a) for a in args], **kwargs)
        try:
            self.admin_url = self.wait_line("admin on ")
        except RuntimeError:
            self.stop()
            raise
        self.admin_host, self.admin_port = url_split(self.admin_url)

    def admin(self):
        return Client(self.admin_host, self.admin_port)


def start_sim(*extra, model="sim-model", **kwargs):
    """Starts `eta vllm-sim --port 0 --model MODEL EXTRA...`."""
    return EtaProcess(["vllm-sim", "--port", "0", "--model", model] + [str(a) for a in extra],
                      **kwargs)


def run_eta(args, timeout=20.0):
    """Runs `eta ARGS`; returns (exit code, stdout, stderr)."""
    p = subprocess.run([eta_bin()] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


class HttpResult:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # dict with lower-case names
        self.body = body  # bytes

    def json(self):
        return json.loads(self.body)

    def text(self):
        return self.body.decode()


class SseEvent:
    def __init__(self, data, t):
        self.data = data  # the text after "data: "
        self.time = t  # time.monotonic() when it arrived

    def json(self):
        return json.loads(self.data)

    @property
    def done(self):
        return self.data == "[DONE]"


class Stream:
    """An open SSE response: iterate for events; close() drops the connection."""

    def __init__(self, conn, response, start):
        self.conn = conn
        self.response = response
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.start = start

    def __iter__(self):
        data_lines = []
        while True:
            line = self.response.readline()
            if not line:
                return
            line = line.decode().rstrip("\r\n")
            if line == "":
                if data_lines:
                    yield SseEvent("\n".join(data_lines), time.monotonic())
                    data_lines = []
                continue
            if line.startswith("data:"):
                data_lines.append(line[5:].lstrip(" "))

    def body(self):
        return self.response.read()

    def close(self):
        try:
            self.conn.sock and self.conn.sock.close()
        finally:
            self.conn.close()


class Client:
    """HTTP/1.1 client with one keep-alive connection (reopened when needed)."""

    def __init__(self, host, port, timeout=30.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.conn = None

    def _connection(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        for attempt in range(2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=hdrs)
                r = conn.getresponse()
                data = r.read()
                result = HttpResult(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
                if r.will_close:
                    self.close()
                return result
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server closed while idle: retry once on a new one.
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body)

    def get_json(self, path):
        r = self.get(path)
        return r.status, r.json()

    def post_json(self, path, body):
        r = self.post(path, body)
        return r.status, r.json()

    def stream(self, path, body, headers=None):
        """POSTs and returns a Stream on a fresh connection (events via iteration)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        hdrs = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        hdrs.update(headers or {})
        start = time.monotonic()
        conn.request("POST", path, body=json.dumps(body).encode(), headers=hdrs)
        return Stream(conn, conn.getresponse(), start)

    def metrics(self):
        r = self.get("/metrics")
        if r.status != 200:
            raise AssertionError("/metrics returned %d" % r.status)
        return Metrics(r.text())


class Metrics:
    def __init__(self, text):
        self.text = text
        self.samples, self.types, self.helps = parse_prometheus(text)

    def find(self, name, **labels):
        return [(l, v) for (n, l, v) in self.samples
                if n == name and all(l.get(k) == str(x) for k, x in labels.items())]

    def value(self, name, **labels):
        found = self.find(name, **labels)
        if not found:
            raise KeyError("%s%r not in /metrics" % (name, labels))
        return found[0][1]

    def get(self, name, default=0.0, **labels):
        found = self.find(name, **labels)
        return found[0][1] if found else default

    def buckets(self, name, **labels):
        """The `le` bounds of histogram `name` (without +Inf), in order."""
        out = []
        for l, _ in self.find(name + "_bucket", **labels):
            if l["le"] != "+Inf":
                out.append(float(l["le"]))
        return out


def wait_until(predicate, timeout=5.0, interval=0.02):
    """Polls predicate() until it returns something truthy; returns it or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def url_split(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port


def npm_ci(folder, package):
    """`npm ci` in a committed npm folder (tests/sdk, tests/browser) unless `package` is installed
    there already. Test files run in parallel under ctest: an exclusive lock on the folder keeps
    two of them from installing into it at once."""
    import fcntl
    import shutil

    def installed():
        return os.path.exists(os.path.join(folder, "node_modules", package, "package.json"))

    if installed():
        return
    npm = shutil.which("npm")
    if not npm:
        raise AssertionError("npm is missing: run scripts/install-deps.sh")
    with open(os.path.join(folder, "package.json")) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if installed():
                return
            p = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
                               cwd=folder, capture_output=True, text=True, timeout=300,
                               stdin=subprocess.DEVNULL)
            if p.returncode != 0:
                raise AssertionError("npm ci in %s failed:\n%s%s" % (folder, p.stdout, p.stderr))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
