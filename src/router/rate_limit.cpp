#include "router/rate_limit.hpp"

#include <algorithm>
#include <cmath>

namespace eta::router {

RateLimiter::Bucket& RateLimiter::refill(std::string_view key, const RateLimit& limit,
                                         double now_s) {
  auto [it, fresh] = buckets_.try_emplace(std::string(key));
  Bucket& b = it->second;
  const double rpm = limit.requests_per_minute;
  const double tpm = limit.tokens_per_minute;
  if (fresh) {
    b.requests = rpm;
    b.tokens = tpm;
  } else {
    const double dt = std::max(0.0, now_s - b.last_s);
    b.requests = std::min(rpm, b.requests + dt * rpm / 60.0);
    b.tokens = std::min(tpm, b.tokens + dt * tpm / 60.0);
  }
  b.last_s = now_s;
  b.limit = limit;
  return b;
}

void RateLimiter::consume(std::string_view key, const RateLimit& limit, double requests,
                          double tokens, double now_s) {
  if (!limit.any()) return;
  Bucket& b = refill(key, limit, now_s);
  const double rpm = limit.requests_per_minute;
  const double tpm = limit.tokens_per_minute;
  if (rpm > 0) b.requests = std::max(-rpm, b.requests - std::max(requests, 0.0));
  if (tpm > 0) b.tokens = std::max(-tpm, b.tokens - std::min(std::max(tokens, 0.0), tpm));
}

RateLimiter::Verdict RateLimiter::charge(std::string_view key, const RateLimit& limit,
                                         double tokens, double now_s) {
  Verdict v;
  if (!limit.any()) return v;
  Bucket& b = refill(key, limit, now_s);
  const double rpm = limit.requests_per_minute;
  const double tpm = limit.tokens_per_minute;
  const double own_tokens = std::max(tokens, 0.0);
  // In an outage one admission stands for each router last seen (at most a full bucket).
  const double weight = outage_ ? routers_ : 1.0;
  const double need_requests = rpm > 0 ? std::max(1.0, std::min(weight, rpm)) : 0;
  const double need_tokens = tpm > 0 ? std::min(own_tokens * weight, tpm) : 0;
  double wait_s = 0;
  if (rpm > 0 && b.requests < need_requests)
    wait_s = std::max(wait_s, (need_requests - b.requests) * 60.0 / rpm);
  bool token_short = false;
  if (tpm > 0 && b.tokens < need_tokens) {
    const double w = (need_tokens - b.tokens) * 60.0 / tpm;
    token_short = w >= wait_s;
    wait_s = std::max(wait_s, w);
  }
  if (wait_s > 0) {
    v.allowed = false;
    v.tokens = token_short;
    v.retry_after_s = std::max(1, static_cast<int>(std::ceil(wait_s - 1e-9)));
    return v;
  }
  if (rpm > 0) b.requests -= need_requests;
  if (tpm > 0) b.tokens -= need_tokens;
  if (tracking_) {
    const auto second = static_cast<int64_t>(std::floor(now_s));
    if (b.recent.empty() || b.recent.back().second != second) b.recent.push_back({second});
    Slot& s = b.recent.back();
    s.requests += 1;
    s.tokens += own_tokens;
    if (rpm > 0) s.extra_requests += need_requests - 1;
    if (tpm > 0) s.extra_tokens += std::max(0.0, need_tokens - std::min(own_tokens, tpm));
    const auto oldest = static_cast<int64_t>(std::floor(now_s - kWindowS));
    while (b.recent.front().second < oldest) b.recent.pop_front();
  }
  return v;
}

void RateLimiter::begin_outage(int routers, double since_s) {
  if (!outage_) outage_since_s_ = since_s;
  tracking_ = true;
  outage_ = true;
  routers_ = std::max(1, routers);
}

std::vector<RateLimiter::KeyCharge> RateLimiter::end_outage(double now_s) {
  std::vector<KeyCharge> out;
  if (!outage_) return out;
  outage_ = false;
  const auto oldest = static_cast<int64_t>(std::floor(now_s - kWindowS));
  const auto since = std::max(oldest, static_cast<int64_t>(std::floor(outage_since_s_)));
  for (auto& [key, b] : buckets_) {
    while (!b.recent.empty() && b.recent.front().second < oldest) b.recent.pop_front();
    KeyCharge c{key, 0, 0};
    double extra_requests = 0, extra_tokens = 0;
    for (Slot& s : b.recent) {
      if (s.second >= since) {
        c.requests += s.requests;
        c.tokens += s.tokens;
      }
      extra_requests += s.extra_requests;
      extra_tokens += s.extra_tokens;
      s.extra_requests = s.extra_tokens = 0;  // refunded once
    }
    if (extra_requests > 0 || extra_tokens > 0) {
      const RateLimit limit = b.limit;
      refill(key, limit, now_s);
      b.requests = std::min(limit.requests_per_minute, b.requests + extra_requests);
      b.tokens = std::min(limit.tokens_per_minute, b.tokens + extra_tokens);
    }
    if (c.requests > 0) out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(),
            [](const KeyCharge& a, const KeyCharge& b) { return a.key < b.key; });
  return out;
}

}  // namespace eta::router
