// The retry policy: the one answer to "is this failure retried?". An attempt's outcome (how the
// upstream request ended, what status it had), whether bytes of it reached the client, and what
// is left to try decide whether the request moves to another replica, fails (with which status),
// or relays the 5xx held back for it, and whether the failure counts against the replica's
// health. Pure: the proxy's call logic (router/core/router_core.cpp) asks it and does the rest.
//
// The rules:
//   - Nothing reached the client (no head relayed): retried on another replica while attempts
//     are left (`retries` after the first) and another routable replica serves the model; a
//     stored response (pinned to the replica that created it) is never retried elsewhere.
//   - Bytes reached the client: never retried. The client gets a 502/504 (buffered) or an SSE
//     error event (a stream).
//   - A 5xx head is held back (not relayed) when a retry target exists at that moment; out of
//     retries, the last held 5xx is relayed as the replica sent it.
//   - Health: a connect failure, a timeout or a reset before the head marks the replica failed;
//     after the head a reset or timeout does; a 5xx, a protocol error or an oversized response
//     does not (the replica answered).
#pragma once

#include <cstdint>
#include <string_view>

#include "http/message.hpp"

namespace eta::router {

// How an attempt ended.
struct AttemptOutcome {
  http::ClientError error = http::ClientError::kOk;  // kOk: the response arrived whole
  bool head_received = false;                        // the upstream's response head arrived
  bool head_relayed = false;  // ... and went to the client (bytes reached the client)
  bool held = false;          // a 5xx head kept back for a retry
  int status = 0;             // the upstream's status, once its head arrived
  bool unhealthy = false;     // the router moved it: its replica turned unhealthy unanswered
};

// What is left to try.
struct RetryBudget {
  int attempt = 1;         // the attempt that ended (1 = the first)
  int retries = 0;         // extra attempts allowed (RouterConfig::retries)
  bool pinned = false;     // a stored response: its replica alone holds it
  bool has_target = true;  // another routable replica serving the model, not tried yet
};

enum class RetryAction : uint8_t {
  kComplete,  // the response arrived whole and is relayed (2xx, 4xx, unheld 5xx)
  kRetry,     // try another replica (if routing finds none: kRelayHeld or kFail)
  kFail,      // answer the client with `status` (bytes sent: end the stream with an error)
};

struct RetryVerdict {
  RetryAction action = RetryAction::kComplete;
  std::string_view reason;      // eta_errors_total{reason}; empty for kComplete
  bool mark_unhealthy = false;  // count a health failure against the replica
  int status = 0;               // kFail (and kRetry when no replica takes it): 502 or 504
  std::string_view type;        // its OpenAI error type
  bool mid_stream = false;      // kFail after bytes reached the client
};

// Whether a 5xx head should be held back instead of relayed (a retry may replace it).
bool hold_error_head(int status, const RetryBudget& budget);
// Whether a retry is possible at all (attempts left, not pinned, a target exists).
bool can_retry(const RetryBudget& budget);
RetryVerdict decide_retry(const AttemptOutcome& outcome, const RetryBudget& budget);
// The outcome is a whole response to relay (decide_retry's kComplete, whatever the budget).
bool completes(const AttemptOutcome& outcome);

// The same with the budget asked only when the answer depends on it: `budget()` looks at every
// replica, and most heads are not 5xx and most attempts complete (once per request).
template <typename BudgetFn>
bool hold_error_head_lazy(int status, BudgetFn&& budget) {
  return status >= 500 && hold_error_head(status, budget());
}
template <typename BudgetFn>
RetryVerdict decide_retry_lazy(const AttemptOutcome& outcome, BudgetFn&& budget) {
  return completes(outcome) ? RetryVerdict{} : decide_retry(outcome, budget());
}

}  // namespace eta::router
