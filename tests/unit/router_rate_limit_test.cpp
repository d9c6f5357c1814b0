#include <gtest/gtest.h>

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

}  // namespace
}  // namespace eta::router
