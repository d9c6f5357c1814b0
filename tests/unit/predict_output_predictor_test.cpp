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

namespace eta::predict {
namespace {

OutputQuery query(const std::vector<uint64_t>& blocks, std::optional<uint64_t> session = {},
                  int prompt = 500) {
  OutputQuery q;
  q.model = "m";
  q.prompt_tokens = prompt;
  q.block_hashes = blocks;
  q.session_hash = session;
  return q;
}

TEST(PredictOutputLength, TemplatesAnswerAlikeAndTheirContextWins) {
  OutputLengthPredictor p;
  // Two templates of the same prompt length: one answers ~40 tokens, the other ~900.
  const std::vector<uint64_t> a{1, 2, 3, 4, 5}, b{9, 8, 7, 6, 5};
  std::mt19937_64 rng(2);
  std::uniform_int_distribution<int> jitter(-5, 5);
  for (int i = 0; i < 600; ++i) {
    p.observe(p.keys(query(a)), 40 + jitter(rng));
    p.observe(p.keys(query(b)), 900 + jitter(rng));
  }
  const OutputPrediction pa = p.predict(query(a)), pb = p.predict(query(b));
  EXPECT_EQ(pa.context, OutputLengthPredictor::kTemplate);
  EXPECT_NEAR(pa.point, 40, 4);
  EXPECT_NEAR(pb.point, 900, 60);
  EXPECT_LT(pa.sd, 10);
  // An unknown template falls back to a wider context: the mixture.
  const OutputPrediction pc = p.predict(query({42, 43, 44, 45}));
  EXPECT_NE(pc.context, OutputLengthPredictor::kTemplate);
  EXPECT_GT(pc.sd, 300);
}

TEST(PredictOutputLength, SessionsAnswerAlike) {
  OutputLengthPredictor p;
  for (int i = 0; i < 400; ++i) {
    const uint64_t s = static_cast<uint64_t>(i % 2);
    const std::vector<uint64_t> blocks{static_cast<uint64_t>(1000 + i)};  // every prompt new
    p.observe(p.keys(query(blocks, s)), s ? 300 : 20);
  }
  EXPECT_NEAR(p.predict(query({5000}, 0)).point, 20, 2);
  EXPECT_NEAR(p.predict(query({5001}, 1)).point, 300, 20);
}

// The point guess minimises the median relative error: for lengths 10 (60 %) and 1000 (40 %)
// the best constant is 10 (median error 0), while the mean is ~406.
TEST(PredictOutputLength, PointIsTheBestConstantExpectedIsTheCappedMean) {
  OutputLengthPredictor p;
  for (int i = 0; i < 500; ++i) p.observe(p.keys(query({})), i % 5 < 3 ? 10 : 1000);
  const OutputPrediction q = p.predict(query({}));
  EXPECT_NEAR(q.point, 10, 1);
  EXPECT_NEAR(q.expected, 406, 20);
  EXPECT_NEAR(q.sd, 485, 20);
  OutputQuery capped = query({});
  capped.max_tokens = 100;
  const OutputPrediction c = p.predict(capped);
  EXPECT_NEAR(c.expected, 46, 3);  // 0.6 x 10 + 0.4 x 100
  EXPECT_LE(c.point, 100);
}

TEST(PredictOutputLength, MemoryIsBounded) {
  OutputPredictorOptions o;
  o.max_contexts = 64;
  OutputLengthPredictor p(o);
  for (uint64_t i = 0; i < 5000; ++i)
    p.observe(p.keys(query({i}, i)), 10 + static_cast<int>(i % 50));
  EXPECT_LE(p.contexts(), 64u);
  EXPECT_GE(p.predict(query({1})).point, 10);
}

}  // namespace
}  // namespace eta::predict

namespace eta::predict {
namespace {

double median_relative_error(double c, const std::vector<int>& ys) {
  std::vector<double> e;
  for (int y : ys) e.push_back(std::abs(c - y) / y);
  std::nth_element(e.begin(), e.begin() + static_cast<std::ptrdiff_t>(e.size() / 2), e.end());
  return e[e.size() / 2];
}

std::vector<int> lognormal_lengths(int n, double median, double sigma, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> d(std::log(median), sigma);
  std::vector<int> ys;
  for (int i = 0; i < n; ++i) ys.push_back(std::max(1, static_cast<int>(std::lround(d(rng)))));
  return ys;
}

// The point guess is within 2 % of the least median relative error any constant reaches on the
// lengths it learned (brute force over every distinct length), not just near a bin's mean.
TEST(PredictOutputLength, PointIsNearTheBestConstantOfALognormal) {
  OutputPredictorOptions o;
  o.decay = 0;  // stationary: all samples count
  OutputLengthPredictor p(o);
  const std::vector<int> ys = lognormal_lengths(3000, 150, 0.83, 5);
  for (int y : ys) p.observe(p.keys(query({})), y);
  double best = 1e9;
  for (int c = 1; c < 2000; ++c) best = std::min(best, median_relative_error(c, ys));
  const int point = p.predict(query({})).point;
  EXPECT_LE(median_relative_error(point, ys), best * 1.02) << point;
}

// Prompt-length octaves whose lengths come from one distribution carry no information: a
// narrower context may answer only where it was surely better on the same requests, so its
// guess is as good as the global one's (the median error is flat near its optimum: the
// constants may differ, their errors hardly). When they do differ, the narrower one wins.
TEST(PredictOutputLength, ANarrowerContextIsUsedOnlyWhenItBeatsTheGlobalOne) {
  OutputLengthPredictor same;
  const std::vector<int> ys = lognormal_lengths(2000, 150, 0.83, 7);
  for (size_t i = 0; i < ys.size(); ++i) {
    const int prompt = i % 2 ? 300 : 3000;
    same.observe(same.keys(query({1000 + i}, std::nullopt, prompt)), ys[i]);
  }
  const std::vector<uint64_t> nine{9};                          // the query keeps a span of it
  const OutputQuery unseen = query(nine, std::nullopt, 40000);  // an octave never seen: global
  const OutputPrediction global = same.predict(unseen);
  ASSERT_EQ(global.context, OutputLengthPredictor::kGlobal);
  for (int prompt : {300, 3000})
    EXPECT_LE(median_relative_error(same.predict(query({9}, std::nullopt, prompt)).point, ys),
              1.03 * median_relative_error(global.point, ys))
        << prompt;
  OutputLengthPredictor differ;
  for (size_t i = 0; i < ys.size(); ++i) {
    const bool short_prompt = i % 2;
    differ.observe(differ.keys(query({1000 + i}, std::nullopt, short_prompt ? 300 : 3000)),
                   short_prompt ? ys[i] : 8 * ys[i]);
  }
  const OutputPrediction a = differ.predict(query({9}, std::nullopt, 300));
  const OutputPrediction b = differ.predict(query({9}, std::nullopt, 3000));
  EXPECT_NE(a.context, OutputLengthPredictor::kGlobal);
  EXPECT_NE(b.context, OutputLengthPredictor::kGlobal);
  EXPECT_GT(b.point, 4 * a.point);
}

}  // namespace
}  // namespace eta::predict
