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
  const double need_tokens = tpm > 0 ? std::min(std::max(tokens, 0.0), tpm) : 0;
  double wait_s = 0;
  if (rpm > 0 && b.requests < 1) wait_s = std::max(wait_s, (1 - b.requests) * 60.0 / rpm);
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
  if (rpm > 0) b.requests -= 1;
  if (tpm > 0) b.tokens -= need_tokens;
  return v;
}

}  // namespace eta::router
