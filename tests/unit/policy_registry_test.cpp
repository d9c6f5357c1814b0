#include <gtest/gtest.h>

#include "policy/registry.hpp"

namespace eta::policy {
namespace {

TEST(PolicyRegistry, EveryListedPolicyIsMadeByNameAndFresh) {
  ASSERT_EQ(policy_list().size(), 8u);
  for (const PolicyInfo& info : policy_list()) {
    std::string error;
    auto a = make_policy(info.name, {}, error);
    ASSERT_TRUE(a) << info.name << ": " << error;
    EXPECT_EQ(a->name(), info.name);
    auto b = make_policy(info.name, {}, error);
    EXPECT_NE(a.get(), b.get());
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
