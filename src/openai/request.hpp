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

struct ChatMessage {
  std::string role;
  std::string content;
};

struct RequestFields {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;
  bool stream = false;
  bool has_stream_options = false;
  bool include_usage = false;
  bool continuous_usage_stats = false;
  std::optional<int64_t> max_tokens;  // chat: max_completion_tokens wins over max_tokens
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
// stream_options without stream, n != 1, negative max_tokens, ...).
bool parse_request(Endpoint endpoint, std::string_view body, RequestFields& out, Error& error);

// The toy chat template: for each message "<|ROLE|>\n" + content + "\n", then "<|assistant|>\n".
std::string render_chat_prompt(const std::vector<ChatMessage>& messages);

}  // namespace eta::openai
