#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "metrics/registry.hpp"

namespace eta::metrics {
namespace {

TEST(MetricsRegistry, RendersGoldenText) {
  Registry reg;
  auto& requests = reg.counter("eta_requests", "Requests handled.", {"code"});
  requests.with({"500"}).inc();
  requests.with({"200"}).inc(3);
  reg.gauge("vllm:num_requests_running", "Running \\ requests\nnow.", {"model_name", "engine"})
      .with({"m\"x\\y\nz", "0"})
      .set(2.5);
  auto& latency = reg.histogram("lat_seconds", "Latency.", {}, {0.25, 1});
  auto& h = latency.with();
  for (double v : {0.125, 0.25, 0.5, 4.0}) h.observe(v);
  reg.gauge("empty_gauge", "No children yet.");

  const std::string expected =
      "# HELP eta_requests_total Requests handled.\n"
      "# TYPE eta_requests_total counter\n"
      "eta_requests_total{code=\"200\"} 3\n"
      "eta_requests_total{code=\"500\"} 1\n"
      "# HELP vllm:num_requests_running Running \\\\ requests\\nnow.\n"
      "# TYPE vllm:num_requests_running gauge\n"
      "vllm:num_requests_running{model_name=\"m\\\"x\\\\y\\nz\",engine=\"0\"} 2.5\n"
      "# HELP lat_seconds Latency.\n"
      "# TYPE lat_seconds histogram\n"
      "lat_seconds_bucket{le=\"0.25\"} 2\n"
      "lat_seconds_bucket{le=\"1\"} 3\n"
      "lat_seconds_bucket{le=\"+Inf\"} 4\n"
      "lat_seconds_sum 4.875\n"
      "lat_seconds_count 4\n"
      "# HELP empty_gauge No children yet.\n"
      "# TYPE empty_gauge gauge\n";
  EXPECT_EQ(reg.render(), expected);
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithLabels) {
  Registry reg;
  auto& fam = reg.histogram("ttft_seconds", "TTFT.", {"model_name"}, {0.01, 0.1, 1.0});
  auto& h = fam.with({"m"});
  for (double v : {0.001, 0.01, 0.02, 0.05, 0.1, 0.5, 2.0, 3.0}) h.observe(v);
  // Non-cumulative per-bucket counts (le is inclusive).
  EXPECT_EQ(h.bucket(0), 2u);
  EXPECT_EQ(h.bucket(1), 3u);
  EXPECT_EQ(h.bucket(2), 1u);
  EXPECT_EQ(h.bucket(3), 2u);
  EXPECT_EQ(h.count(), 8u);
  EXPECT_DOUBLE_EQ(h.sum(), 0.001 + 0.01 + 0.02 + 0.05 + 0.1 + 0.5 + 2.0 + 3.0);

  const std::string text = reg.render();
  EXPECT_NE(text.find("ttft_seconds_bucket{model_name=\"m\",le=\"0.01\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("ttft_seconds_bucket{model_name=\"m\",le=\"0.1\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("ttft_seconds_bucket{model_name=\"m\",le=\"1\"} 6\n"), std::string::npos);
  EXPECT_NE(text.find("ttft_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 8\n"), std::string::npos);
  EXPECT_NE(text.find("ttft_seconds_count{model_name=\"m\"} 8\n"), std::string::npos);
}

TEST(MetricsRegistry, HistogramTrailingInfBoundIsImplicitAndNanGoesToInf) {
  Registry reg;
  auto& h = reg.histogram("h", "h", {}, {1.0, std::numeric_limits<double>::infinity()}).with();
  EXPECT_EQ(h.bounds().size(), 1u);
  h.observe(std::nan(""));
  EXPECT_EQ(h.bucket(0), 0u);
  EXPECT_EQ(h.bucket(1), 1u);
}

TEST(MetricsRegistry, CounterIncrementsFromFourThreadsAreNotLost) {
  Registry reg;
  auto& c = reg.counter("hits", "Hits.").with();
  auto& g = reg.gauge("level", "Level.").with();
  auto& h = reg.histogram("obs", "Obs.", {}, {0.5}).with();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        g.inc(2);
        g.dec();
        h.observe(1.0);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), double{kThreads} * kPerThread);
  EXPECT_EQ(g.value(), double{kThreads} * kPerThread);
  EXPECT_EQ(h.count(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(h.bucket(1), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(h.sum(), double{kThreads} * kPerThread);
}

TEST(MetricsRegistry, ConcurrentChildCreationReturnsOneChildPerLabelSet) {
  Registry reg;
  auto& fam = reg.counter("per_replica", "Per replica.", {"replica"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) fam.with({std::to_string(i % 10)}).inc();
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 10; ++r) EXPECT_EQ(fam.with({std::to_string(r)}).value(), 400.0);
}

TEST(MetricsRegistry, CounterIgnoresNegativeIncrements) {
  Counter c;
  c.inc(2);
  c.inc(-1);
  c.inc(std::nan(""));
  EXPECT_EQ(c.value(), 2.0);
}

TEST(MetricsRegistry, GaugeSetIncDec) {
  Gauge g;
  g.set(10);
  g.inc(0.5);
  g.dec(3);
  EXPECT_EQ(g.value(), 7.5);
}

TEST(MetricsRegistry, FamiliesRenderInRegistrationOrderAcrossTypes) {
  Registry reg;
  reg.gauge("b_gauge", "b").with().set(1);
  reg.counter("a_counter", "a").with().inc();
  reg.histogram("c_hist", "c", {}, {1}).with().observe(0);
  reg.gauge("a_gauge", "a").with().set(2);
  const std::string text = reg.render();
  const auto b = text.find("# TYPE b_gauge");
  const auto a = text.find("# TYPE a_counter_total");
  const auto c = text.find("# TYPE c_hist");
  const auto d = text.find("# TYPE a_gauge");
  ASSERT_NE(d, std::string::npos);
  EXPECT_LT(b, a);
  EXPECT_LT(a, c);
  EXPECT_LT(c, d);
}

TEST(MetricsRegistry, RemoveDropsTheChild) {
  Registry reg;
  auto& fam = reg.gauge("g", "g", {"replica"});
  fam.with({"a"}).set(1);
  fam.with({"b"}).set(2);
  fam.remove({"a"});
  EXPECT_EQ(reg.render(), "# HELP g g\n# TYPE g gauge\ng{replica=\"b\"} 2\n");
}

TEST(MetricsRegistry, SameRegistrationReturnsTheSameFamily) {
  Registry reg;
  auto& a = reg.counter("x", "x", {"l"});
  auto& b = reg.counter("x", "x again", {"l"});
  EXPECT_EQ(&a, &b);
  EXPECT_THROW(reg.gauge("x", "x", {"l"}), std::invalid_argument);
  EXPECT_THROW(reg.counter("x", "x", {"other"}), std::invalid_argument);
}

TEST(MetricsRegistry, RejectsInvalidNames) {
  Registry reg;
  EXPECT_THROW(reg.counter("1abc", "bad"), std::invalid_argument);
  EXPECT_THROW(reg.gauge("has space", "bad"), std::invalid_argument);
  EXPECT_THROW(reg.gauge("", "bad"), std::invalid_argument);
  EXPECT_THROW(reg.gauge("ok", "bad label", {"a:b"}), std::invalid_argument);
  EXPECT_THROW(reg.gauge("ok2", "reserved label", {"__name"}), std::invalid_argument);
  EXPECT_THROW(reg.gauge("ok3", "dup label", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(reg.histogram("h", "le reserved", {"le"}, {1}), std::invalid_argument);
  EXPECT_THROW(reg.histogram("h2", "unsorted", {}, {2, 1}), std::invalid_argument);
  EXPECT_NO_THROW(reg.gauge("vllm:num_requests_running", "colons are fine"));
  EXPECT_NO_THROW(reg.gauge(":leading_colon", "fine too"));
  auto& fam = reg.gauge("two_labels", "x", {"a", "b"});
  EXPECT_THROW(fam.with({"only one"}), std::invalid_argument);
  EXPECT_TRUE(is_valid_metric_name("vllm:kv_cache_usage_perc"));
  EXPECT_FALSE(is_valid_metric_name("vllm-kv"));
  EXPECT_TRUE(is_valid_label_name("model_name"));
  EXPECT_FALSE(is_valid_label_name("9x"));
}

TEST(MetricsRegistry, FormatValue) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(-2), "-2");
  EXPECT_EQ(format_value(0.5), "0.5");
  EXPECT_EQ(format_value(0.001), "0.001");
  EXPECT_EQ(format_value(1234567890123.0), "1234567890123");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
  EXPECT_EQ(std::stod(format_value(0.1 + 0.2)), 0.1 + 0.2);  // shortest round-trip form
}

TEST(MetricsRegistry, EscapeLabelValue) {
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

}  // namespace
}  // namespace eta::metrics
