"""What eta's scripts and integration tests share (Python 3 standard library only).

Used by scripts/demo.py, scripts/bench_proxy.py, scripts/soak.py, scripts/bench_access_log.py,
bench/overload.py and tests/integration/etatest.py (which puts the repository's scripts/ on
sys.path). Tested by tests/integration/test_etalib.py.

- Ports: free_port(), wait_port().
- Processes: Server (a program that prints `listening on URL` first, read from a pipe), Procs
  (programs in their own process groups, with output to files, all stopped by stop_all()),
  read_listening() (the `listening on` lines of a program writing to a file), killpg().
- Signals: Interrupted and raise_on_signals() (SIGINT, SIGTERM and SIGHUP raise Interrupted,
  so `finally:` blocks stop what was started), ignore_signals(), run_stoppable() (a script's
  main: exit 130 when interrupted, clean-up always).
- /proc sampling: proc_stat(), group_pids(), cpu_seconds(), group_cpu_seconds(), rss_kb(),
  group_rss_kb(), group_fds(), machine_cpu().
- Statistics: percentile() (linear interpolation between closest ranks, numpy's default).
- HTTP: http_json() (one request on a fresh connection), parse_prometheus(), scrape_metrics().
- Proxies to compare against: nginx_conf(), haproxy_conf(), proxy_command().
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---------------------------------------------------------------------------------------------
# Ports


def free_port(udp=False):
    """A port on 127.0.0.1 that was free a moment ago (for programs that take a fixed port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=10.0, host="127.0.0.1"):
    """Waits until host:port accepts a TCP connection; False on timeout or when proc ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------------------------
# Signals


class Interrupted(Exception):
    """Raised by the handler raise_on_signals() installs; carries the signal's name."""


def _raise_interrupted(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def raise_on_signals():
    for s in STOP_SIGNALS:
        signal.signal(s, _raise_interrupted)


def ignore_signals():
    """For the final clean-up: a second Ctrl-C must not interrupt it."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def run_stoppable(name, body, cleanup, report_failures=False):
    """Runs body() with SIGINT, SIGTERM and SIGHUP raising Interrupted and returns its result;
    on Interrupted prints `NAME: interrupted (SIG); stopping everything` and returns 130, and
    with report_failures any other exception is one line `NAME: failed: ...` and 1. cleanup()
    runs in every case, with those signals ignored."""
    raise_on_signals()
    try:
        return body()
    except Interrupted as e:
        print("\n%s: interrupted (%s); stopping everything" % (name, e), file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001
        if not report_failures:
            raise
        print("\n%s: failed: %s" % (name, e), file=sys.stderr)
        return 1
    finally:
        ignore_signals()
        cleanup()


# ---------------------------------------------------------------------------------------------
# Processes


def killpg(pgid, sig):
    """os.killpg that ignores a group already gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait(p, timeout):
    try:
        p.wait(timeout=max(0.0, timeout))
        return True
    except subprocess.TimeoutExpired:
        return False


def stop_group(p, timeout=5.0):
    """SIGTERM to p's process group, up to TIMEOUT s for p to exit, then SIGKILL to the group
    (what p left behind too: nginx's workers). Returns p's exit code (None if it never ended)."""
    if p.poll() is None:
        killpg(p.pid, signal.SIGTERM)
        _wait(p, timeout)
    killpg(p.pid, signal.SIGKILL)
    _wait(p, 5)
    return p.returncode


class Procs:
    """Programs started in their own session (process group), each stopped with its group."""

    def __init__(self, pid_log=None):
        self.live = []  # (name, Popen)
        self.pid_log = pid_log  # a file that gets "PID NAME" per start, if given

    def start(self, name, args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                             start_new_session=True)
        self.live.append((name, p))
        if self.pid_log:
            with open(self.pid_log, "a") as f:
                f.write("%d %s\n" % (p.pid, name))
        return p

    def stop(self, p, timeout=5.0):
        stop_group(p, timeout)
        self.live = [(n, q) for n, q in self.live if q is not p]

    def stop_all(self, timeout=5.0):
        """SIGTERM to every group at once, TIMEOUT s for them all, then SIGKILL."""
        for _, p in self.live:
            if p.poll() is None:
                killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, p in self.live:
            _wait(p, max(0.1, deadline - time.monotonic()))
        for _, p in list(self.live):
            self.stop(p, timeout=0.1)


def read_listening(path, proc, prefix="listening on ", timeout=20.0):
    """Waits for a line starting with PREFIX (or with each of a list of prefixes) in the file a
    program writes its stdout to; returns what follows each prefix, as a list, or None when the
    program ended or TIMEOUT passed first."""
    deadline = time.monotonic() + timeout
    prefixes = prefix if isinstance(prefix, list) else [prefix]
    while time.monotonic() < deadline:
        found = {}
        try:
            with open(path) as f:
                for line in f:
                    for pf in prefixes:
                        if line.startswith(pf) and pf not in found:
                            found[pf] = line[len(pf):].strip()
        except OSError:
            pass
        if len(found) == len(prefixes):
            return [found[pf] for pf in prefixes]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    return None


_LISTENING_RE = re.compile(r"listening on (https?://(\S+):(\d+))")

_live = set()  # every running Server, killed at exit (see etatest)
_live_lock = threading.Lock()


def kill_live_servers():
    with _live_lock:
        servers = list(_live)
    for s in servers:
        try:
            s.stop(timeout=0)
        except Exception:  # noqa: BLE001  at exit: kill what can be killed
            pass


class Server:
    """A program that prints `listening on http://HOST:PORT` as its first stdout line: started
    with stdout (and, with capture_stderr, stderr) on pipes drained by threads; url, host and
    port from that line; later stdout lines in .lines, stderr lines in .stderr_lines. With
    new_session the program gets its own process group and stop() signals the whole group."""

    def __init__(self, args, name=None, ready_timeout=20.0, capture_stderr=True,
                 new_session=False):
        self.args = [str(a) for a in args]
        self.name = name or os.path.basename(self.args[0])
        self.group = new_session
        self.lines = []
        self.stderr_lines = []
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if capture_stderr else subprocess.DEVNULL, text=True,
            bufsize=1, start_new_session=new_session)
        with _live_lock:
            _live.add(self)
        self._threads = []
        if capture_stderr:
            self._spawn(self._drain, self.proc.stderr, self.stderr_lines)
        first = self._first_line(ready_timeout)
        m = _LISTENING_RE.fullmatch(first.strip())
        if not m:
            self.stop()
            raise RuntimeError("%s did not start: first line %r, stderr %r"
                               % (self.name, first, "".join(self.stderr_lines)))
        self.url = m.group(1)
        self.host = m.group(2).strip("[]")
        self.port = int(m.group(3))
        self._spawn(self._drain, self.proc.stdout, self.lines)

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    @staticmethod
    def _drain(stream, into):
        for line in stream:
            into.append(line)

    def _first_line(self, timeout):
        box = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        if not box:
            self.stop()
            raise RuntimeError("%s printed nothing within %.0f s" % (self.name, timeout))
        return box[0]

    def wait_line(self, prefix, timeout=10.0):
        """What follows PREFIX on a later stdout line (e.g. eta route's `admin on `)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line[len(prefix):].strip()
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("%s printed no line %r" % (self.name, prefix))

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, up to TIMEOUT s, then SIGKILL (to the group with new_session). Returns the
        exit code."""
        if self.group:
            stop_group(self.proc, timeout)
        elif self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if not _wait(self.proc, timeout):
                self.proc.kill()
                _wait(self.proc, 5)
        with _live_lock:
            _live.discard(self)
        for t in self._threads:
            t.join(timeout=2)
        for f in (self.proc.stdout, self.proc.stderr):
            try:
                f and f.close()
            except Exception:  # noqa: BLE001  a reader thread may still hold it
                pass
        return self.proc.returncode


# ---------------------------------------------------------------------------------------------
# /proc sampling


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name: [0] is field 3 (state), so field N
    is [N - 3] (pgrp [2], utime [11], stime [12], cutime [13], cstime [14]); None if gone."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rfind(")") + 2:].split()


def group_pids(pgid, zombies=True):
    """The processes of a process group (zombies included unless told otherwise)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        f = proc_stat(d)
        if f and int(f[2]) == pgid and (zombies or f[0] != "Z"):
            out.append(int(d))
    return out


def cpu_seconds(pid, children=False):
    """utime + stime of a process (every thread), plus its waited-for children's with
    children=True; 0.0 if it is gone."""
    f = proc_stat(pid)
    if not f:
        return 0.0
    return sum(int(x) for x in f[11:15 if children else 13]) / CLK_TCK


def group_cpu_seconds(pgid):
    """CPU seconds (children's included) of every process of a process group."""
    return sum(cpu_seconds(pid, children=True) for pid in group_pids(pgid))


def rss_kb(pid):
    """VmRSS of a process in kB; None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def group_rss_kb(pgid):
    return sum(rss_kb(pid) or 0 for pid in group_pids(pgid))


def group_fds(pgid):
    """Open file descriptors of a process group."""
    n = 0
    for pid in group_pids(pgid):
        try:
            n += len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            pass
    return n


def machine_cpu():
    """(busy, total) jiffies of all cores, from /proc/stat: busy share = d(busy) / d(total)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle, sum(v[:8])


# ---------------------------------------------------------------------------------------------
# Statistics


def percentile(values, q, empty=None):
    """The q-quantile (0 <= q <= 1) of VALUES, interpolating linearly between the closest ranks
    (numpy's default); EMPTY for no values."""
    v = sorted(values)
    if not v:
        return empty
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


# ---------------------------------------------------------------------------------------------
# HTTP


def http_json(url, method="GET", path="/", body=None, timeout=10.0):
    """One request on a fresh connection to URL (http://HOST:PORT); returns (status, the JSON
    body or None when it is empty)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(v):
    return v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def _labels(text, n):
    labels, pos = {}, 0
    while pos < len(text):
        lm = _LABEL_RE.match(text, pos)
        if not lm:
            raise ValueError("line %d: bad labels %r" % (n, text))
        labels[lm.group(1)] = _unescape(lm.group(2))
        pos = lm.end()
    return labels


def parse_prometheus(text):
    """The Prometheus text format: (samples, types, helps), samples a list of (name, labels
    dict, value); ValueError on a malformed line."""
    samples, types, helps = [], {}, {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip() if len(parts) > 3 else ""
            elif len(parts) >= 3 and parts[1] == "HELP":
                helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise ValueError("line %d: bad sample %r" % (n, line))
        labels = _labels(m.group(3), n) if m.group(3) else {}
        value = float(m.group(4).replace("+Inf", "inf").replace("-Inf", "-inf"))
        samples.append((m.group(1), labels, value))
    return samples, types, helps


def scrape_metrics(url, timeout=10.0):
    """GET URL/metrics: the samples as (name, labels dict, value)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", "/metrics")
        return parse_prometheus(conn.getresponse().read().decode())[0]
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# nginx and HAProxy in front of replicas (least connections, keep-alive upstreams, no buffering;
# the replica that served a request in the x-eta-replica response header, as eta route sends it)


def nginx_conf(tmp, port, replicas):
    """nginx.conf for `nginx -c FILE -p TMP -g 'daemon off;'` listening on 127.0.0.1:PORT."""
    servers = "\n".join("    server %s max_fails=0;" % u.split("://", 1)[1] for u in replicas)
    return """worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log {tmp}/access.log;
  client_body_temp_path {tmp}/client_body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  upstream replicas {{
    least_conn;
{servers}
    keepalive 64;
    keepalive_requests 100000;
  }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 64m;
    location / {{
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
      add_header x-eta-replica $upstream_addr always;
    }}
  }}
}}
""".format(tmp=tmp, port=port, servers=servers)


def haproxy_conf(tmp, port, replicas):
    """haproxy.cfg for `haproxy -f FILE -db` listening on 127.0.0.1:PORT (TMP is unused: the
    signature matches nginx_conf)."""
    del tmp
    servers = "\n".join("  server %s %s" % (u.split("://", 1)[1], u.split("://", 1)[1])
                        for u in replicas)
    return """global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  timeout http-keep-alive 1h
  option http-keep-alive
  option http-no-delay
frontend demo
  bind 127.0.0.1:{port}
  default_backend replicas
backend replicas
  balance leastconn
  http-response set-header x-eta-replica %[srv_name]
{servers}
""".format(port=port, servers=servers)


def proxy_command(kind, folder, port, replicas, edit=None):
    """Writes the configuration of KIND (nginx or haproxy) in front of REPLICAS, listening on
    127.0.0.1:PORT, into FOLDER (created; writable by nginx's workers, which run as nobody when
    started by root), passed through EDIT(text) if given; returns the command line that runs it
    in the foreground."""
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o777)
    if kind == "nginx":
        path = os.path.join(folder, "nginx.conf")
        text = nginx_conf(folder, port, replicas)
        args = [shutil.which("nginx"), "-c", path, "-p", folder, "-g", "daemon off;"]
    elif kind == "haproxy":
        path = os.path.join(folder, "haproxy.cfg")
        text = haproxy_conf(folder, port, replicas)
        args = [shutil.which("haproxy"), "-f", path, "-db"]
    else:
        raise ValueError("proxy_command: %r is neither nginx nor haproxy" % kind)
    with open(path, "w") as f:
        f.write(edit(text) if edit else text)
    return args
