// Counting the output tokens of a relayed OpenAI stream for the router's ledger, on top of the
// shared SSE scanner and event classifier (openai/sse.hpp, the same code `eta bench` times
// streams with). The router writes each upstream piece to the client first and then feeds it
// here; events split across pieces (or several events in one piece) are handled, and an event
// longer than the bound is dropped (counted as malformed) instead of growing the buffer.
//
// Counting rule: each token-bearing event (openai::EventKind::kToken) counts as one token (vLLM
// sends one event per engine step and token). `data: [DONE]` ends the stream. A final chunk's
// `usage.completion_tokens` (stream_options.include_usage) is the exact count and is kept. An
// event with a top-level `error` object (vLLM's mid-stream error) is remembered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "openai/sse.hpp"

namespace eta::router {

class StreamTokenCounter {
 public:
  static constexpr size_t kDefaultMaxEventBytes = openai::SseScanner::kDefaultMaxEventBytes;
  explicit StreamTokenCounter(size_t max_event_bytes = kDefaultMaxEventBytes)
      : scanner_(max_event_bytes) {}

  // Scans the next piece of the stream; returns how many tokens the events completed in it
  // carried.
  int feed(std::string_view bytes);

  int tokens() const { return tokens_; }  // tokens counted so far
  uint64_t events() const { return events_; }
  bool done() const { return done_; }  // saw data: [DONE]
  // Bytes of an unfinished event (the stream stopped inside it).
  size_t pending_bytes() const { return scanner_.pending_bytes(); }
  bool saw_error() const { return saw_error_; }
  // Events that were not JSON, or were dropped for being over the bound.
  uint64_t malformed() const { return malformed_ + scanner_.overflows(); }
  // The last usage.completion_tokens / prompt_tokens seen, if any.
  std::optional<int> usage_completion_tokens() const { return usage_completion_tokens_; }
  std::optional<int> usage_prompt_tokens() const { return usage_prompt_tokens_; }

  void reset();

 private:
  openai::SseScanner scanner_;
  openai::EventParser parser_;
  int tokens_ = 0;
  uint64_t events_ = 0;
  uint64_t malformed_ = 0;
  bool done_ = false;
  bool saw_error_ = false;
  std::optional<int> usage_completion_tokens_;
  std::optional<int> usage_prompt_tokens_;
};

// Token counts of a non-streamed completion body (JSON): usage.completion_tokens and
// usage.prompt_tokens when present.
struct BodyUsage {
  std::optional<int> completion_tokens;
  std::optional<int> prompt_tokens;
};
BodyUsage parse_body_usage(std::string_view body);

}  // namespace eta::router
