"""HTTPS replicas: `eta route` in front of `eta vllm-sim --ssl-keyfile K --ssl-certfile C`, with
a CA and server certificates made here with the openssl CLI. Requests, streams, /metrics scrapes,
/health checks and /v1/models polls go over TLS with the configured CA (upstream_tls or a
replica's own tls); a certificate that does not verify (another CA, another host name) makes the
replica unhealthy with the reason in /admin/replicas and a log line, and requests are not sent to
it; verify: false accepts it; a CA file that cannot be read is one line and exit code 2."""

import os
import ssl
import subprocess
import tempfile
import unittest

import etatest
from test_hostile import MODEL as STUB_MODEL, StubReplica
from test_route import RouterProcess, _cleanup

MODEL = "sim-model"


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    key, cert = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", key,
            "-out", cert, "-subj", "/CN=" + name)
    return key, cert


def make_server_cert(d, name, ca_key, ca_cert, san):
    key, csr, cert = (os.path.join(d, name + ext) for ext in (".key", ".csr", ".pem"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % san)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
            "-days", "1", "-out", cert, "-extfile", ext)
    return key, cert


def write(text):
    d = tempfile.mkdtemp(prefix="eta-upstream-tls-")
    path = os.path.join(d, "eta.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


class UpstreamTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = tempfile.mkdtemp(prefix="eta-upstream-tls-")
        ca_key, cls.ca = make_ca(d, "eta-test-ca")
        _, cls.other_ca = make_ca(d, "eta-other-ca")
        key, cert = make_server_cert(d, "replica", ca_key, cls.ca, "IP:127.0.0.1")
        wrong_key, wrong_cert = make_server_cert(d, "elsewhere", ca_key, cls.ca,
                                                 "DNS:replica.example")
        cls.sim = cls.start_sim(key, cert)
        cls.wrong_host_sim = cls.start_sim(wrong_key, wrong_cert)

    @classmethod
    def start_sim(cls, key, cert):
        sim = etatest.start_sim("--time-scale", "10", "--ssl-keyfile", key, "--ssl-certfile", cert,
                                model=MODEL)
        _cleanup(cls, sim)
        assert sim.url.startswith("https://127.0.0.1:"), sim.url
        return sim

    def router(self, yaml, *replicas):
        args = ["--port", "0", "--admin-port", "0", "--policy", "round-robin", "--config",
                write(yaml)]
        for url in replicas:
            args += ["--replica", url]
        r = RouterProcess(args)
        _cleanup(self, r, check_exit=True)
        return r

    def replica_report(self, router, url):
        status, body = router.admin().get_json("/admin/replicas")
        self.assertEqual(status, 200)
        return next(r for r in body["replicas"] if r["url"] == url)

    def test_requests_streams_and_polls_over_tls(self):
        router = self.router("upstream_tls: {ca_file: %s}\n" % self.ca, self.sim.url)
        c = router.client()
        for _ in range(3):  # keep-alive TLS connections are reused
            r = c.post("/v1/completions", {"model": MODEL, "prompt": "hi", "max_tokens": 4})
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.headers["x-eta-replica"], self.sim.url)
            self.assertEqual(r.json()["usage"]["completion_tokens"], 4)
        s = c.stream("/v1/chat/completions", {"model": MODEL, "max_tokens": 8, "stream": True,
                                              "messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(s.status, 200)
        events = list(s)
        s.close()
        self.assertTrue(events[-1].done)
        self.assertGreaterEqual(len(events), 3)
        status, models = c.get_json("/v1/models")
        self.assertEqual([m["id"] for m in models["data"]], [MODEL])

        def scraped():
            rep = self.replica_report(router, self.sim.url)
            return rep if rep["scrape"]["valid"] and rep["scrape"]["scrapes"] >= 2 else None

        rep = etatest.wait_until(scraped, timeout=5)
        self.assertIsNotNone(rep, "no /metrics scrape over TLS")
        self.assertTrue(rep["healthy"])
        self.assertEqual(rep["models"], [MODEL])
        # The engine's KV capacity came through the TLS scrape.
        self.assertGreater(rep["scrape"]["num_gpu_blocks"], 0)

    def test_model_aliases_over_tls(self):
        # The article's two replicas served over HTTPS behind one public name.
        d = tempfile.mkdtemp(prefix="eta-upstream-tls-")
        ca_key, ca = make_ca(d, "eta-alias-ca")
        key, cert = make_server_cert(d, "replica", ca_key, ca, "IP:127.0.0.1")
        sims = []
        for name in ("llama-2-7b-replica-1", "llama-2-7b-replica-2"):
            sim = etatest.start_sim("--time-scale", "10", "--ssl-keyfile", key,
                                    "--ssl-certfile", cert, model=name)
            _cleanup(self, sim)
            sims.append(sim)
        router = self.router("upstream_tls: {ca_file: %s}\nmodels:\n  - name: llama-2-7b-chat\n"
                             "    served_names: [llama-2-7b-replica-1, llama-2-7b-replica-2]\n"
                             % ca, *[s.url for s in sims])
        c = router.client()
        used = set()
        for _ in range(2):
            s = c.stream("/v1/chat/completions", {
                "model": "llama-2-7b-chat", "max_tokens": 8, "stream": True,
                "messages": [{"role": "user", "content": "What is the capital of France?"}]})
            self.assertEqual(s.status, 200)
            used.add(s.headers["x-eta-replica"])
            events = list(s)
            s.close()
            self.assertTrue(events[-1].done)
            self.assertEqual({e.json()["model"] for e in events[:-1]}, {"llama-2-7b-chat"})
        self.assertEqual(used, {s.url for s in sims})

    def test_a_replica_whose_certificate_does_not_verify_is_unhealthy_with_the_reason(self):
        for ca, sim, reason in [
            (self.other_ca, self.sim, "unable to get local issuer certificate"),
            (self.ca, self.wrong_host_sim, "IP address mismatch"),
        ]:
            router = self.router("upstream_tls: {ca_file: %s}\n" % ca, sim.url)
            rep = self.replica_report(router, sim.url)
            self.assertFalse(rep["healthy"])
            self.assertFalse(rep["routable"])
            self.assertIn("TLS handshake with 127.0.0.1:%d failed" % sim.port, rep["last_error"])
            self.assertIn("certificate verify failed", rep["last_error"])
            self.assertIn(reason, rep["last_error"])
            r = router.client().post("/v1/completions", {"model": MODEL, "prompt": "x"})
            self.assertEqual(r.status, 503, r.body)
            self.assertTrue(etatest.wait_until(
                lambda: any("TLS handshake" in line and reason in line
                            for line in router.stderr_lines), timeout=5), router.stderr_lines)

    def test_verify_false_and_a_replicas_own_tls(self):
        router = self.router("upstream_tls: {ca_file: %s, verify: false}\n" % self.other_ca,
                             self.wrong_host_sim.url)
        r = router.client().post("/v1/completions", {"model": MODEL, "prompt": "x",
                                                     "max_tokens": 2})
        self.assertEqual(r.status, 200, r.body)
        # The replica's own tls wins over upstream_tls.
        router = self.router("upstream_tls: {ca_file: %s}\n"
                             "replicas:\n  - url: %s\n    tls: {ca_file: %s}\n"
                             % (self.other_ca, self.sim.url, self.ca))
        r = router.client().post("/v1/completions", {"model": MODEL, "prompt": "x",
                                                     "max_tokens": 2})
        self.assertEqual(r.status, 200, r.body)

    def test_bad_tls_settings_are_one_line_and_exit_2(self):
        for yaml, message in [
            ("upstream_tls: {ca_file: /nonexistent/ca.pem}\n",
             "replica %s: cannot read TLS CA file /nonexistent/ca.pem" % self.sim.url),
            ("upstream_tls: {ca_file: %s}\n" % write("not a certificate"),
             "replica %s: TLS CA file " % self.sim.url),
            ("upstream_tls: {cert_file: %s}\n" % self.ca,
             "a TLS client certificate needs both cert_file and key_file"),
            ("upstream_tls: {verify: maybe}\n", "upstream_tls.verify must be true or false"),
        ]:
            code, out, err = etatest.run_eta(["route", "--port", "0", "--config", write(yaml),
                                              "--replica", self.sim.url])
            self.assertEqual(code, 2, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(message, err)
        code, out, err = etatest.run_eta(
            ["route", "--port", "0", "--config",
             write("replicas:\n  - {url: 'http://127.0.0.1:1', tls: {ca_file: %s}}\n" % self.ca)])
        self.assertEqual(code, 2, err)
        self.assertIn("tls applies to https:// replicas only", err)


class ClientCertReplica(StubReplica):
    """StubReplica behind TLS that requires a client certificate signed by `ca`."""

    def __init__(self, cert, key, ca):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.load_verify_locations(ca)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.peers = []  # the client certificates' subjects
        super().__init__()
        self.url = self.url.replace("http://", "https://")

    def _serve(self, sock):
        try:
            tls = self.ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self.lock:
            self.peers.append(dict(x[0] for x in tls.getpeercert()["subject"])["commonName"])
        try:
            super()._serve(tls)
        finally:
            tls.close()


class ClientCertificateTest(unittest.TestCase):
    def test_a_client_certificate_is_presented_when_configured(self):
        d = tempfile.mkdtemp(prefix="eta-upstream-tls-")
        ca_key, ca = make_ca(d, "eta-test-ca")
        key, cert = make_server_cert(d, "replica", ca_key, ca, "IP:127.0.0.1")
        client_key, client_cert = make_server_cert(d, "eta-router", ca_key, ca, "DNS:eta-router")
        replica = ClientCertReplica(cert, key, ca)
        self.addCleanup(replica.stop)

        def router(yaml):
            r = RouterProcess(["--port", "0", "--admin-port", "0", "--config", write(yaml),
                               "--replica", replica.url])
            _cleanup(self, r, check_exit=True)
            return r

        r = router("upstream_tls: {ca_file: %s, cert_file: %s, key_file: %s}\n"
                   % (ca, client_cert, client_key))
        resp = r.client().post("/v1/completions", {"model": STUB_MODEL, "prompt": "x"})
        self.assertEqual(resp.status, 200, resp.body)
        self.assertIn("eta-router", replica.peers)
        # Without the certificate the replica refuses the connections: unhealthy, no requests.
        r = router("upstream_tls: {ca_file: %s}\n" % ca)
        status, body = r.admin().get_json("/admin/replicas")
        rep = body["replicas"][0]
        self.assertFalse(rep["healthy"], rep)
        self.assertIn("certificate required", rep["last_error"])
        resp = r.client().post("/v1/completions", {"model": STUB_MODEL, "prompt": "x"})
        self.assertEqual(resp.status, 503, resp.body)


class SimTlsFlagsTest(unittest.TestCase):
    def test_ssl_flags_go_together(self):
        code, out, err = etatest.run_eta(["vllm-sim", "--port", "0", "--model", MODEL,
                                          "--ssl-keyfile", __file__])
        self.assertEqual(code, 2, err)
        self.assertIn("--ssl-keyfile and --ssl-certfile go together", err)


if __name__ == "__main__":
    unittest.main()
