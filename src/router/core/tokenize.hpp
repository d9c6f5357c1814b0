// Exact prompt tokens for matching replicas' KV-cache events (issue 15, item 3). The events key
// blocks by the model's own token ids (prefix/kv_event_index.hpp); the router's toy tokenizer
// only estimates them, so against a real model its block keys never match. For a prompt long
// enough that a prefix hit matters (kv_events_tokenize.min_prompt_tokens, estimated), and only
// while a replica serving the model has live events, the core asks one replica serving the model
// for the tokens (vLLM's POST /tokenize with the request's prompt, or its messages and the
// members that change the chat template's output) and waits for them at most
// kv_events_tokenize.timeout_s; the request is then prepared with the tokens' block hashes, or,
// on a timeout or an error, with the estimate as before. Nothing is refused or delayed beyond
// the bound. A small cache of recent prompts' tokens spares repeated prompts the call.
//
// This file: the pure parts (which requests, the /tokenize body, reading its answer, the cache).
// The asynchronous step itself is RouterCore's (tokenize.cpp: start_tokenize, end_tokenize),
// between the rate limit and admit(), through the Env port like every upstream request.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "openai/extract.hpp"
#include "router/core/config.hpp"
#include "router/routes.hpp"

namespace eta::router {

// Where a request's prompt tokens came from (decision log, eta_prompt_tokens_source_total).
enum class TokenSource : uint8_t {
  kEstimate,  // not asked: the toy tokenizer's estimate (or the client's own token ids)
  kTokenize,  // a replica's /tokenize
  kCache,     // a recent /tokenize of the same prompt
  kTimeout,   // asked, no answer within the bound: the estimate
  kError,     // asked, failed (connect, status, unreadable answer): the estimate
};
std::string_view to_string(TokenSource source);

// Whether the request's prompt is worth a replica's exact tokens: a completions or chat request
// of the policy's routes with one text prompt (no batch, no media parts, whose tokens the
// placeholder ids of the events could not tell apart; token-id prompts are exact already), of at
// least min_prompt_tokens estimated tokens (0: never).
bool wants_exact_tokens(const RouteSpec& route, const openai::ExtractedRequest& request,
                        int estimated_tokens, const KvTokenizeConfig& config);

// The POST /tokenize body for a client's request, with `served_model` as the model: for
// completions {"model","prompt"} (the first prompt's text) and add_special_tokens when the client
// sent it; for chat {"model","messages"} and, as sent, add_generation_prompt,
// continue_final_message, add_special_tokens, chat_template, chat_template_kwargs, tools and
// mm_processor_kwargs (vLLM's TokenizeChatRequest). Empty when the body has no messages.
std::string tokenize_request_body(openai::Api api, std::string_view client_body,
                                  std::string_view prompt_text, std::string_view served_model);

// The "tokens" of a /tokenize answer ({"count","max_model_len","tokens":[...],...}). False when
// there is none, or it holds anything but integers in [0, 2^32).
bool parse_tokenize_tokens(std::string_view body, std::vector<uint32_t>& out);

// Recent prompt -> tokens, least recently used first out, bounded by the tokens it holds. The
// key is a hash of the /tokenize body (the served model included).
class TokenCache {
 public:
  explicit TokenCache(uint64_t max_tokens = 0) : max_tokens_(max_tokens) {}
  static uint64_t key(std::string_view tokenize_body);
  // The tokens, now the most recently used; null when absent.
  const std::vector<uint32_t>* find(uint64_t key);
  void put(uint64_t key, std::vector<uint32_t> tokens);
  // A smaller bound drops the oldest entries at once; 0 empties it.
  void set_max_tokens(uint64_t max_tokens);
  size_t size() const { return map_.size(); }
  uint64_t tokens() const { return tokens_; }

 private:
  struct Entry {
    uint64_t key;
    std::vector<uint32_t> tokens;
  };
  void shrink();
  uint64_t max_tokens_;
  uint64_t tokens_ = 0;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<uint64_t, std::list<Entry>::iterator> map_;
};

// A replica whose /tokenize keeps failing is not asked for a while (the requests do not each
// wait out the timeout): after kFailuresBeforeBackoff consecutive timeouts, connect errors or 5xx,
// kBackoffS seconds; one success resets it.
struct TokenizeHealth {
  static constexpr int kFailuresBeforeBackoff = 3;
  static constexpr double kBackoffS = 5.0;
  int failures = 0;
  double skip_until = 0;
  void result(bool ok, double now) {
    failures = ok ? 0 : failures + 1;
    if (failures >= kFailuresBeforeBackoff) skip_until = now + kBackoffS;
  }
  bool usable(double now) const { return now >= skip_until; }
};

}  // namespace eta::router
