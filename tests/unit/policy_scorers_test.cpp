// llm-d and cache-aware.
#include <gtest/gtest.h>

#include <map>

#include "policy/registry.hpp"
#include "policy_test_util.hpp"

namespace eta::policy {
namespace {

using eta::testing::TestCluster;

std::unique_ptr<Policy> make(std::string_view name, const PolicyParams& params = {}) {
  std::string error;
  auto p = make_policy(name, params, error);
  EXPECT_TRUE(p) << error;
  return p;
}

cluster::ScrapeSnapshot scrape(int waiting, double kv, double time = 0) {
  cluster::ScrapeSnapshot s;
  s.valid = true;
  s.time_s = time;
  s.waiting = waiting;
  s.kv_usage = kv;
  return s;
}

struct Prompt {
  std::vector<uint64_t> hashes;
  std::vector<uint32_t> matched;
  RequestFeatures features(int blocks) {
    hashes.assign(static_cast<size_t>(blocks), 0);
    for (int i = 0; i < blocks; ++i) hashes[static_cast<size_t>(i)] = 77 + static_cast<uint64_t>(i);
    RequestFeatures f;
    f.prompt_tokens = blocks * 16;
    f.predicted_output_tokens = 10;
    f.block_hashes = hashes;
    f.matched_blocks = matched;
    return f;
  }
};

TEST(PolicyLlmD, WeightedScorersMatchTheGieFormulas) {
  TestCluster c(3);
  c.replica(0).scrape = scrape(0, 0.9);
  c.replica(1).scrape = scrape(10, 0.1);
  c.replica(2).scrape = scrape(5, 0.5);
  Prompt pr;
  pr.matched = {0, 0, 10};
  const RequestFeatures f = pr.features(20);
  auto p = make("llm-d");
  Rng rng(1);
  const Decision d = p->pick(f, c.view(0.1), rng);
  // queue: (10-q)/10 -> 1, 0, 0.5; kv: 0.1, 0.9, 0.5; prefix: 0, 0, 0.5.
  EXPECT_NEAR(d.candidate(0)->score, 2 * 1 + 2 * 0.1 + 0, 1e-9);
  EXPECT_NEAR(d.candidate(1)->score, 0 + 2 * 0.9 + 0, 1e-9);
  EXPECT_NEAR(d.candidate(2)->score, 2 * 0.5 + 2 * 0.5 + 3 * 0.5, 1e-9);
  EXPECT_EQ(d.replica, 2);
  EXPECT_EQ(d.reason.rfind("llm-d: score 3.500", 0), 0u) << d.reason;
  // Without the prefix scorer the short queue wins.
  auto q = make("llm-d", {{"prefix_weight", "0"}});
  EXPECT_EQ(q->pick(f, c.view(0.1), rng).replica, 0);
}

TEST(PolicyLlmD, EqualQueuesScoreOneAndTiesBreakAtRandom) {
  TestCluster c(3);
  for (int r = 0; r < 3; ++r) c.replica(r).scrape = scrape(4, 0.3);
  auto p = make("llm-d");
  Rng rng(2);
  RequestFeatures f;
  f.prompt_tokens = 10;
  std::map<int, int> counts;
  for (int i = 0; i < 900; ++i) {
    const Decision d = p->pick(f, c.view(0), rng);
    EXPECT_NEAR(d.candidate(d.replica)->score, 2 * 1 + 2 * 0.7, 1e-9);
    counts[d.replica]++;
  }
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(counts[r], 300, 60);
}

TEST(PolicyLlmD, StaleScrapesFallBackToTheRoutersOwnCounts) {
  TestCluster c(2);
  c.replica(0).scrape = scrape(0, 0.0, 0);  // says idle, but 10 s old
  c.replica(1).scrape = scrape(0, 0.0, 0);
  for (int i = 0; i < 5; ++i) c.add(0, 2000, 10);  // the router knows replica 0 is busy
  auto p = make("llm-d");
  Rng rng(1);
  RequestFeatures f;
  f.prompt_tokens = 10;
  EXPECT_EQ(p->pick(f, c.view(10), rng).replica, 1);
  // Fresh scrapes win over the ledger (the real EPP reads only metrics).
  c.replica(0).scrape = scrape(0, 0.0, 10);
  c.replica(1).scrape = scrape(3, 0.0, 10);
  EXPECT_EQ(p->pick(f, c.view(10), rng).replica, 0);
}

TEST(PolicyLlmD, PrefixScoreIsCappedAtMaxPrefixBlocks) {
  TestCluster c(2);
  for (int r = 0; r < 2; ++r) c.replica(r).scrape = scrape(0, 0.2);
  Prompt pr;
  pr.matched = {300, 200};
  const RequestFeatures f = pr.features(400);
  auto p = make("llm-d", {{"max_prefix_blocks", "256"}});
  Rng rng(1);
  const Decision d = p->pick(f, c.view(0), rng);
  EXPECT_NEAR(d.candidate(0)->score, 2 + 1.6 + 3 * 1.0, 1e-9);
  EXPECT_NEAR(d.candidate(1)->score, 2 + 1.6 + 3 * 200.0 / 256, 1e-9);
}

TEST(PolicyCacheAware, ImbalancedLoadGoesToTheShortestQueue) {
  TestCluster c(3);
  for (int i = 0; i < 40; ++i) c.add(0, 10, 10);  // max 40, min 2: 38 > 32 and 40 > 1.5 * 2
  for (int i = 0; i < 2; ++i) c.add(1, 10, 10);
  for (int i = 0; i < 5; ++i) c.add(2, 10, 10);
  Prompt pr;
  pr.matched = {20, 0, 0};  // replica 0 holds the whole prompt, but is overloaded
  const RequestFeatures f = pr.features(20);
  auto p = make("cache-aware");
  Rng rng(1);
  const Decision d = p->pick(f, c.view(), rng);
  EXPECT_EQ(d.replica, 1);
  EXPECT_NE(d.reason.find("imbalanced"), std::string::npos) << d.reason;
}

TEST(PolicyCacheAware, BalancedLoadFollowsTheBestPrefixMatchAboveThreshold) {
  TestCluster c(3);
  for (int i = 0; i < 20; ++i) c.add(0, 10, 10);  // 20 vs 2: diff 18 <= 32, balanced
  for (int i = 0; i < 2; ++i) c.add(1, 10, 10);
  Prompt pr;
  pr.matched = {12, 3, 0};
  auto p = make("cache-aware");
  Rng rng(1);
  EXPECT_EQ(p->pick(pr.features(20), c.view(), rng).replica, 0);  // 12/20 = 0.6 > 0.5
  pr.matched = {9, 3, 0};
  EXPECT_EQ(p->pick(pr.features(20), c.view(), rng).replica, 2);  // 0.45: least loaded
  // Equal best matches: the less loaded of them.
  pr.matched = {15, 15, 0};
  EXPECT_EQ(p->pick(pr.features(20), c.view(), rng).replica, 1);
  // Thresholds are parameters.
  auto q = make("cache-aware", {{"cache_threshold", "0.1"}});
  pr.matched = {0, 0, 3};
  EXPECT_EQ(q->pick(pr.features(20), c.view(), rng).replica, 2);
  auto strict = make("cache-aware", {{"balance_abs_threshold", "10"}});
  pr.matched = {20, 0, 0};
  EXPECT_EQ(strict->pick(pr.features(20), c.view(), rng).replica, 2);
}

}  // namespace
}  // namespace eta::policy
