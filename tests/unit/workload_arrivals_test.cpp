#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "workload/arrivals.hpp"
#include "workload/synthetic.hpp"

namespace eta::workload {
namespace {

struct GapStats {
  double mean = 0;
  double cv = 0;
};

GapStats gap_stats(const std::vector<double>& times) {
  std::vector<double> gaps;
  for (std::size_t i = 1; i < times.size(); ++i) gaps.push_back(times[i] - times[i - 1]);
  const double mean = std::accumulate(gaps.begin(), gaps.end(), 0.0) / gaps.size();
  double var = 0;
  for (double g : gaps) var += (g - mean) * (g - mean);
  var /= gaps.size();
  return {mean, std::sqrt(var) / mean};
}

Workload numbered(int n) {
  Workload w;
  for (int i = 0; i < n; ++i) {
    WorkloadRequest r;
    r.index = i;
    r.arrival_s = 100.0 + 2.0 * i * i;  // arbitrary, increasing, not starting at 0
    w.requests.push_back(r);
  }
  return w;
}

TEST(WorkloadArrivals, PoissonHasRateAndUnitCv) {
  ArrivalSpec spec;
  spec.kind = ArrivalKind::kPoisson;
  spec.rate = 5.0;
  spec.seed = 7;
  const auto times = draw_arrivals(20000, spec);
  ASSERT_EQ(times.size(), 20000u);
  EXPECT_EQ(times.front(), 0.0);
  const GapStats s = gap_stats(times);
  EXPECT_NEAR(s.mean, 0.2, 0.2 * 0.03);
  EXPECT_NEAR(s.cv, 1.0, 0.03);
  for (std::size_t i = 1; i < times.size(); ++i) ASSERT_GE(times[i], times[i - 1]);
}

TEST(WorkloadArrivals, GammaMatchesRequestedCv) {
  for (double cv : {0.5, 2.0, 4.0}) {
    ArrivalSpec spec;
    spec.kind = ArrivalKind::kGamma;
    spec.rate = 10.0;
    spec.cv = cv;
    spec.seed = 11;
    const GapStats s = gap_stats(draw_arrivals(20000, spec));
    EXPECT_NEAR(s.mean, 0.1, 0.1 * (cv > 1 ? 0.08 : 0.03)) << "cv " << cv;
    EXPECT_NEAR(s.cv, cv, cv * (cv > 1 ? 0.12 : 0.04)) << "cv " << cv;
  }
}

TEST(WorkloadArrivals, SeededAndDeterministic) {
  ArrivalSpec spec;
  spec.kind = ArrivalKind::kGamma;
  spec.rate = 3;
  spec.cv = 2;
  spec.seed = 1;
  const auto a = draw_arrivals(100, spec);
  const auto b = draw_arrivals(100, spec);
  EXPECT_EQ(a, b);
  spec.seed = 2;
  EXPECT_NE(a, draw_arrivals(100, spec));
}

TEST(WorkloadArrivals, ConstantAndInfinite) {
  ArrivalSpec spec;
  spec.kind = ArrivalKind::kConstant;
  spec.rate = 4;
  const auto times = draw_arrivals(5, spec);
  EXPECT_EQ(times, (std::vector<double>{0, 0.25, 0.5, 0.75, 1.0}));
  spec.kind = ArrivalKind::kPoisson;
  spec.rate = std::numeric_limits<double>::infinity();
  EXPECT_EQ(draw_arrivals(3, spec), (std::vector<double>{0, 0, 0}));
}

TEST(WorkloadArrivals, TraceScalingHitsTargetMeanRate) {
  Workload w = numbered(50);
  std::string error;
  ArrivalSpec keep;  // kTrace, rate 0: shift to start at 0, keep gaps
  ASSERT_TRUE(apply_arrivals(w, keep, error)) << error;
  EXPECT_EQ(w.requests[0].arrival_s, 0.0);
  EXPECT_EQ(w.requests[3].arrival_s, 18.0);
  ArrivalSpec scale;
  scale.rate = 2.5;
  ASSERT_TRUE(apply_arrivals(w, scale, error)) << error;
  const double span = w.requests.back().arrival_s - w.requests.front().arrival_s;
  EXPECT_NEAR((w.requests.size() - 1) / span, 2.5, 1e-9);
  // Shape is kept: ratios between times are unchanged.
  EXPECT_NEAR(w.requests[3].arrival_s / w.requests[1].arrival_s, 9.0, 1e-9);
}

TEST(WorkloadArrivals, RedrawKeepsRequestOrder) {
  Workload w = numbered(1000);
  std::string error;
  ArrivalSpec spec;
  spec.kind = ArrivalKind::kPoisson;
  spec.rate = 100;
  ASSERT_TRUE(apply_arrivals(w, spec, error)) << error;
  for (std::size_t i = 1; i < w.requests.size(); ++i) {
    ASSERT_EQ(w.requests[i].index, static_cast<int64_t>(i));
    ASSERT_GE(w.requests[i].arrival_s, w.requests[i - 1].arrival_s);
  }
  EXPECT_NEAR(w.requests.back().arrival_s, 10.0, 1.5);
}

TEST(WorkloadArrivals, BadSpecsAreErrors) {
  Workload w = numbered(3);
  std::string error;
  ArrivalSpec spec;
  spec.kind = ArrivalKind::kPoisson;
  spec.rate = 0;
  EXPECT_FALSE(apply_arrivals(w, spec, error));
  EXPECT_NE(error.find("rate"), std::string::npos);
  ArrivalSpec parsed;
  ASSERT_TRUE(parse_arrival_spec("gamma:cv=2.5,seed=9", parsed, error)) << error;
  EXPECT_EQ(parsed.kind, ArrivalKind::kGamma);
  EXPECT_EQ(parsed.cv, 2.5);
  EXPECT_EQ(parsed.seed, 9u);
  EXPECT_FALSE(parse_arrival_spec("weibull", parsed, error));
  EXPECT_FALSE(parse_arrival_spec("gamma:cv=-1", parsed, error));
  EXPECT_FALSE(parse_arrival_spec("gamma:shape=2", parsed, error));
}

TEST(WorkloadArrivals, TruncateByCountAndDuration) {
  Workload w = numbered(20);
  std::string error;
  ASSERT_TRUE(apply_arrivals(w, ArrivalSpec{}, error));
  truncate(w, 10, std::nullopt);
  EXPECT_EQ(w.requests.size(), 10u);
  truncate(w, std::nullopt, 50.0);  // times 0, 2, 8, 18, 32, 50, ...: strictly before 50
  EXPECT_EQ(w.requests.size(), 5u);
  truncate(w, 0, 0.0);  // 0 means no limit
  EXPECT_EQ(w.requests.size(), 5u);
}

}  // namespace
}  // namespace eta::workload
