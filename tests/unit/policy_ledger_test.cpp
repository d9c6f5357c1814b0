#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "cluster/ledger.hpp"

namespace eta::cluster {
namespace {

DispatchInfo info(int prompt, int cached, int output, std::optional<int> max_tokens = {}) {
  DispatchInfo d;
  d.prompt_tokens = prompt;
  d.cached_tokens = cached;
  d.predicted_output_tokens = output;
  d.max_tokens = max_tokens;
  return d;
}

double bucket_total(const RemainingOutputSummary& r) {
  double c = 0;
  for (double x : r.count) c += x;
  return c;
}

TEST(PolicyLedger, DispatchTokensFinishKeepAggregatesExact) {
  Ledger l(2);
  ASSERT_TRUE(l.dispatch(1, 0, info(100, 32, 50), 1.0));
  ASSERT_TRUE(l.dispatch(2, 0, info(200, 0, 10), 1.5));
  EXPECT_FALSE(l.dispatch(2, 1, info(1, 0, 1), 2.0)) << "duplicate id";
  EXPECT_FALSE(l.dispatch(3, 7, info(1, 0, 1), 2.0)) << "unknown replica";

  const LedgerSummary& s = l.summary(0);
  EXPECT_EQ(s.in_flight, 2);
  EXPECT_EQ(s.prefilling, 2);
  EXPECT_EQ(s.decoding, 0);
  EXPECT_EQ(s.pending_prefill_tokens, 68 + 200);
  EXPECT_EQ(s.prefill_prompt_tokens, 300);
  EXPECT_EQ(s.kv_tokens, 268);
  EXPECT_EQ(s.predicted_remaining_decode_tokens, 60);
  EXPECT_EQ(bucket_total(s.remaining), 2);
  EXPECT_EQ(l.summary(1).in_flight, 0);

  // First token of request 1 at t=1.25: 0.25 s after dispatch.
  TokenUpdate u = l.tokens(1, 1, 1.25);
  EXPECT_TRUE(u.found && u.first);
  EXPECT_DOUBLE_EQ(u.ttft_s, 0.25);
  EXPECT_EQ(s.prefilling, 1);
  EXPECT_EQ(s.decoding, 1);
  EXPECT_EQ(s.pending_prefill_tokens, 200);
  EXPECT_EQ(s.context_tokens, 101);
  EXPECT_EQ(s.predicted_remaining_decode_tokens, 49 + 10);

  // A chunk of 3 tokens 0.1 s later.
  u = l.tokens(1, 3, 1.35);
  EXPECT_FALSE(u.first);
  EXPECT_NEAR(u.gap_s, 0.1, 1e-12);
  EXPECT_EQ(u.tokens, 3);
  EXPECT_EQ(s.context_tokens, 104);
  EXPECT_EQ(s.kv_tokens, 68 + 4 + 200);
  EXPECT_EQ(s.predicted_remaining_decode_tokens, 46 + 10);

  auto done = l.finish(1);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->generated, 4);
  EXPECT_EQ(s.in_flight, 1);
  EXPECT_EQ(s.decoding, 0);
  EXPECT_EQ(s.context_tokens, 0);
  EXPECT_EQ(s.kv_tokens, 200);
  EXPECT_EQ(s.predicted_remaining_decode_tokens, 10);
  EXPECT_TRUE(l.abort(2));
  EXPECT_FALSE(l.finish(2));
  EXPECT_EQ(s.in_flight, 0);
  EXPECT_EQ(s.kv_tokens, 0);
  EXPECT_EQ(s.pending_prefill_tokens, 0);
  EXPECT_EQ(bucket_total(s.remaining), 0);
  EXPECT_FALSE(l.tokens(99, 1, 2.0).found);
}

TEST(PolicyLedger, OverrunRequestsAreReestimatedAndCappedByMaxTokens) {
  Ledger l(1);
  ASSERT_TRUE(l.dispatch(1, 0, info(10, 0, 20, 40), 0));
  l.tokens(1, 20, 0.1);  // reached its prediction, still running
  const LedgerEntry* e = l.find(1);
  ASSERT_NE(e, nullptr);
  EXPECT_GE(e->remaining(), 1);
  EXPECT_LE(e->predicted_output, 40);
  l.tokens(1, 19, 0.2);  // 39 generated: only the 40th can remain
  EXPECT_EQ(l.find(1)->predicted_output, 40);
  EXPECT_EQ(l.summary(0).predicted_remaining_decode_tokens, 1);
  // A predicted output larger than max_tokens is capped at dispatch.
  ASSERT_TRUE(l.dispatch(2, 0, info(10, 0, 500, 64), 0));
  EXPECT_EQ(l.find(2)->predicted_output, 64);
}

TEST(PolicyLedger, BucketsTrackRemainingOutputAsTokensArrive) {
  Ledger l(1);
  ASSERT_TRUE(l.dispatch(1, 0, info(10, 0, 1000), 0));
  const RemainingOutputSummary& r = l.summary(0).remaining;
  EXPECT_EQ(r.count[RemainingOutputSummary::bucket_of(1000)], 1);
  l.tokens(1, 1000 - 5, 1);
  EXPECT_EQ(r.count[RemainingOutputSummary::bucket_of(1000)], 0);
  EXPECT_EQ(r.count[RemainingOutputSummary::bucket_of(5)], 1);
  EXPECT_EQ(r.remaining_tokens[RemainingOutputSummary::bucket_of(5)], 5);
  EXPECT_EQ(RemainingOutputSummary::bucket_of(1), 0);
  EXPECT_EQ(RemainingOutputSummary::bucket_of(3), 1);
  EXPECT_EQ(RemainingOutputSummary::bucket_of(1 << 20), kRemainingBuckets - 1);
}

TEST(PolicyLedger, RandomEventsLeaveNoResidue) {
  Ledger l(4);
  std::mt19937_64 rng(3);
  std::vector<RequestId> live;
  RequestId next = 1;
  for (int i = 0; i < 20000; ++i) {
    const int op = static_cast<int>(rng() % 4);
    if (op == 0 || live.empty()) {
      ASSERT_TRUE(l.dispatch(next, static_cast<int>(rng() % 4),
                             info(1 + rng() % 3000, rng() % 500, 1 + rng() % 600), i));
      live.push_back(next++);
    } else if (op <= 2) {
      l.tokens(live[rng() % live.size()], 1 + static_cast<int>(rng() % 8), i);
    } else {
      const size_t k = rng() % live.size();
      (rng() % 2 ? l.finish(live[k]) : l.abort(live[k]));
      live[k] = live.back();
      live.pop_back();
    }
  }
  for (RequestId id : live) l.finish(id);
  for (int r = 0; r < 4; ++r) {
    const LedgerSummary& s = l.summary(r);
    EXPECT_EQ(s.in_flight, 0);
    EXPECT_EQ(s.prefilling, 0);
    EXPECT_EQ(s.decoding, 0);
    EXPECT_EQ(s.pending_prefill_tokens, 0);
    EXPECT_EQ(s.prefill_prompt_tokens, 0);
    EXPECT_EQ(s.context_tokens, 0);
    EXPECT_EQ(s.kv_tokens, 0);
    EXPECT_EQ(s.predicted_remaining_decode_tokens, 0);
    for (int b = 0; b < kRemainingBuckets; ++b) {
      EXPECT_EQ(s.remaining.count[b], 0);
      EXPECT_EQ(s.remaining.remaining_tokens[b], 0);
    }
  }
  EXPECT_EQ(l.size(), 0u);
}

TEST(PolicyLedger, ClearReplicaAndAverages) {
  Ledger l(2);
  for (RequestId id = 1; id <= 4; ++id) ASSERT_TRUE(l.dispatch(id, id % 2, info(400, 100, 50), 0));
  EXPECT_NEAR(l.averages().prompt_tokens, 400, 1e-9);
  EXPECT_NEAR(l.averages().uncached_prompt_tokens, 300, 1e-9);
  EXPECT_EQ(l.clear_replica(1), (std::vector<RequestId>{1, 3}));
  EXPECT_EQ(l.summary(1).in_flight, 0);
  EXPECT_EQ(l.summary(0).in_flight, 2);
  l.tokens(2, 30, 1);
  l.finish(2);
  EXPECT_NEAR(l.averages().output_tokens, 30, 1e-9);
}

TEST(PolicyLedger, FinishedRequestsSlotsAreReusedWithoutMixingEntries) {
  Ledger l(2);
  ASSERT_TRUE(l.dispatch(1, 0, info(100, 0, 10), 0));
  ASSERT_TRUE(l.dispatch(2, 0, info(200, 0, 10), 0));
  l.tokens(1, 5, 1);
  ASSERT_TRUE(l.finish(1).has_value());
  EXPECT_EQ(l.find(1), nullptr);
  EXPECT_FALSE(l.finish(1).has_value()) << "already gone";
  EXPECT_EQ(l.tokens(1, 1, 2).found, false);
  ASSERT_TRUE(l.dispatch(3, 1, info(300, 0, 10), 2));  // takes request 1's slot
  ASSERT_NE(l.find(3), nullptr);
  EXPECT_EQ(l.find(3)->replica, 1);
  EXPECT_EQ(l.find(3)->prompt_tokens, 300);
  EXPECT_EQ(l.find(3)->generated, 0);
  EXPECT_EQ(l.find(2)->prompt_tokens, 200);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(l.clear_replica(0), (std::vector<RequestId>{2}));
  EXPECT_EQ(l.clear_replica(0), (std::vector<RequestId>{}));
  EXPECT_EQ(l.clear_replica(1), (std::vector<RequestId>{3}));
  EXPECT_EQ(l.size(), 0u);
  // Many more ids than slots ever live at once.
  for (RequestId id = 10; id < 5000; ++id) {
    ASSERT_TRUE(l.dispatch(id, static_cast<int>(id % 2), info(50, 0, 5), 3));
    if (id % 3 != 0) {
      ASSERT_TRUE(l.finish(id).has_value());
    }
    if (id % 5 == 0) l.abort(id - 9);  // sometimes live (id - 9 a multiple of 3), makes holes
  }
  size_t live = 0;
  for (RequestId id = 10; id < 5000; ++id) live += l.find(id) != nullptr ? 1 : 0;
  EXPECT_EQ(live, l.size());
  EXPECT_EQ(l.summary(0).in_flight + l.summary(1).in_flight, static_cast<int>(l.size()));
}

TEST(PolicyLedger, TracksTheOldestRequestStillWithoutItsFirstToken) {
  constexpr double kNone = std::numeric_limits<double>::infinity();
  Ledger l(2);
  EXPECT_EQ(l.earliest_prefill_dispatch(0), kNone);
  EXPECT_EQ(l.last_first_token(0), -kNone);
  ASSERT_TRUE(l.dispatch(1, 0, info(400, 0, 50), 1.0));
  ASSERT_TRUE(l.dispatch(2, 0, info(400, 0, 50), 2.0));
  ASSERT_TRUE(l.dispatch(3, 1, info(400, 0, 50), 2.5));
  ASSERT_TRUE(l.dispatch(4, 0, info(400, 0, 50), 3.0));
  EXPECT_EQ(l.earliest_prefill_dispatch(0), 1.0);
  EXPECT_EQ(l.earliest_prefill_dispatch(1), 2.5);
  l.tokens(2, 1, 3.5);  // out of order: the oldest still waits
  EXPECT_EQ(l.earliest_prefill_dispatch(0), 1.0);
  EXPECT_EQ(l.last_first_token(0), 3.5);
  l.tokens(1, 1, 4.0);
  EXPECT_EQ(l.earliest_prefill_dispatch(0), 3.0);
  l.tokens(1, 1, 4.5);  // a second token is not a first token
  EXPECT_EQ(l.last_first_token(0), 4.0);
  l.abort(4);
  EXPECT_EQ(l.earliest_prefill_dispatch(0), kNone);
  l.clear_replica(1);
  EXPECT_EQ(l.earliest_prefill_dispatch(1), kNone);
}

}  // namespace
}  // namespace eta::cluster
