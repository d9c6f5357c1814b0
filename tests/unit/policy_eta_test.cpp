#include <gtest/gtest.h>

#include <sstream>

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

RequestFeatures request(int prompt, int output) {
  RequestFeatures f;
  f.model = "m";
  f.prompt_tokens = prompt;
  f.predicted_output_tokens = output;
  return f;
}

std::string describe(const Decision& d) {
  std::ostringstream s;
  s << d.reason << " |";
  for (const Candidate& c : d.candidates)
    s << " r" << c.replica << ": ttft " << c.ttft_s << " e2e " << c.e2e_s;
  return s.str();
}

TEST(PolicyEta, PrefersTheFasterReplicaAtEqualLoad) {
  TestCluster c(3);
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < 4; ++i) c.add(r, 500, 200, 20);
  c.set_speed_factor(0, 0.5);
  c.set_speed_factor(1, 1.0);
  c.set_speed_factor(2, 0.8);
  auto p = make("eta");
  Rng rng(1);
  const Decision d = p->pick(request(500, 100), c.view(), rng);
  EXPECT_EQ(d.replica, 1) << describe(d);
  ASSERT_EQ(d.candidates.size(), 3u);
  EXPECT_NEAR(d.candidate(0)->e2e_s, 2 * d.candidate(1)->e2e_s, 1e-9);
  EXPECT_LT(d.candidate(1)->e2e_s, d.candidate(2)->e2e_s);
}

TEST(PolicyEta, PrefersTheReplicaHoldingThePromptPrefixAtEqualLoad) {
  TestCluster c(3);
  for (int r = 0; r < 3; ++r) c.add(r, 800, 100, 10);
  std::vector<uint64_t> hashes(128);  // 2048-token prompt
  for (size_t i = 0; i < hashes.size(); ++i) hashes[i] = 1000 + i;
  const std::vector<uint32_t> matched = {0, 120, 40};
  RequestFeatures f = request(2048, 50);
  f.block_hashes = hashes;
  f.matched_blocks = matched;
  auto p = make("eta");
  Rng rng(1);
  const Decision d = p->pick(f, c.view(), rng);
  EXPECT_EQ(d.replica, 1) << describe(d);
  EXPECT_LT(d.candidate(1)->ttft_s, d.candidate(2)->ttft_s);
  EXPECT_LT(d.candidate(2)->ttft_s, d.candidate(0)->ttft_s);
}

TEST(PolicyEta, PrefersMoreButNearlyFinishedRequestsOverFewerLongOnes) {
  // The seed article: replica 0 runs two short requests about to finish, replica 1 one long
  // request with a large context. Fewer requests is not better.
  TestCluster c(2);
  c.add(0, 200, 100, 95);
  c.add(0, 200, 100, 95);
  c.add(1, 3000, 1000, 10);
  auto eta = make("eta");
  Rng rng(1);
  const Decision d = eta->pick(request(200, 100), c.view(), rng);
  EXPECT_EQ(d.replica, 0) << describe(d);
  // least-request, by contrast, counts requests.
  EXPECT_EQ(make("least-request")->pick(request(200, 100), c.view(), rng).replica, 1);
}

TEST(PolicyEta, AvoidsAReplicaWithALongPrefillQueue) {
  TestCluster c(2);
  for (int i = 0; i < 3; ++i) c.add(0, 4000, 100);      // 12000 tokens waiting for prefill
  for (int i = 0; i < 6; ++i) c.add(1, 500, 300, 250);  // more requests, all decoding
  auto p = make("eta");
  Rng rng(1);
  const Decision d = p->pick(request(500, 50), c.view(), rng);
  EXPECT_EQ(d.replica, 1) << describe(d);
  EXPECT_GT(d.candidate(0)->ttft_s, 3 * d.candidate(1)->ttft_s);
}

TEST(PolicyEta, ObjectivesTtftAndSloChooseDifferently) {
  // Replica 0: nothing queued but a heavy decode batch (fast first token, slow decode).
  // Replica 1: 16k tokens of prefill queued, no decodes (slow first token, fast decode).
  TestCluster c(2);
  for (int i = 0; i < 40; ++i) c.add(0, 1500, 1000, 50);
  for (int i = 0; i < 4; ++i) c.add(1, 4096, 100);
  Rng rng(1);
  const RequestFeatures f = request(500, 100);
  const Decision e2e = make("eta")->pick(f, c.view(), rng);
  const Decision ttft = make("eta", {{"objective", "ttft"}})->pick(f, c.view(), rng);
  EXPECT_EQ(e2e.replica, 1) << describe(e2e);
  EXPECT_EQ(ttft.replica, 0) << describe(ttft);
  // With a 0.2 s TTFT SLO only replica 0 can meet it: slo picks it despite its larger e2e.
  const double e2e0 = e2e.candidate(0)->e2e_s;
  ASSERT_LT(e2e.candidate(0)->ttft_s, 0.2) << describe(e2e);
  ASSERT_GT(e2e.candidate(1)->ttft_s, 0.2) << describe(e2e);
  const Decision slo =
      make("eta",
           {{"objective", "slo"}, {"ttft_slo_s", "0.2"}, {"e2e_slo_s", std::to_string(e2e0 + 1)}})
          ->pick(f, c.view(), rng);
  EXPECT_EQ(slo.replica, 0) << describe(slo);
  EXPECT_NE(slo.reason.find("meets slo"), std::string::npos) << slo.reason;
  // When nobody can meet it, the smallest e2e wins.
  const Decision none =
      make("eta", {{"objective", "slo"}, {"ttft_slo_s", "0.001"}})->pick(f, c.view(), rng);
  EXPECT_EQ(none.replica, 1) << describe(none);
}

TEST(PolicyEta, UsesFreshScrapesForOtherRoutersWorkAndIgnoresStaleOnes) {
  TestCluster c(2);
  cluster::ScrapeSnapshot busy;
  busy.valid = true;
  busy.time_s = 100;
  busy.waiting = 30;
  busy.running = 60;
  busy.kv_usage = 0.7;
  c.replica(0).scrape = busy;
  auto p = make("eta");
  Rng rng(3);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(p->pick(request(500, 100), c.view(100.5), rng).replica, 1);
  // Ten seconds later the scrape is stale: both replicas look idle, ties break at random.
  int zero = 0;
  for (int i = 0; i < 200; ++i) {
    const Decision d = p->pick(request(500, 100), c.view(110), rng);
    EXPECT_DOUBLE_EQ(d.candidate(0)->e2e_s, d.candidate(1)->e2e_s);
    zero += d.replica == 0;
  }
  EXPECT_GT(zero, 60);
  EXPECT_LT(zero, 140);
}

TEST(PolicyEta, AvoidsAReplicaWhoseKvCacheIsFull) {
  TestCluster c(2);
  c.replica(0).limits.num_gpu_blocks = 300;
  c.replica(1).limits.num_gpu_blocks = 7000;
  c.add(0, 4000, 800, 100);  // fills replica 0's 4800 tokens of KV
  for (int i = 0; i < 3; ++i) c.add(1, 1500, 800, 100);
  auto p = make("eta");
  Rng rng(1);
  const Decision d = p->pick(request(1000, 100), c.view(), rng);
  EXPECT_EQ(d.replica, 1) << describe(d);
  EXPECT_GT(d.candidate(0)->ttft_s, 1.0) << describe(d);
}

TEST(PolicyEta, SkipsUnroutableReplicasAndReportsEveryCandidate) {
  TestCluster c(4);
  c.replica(1).routable = false;
  c.add(2, 8000, 10);
  auto p = make("eta");
  Rng rng(1);
  const Decision d = p->pick(request(100, 10), c.view(), rng);
  ASSERT_EQ(d.candidates.size(), 3u);
  EXPECT_EQ(d.candidate(1), nullptr);
  EXPECT_NE(d.replica, 1);
  EXPECT_NE(d.replica, 2);
  for (const Candidate& cand : d.candidates) {
    EXPECT_GT(cand.ttft_s, 0);
    EXPECT_GE(cand.e2e_s, cand.ttft_s);
  }
  EXPECT_EQ(d.reason.rfind("eta: e2e ", 0), 0u) << d.reason;
  for (int r = 0; r < 4; ++r) c.replica(r).routable = false;
  const Decision none = p->pick(request(100, 10), c.view(), rng);
  EXPECT_EQ(none.replica, -1);
  EXPECT_FALSE(none.ok());
}

}  // namespace
}  // namespace eta::policy
