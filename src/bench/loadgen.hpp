// The open-loop load generator of `eta bench`: the only part of src/bench/ that touches Asio
// (through http::UpstreamPool). This header is free of Asio and Beast.
//
// One thread runs one io_context that does everything: a steady timer fires at each request's
// scheduled time (wall clock) and the request leaves then, whether or not earlier ones have
// finished (optionally capped by max_concurrency: a request due while the cap is reached waits
// for a free slot, and that wait shows up as send lateness). Bodies are built by a callback just
// before sending, or ahead of time while the schedule leaves slack, so building them never
// delays a due request by more than one body. Every request gets its own keep-alive connection
// from the pool (no connection limit). Responses are read as they arrive: SSE events are split
// and classified (bench/sse.hpp) and timed at the read that delivered them.
//
// All times here are wall seconds; bench.cpp converts them to the replica's simulated time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/progress.hpp"
#include "http/client.hpp"

namespace eta::bench {

struct PlannedRequest {
  double at_s = 0;        // scheduled send time, wall seconds from the start of the run
  std::string_view path;  // e.g. "/v1/completions" (a static string)
};

// What one request saw (wall seconds).
struct RawResult {
  bool sent = false;
  double scheduled_s = 0;  // from the plan
  double sent_s = 0;       // when it was handed to the client, from the start of the run
  double lateness_s = 0;   // sent_s - scheduled_s
  // "" on success, else connect | timeout | reset | protocol | aborted | stream | http_<status>.
  std::string error_kind;
  std::string error_detail;  // one line (an error event's message, an error body's start, ...)
  int http_status = 0;
  bool first_token = false;
  double ttft_s = 0;  // send -> first token-bearing event
  double e2e_s = 0;   // send -> last byte
  std::vector<double> itls_s;
  int64_t token_events = 0;
  int64_t usage_prompt_tokens = -1;  // from the usage chunk, -1 if none
  int64_t usage_completion_tokens = -1;
  int target = 0;                           // which target (0: the first) it was sent to
  std::string replica;                      // x-eta-replica
  std::optional<double> predicted_ttft_ms;  // x-eta-predicted-ttft-ms
  std::optional<double> predicted_e2e_ms;   // x-eta-predicted-e2e-ms
};

struct LoadgenConfig {
  http::Url target;
  // More targets (several routers): request i goes to target i mod N (round robin) or to one
  // drawn per request with `target_seed` (random); N = 1 + extra_targets.size().
  std::vector<http::Url> extra_targets;
  bool random_targets = false;
  uint64_t target_seed = 0;
  std::vector<PlannedRequest> plan;  // in non-decreasing at_s order
  // Builds the body of request i (called once per request, on the io thread).
  std::function<std::string(size_t)> make_body;
  int max_concurrency = 0;  // 0: none (pure open loop)
  double timeout_s = 0;     // per request, wall seconds; 0: none
  // Extra request headers (Content-Type: application/json is always sent).
  http::Headers headers;
  // Bodies built ahead of their send time are kept up to this many bytes in total.
  size_t prebuild_bytes = 64u << 20;
  // Called on the io thread every progress_interval_s (0: never) and once at the end.
  double progress_interval_s = 0;
  std::function<void(const ProgressCounts&, bool final)> on_progress;
};

struct LoadgenResult {
  std::vector<RawResult> requests;  // one per planned request, in plan order
  double first_send_s = 0;          // wall seconds from the start of the run
  double last_done_s = 0;
  bool interrupted = false;  // SIGINT/SIGTERM stopped the run early (unsent requests: sent=false)
  http::PoolStats pool;
};

// Runs the plan to the end (or until SIGINT/SIGTERM) on the calling thread.
LoadgenResult run_loadgen(const LoadgenConfig& config);

// GET base + target with a timeout; false with a one-line error when the target can't be
// reached or answers other than 200.
bool http_get(const http::Url& url, const std::string& target, double timeout_s, std::string& body,
              std::string& error);

}  // namespace eta::bench
