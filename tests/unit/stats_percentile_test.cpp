#include <gtest/gtest.h>

#include <vector>

#include "stats/stats.hpp"

namespace eta::stats {
namespace {

// Expected values are np.percentile / np.median / np.mean / np.std results, worked by hand
// with numpy's formulas (virtual index (n-1)*q/100; lerp from b's side when t >= 0.5).
TEST(StatsPercentile, NumpyLinearInterpolation) {
  const std::vector<double> four = {4, 1, 3, 2};
  EXPECT_EQ(percentile(four, 50), 2.5);
  EXPECT_EQ(percentile(four, 90), 3.7);  // index 2.7: 4 - 1 * 0.3
  EXPECT_EQ(percentile(four, 0), 1.0);
  EXPECT_EQ(percentile(four, 100), 4.0);
  EXPECT_EQ(percentile(four, 25), 1.75);  // index 0.75
  const std::vector<double> five = {15, 20, 35, 40, 50};
  EXPECT_EQ(percentile(five, 40), 29.0);  // index 1.6: 35 - 15 * 0.4
  EXPECT_EQ(percentile(five, 99.9), 49.96000000000001);
  std::vector<double> thousand;
  for (int i = 1; i <= 1000; ++i) thousand.push_back(i);
  EXPECT_EQ(percentile(thousand, 99), 990.01);
  EXPECT_EQ(percentile(thousand, 99.9), 999.0010000000001);
  EXPECT_EQ(percentile(std::vector<double>{7.5}, 99), 7.5);
  EXPECT_EQ(percentile(std::vector<double>{}, 50), 0.0);
}

TEST(StatsPercentile, LerpFromTheUpperSideLikeNumpy) {
  // numpy's _lerp computes b - (b - a) * (1 - t) for t >= 0.5, which differs in the last bit
  // from a + (b - a) * t here; np.percentile(x, 16) == 0.22799999999999998.
  const std::vector<double> x = {0.1, 0.3, 0.7, 1.1, 2.9};
  EXPECT_EQ(percentile(x, 16), 0.22799999999999998);
  EXPECT_NE(percentile(x, 16), 0.1 + (0.3 - 0.1) * 0.64);
  EXPECT_EQ(percentile(x, 15.9), 0.2272);  // index 0.636; a + (b - a) * t = 0.22719999999999999
  EXPECT_NE(percentile(x, 15.9), 0.22719999999999999);
  EXPECT_EQ(percentile(x, 5), 0.1 + (0.3 - 0.1) * 0.2);  // t < 0.5: from a's side
}

TEST(StatsPercentile, MedianMeanStd) {
  EXPECT_EQ(median(std::vector<double>{3, 1, 2}), 2.0);
  EXPECT_EQ(median(std::vector<double>{4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median(std::vector<double>{}), 0.0);
  EXPECT_EQ(mean(std::vector<double>{1, 2, 3, 4}), 2.5);
  EXPECT_EQ(stddev(std::vector<double>{1, 2, 3, 4}), 1.118033988749895);  // np.std, ddof 0
  EXPECT_EQ(stddev(std::vector<double>{5}), 0.0);
}

TEST(StatsPercentile, PairwiseSummationLikeNumpy) {
  // np.sum([0.1] * 10) == 1.0 (8 accumulators), while a running sum gives 0.9999999999999999.
  const std::vector<double> tenths(10, 0.1);
  EXPECT_EQ(pairwise_sum(tenths), 1.0);
  double naive = 0;
  for (double v : tenths) naive += v;
  EXPECT_NE(naive, 1.0);
  EXPECT_EQ(mean(tenths), 0.1);
  // Fewer than 8 values: a plain running sum.
  EXPECT_EQ(pairwise_sum(std::vector<double>(7, 0.1)), 0.1 + 0.1 + 0.1 + 0.1 + 0.1 + 0.1 + 0.1);
  // Large inputs recurse without losing values.
  const std::vector<double> ones(100003, 1.0);
  EXPECT_EQ(pairwise_sum(ones), 100003.0);
}

TEST(StatsPercentile, Summary) {
  std::vector<double> v;
  for (int i = 0; i < 101; ++i) v.push_back(100 - i);  // 100 .. 0, unsorted input
  const Summary s = summarize(v);
  EXPECT_EQ(s.count, 101);
  EXPECT_EQ(s.mean, 50.0);
  EXPECT_EQ(s.p50, 50.0);
  EXPECT_EQ(s.p90, 90.0);
  EXPECT_EQ(s.p99, 99.0);
  EXPECT_EQ(s.p999, 99.9);  // index 99.9: 100 - 1 * 0.1 (numpy gives 99.9)
  EXPECT_EQ(s.min, 0.0);
  EXPECT_EQ(s.max, 100.0);
  EXPECT_NEAR(s.std, 29.154759474226502, 1e-12);
  const Summary ms = summarize_scaled(std::vector<double>{0.001, 0.002}, 1000);
  EXPECT_EQ(ms.mean, 1.5);
  const Summary empty = summarize(std::vector<double>{});
  EXPECT_EQ(empty.count, 0);
  EXPECT_EQ(empty.p99, 0.0);
}

}  // namespace
}  // namespace eta::stats
