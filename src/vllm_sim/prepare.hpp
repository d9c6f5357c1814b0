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
  // Further --served-model-name values, accepted like `model`.
  std::vector<std::string> model_aliases;
  // Whether a request naming `name` is for this server ("" names none: the default model).
  bool serves(const std::string& name) const {
    if (name.empty() || name == model) return true;
    for (const auto& a : model_aliases) {
      if (name == a) return true;
    }
    return false;
  }
};

struct PreparedRequest {
  int prompt_tokens = 0;
  std::vector<uint64_t> block_hashes;
  uint64_t prompt_hash = 0;
  int max_tokens = 0;  // resolved: the request's (completions default 16), or the context left
  engine::OutputLength output;
  uint64_t output_seed = 0;  // seeds the engine's output blocks and the generated text
};

// The vLLM (>= 0.10.2) context-length messages.
std::string prompt_too_long_message(int max_model_len, int prompt_tokens);
std::string max_tokens_too_large_message(int64_t max_tokens, int max_model_len, int prompt_tokens);

// Prompt token ids of a parsed request (chat: the rendered template; completions: the text or
// the given ids).
std::vector<uint32_t> prompt_token_ids(const openai::RequestFields& fields);

bool prepare_request(const openai::RequestFields& fields, const PrepareContext& ctx,
                     PreparedRequest& out, openai::Error& error);

// The generated text of `count` output tokens: output_token_text(seed, i) for i in [0, count).
std::string generated_text(uint64_t output_seed, int count);

}  // namespace eta::vllm_sim
