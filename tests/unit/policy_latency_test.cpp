// llm-d-latency (its Bayesian-ridge latency model and headroom tiers) and least-load (SMG).
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "cluster/state.hpp"
#include "policy/registry.hpp"
#include "policy_test_util.hpp"
#include "predict/latency_model.hpp"

namespace eta::policy {
namespace {

using eta::testing::TestCluster;

std::unique_ptr<Policy> make(std::string_view name, const PolicyParams& params = {}) {
  std::string error;
  auto p = make_policy(name, params, error);
  EXPECT_TRUE(p) << error;
  return p;
}

cluster::ScrapeSnapshot scrape(int waiting, double kv, double tps, double time = 0) {
  cluster::ScrapeSnapshot s;
  s.valid = true;
  s.time_s = time;
  s.waiting = waiting;
  s.kv_usage = kv;
  s.generation_tps = tps;
  return s;
}

TEST(BayesianRidge, RecoversALinearModelFromNoisySamples) {
  predict::BayesianRidge br(3);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0, 100);
  std::normal_distribution<double> noise(0, 0.5);
  for (int i = 0; i < 2000; ++i) {
    const double x[3] = {u(rng), u(rng), u(rng)};
    br.add(x, 7 + 2 * x[0] - 0.5 * x[1] + 0 * x[2] + noise(rng));
  }
  ASSERT_TRUE(br.fit());
  EXPECT_NEAR(br.coefficient(0), 2, 0.01);
  EXPECT_NEAR(br.coefficient(1), -0.5, 0.01);
  EXPECT_NEAR(br.coefficient(2), 0, 0.01);
  EXPECT_NEAR(br.intercept(), 7, 0.3);
  const double x[3] = {10, 20, 30};
  EXPECT_NEAR(br.predict(x), 7 + 20 - 10, 0.3);
}

TEST(BayesianRidge, ShrinksAConstantFeatureAndFitsAConstantTarget) {
  predict::BayesianRidge br(2);
  for (int i = 0; i < 100; ++i) {
    const double x[2] = {5, static_cast<double>(i % 7)};
    br.add(x, 42);
  }
  ASSERT_TRUE(br.fit());
  const double x[2] = {5, 3};
  EXPECT_NEAR(br.predict(x), 42, 1e-6);
}

TEST(LatencyModel, LearnsTtftFromTheQueueAndIsReadyOnlyAfterEnoughSamples) {
  predict::LatencyModel m;
  predict::LatencyFeatures f;
  for (int i = 0; i < 31; ++i) {
    f.waiting = i % 10;
    m.observe_ttft(f, 0.02 + 0.05 * f.waiting);
    m.observe_tpot(f, 0.01 + 0.001 * f.waiting);
  }
  EXPECT_FALSE(m.ready());
  m.observe_ttft(f, 0.02 + 0.05 * f.waiting);
  m.observe_tpot(f, 0.01 + 0.001 * f.waiting);
  ASSERT_TRUE(m.ready());
  f.waiting = 8;
  EXPECT_NEAR(m.predict_ttft_s(f), 0.42, 0.01);
  EXPECT_NEAR(m.predict_tpot_s(f), 0.018, 0.001);
}

// The pool's model trained on TTFT = 50 ms per waiting request, TPOT 20 ms.
predict::LatencyModel trained_model() {
  predict::LatencyModel m;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 400; ++i) {
    predict::LatencyFeatures f;
    f.waiting = static_cast<double>(rng() % 40);
    f.kv_usage = static_cast<double>(rng() % 100) / 100;
    m.observe_ttft(f, 0.05 * f.waiting);
    m.observe_tpot(f, 0.02);
  }
  return m;
}

TEST(PolicyLlmDLatency, BeforeTheModelIsFittedUsesTheCompositeScore) {
  TestCluster c(3);
  c.replica(0).scrape = scrape(6, 0.5, 0);
  c.replica(1).scrape = scrape(0, 0.2, 0);
  c.replica(2).scrape = scrape(3, 0.9, 0);
  auto p = make("llm-d-latency");
  Rng rng(1);
  RequestFeatures f;
  f.prompt_tokens = 100;
  const Decision d = p->pick(f, c.view(0.01), rng);
  EXPECT_EQ(d.replica, 1);  // empty queue, most free KV
  EXPECT_NEAR(d.candidate(1)->score, 0.8 + 1.0, 1e-9);
  EXPECT_NE(d.reason.find("composite"), std::string::npos) << d.reason;
}

TEST(PolicyLlmDLatency, PositiveTierBestFitAndOnePercentExplorationOfTheNegativeTier) {
  const predict::LatencyModel model = trained_model();
  TestCluster c(3);
  c.replica(0).scrape = scrape(0, 0.1, 0);   // ttft ~0     headroom ~1 s
  c.replica(1).scrape = scrape(16, 0.1, 0);  // ttft ~0.8 s headroom ~0.2 s
  c.replica(2).scrape = scrape(30, 0.1, 0);  // ttft ~1.5 s: misses the 1 s SLO
  cluster::ClusterView view = c.view(0.01);
  view.latency = &model;
  auto p = make("llm-d-latency", {{"ttft_slo_s", "1"}, {"tpot_slo_s", "0.1"}});
  Rng rng(7);
  RequestFeatures f;
  f.prompt_tokens = 100;
  std::map<int, int> picks;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++picks[p->pick(f, view, rng).replica];
  // Least headroom is likeliest (weight ~100 vs ~1 with the TTFT blend dominating).
  EXPECT_GT(picks[1], picks[0] * 5);
  EXPECT_GT(picks[0], 0);
  const double explored = static_cast<double>(picks[2]) / n;
  EXPECT_GT(explored, 0.005);
  EXPECT_LT(explored, 0.02);
  const Decision d = p->pick(f, view, rng);
  EXPECT_NEAR(d.candidate(2)->ttft_s, 1.5, 0.05);
}

TEST(PolicyLlmDLatency, MostStrategyPrefersTheLargestHeadroom) {
  const predict::LatencyModel model = trained_model();
  TestCluster c(2);
  c.replica(0).scrape = scrape(0, 0.1, 0);
  c.replica(1).scrape = scrape(16, 0.1, 0);
  cluster::ClusterView view = c.view(0.01);
  view.latency = &model;
  auto p =
      make("llm-d-latency", {{"strategy", "most"}, {"ttft_slo_s", "1"}, {"tpot_slo_s", "0.1"}});
  Rng rng(7);
  RequestFeatures f;
  f.prompt_tokens = 100;
  std::map<int, int> picks;
  for (int i = 0; i < 2000; ++i) ++picks[p->pick(f, view, rng).replica];
  EXPECT_GT(picks[0], picks[1] * 5);
}

TEST(PolicyLlmDLatency, AllNegativePrefersAnEndpointWithNothingOfOursRunning) {
  const predict::LatencyModel model = trained_model();
  TestCluster c(2);
  c.replica(0).scrape = scrape(30, 0.1, 0);  // both miss the SLO; 0 is the lesser miss
  c.replica(1).scrape = scrape(39, 0.1, 0);
  c.add(0, 100, 10);  // but 0 runs a request of ours
  cluster::ClusterView view = c.view(0.01);
  view.latency = &model;
  auto p = make("llm-d-latency", {{"ttft_slo_s", "1"}, {"tpot_slo_s", "0.1"}});
  Rng rng(7);
  RequestFeatures f;
  f.prompt_tokens = 100;
  for (int i = 0; i < 200; ++i) EXPECT_EQ(p->pick(f, view, rng).replica, 1);
}

// Without SLOs (the default: a request without SLO headers) every endpoint has negative
// headroom, and the smaller the predicted latency the likelier the pick.
TEST(PolicyLlmDLatency, WithoutSlosTheLowestPredictedLatencyIsLikeliest) {
  const predict::LatencyModel model = trained_model();
  TestCluster c(3);
  c.replica(0).scrape = scrape(20, 0.1, 0);
  c.replica(1).scrape = scrape(2, 0.1, 0);
  c.replica(2).scrape = scrape(38, 0.1, 0);
  for (int i = 0; i < 3; ++i) c.add(i, 100, 10);  // something of ours runs everywhere
  cluster::ClusterView view = c.view(0.01);
  view.latency = &model;
  auto p = make("llm-d-latency");
  Rng rng(3);
  RequestFeatures f;
  f.prompt_tokens = 100;
  std::map<int, int> picks;
  for (int i = 0; i < 6000; ++i) ++picks[p->pick(f, view, rng).replica];
  EXPECT_GT(picks[1], picks[0]);
  EXPECT_GT(picks[0], picks[2]);
  EXPECT_GT(picks[2], 0);  // weight 18 of 150: still drawn now and then
}

TEST(PolicyLlmDLatency, ClusterStateLearnsTheModelFromRelayedCompletions) {
  cluster::ClusterState state;
  for (int i = 0; i < 2; ++i) {
    cluster::ReplicaSpec spec;
    spec.name = "r" + std::to_string(i);
    spec.engine = eta::testing::config_for();
    state.add_replica(spec);
  }
  cluster::PreparedRequest req;
  double now = 0;
  for (cluster::RequestId id = 0; id < 40; ++id) {
    state.prepare("m", 100 + static_cast<int>(id), {}, std::nullopt, false, std::nullopt, req);
    ASSERT_TRUE(state.on_dispatch(id, static_cast<int>(id % 2), req.features, now));
    state.on_tokens(id, 1, now + 0.1);
    state.on_tokens(id, 1, now + 0.12);
    state.on_tokens(id, 1, now + 0.14);
    state.on_finish(id, now + 0.14);
    now += 1;
  }
  const predict::LatencyModel& m = state.latency_model();
  EXPECT_NEAR(m.ttft_samples(), 40, 0.5);
  ASSERT_TRUE(m.ready());
  EXPECT_NEAR(m.predict_ttft_s(predict::LatencyFeatures{}), 0.1, 0.01);
  EXPECT_NEAR(m.predict_tpot_s(predict::LatencyFeatures{}), 0.02, 0.002);
  EXPECT_EQ(state.view(now).latency, &m);
}

TEST(PolicyLeastLoad, DrainTimePlusKvBarrierAsSmgDefines) {
  TestCluster c(3);
  cluster::ClusterView view = c.view(0.01);
  view.averages.uncached_prompt_tokens = 500;
  c.replica(0).scrape = scrape(4, 0.5, 1000);  // 2000/1000 + 0.15 * 1 = 2.15
  c.replica(1).scrape = scrape(2, 0.0, 0);     // 1000/2000 (default throughput) = 0.5
  c.replica(2).scrape = scrape(0, 0.9, 4000);  // 0 + 0.15 * 9 = 1.35
  view = c.view(0.01);
  view.averages.uncached_prompt_tokens = 500;
  auto p = make("least-load");
  Rng rng(1);
  RequestFeatures f;
  f.prompt_tokens = 1000;
  Decision d = p->pick(f, view, rng);
  EXPECT_NEAR(d.candidate(0)->score, 2.15, 1e-9);
  EXPECT_NEAR(d.candidate(1)->score, 0.5, 1e-9);
  EXPECT_NEAR(d.candidate(2)->score, 1.35, 1e-9);
  EXPECT_EQ(d.replica, 1);
  // In-flight correction: the same scrape, 1000 more tokens on replica 1 -> 1.0; again -> 1.5.
  d = p->pick(f, view, rng);
  EXPECT_NEAR(d.candidate(1)->score, 1.0, 1e-9);
  EXPECT_EQ(d.replica, 1);
  d = p->pick(f, view, rng);
  EXPECT_NEAR(d.candidate(1)->score, 1.5, 1e-9);
  EXPECT_EQ(d.replica, 2);
  // A newer scrape of replica 1 resets its in-flight credit.
  c.replica(1).scrape = scrape(2, 0.0, 0, 0.005);
  view = c.view(0.01);
  view.averages.uncached_prompt_tokens = 500;
  d = p->pick(f, view, rng);
  EXPECT_NEAR(d.candidate(1)->score, 0.5, 1e-9);
}

TEST(PolicyLeastLoad, StaleReplicasAreSizedByInFlightAndADarkFleetIsShortestQueue) {
  TestCluster c(2);
  c.add(1, 100, 10);
  c.add(1, 100, 10);
  c.replica(0).scrape = scrape(0, 0.0, 500, 10);  // fresh at t = 10
  auto p = make("least-load");
  Rng rng(1);
  RequestFeatures f;
  f.prompt_tokens = 10;
  Decision d = p->pick(f, c.view(10.01), rng);
  EXPECT_NEAR(d.candidate(1)->score, 2 * 1024 / 500.0, 1e-9);  // in flight x 1024 / nominal
  EXPECT_EQ(d.replica, 0);
  d = p->pick(f, c.view(100), rng);  // every scrape stale: in-flight counts
  EXPECT_EQ(d.candidate(0)->score, 0);
  EXPECT_EQ(d.candidate(1)->score, 2);
  EXPECT_EQ(d.replica, 0);
}

}  // namespace
}  // namespace eta::policy
