"""`eta vllm-sim` with vLLM's own serve command line (issue 16 item 1): the article's
`python -m vllm.entrypoints.openai.api_server` flags, `serve MODEL`, --served-model-name, the
ignored-flags line, unknown flags, the KV blocks that --gpu-memory-utilization, --block-size,
--kv-cache-dtype and --tensor-parallel-size give (vllm:cache_config_info), --disable-log-stats.

The KV-block figures are recomputed here from the profiles' published numbers (80 GiB H100,
the shapes' parameter counts and KV heads), the way vLLM sizes its cache:
floor((GiB x mem x util - weights / TP - activation reserve) / (block x KV bytes per GPU)).
"""

import math
import unittest

import etatest

GIB = 1024 ** 3
H100_GIB = 80

# (params, layers, kv_heads, head_dim, activation_reserve_gib) from data/profiles/archs.yaml.
LLAMA2_7B = (6.74e9, 32, 32, 128, 1.85)
LLAMA31_70B = (70.55e9, 80, 8, 128, 4.0)


def expected_blocks(shape, util=0.9, block=16, tp=1, kv_bytes=2):
    params, layers, kv_heads, head_dim, reserve = shape
    usable = H100_GIB * GIB * util - params * 2 / tp - reserve * GIB
    per_token = 2 * layers * max(1, kv_heads // tp) * head_dim * kv_bytes
    return math.floor(usable / (block * per_token))


def article_flags(port, name):
    # The article's command line (../shared/seed-article.txt), with the host on loopback for
    # the test: --model lmsys/llama-2-7b-chat-hf --host 0.0.0.0 --port 8000
    # --tensor-parallel-size 1 --gpu-memory-utilization 0.9 --served-model-name NAME
    return ["--model", "lmsys/llama-2-7b-chat-hf", "--host", "127.0.0.1", "--port", str(port),
            "--tensor-parallel-size", "1", "--gpu-memory-utilization", "0.9",
            "--served-model-name", name]


def cache_info(sim):
    c = sim.client()
    try:
        m = c.metrics()
        return m.find("vllm:cache_config_info")[0][0]
    finally:
        c.close()


def completion(c, model, prompt="What is the capital of France?"):
    return c.post("/v1/completions", {"model": model, "prompt": prompt, "max_tokens": 4})


class ArticleCommandLineTest(unittest.TestCase):
    def test_the_article_replica_starts_and_serves_its_name(self):
        port = etatest.free_port()
        with etatest.EtaProcess(["vllm-sim"] + article_flags(port, "llama-2-7b-replica-1")
                                + ["--time-scale", "20"]) as sim:
            self.assertEqual(sim.port, port)
            c = sim.client()
            _, models = c.get_json("/v1/models")
            self.assertEqual([m["id"] for m in models["data"]], ["llama-2-7b-replica-1"])
            # vLLM: the card's root is the model path, the id the served name.
            self.assertEqual(models["data"][0]["root"], "lmsys/llama-2-7b-chat-hf")
            r = completion(c, "llama-2-7b-replica-1")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["model"], "llama-2-7b-replica-1")
            # --model is a path, not a served name, once --served-model-name is given.
            self.assertEqual(completion(c, "lmsys/llama-2-7b-chat-hf").status, 404)
            c.close()
            # The shape came from the model name: llama-2-7b's blocks at 0.9 on an H100.
            info = cache_info(sim)
            self.assertEqual(int(info["num_gpu_blocks"]), expected_blocks(LLAMA2_7B))
            self.assertEqual(info["gpu_memory_utilization"], "0.9")
        self.assertEqual(sim.stderr_lines, [])  # nothing ignored, nothing to say

    def test_model_alone_is_the_served_name(self):
        with etatest.EtaProcess(["vllm-sim", "--port", "0", "--model",
                                 "meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "8k"]) as sim:
            c = sim.client()
            _, models = c.get_json("/v1/models")
            self.assertEqual([m["id"] for m in models["data"]], ["meta-llama/Llama-3.1-8B-Instruct"])
            self.assertEqual(models["data"][0]["max_model_len"], 8000)
            r = completion(c, "meta-llama/Llama-3.1-8B-Instruct")
            self.assertEqual(r.status, 200, r.body)
            c.close()
            # Llama 3.1 8B's GQA: 128 KiB per token, 4x llama-2-7b's blocks per byte.
            info = cache_info(sim)
            params, reserve = 8.03e9, 2.5
            usable = H100_GIB * GIB * 0.9 - params * 2 - reserve * GIB
            self.assertEqual(int(info["num_gpu_blocks"]), math.floor(usable / (16 * 128 * 1024)))


class ServeCommandTest(unittest.TestCase):
    def test_serve_model_like_vllm_serve(self):
        with etatest.EtaProcess(["vllm-sim", "serve", "meta-llama/Llama-2-7b-chat-hf", "--port",
                                 "0", "--served-model-name", "chat", "chat-alias"]) as sim:
            c = sim.client()
            _, models = c.get_json("/v1/models")
            self.assertEqual([m["id"] for m in models["data"]], ["chat", "chat-alias"])
            self.assertEqual({m["root"] for m in models["data"]}, {"meta-llama/Llama-2-7b-chat-hf"})
            # Every served name is accepted; the first is the one responses carry (vLLM).
            for name in ("chat", "chat-alias"):
                r = completion(c, name)
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.json()["model"], "chat")
            self.assertEqual(completion(c, "other").status, 404)
            c.close()
            mc = sim.client()
            m = mc.metrics()
            mc.close()
            self.assertEqual({labels["model_name"] for labels, _ in m.find("vllm:num_requests_running")},
                             {"chat"})

    def test_a_bare_model_tag_and_no_model_at_all(self):
        with etatest.EtaProcess(["vllm-sim", "m-tag", "--port", "0"]) as sim:
            c = sim.client()
            _, models = c.get_json("/v1/models")
            self.assertEqual([m["id"] for m in models["data"]], ["m-tag"])
            c.close()
        for args in (["vllm-sim", "--port", "0"], ["vllm-sim", "serve", "--port", "0"],
                     ["vllm-sim", "serve", "a", "b", "--port", "0"]):
            code, out, err = etatest.run_eta(args)
            self.assertEqual(code, 2, (args, err))
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertEqual(out, "")


class IgnoredAndUnknownFlagsTest(unittest.TestCase):
    def test_flags_that_change_nothing_are_listed_in_one_line(self):
        with etatest.EtaProcess(["vllm-sim", "--port", "0", "--model", "m",
                                 "--trust-remote-code", "--download-dir", "/tmp/x",
                                 "--enforce-eager", "--no-enable-log-requests",
                                 "--uvicorn-log-level", "warning", "--swap-space", "8",
                                 "--disable-log-requests"]) as sim:
            c = sim.client()
            self.assertEqual(c.get("/health").status, 200)
            c.close()
            etatest.wait_until(lambda: sim.stderr_lines, timeout=5)
            self.assertEqual(len(sim.stderr_lines), 1, sim.stderr_lines)
            line = sim.stderr_lines[0].strip()
            self.assertTrue(line.startswith("eta vllm-sim: ignored vLLM flags"), line)
            listed = line.split(": ", 2)[2].split(", ")
            self.assertEqual(listed, ["--trust-remote-code", "--enforce-eager", "--download-dir",
                                      "--swap-space", "--no-enable-log-requests",
                                      "--disable-log-requests", "--uvicorn-log-level"])

    def test_unknown_and_unsimulated_flags_exit_2(self):
        bad = [
            ["--no-such-vllm-flag"],
            ["--tensor-parallel-size", "3", "--model", "meta-llama/Llama-3.1-70B"],  # 64 heads
            ["--pipeline-parallel-size", "2"],
            ["--data-parallel-size", "2"],
            ["--quantization", "awq"],
            ["--config", "serve.yaml"],
            ["--kv-cache-dtype", "int4"],
            ["--block-size", "24"],
            ["--gpu-memory-utilization", "1.5"],
            ["--dtype", "fp4"],
            ["--max-model-len", "1.5K"],
        ]
        for extra in bad:
            args = ["vllm-sim", "--port", "0", "--model", "m"] + extra
            code, out, err = etatest.run_eta(args)
            self.assertEqual(code, 2, (extra, err))
            self.assertEqual(len(err.strip().splitlines()), 1, (extra, err))
            self.assertEqual(out, "", extra)
        code, _, err = etatest.run_eta(["vllm-sim", "--port", "0", "--model", "m",
                                        "--tensor-parallel-size", "3", "--arch", "llama-3.1-70b"])
        self.assertIn("must be divisible by tensor parallel size (3)", err)
        # 70B weights on one GPU leave no KV cache (vLLM refuses to start too); on two, the
        # cache is smaller than one 131072-token sequence.
        for extra, says in ((["--tensor-parallel-size", "1"], "no KV cache blocks fit"),
                            (["--tensor-parallel-size", "2"], "larger than the maximum number")):
            code, out, err = etatest.run_eta(["vllm-sim", "--port", "0", "--model",
                                              "meta-llama/Llama-3.1-70B-Instruct"] + extra)
            self.assertEqual(code, 2, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(says, err)


class KvBlocksTest(unittest.TestCase):
    def blocks(self, *extra, model="lmsys/llama-2-7b-chat-hf"):
        with etatest.EtaProcess(["vllm-sim", "--port", "0", "--model", model] + list(extra)) as sim:
            info = cache_info(sim)
        return info

    def test_utilisation_block_size_and_fp8_set_the_blocks_as_computed(self):
        base = self.blocks()
        self.assertEqual(int(base["num_gpu_blocks"]), expected_blocks(LLAMA2_7B))
        self.assertEqual(base["block_size"], "16")
        self.assertEqual(base["cache_dtype"], "auto")
        half = self.blocks("--gpu-memory-utilization", "0.5")
        self.assertEqual(int(half["num_gpu_blocks"]), expected_blocks(LLAMA2_7B, util=0.5))
        self.assertEqual(half["gpu_memory_utilization"], "0.5")
        big = self.blocks("--block-size", "32")
        self.assertEqual(int(big["num_gpu_blocks"]), expected_blocks(LLAMA2_7B, block=32))
        self.assertEqual(big["block_size"], "32")
        fp8 = self.blocks("--kv-cache-dtype", "fp8")
        self.assertEqual(int(fp8["num_gpu_blocks"]), expected_blocks(LLAMA2_7B, kv_bytes=1))
        self.assertEqual(fp8["cache_dtype"], "fp8")
        self.assertAlmostEqual(int(fp8["num_gpu_blocks"]) / int(base["num_gpu_blocks"]), 2, delta=0.01)
        off = self.blocks("--no-enable-prefix-caching")
        self.assertEqual(off["enable_prefix_caching"], "False")
        fixed = self.blocks("--num-gpu-blocks-override", "500", "--max-model-len", "4096")
        self.assertEqual(fixed["num_gpu_blocks"], "500")
        self.assertEqual(fixed["num_gpu_blocks_override"], "500")
        # --kv-cache-memory-bytes: 1 GiB / (16 x 512 KiB) = 128 blocks per GPU.
        kvb = self.blocks("--kv-cache-memory-bytes", "1G", "--max-model-len", "2K")
        self.assertEqual(kvb["num_gpu_blocks"], "128")

    def test_tensor_parallel_70b(self):
        for tp in (2, 4, 8):
            info = self.blocks("--tensor-parallel-size", str(tp), "--max-model-len", "4096",
                               model="meta-llama/Llama-3.1-70B-Instruct")
            self.assertEqual(int(info["num_gpu_blocks"]), expected_blocks(LLAMA31_70B, tp=tp), tp)


class DisableLogStatsTest(unittest.TestCase):
    def test_no_vllm_series_in_metrics(self):
        with etatest.EtaProcess(["vllm-sim", "--port", "0", "--model", "m",
                                 "--disable-log-stats", "--time-scale", "20"]) as sim:
            c = sim.client()
            self.assertEqual(completion(c, "m").status, 200)
            r = c.get("/metrics")
            self.assertEqual(r.status, 200)
            self.assertNotIn("vllm:", r.text())
            c.close()
        with etatest.start_sim("--time-scale", "20") as sim:
            c = sim.client()
            self.assertIn("vllm:num_requests_running", c.get("/metrics").text())
            c.close()


if __name__ == "__main__":
    unittest.main()
