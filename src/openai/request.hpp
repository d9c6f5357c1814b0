// OpenAI-compatible request fields and error bodies, with vLLM's shapes (see
// ../shared/vllm-interface.md §2-§4). JSON only: no networking headers. Read with simdjson,
// written with Boost.JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eta::openai {

enum class Endpoint { kCompletions, kChat };

// max_tokens of a completions request that does not send it (OpenAI's and vLLM's default).
inline constexpr int64_t kDefaultCompletionMaxTokens = 16;

struct ChatMessage {
  std::string role;
  std::string content;
};

struct RequestFields {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;
  bool stream = false;
  bool has_stream_options = false;  // a non-null stream_options object was sent (needs stream)
  bool include_usage = false;       // stream_options.include_usage; defaults to true when sent
  bool continuous_usage_stats = false;
  // Completions: max_tokens, kDefaultCompletionMaxTokens when absent, empty when sent as null.
  // Chat: max_completion_tokens wins over max_tokens; empty when neither is sent (vLLM then
  // generates up to the context limit). Always >= 1 when set.
  std::optional<int64_t> max_tokens;
  bool ignore_eos = false;
  int64_t min_tokens = 0;
  int64_t n = 1;
  std::string user;
  std::vector<std::string> stop;
  // The prompt: completions with a string (or a one-element list of strings) set prompt_text;
  // completions with token ids set prompt_token_ids and prompt_is_tokens; chat renders
  // `messages` with render_chat_prompt into prompt_text.
  std::string prompt_text;
  std::vector<uint32_t> prompt_token_ids;
  bool prompt_is_tokens = false;
  std::vector<ChatMessage> messages;
  // Simulator-only vendor field `eta_sim.output_tokens`. The simulator reads it; the router's
  // routing code never does (it must predict lengths itself).
  std::optional<int64_t> sim_output_tokens;
  // POST /tokenize only: the request asked for token strings.
  bool return_token_strs = false;
};

struct Error {
  int status = 400;
  std::string type = "BadRequestError";  // BadRequestError|NotFoundError|NotImplementedError|...
  std::string message;
  std::string param;  // empty -> null
};

Error bad_request(std::string message, std::string param = {});
Error not_found(std::string message);
Error internal_error(std::string message);
// vLLM >= 0.10.1 nested error body:
// {"error":{"message":...,"type":...,"param":null,"code":400}}
std::string error_body(const Error& e);
// The 404 for an unknown model: "The model `X` does not exist."
Error model_not_found(std::string_view model);

// Parses a completions or chat request body. On failure returns false with a 400 Error whose
// message names the bad field (malformed JSON, wrong types, missing model/prompt/messages,
// stream_options without stream, n != 1, negative max_tokens, ...). Never throws.
//
// Rules (vLLM's, except where eta is narrower):
//  - the body is a JSON object in valid UTF-8; unknown fields are ignored; with duplicate keys
//    the last one wins; an explicit null means "not sent", except that on completions
//    `max_tokens: null` means no limit (up to the context) and `include_usage: null` is false.
//  - `model` (string) is required.
//  - completions: `prompt` is required: a string, [string], [int, ...] or [[int, ...]]; a batch
//    of more than one prompt is rejected (eta routes one prompt per request). Token ids are
//    integers in [0, 2^32); an empty token list is rejected.
//  - chat: `messages` is required, a non-empty array of {role: string, content: string | null |
//    [{type: "text", text: string}, ...]}; text parts are joined with "\n"; other part types are
//    rejected. prompt_text is render_chat_prompt(messages).
//  - `stream` bool; `stream_options` {include_usage, continuous_usage_stats} only with
//    stream=true; `n` must be 1; `max_tokens`/`max_completion_tokens` integers >= 1;
//    `min_tokens` integer >= 0 and <= max_tokens; `ignore_eos` bool; `user` string; `stop`
//    string or array of strings; `temperature` number >= 0; `top_p` number in (0, 1];
//    `eta_sim.output_tokens` integer >= 1. Integer fields accept 16.0 (pydantic does).
//  - Types are checked strictly against JSON types (pydantic would coerce "16" or "true").
// A wrong field gives an Error with the field's name in `param` (e.g. "max_tokens",
// "messages[2].content", "stream_options.include_usage") and in the message.
bool parse_request(Endpoint endpoint, std::string_view body, RequestFields& out, Error& error);

// Parses a POST /tokenize body: {model?, prompt | messages, add_special_tokens?,
// return_token_strs?}. `model` is optional (empty when absent). A `prompt` takes the completions
// forms (string, [string], token ids; one prompt only) and sets endpoint kCompletions;
// `messages` takes the chat form, sets endpoint kChat and renders prompt_text (messages win
// when both are sent). max_tokens stays empty. Never throws.
bool parse_tokenize_request(std::string_view body, RequestFields& out, Error& error);

// The toy chat template: for each message "<|ROLE|>\n" + content + "\n", then "<|assistant|>\n".
std::string render_chat_prompt(const std::vector<ChatMessage>& messages);

}  // namespace eta::openai
