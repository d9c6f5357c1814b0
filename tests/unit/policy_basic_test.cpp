// round-robin, random, least-request, power-of-two, session.
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

RequestFeatures request() {
  RequestFeatures f;
  f.prompt_tokens = 100;
  f.predicted_output_tokens = 10;
  return f;
}

TEST(PolicyRoundRobin, CyclesAndSkipsUnroutable) {
  TestCluster c(4);
  c.replica(2).routable = false;
  auto p = make("round-robin");
  Rng rng(1);
  std::vector<int> got;
  for (int i = 0; i < 6; ++i) got.push_back(p->pick(request(), c.view(), rng).replica);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 3, 0, 1, 3}));
  EXPECT_EQ(p->name(), "round-robin");
}

TEST(PolicyRandom, SeededReplaysAndSpreadsUniformly) {
  TestCluster c(4);
  auto p = make("random");
  Rng a(7), b(7);
  std::map<int, int> counts;
  for (int i = 0; i < 4000; ++i) {
    const int x = p->pick(request(), c.view(), a).replica;
    EXPECT_EQ(x, p->pick(request(), c.view(), b).replica);
    counts[x]++;
  }
  for (int r = 0; r < 4; ++r) EXPECT_NEAR(counts[r], 1000, 120) << r;
}

TEST(PolicyRandom, HonoursWeights) {
  TestCluster c(2);
  c.replica(0).weight = 3;
  c.replica(1).weight = 1;
  auto p = make("random");
  Rng rng(3);
  int zero = 0;
  for (int i = 0; i < 4000; ++i) zero += p->pick(request(), c.view(), rng).replica == 0;
  EXPECT_NEAR(zero, 3000, 120);
}

TEST(PolicyLeastRequest, PicksFewestInFlightWithRandomTies) {
  TestCluster c(3);
  c.add(0, 10, 10);
  c.add(0, 10, 10);
  c.add(1, 10, 10);
  c.add(2, 10, 10);
  auto p = make("least-request");
  Rng rng(5);
  std::map<int, int> counts;
  for (int i = 0; i < 1000; ++i) counts[p->pick(request(), c.view(), rng).replica]++;
  EXPECT_EQ(counts[0], 0);
  EXPECT_NEAR(counts[1], 500, 80);
  c.add(2, 10, 10);
  EXPECT_EQ(p->pick(request(), c.view(), rng).replica, 1);
  const Decision d = p->pick(request(), c.view(), rng);
  EXPECT_EQ(d.candidate(0)->score, 2);
  EXPECT_EQ(d.reason, "least-request: 1 in flight");
}

TEST(PolicyPowerOfTwo, PicksTheLessLoadedOfTwoDistinctSamples) {
  TestCluster c(3);
  for (int i = 0; i < 10; ++i) c.add(0, 10, 10);
  for (int i = 0; i < 5; ++i) c.add(1, 10, 10);
  auto p = make("power-of-two");
  Rng rng(11);
  std::map<int, int> counts;
  for (int i = 0; i < 3000; ++i) counts[p->pick(request(), c.view(), rng).replica]++;
  // The most loaded replica wins only against itself, which cannot happen (distinct samples).
  EXPECT_EQ(counts[0], 0);
  // Replica 2 wins whenever sampled (2 of 3 pairs); replica 1 wins the pair {0, 1}.
  EXPECT_NEAR(counts[2], 2000, 120);
  EXPECT_NEAR(counts[1], 1000, 120);
  c.replica(0).routable = false;
  c.replica(2).routable = false;
  EXPECT_EQ(p->pick(request(), c.view(), rng).replica, 1);
}

TEST(PolicySession, SameKeySameReplicaAndKeysSpread) {
  TestCluster c(8);
  auto p = make("session");
  Rng rng(1);
  std::map<int, int> homes;
  for (uint64_t key = 0; key < 800; ++key) {
    RequestFeatures f = request();
    f.session_hash = key * 0x9e3779b97f4a7c15ull;
    const int first = p->pick(f, c.view(), rng).replica;
    for (int k = 0; k < 3; ++k) EXPECT_EQ(p->pick(f, c.view(), rng).replica, first);
    homes[first]++;
  }
  for (int r = 0; r < 8; ++r) EXPECT_GT(homes[r], 40) << r;  // ~100 each
  // Another router (a fresh policy object, replicas listed in another order) agrees.
  TestCluster d(8);
  auto q = make("session");
  for (uint64_t key = 0; key < 50; ++key) {
    RequestFeatures f = request();
    f.session_hash = key * 0x9e3779b97f4a7c15ull;
    EXPECT_EQ(q->pick(f, d.view(), rng).replica, p->pick(f, c.view(), rng).replica);
  }
}

TEST(PolicySession, SpillsWhenHomeIsOverTheBoundAndReturnsLater) {
  TestCluster c(4);
  auto p = make("session", {{"load_factor", "1.25"}});
  Rng rng(1);
  RequestFeatures f = request();
  f.session_hash = 12345;
  const int home = p->pick(f, c.view(), rng).replica;
  for (int i = 0; i < 6; ++i) c.add(home, 10, 10);
  // total 6: bound ceil(1.25 * 7 / 4) = 3; home has 6.
  const Decision d = p->pick(f, c.view(), rng);
  EXPECT_NE(d.replica, home);
  EXPECT_NE(d.reason.find("over bound"), std::string::npos) << d.reason;
  // The spill target is stable (next on the ring).
  EXPECT_EQ(p->pick(f, c.view(), rng).replica, d.replica);
  // Home unroutable: spill too. Home back with room: sticks again.
  TestCluster e(4);
  e.replica(home).routable = false;
  EXPECT_NE(p->pick(f, e.view(), rng).replica, home);
  e.replica(home).routable = true;
  EXPECT_EQ(p->pick(f, e.view(), rng).replica, home);
}

TEST(PolicySession, NoKeyFallsBackToLeastRequest) {
  TestCluster c(3);
  c.add(0, 10, 10);
  c.add(2, 10, 10);
  auto p = make("session");
  Rng rng(1);
  EXPECT_EQ(p->pick(request(), c.view(), rng).replica, 1);
}

}  // namespace
}  // namespace eta::policy
