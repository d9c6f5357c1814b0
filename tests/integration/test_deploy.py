"""deploy/kubernetes/: the ConfigMap's router configuration passes `eta route --check-config`,
and --check-config answers a bad configuration with one line and exit code 2."""

import os
import tempfile
import unittest

import etatest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MANIFEST = os.path.join(ROOT, "deploy", "kubernetes", "eta.yaml")


def configmap_config(text):
    """The `eta.yaml: |` block of the ConfigMap, dedented."""
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "eta.yaml: |")
    indent = len(lines[start]) - len(lines[start].lstrip()) + 2
    out = []
    for l in lines[start + 1:]:
        if l.strip() and len(l) - len(l.lstrip()) < indent:
            break
        out.append(l[indent:])
    return "\n".join(out) + "\n"


class CheckConfigTest(unittest.TestCase):
    def check(self, text):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
        self.addCleanup(os.unlink, f.name)
        return (f.name,) + etatest.run_eta(["route", "--check-config", f.name])

    def test_the_configmaps_configuration_is_valid(self):
        with open(MANIFEST) as f:
            cfg = configmap_config(f.read())
        self.assertIn("peer_sync:", cfg)
        self.assertIn("replica_dns:", cfg)
        name, code, out, err = self.check(cfg)
        self.assertEqual(code, 0, err)
        self.assertEqual(out.strip(), "%s: configuration ok (0 replicas, 1 DNS names, policy eta, peer sync)"
                         % name)
        self.assertEqual(err, "")

    def test_a_bad_configuration_is_one_line_and_exit_2(self):
        for text, message in [
            ("polcy: eta\n", "unknown key 'polcy'"),
            ("peer_sync: {url: http://x:4222}\n", "peer_sync.url must be nats://HOST:PORT"),
            ("peer_sync: {url: 'nats://x:4222', cluster: 'a.b'}\n", "peer_sync.cluster must be"),
            ("peer_sync: {url: 'nats://x:4222', heartbeat_s: 5, peer_timeout_s: 2}\n",
             "peer_timeout_s must be longer"),
            ("replicas: [http://h:1, http://h:1/]\n", "duplicate replica"),
        ]:
            name, code, out, err = self.check(text)
            self.assertEqual(code, 2, (text, out, err))
            self.assertEqual(out, "")
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertIn(message, err)
        code, out, err = etatest.run_eta(["route", "--check-config", "/nonexistent/eta.yaml"])
        self.assertEqual(code, 2)
        self.assertEqual(len(err.splitlines()), 1, err)


if __name__ == "__main__":
    unittest.main()
