// Tensor parallelism and the KV dtype in the engine model (issue 16 item 2): KV blocks per GPU,
// step-time scaling, the all-reduce term, vLLM's start-up checks, and the 70B shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "engine/engine.hpp"
#include "engine/profile.hpp"

namespace eta::engine {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

EngineConfig config_for(const std::string& arch, const std::string& gpu, int tp = 1) {
  EngineConfig c;
  std::string error;
  EXPECT_TRUE(make_config(ProfileSet::builtin(), arch, gpu, c, error)) << error;
  c.tensor_parallel_size = tp;
  return c;
}

TEST(EngineTensorParallel, SeventyBShapesAreBuiltIn) {
  const ProfileSet& p = ProfileSet::builtin();
  for (const char* name : {"llama-2-70b", "llama-3.1-70b"}) {
    ASSERT_TRUE(p.archs.count(name)) << name;
    const ModelArch& a = p.archs.at(name);
    EXPECT_EQ(a.layers, 80);
    EXPECT_EQ(a.hidden, 8192);
    EXPECT_EQ(a.q_heads, 64);
    EXPECT_EQ(a.kv_heads, 8);
    EXPECT_DOUBLE_EQ(a.kv_bytes_per_token(), 320.0 * 1024);  // 2 x 80 x 8 x 128 x 2
  }
  EXPECT_EQ(p.archs.at("llama-3.1-70b").vocab, 128256);
  EXPECT_EQ(p.archs.at("llama-2-70b").max_model_len, 4096);
  // Both GPU profiles carry the interconnect TP needs.
  EXPECT_DOUBLE_EQ(p.gpus.at("h100").allreduce_busbw_gbps, 365);
  EXPECT_DOUBLE_EQ(p.gpus.at("h100").allreduce_latency_us, 6);
  EXPECT_GT(p.gpus.at("a100").allreduce_busbw_gbps, 0);
}

TEST(EngineTensorParallel, KvBlocksPerGpuAsVllmComputesThem) {
  // vLLM sizes every worker's cache alike: (mem x util - weights/TP - activations) over the
  // bytes one block takes on one GPU (its share of the KV heads).
  const ModelArch& a = ProfileSet::builtin().archs.at("llama-3.1-70b");
  for (int tp : {1, 2, 4, 8}) {
    const EngineConfig c = config_for("llama-3.1-70b", "h100", tp);
    const double usable = 80 * kGiB * 0.9 - a.params * 2 / tp - a.activation_reserve_gib * kGiB;
    const double block_bytes = 16.0 * 2 * 80 * (8 / tp) * 128 * 2;
    const int expected = usable > 0 ? static_cast<int>(std::floor(usable / block_bytes)) : 0;
    EXPECT_EQ(c.derived_num_gpu_blocks(), expected) << "tp " << tp;
    EXPECT_EQ(c.kv_heads_per_gpu(), 8 / tp);
  }
  // 141 GB of weights do not fit on one 80 GB card; on two they leave a small cache.
  EXPECT_EQ(config_for("llama-3.1-70b", "h100", 1).derived_num_gpu_blocks(), 0);
  const int tp2 = config_for("llama-3.1-70b", "h100", 2).derived_num_gpu_blocks();
  const int tp4 = config_for("llama-3.1-70b", "h100", 4).derived_num_gpu_blocks();
  const int tp8 = config_for("llama-3.1-70b", "h100", 8).derived_num_gpu_blocks();
  EXPECT_GT(tp2, 500);
  // Each doubling halves the KV bytes per GPU and frees weight memory: more than twice the blocks.
  EXPECT_GT(tp4, 2 * tp2);
  EXPECT_GT(tp8, 2 * tp4);
}

TEST(EngineTensorParallel, KvHeadsAreReplicatedBeyondTheirCount) {
  // TP 16 > 8 KV heads: vLLM keeps one KV head per GPU (max(1, 8 / 16)).
  const EngineConfig c = config_for("llama-3.1-70b", "h100", 16);
  EXPECT_EQ(c.kv_heads_per_gpu(), 1);
  EXPECT_DOUBLE_EQ(c.kv_bytes_per_token_per_gpu(), 2.0 * 80 * 1 * 128 * 2);
}

TEST(EngineTensorParallel, Fp8KvCacheHalvesKvBytes) {
  EngineConfig c = config_for("llama-2-7b", "h100");
  const double auto_bytes = c.kv_bytes_per_token_per_gpu();
  const int auto_blocks = c.derived_num_gpu_blocks();
  EXPECT_DOUBLE_EQ(auto_bytes, 512.0 * 1024);
  for (const char* fp8 : {"fp8", "fp8_e4m3", "fp8_e5m2"}) {
    c.kv_cache_dtype = fp8;
    EXPECT_EQ(c.kv_cache_dtype_bytes(), 1);
    EXPECT_DOUBLE_EQ(c.kv_bytes_per_token_per_gpu(), auto_bytes / 2);
    // Same usable memory, half the bytes per block: twice the blocks (floor of each).
    EXPECT_NEAR(c.derived_num_gpu_blocks(), 2 * auto_blocks, 1);
  }
  c.kv_cache_dtype = "bfloat16";
  EXPECT_EQ(c.derived_num_gpu_blocks(), auto_blocks);
  // The decode-attention read halves too.
  c.kv_cache_dtype = "fp8";
  const StepTimeModel fp8(c.resolved());
  const StepTimeModel ref(config_for("llama-2-7b", "h100").resolved());
  EXPECT_NEAR(fp8.decode_attention_ms(100000), ref.decode_attention_ms(100000) / 2, 1e-12);
}

TEST(EngineTensorParallel, TpOneIsTheModelWithoutTp) {
  // TP 1 and "auto" change nothing: no all-reduce, the arch's own KV bytes, and the exact same
  // step times as a config that never heard of TP.
  for (const char* arch : {"llama-2-7b", "llama-3.1-8b"}) {
    EngineConfig plain;
    std::string error;
    ASSERT_TRUE(make_config(ProfileSet::builtin(), arch, "h100", plain, error));
    EngineConfig tp1 = config_for(arch, "h100", 1);
    tp1.kv_cache_dtype = "auto";
    EXPECT_EQ(tp1.kv_bytes_per_token_per_gpu(), tp1.arch.kv_bytes_per_token());
    const StepTimeModel a(plain.resolved());
    const StepTimeModel b(tp1.resolved());
    EXPECT_EQ(b.allreduce_ms(4096), 0);
    for (int t : {1, 37, 512, 8192}) {
      BatchShape s;
      s.num_tokens = t;
      s.num_sampled = std::min(t, 64);
      s.decode_kv_tokens = 1000LL * t;
      s.prefill_attn_pairs = 3.5 * t * t;
      s.prefill_kv_tokens = 17LL * t;
      EXPECT_EQ(a.step_ms(s), b.step_ms(s)) << arch << " " << t;
    }
  }
}

TEST(EngineTensorParallel, StepComponentsSplitOverGpus) {
  const StepTimeModel one(config_for("llama-3.1-70b", "h100", 1).resolved());
  for (int tp : {2, 4, 8}) {
    const StepTimeModel m(config_for("llama-3.1-70b", "h100", tp).resolved());
    for (int t : {1, 256, 4096}) {
      EXPECT_NEAR(m.linear_ms(t), one.linear_ms(t) / tp, 1e-9) << tp;
    }
    EXPECT_NEAR(m.lm_head_ms(1), one.lm_head_ms(1) / tp, 1e-12);
    EXPECT_NEAR(m.lm_head_ms(512), one.lm_head_ms(512) / tp, 1e-12);
    EXPECT_NEAR(m.decode_attention_ms(50000), one.decode_attention_ms(50000) / tp, 1e-12);
    EXPECT_NEAR(m.prefill_attention_ms(1e7, 3000), one.prefill_attention_ms(1e7, 3000) / tp, 1e-12);
    EXPECT_DOUBLE_EQ(m.overhead_ms(), one.overhead_ms());
  }
}

TEST(EngineTensorParallel, AllReduceTermIsTwoRingAllReducesPerLayer) {
  for (int tp : {2, 4, 8}) {
    const StepTimeModel m(config_for("llama-3.1-70b", "h100", tp).resolved());
    for (int t : {1, 128, 8192}) {
      // 2 x 80 layers x (6 us + 2(N-1)/N x t x 8192 x 2 bytes / 365 GB/s), in ms.
      const double bytes = t * 8192.0 * 2;
      const double expected = 2 * 80 * (6e-3 + 2.0 * (tp - 1) / tp * bytes / (365e9) * 1e3);
      EXPECT_NEAR(m.allreduce_ms(t), expected, 1e-9) << tp << " " << t;
    }
    EXPECT_EQ(m.allreduce_ms(0), 0);
    BatchShape s;
    s.num_tokens = 64;
    s.num_sampled = 64;
    s.decode_kv_tokens = 64 * 2000;
    const double sum = m.linear_ms(64) + m.lm_head_ms(64) + m.decode_attention_ms(64 * 2000) +
                       m.prefill_attention_ms(0, 0) + m.overhead_ms() + m.allreduce_ms(64);
    EXPECT_NEAR(m.step_ms(s), sum, 1e-9);
  }
  // A one-token step on 8 GPUs pays ~1 ms, nearly all latency (160 x 6 us = 0.96 ms; the
  // 16 KiB of activations add 13 us).
  const StepTimeModel tp8(config_for("llama-3.1-70b", "h100", 8).resolved());
  EXPECT_NEAR(tp8.allreduce_ms(1), 0.96, 0.02);
}

TEST(EngineTensorParallel, DecodeGetsFasterWithMoreGpusButNotLinearly) {
  double previous = 1e9;
  for (int tp : {2, 4, 8}) {
    const StepTimeModel m(config_for("llama-3.1-70b", "h100", tp).resolved());
    BatchShape s;
    s.num_tokens = 1;
    s.num_sampled = 1;
    s.decode_kv_tokens = 1000;
    const double ms = m.step_ms(s);
    EXPECT_LT(ms, previous) << tp;
    if (tp > 2) {
      EXPECT_GT(ms, previous / 2) << "the all-reduce and fixed overhead do not split";
    }
    previous = ms;
  }
}

TEST(EngineTensorParallel, EngineRunsTheSeventyBOnFourGpus) {
  const EngineConfig c = config_for("llama-3.1-70b", "h100", 4);
  Engine e(c);
  EXPECT_EQ(e.config().num_gpu_blocks, c.derived_num_gpu_blocks());
  EngineRequest r;
  r.id = 1;
  r.prompt_tokens = 1000;
  r.output_tokens = 10;
  ASSERT_TRUE(e.add_request(r));
  double now = 0;
  int tokens = 0;
  while (e.has_unfinished()) {
    const StepResult s = e.step(now);
    now = s.end;
    tokens += static_cast<int>(s.tokens.size());
  }
  EXPECT_EQ(tokens, 10);
  EXPECT_GT(now, 0.1);  // ten ~15 ms decode steps and a prefill
  EXPECT_LT(now, 0.5);
}

TEST(EngineTensorParallel, CheckConfigSaysWhatVllmSays) {
  std::string error;
  EXPECT_TRUE(check_config(config_for("llama-3.1-70b", "h100", 8), error)) << error;
  EXPECT_FALSE(check_config(config_for("llama-3.1-70b", "h100", 3), error));
  EXPECT_EQ(error,
            "Total number of attention heads (64) must be divisible by tensor parallel size (3).");
  EXPECT_FALSE(check_config(config_for("llama-2-7b", "h100", 0), error));
  EngineConfig c = config_for("llama-2-7b", "h100", 2);
  c.gpu.allreduce_busbw_gbps = 0;
  EXPECT_FALSE(check_config(c, error));
  EXPECT_NE(error.find("allreduce_busbw_gbps"), std::string::npos) << error;
  c = config_for("llama-2-7b", "h100", 1);
  c.gpu.allreduce_busbw_gbps = 0;  // TP 1 needs no interconnect
  EXPECT_TRUE(check_config(c, error)) << error;
  c.kv_cache_dtype = "int4";
  EXPECT_FALSE(check_config(c, error));
  EXPECT_NE(error.find("int4"), std::string::npos);
}

TEST(EngineTensorParallel, ModelNamesResolveToShapes) {
  const ProfileSet& p = ProfileSet::builtin();
  const auto arch = [&](const std::string& model) -> std::string {
    const ModelArch* a = p.arch_for_model(model);
    return a ? a->name : "";
  };
  EXPECT_EQ(arch("lmsys/llama-2-7b-chat-hf"), "llama-2-7b");
  EXPECT_EQ(arch("meta-llama/Llama-2-7b-chat-hf"), "llama-2-7b");
  EXPECT_EQ(arch("META-LLAMA/LLAMA-3.1-8B-INSTRUCT"), "llama-3.1-8b");
  EXPECT_EQ(arch("meta-llama/Llama-3.1-70B-Instruct"), "llama-3.1-70b");
  EXPECT_EQ(arch("/models/Llama-2-70b-chat-hf/"), "llama-2-70b");  // a local path
  EXPECT_EQ(arch("llama-3.1-8b"), "llama-3.1-8b");                 // an arch name
  EXPECT_EQ(arch("sim-model"), "");
  EXPECT_EQ(arch("meta-llama/Llama-2-13b-hf"), "");
}

TEST(EngineTensorParallel, ProfileYamlReadsTheNewKeys) {
  ProfileSet s;
  std::string error;
  ASSERT_TRUE(ProfileSet::from_yaml(
      "archs:\n  tiny:\n    layers: 2\n    hidden: 64\n    q_heads: 4\n    kv_heads: 2\n"
      "    head_dim: 16\n    intermediate: 128\n    vocab: 100\n    params: 1e6\n"
      "    max_model_len: 256\n    models: [acme/Tiny-1]\n",
      s, error))
      << error;
  EXPECT_EQ(s.arch_for_model("ACME/tiny-1")->name, "tiny");
  EXPECT_FALSE(ProfileSet::from_yaml(
      "archs:\n  tiny:\n    layers: 2\n    hidden: 64\n    q_heads: 4\n    kv_heads: 2\n"
      "    head_dim: 16\n    intermediate: 128\n    vocab: 100\n    params: 1e6\n"
      "    max_model_len: 256\n    models: acme/Tiny-1\n",
      s, error));
  EXPECT_NE(error.find("models"), std::string::npos) << error;
}

}  // namespace
}  // namespace eta::engine
