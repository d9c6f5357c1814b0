// The simulator's routes beyond completions and chat, with vLLM's 2026 request and response
// shapes: pooling (/v1/embeddings, /pooling, /classify, /score, /v1/score, /rerank, /v1/rerank,
// /v2/rerank), /v1/responses, /v1/messages (Anthropic), the render routes, /detokenize and the
// audio routes. Requests are parsed here into what the engine needs (prompts as token ids); the
// bodies are built here. JSON only (Boost.JSON): no networking headers. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "openai/request.hpp"

namespace eta::vllm_sim::api {

// ---- pooling ----------------------------------------------------------------------------------

enum class PoolingKind { kEmbed, kPool, kClassify, kScore, kRerank };

struct PoolingRequest {
  PoolingKind kind = PoolingKind::kEmbed;
  std::string model;  // empty: the served model
  // One engine prefill per entry: embed/pool/classify: each input; score: text_1[i] + text_2[i]
  // (a cross-encoder reads the pair); rerank: query + documents[i].
  std::vector<std::vector<uint32_t>> prompts;
  std::vector<std::string> documents;  // rerank: the documents, for the results
  std::optional<int64_t> top_n;        // rerank
  int dimensions = 0;                  // embed: the request's dimensions (0: the default)
};

// The vector size of /v1/embeddings and /pooling when the request sets no `dimensions`.
inline constexpr int kEmbeddingDim = 256;

// Parses a pooling request: embed/pool/classify take `input` (string, [string], [int],
// [[int]]); score takes `text_1` and `text_2` (or `queries`/`documents`; a string or a list,
// one side may be a single string, paired with every item of the other); rerank takes `query`
// and `documents` (strings or {"text"} objects) and `top_n`. Errors: 400 "Bad Request" for a
// missing or mistyped field, as vLLM's pydantic models answer.
bool parse_pooling(PoolingKind kind, std::string_view body, PoolingRequest& out,
                   openai::Error& error);

// A deterministic unit vector from token ids (the same tokens give the same vector): each
// token adds a pseudo-random direction; the sum is L2-normalised.
std::vector<double> embedding(const std::vector<uint32_t>& tokens, int dim);
// Deterministic relevance in (0, 1) of a pair prompt: a hash of its tokens through a sigmoid.
double pair_score(const std::vector<uint32_t>& tokens);

// The response body of a finished pooling request. prompt_tokens: per prompt.
std::string pooling_body(const PoolingRequest& req, std::string_view id, int64_t created,
                         std::string_view model, const std::vector<int>& prompt_tokens);

// ---- /v1/responses and /v1/messages ----------------------------------------------------------

enum class Api { kOpenAI, kResponses, kMessages };

// Parses a /v1/responses body into chat fields: `input` (a string, or a list of message items
// {role, content: string | [{type: input_text|output_text|text, text}, media parts]}),
// `instructions` (a system message first), `max_output_tokens`, `stream`, `store` (default
// true), `background`, `model`. Sets `store`/`background`.
bool parse_responses(std::string_view body, openai::RequestFields& out, bool& store,
                     bool& background, openai::Error& error);

// Parses an Anthropic /v1/messages (or count_tokens) body into chat fields: `model`,
// `messages` [{role, content: string | [{type: text, text} | {type: image, ...}]}], `system`
// (string or text blocks), `max_tokens` (required, except for count_tokens), `stream`,
// `stop_sequences`. Errors use the Anthropic shape (anthropic_error_body).
bool parse_messages(std::string_view body, bool count_tokens, openai::RequestFields& out,
                    openai::Error& error);

// {"type":"error","error":{"type":"invalid_request_error"|"not_found_error"|...,"message"}}
std::string anthropic_error_body(const openai::Error& e);

// A response object of /v1/responses. status: queued|in_progress|completed|cancelled|
// incomplete.
struct ResponseObject {
  std::string id;       // "resp_<32 hex>"
  std::string item_id;  // "msg_<32 hex>"
  int64_t created_at = 0;
  std::string model;
  std::string status = "in_progress";
  std::string text;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  std::optional<int64_t> max_output_tokens;
  bool background = false;
  std::string incomplete_reason;  // "max_output_tokens" when status is incomplete
};
std::string response_json(const ResponseObject& r);
// Streaming /v1/responses (SSE with "event: TYPE" lines, every event's sequence_number from
// `seq`, which each call advances): the opening events (response.created,
// response.in_progress, response.output_item.added, response.content_part.added), one
// response.output_text.delta, and the closing events (response.output_text.done,
// response.content_part.done, response.output_item.done, response.completed).
std::string responses_stream_start(const ResponseObject& r, int64_t& seq);
std::string responses_delta(const ResponseObject& r, int64_t& seq, std::string_view delta);
std::string responses_stream_end(const ResponseObject& r, int64_t& seq);

// Anthropic message body and stream events (message_start, content_block_start;
// content_block_delta; content_block_stop, message_delta, message_stop).
std::string message_json(std::string_view id, std::string_view model, std::string_view text,
                         std::string_view stop_reason, int64_t input_tokens, int64_t output_tokens);
std::string messages_stream_start(std::string_view id, std::string_view model,
                                  int64_t input_tokens);
std::string messages_delta(std::string_view text);
std::string messages_stream_end(std::string_view stop_reason, int64_t output_tokens);

// {"text": ..., "usage": {"type": "duration", "seconds": N}} of the audio routes.
std::string transcription_json(std::string_view text, double seconds);
// One SSE event of a streamed transcription (form field stream=true): "data: {"id":"trsc-...",
// "object":"transcription.chunk","created","model","choices":[{"delta":{"content"},
// "finish_reason","stop_reason":null}]}\n\n"; finish_reason null until the last chunk.
std::string transcription_chunk(std::string_view id, int64_t created, std::string_view model,
                                std::string_view text, std::string_view finish_reason);

// ---- render, detokenize, audio ----------------------------------------------------------------

// POST /v1/completions/render: [{"prompt_token_ids":[...],"prompt":text|null}, ...] per prompt.
// POST /v1/chat/completions/render: {"prompt_token_ids":[...],"prompt":rendered text}.
std::string render_body(const std::vector<std::vector<uint32_t>>& prompts,
                        const std::vector<std::string>& texts, bool list);

// POST /detokenize: {model?, tokens: [int]}.
bool parse_detokenize(std::string_view body, std::string& model, std::vector<uint32_t>& tokens,
                      openai::Error& error);

// A multipart/form-data body (RFC 7578): its named fields; files keep their bytes.
struct FormField {
  std::string name;
  std::string filename;  // empty for a plain field
  std::string value;
};
// Parses `body` with the boundary of `content_type`; false if it is not multipart/form-data or
// is malformed.
bool parse_multipart(std::string_view content_type, std::string_view body,
                     std::vector<FormField>& out);

// The duration rule of the audio routes: a RIFF/WAVE file's duration is its data chunk's size
// over its byte rate; any other format counts 16000 bytes per second (128 kbit/s). The prompt
// is then ceil(50 * seconds) tokens (Whisper's encoder: 1500 frames per 30 s) and the
// transcript 3 tokens per second (about 150 spoken words per minute), at least 1.
double audio_seconds(std::string_view file);
int audio_prompt_tokens(double seconds);
int audio_output_tokens(double seconds);

}  // namespace eta::vllm_sim::api
