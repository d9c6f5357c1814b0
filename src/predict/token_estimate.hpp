// The router's view of a prompt: its token count estimated with the toy tokenizer (the one the
// simulator counts with; against a real vLLM it is an estimate, ~4 characters per token) and
// the chained hashes of its full blocks, for the prefix index. Also the session-key hash the
// session policy consistently hashes on.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace eta::predict {

struct PromptEstimate {
  int tokens = 0;
  std::vector<uint64_t> block_hashes;  // engine::chain_block_hashes of the token ids
};

// From prompt text (completions' prompt, or the rendered chat template).
void estimate_prompt(std::string_view text, int block_size, PromptEstimate& out);
// From token ids a client sent.
void estimate_prompt(std::span<const uint32_t> token_ids, int block_size, PromptEstimate& out);

// 64-bit hash of a session key (FNV-1a, then mixed); the same on every router.
uint64_t hash_session_key(std::string_view key);

}  // namespace eta::predict
