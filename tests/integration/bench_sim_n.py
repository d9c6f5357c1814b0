"""One request with n=8 samples of a ~3000-token prompt against 8 requests with 8 distinct prompts
on one `eta vllm-sim` (time scale 1, llama-2-7b on h100): prefix-cache hits and the simulated
e2e. Run: ETA_BIN=build/eta python3 tests/integration/bench_sim_n.py (about 2 s)."""
import json, sys, time, threading
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import etatest
MODEL = "sim-model"
def one(c, body):
    s, b = c.post_json("/v1/completions", body)
    assert s == 200, b
    return b
prompt = " ".join("w%d alpha" % (i % 10) for i in range(1000))  # ~2000 tokens
with etatest.start_sim("--time-scale", "1", "--seed", "1") as sim:
    c = sim.client()
    lbl = {"model_name": MODEL, "engine": "0"}
    def snap():
        m = c.metrics()
        return (m.value("vllm:prefix_cache_hits_total", **lbl), m.value("vllm:prefix_cache_queries_total", **lbl),
                m.value("vllm:e2e_request_latency_seconds_sum", **lbl), m.value("vllm:e2e_request_latency_seconds_count", **lbl))
    for label, bodies in [("n=8, one request", [dict(prompt=prompt, n=8, max_tokens=32, ignore_eos=True)]),
                          ("8 requests, 8 distinct prompts", [dict(prompt="p%d " % i + prompt, max_tokens=32, ignore_eos=True) for i in range(8)])]:
        b0 = snap(); t0 = time.monotonic()
        ths = [threading.Thread(target=one, args=(sim.client(), b)) for b in bodies]
        [t.start() for t in ths]; [t.join() for t in ths]
        wall = time.monotonic() - t0; b1 = snap()
        print("%-32s wall %.3f s, prefix hits %d of %d queried tokens, mean e2e (sim) %.3f s over %d sequences" % (
            label, wall, b1[0]-b0[0], b1[1]-b0[1], (b1[2]-b0[2])/(b1[3]-b0[3]), b1[3]-b0[3]))
