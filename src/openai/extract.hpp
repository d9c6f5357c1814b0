// The router's lenient, best-effort reading of a client request (what it needs to route it:
// the model, the prompt's size and the text to hash for the prefix index, how many sequences
// and prompts, how long they may generate, stream and usage options, a session key). Unlike
// parse_request (the simulator's strict validation, vLLM's 400s), this never refuses: whatever
// it cannot read is left unknown and the request still goes to a replica, which gives vLLM's
// own answer. Pure: no networking. See docs/architecture.md ("The request rules").
//
// Rules (vLLM's, ../shared/vllm-interface.md §9):
//  - `model` is optional: absent, null, "" or not a string leave `model` empty (the router then
//    uses the one model it serves).
//  - pydantic's lax types: "16" and 16.0 read as 16; "true"/"false" as booleans.
//  - completions: `max_tokens` absent or null -> 16; `max_tokens: 0` (echo) -> prefill only.
//    chat: `max_completion_tokens` wins over `max_tokens`; absent or null -> no limit (the
//    context). responses: `max_output_tokens`; messages: `max_tokens`.
//  - `n`: n sequences share one prefill (`best_of` is gone from vLLM 2026 and ignored).
//  - batch prompts (a list of strings or of token-id lists) in completions, embeddings and the
//    other pooling routes: as many prefills; the first prompt is hashed, the others are counted.
//  - chat content parts: text parts are joined with "\n" (as the simulator's template does);
//    image, audio, video and file parts add ExtractOptions' token estimate each.
//  - pooling, render, count_tokens, tokenize and detokenize generate nothing (decode = false).
//  - audio (multipart/form-data): the `model` and `stream` form fields; the audio itself counts
//    ExtractOptions::audio_tokens.
//  - `session_id` in the body (2026) is a session key, as is `user`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eta::openai {

// What a route's body looks like.
enum class Api : uint8_t {
  kNone,  // no body the router reads (GET /v1/responses/{id}, ...)
  kCompletions,
  kChat,
  kResponses,
  kMessages,     // Anthropic-style /v1/messages
  kCountTokens,  // /v1/messages/count_tokens
  kCompletionsRender,
  kChatRender,
  kEmbeddings,
  kPooling,
  kClassify,
  kScore,
  kRerank,
  kTokenize,
  kDetokenize,
  kAudio,  // multipart/form-data transcriptions and translations
};

// Token estimates of the parts the toy tokenizer cannot count (configurable in the router:
// `request_estimates`).
struct ExtractOptions {
  int image_tokens = 576;  // one image part (LLaVA-1.5's 24x24 patches)
  int audio_tokens = 750;  // one audio part or audio upload (30 s at 25 tokens/s)
  int video_tokens = 4096;
  int file_tokens = 1024;  // a file / document part
  bool operator==(const ExtractOptions&) const = default;
};

struct ExtractedRequest {
  bool readable = false;  // the body was a JSON object (or a multipart form with fields)
  std::string model;      // empty: not sent (or unreadable)
  bool stream = false;
  bool stream_options_sent = false;  // a non-empty stream_options object
  bool include_usage = false;        // stream_options.include_usage
  bool continuous_usage_stats = false;
  bool decode = true;  // false: prefill only (pooling, render, tokenize, ...)
  // Per sequence; empty: up to the context.
  std::optional<int64_t> max_tokens;
  bool ignore_eos = false;
  int64_t n = 1;        // sequences per prompt
  int64_t prompts = 1;  // prompts in a batch (each one a prefill)
  // The first prompt: its text (a chat's rendered messages) or token ids, hashed for the prefix
  // index.
  std::string prompt_text;
  std::vector<uint32_t> prompt_token_ids;
  bool prompt_is_tokens = false;
  // Tokens on top of the first prompt's: the other prompts of a batch (toy tokenizer) and the
  // estimates of multimodal parts.
  int64_t extra_prompt_tokens = 0;
  std::string session_id;         // body `session_id`
  std::string user;               // body `user`
  Api api = Api::kNone;           // the route's body kind (the output predictor's shape context)
  std::vector<std::string> stop;  // body `stop`: a string or strings (the same)
};

// Never fails: `out` is reset and filled with what could be read. `content_type` matters only
// for kAudio (the multipart boundary).
void extract_request(Api api, std::string_view body, std::string_view content_type,
                     const ExtractOptions& options, ExtractedRequest& out);

// The value of the multipart/form-data field `name` (not a file), or nullopt. `content_type` is
// the request's Content-Type with its boundary.
std::optional<std::string> multipart_field(std::string_view body, std::string_view content_type,
                                           std::string_view name);

// The byte range [begin, end) of the value of top-level key `key` in a JSON object text, and of
// the whole member including one adjacent comma (so that erasing it leaves valid JSON).
// nullopt if `text` is not an object or has no such key. Strings are scanned with their
// escapes; the text is otherwise trusted to be JSON (the caller has parsed it).
struct MemberSpan {
  size_t value_begin = 0;
  size_t value_end = 0;
  size_t member_begin = 0;
  size_t member_end = 0;
};
std::optional<MemberSpan> find_member(std::string_view text, std::string_view key);

}  // namespace eta::openai
