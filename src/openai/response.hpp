// Response bodies with vLLM's exact JSON shapes (../shared/vllm-interface.md §1, §3), for
// `eta vllm-sim`. JSON only: no networking headers. Each function returns one serialized JSON
// document (Boost.JSON, built in a stack arena: no heap allocation besides the result for
// ordinary sizes). Streaming chunks are returned without SSE framing; the caller writes
// "data: " + json + "\n\n" and finally "data: [DONE]\n\n".
//
// Field order follows vLLM's pydantic models. Streaming chunks leave out the fields vLLM leaves
// unset (it serializes chunks with exclude_unset=True): `usage` appears only when passed,
// `prompt_tokens_details` only when cached_tokens is set.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "openai/request.hpp"

namespace eta::openai {

// What every body and chunk of one response repeats.
struct ResponseMeta {
  std::string_view id;     // make_response_id(): "cmpl-<32 hex>" or "chatcmpl-<32 hex>"
  int64_t created = 0;     // Unix time in seconds, fixed for the whole response
  std::string_view model;  // the model name the request asked for
  int64_t index = 0;       // streaming chunks: the choice's `index` (prompt_index * n + i)
};

// The `usage` object: {"prompt_tokens","total_tokens","completion_tokens"
// [,"prompt_tokens_details":{"cached_tokens"}]}. total_tokens = prompt + completion.
struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  // prompt_tokens_details.cached_tokens. Unset: non-streaming bodies carry
  // "prompt_tokens_details":null, streaming chunks omit the key.
  std::optional<int64_t> cached_tokens;
};

// How a choice ended.
struct Finish {
  std::string_view reason;       // "stop" | "length" | "abort" (engine::to_string); "" -> null
  std::string_view stop_reason;  // the stop string that matched; "" -> null
};

// "cmpl-" (completions) or "chatcmpl-" (chat) followed by 32 lowercase hex digits of
// (random_hi, random_lo): the caller supplies the randomness.
std::string make_response_id(Endpoint endpoint, uint64_t random_hi, uint64_t random_lo);

// One choice of a non-streaming body with several (n > 1, batch prompts).
struct Choice {
  int64_t index = 0;
  std::string text;
  Finish finish;
};

// The bodies below with every choice, in the order given.
std::string completion_body(const ResponseMeta& meta, std::span<const Choice> choices,
                            const Usage& usage);
std::string chat_completion_body(const ResponseMeta& meta, std::span<const Choice> choices,
                                 const Usage& usage);

// POST /v1/completions, stream=false:
// {"id","object":"text_completion","created","model","choices":[{"index":0,"text",
//  "logprobs":null,"finish_reason","stop_reason"}],"usage":{...}}
std::string completion_body(const ResponseMeta& meta, std::string_view text, const Finish& finish,
                            const Usage& usage);

// POST /v1/chat/completions, stream=false:
// {"id","object":"chat.completion","created","model","choices":[{"index":0,"message":{
//  "role":"assistant","content"},"logprobs":null,"finish_reason","stop_reason"}],
//  "usage":{...}} (vLLM 2026 drops an empty tool_calls)
std::string chat_completion_body(const ResponseMeta& meta, std::string_view content,
                                 const Finish& finish, const Usage& usage);

// One completions stream chunk:
// {"id","object":"text_completion","created","model","choices":[{"index":0,"text",
//  "logprobs":null,"finish_reason","stop_reason"}][,"usage"]}
// finish: null when the choice goes on (finish_reason and stop_reason are then null).
// usage: pass it on every chunk for stream_options.continuous_usage_stats, else null.
std::string completion_chunk(const ResponseMeta& meta, std::string_view text,
                             const Finish* finish = nullptr, const Usage* usage = nullptr);

// The first chat stream chunk:
// {"id","object":"chat.completion.chunk","created","model","choices":[{"index":0,
//  "delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}][,"usage"]}
std::string chat_role_chunk(const ResponseMeta& meta, const Usage* usage = nullptr);

// A chat stream content chunk, and (with finish) the last one of the choice:
// {"id","object":"chat.completion.chunk","created","model","choices":[{"index":0,
//  "delta":{"content"},"logprobs":null,"finish_reason"[,"stop_reason"]}][,"usage"]}
// stop_reason appears only on the chunk that carries a finish.
std::string chat_chunk(const ResponseMeta& meta, std::string_view content,
                       const Finish* finish = nullptr, const Usage* usage = nullptr);

// The final usage-only chunk sent when stream_options.include_usage is on:
// {"id","object":"text_completion"|"chat.completion.chunk","created","model","choices":[],
//  "usage":{...}}
std::string usage_chunk(Endpoint endpoint, const ResponseMeta& meta, const Usage& usage);

// One entry of GET /v1/models.
struct ModelCard {
  std::string id;       // served model name (or LoRA adapter name)
  int64_t created = 0;  // Unix seconds
  std::string owned_by = "vllm";
  std::string root;    // model path; vLLM's default is the same as id
  std::string parent;  // base model of a LoRA adapter; "" -> null
  int64_t max_model_len = 0;
  // eta vendor field, written after "permission" only when set: `eta vllm-sim`'s simulated
  // seconds per wall second (an integral value is written as a JSON integer).
  std::optional<double> eta_time_scale;
};

// GET /v1/models:
// {"object":"list","data":[{"id","object":"model","created","owned_by","root","parent",
//  "max_model_len","permission":[{"id":"modelperm-<32 hex>","object":"model_permission",
//  "created","allow_create_engine":false,"allow_sampling":true,"allow_logprobs":true,
//  "allow_search_indices":false,"allow_view":true,"allow_fine_tuning":false,
//  "organization":"*","group":null,"is_blocking":false}]}]}
// The permission id is derived from the card's id and created (deterministic, unlike vLLM's
// random uuid). Cards with eta_time_scale set get a trailing "eta_time_scale" field.
std::string models_body(std::span<const ModelCard> cards);

// GET /version: {"version":"..."}
std::string version_body(std::string_view version);

// GET /load: {"server_load":N}
std::string load_body(int64_t server_load);

// POST /tokenize: {"count","max_model_len","tokens":[...],"token_strs":null | [...]}
// token_strs: null unless the request asked for return_token_strs.
std::string tokenize_body(std::span<const uint32_t> tokens, int64_t max_model_len,
                          const std::vector<std::string>* token_strs = nullptr);

// POST /detokenize: {"prompt":"..."}
std::string detokenize_body(std::string_view prompt);

}  // namespace eta::openai
