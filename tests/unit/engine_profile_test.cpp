#include <gtest/gtest.h>

#include <string>

#include "engine/engine.hpp"
#include "engine/profile.hpp"

namespace eta::engine {
namespace {

TEST(EngineProfile, BuiltinProfilesLoad) {
  const ProfileSet& p = ProfileSet::builtin();
  ASSERT_TRUE(p.gpus.count("h100"));
  ASSERT_TRUE(p.gpus.count("a100"));
  ASSERT_TRUE(p.archs.count("llama-2-7b"));
  ASSERT_TRUE(p.archs.count("llama-3.1-8b"));
  const ModelArch& a = p.archs.at("llama-2-7b");
  EXPECT_EQ(a.layers, 32);
  EXPECT_DOUBLE_EQ(a.kv_bytes_per_token(), 512.0 * 1024);  // 512 KiB
  EXPECT_DOUBLE_EQ(p.archs.at("llama-3.1-8b").kv_bytes_per_token(), 128.0 * 1024);
  const GpuProfile& g = p.gpus.at("h100");
  EXPECT_EQ(g.max_num_seqs, 1024);
  EXPECT_EQ(g.max_num_batched_tokens, 8192);
  ASSERT_EQ(g.linear_ops_ms.size(), 8u);
  EXPECT_EQ(g.linear_ops_ms.front().first, 1);
  EXPECT_DOUBLE_EQ(g.linear_ops_ms.front().second, 5.6);
  EXPECT_EQ(p.gpus.at("a100").max_num_seqs, 256);
  EXPECT_EQ(p.gpus.at("a100").max_num_batched_tokens, 2048);
}

TEST(EngineProfile, LinearParamsPerLayerOfLlama2) {
  const ModelArch& a = ProfileSet::builtin().archs.at("llama-2-7b");
  // QKV 4096x12288 + O 4096x4096 + MLP 3x4096x11008.
  EXPECT_DOUBLE_EQ(a.linear_params_per_layer(),
                   4096.0 * 12288 + 4096.0 * 4096 + 3.0 * 4096 * 11008);
}

TEST(EngineProfile, DerivedBlocksForLlama2OnH100) {
  EngineConfig c;
  std::string error;
  ASSERT_TRUE(make_config(ProfileSet::builtin(), "llama-2-7b", "h100", c, error)) << error;
  const int blocks = c.derived_num_gpu_blocks();
  EXPECT_GE(blocks, 7300);
  EXPECT_LE(blocks, 7450);
  const EngineConfig r = c.resolved();
  EXPECT_EQ(r.num_gpu_blocks, blocks);
  EXPECT_EQ(r.max_num_seqs, 1024);
  EXPECT_EQ(r.max_num_batched_tokens, 8192);
  EXPECT_EQ(r.max_model_len, 4096);
  EXPECT_EQ(r.block_size, 16);
  // Lower utilisation leaves fewer blocks; an explicit count wins.
  c.gpu_memory_utilization = 0.5;
  EXPECT_LT(c.derived_num_gpu_blocks(), blocks / 2);
  c.num_gpu_blocks = 100;
  EXPECT_EQ(c.resolved().num_gpu_blocks, 100);
}

TEST(EngineProfile, ResolvedKeepsExplicitValues) {
  EngineConfig c;
  std::string error;
  ASSERT_TRUE(make_config(ProfileSet::builtin(), "llama-3.1-8b", "a100", c, error)) << error;
  c.max_num_seqs = 7;
  c.max_num_batched_tokens = 99;
  c.max_model_len = 1000;
  const EngineConfig r = c.resolved();
  EXPECT_EQ(r.max_num_seqs, 7);
  EXPECT_EQ(r.max_num_batched_tokens, 99);
  EXPECT_EQ(r.max_model_len, 1000);
  EXPECT_GT(r.num_gpu_blocks, 20000);  // 128 KiB per token: ~4x llama-2-7b's tokens
}

TEST(EngineProfile, MakeConfigUnknownNames) {
  EngineConfig c;
  std::string error;
  EXPECT_FALSE(make_config(ProfileSet::builtin(), "llama-9", "h100", c, error));
  EXPECT_NE(error.find("llama-9"), std::string::npos);
  EXPECT_EQ(error.find('\n'), std::string::npos);
  error.clear();
  EXPECT_FALSE(make_config(ProfileSet::builtin(), "llama-2-7b", "tpu", c, error));
  EXPECT_NE(error.find("tpu"), std::string::npos);
  EXPECT_NE(error.find("h100"), std::string::npos);  // lists the known ones
}

const char* kGoodGpu = R"(
gpus:
  l4:
    peak_tflops: 121
    mem_bw_tbps: 0.3
    mem_gib: 24
    bw_efficiency: 0.7
    flops_efficiency: 0.6
    step_overhead_ms: 0.3
    max_num_seqs: 256
    max_num_batched_tokens: 2048
    linear_ops_arch: llama-2-7b
    linear_ops_ms: [[1, 40.0], [512, 90.0]]
)";

TEST(EngineProfile, FromYamlParsesAndMerges) {
  ProfileSet s;
  std::string error;
  ASSERT_TRUE(ProfileSet::from_yaml(kGoodGpu, s, error)) << error;
  ASSERT_TRUE(s.gpus.count("l4"));
  EXPECT_TRUE(s.archs.empty());
  ProfileSet merged = ProfileSet::builtin();
  merged.merge(s);
  EngineConfig c;
  ASSERT_TRUE(make_config(merged, "llama-2-7b", "l4", c, error)) << error;
  EXPECT_DOUBLE_EQ(c.gpu.linear_ops_ms.back().second, 90.0);
  // Without the reference arch the GPU profile cannot be used.
  EXPECT_FALSE(make_config(s, "llama-2-7b", "l4", c, error));
}

std::string load_error(const std::string& text) {
  ProfileSet s;
  std::string error;
  EXPECT_FALSE(ProfileSet::from_yaml(text, s, error)) << text;
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  return error;
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return text.replace(pos, from.size(), to);
}

TEST(EngineProfile, FromYamlErrors) {
  EXPECT_NE(load_error(replace(kGoodGpu, "mem_gib: 24", "mem_gib: 24\n    colour: red"))
                .find("unknown key 'colour'"),
            std::string::npos);
  EXPECT_NE(load_error(replace(kGoodGpu, "    mem_gib: 24\n", "")).find("missing field 'mem_gib'"),
            std::string::npos);
  EXPECT_NE(load_error(replace(kGoodGpu, "[[1, 40.0], [512, 90.0]]", "[[1, 40.0], [512]]"))
                .find("linear_ops_ms"),
            std::string::npos);
  EXPECT_NE(load_error(replace(kGoodGpu, "[[1, 40.0], [512, 90.0]]", "[[512, 40.0], [1, 90.0]]"))
                .find("ascending"),
            std::string::npos);
  EXPECT_NE(load_error(replace(kGoodGpu, "[[1, 40.0], [512, 90.0]]", "[]")).find("linear_ops_ms"),
            std::string::npos);
  EXPECT_NE(load_error(replace(kGoodGpu, "mem_gib: 24", "mem_gib: lots")).find("mem_gib"),
            std::string::npos);
  EXPECT_NE(load_error(replace(kGoodGpu, "mem_gib: 24", "mem_gib: -3")).find("positive"),
            std::string::npos);
  EXPECT_NE(load_error(replace(kGoodGpu, "bw_efficiency: 0.7", "bw_efficiency: 1.7"))
                .find("bw_efficiency"),
            std::string::npos);
  EXPECT_NE(load_error("gpus: {}\nmodels: {}\n").find("unknown key 'models'"), std::string::npos);
  EXPECT_NE(load_error("archs:\n  x:\n    layers: 2\n").find("missing field"), std::string::npos);
  EXPECT_NE(load_error("gpus: [1, 2]\n").find("gpus"), std::string::npos);
  EXPECT_NE(load_error("gpus: {a: [unclosed\n").find("YAML"), std::string::npos);
}

}  // namespace
}  // namespace eta::engine
