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

}  // namespace
}  // namespace eta::router
