"""The article's setup (../shared/seed-article.txt), line for line, as README's first worked
example: two `eta vllm-sim` started with the article's vLLM command line (ports chosen here),
`eta route` with the model alias in front, and the article's question asked through the official
OpenAI client (npm `openai`, node). Both replicas serve (their request logs), and every answer --
and every stream chunk -- names the public model.

The SDK comes from tests/sdk (npm `openai`, `npm ci` when node_modules is missing)."""

import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import etatest
from test_aliases import received, start_router
from test_route import _cleanup

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
PUBLIC = "llama-2-7b-chat"
SERVED = ["llama-2-7b-replica-1", "llama-2-7b-replica-2"]
ROUTER_YAML = """\
models:
  - name: llama-2-7b-chat
    served_names: [llama-2-7b-replica-1, llama-2-7b-replica-2]
"""


def sdk_dir():
    """The npm folder that depends on `openai`: $ETA_OPENAI_SDK_DIR, else the tests/*/ folder
    whose package.json lists it; None if there is none."""
    if os.environ.get("ETA_OPENAI_SDK_DIR"):
        return os.environ["ETA_OPENAI_SDK_DIR"]
    for pkg in sorted(glob.glob(os.path.join(TESTS, "*", "package.json"))):
        with open(pkg) as f:
            meta = json.load(f)
        if "openai" in {**meta.get("dependencies", {}), **meta.get("devDependencies", {})}:
            return os.path.dirname(pkg)
    return None


def ensure_sdk(d):
    etatest.npm_ci(d, "openai")



class ArticleTest(unittest.TestCase):
    def test_the_articles_setup(self):
        d = sdk_dir()
        self.assertIsNotNone(d, "no tests/*/package.json lists the openai SDK")
        ensure_sdk(d)
        node = shutil.which("node")
        if not node:
            self.fail("node is missing: run scripts/install-deps.sh")
        sims = []
        for name in SERVED:
            log = os.path.join(tempfile.mkdtemp(prefix="eta-article-"), "requests.log")
            # The article's command line, with a port chosen by the simulator (0).
            sim = etatest.EtaProcess([
                "vllm-sim", "--model", "lmsys/llama-2-7b-chat-hf", "--host", "127.0.0.1",
                "--port", "0", "--tensor-parallel-size", "1", "--gpu-memory-utilization", "0.9",
                "--served-model-name", name,
                "--time-scale", "10", "--request-log", log])
            _cleanup(self, sim)
            sim.log = log
            sims.append(sim)
        router = start_router(self, sims, ROUTER_YAML)
        p = subprocess.run([node, os.path.join(HERE, "article_client.mjs"), d,
                            router.url + "/v1", PUBLIC],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual([a["model"] for a in out["answers"]], [PUBLIC] * 4)
        self.assertTrue(all(a["content"] for a in out["answers"]))
        self.assertEqual({a["replica"] for a in out["answers"]}, {s.url for s in sims})
        self.assertEqual(out["stream"]["models"], [PUBLIC])
        self.assertTrue(out["stream"]["text"])
        self.assertEqual(out["models"], [PUBLIC])
        # Both replicas served (round-robin: 4 answers + 1 stream over two replicas).
        counts = [received(s.log) for s in sims]
        self.assertEqual(sum(counts), 5)
        self.assertTrue(all(n >= 2 for n in counts), counts)


if __name__ == "__main__":
    unittest.main()
