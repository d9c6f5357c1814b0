#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "policy_test_util.hpp"
#include "predict/speed_model.hpp"

namespace eta::predict {
namespace {

using eta::testing::config_for;

engine::BatchShape decode_batch(int seqs, int64_t context_each) {
  engine::BatchShape b;
  b.num_tokens = seqs;
  b.num_sampled = seqs;
  b.decode_kv_tokens = seqs * context_each;
  return b;
}

TEST(PredictStepTables, FastPiecesAgreeWithTheEngineStepTimeModel) {
  for (const char* gpu : {"h100", "a100"}) {
    for (double speed : {1.0, 0.5}) {
      const engine::EngineConfig c = config_for("llama-2-7b", gpu, speed);
      const engine::StepTimeModel m(c);
      const auto t = StepTables::make(c);
      for (int b : {1, 2, 7, 64, 100, 255, 256}) {
        const engine::BatchShape shape = decode_batch(b, 700);
        const double fast = t->decode_step_ms(b) + t->kv_ms_per_token() * shape.decode_kv_tokens;
        EXPECT_NEAR(fast * 1e-3, m.step_seconds(shape), 1e-9) << gpu << " batch " << b;
      }
      // A mixed step: 8 decodes and a 1000-token chunk with 500 cached tokens of context.
      engine::BatchShape mixed = decode_batch(8, 900);
      mixed.num_tokens = 1008;
      mixed.num_sampled = 9;
      mixed.prefill_attn_pairs = 1000.0 * (500 + 1000);
      mixed.prefill_kv_tokens = 500;
      const double fast = t->linear_ms(1008) + t->lm_head_ms(9) +
                          t->kv_ms_per_token() * mixed.decode_kv_tokens +
                          t->prefill_ms_per_pair() * mixed.prefill_attn_pairs +
                          t->prefill_ms_per_cached_token() * 500 + t->overhead_ms();
      EXPECT_NEAR(fast * 1e-3, m.step_seconds(mixed), 1e-9) << gpu;
      // Fractional batches interpolate between neighbours.
      EXPECT_GT(t->decode_step_ms(300.5), t->decode_step_ms(300) - 1e-12);
      EXPECT_LT(t->decode_step_ms(300.5), t->decode_step_ms(301) + 1e-12);
    }
  }
}

TEST(PredictStepTables, StepMsIsBitIdenticalToTheModelsStepMs) {
  std::mt19937_64 rng(11);
  for (const char* gpu : {"h100", "a100"}) {
    for (double speed : {1.0, 0.7}) {
      const engine::EngineConfig c = config_for("llama-2-7b", gpu, speed);
      const auto t = StepTables::make(c);
      const double inv_speed = 1.0 / speed;
      for (int i = 0; i < 5000; ++i) {
        engine::BatchShape b;
        // Inside and beyond the tables (tokens past max_num_batched_tokens, huge batches).
        b.num_tokens = static_cast<int>(rng() % 40000) - 10;
        b.num_sampled = static_cast<int>(rng() % 3000) - 2;
        b.decode_kv_tokens = static_cast<int64_t>(rng() % 2000000);
        b.prefill_attn_pairs = static_cast<double>(rng() % 100000000);
        b.prefill_kv_tokens = static_cast<int64_t>(rng() % 100000);
        ASSERT_EQ(t->step_ms(b), t->model().step_ms(b) * inv_speed)
            << gpu << " tokens " << b.num_tokens << " sampled " << b.num_sampled;
      }
    }
  }
}

// Observations of a replica that really runs at `true_speed` (its StepTimeModel at that speed),
// with multiplicative noise per step, against a model that assumes the h100 profile at speed 1.
// Each decode step of b sequences yields b token gaps, all of the step's duration.
void feed_itl(SpeedModel& model, double true_speed, int steps, std::mt19937_64& rng,
              double noise_sigma = 0.1) {
  const engine::StepTimeModel truth(config_for("llama-2-7b", "h100", true_speed));
  std::lognormal_distribution<double> noise(0.0, noise_sigma);
  std::uniform_int_distribution<int> batch(1, 64);
  std::uniform_int_distribution<int> context(100, 2000);
  for (int i = 0; i < steps; ++i) {
    const engine::BatchShape b = decode_batch(batch(rng), context(rng));
    const double gap = truth.step_seconds(b) * noise(rng);
    for (int k = 0; k < b.num_sampled; ++k) model.observe_itl(gap, b);
  }
}

TEST(PredictSpeedModel, LearnsATwiceSlowerReplicaFromTokenGaps) {
  SpeedModel model(config_for());
  EXPECT_DOUBLE_EQ(model.decode_factor(), 1.0);
  std::mt19937_64 rng(42);
  feed_itl(model, 0.5, 10, rng);
  EXPECT_NEAR(model.decode_factor(), 0.5, 0.05) << "within 10% after 10 decode steps";
  // TTFT has no observations of its own yet: it borrows the decode factor.
  EXPECT_NEAR(model.prefill_factor(), 0.5, 0.05);
  feed_itl(model, 0.5, 100, rng);
  EXPECT_NEAR(model.decode_factor(), 0.5, 0.025) << "within 5% after 110";
}

TEST(PredictSpeedModel, LearnsTheFactorFromTtftAgainstThePredictedPrefill) {
  const engine::EngineConfig c = config_for();
  SpeedModel model(c);
  const engine::StepTimeModel truth(config_for("llama-2-7b", "h100", 0.5));
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> prompt(100, 4000);
  for (int i = 0; i < 60; ++i) {
    engine::BatchShape b;
    b.num_tokens = prompt(rng);
    b.num_sampled = 1;
    b.prefill_attn_pairs = 0.5 * b.num_tokens * b.num_tokens;
    model.observe_ttft(truth.step_seconds(b), model.base_step_seconds(b));
  }
  EXPECT_NEAR(model.prefill_factor(), 0.5, 0.05);
  EXPECT_EQ(model.prefill_observations(), 60);
}

TEST(PredictSpeedModel, FollowsAReplicaThatSlowsDownLater) {
  SpeedModel model(config_for());
  std::mt19937_64 rng(9);
  feed_itl(model, 1.0, 1000, rng);
  EXPECT_NEAR(model.decode_factor(), 1.0, 0.05);
  // It slows to half speed. At 30-100 decode steps/s per replica, 100 steps is 1-3 seconds.
  feed_itl(model, 0.5, 100, rng);
  EXPECT_NEAR(model.decode_factor(), 0.5, 0.05);
}

TEST(PredictSpeedModel, UnmodelledStallsMoveTheEstimateLittle) {
  SpeedModel model(config_for());
  const engine::StepTimeModel truth(config_for());
  std::mt19937_64 rng(1);
  for (int i = 0; i < 5000; ++i) {
    const engine::BatchShape b = decode_batch(16, 800);
    const double stall = i % 10 == 0 ? 10.0 : 1.0;  // 10% of gaps hide a long prefill chunk
    model.observe_itl(truth.step_seconds(b) * stall, b);
  }
  EXPECT_GT(model.decode_factor(), 0.9);
  EXPECT_LE(model.decode_factor(), 1.0);
}

TEST(PredictSpeedModel, OneStepCountsOnceWhateverItsBatch) {
  // A step of 64 sequences misjudged by 3x (a prefill chunk the router thought ran) yields 64
  // gaps; together they move the factor as far as one gap of a batch-1 step would.
  SpeedModel big(config_for()), one(config_for());
  std::mt19937_64 rng_big(3), rng_one(3);
  feed_itl(big, 1.0, 200, rng_big);
  feed_itl(one, 1.0, 200, rng_one);
  const double before = big.decode_factor();
  const engine::BatchShape b64 = decode_batch(64, 1000), b1 = decode_batch(1, 1000);
  for (int k = 0; k < 64; ++k) big.observe_itl(big.base_step_seconds(b64) / 3, b64);
  one.observe_itl(one.base_step_seconds(b1) / 3, b1);
  EXPECT_NEAR(std::log(big.decode_factor() / before), std::log(one.decode_factor() / before), 0.01);
  EXPECT_LT(big.decode_factor(), before * 1.05);
  EXPECT_EQ(big.decode_observations() - one.decode_observations(), 63);
}

TEST(PredictSpeedModel, IgnoresNonsenseAndClampsTheFactor) {
  SpeedModel model(config_for());
  model.observe_itl(0, decode_batch(1, 10));
  model.observe_itl(-1, decode_batch(1, 10));
  model.observe_ttft(1.0, 0);
  model.observe_ttft(std::nan(""), 1.0);
  EXPECT_EQ(model.decode_observations(), 0);
  EXPECT_DOUBLE_EQ(model.decode_factor(), 1.0);
  for (int i = 0; i < 2000; ++i) model.observe_itl(1e6, decode_batch(1, 10));
  EXPECT_GE(model.decode_factor(), 0.02);
  model.set_factors(0.7, 0.4, 10);
  EXPECT_DOUBLE_EQ(model.prefill_factor(), 0.7);
  EXPECT_DOUBLE_EQ(model.decode_factor(), 0.4);
}

TEST(PredictSpeedModel, FactorsReadLazilyEqualFactorsReadAfterEveryObservation) {
  SpeedModel eager(config_for());
  SpeedModel lazy(config_for());
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> gap(0.005, 0.08);
  for (int i = 0; i < 3000; ++i) {
    const int batch = 1 + static_cast<int>(rng() % 64);
    const double g = gap(rng);
    if (i % 7 == 3) {
      eager.observe_ttft(g * 20, 0.5);
      lazy.observe_ttft(g * 20, 0.5);
    } else {
      eager.observe_itl(g, decode_batch(batch, 1000));
      lazy.observe_itl(g, decode_batch(batch, 1000));
    }
    // Read the eager model's factors every time (it recomputes them after each observation).
    ASSERT_GT(eager.decode_factor(), 0);
    ASSERT_GT(eager.prefill_factor(), 0);
    ASSERT_EQ(eager.inv_decode_factor(), 1.0 / eager.decode_factor());
    if (i % 500 == 0) {
      EXPECT_EQ(lazy.inv_prefill_factor(), eager.inv_prefill_factor());
      EXPECT_EQ(lazy.decode_factor(), eager.decode_factor());
    }
  }
  EXPECT_EQ(lazy.decode_factor(), eager.decode_factor());
  EXPECT_EQ(lazy.prefill_factor(), eager.prefill_factor());
  EXPECT_EQ(lazy.inv_decode_factor(), eager.inv_decode_factor());
  EXPECT_EQ(lazy.inv_prefill_factor(), eager.inv_prefill_factor());
  // Before its own observations, the prefill factor borrows the decode factor (read lazily too).
  SpeedModel borrow(config_for());
  for (int i = 0; i < 10; ++i) borrow.observe_itl(0.1, decode_batch(1, 10));
  EXPECT_EQ(borrow.prefill_observations(), 0);
  EXPECT_EQ(borrow.prefill_factor(), borrow.decode_factor());
  EXPECT_LT(borrow.decode_factor(), 1.0);
}

}  // namespace
}  // namespace eta::predict
