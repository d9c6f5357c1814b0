"""Replicas from DNS (issue 13): `replica_dns` against a real `dnsmasq` on a loopback port whose
records change during the test (hosts file rewritten + SIGHUP): a record that appears becomes a
replica that gets traffic, a record that vanishes is drained (its in-flight stream finishes)
and then removed. Prints the time from a record's appearance to the first request routed there
and from its removal to the drain."""

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import etatest
from etatest import etalib
from test_route import RouterProcess

MODEL = "sim-model"
DNSMASQ = "/usr/sbin/dnsmasq"
NAME = "vllm.eta-test"


def free_port_on(hosts, udp):
    """A port free a moment ago on every one of `hosts` (UDP and TCP when udp, else TCP)."""
    while True:
        port = etatest.free_port(udp=udp)
        try:
            kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if udp else (socket.SOCK_STREAM,)
            for host in hosts:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                for kind in kinds:
                    with socket.socket(family, kind) as s:
                        s.bind((host, port))
            return port
        except OSError:
            continue


class Dnsmasq:
    """A real dnsmasq serving self.hosts on a loopback address (mixed into the tests; they set
    self.tmp, self.hosts and self.dns_log first)."""

    def start_dns(self, listen, *extra):
        """dnsmasq binds UDP and TCP on its port; a port free for one may be taken for the
        other (or taken again before dnsmasq binds it): then another port."""
        for _ in range(10):
            self.dns_port = free_port_on([listen], udp=True)
            self.dns = subprocess.Popen(
                [DNSMASQ, "--keep-in-foreground", "--port", str(self.dns_port), "--listen-address",
                 listen, "--bind-interfaces", "--no-resolv", "--no-hosts", "--addn-hosts",
                 self.hosts, "--local=/eta-test/", "--pid-file=", "--log-facility=-", *extra],
                stdout=subprocess.DEVNULL, stderr=self.dns_log)
            if etalib.wait_port(self.dns_port, self.dns, timeout=5, host=listen):
                self.addCleanup(self.stop_dns)
                return
            self.dns.wait(timeout=5)
        self.fail("dnsmasq did not start on %s: %s" % (listen, self.dnsmasq_log()))

    def dnsmasq_log(self):
        with open(os.path.join(self.tmp, "dnsmasq.log")) as f:
            return f.read()

    def stop_dns(self):
        self.dns.terminate()
        self.dns.wait(timeout=5)


class DnsDiscoveryTest(Dnsmasq, unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="eta-dns-")
        os.chmod(self.tmp, 0o755)  # dnsmasq started as root reads the hosts file as nobody
        self.hosts = os.path.join(self.tmp, "hosts")
        self.port = etatest.free_port()  # both replicas listen on it (127.0.0.1 and 127.0.0.2)
        self.sims = [self.start_sim(i) for i in range(2)]
        self.write_hosts(["127.0.0.1"])
        self.dns_log = open(os.path.join(self.tmp, "dnsmasq.log"), "w")
        self.addCleanup(self.dns_log.close)
        self.start_dns("127.0.0.1")
        self.config = os.path.join(self.tmp, "eta.yaml")
        with open(self.config, "w") as f:
            f.write("replica_dns: [{name: %s, port: %d, interval_s: 0.2}]\n" % (NAME, self.port))
            f.write("dns_server: 127.0.0.1:%d\n" % self.dns_port)

    def start_sim(self, i):
        sim = etatest.EtaProcess(["vllm-sim", "--host", "127.0.0.%d" % (i + 1), "--port",
                                  str(self.port), "--model", MODEL, "--time-scale", "1"])
        self.addCleanup(sim.stop)
        return sim

    def write_hosts(self, addresses):
        with open(self.hosts + ".new", "w") as f:
            for a in addresses:
                f.write("%s %s\n" % (a, NAME))
        os.chmod(self.hosts + ".new", 0o644)
        os.replace(self.hosts + ".new", self.hosts)

    def reload_dns(self, addresses):
        self.write_hosts(addresses)
        self.dns.send_signal(signal.SIGHUP)
        return time.monotonic()

    def replicas(self, router):
        c = router.admin()
        try:
            status, body = c.get_json("/admin/replicas")
            return {r["url"]: r for r in body["replicas"]}
        finally:
            c.close()

    def test_records_that_appear_and_vanish(self):
        code, out, err = etatest.run_eta(["route", "--check-config", self.config])
        self.assertEqual(code, 0, err)
        router = RouterProcess(["--config", self.config, "--port", "0", "--admin-port", "0",
                                "--policy", "round-robin"])
        self.addCleanup(router.stop)
        a = "http://127.0.0.1:%d" % self.port
        b = "http://127.0.0.2:%d" % self.port
        self.assertTrue(etatest.wait_until(
            lambda: self.replicas(router).get(a, {}).get("routable"), timeout=5),
            (self.replicas(router), "".join(router.stderr_lines), self.dnsmasq_log()))
        self.assertNotIn(b, self.replicas(router))
        c = router.client()
        body = {"model": MODEL, "prompt": "hello", "max_tokens": 2}

        def replica_of_one():
            r = c.request("POST", "/v1/completions", body)
            self.assertEqual(r.status, 200, r.text())
            return r.headers.get("x-eta-replica")

        self.assertEqual(replica_of_one(), a)
        # A record appears: the first request routed there.
        t0 = self.reload_dns(["127.0.0.1", "127.0.0.2"])
        seen = etatest.wait_until(lambda: replica_of_one() == b, timeout=5, interval=0.01)
        appeared = time.monotonic() - t0
        self.assertTrue(seen)
        # A stream in flight on a, then a's record vanishes: a drains (the stream finishes,
        # nothing new goes there) and is removed.
        result = {}

        def stream():
            sc = router.client(timeout=60)
            # round robin: find a request that lands on a
            s = sc.stream("/v1/completions", {"model": MODEL, "prompt": "x", "max_tokens": 400,
                                              "ignore_eos": True, "stream": True})
            result["replica"] = s.headers.get("x-eta-replica")
            events = list(s)
            result["done"] = bool(events) and events[-1].done
            s.close()
            sc.close()

        for _ in range(4):
            t = threading.Thread(target=stream, daemon=True)
            result.clear()
            t.start()
            etatest.wait_until(lambda: "replica" in result, timeout=5)
            if result.get("replica") == a:
                break
            t.join(timeout=60)
        self.assertEqual(result.get("replica"), a)
        t1 = self.reload_dns(["127.0.0.2"])
        self.assertTrue(etatest.wait_until(
            lambda: self.replicas(router).get(a, {}).get("removing"), timeout=5, interval=0.01))
        drained = time.monotonic() - t1
        for _ in range(6):
            self.assertEqual(replica_of_one(), b)
        self.assertIn(a, self.replicas(router))  # still there while its stream runs
        t.join(timeout=60)
        self.assertTrue(result.get("done"), result)
        self.assertTrue(etatest.wait_until(lambda: a not in self.replicas(router), timeout=5))
        c.close()
        log = "".join(router.stderr_lines)
        self.assertIn("record %s appeared" % b, log)
        self.assertIn("record %s vanished: draining" % a, log)
        print("DNS: record appeared -> first request there %.0f ms; record removed -> draining "
              "%.0f ms (interval_s 0.2)" % (appeared * 1000, drained * 1000))

    def test_bad_dns_settings_are_one_line_and_exit_2(self):
        for text, message in [
            ("dns_server: localhost:53\n", "dns_server must be an IP address"),
            ("dns_server: '[::1]:0'\n", "the port must be 1-65535"),
            ("dns_server: '[::1'\n", "no ']' after the IPv6 address"),
            ("dns_server: '::1:53:x'\n", "not an IP address"),
            ("dns_server: '[fe80::1%eth0]:53'\n", "zone ids"),
            ("dns_server: [::1]\n", "unquoted [...] is a YAML list"),
            ("dns_server: [::1]:5353\n", "a value beginning with '[' must be quoted"),
            ("replica_dns: [{port: 8000}]\n", "needs a name"),
            ("replica_dns: [{name: x, prot: 8000}]\n", "unknown key 'prot'"),
            ("replica_dns: [{name: x, gpu: z80}]\n", "replica_dns x:"),
        ]:
            path = os.path.join(self.tmp, "bad.yaml")
            with open(path, "w") as f:
                f.write(text)
            code, out, err = etatest.run_eta(["route", "--check-config", path])
            self.assertEqual(code, 2, (text, err))
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(message, err)


def ipv6_loopback():
    """'' when ::1 can be bound (UDP and TCP), else why not."""
    if not socket.has_ipv6:
        return "Python has no IPv6 (socket.has_ipv6 is False)"
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        try:
            with socket.socket(socket.AF_INET6, kind) as s:
                s.bind(("::1", 0))
        except OSError as e:
            return "cannot bind ::1 (%s): no IPv6 loopback on this machine" % e
    return ""


class Ipv6DnsTest(Dnsmasq, unittest.TestCase):
    """dns_server on IPv6 ([::1]:PORT: the resolver's query socket must be AF_INET6), and
    replicas from AAAA records (http://[::1]:PORT) beside A records of the same name."""

    def setUp(self):
        why = ipv6_loopback()
        if why:
            self.skipTest(why)
        self.tmp = tempfile.mkdtemp(prefix="eta-dns6-")
        os.chmod(self.tmp, 0o755)
        self.hosts = os.path.join(self.tmp, "hosts")
        with open(self.hosts, "w") as f:
            f.write("::1 %s\n127.0.0.1 %s\n" % (NAME, NAME))
        os.chmod(self.hosts, 0o644)
        self.port = free_port_on(["127.0.0.1", "::1"], udp=False)
        for host in ("::1", "127.0.0.1"):
            sim = etatest.EtaProcess(["vllm-sim", "--host", host, "--port", str(self.port),
                                      "--model", MODEL, "--time-scale", "1"])
            self.addCleanup(sim.stop)
        self.dns_log = open(os.path.join(self.tmp, "dnsmasq.log"), "w")
        self.addCleanup(self.dns_log.close)
        self.start_dns("::1", "--log-queries")

    def test_ipv6_dns_server_and_aaaa_records(self):
        config = os.path.join(self.tmp, "eta.yaml")
        with open(config, "w") as f:
            f.write("replica_dns: [{name: %s, port: %d, interval_s: 0.2}]\n" % (NAME, self.port))
            f.write("dns_server: '[::1]:%d'\n" % self.dns_port)
        code, out, err = etatest.run_eta(["route", "--check-config", config])
        self.assertEqual(code, 0, err)
        router = RouterProcess(["--config", config, "--port", "0", "--admin-port", "0",
                                "--policy", "round-robin"])
        self.addCleanup(router.stop)
        v6 = "http://[::1]:%d" % self.port
        v4 = "http://127.0.0.1:%d" % self.port

        def replicas():
            c = router.admin()
            try:
                status, body = c.get_json("/admin/replicas")
                return {r["url"]: r for r in body["replicas"]}
            finally:
                c.close()

        self.assertTrue(etatest.wait_until(
            lambda: all(replicas().get(u, {}).get("routable") for u in (v6, v4)), timeout=10),
            (replicas(), "".join(router.stderr_lines), self.dnsmasq_log()))
        # Both were asked of the server on ::1 (dnsmasq logs each query with its client).
        log = self.dnsmasq_log()
        self.assertIn("query[A] %s from ::1" % NAME, log)
        self.assertIn("query[AAAA] %s from ::1" % NAME, log)
        c = router.client()
        seen = set()
        for _ in range(6):
            r = c.request("POST", "/v1/completions",
                          {"model": MODEL, "prompt": "hello", "max_tokens": 2})
            self.assertEqual(r.status, 200, r.text())
            seen.add(r.headers.get("x-eta-replica"))
        c.close()
        self.assertEqual(seen, {v6, v4})  # the AAAA record's replica serves too
        self.assertIn("record %s appeared" % v6, "".join(router.stderr_lines))


if __name__ == "__main__":
    unittest.main()
