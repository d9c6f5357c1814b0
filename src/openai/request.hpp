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

// One prompt of a completions request: text, or token ids.
struct Prompt {
  std::string text;
  std::vector<uint32_t> token_ids;
  bool is_tokens = false;
};

struct RequestFields {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;  // empty: not sent (vLLM then serves its model)
  bool stream = false;
  bool has_stream_options = false;  // a truthy stream_options object was sent (needs stream)
  bool include_usage = false;       // stream_options.include_usage; defaults to true when sent
  bool continuous_usage_stats = false;
  // Completions: max_tokens, kDefaultCompletionMaxTokens when absent or null (vLLM normalises
  // null to 16); 0 only with echo (the prompt comes back, nothing is generated).
  // Chat: max_completion_tokens wins over max_tokens; empty when neither is sent (vLLM then
  // generates up to the context limit). Otherwise >= 1.
  std::optional<int64_t> max_tokens;
  bool ignore_eos = false;
  int64_t min_tokens = 0;
  int64_t n = 1;      // sequences per prompt (>= 1); they share the prompt's prefill
  bool echo = false;  // completions: the prompt is prepended to each choice's text
  // The request's stream_interval (>= 1), vLLM's per-request raise of --stream-interval.
  std::optional<int64_t> stream_interval;
  std::string session_id;  // the body's session_id (2026), empty when not sent
  std::string user;
  std::vector<std::string> stop;
  // The prompt: completions with a string (or a one-element list of strings) set prompt_text;
  // completions with token ids set prompt_token_ids and prompt_is_tokens; chat renders
  // `messages` with render_chat_prompt into prompt_text. For a batch of prompts these hold the
  // first one, and `prompts` holds them all (completions always fill `prompts`, >= 1 entry).
  std::string prompt_text;
  std::vector<uint32_t> prompt_token_ids;
  bool prompt_is_tokens = false;
  std::vector<Prompt> prompts;
  std::vector<ChatMessage> messages;
  // Chat: content parts that are not text (image_url, input_audio, video_url, ...), counted
  // over all messages; text parts go into the message's content. The simulator adds a
  // configurable token estimate per part.
  int64_t media_parts = 0;
  // Simulator-only vendor field `eta_sim.output_tokens`. The simulator reads it; the router's
  // routing code never does (it must predict lengths itself).
  std::optional<int64_t> sim_output_tokens;
  // POST /tokenize only: the request asked for token strings.
  bool return_token_strs = false;
};

// Error `type`s. vLLM 2026 answers a body that fails its pydantic model (malformed JSON, a
// wrong type, a model validator) with the HTTP phrase "Bad Request"; errors raised while serving
// (sampling parameters, context length) carry the exception class name "BadRequestError".
inline constexpr std::string_view kValidationErrorType = "Bad Request";

struct Error {
  int status = 400;
  std::string type = "BadRequestError";  // BadRequestError|NotFoundError|Bad Request|...
  std::string message;
  std::string param;  // empty -> null
};

Error bad_request(std::string message, std::string param = {});
// A pydantic validation failure: 400, type "Bad Request".
Error validation_error(std::string message, std::string param = {});
Error not_found(std::string message);
Error internal_error(std::string message);
// vLLM >= 0.10.1 nested error body:
// {"error":{"message":...,"type":...,"param":null,"code":400}}
std::string error_body(const Error& e);
// The 404 for an unknown model (2026: param "model"): "The model `X` does not exist."
Error model_not_found(std::string_view model);

// Parses a completions or chat request body the way vLLM (2026) validates it: what vLLM
// accepts passes, what it refuses gets its status, type and param. Never throws.
//
// Rules:
//  - the body is a JSON object in valid UTF-8; unknown fields are ignored (best_of, which vLLM
//    2026 no longer has, included); with duplicate keys the last one wins; an explicit null
//    means "not sent".
//  - types are pydantic's lax ones: an integer field takes 16, 16.0, "16" and true/false; a
//    boolean takes true/false, 0/1 and "true"/"false"/"yes"/"no"/"on"/"off"/"t"/"f"/"y"/"n"/
//    "1"/"0"; a number takes integers and numeric strings; a string field takes only strings.
//    A wrong type is a validation error (400 "Bad Request", param null, the field in the
//    message).
//  - `model` is optional (string or null).
//  - completions: `prompt` is a string, [string, ...], [int, ...] or [[int, ...], ...] (token
//    ids >= 0, below 2^32); absent, null or "" -> 400 "Bad Request" param "prompt". A batch of
//    N prompts gives N entries in `prompts`. `echo` bool.
//  - chat: `messages` is required, an array of {role, content: string | null | [parts]}; text
//    parts (text, input_text, refusal, thinking) are joined with "\n"; media parts (image_url,
//    image_embeds, input_image, audio_url, input_audio, video_url, file, ...) are counted in
//    media_parts; a part type vLLM does not know -> 400.
//  - `stream_options` truthy without a truthy `stream` -> 400 "Bad Request" param
//    "stream_options" (an empty {} passes); `stream_interval` integer >= 1; `session_id`
//    string.
//  - sampling rules (vLLM's SamplingParams: 400 BadRequestError with the field in param and
//    "(parameter=X, value=V)" in the message): n >= 1; max_tokens >= 1 (completions: 0 with
//    echo); min_tokens >= 0 and <= max_tokens; temperature >= 0; top_p in (0, 1].
//  - `eta_sim.output_tokens` integer >= 1.
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
