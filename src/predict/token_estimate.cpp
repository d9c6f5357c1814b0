#include "predict/token_estimate.hpp"

#include "engine/engine.hpp"
#include "engine/tokenizer.hpp"

namespace eta::predict {

void estimate_prompt(std::span<const uint32_t> token_ids, int block_size, PromptEstimate& out) {
  out.tokens = static_cast<int>(token_ids.size());
  out.block_hashes = engine::chain_block_hashes(token_ids, block_size);
}

void estimate_prompt(std::string_view text, int block_size, PromptEstimate& out) {
  const std::vector<uint32_t> ids = engine::tokenize(text);
  estimate_prompt(ids, block_size, out);
}

uint64_t hash_session_key(std::string_view key) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

}  // namespace eta::predict
