// Turns a parsed OpenAI request into what the simulated engine needs: prompt tokens and block
// hashes, the resolved max_tokens, the output length and finish reason, and the seed of the
// generated text; or vLLM's error for it (unknown model 404, context-length 400s). Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "engine/output_length.hpp"
#include "openai/request.hpp"

namespace eta::vllm_sim {

struct PrepareContext {
  std::string model;  // the served model name
  int max_model_len = 0;
  int block_size = 16;
  bool enable_prefix_caching = true;
  uint64_t seed = 0;  // the server's --seed
  // Prompt tokens per non-text chat content part (image, audio, video): the simulator has no
  // encoder, so each part counts as this many placeholder tokens (--media-part-tokens).
  int media_part_tokens = 576;
};

struct PreparedRequest {
  int prompt_tokens = 0;
  std::vector<uint64_t> block_hashes;
  uint64_t prompt_hash = 0;
  int max_tokens = 0;  // resolved: the request's (completions default 16), or the context left
  engine::OutputLength output;
  uint64_t output_seed = 0;  // seeds the engine's output blocks and the generated text
};

// vLLM 2026's context-length errors (the renderer's; 400 BadRequestError). The first, when the
// prompt leaves no room for the requested output (param "input_tokens"): "You passed P input
// tokens and requested M output tokens. However, the model's context length is only L tokens,
// resulting in a maximum input length of L-M tokens. Please reduce the length of the input
// prompt. (parameter=input_tokens, value=P)". The second, when max_tokens alone exceeds the
// context (param "max_tokens"): "max_tokens=M cannot be greater than
// max_model_len=max_total_tokens=L.".
openai::Error prompt_too_long_error(int max_model_len, int prompt_tokens, int64_t max_tokens);
openai::Error max_tokens_too_large_error(int64_t max_tokens, int max_model_len);

// Prompt token ids of a parsed request's first prompt (chat: the rendered template plus
// ctx.media_part_tokens placeholder ids per media part; completions: the text or the given ids).
std::vector<uint32_t> prompt_token_ids(const openai::RequestFields& fields,
                                       const PrepareContext& ctx = {});
// Token ids of one completions prompt.
std::vector<uint32_t> prompt_token_ids(const openai::Prompt& prompt);

// Prepares the first prompt of `fields` (sample 0).
bool prepare_request(const openai::RequestFields& fields, const PrepareContext& ctx,
                     PreparedRequest& out, openai::Error& error);
// Prepares sample `sample` (0 .. n-1) of a prompt with these token ids: samples of one prompt
// share its blocks (and so its prefill, through the prefix cache) but get their own output
// length and text. Sample 0 is what prepare_request gives.
bool prepare_tokens(const openai::RequestFields& fields, const std::vector<uint32_t>& tokens,
                    const PrepareContext& ctx, int sample, PreparedRequest& out,
                    openai::Error& error);

// The text /detokenize gives for token ids: the toy tokenizer's ids are hashes, so each id
// becomes output_token_text(id, 0), a space and 1-4 letters (deterministic per id).
std::string detokenize(const std::vector<uint32_t>& tokens);

// The generated text of `count` output tokens: output_token_text(seed, i) for i in [0, count).
std::string generated_text(uint64_t output_seed, int count);

}  // namespace eta::vllm_sim
