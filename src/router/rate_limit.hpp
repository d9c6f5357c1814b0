// Per-API-key rate limits of `eta route` (pure: no networking, no clock of its own).
//
// Each key may have a request rate and a token rate, both per minute, enforced as token buckets
// that hold at most one minute's allowance and refill continuously (limit / 60 per second). A
// request costs 1 request and (prompt tokens + max_tokens) tokens, charged when it is admitted,
// as OpenAI does; a request that needs more tokens than a full bucket holds is charged a full
// bucket (it waits for the bucket to fill, instead of never passing). A refused request is not
// charged. Retry-After is the time until both buckets hold enough, rounded up to whole seconds.
// Across routers (peer sync): consume() takes the peers' charges, and begin_outage/end_outage
// (below) keep the limit while the routers cannot tell each other.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

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

  // Peer-sync outages (issue 13; docs/architecture.md, "Rate limits across routers"). Once the
  // first outage begins (a router with peer sync starts in one: not yet connected), every charge
  // this router admits is also kept, per key in one-second slots, for one minute (a bucket holds
  // one minute's allowance: older charges no longer matter). While an outage lasts:
  //   - each admission is charged `routers` times (the routers last seen, this one included;
  //     capped at a full bucket): this router admits its share, 1/routers of the limit, so that
  //     routers cut off from each other admit about the limit together, not `routers` times it;
  //   - end_outage() refunds those stand-in charges (the peers' real charges arrive in their
  //     place) and returns this router's own charges made since `since_s` (to the second, and
  //     only those younger than a minute), one aggregate per key, for the peers to consume.
  struct KeyCharge {
    std::string key;
    double requests = 0;
    double tokens = 0;
  };
  void begin_outage(int routers, double since_s);
  std::vector<KeyCharge> end_outage(double now_s);
  bool in_outage() const { return outage_; }

  size_t keys() const { return buckets_.size(); }

 private:
  struct Slot {           // the charges of one second
    int64_t second = 0;   // floor(now_s)
    double requests = 0;  // this router's own admissions
    double tokens = 0;
    double extra_requests = 0;  // charged beyond them in an outage (the peers' stand-in)
    double extra_tokens = 0;
  };
  struct Bucket {
    double requests = 0;  // available
    double tokens = 0;
    double last_s = 0;
    RateLimit limit;          // at the last refill
    std::deque<Slot> recent;  // kept once tracking_: the last minute's charges
  };
  static constexpr double kWindowS = 60;
  // The key's bucket, refilled up to `now_s`.
  Bucket& refill(std::string_view key, const RateLimit& limit, double now_s);
  std::unordered_map<std::string, Bucket> buckets_;
  bool tracking_ = false;
  bool outage_ = false;
  double routers_ = 1;
  double outage_since_s_ = 0;
};

}  // namespace eta::router
