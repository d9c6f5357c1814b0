#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "policy/registry.hpp"
#include "policy_test_util.hpp"

namespace eta::policy {
namespace {

TEST(PolicyRegistry, EveryListedPolicyIsMadeByNameAndFresh) {
  ASSERT_EQ(policy_list().size(), 10u);
  for (const PolicyInfo& info : policy_list()) {
    std::string error;
    auto a = make_policy(info.name, {}, error);
    ASSERT_TRUE(a) << info.name << ": " << error;
    EXPECT_EQ(a->name(), info.name);
    auto b = make_policy(info.name, {}, error);
    EXPECT_NE(a.get(), b.get());
  }
}

// Decision::explain = false (cluster-sim) skips the reason text and nothing else: every policy
// makes the same picks, with the same candidates, from the same random draws.
TEST(PolicyRegistry, ExplainOffChangesOnlyTheReason) {
  testing::TestCluster cluster(4);
  cluster.add(0, 900, 200, 50);
  cluster.add(1, 300, 100);
  cluster.add(1, 2000, 50, 10);
  cluster.add(3, 100, 400, 100);
  const std::vector<uint64_t> hashes{11, 12, 13, 14};
  const std::vector<uint32_t> matched{4, 0, 2, 0};
  for (const PolicyInfo& info : policy_list()) {
    std::string error;
    auto on = make_policy(info.name, {}, error);
    auto off = make_policy(info.name, {}, error);
    ASSERT_TRUE(on && off) << error;
    Rng rng_on(5), rng_off(5);
    cluster::Decision d_on, d_off;
    d_off.explain = false;
    for (int i = 0; i < 50; ++i) {
      cluster::RequestFeatures f;
      f.prompt_tokens = 64 + 37 * i;
      f.block_hashes = hashes;
      f.matched_blocks = matched;
      f.predicted_output_tokens = 10 + 13 * i;
      if (i % 3 == 0) f.session_hash = static_cast<uint64_t>(i % 4);
      const cluster::ClusterView view = cluster.view(0.1 * i);
      on->pick_into(f, view, rng_on, d_on);
      off->pick_into(f, view, rng_off, d_off);
      ASSERT_EQ(d_on.replica, d_off.replica) << info.name << " pick " << i;
      ASSERT_EQ(d_on.candidates.size(), d_off.candidates.size()) << info.name;
      for (size_t k = 0; k < d_on.candidates.size(); ++k) {
        EXPECT_EQ(d_on.candidates[k].replica, d_off.candidates[k].replica);
        EXPECT_EQ(d_on.candidates[k].score, d_off.candidates[k].score) << info.name;
      }
      EXPECT_FALSE(d_on.reason.empty()) << info.name;
    }
    EXPECT_EQ(rng_on.below(1000000), rng_off.below(1000000)) << info.name;
  }
}

TEST(PolicyRegistry, UnknownNameIsAnError) {
  std::string error;
  EXPECT_EQ(make_policy("fastest", {}, error), nullptr);
  EXPECT_NE(error.find("unknown policy 'fastest'"), std::string::npos) << error;
  EXPECT_NE(error.find("eta"), std::string::npos) << "lists the known names: " << error;
}

TEST(PolicyRegistry, UnknownOrMalformedParametersAreErrors) {
  std::string error;
  EXPECT_EQ(make_policy("round-robin", {{"foo", "1"}}, error), nullptr);
  EXPECT_NE(error.find("unknown parameter 'foo'"), std::string::npos) << error;
  error.clear();
  EXPECT_EQ(make_policy("cache-aware", {{"cache_threshold", "1.5"}}, error), nullptr);
  EXPECT_NE(error.find("cache_threshold"), std::string::npos) << error;
  error.clear();
  EXPECT_EQ(make_policy("llm-d", {{"queue_weight", "two"}}, error), nullptr);
  error.clear();
  EXPECT_EQ(make_policy("eta", {{"objective", "fastest"}}, error), nullptr);
  error.clear();
  EXPECT_EQ(make_policy("eta", {{"objective", "slo"}}, error), nullptr) << "slo needs an slo";
  error.clear();
  EXPECT_EQ(make_policy("eta", {{"default_gpu", "tpu"}}, error), nullptr);
  error.clear();
  EXPECT_EQ(make_policy("session", {{"virtual_nodes", "2.5"}}, error), nullptr);
  error.clear();
  EXPECT_NE(
      make_policy("eta", {{"objective", "slo"}, {"ttft_slo_s", "0.5"}, {"use_scrape", "false"}},
                  error),
      nullptr)
      << error;
}

TEST(PolicyRegistry, ParsesKeyValueLists) {
  PolicyParams p;
  std::string error;
  ASSERT_TRUE(parse_policy_params("objective=slo,ttft_slo_s=0.5,,e2e_slo_s=10", p, error));
  EXPECT_EQ(p.size(), 3u);
  EXPECT_EQ(p["ttft_slo_s"], "0.5");
  EXPECT_FALSE(parse_policy_params("objective", p, error));
  EXPECT_FALSE(parse_policy_params("=3", p, error));
}

}  // namespace
}  // namespace eta::policy
