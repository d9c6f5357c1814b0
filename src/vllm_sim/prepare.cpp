#include "vllm_sim/prepare.hpp"

#include <algorithm>
#include <span>

#include "engine/tokenizer.hpp"

namespace eta::vllm_sim {

namespace {

// splitmix64 finaliser: mixes the prompt hash with the server seed.
uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

std::string prompt_too_long_message(int max_model_len, int prompt_tokens) {
  return "This model's maximum context length is " + std::to_string(max_model_len) +
         " tokens. However, your request has " + std::to_string(prompt_tokens) +
         " input tokens. Please reduce the length of the input messages.";
}

std::string max_tokens_too_large_message(int64_t max_tokens, int max_model_len, int prompt_tokens) {
  std::string m = std::to_string(max_tokens);
  std::string l = std::to_string(max_model_len);
  std::string p = std::to_string(prompt_tokens);
  return "'max_tokens' or 'max_completion_tokens' is too large: " + m +
         ". This model's maximum context length is " + l + " tokens and your request has " + p +
         " input tokens (" + m + " > " + l + " - " + p + ").";
}

std::vector<uint32_t> prompt_token_ids(const openai::RequestFields& fields) {
  if (fields.prompt_is_tokens) return fields.prompt_token_ids;
  return engine::tokenize(fields.prompt_text);
}

bool prepare_request(const openai::RequestFields& fields, const PrepareContext& ctx,
                     PreparedRequest& out, openai::Error& error) {
  if (!ctx.serves(fields.model)) {
    error = openai::model_not_found(fields.model);
    return false;
  }
  std::vector<uint32_t> tokens = prompt_token_ids(fields);
  const int prompt = static_cast<int>(tokens.size());
  const int limit = ctx.max_model_len;
  if (prompt >= limit) {
    error = openai::bad_request(prompt_too_long_message(limit, prompt));
    return false;
  }
  // parse_request resolved the completions default (16); empty means "up to the context".
  const std::optional<int64_t> requested = fields.max_tokens;
  if (requested && *requested + prompt > limit) {
    error = openai::bad_request(max_tokens_too_large_message(*requested, limit, prompt));
    return false;
  }
  if (prompt == 0) {
    error = openai::bad_request("The decoder prompt cannot be empty");
    return false;
  }
  out.prompt_tokens = prompt;
  out.max_tokens = requested ? static_cast<int>(*requested) : limit - prompt;
  out.prompt_hash = engine::hash_block(engine::kRootBlockHash, std::span<const uint32_t>(tokens));
  if (ctx.enable_prefix_caching) {
    out.block_hashes = engine::chain_block_hashes(tokens, ctx.block_size);
  } else {
    out.block_hashes.clear();
  }
  engine::OutputLengthInput in;
  in.prompt_tokens = prompt;
  in.prompt_hash = out.prompt_hash;
  in.max_tokens = out.max_tokens;
  in.ignore_eos = fields.ignore_eos;
  if (fields.sim_output_tokens) {
    in.hidden_length = static_cast<int>(std::min<int64_t>(*fields.sim_output_tokens, limit));
  }
  in.max_model_len = limit;
  in.seed = ctx.seed;
  out.output = engine::decide_output_length(in);
  out.output_seed = mix(out.prompt_hash, ctx.seed);
  return true;
}

std::string generated_text(uint64_t output_seed, int count) {
  std::string text;
  text.reserve(static_cast<size_t>(count) * 5);
  for (int i = 0; i < count; ++i) text += engine::output_token_text(output_seed, i);
  return text;
}

}  // namespace eta::vllm_sim
