// A deterministic toy tokenizer, shared by the simulator (to count and hash prompts) and the
// router (to estimate prompt tokens). See docs/architecture.md "The toy tokenizer".
//
// Rules: the text is split into pieces; a piece is
//   - an optional single leading space followed by a run of up to 4 ASCII letters/digits
//     (a longer run continues as further pieces of up to 4 characters, without a space), or
//   - any other single byte (punctuation, newline, a space not followed by a letter/digit,
//     each byte of a multi-byte UTF-8 character).
// Each piece is one token; its id is a 64-bit FNV-1a hash of the piece's bytes, reduced modulo
// the vocabulary size (ids are never used to decode text; the simulator generates text itself).
// English text gives about 4 characters per token, close to real BPE tokenizers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace eta::engine {

inline constexpr uint32_t kToyVocab = 32000;

// Number of tokens `text` tokenizes to (no allocation).
int count_tokens(std::string_view text);
// Token ids of `text`.
std::vector<uint32_t> tokenize(std::string_view text);
// The text of output token `index` of a request with the given seed: a space and 1-4 lowercase
// letters, so it tokenizes back to exactly one token and any concatenation of output tokens
// re-tokenizes to the same count.
std::string output_token_text(uint64_t seed, int index);

}  // namespace eta::engine
