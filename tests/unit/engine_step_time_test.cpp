#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "engine/engine.hpp"

namespace eta::engine {
namespace {

EngineConfig config_for(const std::string& arch, const std::string& gpu) {
  EngineConfig c;
  std::string error;
  EXPECT_TRUE(make_config(ProfileSet::builtin(), arch, gpu, c, error)) << error;
  return c.resolved();
}

TEST(EngineStepTime, LinearPartEqualsCalibrationTableAtItsPoints) {
  std::ifstream csv(std::string(ETA_SHARED_DIR) + "/data/calibration/llama-2-7b-linear-ops.csv");
  ASSERT_TRUE(csv) << "calibration CSV not found";
  const StepTimeModel h100(config_for("llama-2-7b", "h100"));
  const StepTimeModel a100(config_for("llama-2-7b", "a100"));
  std::string line;
  int rows = 0;
  while (std::getline(csv, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("gpu,", 0) == 0) continue;
    std::stringstream ss(line);
    std::string gpu, tokens, ms;
    std::getline(ss, gpu, ',');
    std::getline(ss, tokens, ',');
    std::getline(ss, ms, ',');
    const StepTimeModel& m = gpu.rfind("h100", 0) == 0 ? h100 : a100;
    EXPECT_NEAR(m.linear_ms(std::stoi(tokens)), std::stod(ms), 1e-9) << line;
    ++rows;
  }
  EXPECT_EQ(rows, 16);
}

TEST(EngineStepTime, LinearInterpolatesAndExtrapolates) {
  const StepTimeModel m(config_for("llama-2-7b", "h100"));
  EXPECT_NEAR(m.linear_ms(384), (9.2 + 12.0) / 2, 1e-9);           // between 256 and 512
  EXPECT_NEAR(m.linear_ms(8192), 82.9 + (82.9 - 40.3) * 2, 1e-9);  // beyond 4096
  EXPECT_NEAR(m.linear_ms(1), 5.6, 1e-9);
  EXPECT_EQ(m.linear_ms(0), 0);
}

TEST(EngineStepTime, OtherArchScalesByLinearParams) {
  const StepTimeModel ref(config_for("llama-2-7b", "h100"));
  const StepTimeModel m(config_for("llama-3.1-8b", "h100"));
  const ProfileSet& p = ProfileSet::builtin();
  const double ratio =
      p.archs.at("llama-3.1-8b").linear_params() / p.archs.at("llama-2-7b").linear_params();
  EXPECT_GT(ratio, 1.05);
  EXPECT_NEAR(m.linear_ms(512), ref.linear_ms(512) * ratio, 1e-9);
  // A config built by hand (no make_config) still finds the reference arch.
  EngineConfig c = config_for("llama-3.1-8b", "h100");
  c.gpu.linear_ops_arch_params = 0;
  EXPECT_NEAR(StepTimeModel(c).linear_ms(512), ref.linear_ms(512) * ratio, 1e-9);
}

BatchShape decode_batch(int seqs, int context) {
  BatchShape b;
  b.num_tokens = seqs;
  b.num_sampled = seqs;
  b.decode_kv_tokens = static_cast<int64_t>(seqs) * context;
  return b;
}

TEST(EngineStepTime, BatchOneDecodeMatchesCalibration) {
  const StepTimeModel h100(config_for("llama-2-7b", "h100"));
  const StepTimeModel a100(config_for("llama-2-7b", "a100"));
  const double h = h100.step_seconds(decode_batch(1, 512)) * 1e3;
  const double a = a100.step_seconds(decode_batch(1, 512)) * 1e3;
  EXPECT_NEAR(h, 6.0, 0.6) << h;
  EXPECT_NEAR(a, 10.0, 1.0) << a;
}

TEST(EngineStepTime, ModerateBatchDecodeInPublishedRange) {
  const StepTimeModel h100(config_for("llama-2-7b", "h100"));
  const StepTimeModel a100(config_for("llama-2-7b", "a100"));
  // 48 sequences of 512 tokens of context.
  const double h = h100.step_seconds(decode_batch(48, 512)) * 1e3;
  const double a = a100.step_seconds(decode_batch(48, 512)) * 1e3;
  EXPECT_GE(h, 10.0);
  EXPECT_LE(h, 15.0);
  EXPECT_GE(a, 15.0);
  EXPECT_LE(a, 25.0);
}

TEST(EngineStepTime, ComponentsAddUpAndSpeedDivides) {
  EngineConfig c = config_for("llama-2-7b", "h100");
  const StepTimeModel m(c);
  BatchShape b;
  b.num_tokens = 600;
  b.num_sampled = 3;
  b.decode_kv_tokens = 2000;
  b.prefill_attn_pairs = 598.0 * 1598;
  b.prefill_kv_tokens = 1000;
  const double ms = m.linear_ms(600) + m.lm_head_ms(3) + m.decode_attention_ms(2000) +
                    m.prefill_attention_ms(b.prefill_attn_pairs, 1000) + m.overhead_ms();
  EXPECT_NEAR(m.step_ms(b), ms, 1e-9);
  EXPECT_NEAR(m.step_seconds(b), ms / 1e3, 1e-12);
  // lm_head is weight-read bound for one row: 32000*4096*2 bytes at 69% of 3.35 TB/s.
  EXPECT_NEAR(m.lm_head_ms(1), 32000.0 * 4096 * 2 / (0.69 * 3.35e12) * 1e3, 1e-9);
  // ... and compute bound for many rows.
  EXPECT_NEAR(m.lm_head_ms(8192), 2.0 * 32000 * 4096 * 8192 / (0.65 * 989e12) * 1e3, 1e-9);
  // Decode attention reads 512 KiB per context token.
  EXPECT_NEAR(m.decode_attention_ms(1000), 1000 * 524288.0 / (0.69 * 3.35e12) * 1e3, 1e-9);
  c.speed = 0.5;
  EXPECT_NEAR(StepTimeModel(c).step_seconds(b), 2 * ms / 1e3, 1e-12);
}

}  // namespace
}  // namespace eta::engine
