"""scripts/etalib.py, the helpers the scripts and these tests share: ports, process groups
(started, stopped whole, nothing left behind), the `listening on` handshake, /proc sampling,
percentiles, the Prometheus parser, JSON over HTTP, the proxies' configurations and signals.
Needs no eta binary."""

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import etatest

etalib = etatest.etalib
PY = sys.executable


def alive(pid):
    f = etalib.proc_stat(pid)
    return f is not None and f[0] != "Z"


class PortsTest(unittest.TestCase):
    def test_free_port_can_be_bound(self):
        for udp in (False, True):
            port = etalib.free_port(udp=udp)
            self.assertGreater(port, 0)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))

    def test_wait_port(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            self.assertTrue(etalib.wait_port(s.getsockname()[1], timeout=2))
        port = etalib.free_port()
        t0 = time.monotonic()
        self.assertFalse(etalib.wait_port(port, timeout=0.3))
        self.assertLess(time.monotonic() - t0, 2)
        # A program that ended: no waiting for the timeout.
        p = subprocess.Popen([PY, "-c", "pass"])
        p.wait()
        t0 = time.monotonic()
        self.assertFalse(etalib.wait_port(port, p, timeout=10))
        self.assertLess(time.monotonic() - t0, 2)


class PercentileTest(unittest.TestCase):
    def test_linear_between_closest_ranks(self):
        v = [40, 10, 30, 20]  # sorted: 10 20 30 40
        self.assertEqual(etalib.percentile(v, 0), 10)
        self.assertEqual(etalib.percentile(v, 1), 40)
        self.assertAlmostEqual(etalib.percentile(v, 0.5), 25)
        self.assertAlmostEqual(etalib.percentile(v, 0.99), 39.7)
        self.assertEqual(etalib.percentile([7], 0.99), 7)
        self.assertIsNone(etalib.percentile([], 0.5))
        self.assertEqual(etalib.percentile([], 0.5, empty=-1), -1)


class ProcsTest(unittest.TestCase):
    def test_stop_ends_the_whole_group(self):
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "pids.txt")
            procs = etalib.Procs(pid_log=log)
            # A shell that ignores SIGTERM, with a child of its own: SIGKILL for the group.
            p = procs.start("shell", ["sh", "-c", "trap '' TERM; sleep 60 & sleep 60"])
            members = etatest.wait_until(lambda: len(etalib.group_pids(p.pid)) >= 3 or None,
                                         timeout=5)
            self.assertTrue(members, etalib.group_pids(p.pid))
            pids = etalib.group_pids(p.pid)
            t0 = time.monotonic()
            procs.stop(p, timeout=0.5)
            self.assertLess(time.monotonic() - t0, 5)
            self.assertEqual(procs.live, [])
            # SIGKILL is delivered at once, but a killed child of the group is gone only once the
            # kernel has run its exit (a loaded machine: a few ms later).
            etatest.wait_until(lambda: not [x for x in pids if alive(x)] or None, timeout=3)
            self.assertEqual([x for x in pids if alive(x)], [])
            with open(log) as f:
                self.assertEqual(f.read(), "%d shell\n" % p.pid)

    def test_stop_all(self):
        procs = etalib.Procs()
        ps = [procs.start("s%d" % i, ["sleep", "60"]) for i in range(3)]
        procs.stop_all(timeout=2)
        self.assertEqual(procs.live, [])
        self.assertEqual([p.returncode for p in ps], [-signal.SIGTERM] * 3)

    def test_read_listening(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out")
            procs = etalib.Procs()
            try:
                with open(out, "w") as o:
                    p = procs.start("p", [PY, "-c", "import time; time.sleep(0.2); "
                                         "print('noise'); print('listening on http://h:1'); "
                                         "print('admin on http://h:2', flush=True); "
                                         "time.sleep(30)"], o)
                self.assertEqual(etalib.read_listening(out, p, ["listening on ", "admin on "]),
                                 ["http://h:1", "http://h:2"])
                procs.stop(p)
                # A program that ends without the line: None, without waiting for the timeout.
                with open(out, "w") as o:
                    p = procs.start("p", [PY, "-c", "print('no')"], o)
                t0 = time.monotonic()
                self.assertIsNone(etalib.read_listening(out, p, timeout=10))
                self.assertLess(time.monotonic() - t0, 5)
            finally:
                procs.stop_all()


SERVER = """
import sys, time
print("listening on http://127.0.0.1:4321", flush=True)
print("admin on http://127.0.0.1:4322", flush=True)
print("to stderr", file=sys.stderr, flush=True)
time.sleep(30)
"""


class ServerTest(unittest.TestCase):
    def test_handshake_lines_and_stop(self):
        s = etalib.Server([PY, "-c", SERVER], name="fake")
        try:
            self.assertEqual((s.url, s.host, s.port), ("http://127.0.0.1:4321", "127.0.0.1", 4321))
            self.assertEqual(s.wait_line("admin on "), "http://127.0.0.1:4322")
            self.assertTrue(etatest.wait_until(lambda: s.stderr_lines, timeout=5))
            self.assertTrue(s.alive())
        finally:
            code = s.stop()
        self.assertEqual(code, -signal.SIGTERM)
        self.assertFalse(s.alive())

    def test_a_program_that_does_not_listen(self):
        with self.assertRaisesRegex(RuntimeError, "fake did not start.*'hello"):
            etalib.Server([PY, "-c", "print('hello')"], name="fake")
        with self.assertRaisesRegex(RuntimeError, "printed nothing"):
            etalib.Server([PY, "-c", "import time; time.sleep(30)"], name="fake",
                          ready_timeout=0.3)

    def test_new_session_stops_the_group(self):
        s = etalib.Server([PY, "-c", "import subprocess; subprocess.Popen(['sleep', '60']); "
                           + SERVER], new_session=True, capture_stderr=False)
        child = etatest.wait_until(
            lambda: [p for p in etalib.group_pids(s.proc.pid) if p != s.proc.pid], timeout=5)
        self.assertTrue(child)
        s.stop()
        # The group got SIGTERM; the child's exit is asynchronous (seen alive once under load).
        self.assertTrue(etatest.wait_until(lambda: not alive(child[0]), timeout=5))


class ProcSamplingTest(unittest.TestCase):
    def test_cpu_rss_fds(self):
        p = subprocess.Popen([PY, "-c", "import os, time\nf = [open(os.devnull) for _ in "
                              "range(20)]\nt = time.process_time()\nwhile time.process_time() "
                              "- t < 0.4: pass\nprint('done', flush=True)\ntime.sleep(30)"],
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            self.assertEqual(p.stdout.readline().strip(), "done")
            self.assertGreaterEqual(etalib.cpu_seconds(p.pid), 0.3)
            self.assertGreaterEqual(etalib.group_cpu_seconds(p.pid), 0.3)
            self.assertGreater(etalib.rss_kb(p.pid), 1000)
            self.assertEqual(etalib.group_rss_kb(p.pid), etalib.rss_kb(p.pid))
            self.assertGreaterEqual(etalib.group_fds(p.pid), 20)
            self.assertEqual(etalib.group_pids(p.pid), [p.pid])
        finally:
            etalib.stop_group(p)
            p.stdout.close()
        self.assertIsNone(etalib.rss_kb(p.pid))
        self.assertEqual(etalib.cpu_seconds(p.pid), 0.0)
        self.assertIsNone(etalib.proc_stat(p.pid))

    def test_machine_cpu(self):
        b0, t0 = etalib.machine_cpu()
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass
        b1, t1 = etalib.machine_cpu()
        self.assertLessEqual(b0, t0)
        self.assertGreater(b1, b0)
        self.assertGreater(t1, t0)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/metrics":
            self._send(b'# TYPE eta_x_total counter\neta_x_total{a="1",b="q\\"t"} 3\nup 1\n')
        else:
            self._send(b"")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send(json.dumps({"path": self.path, "got": body}).encode(), 201)

    def _send(self, data, status=200):
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class HttpTest(unittest.TestCase):
    def test_http_json_and_metrics(self):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            url = "http://127.0.0.1:%d" % srv.server_address[1]
            self.assertEqual(etalib.http_json(url, "POST", "/admin/x", {"k": 1}),
                             (201, {"path": "/admin/x", "got": {"k": 1}}))
            self.assertEqual(etalib.http_json(url, "GET", "/empty"), (200, None))
            self.assertEqual(etalib.scrape_metrics(url),
                             [("eta_x_total", {"a": "1", "b": 'q"t'}, 3.0), ("up", {}, 1.0)])
        finally:
            srv.shutdown()
            srv.server_close()

    def test_parse_prometheus(self):
        samples, types, helps = etalib.parse_prometheus(
            "# HELP h_seconds Latency.\n# TYPE h_seconds histogram\n"
            'h_seconds_bucket{le="+Inf"} 2\nh_seconds_sum 0.5 1700000000\n')
        self.assertEqual(samples, [("h_seconds_bucket", {"le": "+Inf"}, 2.0),
                                   ("h_seconds_sum", {}, 0.5)])
        self.assertEqual(types, {"h_seconds": "histogram"})
        self.assertEqual(helps, {"h_seconds": "Latency."})
        with self.assertRaisesRegex(ValueError, "line 1"):
            etalib.parse_prometheus("not a sample line at all\n")


class ProxyConfTest(unittest.TestCase):
    def test_proxy_command(self):
        urls = ["http://127.0.0.1:1001", "http://127.0.0.1:1002"]
        with tempfile.TemporaryDirectory() as tmp:
            d = os.path.join(tmp, "nginx")
            args = etalib.proxy_command("nginx", d, 8080, urls,
                                        lambda c: c.replace("least_conn;", "least_conn; #x"))
            self.assertEqual(args[1:], ["-c", os.path.join(d, "nginx.conf"), "-p", d, "-g",
                                        "daemon off;"])
            with open(os.path.join(d, "nginx.conf")) as f:
                conf = f.read()
            self.assertIn("listen 127.0.0.1:8080;", conf)
            self.assertIn("server 127.0.0.1:1002 max_fails=0;", conf)
            self.assertIn("least_conn; #x", conf)
            d = os.path.join(tmp, "haproxy")
            args = etalib.proxy_command("haproxy", d, 8081, urls)
            self.assertEqual(args[1:], ["-f", os.path.join(d, "haproxy.cfg"), "-db"])
            with open(args[2]) as f:
                conf = f.read()
            self.assertIn("bind 127.0.0.1:8081", conf)
            self.assertIn("server 127.0.0.1:1001 127.0.0.1:1001", conf)
            with self.assertRaises(ValueError):
                etalib.proxy_command("envoy", d, 1, urls)


class SignalsTest(unittest.TestCase):
    def test_signals_raise_interrupted(self):
        saved = {s: signal.getsignal(s) for s in etalib.STOP_SIGNALS}
        try:
            etalib.raise_on_signals()
            with self.assertRaisesRegex(etalib.Interrupted, "SIGHUP"):
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(1)
            etalib.ignore_signals()
            os.kill(os.getpid(), signal.SIGTERM)  # ignored
            time.sleep(0.05)
        finally:
            for s, h in saved.items():
                signal.signal(s, h)

    def test_run_stoppable(self):
        scripts = os.path.dirname(os.path.abspath(etalib.__file__))
        prog = ("import sys, time; sys.path.insert(0, %r); import etalib\n"
                "def body():\n"
                "    print('running', flush=True)\n"
                "    if sys.argv[1] == 'fail': raise OSError('no disk')\n"
                "    time.sleep(30)\n"
                "sys.exit(etalib.run_stoppable('prog', body, lambda: print('cleaned'), "
                "report_failures=True))\n" % scripts)
        p = subprocess.Popen([PY, "-c", prog, "sleep"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline(), "running\n")
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
        self.assertEqual((p.returncode, out), (130, "cleaned\n"))
        self.assertIn("prog: interrupted (SIGTERM); stopping everything", err)
        r = subprocess.run([PY, "-c", prog, "fail"], capture_output=True, text=True, timeout=10)
        self.assertEqual((r.returncode, r.stdout), (1, "running\ncleaned\n"))
        self.assertEqual(r.stderr.strip(), "prog: failed: no disk")


if __name__ == "__main__":
    unittest.main()
