#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/output_length.hpp"

namespace eta::engine {
namespace {

OutputLengthInput base() {
  OutputLengthInput in;
  in.prompt_tokens = 100;
  in.prompt_hash = 12345;
  in.max_model_len = 4096;
  in.seed = 0;
  return in;
}

TEST(EngineOutputLength, NaturalLengthIsDeterministicLogNormal) {
  EXPECT_EQ(natural_output_length(1, 2), natural_output_length(1, 2));
  std::vector<int> v;
  double sum_log = 0;
  for (uint64_t h = 0; h < 20000; ++h) {
    const int n = natural_output_length(h * 2654435761u, 42);
    ASSERT_GE(n, 1);
    v.push_back(n);
    sum_log += std::log(n);
  }
  std::sort(v.begin(), v.end());
  const double median = v[v.size() / 2];
  EXPECT_NEAR(median, 180, 10);
  const double mean_log = sum_log / v.size();
  double var = 0;
  for (int n : v) var += (std::log(n) - mean_log) * (std::log(n) - mean_log);
  EXPECT_NEAR(std::sqrt(var / v.size()), 0.9, 0.05);
  // The seed changes the draw.
  int differ = 0;
  for (uint64_t h = 0; h < 100; ++h)
    differ += natural_output_length(h, 1) != natural_output_length(h, 2);
  EXPECT_GT(differ, 80);
}

TEST(EngineOutputLength, NoHintUsesNaturalLengthCappedByMaxTokens) {
  OutputLengthInput in = base();
  const int natural = natural_output_length(in.prompt_hash, in.seed);
  OutputLength out = decide_output_length(in);
  EXPECT_EQ(out.tokens, natural);
  EXPECT_EQ(out.reason, FinishReason::kStop);
  in.max_tokens = natural - 1;
  out = decide_output_length(in);
  EXPECT_EQ(out.tokens, natural - 1);
  EXPECT_EQ(out.reason, FinishReason::kLength);
  in.max_tokens = natural;  // EOS exactly at the limit is a stop
  EXPECT_EQ(decide_output_length(in).reason, FinishReason::kStop);
}

TEST(EngineOutputLength, HiddenLengthGivesStop) {
  OutputLengthInput in = base();
  in.hidden_length = 37;
  OutputLength out = decide_output_length(in);
  EXPECT_EQ(out.tokens, 37);
  EXPECT_EQ(out.reason, FinishReason::kStop);
  in.max_tokens = 20;
  out = decide_output_length(in);
  EXPECT_EQ(out.tokens, 20);
  EXPECT_EQ(out.reason, FinishReason::kLength);
}

TEST(EngineOutputLength, IgnoreEosGivesMaxTokensOrContext) {
  OutputLengthInput in = base();
  in.ignore_eos = true;
  in.hidden_length = 5;  // ignored
  in.max_tokens = 300;
  OutputLength out = decide_output_length(in);
  EXPECT_EQ(out.tokens, 300);
  EXPECT_EQ(out.reason, FinishReason::kLength);
  in.max_tokens.reset();
  out = decide_output_length(in);
  EXPECT_EQ(out.tokens, 4096 - 100);
  EXPECT_EQ(out.reason, FinishReason::kLength);
}

TEST(EngineOutputLength, ContextLimitCapsEverything) {
  OutputLengthInput in = base();
  in.prompt_tokens = 4000;
  in.hidden_length = 500;
  in.max_tokens = 1000;
  OutputLength out = decide_output_length(in);
  EXPECT_EQ(out.tokens, 96);
  EXPECT_EQ(out.reason, FinishReason::kLength);
  in.hidden_length = 50;
  out = decide_output_length(in);
  EXPECT_EQ(out.tokens, 50);
  EXPECT_EQ(out.reason, FinishReason::kStop);
}

}  // namespace
}  // namespace eta::engine
