// Timing one request's OpenAI stream the way `vllm bench serve` does (../shared/vllm-interface.md
// §3 and §7), on top of the shared SSE scanner and event classifier (openai/sse.hpp):
//
//   TTFT  send -> the first token-bearing event;
//   ITL   every gap between successive token-bearing events;
//   E2E   send -> the last byte of the response.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "openai/sse.hpp"

namespace eta::bench {

using openai::EventInfo;
using openai::EventKind;
using openai::EventParser;
using openai::SseScanner;

// One request's stream timing and token counts. Times are seconds on any clock, passed in; the
// bench passes wall seconds since the request was sent and scales them afterwards.
class StreamTimer {
 public:
  // Records an event that arrived at `t` (seconds since send). Events that arrive together in
  // one read get the same `t`.
  void on_event(const EventInfo& info, double t);

  bool first_token_seen() const { return token_events_ > 0; }
  double ttft() const { return first_token_; }
  double last_token() const { return last_token_; }
  const std::vector<double>& itls() const { return itls_; }
  std::vector<double>& mutable_itls() { return itls_; }
  int64_t token_events() const { return token_events_; }
  bool done() const { return done_; }
  bool error() const { return error_; }
  const std::string& error_message() const { return error_message_; }
  // From the last event that carried usage; -1 if none did.
  int64_t usage_prompt_tokens() const { return usage_prompt_; }
  int64_t usage_completion_tokens() const { return usage_completion_; }
  // Output tokens: the usage's completion_tokens, else the number of token-bearing events.
  int64_t output_tokens() const {
    return usage_completion_ >= 0 ? usage_completion_ : token_events_;
  }
  int64_t malformed_events() const { return malformed_; }

 private:
  double first_token_ = 0;
  double last_token_ = 0;
  std::vector<double> itls_;
  int64_t token_events_ = 0;
  int64_t usage_prompt_ = -1;
  int64_t usage_completion_ = -1;
  int64_t malformed_ = 0;
  bool done_ = false;
  bool error_ = false;
  std::string error_message_;
};

}  // namespace eta::bench
