#include "router/core/retry_policy.hpp"

namespace eta::router {

namespace {

using http::ClientError;

std::string_view failure_reason(ClientError error) {
  switch (error) {
    case ClientError::kConnectRefused:
    case ClientError::kConnectFailed:
      return "upstream_connect";
    case ClientError::kTimeout:
      return "upstream_timeout";
    case ClientError::kProtocolError:
      return "upstream_protocol";
    default:
      return "upstream_reset";
  }
}

void set_gateway_error(RetryVerdict& v, bool timeout) {
  v.status = timeout ? 504 : 502;
  v.type = timeout ? "GatewayTimeoutError" : "BadGatewayError";
}

}  // namespace

bool can_retry(const RetryBudget& b) {
  return b.attempt <= b.retries && !b.pinned && b.has_target;
}

bool hold_error_head(int status, const RetryBudget& budget) {
  return status >= 500 && can_retry(budget);
}

bool completes(const AttemptOutcome& o) {
  return !o.unhealthy && o.error == ClientError::kOk && !o.held;
}

RetryVerdict decide_retry(const AttemptOutcome& o, const RetryBudget& b) {
  RetryVerdict v;
  const bool timeout = o.error == ClientError::kTimeout;
  if (o.unhealthy) {
    // Moved by the router: its replica turned unhealthy before answering (already counted).
    v.reason = "upstream_unhealthy";
    v.action = can_retry(b) ? RetryAction::kRetry : RetryAction::kFail;
    set_gateway_error(v, false);
    return v;
  }
  if (completes(o)) return v;  // kComplete: relayed as it came
  if (o.error == ClientError::kOk) {
    // vLLM's 503 is its full queue (--max-num-queued-reqs): a load signal, not a failure.
    v.reason = o.status == 503 ? "upstream_overloaded" : "upstream_5xx";
    v.action = can_retry(b) ? RetryAction::kRetry : RetryAction::kFail;
    set_gateway_error(v, false);
    return v;
  }
  if (!o.head_received || o.held) {
    // Nothing reached the client: try another replica. The replica answered nothing usable;
    // it failed unless it answered (a held 5xx, a malformed or oversized response).
    v.reason = failure_reason(o.error);
    v.mark_unhealthy =
        !o.held && o.error != ClientError::kTooLarge && o.error != ClientError::kProtocolError;
    v.action = can_retry(b) ? RetryAction::kRetry : RetryAction::kFail;
    set_gateway_error(v, timeout);
    return v;
  }
  // The head was relayed (or the response is being buffered for the client): no retry.
  v.reason = "mid_stream";
  v.action = RetryAction::kFail;
  v.mid_stream = true;
  v.mark_unhealthy = o.error == ClientError::kReset || timeout;
  set_gateway_error(v, timeout);
  return v;
}

}  // namespace eta::router
