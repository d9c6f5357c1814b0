// eta's shortlist (docs/policies.md, eta: `shortlist_above`, `shortlist`): above the threshold only
// the replicas with the best cheap score (and the longest prefix matches) get the full estimate.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "policy/registry.hpp"
#include "policy_test_util.hpp"

namespace eta::policy {
namespace {

using eta::testing::TestCluster;

std::unique_ptr<Policy> make(const PolicyParams& params = {}) {
  std::string error;
  auto p = make_policy("eta", params, error);
  EXPECT_TRUE(p) << error;
  return p;
}

RequestFeatures request(int prompt, int output) {
  RequestFeatures f;
  f.model = "m";
  f.prompt_tokens = prompt;
  f.predicted_output_tokens = output;
  return f;
}

// n replicas, each with 10..40 requests in flight at random stages and a random speed.
void load(TestCluster& c, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int r = 0; r < n; ++r) {
    c.set_speed_factor(r, 0.6 + 0.4 * static_cast<double>(rng() % 100) / 100);
    const int in_flight = 10 + static_cast<int>(rng() % 31);
    for (int i = 0; i < in_flight; ++i) {
      const int generated = rng() % 3 == 0 ? 0 : 1 + static_cast<int>(rng() % 300);
      c.add(r, 100 + static_cast<int>(rng() % 2000), 20 + static_cast<int>(rng() % 600), generated);
    }
  }
}

TEST(PolicyEtaShortlist, PicksTheFastEmptyReplicaAmongManyLoadedOnes) {
  constexpr int kN = 200;
  auto shortlisted = make();
  auto full = make({{"shortlist_above", "100000"}});
  Rng rng(1);
  const RequestFeatures f = request(800, 200);
  // Replica 137: empty, with a learned speed factor 1.2; the others are loaded and slower.
  TestCluster d(kN);
  std::mt19937_64 g(11);
  for (int r = 0; r < kN; ++r) {
    d.set_speed_factor(r, r == 137 ? 1.2 : 0.6 + 0.4 * static_cast<double>(g() % 100) / 100);
    if (r == 137) continue;
    for (int i = 0; i < 20 + static_cast<int>(g() % 21); ++i)
      d.add(r, 500 + static_cast<int>(g() % 1500), 100 + static_cast<int>(g() % 400),
            static_cast<int>(g() % 200));
  }
  const Decision s = shortlisted->pick(f, d.view(), rng);
  EXPECT_EQ(s.replica, 137) << s.reason;
  EXPECT_EQ(full->pick(f, d.view(), rng).replica, 137);
  // Every routable replica is listed, in view order; those off the shortlist carry no
  // prediction.
  ASSERT_EQ(s.candidates.size(), static_cast<size_t>(kN));
  int predicted = 0;
  for (int r = 0; r < kN; ++r) {
    EXPECT_EQ(s.candidates[static_cast<size_t>(r)].replica, r);
    predicted += std::isfinite(s.candidates[static_cast<size_t>(r)].e2e_s) ? 1 : 0;
  }
  EXPECT_GE(predicted, 32);
  EXPECT_LE(predicted, 40);
  EXPECT_TRUE(std::isfinite(s.candidate(137)->e2e_s));
}

TEST(PolicyEtaShortlist, AlwaysEvaluatesTheLongestPrefixMatches) {
  constexpr int kN = 200;
  TestCluster c(kN);
  for (int r = 0; r < kN; ++r) c.add(r, 1000, 100, 10);
  std::vector<uint64_t> hashes(256);  // 4096-token prompt
  for (size_t i = 0; i < hashes.size(); ++i) hashes[i] = 5000 + i;
  std::vector<uint32_t> matched(kN, 0);
  matched[42] = 250;
  RequestFeatures f = request(4096, 50);
  f.block_hashes = hashes;
  f.matched_blocks = matched;
  Rng rng(1);
  const Decision d = make({{"shortlist", "1"}})->pick(f, c.view(), rng);
  EXPECT_EQ(d.replica, 42) << d.reason;
}

TEST(PolicyEtaShortlist, AtOrBelowTheThresholdDecisionsEqualTheFullEvaluation) {
  for (int n : {4, 16, 64}) {
    TestCluster c(n);
    load(c, n, 100 + static_cast<uint64_t>(n));
    auto dflt = make();
    auto full = make({{"shortlist_above", "100000"}});
    Rng r1(5), r2(5);
    for (int prompt : {50, 700, 3000}) {
      const Decision a = dflt->pick(request(prompt, 150), c.view(), r1);
      const Decision b = full->pick(request(prompt, 150), c.view(), r2);
      EXPECT_EQ(a.replica, b.replica) << n;
      EXPECT_EQ(a.reason, b.reason);
      ASSERT_EQ(a.candidates.size(), b.candidates.size());
      for (size_t i = 0; i < a.candidates.size(); ++i) {
        EXPECT_EQ(a.candidates[i].replica, b.candidates[i].replica);
        EXPECT_EQ(a.candidates[i].e2e_s, b.candidates[i].e2e_s);
        EXPECT_EQ(a.candidates[i].ttft_s, b.candidates[i].ttft_s);
      }
    }
  }
}

TEST(PolicyEtaShortlist, RejectsBadParameters) {
  std::string error;
  EXPECT_FALSE(make_policy("eta", {{"shortlist", "0"}}, error));
  EXPECT_FALSE(make_policy("eta", {{"shortlist_above", "-1"}}, error));
}

}  // namespace
}  // namespace eta::policy
