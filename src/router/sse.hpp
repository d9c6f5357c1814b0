// An incremental scanner of a relayed Server-Sent Events stream (OpenAI completions / chat
// chunks), for the router's ledger: it counts output tokens as they pass through without holding
// the stream back. The router writes each upstream piece to the client first and then feeds it
// here; events split across pieces (or several events in one piece) are handled.
//
// Counting rule: each `data: {...}` event whose choices carry a non-empty `text` (completions) or
// a non-empty `delta.content` / `delta.reasoning_content` (chat) counts as one token (vLLM sends
// one event per engine step and token). `data: [DONE]` ends the stream. A final chunk's
// `usage.completion_tokens` (stream_options.include_usage) is the exact count and is kept.
// An event with a top-level `error` object (vLLM's mid-stream error) is remembered. Lines end in
// "\n" or "\r\n"; an event ends at a blank line; several `data:` lines of one event are joined
// with "\n" (SSE). Comments (":") and other fields (event:, id:, retry:) are ignored. A line
// longer than max_line_bytes is dropped (counted as malformed) instead of growing the buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace eta::router {

class SseScanner {
 public:
  static constexpr size_t kDefaultMaxLineBytes = 1u << 20;
  explicit SseScanner(size_t max_line_bytes = kDefaultMaxLineBytes)
      : max_line_bytes_(max_line_bytes) {}

  // Scans the next piece of the stream; returns how many tokens the events completed in it
  // carried.
  int feed(std::string_view bytes);

  int tokens() const { return tokens_; }  // tokens counted so far
  uint64_t events() const { return events_; }
  bool done() const { return done_; }  // saw data: [DONE]
  bool saw_error() const { return saw_error_; }
  uint64_t malformed() const { return malformed_; }  // events that were not JSON (or too long)
  // The last usage.completion_tokens seen, if any.
  std::optional<int> usage_completion_tokens() const { return usage_completion_tokens_; }
  std::optional<int> usage_prompt_tokens() const { return usage_prompt_tokens_; }

  void reset();

 private:
  void on_line(std::string_view line);
  int dispatch_event();

  size_t max_line_bytes_;
  std::string line_;  // partial line carried over from the previous piece
  bool line_overflow_ = false;
  std::string data_;  // data of the event being assembled
  bool has_data_ = false;
  int pending_tokens_ = 0;
  int tokens_ = 0;
  uint64_t events_ = 0;
  uint64_t malformed_ = 0;
  bool done_ = false;
  bool saw_error_ = false;
  std::optional<int> usage_completion_tokens_;
  std::optional<int> usage_prompt_tokens_;
};

// Token count and usage of a non-streamed completion body (JSON): usage.completion_tokens and
// usage.prompt_tokens when present.
struct BodyUsage {
  std::optional<int> completion_tokens;
  std::optional<int> prompt_tokens;
};
BodyUsage parse_body_usage(std::string_view body);

}  // namespace eta::router
