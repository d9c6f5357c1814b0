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

openai::Error prompt_too_long_error(int max_model_len, int prompt_tokens, int64_t max_tokens) {
  openai::Error e = openai::bad_request(
      "You passed " + std::to_string(prompt_tokens) + " input tokens and requested " +
          std::to_string(max_tokens) +
          " output tokens. However, the model's context length is "
          "only " +
          std::to_string(max_model_len) +
          " tokens, resulting in a maximum input "
          "length of " +
          std::to_string(max_model_len - max_tokens) +
          " tokens. Please reduce the length of the input prompt. (parameter=input_tokens, "
          "value=" +
          std::to_string(prompt_tokens) + ")",
      "input_tokens");
  return e;
}

openai::Error max_tokens_too_large_error(int64_t max_tokens, int max_model_len) {
  const std::string m = std::to_string(max_tokens);
  const std::string l = std::to_string(max_model_len);
  return openai::bad_request(
      "max_tokens=" + m + " cannot be greater than max_model_len=max_total_tokens=" + l + ".",
      "max_tokens");
}

std::vector<uint32_t> prompt_token_ids(const openai::Prompt& prompt) {
  if (prompt.is_tokens) return prompt.token_ids;
  return engine::tokenize(prompt.text);
}

std::vector<uint32_t> prompt_token_ids(const openai::RequestFields& fields,
                                       const PrepareContext& ctx) {
  std::vector<uint32_t> tokens =
      fields.prompt_is_tokens ? fields.prompt_token_ids : engine::tokenize(fields.prompt_text);
  // Media parts: placeholder ids after the text (the sim has no encoder; see PrepareContext).
  for (int64_t part = 0; part < fields.media_parts; ++part) {
    for (int i = 0; i < ctx.media_part_tokens; ++i) {
      tokens.push_back(
          static_cast<uint32_t>(mix(static_cast<uint64_t>(part) + 1, i) % engine::kToyVocab));
    }
  }
  return tokens;
}

bool prepare_request(const openai::RequestFields& fields, const PrepareContext& ctx,
                     PreparedRequest& out, openai::Error& error) {
  return prepare_tokens(fields, prompt_token_ids(fields, ctx), ctx, 0, out, error);
}

bool prepare_tokens(const openai::RequestFields& fields, const std::vector<uint32_t>& tokens,
                    const PrepareContext& ctx, int sample, PreparedRequest& out,
                    openai::Error& error) {
  if (!fields.model.empty() && fields.model != ctx.model) {
    error = openai::model_not_found(fields.model);
    return false;
  }
  const int prompt = static_cast<int>(tokens.size());
  const int limit = ctx.max_model_len;
  // parse_request resolved the completions default (16); empty means "up to the context".
  // echo with max_tokens 0 runs one step (vLLM samples max_tokens=1 and drops it).
  std::optional<int64_t> requested = fields.max_tokens;
  if (requested && *requested == 0) requested = 1;
  if (requested && *requested > limit) {
    error = max_tokens_too_large_error(*requested, limit);
    return false;
  }
  if (prompt >= limit || (requested && *requested + prompt > limit)) {
    error = prompt_too_long_error(limit, prompt, requested ? *requested : 0);
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
  // Sample i > 0 of a prompt: its own output (length and text), the same prompt blocks.
  const uint64_t sample_hash =
      sample == 0 ? out.prompt_hash : mix(out.prompt_hash, static_cast<uint64_t>(sample));
  engine::OutputLengthInput in;
  in.prompt_tokens = prompt;
  in.prompt_hash = sample_hash;
  in.max_tokens = out.max_tokens;
  in.ignore_eos = fields.ignore_eos;
  if (fields.sim_output_tokens) {
    in.hidden_length = static_cast<int>(std::min<int64_t>(*fields.sim_output_tokens, limit));
  }
  in.max_model_len = limit;
  in.seed = ctx.seed;
  out.output = engine::decide_output_length(in);
  if (fields.max_tokens && *fields.max_tokens == 0) {
    out.output.tokens = 1;
    out.output.reason = engine::FinishReason::kLength;
  }
  out.output_seed = mix(sample_hash, ctx.seed);
  return true;
}

std::string detokenize(const std::vector<uint32_t>& tokens) {
  std::string text;
  text.reserve(tokens.size() * 5);
  for (uint32_t t : tokens) text += engine::output_token_text(t, 0);
  return text;
}

std::string generated_text(uint64_t output_seed, int count) {
  std::string text;
  text.reserve(static_cast<size_t>(count) * 5);
  for (int i = 0; i < count; ++i) text += engine::output_token_text(output_seed, i);
  return text;
}

}  // namespace eta::vllm_sim
