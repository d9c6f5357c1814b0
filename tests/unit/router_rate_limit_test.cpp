#include <gtest/gtest.h>

#include <vector>

#include "router/rate_limit.hpp"

namespace eta::router {
namespace {

TEST(RateLimiter, NoLimitAlwaysPasses) {
  RateLimiter l;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(l.charge("k", RateLimit{}, 1e9, 0).allowed);
  EXPECT_EQ(l.keys(), 0u);
}

TEST(RateLimiter, RequestsPerMinuteBurstThenRefill) {
  RateLimiter l;
  RateLimit lim{3, 0};
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(l.charge("k", lim, 0, 0).allowed) << i;
  auto v = l.charge("k", lim, 0, 0);
  EXPECT_FALSE(v.allowed);
  EXPECT_FALSE(v.tokens);
  EXPECT_EQ(v.retry_after_s, 20);  // one request per 20 s
  EXPECT_FALSE(l.charge("k", lim, 0, 19.5).allowed);
  EXPECT_TRUE(l.charge("k", lim, 0, 20.0).allowed);
  // Keys are independent.
  EXPECT_TRUE(l.charge("other", lim, 0, 0).allowed);
}

TEST(RateLimiter, TokensPerMinute) {
  RateLimiter l;
  RateLimit lim{0, 600};  // 10 tokens per second
  EXPECT_TRUE(l.charge("k", lim, 500, 0).allowed);
  auto v = l.charge("k", lim, 200, 0);
  EXPECT_FALSE(v.allowed);
  EXPECT_TRUE(v.tokens);
  EXPECT_EQ(v.retry_after_s, 10);  // 100 more tokens at 10/s
  EXPECT_TRUE(l.charge("k", lim, 200, 10).allowed);
  // A request larger than the whole bucket waits for a full bucket, not forever.
  v = l.charge("k", lim, 5000, 10);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.retry_after_s, 60);
  EXPECT_TRUE(l.charge("k", lim, 5000, 70).allowed);
}

TEST(RateLimiter, RefusedRequestsAreNotCharged) {
  RateLimiter l;
  RateLimit lim{60, 0};  // one per second
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(l.charge("k", lim, 0, 0).allowed);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(l.charge("k", lim, 0, 0.5).allowed);
  EXPECT_TRUE(l.charge("k", lim, 0, 1.0).allowed);
}

// Peer sync: charges admitted by other routers empty this router's bucket too, so that N routers
// sharing their charges admit the configured rate together (simulated here: 3 routers, one
// client sending through each in turn as fast as it can, every charge seen by the others).
TEST(RateLimiter, PeersChargesAreConsumed) {
  RateLimit lim{60, 0};  // one request per second, a burst of 60
  RateLimiter l;
  l.consume("k", lim, 60, 0, 0);  // the whole burst taken elsewhere
  EXPECT_FALSE(l.charge("k", lim, 0, 0.5).allowed);
  EXPECT_TRUE(l.charge("k", lim, 0, 1.0).allowed);
  // It may go below zero, down to one minute's allowance: a late charge still counts.
  l.consume("k", lim, 1000, 0, 1.0);
  EXPECT_FALSE(l.charge("k", lim, 0, 60.5).allowed);
  EXPECT_TRUE(l.charge("k", lim, 0, 121.0).allowed);

  std::vector<RateLimiter> routers(3);
  int admitted = 0;
  const double duration = 120;
  for (int i = 0; i < 3 * 100 * static_cast<int>(duration); ++i) {  // 100 attempts/s per router
    const double t = i / 300.0;
    RateLimiter& r = routers[static_cast<size_t>(i % 3)];
    if (r.charge("k", lim, 0, t).allowed) {
      ++admitted;
      for (size_t j = 0; j < routers.size(); ++j)
        if (j != static_cast<size_t>(i % 3)) routers[j].consume("k", lim, 1, 0, t);
    }
  }
  EXPECT_NEAR(admitted, 60 + duration, 0.1 * (60 + duration));
}

// Peer-sync outages: a router cut off from its peers admits its share (1/routers) and keeps what
// it admitted; reconnected, it refunds the share's stand-in charges and returns its own charges
// (aggregated per key, those of the last minute) for the peers.
TEST(RateLimiter, OutageAdmitsTheShareAndKeepsTheCharges) {
  const RateLimit lim{60, 6000};  // 1 request and 100 tokens per second
  RateLimiter l;
  EXPECT_TRUE(l.end_outage(0).empty());  // no outage: nothing
  l.begin_outage(3, 10.0);
  EXPECT_TRUE(l.in_outage());
  // Each admission costs 3: 20 of the 60 requests (tokens: 100 each, 300 charged of 6000).
  int admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += l.charge("k", lim, 100, 10.0).allowed ? 1 : 0;
  EXPECT_EQ(admitted, 20);
  const RateLimiter::Verdict v = l.charge("k", lim, 100, 10.0);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.retry_after_s, 3);  // three requests' refill
  EXPECT_TRUE(l.charge("other", lim, 10, 10.5).allowed);
  const std::vector<RateLimiter::KeyCharge> told = l.end_outage(11.0);
  EXPECT_FALSE(l.in_outage());
  ASSERT_EQ(told.size(), 2u);
  EXPECT_EQ(told[0].key, "k");  // sorted by key
  EXPECT_EQ(told[0].requests, 20);
  EXPECT_EQ(told[0].tokens, 2000);
  EXPECT_EQ(told[1].key, "other");
  EXPECT_EQ(told[1].requests, 1);
  EXPECT_EQ(told[1].tokens, 10);
  // Refunded: the 40 stand-in requests (the peers' real charges arrive instead) plus 1 s refill,
  // so 41 more now and then none.
  admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += l.charge("k", lim, 0, 11.0).allowed ? 1 : 0;
  EXPECT_EQ(admitted, 41);
  // The refund is once, and a second end_outage is nothing.
  EXPECT_TRUE(l.end_outage(11.0).empty());
  EXPECT_FALSE(l.charge("k", lim, 0, 11.0).allowed);
}

TEST(RateLimiter, OutageChargesAreOnlyThoseSinceItBeganAndOfTheLastMinute) {
  const RateLimit lim{1000, 0};
  RateLimiter l;
  l.begin_outage(1, 0.0);  // peer sync starting: not connected yet, one router known
  ASSERT_TRUE(l.charge("k", lim, 0, 0.5).allowed);
  ASSERT_EQ(l.end_outage(1.0).size(), 1u);  // connected: told
  // Connected: charges are still kept (the last ones may die with the connection) ...
  for (double t : {20.0, 25.0, 28.5}) ASSERT_TRUE(l.charge("k", lim, 0, t).allowed);
  // ... and the outage noticed at 30 counts from 28 (2 s unconfirmed): 28.5 on.
  l.begin_outage(2, 28.0);
  for (double t : {30.0, 50.0, 95.0}) ASSERT_TRUE(l.charge("k", lim, 0, t).allowed);
  // Beginning again (another disconnect callback) does not move the start.
  l.begin_outage(2, 90.0);
  const std::vector<RateLimiter::KeyCharge> told = l.end_outage(100.0);
  ASSERT_EQ(told.size(), 1u);
  // 28.5 and 30 are over a minute old at 100: only 50 and 95.
  EXPECT_EQ(told[0].requests, 2);
  // A bucket's kept charges are bounded: one slot per second of the last minute.
  l.begin_outage(1, 100.0);
  int last_minute = 0;
  for (int i = 0; i < 100000; ++i) {
    const double t = 100.0 + i * 0.01;
    if (l.charge("k", lim, 0, t).allowed && t >= 1040) ++last_minute;
  }
  const std::vector<RateLimiter::KeyCharge> last = l.end_outage(1100.0);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].requests, last_minute);  // the last minute's, not the 1,000 s'
  EXPECT_GT(last_minute, 900);
}

// Two routers, one key: without the outage handling both admit the whole limit while cut off and
// never hear of the other's admissions; with it, together they admit about the limit over the
// outage and the minute after it.
TEST(RateLimiter, TwoIsolatedRoutersAdmitAboutTheLimitTogether) {
  const RateLimit lim{60, 0};
  for (bool handled : {false, true}) {
    std::vector<RateLimiter> r(2);
    int admitted = 0;
    double t = 0;
    auto step = [&](size_t i, bool share) {
      if (r[i].charge("k", lim, 0, t).allowed) {
        ++admitted;
        if (share) r[1 - i].consume("k", lim, 1, 0, t);
      }
    };
    // 30 s connected at 10 attempts/s each, then a 30 s outage, then 60 s connected again.
    for (; t < 30; t += 0.1) step(0, true), step(1, true);
    if (handled)
      for (RateLimiter& x : r) x.begin_outage(2, t);
    for (; t < 60; t += 0.1) step(0, false), step(1, false);
    if (handled) {
      std::vector<RateLimiter::KeyCharge> told[2] = {r[0].end_outage(t), r[1].end_outage(t)};
      for (size_t i = 0; i < 2; ++i)
        for (const RateLimiter::KeyCharge& c : told[i])
          r[1 - i].consume(c.key, lim, c.requests, c.tokens, t);
    }
    for (; t < 120; t += 0.1) step(0, true), step(1, true);
    const double allowed = 60 + 120;  // the burst and two minutes' refill
    if (handled) {
      EXPECT_NEAR(admitted, allowed, 4);
    } else {
      EXPECT_GE(admitted, allowed + 25);  // each admitted the 30 s refill alone: 30 too many
    }
  }
}

}  // namespace
}  // namespace eta::router
