// Counting the output tokens of a relayed OpenAI stream for the router's ledger, on top of the
// shared SSE scanner and event classifier (openai/sse.hpp, the same code `eta bench` times
// streams with). The router writes each upstream piece to the client first and then feeds it
// here; events split across pieces (or several events in one piece) are handled, and an event
// longer than the bound is dropped (counted as malformed) instead of growing the buffer.
//
// Counting rule: an event's tokens are exact when it carries a cumulative `usage` (the router
// asks for `stream_options.continuous_usage_stats` on completions and chat streams, see
// UsageStreamRewriter): the growth of usage.completion_tokens since the previous event. Without
// usage each token-bearing event (openai::EventKind::kToken) counts as one token (vLLM sends one
// event per engine step unless --stream-interval or speculative decoding batch several).
// `data: [DONE]` ends the stream. The last `usage.completion_tokens` seen is the exact total and
// is kept. An event with a top-level `error` object (vLLM's mid-stream error) is remembered.
// Responses-API streams (`response.output_text.delta`, `response.completed` with
// response.usage.output_tokens) and Anthropic-style ones (`content_block_delta`,
// `message_delta` with usage.output_tokens) are counted the same way, and the id of the
// response a /v1/responses stream creates is kept (response_id()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
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
  // The `response.id` of a Responses-API stream (its response.created event), or empty.
  const std::string& response_id() const { return response_id_; }

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
  std::string response_id_;
};

// A chat or completions stream for which the router asked the replica for
// `stream_options: {include_usage: true, continuous_usage_stats: true}` (so that every event says
// how many tokens it carried): rewrites it back into exactly the stream the client asked for.
// Events are relayed whole, byte for byte, except that the `usage` member is removed from
// chunks with choices when the client did not ask for continuous_usage_stats, and the final
// usage-only chunk (`"choices": []`) is dropped when it did not ask for include_usage. The
// complete events of each piece are appended to `out`; an unfinished one is held until its end
// arrives (pending_bytes()), up to kMaxEventBytes: a longer one (a replica's stream is not
// trusted) is relayed as it came, and so is the rest of the stream.
class UsageStreamRewriter {
 public:
  UsageStreamRewriter() = default;
  UsageStreamRewriter(bool client_include_usage, bool client_continuous)
      : include_usage_(client_include_usage), continuous_(client_continuous) {}
  void feed(std::string_view bytes, std::string& out);
  size_t pending_bytes() const { return partial_.size(); }
  // What is held back, as it came (the stream ended inside an event).
  const std::string& pending() const { return partial_; }
  void reset() {
    partial_.clear();
    passthrough_ = false;
  }
  static constexpr size_t kMaxEventBytes = StreamTokenCounter::kDefaultMaxEventBytes;

 private:
  void event(std::string_view block, std::string& out);
  bool include_usage_ = false;
  bool continuous_ = false;
  bool passthrough_ = false;  // an event outgrew the bound: relay the rest unchanged
  std::string partial_;
};

// The body to forward for a stream the router counts exactly: `body` (a JSON object) with
// stream_options set to {include_usage: true, continuous_usage_stats: true}. Empty when the
// body cannot be rewritten (not an object).
std::string with_continuous_usage(std::string_view body);

// The id of the response a non-streamed /v1/responses body describes ({"id": ..., "object":
// "response"}), or empty.
std::string response_id_of(std::string_view body);

// Token counts of a non-streamed completion body (JSON): usage.completion_tokens and
// usage.prompt_tokens when present.
struct BodyUsage {
  std::optional<int> completion_tokens;
  std::optional<int> prompt_tokens;
};
BodyUsage parse_body_usage(std::string_view body);

}  // namespace eta::router
