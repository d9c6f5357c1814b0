#include <gtest/gtest.h>

#include <random>

#include "predict/output_predictor.hpp"

namespace eta::predict {
namespace {

TEST(PredictOutputLength, ExactWithIgnoreEosAndMaxTokens) {
  OutputLengthPredictor p;
  for (int i = 0; i < 100; ++i) p.observe("m", 100, 10);
  EXPECT_EQ(p.predict("m", 100, 300, true), 300);
  // ... but never past the context window.
  EXPECT_EQ(p.predict("m", 4000, 300, true, 4096), 96);
  // ignore_eos without max_tokens is not exact: learned.
  EXPECT_EQ(p.predict("m", 100, std::nullopt, true), 10);
}

TEST(PredictOutputLength, PriorUntilLearnedThenBucketMeans) {
  OutputPredictorOptions o;
  o.prior_output_tokens = 200;
  OutputLengthPredictor p(o);
  EXPECT_EQ(p.predict("m", 50, std::nullopt, false), 200);
  EXPECT_EQ(p.predict("m", 50, 64, false), 64);
  // Short prompts produce ~100 tokens, long prompts ~400.
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int> jitter(-20, 20);
  for (int i = 0; i < 400; ++i) {
    p.observe("m", 50 + i % 10, 100 + jitter(rng));
    p.observe("m", 3000 + i % 100, 400 + jitter(rng));
  }
  EXPECT_NEAR(p.predict("m", 55, std::nullopt, false), 100, 5);
  EXPECT_NEAR(p.predict("m", 3500, std::nullopt, false), 400, 10);
  // A bucket never seen borrows the model's whole histogram (about the overall mean).
  EXPECT_NEAR(p.predict("m", 20000, std::nullopt, false), 250, 20);
  // Another model borrows the global one, then learns its own.
  EXPECT_NEAR(p.predict("other", 55, std::nullopt, false), 250, 20);
  for (int i = 0; i < 50; ++i) p.observe("other", 55, 7);
  EXPECT_EQ(p.predict("other", 55, std::nullopt, false), 7);
}

TEST(PredictOutputLength, CappedByMaxTokensAsAnExpectationOfTheCappedLength) {
  OutputLengthPredictor p;
  // Half the requests stop at ~10 tokens, half at ~1000.
  for (int i = 0; i < 500; ++i) p.observe("m", 100, i % 2 ? 10 : 1000);
  EXPECT_NEAR(p.predict("m", 100, std::nullopt, false), 505, 15);
  // max_tokens 100: E[min(X, 100)] = (10 + 100) / 2, not min(505, 100).
  EXPECT_NEAR(p.predict("m", 100, 100, false), 55, 3);
  EXPECT_EQ(p.predict("m", 100, 5, false), 5);
  EXPECT_GE(p.predict("m", 100, 1, false), 1);
}

TEST(PredictOutputLength, ForgetsOldLengthsWhenTheWorkloadChanges) {
  OutputLengthPredictor p;
  for (int i = 0; i < 2000; ++i) p.observe("m", 100, 50);
  for (int i = 0; i < 3000; ++i) p.observe("m", 100, 500);
  EXPECT_NEAR(p.predict("m", 100, std::nullopt, false), 500, 25);
}

}  // namespace
}  // namespace eta::predict
