// Per-API-key rate limits of `eta route` (pure: no networking, no clock of its own).
//
// Each key may have a request rate and a token rate, both per minute, enforced as token buckets
// that hold at most one minute's allowance and refill continuously (limit / 60 per second). A
// request costs 1 request and (prompt tokens + max_tokens) tokens, charged when it is admitted,
// as OpenAI does; a request that needs more tokens than a full bucket holds is charged a full
// bucket (it waits for the bucket to fill, instead of never passing). A refused request is not
// charged. Retry-After is the time until both buckets hold enough, rounded up to whole seconds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace eta::router {

struct RateLimit {
  double requests_per_minute = 0;  // 0: no limit
  double tokens_per_minute = 0;    // 0: no limit
  bool any() const { return requests_per_minute > 0 || tokens_per_minute > 0; }
};

class RateLimiter {
 public:
  struct Verdict {
    bool allowed = true;
    int retry_after_s = 0;  // when refused: whole seconds until it would pass (>= 1)
    bool tokens = false;    // refused for tokens (else for requests)
  };

  // Charges `tokens` and one request to `key` at time `now_s` (any monotonic seconds) under
  // `limit`, or refuses without charging. Keys without limits always pass.
  Verdict charge(std::string_view key, const RateLimit& limit, double tokens, double now_s);

  // A charge another router admitted for `key` (peer sync, issue 13): taken whatever the buckets
  // hold. They may go below zero, down to minus one minute's allowance, so that several routers
  // together admit the configured rate (each sees every router's charges, a few ms late).
  void consume(std::string_view key, const RateLimit& limit, double requests, double tokens,
               double now_s);

  size_t keys() const { return buckets_.size(); }

 private:
  struct Bucket {
    double requests = 0;  // available
    double tokens = 0;
    double last_s = 0;
  };
  // The key's bucket, refilled up to `now_s`.
  Bucket& refill(std::string_view key, const RateLimit& limit, double now_s);
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace eta::router
